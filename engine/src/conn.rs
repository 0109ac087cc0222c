//! One keep-alive connection driving the sans-io HTTP/1.1 codec over a monoio socket.
//!
//! A connection loops: take a permit (closed model: at once; open model: from the dispatcher),
//! connect if needed, write the pre-encoded request, read and decode the response, record.
//! Buffers are owned by the connection and passed to the kernel and back, so a request costs
//! no allocation. A server closing a reused keep-alive connection before answering is normal
//! (nginx does it every 1000 requests): the request is retried once on a fresh connection and
//! not counted as an error. Every other failure is counted by kind and the loop goes on.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::dispatch::Permit;
use crate::proto::http1::{ResponseDecoder, Step};
use crate::shard::ShardState;
use crate::ErrorKind;

/// Initial read buffer per connection; grows only for heads larger than this.
const READ_BUF: usize = 16 * 1024;
/// Closed model: pause after a failed connect so a down target is not hammered in a hot loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Per-connection deadline, checked by the shard's watchdog (no timer per request).
#[derive(Default)]
pub struct Slot {
    deadline_ns: Cell<u64>,
    expired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Slot {
    fn arm(&self, deadline_ns: u64) {
        self.expired.set(false);
        self.deadline_ns.set(deadline_ns);
    }

    fn disarm(&self) {
        self.deadline_ns.set(0);
        self.expired.set(false);
    }

    /// Called by the watchdog: expires the slot if its deadline has passed.
    pub fn check(&self, now_ns: u64) {
        let d = self.deadline_ns.get();
        if d != 0 && now_ns >= d && !self.expired.get() {
            self.expired.set(true);
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

/// Runs `fut` until it completes or the slot expires (then `None`; the future is dropped,
/// which cancels its io_uring operation).
struct Expiring<'a, F> {
    fut: Pin<&'a mut F>,
    slot: &'a Slot,
}

impl<F: Future> Future for Expiring<'_, F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if self.slot.expired.get() {
            return Poll::Ready(None);
        }
        let mut w = self.slot.waker.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Why an exchange did not produce a response.
enum Failure {
    /// A reused connection was closed by the server before any byte of the response.
    Stale,
    Kind(ErrorKind),
}

struct Conn {
    stream: Option<TcpStream>,
    /// Responses received on the current stream.
    served: u64,
    buf: Vec<u8>,
    request: Vec<u8>,
    decoder: ResponseDecoder,
}

/// The connection task: runs until its permits stop.
pub(crate) async fn run(shard: Rc<ShardState>, id: usize, stream: Option<TcpStream>) {
    let mut conn = Conn {
        stream,
        served: 0,
        buf: Vec::with_capacity(READ_BUF),
        request: shard.plan.request.clone(),
        decoder: ResponseDecoder::new(),
    };
    while let Permit::Go(intended) = shard.permit(id).await {
        conn.exchange(&shard, id, intended).await;
    }
    conn.close(&shard);
    shard.conn_finished();
}

/// Opens a connection with the plan's connect timeout.
pub(crate) async fn connect(shard: &ShardState) -> Result<TcpStream, ErrorKind> {
    let attempt = TcpStream::connect_addr(shard.plan.addr);
    match monoio::time::timeout(shard.plan.connect_timeout, attempt).await {
        Ok(Ok(stream)) => {
            // Without NODELAY a small request can sit in Nagle's buffer for tens of ms.
            let _ = stream.set_nodelay(true);
            shard.stats.borrow_mut().steps[0].connects += 1;
            shard.active.set(shard.active.get() + 1);
            Ok(stream)
        }
        Ok(Err(_)) | Err(_) => Err(ErrorKind::Connect),
    }
}

fn read_error_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => ErrorKind::Reset,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Read,
    }
}

impl Conn {
    fn close(&mut self, shard: &ShardState) {
        if self.stream.take().is_some() {
            shard.active.set(shard.active.get().saturating_sub(1));
        }
        self.served = 0;
        self.buf.clear();
    }

