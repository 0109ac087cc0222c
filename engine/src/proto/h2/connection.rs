//! The client's HTTP/2 connection state machine, sans-io: what it must send lands in the caller's
//! out buffer, what it received comes in through `receive` (in `receive.rs`) and leaves as
//! `Event`s. This half owns the connection's state, the stream slots and the sending side:
//! the preface, request heads, request bodies within both send windows, cancels and shutdown.
//!
//! It refuses to open a stream past the server's SETTINGS_MAX_CONCURRENT_STREAMS or our own
//! `Settings::max_streams` (`StartError::NoSlot`: the caller queues the request), after a GOAWAY,
//! or once stream ids run out. Allocation happens in `new` (stream table, buffers at their first
//! sizes); after that buffers are cleared and reused.

use core::ops::Range;

use super::frame::{self, setting};
use super::hpack::{BlockDecoder, HeaderList, Request, RequestEncoder};
use super::stream::{Stream, StreamId, StreamTable};
use super::{
    code, H2Error, Settings, DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW, MAX_STREAM_ID, PREFACE,
};

/// What happened, in order, during one `receive` (or `close_read`). Ranges index the input of
/// that call (`Data`) or `Connection::fields` (`Head`, `Trailers`); both are valid until the
/// next `receive`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The final response head (1xx heads are skipped).
    Head {
        stream: StreamId,
        status: u16,
        fields: Range<usize>,
    },
    /// Response body bytes: `input[data]`.
    Data {
        stream: StreamId,
        data: Range<usize>,
    },
    /// The trailer section; `End` follows.
    Trailers {
        stream: StreamId,
        fields: Range<usize>,
    },
    /// The response is complete; the stream's slot is free.
    End { stream: StreamId },
    /// The server reset the stream with `code` (not REFUSED_STREAM). `H2Error::StreamReset`.
    Reset { stream: StreamId, code: u32 },
    /// The server never processed the request (REFUSED_STREAM, or above GOAWAY's last stream
    /// id): safe to send again on another connection.
    Refused { stream: StreamId },
    /// We gave up on the stream: a malformed response, a stream flow-control breach, the
    /// connection failing or ending under it. We sent RST_STREAM where one was due.
    Failed { stream: StreamId, error: H2Error },
    /// The server is going away: streams up to `last_stream_id` still complete, no new ones
    /// start. A `code` other than NO_ERROR is `H2Error::GoAway`.
    GoAway { last_stream_id: u32, code: u32 },
    /// The server answered our PING.
    PingAck { payload: [u8; 8] },
    /// The server's SETTINGS were applied (free slots or windows may have changed).
    Settings,
}

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    Open,
    /// GOAWAY received (or sent by `shutdown`): open streams finish, none start.
    Draining {
        last_stream_id: u32,
    },
    /// Nothing more is sent or accepted; `Connection::error` says why, if it failed.
    Closed,
}

/// Why `start_request` could not open a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// Every stream slot is taken: queue the request until an `End` (or other terminal event).
    #[error("no free stream slot on this connection")]
    NoSlot,
    /// The connection is draining after GOAWAY: open a new one.
    #[error("the connection is going away")]
    GoingAway,
    /// The connection has failed or ended.
    #[error("the connection is closed")]
    Closed,
    /// Client stream ids ran out (2^30 requests): open a new connection.
    #[error("stream ids are exhausted on this connection")]
    IdsExhausted,
}

/// What the server's SETTINGS let us do.
#[derive(Clone, Copy, Debug)]
pub(super) struct Peer {
    pub max_streams: u32,
    pub initial_window: u32,
    pub max_frame_size: u32,
}

/// A header block whose CONTINUATIONs are still arriving.
#[derive(Clone, Copy, Debug)]
pub(super) struct Continuing {
    pub stream: u32,
    pub end_stream: bool,
}

/// One client connection. See the module doc for the flow.
pub struct Connection {
    pub(super) local: Settings,
    pub(super) peer: Peer,
    pub(super) state: ConnectionState,
    pub(super) error: Option<H2Error>,
    /// Connection-level send window (RFC 9113 §6.9.1).
    pub(super) send_window: i64,
    /// What the server may still send us on the connection, and what we owe it back.
    pub(super) recv_window: i64,
    pub(super) recv_unacked: u32,
    pub(super) next_id: u32,
    /// Highest stream id we opened: ids above it (and even ones) are idle.
    pub(super) highest_id: u32,
    pub(super) streams: StreamTable,
    pub(super) encoder: RequestEncoder,
    pub(super) decoder: BlockDecoder,
    /// A header block being reassembled from CONTINUATIONs.
    pub(super) block: Vec<u8>,
    pub(super) continuing: Option<Continuing>,
    pub(super) fields: HeaderList,
    pub(super) events: Vec<Event>,
    /// The server's SETTINGS came first, as its preface must (RFC 9113 §3.4).
    pub(super) got_settings: bool,
    /// An encoded request head, before it is cut into frames.
    scratch: Vec<u8>,
    /// The slot `send_data` starts from, so no stream's body starves the others.
    cursor: usize,
}

