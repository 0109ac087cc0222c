//! HTTP/2 over one connection shared by `streams` virtual users ("lanes"), each with at most one
//! stream open: the lane code of `http1::Conn` renders a request as for HTTP/1.1 and hands it to
//! `lane::exchange`, which sends it as a stream of this connection and waits for its response.
//!
//! `H2Conn` is what lanes and the connection's tasks share (single-threaded: `RefCell`, never
//! borrowed across an await): the sans-io `proto::h2::Connection`, the frames waiting to be
//! written, and each lane's stream and outcome. `driver` owns the socket: it connects, reads
//! and feeds the codec (events come back here, to the lanes), and a writer task beside it
//! writes what lanes and the codec queued, so a new request never waits for a read to finish.
//!
//! Allocation happens per connection (codec tables, buffers, the writer task), not per request.

mod driver;
mod lane;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::Waker;

pub(crate) use driver::drive;
pub(crate) use lane::{exchange, Buffers};

use crate::metrics::ErrorKind;
use crate::plan::journey::MAX_INSPECTED_BODY;
use crate::proto::h2::{code, Connection, Event, H2Error, Settings, StreamId};
use crate::shard::conn::deadline::Slot;
use crate::shard::state::ShardState;

/// How a lane's request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Done(u16),
    Failed(ErrorKind),
    /// The server never processed it (REFUSED_STREAM, or above GOAWAY's last id): send again.
    Refused,
}

/// One lane's stream and what came back on it.
#[derive(Default)]
struct LaneState {
    stream: Option<StreamId>,
    /// The lane's request (HTTP/1.1-encoded) while it is sent: the body goes out from here as
    /// the server's windows open.
    request: Vec<u8>,
    body_at: usize,
    status: u16,
    outcome: Option<Outcome>,
    needs_head: bool,
    needs_body: bool,
    /// The user keeps a cookie jar: a head that sets a cookie is kept too.
    cookies: bool,
    head: Vec<u8>,
    body: Vec<u8>,
    waker: Option<Waker>,
}

struct Inner {
    /// `Some` while connected.
    conn: Option<Connection>,
    /// Frames for the writer.
    out: Vec<u8>,
    lanes: Vec<LaneState>,
    /// Lanes waiting for a connection or a free stream.
    waiting: Vec<Waker>,
    writer: Option<Waker>,
    /// The driver, waiting for a lane to want a connection.
    driver: Option<Waker>,
    /// Connects that failed: a lane waiting for a connection gives up when this moves.
    connect_failures: u64,
    /// Why the last connect failed (`connect`, a TLS kind, `h2_protocol` when ALPN said no).
    connect_error: ErrorKind,
}

/// One HTTP/2 connection's shared state. See the module doc.
pub(crate) struct H2Conn {
    inner: RefCell<Inner>,
    /// Lanes still running: the driver ends after the last.
    alive: Cell<usize>,
    /// Expired to stop the driver's read: the last lane ended, or the writer failed.
    stop: Slot,
    /// Expired to stop the writer once the connection is closed.
    stop_write: Slot,
    /// `:scheme` of every request: `https` over TLS (RFC 9113 §8.3.1).
    scheme: &'static str,
    settings: Settings,
}

impl H2Conn {
    /// A connection for `lanes` users, each with one stream at a time.
    pub(crate) fn new(lanes: usize, tls: bool) -> Rc<H2Conn> {
        Rc::new(H2Conn {
            inner: RefCell::new(Inner {
                conn: None,
                out: Vec::with_capacity(16 * 1024),
                lanes: (0..lanes).map(|_| LaneState::default()).collect(),
                waiting: Vec::with_capacity(lanes),
                writer: None,
                driver: None,
                connect_failures: 0,
                connect_error: ErrorKind::Connect,
            }),
            alive: Cell::new(lanes),
            stop: Slot::default(),
            stop_write: Slot::default(),
            scheme: if tls { "https" } else { "http" },
            settings: Settings {
                max_streams: lanes.max(1) as u32,
                ..Settings::default()
            },
        })
    }

    /// A lane's user has finished: after the last, the driver closes the connection.
    pub(crate) fn lane_finished(&self) {
        let left = self.alive.get().saturating_sub(1);
        self.alive.set(left);
        if left == 0 {
            self.stop.expire();
            let mut inner = self.inner.borrow_mut();
            wake(&mut inner.driver);
            wake(&mut inner.writer);
        }
    }

    fn alive(&self) -> bool {
        self.alive.get() > 0
    }

    /// A new connection's codec: its preface goes to the writer, waiting lanes may start.
    fn open(&self) {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        inner.out.clear();
        inner.conn = Some(Connection::new(self.settings, &mut inner.out));
        wake(&mut inner.writer);
        wake_all(&mut inner.waiting);
    }

    /// The connection is gone: every open stream fails (`Truncated` unless the codec already
    /// said why), lanes waiting for a stream wait for the next connection.
    fn close(&self, shard: &ShardState) {
        let mut inner = self.inner.borrow_mut();
        if let Some(mut conn) = inner.conn.take() {
            conn.close_read();
            dispatch(&mut inner, &conn, &[], shard);
        }
        inner.out.clear();
        wake(&mut inner.writer);
        wake_all(&mut inner.waiting);
    }