    async fn exchange(&mut self, shard: &ShardState, id: usize, intended: Option<u64>) {
        let mut sent_ns = None;
        for _attempt in 0..2 {
            if self.stream.is_none() {
                match connect(shard).await {
                    Ok(s) => self.stream = Some(s),
                    Err(kind) => {
                        shard.stats.borrow_mut().steps[0].record_error(kind);
                        if intended.is_none() {
                            monoio::time::sleep(CONNECT_BACKOFF).await;
                        }
                        return;
                    }
                }
            }
            // A retry keeps the first send time: the user waited for the reconnect too.
            let sent = *sent_ns.get_or_insert_with(|| {
                let now = shard.now_ns();
                if let Some(i) = intended {
                    shard.stats.borrow_mut().steps[0].record_send_lag(i, now);
                }
                now
            });
            let slot = &shard.slots[id];
            slot.arm(sent + shard.timeout_ns);
            let outcome = self.send_and_receive(shard, slot).await;
            slot.disarm();
            match outcome {
                Ok((status, keep_alive)) => {
                    let done = shard.now_ns();
                    shard.stats.borrow_mut().steps[0].record_response(status, intended, sent, done);
                    self.served += 1;
                    if !keep_alive {
                        self.close(shard);
                    }
                    return;
                }
                Err(Failure::Stale) => {
                    self.close(shard);
                }
                Err(Failure::Kind(kind)) => {
                    shard.stats.borrow_mut().steps[0].record_error(kind);
                    self.close(shard);
                    return;
                }
            }
        }
        // Second attempt also found the connection closed: that is a real reset.
        shard.stats.borrow_mut().steps[0].record_error(ErrorKind::Reset);
    }

    /// Writes the request and reads one response: `(status, keep_alive)`.
    async fn send_and_receive(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
    ) -> Result<(u16, bool), Failure> {
        let reused = self.served > 0;
        let stale_or = |kind: ErrorKind| {
            if reused && kind == ErrorKind::Reset {
                Failure::Stale
            } else {
                Failure::Kind(kind)
            }
        };
        // Disjoint borrows: the socket is borrowed by each in-flight operation.
        let Conn {
            stream,
            buf,
            request,
            decoder,
            ..
        } = self;
        let Some(stream) = stream.as_mut() else {
            return Err(Failure::Kind(ErrorKind::Connect));
        };

        {
            let write = pin!(stream.write_all(std::mem::take(request)));
            let Some((res, written)) = (Expiring { fut: write, slot }).await else {
                // The buffer went down with the cancelled write; rebuild it (rare path).
                *request = shard.plan.request.clone();
                return Err(Failure::Kind(ErrorKind::Timeout));
            };
            *request = written;
            match res {
                Ok(n) => shard.stats.borrow_mut().steps[0].bytes_out += n as u64,
                Err(e) => {
                    let kind = match read_error_kind(&e) {
                        ErrorKind::Reset => ErrorKind::Reset,
                        _ => ErrorKind::Write,
                    };
                    return Err(stale_or(kind));
                }
            }
        }

        decoder.reset(shard.plan.head_request);
        loop {
            if !buf.is_empty() {
                match decoder.decode(buf) {
                    Ok(Step::Complete { consumed, .. }) => {
                        buf.drain(..consumed);
                        return Ok(finished_head(decoder));
                    }
                    Ok(Step::Partial { consumed, .. }) => {
                        buf.drain(..consumed);
                        // The decoder stops at each chunk boundary: decode the rest before reading.
                        if consumed > 0 && !buf.is_empty() {
                            continue;
                        }
                    }
                    Err(kind) => return Err(Failure::Kind(kind)),
                }
            }
            if buf.len() == buf.capacity() {
                // A head larger than the buffer: grow; the decoder bounds it (HeadTooLarge).
                buf.reserve(buf.capacity().max(READ_BUF));
            }
            let owned = std::mem::take(buf);
            let (len, cap) = (owned.len(), owned.capacity());
            let read = pin!(stream.read(owned.slice_mut(len..cap)));
            let Some((res, slice)) = (Expiring { fut: read, slot }).await else {
                *buf = Vec::with_capacity(READ_BUF);
                return Err(Failure::Kind(ErrorKind::Timeout));
            };
            *buf = slice.into_inner();
            match res {
                Ok(0) => {
                    if !decoder.in_progress() && buf.is_empty() {
                        return Err(stale_or(ErrorKind::Reset));
                    }
                    return match decoder.finish_eof() {
                        Ok(()) => Ok((finished_head(decoder).0, false)),
                        Err(kind) => Err(Failure::Kind(kind)),
                    };
                }
                Ok(n) => shard.stats.borrow_mut().steps[0].bytes_in += n as u64,
                Err(e) => {
                    let kind = read_error_kind(&e);
                    if decoder.in_progress() || !buf.is_empty() {
                        return Err(Failure::Kind(kind));
                    }
                    return Err(stale_or(kind));
                }
            }
        }
    }
}

/// `(status, keep_alive)` of the response the decoder just completed.
fn finished_head(decoder: &ResponseDecoder) -> (u16, bool) {
    match decoder.head() {
        // 101 switches protocols: this connection is no longer HTTP/1.1 for us.
        Some(h) => (h.status, h.keep_alive && h.status != 101),
        None => (0, false),
    }
}