impl Connection {
    /// A connection with our `settings` (clamped to what RFC 9113 allows); appends the preface,
    /// our SETTINGS and the connection window's growth to `out`.
    pub fn new(settings: Settings, out: &mut Vec<u8>) -> Connection {
        let local = settings.clamped();
        out.extend_from_slice(PREFACE);
        frame::encode_settings(
            &[
                (setting::ENABLE_PUSH, 0),
                (setting::HEADER_TABLE_SIZE, local.header_table_size),
                (setting::INITIAL_WINDOW_SIZE, local.stream_window),
                (setting::MAX_FRAME_SIZE, local.max_frame_size),
                (setting::MAX_HEADER_LIST_SIZE, local.max_header_list_size),
            ],
            out,
        );
        let growth = local.connection_window - DEFAULT_WINDOW;
        if growth > 0 {
            frame::encode_window_update(0, growth, out);
        }
        Connection {
            local,
            peer: Peer {
                max_streams: u32::MAX,
                initial_window: DEFAULT_WINDOW,
                max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            },
            state: ConnectionState::Open,
            error: None,
            send_window: i64::from(DEFAULT_WINDOW),
            recv_window: i64::from(local.connection_window),
            recv_unacked: 0,
            next_id: 1,
            highest_id: 0,
            streams: StreamTable::new(local.max_streams as usize),
            encoder: RequestEncoder::default(),
            decoder: BlockDecoder::new(local.header_table_size, local.max_header_list_size),
            block: Vec::new(),
            continuing: None,
            fields: HeaderList::default(),
            events: Vec::with_capacity(64),
            got_settings: false,
            scratch: Vec::with_capacity(1024),
            cursor: 0,
        }
    }

    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// Why the connection closed, if it failed.
    pub fn error(&self) -> Option<H2Error> {
        self.error
    }

    /// Streams open now (request sent or sending, response not complete).
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Streams that may be open at once now: the server's limit within ours. Until the server's
    /// SETTINGS arrive, one: RFC 9113 lets a client assume no limit, but a server with a low one
    /// may then refuse streams or drop the connection (Python `h2` does), and the first request
    /// goes out at once either way.
    pub fn max_streams(&self) -> usize {
        if !self.got_settings {
            return 1;
        }
        (self.peer.max_streams as usize).min(self.streams.capacity())
    }

    /// Whether `start_request` would open a stream now.
    pub fn can_start(&self) -> bool {
        self.state == ConnectionState::Open
            && self.streams.len() < self.max_streams()
            && self.next_id <= MAX_STREAM_ID
    }

    /// Draining with nothing left open, or closed: the caller may drop the connection.
    pub fn is_finished(&self) -> bool {
        match self.state {
            ConnectionState::Open => false,
            ConnectionState::Draining { .. } => self.streams.len() == 0,
            ConnectionState::Closed => true,
        }
    }

    /// The events of the last `receive` or `close_read`.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The fields that `Head` and `Trailers` events index.
    pub fn fields(&self) -> &HeaderList {
        &self.fields
    }

    /// Opens a stream for `req`: appends its HEADERS (and CONTINUATIONs) and as much of `body`
    /// as the windows allow; the rest goes out from `send_data` as WINDOW_UPDATEs arrive.
    pub fn start_request(
        &mut self,
        req: &Request<'_>,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<StreamId, StartError> {
        match self.state {
            ConnectionState::Open => {}
            ConnectionState::Draining { .. } => return Err(StartError::GoingAway),
            ConnectionState::Closed => return Err(StartError::Closed),
        }
        if self.next_id > MAX_STREAM_ID {
            return Err(StartError::IdsExhausted);
        }
        if self.streams.len() >= self.max_streams() {
            return Err(StartError::NoSlot);
        }
        let id = self.next_id;
        let stream = Stream::new(
            id,
            body.len() as u64,
            i64::from(self.peer.initial_window),
            i64::from(self.local.stream_window),
            req.method == "HEAD",
        );
        let slot = self.streams.insert(stream).ok_or(StartError::NoSlot)?;
        self.next_id += 2;
        self.highest_id = id;
        self.scratch.clear();
        self.encoder.encode(req, body.len(), &mut self.scratch);
        let max_frame = self.peer.max_frame_size as usize;
        frame::encode_header_block(id, &self.scratch, body.is_empty(), max_frame, out);
        self.send_body(slot, body, out);
        Ok(StreamId(id))
    }

