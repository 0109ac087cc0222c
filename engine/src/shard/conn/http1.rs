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

use crate::net::tls::Stream;

use crate::metrics::ErrorKind;
use crate::plan::journey::{StepPlan, Think, MAX_INSPECTED_BODY};
use crate::plan::template::RenderContext;
use crate::proto::http1::{ResponseDecoder, Step};
use crate::shard::conn::inspect::{inspect, Response};
use crate::shard::dispatch::Permit;
use crate::shard::ShardState;

/// Read buffer of a connection waiting for a response, taken from the shard's pool and given
/// back when the response is complete; grows only for heads larger than this.
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
    pub(crate) fn arm(&self, deadline_ns: u64) {
        self.expired.set(false);
        self.deadline_ns.set(deadline_ns);
    }

    pub(crate) fn disarm(&self) {
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
pub(crate) struct Expiring<'a, F> {
    pub fut: Pin<&'a mut F>,
    pub slot: &'a Slot,
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

/// A connection and the virtual user driving it: one journey iteration per permit.
struct Conn {
    stream: Option<Stream>,
    /// The stream was opened for the request in progress. One that was not (kept alive, or
    /// opened up front and idle since) may have been closed by the server meanwhile: a reset
    /// before any response byte is then retried on a new connection, not counted.
    fresh: bool,
    buf: Vec<u8>,
    request: Vec<u8>,
    /// The static step whose bytes `request` holds, so they are not copied again.
    encoded: Option<usize>,
    /// A templated body while its length is measured.
    scratch: Vec<u8>,
    decoder: ResponseDecoder,
    /// The last response's head and body, kept only for steps that inspect them.
    head: Vec<u8>,
    body: Vec<u8>,
    /// Virtual user: its number (from 1), iterations done, captured variables, randomness.
    vu: u64,
    iteration: u64,
    vars: Vec<Vec<u8>>,
    rng: fastrand::Rng,
    /// With `task_choice = "vu"`: the task this user drew once.
    task: Option<usize>,
    /// Every `once` step has succeeded for this user.
    setup_done: bool,
}

/// The connection task: runs until its permits stop.
pub(crate) async fn run(shard: Rc<ShardState>, id: usize, stream: Option<Stream>) {
    let mut conn = Conn {
        stream,
        fresh: false,
        buf: Vec::new(),
        request: Vec::with_capacity(512),
        encoded: None,
        scratch: Vec::new(),
        decoder: ResponseDecoder::new(),
        head: Vec::new(),
        body: Vec::new(),
        vu: (id * shard.shard_count() + shard.shard_index() + 1) as u64,
        iteration: 0,
        vars: vec![Vec::new(); shard.group.journey.vars.len()],
        rng: fastrand::Rng::new(),
        task: None,
        setup_done: false,
    };
    while let Permit::Go(intended) = shard.permit(id).await {
        conn.iterate(&shard, id, intended).await;
    }
    conn.close(&shard);
    shard.conn_finished();
}

/// Opens a connection (and its TLS session for `https://`) within the plan's connect timeout.
pub(crate) async fn connect(shard: &ShardState) -> Result<Stream, ErrorKind> {
    let plan = &shard.shared.plan;
    let opened = monoio::time::timeout(plan.connect_timeout, open(shard)).await;
    match opened {
        Ok(Ok(stream)) => {
            shard.step(0).connects += 1;
            shard.conn_opened();
            Ok(stream)
        }
        Ok(Err(kind)) => Err(kind),
        Err(_) => Err(ErrorKind::Connect),
    }
}

async fn open(shard: &ShardState) -> Result<Stream, ErrorKind> {
    let plan = &shard.shared.plan;
    let tcp = if plan.local_ips.is_empty() {
        TcpStream::connect_addr(plan.addr).await
    } else {
        // Rotate over the shard's connects: every address gets its share of the ports.
        let n = shard.shared.connects.get();
        shard.shared.connects.set(n.wrapping_add(1));
        let from = plan.local_ips[(n * plan.shards + plan.index) % plan.local_ips.len()];
        crate::net::source::connect_from(from, plan.addr).await
    }
    .map_err(|_| ErrorKind::Connect)?;
    // Without NODELAY a small request can sit in Nagle's buffer for tens of ms.
    let _ = tcp.set_nodelay(true);
    let Some((config, name)) = &shard.shared.tls else {
        return Ok(Stream::Plain(tcp));
    };
    let began = std::time::Instant::now();
    match crate::net::tls::connect(tcp, config, name).await {
        Ok(tls) => {
            let took = began.elapsed().as_nanos() as u64;
            shard
                .shared
                .stats
                .borrow_mut()
                .record_handshake(took, tls.resumed());
            Ok(Stream::from(tls))
        }
        Err(e) => Err(ErrorKind::of_tls(&e).unwrap_or(ErrorKind::Connect)),
    }
}

pub(crate) fn read_error_kind(e: &io::Error) -> ErrorKind {
    // A TLS alert can arrive on the first read (TLS 1.3: a server refusing our certificate).
    if let Some(kind) = crate::net::tls::tls_error(e).and_then(ErrorKind::of_tls) {
        return kind;
    }
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
            shard.conn_closed();
        }
        self.buf.clear();
        shard.shared.give_read_buffer(&mut self.buf, READ_BUF);
    }

    /// One journey iteration: every step in order until one fails.
    async fn iterate(&mut self, shard: &ShardState, id: usize, intended: Option<u64>) {
        // Like latency: from the intended start, or from the actual one if that came first.
        let now = shard.now_ns();
        let start = intended.map_or(now, |i| i.min(now));
        let steps = &shard.group.journey.steps;
        let open = intended.is_some();
        let mut failed = false;
        let now_ms = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        for (f, feeder) in shard.group.journey.feeders.iter().enumerate() {
            let Some(row) = shard.next_row(f, &mut self.rng) else {
                // A unique feeder ran out: the run is stopping; this iteration never starts.
                return;
            };
            for (slot, cell) in feeder.slots.iter().zip(&feeder.rows[row]) {
                if let Some(v) = self.vars.get_mut(*slot) {
                    v.clear();
                    v.extend_from_slice(cell);
                }
            }
        }
        for (slot, template) in &shard.group.journey.iteration_vars {
            self.scratch.clear();
            template.render(
                &mut RenderContext {
                    vu: self.vu,
                    iteration: self.iteration,
                    vars: &self.vars,
                    rng: &mut self.rng,
                    now_ms: now_ms(),
                },
                &mut self.scratch,
            );
            if let Some(v) = self.vars.get_mut(*slot) {
                v.clear();
                v.extend_from_slice(&self.scratch);
            }
        }
        let journey = &shard.group.journey;
        let task = if journey.task_per_vu {
            *self
                .task
                .get_or_insert_with(|| journey.pick_task(&mut self.rng))
        } else {
            journey.pick_task(&mut self.rng)
        };
        let range = journey.tasks.get(task).map_or(0..0, |t| t.steps.clone());
        // `once` steps (a login) run until they have all succeeded for this user.
        let last_once = range.clone().rev().find(|&i| steps[i].once);
        let mut first = true;
        // When the last response came, unless a pause followed it: the iteration's end.
        let mut last_done = None;
        for i in range.clone() {
            let step = &steps[i];
            if step.once && self.setup_done {
                continue;
            }
            // A static request already in the buffer is sent as is; only templated ones are
            // rendered (and only they may need the wall clock).
            if !(step.request.is_static() && self.encoded == Some(i)) {
                let now_ms = if step.request.is_static() {
                    0
                } else {
                    now_ms()
                };
                step.request.encode(
                    &mut RenderContext {
                        vu: self.vu,
                        iteration: self.iteration,
                        vars: &self.vars,
                        rng: &mut self.rng,
                        now_ms,
                    },
                    &mut self.request,
                    &mut self.scratch,
                );
                self.encoded = step.request.is_static().then_some(i);
            }
            // Only the first step has a scheduled start; later ones start when the user gets there.
            // Its send time is the iteration's start (taken above), not another clock read.
            let (step_intended, sent_hint) = if first {
                (intended, Some(now))
            } else {
                (None, None)
            };
            first = false;
            let outcome = self
                .exchange(shard, id, i, step, step_intended, sent_hint)
                .await;
            last_done = outcome.map(|(_, _, done_ns)| done_ns);
            let Some((status, latency_ns, _)) = outcome else {
                failed = true;
                break;
            };
            if !(step.captures.is_empty() && step.checks.is_empty()) {
                let seen = Response {
                    status,
                    head: &self.head,
                    body: &self.body,
                    latency_ns,
                };
                if !inspect(step, &seen, &mut self.vars, &mut shard.step(i)) {
                    failed = true;
                    break;
                }
            }
            if last_once == Some(i) {
                self.setup_done = true;
            }
            // Think between steps; after the last one only in the closed model (arrivals pace
            // the open model).
            if step.think != Think::None && (i + 1 < range.end || !open) {
                last_done = None;
                let pause = step.think.sample_ns(&mut self.rng);
                // On the watchdog's slot, so an interrupted run does not wait out the pause.
                let slot = &shard.slots[id];
                slot.arm(shard.now_ns() + pause + 1);
                let sleep = pin!(monoio::time::sleep(Duration::from_nanos(pause)));
                let _ = (Expiring { fut: sleep, slot }).await;
                slot.disarm();
            }
            if shard.interrupted() {
                break;
            }
        }
        self.iteration += 1;
        if shard.interrupted() {
            shard.record_interrupted();
            return;
        }
        let done = last_done.unwrap_or_else(|| shard.now_ns());
        shard.record_iteration(start, done, failed);
    }

    /// One request of step `index`: `(status, latency, done)` or `None` after a counted failure.
    /// `sent_hint`: a clock reading taken just before, used as the send time unless a connect
    /// comes first.
    async fn exchange(
        &mut self,
        shard: &ShardState,
        id: usize,
        index: usize,
        step: &StepPlan,
        intended: Option<u64>,
        mut sent_hint: Option<u64>,
    ) -> Option<(u16, u64, u64)> {
        let mut sent_ns = None;
        for _attempt in 0..2 {
            if self.stream.is_none() {
                sent_hint = None;
                // Boxed: a TLS handshake's state is large, and an idle connection's task
                // should not carry its room (a reconnect allocates anyway).
                match Box::pin(connect(shard)).await {
                    Ok(s) => {
                        self.stream = Some(s);
                        self.fresh = true;
                    }
                    Err(kind) => {
                        shard.step(index).record_error(kind);
                        if intended.is_none() {
                            monoio::time::sleep(CONNECT_BACKOFF).await;
                        }
                        return None;
                    }
                }
            }
            // A retry keeps the first send time: the user waited for the reconnect too.
            let sent = *sent_ns.get_or_insert_with(|| {
                let now = sent_hint.unwrap_or_else(|| shard.now_ns());
                if let Some(i) = intended {
                    shard.step(0).record_send_lag(i, now);
                }
                now
            });
            let slot = &shard.slots[id];
            slot.arm(sent + shard.timeout_ns);
            let outcome = self.send_and_receive(shard, slot, step).await;
            slot.disarm();
            match outcome {
                Ok((status, keep_alive)) => {
                    let done = shard.now_ns();
                    let latency_ns = shard
                        .step(index)
                        .record_response(status, intended, sent, done);
                    self.fresh = false;
                    if !keep_alive {
                        self.close(shard);
                    }
                    return Some((status, latency_ns, done));
                }
                Err(Failure::Stale) => {
                    self.close(shard);
                }
                Err(Failure::Kind(kind)) => {
                    if !shard.interrupted() {
                        shard.step(index).record_error(kind);
                    }
                    self.close(shard);
                    return None;
                }
            }
        }
        // Second attempt also found the connection closed: that is a real reset.
        shard.step(index).record_error(ErrorKind::Reset);
        None
    }

    /// Writes the request and reads one response: `(status, keep_alive)`.
    async fn send_and_receive(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        step: &StepPlan,
    ) -> Result<(u16, bool), Failure> {
        let reused = !self.fresh;
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
            encoded,
            decoder,
            head,
            body,
            ..
        } = self;
        head.clear();
        body.clear();
        let Some(stream) = stream.as_mut() else {
            return Err(Failure::Kind(ErrorKind::Connect));
        };

        {
            let write = pin!(stream.write_all(std::mem::take(request)));
            let Some((res, written)) = (Expiring { fut: write, slot }).await else {
                // The buffer went down with the cancelled write (rare); the next request
                // re-encodes into a new one.
                *encoded = None;
                return Err(Failure::Kind(ErrorKind::Timeout));
            };
            *request = written;
            match res {
                Ok(n) => shard.step(0).bytes_out += n as u64,
                Err(e) => {
                    let kind = match read_error_kind(&e) {
                        ErrorKind::Reset => ErrorKind::Reset,
                        _ => ErrorKind::Write,
                    };
                    return Err(stale_or(kind));
                }
            }
        }

        decoder.reset(step.head_request);
        loop {
            if !buf.is_empty() {
                let had_head = decoder.head().is_some();
                let decoded = decoder.decode(buf);
                if step.needs_head && !had_head {
                    if let Some(h) = decoder.head() {
                        head.extend_from_slice(&buf[..h.head_len.min(buf.len())]);
                    }
                }
                if step.needs_body {
                    if let Ok(Step::Partial { body: r, .. } | Step::Complete { body: r, .. }) =
                        &decoded
                    {
                        let room = MAX_INSPECTED_BODY.saturating_sub(body.len());
                        let end = r.end.min(r.start + room);
                        body.extend_from_slice(&buf[r.start..end]);
                    }
                }
                match decoded {
                    Ok(Step::Complete { consumed, .. }) => {
                        buf.drain(..consumed);
                        shard.shared.give_read_buffer(buf, READ_BUF);
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
            if buf.capacity() == 0 {
                *buf = shard.shared.take_read_buffer(READ_BUF);
            } else if buf.len() == buf.capacity() {
                // A head larger than the buffer: grow; the decoder bounds it (HeadTooLarge).
                buf.reserve(buf.capacity().max(READ_BUF));
            }
            let owned = std::mem::take(buf);
            let (len, cap) = (owned.len(), owned.capacity());
            let read = pin!(stream.read(owned.slice_mut(len..cap)));
            let Some((res, slice)) = (Expiring { fut: read, slot }).await else {
                // The buffer went down with the cancelled read; the next read takes another.
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
                Ok(n) => shard.step(0).bytes_in += n as u64,
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
