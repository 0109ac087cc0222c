//! One keep-alive connection driving the sans-io HTTP/1.1 codec over a monoio socket.
//!
//! A connection loops: take a permit (closed model: at once; open model: from the dispatcher),
//! connect if needed, write the pre-encoded request, read and decode the response, record.
//! Buffers are owned by the connection and passed to the kernel and back, so a request costs
//! no allocation. A server closing a reused keep-alive connection before answering is normal
//! (nginx does it every 1000 requests): the request is retried once on a fresh connection and
//! not counted as an error. Every other failure is counted by kind and the loop goes on.

mod client;

use std::ops::Range;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

use crate::client::cookies::Jar;
use crate::metrics::ErrorKind;
use crate::net::tls::Stream;
use crate::plan::journey::{StepPlan, Think};
use crate::plan::template::{RenderContext, RenderError};
use crate::proto::http1::{DecodeError, ResponseDecoder, Step};
use crate::shard::conn::deadline::{Expiring, Slot};
use crate::shard::conn::h2::{self, H2Conn};
use crate::shard::conn::socket::{connect, read_error_kind};
use crate::shard::conn::ws_steps::{Socket, User};
use crate::shard::conn::{wall_ms, Answer};
use crate::shard::state::{Permit, ShardState};

/// Read buffer of a connection waiting for a response, taken from the shard's pool and given
/// back when the response is complete; grows only for heads larger than this.
const READ_BUF: usize = 16 * 1024;
/// The kept head and body shrink back to this after a larger response was inspected, so a
/// connection holds a large body only while its step reads it.
const KEPT_STEADY: usize = 64 * 1024;
/// Closed model: pause after a failed connect so a down target is not hammered in a hot loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

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
    /// HTTP/2: the shared connection and this user's lane on it (`stream` is then unused).
    h2: Option<(Rc<H2Conn>, usize)>,
    /// The user's cookies, from the first `Set-Cookie` on (journeys with `cookies` on).
    jar: Option<Box<Jar>>,
    /// The request in `request` carries a `Cookie` header the jar added.
    jar_added: bool,
    /// The user's WebSocket, from its first `ws_connect` step on.
    ws: Option<Box<Socket>>,
}

/// The connection task: runs until its permits stop. `h2`: the user is lane `.1` of a shared
/// HTTP/2 connection instead of having a connection of its own.
pub(crate) async fn run(
    shard: Rc<ShardState>,
    id: usize,
    stream: Option<Stream>,
    h2: Option<(Rc<H2Conn>, usize)>,
) {
    let mut conn = Conn {
        stream,
        fresh: false,
        buf: Vec::new(),
        request: Vec::new(),
        encoded: None,
        scratch: Vec::new(),
        decoder: ResponseDecoder::new(),
        head: Vec::new(),
        body: Vec::new(),
        vu: shard.vu(id),
        iteration: 0,
        vars: vec![Vec::new(); shard.group.journey.vars.len()],
        rng: fastrand::Rng::new(),
        task: None,
        setup_done: false,
        h2,
        jar: None,
        jar_added: false,
        ws: None,
    };
    while let Permit::Go(intended) = shard.permit(id).await {
        conn.iterate(&shard, id, intended).await;
    }
    conn.close(&shard);
    if let Some((h2, _)) = &conn.h2 {
        h2.lane_finished();
    }
    shard.conn_finished();
}

impl Conn {
    fn close(&mut self, shard: &ShardState) {
        if let Some(ws) = self.ws.as_mut() {
            ws.drop_stream(shard);
        }
        if self.stream.take().is_some() {
            shard.conn_closed();
        }
        self.buf.clear();
        shard.give_read_buffer(&mut self.buf, READ_BUF);
    }

    /// After a large response: the kept head and body give back their room (they are read
    /// only until the step's checks and captures are done).
    fn shrink_kept(&mut self) {
        for kept in [&mut self.head, &mut self.body] {
            if kept.capacity() > KEPT_STEADY {
                kept.clear();
                kept.shrink_to(KEPT_STEADY);
            }
        }
    }

