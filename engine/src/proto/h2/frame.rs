//! HTTP/2 frames (RFC 9113 §4 and §6): `decode_frame` reads one frame from the front of a byte
//! slice, borrowing its payload, and the `encode_*` functions append frames to the caller's buffer.
//!
//! Decoding checks everything a frame says about itself: its length against our
//! SETTINGS_MAX_FRAME_SIZE and against its type, its stream id against its type, its padding.
//! It knows nothing of streams or windows: whether a frame is allowed *now* is `Connection`'s call.
//! Frames of unknown type are reported as `Unknown` so the caller can skip them (RFC 9113 §4.1).

use super::{H2Error, FRAME_HEADER_LEN};

/// Frame type codes (RFC 9113 §6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6); ACK and END_STREAM share a bit on different frame types.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS identifiers (RFC 9113 §6.5.2).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// Bytes of one SETTINGS entry: a 16-bit id and a 32-bit value.
pub const SETTING_LEN: usize = 6;
/// Bytes of a PING payload.
pub const PING_LEN: usize = 8;
/// Bytes of a PRIORITY payload, and of the priority fields of a HEADERS frame.
const PRIORITY_LEN: usize = 5;

/// One decoded frame, borrowing from the decoder's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Data {
        stream: u32,
        end_stream: bool,
        data: &'a [u8],
        /// Where `data` starts within the frame (header and padding length skipped).
        data_offset: usize,
        /// What the frame counts against flow control: the whole payload, padding included.
        flow_len: u32,
    },
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        block: &'a [u8],
    },
    Priority {
        stream: u32,
    },
    RstStream {
        stream: u32,
        code: u32,
    },
    Settings {
        ack: bool,
        /// A multiple of `SETTING_LEN`; read it with `settings`.
        payload: &'a [u8],
    },
    PushPromise {
        stream: u32,
        promised: u32,
    },
    Ping {
        ack: bool,
        payload: [u8; PING_LEN],
    },
    GoAway {
        last_stream_id: u32,
        code: u32,
        debug: &'a [u8],
    },
    WindowUpdate {
        stream: u32,
        /// 0 is returned as is: on stream 0 it is a connection error, on a stream a stream error.
        increment: u32,
    },
    Continuation {
        stream: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    Unknown {
        kind: u8,
        stream: u32,
    },
}

/// What `decode_frame` found at the front of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Not a whole frame yet; nothing consumed. `needed` is the whole frame's length once the
    /// header is in (so a caller can size its buffer), else `FRAME_HEADER_LEN`.
    Partial { needed: usize },
    /// One frame, `len` bytes of input (header included).
    Complete { frame: Frame<'a>, len: usize },
}

/// Reads one frame from the front of `buf`, refusing payloads longer than `max_frame_size`.
pub fn decode_frame(buf: &[u8], max_frame_size: u32) -> Result<Decoded<'_>, H2Error> {
    let Some(head) = buf.get(..FRAME_HEADER_LEN) else {
        return Ok(Decoded::Partial {
            needed: FRAME_HEADER_LEN,
        });
    };
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]);
    if len > max_frame_size {
        return Err(H2Error::FrameSize);
    }
    let total = FRAME_HEADER_LEN + len as usize;
    let Some(payload) = buf.get(FRAME_HEADER_LEN..total) else {
        return Ok(Decoded::Partial { needed: total });
    };
    let (ty, flags) = (head[3], head[4]);
    // The reserved high bit is ignored on receipt (RFC 9113 §4.1).
    let stream = u32_at(head, 5) & 0x7fff_ffff;
    let frame = match ty {
        kind::DATA => {
            need_stream(stream)?;
            let (data, offset) = unpad(payload, flags, 0)?;
            Frame::Data {
                stream,
                end_stream: flags & flag::END_STREAM != 0,
                data,
                data_offset: FRAME_HEADER_LEN + offset,
                flow_len: len,
            }
        }
        kind::HEADERS => {
            need_stream(stream)?;
            let skip = if flags & flag::PRIORITY != 0 {
                PRIORITY_LEN
            } else {
                0
            };
            let (block, _) = unpad(payload, flags, skip)?;
            Frame::Headers {
                stream,
                end_stream: flags & flag::END_STREAM != 0,
                end_headers: flags & flag::END_HEADERS != 0,
                block,
            }
        }
        kind::PRIORITY => {
            need_stream(stream)?;
            exact(payload, PRIORITY_LEN)?;
            Frame::Priority { stream }
        }
        kind::RST_STREAM => {
            need_stream(stream)?;
            exact(payload, 4)?;
            Frame::RstStream {
                stream,
                code: u32_at(payload, 0),
            }
        }
        kind::SETTINGS => {
            no_stream(stream)?;
            let ack = flags & flag::ACK != 0;
            if payload.len() % SETTING_LEN != 0 || (ack && !payload.is_empty()) {
                return Err(H2Error::FrameSize);
            }
            Frame::Settings { ack, payload }
        }
        kind::PUSH_PROMISE => {
            need_stream(stream)?;
            let (rest, _) = unpad(payload, flags, 0)?;
            let Some(id) = rest.get(..4) else {
                return Err(H2Error::FrameSize);
            };
            Frame::PushPromise {
                stream,
                promised: u32_at(id, 0) & 0x7fff_ffff,
            }
        }
        kind::PING => {
            no_stream(stream)?;
            exact(payload, PING_LEN)?;
            let mut bytes = [0; PING_LEN];
            bytes.copy_from_slice(payload);
            Frame::Ping {
                ack: flags & flag::ACK != 0,
                payload: bytes,
            }
        }
        kind::GOAWAY => {
            no_stream(stream)?;
            if payload.len() < 8 {
                return Err(H2Error::FrameSize);
            }
            Frame::GoAway {
                last_stream_id: u32_at(payload, 0) & 0x7fff_ffff,
                code: u32_at(payload, 4),
                debug: &payload[8..],
            }
        }
        kind::WINDOW_UPDATE => {
            exact(payload, 4)?;
            Frame::WindowUpdate {
                stream,
                increment: u32_at(payload, 0) & 0x7fff_ffff,
            }
        }
        kind::CONTINUATION => {
            need_stream(stream)?;
            Frame::Continuation {
                stream,
                end_headers: flags & flag::END_HEADERS != 0,
                block: payload,
            }
        }
        other => Frame::Unknown {
            kind: other,
            stream,
        },
    };
    Ok(Decoded::Complete { frame, len: total })
}