    /// A connect failed: lanes waiting for a connection count it and go on.
    fn connect_failed(&self, kind: ErrorKind) {
        let mut inner = self.inner.borrow_mut();
        inner.connect_failures += 1;
        inner.connect_error = kind;
        wake_all(&mut inner.waiting);
    }

    /// Feeds what was read to the codec: `Ok(consumed)`, or `Err` once the connection failed
    /// (its streams have failed with the reason).
    fn receive(&self, input: &[u8], shard: &ShardState) -> Result<usize, ()> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let Some(mut conn) = inner.conn.take() else {
            return Err(());
        };
        let received = conn.receive(input, &mut inner.out);
        dispatch(inner, &conn, input, shard);
        if received.is_ok() && conn.wants_to_send() {
            let lanes = &inner.lanes;
            conn.send_data(&mut inner.out, |id| body_of(lanes, id));
        }
        let finished = conn.is_finished();
        inner.conn = Some(conn);
        if !inner.out.is_empty() {
            wake(&mut inner.writer);
        }
        match received {
            Ok(n) if !finished => Ok(n),
            _ => Err(()),
        }
    }
}

/// The request body of the lane whose stream is `id`.
fn body_of(lanes: &[LaneState], id: StreamId) -> &[u8] {
    lanes
        .iter()
        .find(|l| l.stream == Some(id))
        .and_then(|l| l.request.get(l.body_at..))
        .unwrap_or(&[])
}

/// Hands each event of the codec's last call to the lane it concerns.
fn dispatch(inner: &mut Inner, conn: &Connection, input: &[u8], shard: &ShardState) {
    let lanes = &mut inner.lanes;
    let lane = |lanes: &mut Vec<LaneState>, s: StreamId| -> Option<usize> {
        lanes.iter().position(|l| l.stream == Some(s))
    };
    for event in conn.events() {
        match event {
            Event::Head {
                stream,
                status,
                fields,
            } => {
                let Some(i) = lane(lanes, *stream) else {
                    continue;
                };
                let l = &mut lanes[i];
                l.status = *status;
                let sets_cookie = || {
                    conn.fields()
                        .iter(fields.clone())
                        .any(|(name, _)| name == b"set-cookie")
                };
                if l.needs_head || (l.cookies && sets_cookie()) {
                    // In HTTP/1.1 form: the inspector reads heads with httparse.
                    l.head.extend_from_slice(b"HTTP/1.1 ");
                    // The codec takes only 3-digit statuses (RFC 9110 §15).
                    let s = *status;
                    l.head.extend_from_slice(&[
                        b'0' + (s / 100 % 10) as u8,
                        b'0' + (s / 10 % 10) as u8,
                        b'0' + (s % 10) as u8,
                    ]);
                    l.head.extend_from_slice(b"\r\n");
                    for (name, value) in conn.fields().iter(fields.clone()) {
                        l.head.extend_from_slice(name);
                        l.head.extend_from_slice(b": ");
                        l.head.extend_from_slice(value);
                        l.head.extend_from_slice(b"\r\n");
                    }
                    l.head.extend_from_slice(b"\r\n");
                }
            }
            Event::Data { stream, data } => {
                let Some(i) = lane(lanes, *stream) else {
                    continue;
                };
                let l = &mut lanes[i];
                if l.needs_body {
                    let bytes = input.get(data.clone()).unwrap_or(&[]);
                    let room = MAX_INSPECTED_BODY.saturating_sub(l.body.len());
                    l.body.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
            }
            Event::Trailers { .. } | Event::PingAck { .. } | Event::Settings => {}
            Event::End { stream } => end(lanes, *stream, |l| Outcome::Done(l.status)),
            Event::Reset { stream, .. } => end(lanes, *stream, |_| {
                Outcome::Failed(ErrorKind::H2StreamReset)
            }),
            Event::Refused { stream } => end(lanes, *stream, |_| Outcome::Refused),
            Event::Failed { stream, error } => {
                let kind = error_kind(*error);
                end(lanes, *stream, |_| Outcome::Failed(kind));
            }
            Event::GoAway { code: c, .. } => {
                if *c != code::NO_ERROR {
                    shard.step(0).record_error(ErrorKind::H2Goaway);
                }
            }
        }
    }
    if !conn.events().is_empty() {
        wake_all(&mut inner.waiting);
    }
}

/// The stream's lane gets its outcome and is woken.
fn end(lanes: &mut [LaneState], stream: StreamId, outcome: impl Fn(&LaneState) -> Outcome) {
    if let Some(l) = lanes.iter_mut().find(|l| l.stream == Some(stream)) {
        l.outcome = Some(outcome(l));
        l.stream = None;
        wake(&mut l.waker);
    }
}

/// The codec's failures as the engine counts them.
fn error_kind(e: H2Error) -> ErrorKind {
    match e {
        H2Error::Protocol | H2Error::FrameSize | H2Error::Compression => ErrorKind::H2Protocol,
        H2Error::FlowControl => ErrorKind::H2FlowControl,
        H2Error::HeaderListTooLarge => ErrorKind::HeadTooLarge,
        H2Error::StreamReset => ErrorKind::H2StreamReset,
        H2Error::GoAway => ErrorKind::H2Goaway,
        H2Error::Truncated => ErrorKind::Reset,
    }
}

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

fn wake_all(waiting: &mut Vec<Waker>) {
    for w in waiting.drain(..) {
        w.wake();
    }
}