    /// One journey iteration: every step in order until one fails.
    async fn iterate(&mut self, shard: &ShardState, id: usize, intended: Option<u64>) {
        // Like latency: from the intended start, or from the actual one if that came first.
        let now = shard.now_ns();
        let start = intended.map_or(now, |i| i.min(now));
        let steps = &shard.group.journey.steps;
        let open = intended.is_some();
        let mut failed = false;
        match self.bind_vars(shard) {
            // A unique feeder ran out: the run is stopping; this iteration never starts.
            Ok(false) => return,
            Ok(true) => {}
            Err(()) => {
                let first = self.pick_task(shard).start;
                shard.step(first).record_error(ErrorKind::Template);
                self.iteration += 1;
                shard.record_iteration(start, shard.now_ns(), true);
                return;
            }
        }
        let range = self.pick_task(shard);
        // The `once` steps before any task run until they have succeeded for this user.
        let prelude = if self.setup_done {
            0..0
        } else {
            shard.group.journey.prelude.clone()
        };
        // `once` steps (a login) run until they have all succeeded for this user.
        let last_once = prelude
            .clone()
            .chain(range.clone())
            .rev()
            .find(|&i| steps[i].once);
        let mut first = true;
        // When the last response came, unless a pause followed it: the iteration's end.
        let mut last_done = None;
        for i in prelude.chain(range.clone()) {
            let step = &steps[i];
            if step.once && self.setup_done {
                continue;
            }
            // Only the first step has a scheduled start; later ones start when the user gets there.
            // Its send time is the iteration's start (taken above), not another clock read.
            let (step_intended, sent_hint) = if first {
                (intended, Some(now))
            } else {
                (None, None)
            };
            first = false;
            if let Some(action) = step.ws.as_deref() {
                let user = User {
                    vu: self.vu,
                    iteration: self.iteration,
                    vars: &mut self.vars,
                    rng: &mut self.rng,
                };
                let socket = self.ws.get_or_insert_with(Box::default);
                last_done = socket
                    .run_step(shard, id, i, step, action, step_intended, user)
                    .await;
                if last_done.is_none() {
                    failed = true;
                    break;
                }
            } else {
                if self.encode(shard, i, step).is_err() {
                    shard.step(i).record_error(ErrorKind::Template);
                    failed = true;
                    break;
                }
                let outcome = self
                    .step_exchange(shard, id, i, step, step_intended, sent_hint)
                    .await;
                last_done = outcome.map(|(_, _, done_ns)| done_ns);
                let Some((status, latency_ns, _)) = outcome else {
                    self.shrink_kept();
                    failed = true;
                    break;
                };
                let inspects = !(step.captures.is_empty() && step.checks.is_empty());
                let passed = !inspects || self.inspect_response(shard, i, step, status, latency_ns);
                self.shrink_kept();
                if !passed {
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
                self.think(shard, id, step.think).await;
            }
            if shard.interrupted() {
                break;
            }
        }
        self.iteration += 1;
        let done = last_done.unwrap_or_else(|| shard.now_ns());
        // A socket lives for one iteration: closed (cleanly) after it, outside its duration.
        if let Some(ws) = self.ws.as_mut().filter(|w| w.is_open()) {
            // Boxed: a closing handshake's state would otherwise sit in every user's task.
            Box::pin(ws.finish(shard, id, &mut self.rng)).await;
        }
        if shard.interrupted() {
            shard.record_interrupted();
            return;
        }
        shard.record_iteration(start, done, failed);
    }

    /// The iteration's variables: each feeder's next row, then the per-iteration templates.
    /// `Ok(false)` when a unique feeder ran out, `Err` when a `[vars]` template failed.
    fn bind_vars(&mut self, shard: &ShardState) -> Result<bool, ()> {
        for (f, feeder) in shard.group.journey.feeders.iter().enumerate() {
            let Some(row) = shard.next_row(f, &mut self.rng) else {
                return Ok(false);
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
            let rendered = template.render(
                &mut RenderContext {
                    vu: self.vu,
                    iteration: self.iteration,
                    vars: &self.vars,
                    rng: &mut self.rng,
                    now_ms: wall_ms(),
                    run: &shard.group.journey.run,
                    body: &[],
                },
                &mut self.scratch,
            );
            if rendered.is_err() {
                return Err(());
            }
            if let Some(v) = self.vars.get_mut(*slot) {
                v.clear();
                v.extend_from_slice(&self.scratch);
            }
        }
        Ok(true)
    }

    /// The steps of the task this iteration runs (with `task_choice = "vu"`, the user's own).
    fn pick_task(&mut self, shard: &ShardState) -> Range<usize> {
        let journey = &shard.group.journey;
        let task = if journey.task_per_vu {
            *self
                .task
                .get_or_insert_with(|| journey.pick_task(&mut self.rng))
        } else {
            journey.pick_task(&mut self.rng)
        };
        journey.tasks.get(task).map_or(0..0, |t| t.steps.clone())
    }

    /// Puts step `i`'s request in `request`. A static request already there is sent as is;
    /// only templated ones are rendered (and only they may need the wall clock).
    fn encode(&mut self, shard: &ShardState, i: usize, step: &StepPlan) -> Result<(), RenderError> {
        // A user with cookies gets them added to a fresh copy every time.
        if step.request.is_static() && self.encoded == Some(i) && self.jar.is_none() {
            return Ok(());
        }
        let now_ms = if step.request.is_static() {
            0
        } else {
            wall_ms()
        };
        let encoded = step.request.encode(
            &mut RenderContext {
                vu: self.vu,
                iteration: self.iteration,
                vars: &self.vars,
                rng: &mut self.rng,
                now_ms,
                run: &shard.group.journey.run,
                body: &[],
            },
            &mut self.request,
            &mut self.scratch,
        );
        // A failed render leaves part of a request: never reuse it.
        self.encoded = (encoded.is_ok() && step.request.is_static()).then_some(i);
        if encoded.is_ok() {
            self.add_cookies();
        }
        encoded
    }

    /// A pause between steps, on the watchdog's slot so an interrupted run does not wait it out.
    async fn think(&mut self, shard: &ShardState, id: usize, think: Think) {
        let pause = think.sample_ns(&mut self.rng);
        let slot = shard.slot(id);
        slot.arm(shard.now_ns() + pause + 1);
        let sleep = pin!(monoio::time::sleep(Duration::from_nanos(pause)));
        let _ = (Expiring { fut: sleep, slot }).await;
        slot.disarm();
    }

    /// One request of step `index`, not yet recorded (a redirect hop is not the step's
    /// response), or `None` after a counted failure. `sent_hint`: a clock reading taken just
    /// before, used as the send time unless a connect comes first.
    async fn exchange(
        &mut self,
        shard: &ShardState,
        id: usize,
        index: usize,
        step: &StepPlan,
        intended: Option<u64>,
        mut sent_hint: Option<u64>,
    ) -> Option<Answer> {
        if let Some((conn, lane)) = &self.h2 {
            let bufs = h2::Buffers {
                request: &mut self.request,
                head: &mut self.head,
                body: &mut self.body,
            };
            return h2::exchange(
                conn, *lane, shard, id, index, step, intended, sent_hint, bufs,
            )
            .await;
        }
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
            let slot = shard.slot(id);
            slot.arm(sent + step.timeout_ns.unwrap_or(shard.timeout_ns));
            let outcome = self.send_and_receive(shard, slot, step).await;
            slot.disarm();
            match outcome {
                Ok((status, keep_alive)) => {
                    let done = shard.now_ns();
                    self.fresh = false;
                    if !keep_alive {
                        self.close(shard);
                    }
                    return Some(Answer { status, sent, done });
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
        self.head.clear();
        self.body.clear();
        self.write_request(shard, slot)
            .await
            .map_err(|kind| stale_or(reused, kind))?;
        self.read_response(shard, slot, step, reused).await
    }

    /// Sends `request`; the buffer comes back for reuse. `Err` with a kind a stale connection
    /// may explain (a reset) or not.
    async fn write_request(&mut self, shard: &ShardState, slot: &Slot) -> Result<(), ErrorKind> {
        // Disjoint borrows: the socket is borrowed by the in-flight operation.
        let Conn {
            stream,
            request,
            encoded,
            ..
        } = self;
        let Some(stream) = stream.as_mut() else {
            return Err(ErrorKind::Connect);
        };
        let write = pin!(stream.write_all(std::mem::take(request)));
        let Some((res, written)) = (Expiring { fut: write, slot }).await else {
            // The buffer went down with the cancelled write (rare); the next request
            // re-encodes into a new one.
            *encoded = None;
            return Err(ErrorKind::Timeout);
        };
        *request = written;
        match res {
            Ok(n) => {
                shard.step(0).bytes_out += n as u64;
                Ok(())
            }
            Err(e) => Err(match read_error_kind(&e) {
                ErrorKind::Reset => ErrorKind::Reset,
                _ => ErrorKind::Write,
            }),
        }
    }

    /// Reads and decodes one response: `(status, keep_alive)`. `reused`: the connection served
    /// an earlier request, so a close before any response byte is `Stale`.
    async fn read_response(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        step: &StepPlan,
        reused: bool,
    ) -> Result<(u16, bool), Failure> {
        // Disjoint borrows: the socket is borrowed by each in-flight operation.
        let Conn {
            stream,
            buf,
            decoder,
            head,
            body,
            ..
        } = self;
        let Some(stream) = stream.as_mut() else {
            return Err(Failure::Kind(ErrorKind::Connect));
        };
        decoder.reset(step.head_request);
        let cookies = shard.group.journey.cookies;
        let max_body = shard.plan().limits.max_body;
        loop {
            if !buf.is_empty() {
                match decode(step, cookies, max_body, decoder, buf, head, body) {
                    Ok(Step::Complete { consumed, .. }) => {
                        buf.drain(..consumed);
                        shard.give_read_buffer(buf, READ_BUF);
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
                *buf = shard.take_read_buffer(READ_BUF);
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
                        return Err(stale_or(reused, ErrorKind::Reset));
                    }
                    return match decoder.finish_eof() {
                        Ok(()) => Ok((finished_head(decoder).0, false)),
                        Err(e) => Err(Failure::Kind(e.into())),
                    };
                }
                Ok(n) => shard.step(0).bytes_in += n as u64,
                Err(e) => {
                    let kind = read_error_kind(&e);
                    if decoder.in_progress() || !buf.is_empty() {
                        return Err(Failure::Kind(kind));
                    }
                    return Err(stale_or(reused, kind));
                }
            }
        }
    }
}

/// A reset on a reused connection may only mean the server closed it while idle: `Stale`.
fn stale_or(reused: bool, kind: ErrorKind) -> Failure {
    if reused && kind == ErrorKind::Reset {
        Failure::Stale
    } else {
        Failure::Kind(kind)
    }
}

/// Decodes what `buf` holds, keeping the head and the body for a step that inspects them; the
/// head also for a cookie jar when it sets a cookie. A kept body past `max_body` is
/// `body_too_large` (the connection is then closed); one nobody reads is never kept.
fn decode(
    step: &StepPlan,
    cookies: bool,
    max_body: usize,
    decoder: &mut ResponseDecoder,
    buf: &[u8],
    head: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> Result<Step, ErrorKind> {
    let had_head = decoder.head().is_some();
    let decoded = decoder.decode(buf).map_err(ErrorKind::from)?;
    if !had_head {
        if let Some(h) = decoder
            .head()
            .filter(|h| step.keeps_head() || (cookies && h.set_cookie))
        {
            head.extend_from_slice(&buf[..h.head_len.min(buf.len())]);
        }
    }
    if step.needs_body {
        let (Step::Partial { body: r, .. } | Step::Complete { body: r, .. }) = &decoded;
        if body.len() + r.len() > max_body {
            return Err(ErrorKind::BodyTooLarge);
        }
        body.extend_from_slice(&buf[r.clone()]);
    }
    Ok(decoded)
}

/// `(status, keep_alive)` of the response the decoder just completed.
fn finished_head(decoder: &ResponseDecoder) -> (u16, bool) {
    match decoder.head() {
        // 101 switches protocols: this connection is no longer HTTP/1.1 for us.
        Some(h) => (h.status, h.keep_alive && h.status != 101),
        None => (0, false),
    }
}

/// The codec's failures as the engine counts them.
impl From<DecodeError> for ErrorKind {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Parse => ErrorKind::Parse,
            DecodeError::HeadTooLarge => ErrorKind::HeadTooLarge,
            DecodeError::TooManyHeaders => ErrorKind::TooManyHeaders,
            DecodeError::BadFraming => ErrorKind::BadFraming,
            DecodeError::Truncated => ErrorKind::Reset,
            DecodeError::Incomplete => ErrorKind::Incomplete,
        }
    }
}