/// The (id, value) pairs of a SETTINGS payload (unknown ids included: the caller ignores them).
pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload
        .chunks_exact(SETTING_LEN)
        .map(|s| (u16::from_be_bytes([s[0], s[1]]), u32_at(s, 2)))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn need_stream(stream: u32) -> Result<(), H2Error> {
    if stream == 0 {
        return Err(H2Error::Protocol);
    }
    Ok(())
}

fn no_stream(stream: u32) -> Result<(), H2Error> {
    if stream != 0 {
        return Err(H2Error::Protocol);
    }
    Ok(())
}

fn exact(payload: &[u8], len: usize) -> Result<(), H2Error> {
    if payload.len() != len {
        return Err(H2Error::FrameSize);
    }
    Ok(())
}

/// Strips the pad-length byte and the padding (when PADDED), then `skip` more leading bytes.
/// Returns the rest and where it starts in the payload. Padding that does not fit → `Protocol`.
fn unpad(payload: &[u8], flags: u8, skip: usize) -> Result<(&[u8], usize), H2Error> {
    let (pad, start) = if flags & flag::PADDED != 0 {
        match payload.first() {
            Some(&p) => (usize::from(p), 1),
            None => return Err(H2Error::FrameSize),
        }
    } else {
        (0, 0)
    };
    let start = start + skip;
    match payload.len().checked_sub(pad) {
        Some(end) if end >= start => Ok((&payload[start..end], start)),
        _ => Err(H2Error::Protocol),
    }
}

/// Appends a frame header for a payload of `len` bytes. `len` must fit in 24 bits: every caller
/// keeps it within the peer's SETTINGS_MAX_FRAME_SIZE.
pub fn encode_header(len: usize, ty: u8, flags: u8, stream: u32, out: &mut Vec<u8>) {
    let len = (len as u32).to_be_bytes();
    out.extend_from_slice(&[len[1], len[2], len[3], ty, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// Appends any frame whole; the other encoders are shorthands for it.
pub fn encode_frame(ty: u8, flags: u8, stream: u32, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(FRAME_HEADER_LEN + payload.len());
    encode_header(payload.len(), ty, flags, stream, out);
    out.extend_from_slice(payload);
}

/// SETTINGS with the given entries (not an ACK).
pub fn encode_settings(entries: &[(u16, u32)], out: &mut Vec<u8>) {
    encode_header(entries.len() * SETTING_LEN, kind::SETTINGS, 0, 0, out);
    for (id, value) in entries {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub fn encode_settings_ack(out: &mut Vec<u8>) {
    encode_header(0, kind::SETTINGS, flag::ACK, 0, out);
}

pub fn encode_ping(ack: bool, payload: [u8; PING_LEN], out: &mut Vec<u8>) {
    let flags = if ack { flag::ACK } else { 0 };
    encode_frame(kind::PING, flags, 0, &payload, out);
}

pub fn encode_window_update(stream: u32, increment: u32, out: &mut Vec<u8>) {
    encode_frame(
        kind::WINDOW_UPDATE,
        0,
        stream,
        &(increment & 0x7fff_ffff).to_be_bytes(),
        out,
    );
}

pub fn encode_rst_stream(stream: u32, code: u32, out: &mut Vec<u8>) {
    encode_frame(kind::RST_STREAM, 0, stream, &code.to_be_bytes(), out);
}

pub fn encode_goaway(last_stream_id: u32, code: u32, out: &mut Vec<u8>) {
    encode_header(8, kind::GOAWAY, 0, 0, out);
    out.extend_from_slice(&(last_stream_id & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
}

pub fn encode_data(stream: u32, data: &[u8], end_stream: bool, out: &mut Vec<u8>) {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    encode_frame(kind::DATA, flags, stream, data, out);
}

/// A header block as HEADERS and as many CONTINUATIONs as `max_frame_size` requires.
pub fn encode_header_block(
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame_size: usize,
    out: &mut Vec<u8>,
) {
    let max = max_frame_size.max(1);
    let mut chunks = block.chunks(max);
    let first = chunks.next().unwrap_or(&[]);
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    if block.len() <= max {
        flags |= flag::END_HEADERS;
    }
    encode_frame(kind::HEADERS, flags, stream, first, out);
    let mut left = block.len() - first.len();
    for chunk in chunks {
        left -= chunk.len();
        let flags = if left == 0 { flag::END_HEADERS } else { 0 };
        encode_frame(kind::CONTINUATION, flags, stream, chunk, out);
    }
}
