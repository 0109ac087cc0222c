//! The receiving half of `Connection`: frames in, `Event`s out, and what RFC 9113 makes the
//! receiver answer on its own (SETTINGS ACK, PING ACK, WINDOW_UPDATE for the data it took,
//! RST_STREAM for a stream it gives up on, GOAWAY for a connection error).
//!
//! It decides whether a frame is allowed now (stream state, windows, CONTINUATION order); the
//! frame's own shape is `frame::decode_frame`'s business and the header block's is `hpack`'s.
//! It never buffers body bytes: `Event::Data` points into the caller's input.

use super::connection::{Connection, ConnectionState, Continuing, Event};
use super::frame::{self, setting, Decoded, Frame};
use super::stream::{Recv, StreamId};
use super::{
    code, H2Error, DEFAULT_MAX_FRAME_SIZE, MAX_HEADER_BLOCK_BYTES, MAX_MAX_FRAME_SIZE, MAX_WINDOW,
};

impl Connection {
    /// Takes every whole frame at the front of `input` and returns how many bytes that was; the
    /// caller keeps the rest (less than one frame) and calls again with more appended. What
    /// happened is in `events()`, cleared at each call; answers due are appended to `out`.
    ///
    /// On `Err` the connection is closed (GOAWAY is in `out`), and `events()` still holds what
    /// came before the failure plus a `Failed` for every stream that was open.
    pub fn receive(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, H2Error> {
        self.events.clear();
        self.fields.clear();
        if self.state == ConnectionState::Closed {
            return Err(self.error.unwrap_or(H2Error::Truncated));
        }
        let mut pos = 0;
        while pos < input.len() {
            let decoded = match frame::decode_frame(&input[pos..], self.local.max_frame_size) {
                Ok(d) => d,
                Err(e) => return Err(self.fail(e, out)),
            };
            let Decoded::Complete { frame, len } = decoded else {
                break;
            };
            if let Err(e) = self.on_frame(frame, pos, out) {
                return Err(self.fail(e, out));
            }
            pos += len;
            if self.state == ConnectionState::Closed {
                break;
            }
        }
        Ok(pos)
    }

    /// One frame that starts at `at` in the input. `Err` is a connection error.
    fn on_frame(&mut self, frame: Frame<'_>, at: usize, out: &mut Vec<u8>) -> Result<(), H2Error> {
        if let Some(c) = self.continuing {
            // Nothing may come between a HEADERS and its last CONTINUATION (RFC 9113 §6.10).
            let Frame::Continuation {
                stream,
                end_headers,
                block,
            } = frame
            else {
                return Err(H2Error::Protocol);
            };
            if stream != c.stream {
                return Err(H2Error::Protocol);
            }
            if self.block.len() + block.len() > MAX_HEADER_BLOCK_BYTES {
                return Err(H2Error::HeaderListTooLarge);
            }
            self.block.extend_from_slice(block);
            if end_headers {
                self.continuing = None;
                let whole = core::mem::take(&mut self.block);
                let done = self.on_block(c.stream, c.end_stream, &whole, out);
                self.block = whole;
                self.block.clear();
                done?;
            }
            return Ok(());
        }
        if !self.got_settings && !matches!(frame, Frame::Settings { ack: false, .. }) {
            return Err(H2Error::Protocol);
        }
        match frame {
            Frame::Data {
                stream,
                end_stream,
                data,
                data_offset,
                flow_len,
            } => {
                let start = at + data_offset;
                self.on_data(stream, end_stream, start..start + data.len(), flow_len, out)
            }
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                block,
            } => {
                self.not_idle(stream)?;
                if end_headers {
                    return self.on_block(stream, end_stream, block, out);
                }
                self.block.clear();
                self.block.extend_from_slice(block);
                self.continuing = Some(Continuing { stream, end_stream });
                Ok(())
            }
            Frame::Priority { .. } | Frame::Unknown { .. } => Ok(()),
            Frame::RstStream { stream, code: c } => {
                self.not_idle(stream)?;
                if let Some(slot) = self.streams.find(stream) {
                    self.streams.remove(slot);
                    let stream = StreamId(stream);
                    self.events.push(if c == code::REFUSED_STREAM {
                        Event::Refused { stream }
                    } else {
                        Event::Reset { stream, code: c }
                    });
                }
                Ok(())
            }
            Frame::Settings { ack: true, .. } => Ok(()),
            Frame::Settings {
                ack: false,
                payload,
            } => self.on_settings(payload, out),
            // We announced ENABLE_PUSH = 0 (RFC 9113 §8.4).
            Frame::PushPromise { .. } => Err(H2Error::Protocol),
            Frame::Ping {
                ack: false,
                payload,
            } => {
                frame::encode_ping(true, payload, out);
                Ok(())
            }
            Frame::Ping { ack: true, payload } => {
                self.events.push(Event::PingAck { payload });
                Ok(())
            }
            Frame::GoAway {
                last_stream_id,
                code: c,
                ..
            } => {
                self.on_goaway(last_stream_id, c);
                Ok(())
            }
            Frame::WindowUpdate { stream, increment } => {
                self.on_window_update(stream, increment, out)
            }
            Frame::Continuation { .. } => Err(H2Error::Protocol),
        }
    }