    /// Whether some stream has request body left and both windows let some of it go.
    pub fn wants_to_send(&self) -> bool {
        self.send_window > 0
            && self.state != ConnectionState::Closed
            && self
                .streams
                .iter()
                .any(|s| s.send_open && s.send_window > 0)
    }

    /// Sends what the windows allow of every unfinished request body, fairly: `body_of(stream)`
    /// returns the whole body given to `start_request` for that stream. Call after `receive`
    /// when `wants_to_send` says so.
    pub fn send_data<'b>(
        &mut self,
        out: &mut Vec<u8>,
        mut body_of: impl FnMut(StreamId) -> &'b [u8],
    ) {
        let cap = self.streams.capacity();
        if self.state == ConnectionState::Closed || cap == 0 {
            return;
        }
        for i in 0..cap {
            if self.send_window <= 0 {
                break;
            }
            let slot = (self.cursor + i) % cap;
            let Some(s) = self.streams.get_mut(slot) else {
                continue;
            };
            if s.send_open && s.send_window > 0 {
                let body = body_of(StreamId(s.id));
                self.send_body(slot, body, out);
            }
        }
        self.cursor = (self.cursor + 1) % cap;
    }

    /// DATA frames for the stream in `slot`, from where its body stopped, until a window or
    /// the body ends. A body shorter than announced ends the stream where it ends.
    fn send_body(&mut self, slot: usize, body: &[u8], out: &mut Vec<u8>) {
        let max_frame = i64::from(self.peer.max_frame_size);
        while let Some(s) = self.streams.get_mut(slot) {
            if !s.send_open {
                return;
            }
            let sent = s.body_sent as usize;
            let rest = body.get(sent..).unwrap_or(&[]);
            let left = s.body_left.min(rest.len() as u64) as i64;
            let n = left.min(s.send_window).min(self.send_window).min(max_frame);
            if n <= 0 && left > 0 {
                return;
            }
            let n = n.max(0) as usize;
            let end = n as i64 == left;
            frame::encode_data(s.id, &rest[..n], end, out);
            s.send_window -= n as i64;
            self.send_window -= n as i64;
            s.body_sent += n as u64;
            s.body_left = if end { 0 } else { s.body_left - n as u64 };
            s.send_open = !end;
        }
    }

    /// Gives up on a stream (a timeout, say): RST_STREAM CANCEL, and its slot is free. `false`
    /// if it was not open.
    pub fn cancel(&mut self, stream: StreamId, out: &mut Vec<u8>) -> bool {
        let Some(slot) = self.streams.find(stream.0) else {
            return false;
        };
        self.streams.remove(slot);
        if self.state != ConnectionState::Closed {
            frame::encode_rst_stream(stream.0, code::CANCEL, out);
        }
        true
    }

    /// Sends PING with `payload`; the answer comes as `Event::PingAck`.
    pub fn ping(&mut self, payload: [u8; 8], out: &mut Vec<u8>) {
        if self.state != ConnectionState::Closed {
            frame::encode_ping(false, payload, out);
        }
    }

    /// Graceful close from our side: GOAWAY(NO_ERROR); open streams may still complete.
    pub fn shutdown(&mut self, out: &mut Vec<u8>) {
        if self.state == ConnectionState::Open {
            frame::encode_goaway(0, code::NO_ERROR, out);
            self.state = ConnectionState::Draining {
                last_stream_id: self.highest_id,
            };
        }
    }

    /// The transport ended (EOF or a read error): every open stream fails with `Truncated`
    /// (listed in `events`) and the connection is closed.
    pub fn close_read(&mut self) {
        self.events.clear();
        self.fields.clear();
        self.fail_all(H2Error::Truncated);
        self.state = ConnectionState::Closed;
    }

    /// A connection error: GOAWAY with its code, every open stream `Failed`, closed for good.
    pub(super) fn fail(&mut self, error: H2Error, out: &mut Vec<u8>) -> H2Error {
        if self.state != ConnectionState::Closed {
            frame::encode_goaway(0, error.code(), out);
        }
        self.fail_all(error);
        self.error = Some(error);
        self.state = ConnectionState::Closed;
        error
    }

    fn fail_all(&mut self, error: H2Error) {
        for slot in 0..self.streams.capacity() {
            if let Some(s) = self.streams.remove(slot) {
                self.events.push(Event::Failed {
                    stream: StreamId(s.id),
                    error,
                });
            }
        }
    }
}