    /// Frames on a stream we never opened (above our highest id, or even: push is off).
    fn not_idle(&self, stream: u32) -> Result<(), H2Error> {
        if stream & 1 == 0 || stream > self.highest_id {
            return Err(H2Error::Protocol);
        }
        Ok(())
    }

    fn on_data(
        &mut self,
        stream: u32,
        end_stream: bool,
        data: core::ops::Range<usize>,
        flow_len: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), H2Error> {
        self.not_idle(stream)?;
        let flow = i64::from(flow_len);
        if flow > self.recv_window {
            return Err(H2Error::FlowControl);
        }
        self.recv_window -= flow;
        self.recv_unacked += flow_len;
        // Return the connection's credit at once: we never hold body bytes, the caller has them.
        if self.recv_unacked >= self.local.connection_window / 2 {
            frame::encode_window_update(0, self.recv_unacked, out);
            self.recv_window += i64::from(self.recv_unacked);
            self.recv_unacked = 0;
        }
        // A stream already closed (by us or by the server): only the connection window counts.
        let Some(slot) = self.streams.find(stream) else {
            return Ok(());
        };
        let half = self.local.stream_window / 2;
        let Some(s) = self.streams.get_mut(slot) else {
            return Ok(());
        };
        if flow > s.recv_window {
            return self.stream_error(slot, H2Error::FlowControl, out);
        }
        s.recv_window -= flow;
        let Recv::Body { seen, .. } = &mut s.recv else {
            // DATA before the response head.
            return self.stream_error(slot, H2Error::Protocol, out);
        };
        *seen += data.len() as u64;
        if !data.is_empty() {
            self.events.push(Event::Data {
                stream: StreamId(stream),
                data,
            });
        }
        if end_stream {
            return self.finish(slot, out);
        }
        s.recv_unacked += flow_len;
        if s.recv_unacked >= half {
            frame::encode_window_update(stream, s.recv_unacked, out);
            s.recv_window += i64::from(s.recv_unacked);
            s.recv_unacked = 0;
        }
        Ok(())
    }

    /// A whole header block for `stream`: a response head, a 1xx head, or trailers.
    fn on_block(
        &mut self,
        stream: u32,
        end_stream: bool,
        block: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), H2Error> {
        let slot = self.streams.find(stream);
        let trailers = slot
            .and_then(|i| self.streams.get_mut(i))
            .is_some_and(|s| matches!(s.recv, Recv::Body { .. }));
        // Decoded even for a closed stream, so the dynamic table stays in step.
        let decoded = self.decoder.decode(block, trailers, &mut self.fields)?;
        let Some(slot) = slot else {
            return Ok(());
        };
        if let Some(e) = decoded.refused {
            return self.stream_error(slot, e, out);
        }
        let Some(s) = self.streams.get_mut(slot) else {
            return Ok(());
        };
        let id = StreamId(stream);
        if trailers {
            if !end_stream {
                return self.stream_error(slot, H2Error::Protocol, out);
            }
            self.events.push(Event::Trailers {
                stream: id,
                fields: decoded.fields,
            });
            return self.finish(slot, out);
        }
        let status = decoded.status.unwrap_or(0);
        if status < 200 {
            // 1xx heads are skipped; 101 does not exist in HTTP/2, and a 1xx cannot end it.
            if status == 101 || end_stream {
                return self.stream_error(slot, H2Error::Protocol, out);
            }
            return Ok(());
        }
        let bodiless = s.head_request || status == 204 || status == 304;
        s.recv = Recv::Body {
            content_length: if bodiless {
                None
            } else {
                decoded.content_length
            },
            seen: 0,
        };
        self.events.push(Event::Head {
            stream: id,
            status,
            fields: decoded.fields,
        });
        if end_stream {
            return self.finish(slot, out);
        }
        Ok(())
    }

    /// The response on `slot` is complete: check its length, free the slot, and stop sending a
    /// body the server no longer wants.
    fn finish(&mut self, slot: usize, out: &mut Vec<u8>) -> Result<(), H2Error> {
        let Some(s) = self.streams.remove(slot) else {
            return Ok(());
        };
        let stream = StreamId(s.id);
        if s.send_open {
            frame::encode_rst_stream(s.id, code::CANCEL, out);
        }
        if let Recv::Body {
            content_length: Some(n),
            seen,
        } = s.recv
        {
            if n != seen {
                self.events.push(Event::Failed {
                    stream,
                    error: H2Error::Protocol,
                });
                return Ok(());
            }
        }
        self.events.push(Event::End { stream });
        Ok(())
    }

    /// We give up on one stream: RST_STREAM with the error's code, `Failed`, slot freed. The
    /// connection goes on.
    fn stream_error(
        &mut self,
        slot: usize,
        error: H2Error,
        out: &mut Vec<u8>,
    ) -> Result<(), H2Error> {
        if let Some(s) = self.streams.remove(slot) {
            frame::encode_rst_stream(s.id, error.code(), out);
            self.events.push(Event::Failed {
                stream: StreamId(s.id),
                error,
            });
        }
        Ok(())
    }

    fn on_settings(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), H2Error> {
        for (id, value) in frame::settings(payload) {
            match id {
                setting::HEADER_TABLE_SIZE => self.encoder.set_peer_table_size(value),
                // A server must not enable push (RFC 9113 §6.5.2).
                setting::ENABLE_PUSH if value != 0 => return Err(H2Error::Protocol),
                setting::MAX_CONCURRENT_STREAMS => self.peer.max_streams = value,
                setting::INITIAL_WINDOW_SIZE => {
                    if value > MAX_WINDOW {
                        return Err(H2Error::FlowControl);
                    }
                    let delta = i64::from(value) - i64::from(self.peer.initial_window);
                    for (_, s) in self.streams.iter_mut() {
                        s.send_window += delta;
                        if s.send_window > i64::from(MAX_WINDOW) {
                            return Err(H2Error::FlowControl);
                        }
                    }
                    self.peer.initial_window = value;
                }
                setting::MAX_FRAME_SIZE => {
                    if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) {
                        return Err(H2Error::Protocol);
                    }
                    self.peer.max_frame_size = value;
                }
                // Advisory (MAX_HEADER_LIST_SIZE) or unknown: ignored (RFC 9113 §6.5.2).
                _ => {}
            }
        }
        self.got_settings = true;
        frame::encode_settings_ack(out);
        self.events.push(Event::Settings);
        Ok(())
    }

    fn on_goaway(&mut self, last_stream_id: u32, c: u32) {
        let last = match self.state {
            ConnectionState::Draining { last_stream_id: l } => l.min(last_stream_id),
            _ => last_stream_id,
        };
        self.state = ConnectionState::Draining {
            last_stream_id: last,
        };
        self.events.push(Event::GoAway {
            last_stream_id,
            code: c,
        });
        // Streams above the last id were never processed: retryable elsewhere.
        for slot in 0..self.streams.capacity() {
            let above = self.streams.get_mut(slot).is_some_and(|s| s.id > last);
            if above {
                if let Some(s) = self.streams.remove(slot) {
                    self.events.push(Event::Refused {
                        stream: StreamId(s.id),
                    });
                }
            }
        }
    }

    fn on_window_update(
        &mut self,
        stream: u32,
        increment: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), H2Error> {
        if stream == 0 {
            if increment == 0 {
                return Err(H2Error::Protocol);
            }
            self.send_window += i64::from(increment);
            if self.send_window > i64::from(MAX_WINDOW) {
                return Err(H2Error::FlowControl);
            }
            return Ok(());
        }
        self.not_idle(stream)?;
        let Some(slot) = self.streams.find(stream) else {
            return Ok(());
        };
        if increment == 0 {
            return self.stream_error(slot, H2Error::Protocol, out);
        }
        let Some(s) = self.streams.get_mut(slot) else {
            return Ok(());
        };
        s.send_window += i64::from(increment);
        if s.send_window > i64::from(MAX_WINDOW) {
            return self.stream_error(slot, H2Error::FlowControl, out);
        }
        Ok(())
    }
}
