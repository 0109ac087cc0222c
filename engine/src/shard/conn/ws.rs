//! One WebSocket virtual user: connect (TCP, TLS for wss://, upgrade), then send messages on an
//! open-model schedule and time each one's reply from its intended send time.
//!
//! Message k of a connection is intended at `start + k / rate`, where each connection's start is
//! spread over the ramp. The connection sends it when due (or at once, late, if the previous
//! reply took longer: the reply's latency still counts from the intended time, so a stalled
//! server shows in the percentiles), then reads until its reply arrives — the next data message
//! ("order", an echo), or the first one containing its `{{msg_id}}` ("id", a room's broadcast).
//! Other messages are counted as received; pings are answered. A close from the server or a
//! dropped connection is a counted `ws_closed`, followed by a reconnect after the backoff.
//! Reads are never cancelled except by the watchdog (a timeout closes the connection), so one
//! buffer per connection serves the whole run.

use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

use crate::metrics::stats::LATE_NS;
use crate::metrics::ErrorKind;
use crate::net::tls::Stream;
use crate::plan::template::{RenderContext, RunValue};
use crate::plan::{WsPlan, WS_CONNECT_STEP, WS_MESSAGE_STEP};
use crate::proto::ws::{self, Decoded, Event, Handshake, MessageDecoder, MessageKind};
use crate::shard::conn::deadline::{Expiring, Slot};
use crate::shard::conn::socket::{connect, read_error_kind, ws_kind};
use crate::shard::state::ShardState;

/// Initial read buffer per connection; grows only for a frame larger than this.
const READ_BUF: usize = 1024;
/// How often an idle connection looks at the stop flag.
const IDLE_CHECK: Duration = Duration::from_millis(50);
/// Messages due within this much are sent now (as the HTTP pacer does).
const RELEASE_AHEAD_NS: u64 = 2_000_000;
/// How long the closing handshake at the end may take.
const CLOSE_WAIT_NS: u64 = 2_000_000_000;

/// How a session on one connection ended.
enum End {
    /// The run is over: the connection was closed by us.
    Stopped,
    /// The server closed it, it dropped, or a reply timed out: counted; reconnect maybe.
    Dropped,
}

struct WsConn {
    buf: Vec<u8>,
    out: Vec<u8>,
    scratch: Vec<u8>,
    /// The in-flight message's id, searched for in replies ("id" correlation).
    token: Vec<u8>,
    decoder: MessageDecoder,
    rng: fastrand::Rng,
    vu: u64,
    /// Messages sent by this user (the next one's `iteration`).
    seq: u64,
}

/// The connection task of a ws:// scenario: runs until the scenario stops.
pub(crate) async fn run(shard: Rc<ShardState>, id: usize) {
    if let Some(ws) = shard.group.websocket.clone() {
        user(&shard, id, &ws).await;
    }
    shard.conn_finished();
}

async fn user(shard: &ShardState, id: usize, ws: &WsPlan) {
    let shards = shard.shard_count() as u64;
    let vu = shard.vu(id);
    let total = u64::from(shard.group.connections).max(1) * shards;
    // Starts spread evenly over the ramp, so connects and messages do not come in one burst.
    let start_ns = ws.ramp.as_nanos() as u64 * (vu - 1) / total;
    if !sleep_until(shard, start_ns).await {
        return;
    }
    let mut c = WsConn {
        buf: Vec::with_capacity(READ_BUF),
        out: Vec::with_capacity(256),
        scratch: Vec::new(),
        token: Vec::with_capacity(32),
        decoder: MessageDecoder::default(),
        rng: fastrand::Rng::new(),
        vu,
        seq: 0,
    };
    let period_ns = if ws.rate_per_conn > 0.0 {
        (1e9 / ws.rate_per_conn) as u64
    } else {
        0
    };
    let slot = shard.slot(id);
    let mut opened_before = false;
    while !shard.is_stopping() {
        let Some(mut stream) = c.open(shard, ws, slot).await else {
            if !ws.reconnect {
                return;
            }
            if !sleep_for(shard, ws.backoff).await {
                c.count_unsent(shard, start_ns, period_ns);
                return;
            }
            continue;
        };
        if opened_before {
            shard.stats().ws.reconnects += 1;
        }
        opened_before = true;
        match c
            .session(shard, ws, slot, &mut stream, start_ns, period_ns)
            .await
        {
            End::Stopped => {
                c.count_unsent(shard, start_ns, period_ns);
                c.close(shard, slot, &mut stream).await;
                shard.conn_closed();
                return;
            }
            End::Dropped => {
                shard.conn_closed();
                if !ws.reconnect {
                    return;
                }
                if !sleep_for(shard, ws.backoff).await {
                    c.count_unsent(shard, start_ns, period_ns);
                    return;
                }
            }
        }
    }
    c.count_unsent(shard, start_ns, period_ns);
}

/// Sleeps until `at_ns` on the scenario's clock; false if the scenario stopped meanwhile.
async fn sleep_until(shard: &ShardState, at_ns: u64) -> bool {
    loop {
        if shard.is_stopping() {
            return false;
        }
        let now = shard.now_ns();
        if now >= at_ns {
            return true;
        }
        let wait = (at_ns - now).min(IDLE_CHECK.as_nanos() as u64);
        monoio::time::sleep(Duration::from_nanos(wait)).await;
    }
}

async fn sleep_for(shard: &ShardState, d: Duration) -> bool {
    let until = shard.now_ns() + d.as_nanos() as u64;
    sleep_until(shard, until).await
}

impl WsConn {
    /// Messages whose time had come (by more than the lateness allowed) but that were never
    /// sent when the load stopped — the socket was waiting for a reply or reconnecting — are
    /// dropped, as open-model arrivals are: the run did not offer what it was asked to.
    fn count_unsent(&self, shard: &ShardState, start_ns: u64, period_ns: u64) {
        if period_ns == 0 {
            return;
        }
        let by = shard.stopped_at_ns().saturating_sub(LATE_NS);
        let due = by.saturating_sub(start_ns) / period_ns;
        shard.step(WS_MESSAGE_STEP).dropped += due.saturating_sub(self.seq);
    }

    /// TCP (+ TLS), then the upgrade; its time is the "ws connect" step's latency.
    async fn open(&mut self, shard: &ShardState, ws: &WsPlan, slot: &Slot) -> Option<Stream> {
        let began = shard.now_ns();
        let mut stream = match connect(shard).await {
            Ok(s) => s,
            Err(kind) => {
                shard.step(WS_CONNECT_STEP).record_error(kind);
                return None;
            }
        };
        self.buf.clear();
        self.buf.shrink_to(READ_BUF.max(ws::KEEP_BYTES));
        self.decoder.reset();
        self.decoder.set_limits(ws_limits(shard));
        self.out.clear();
        self.scratch.clear();
        let rendered = ws.path.render(
            &mut RenderContext {
                vu: self.vu,
                iteration: self.seq,
                vars: &[],
                rng: &mut self.rng,
                now_ms: 0,
                run: &shard.group.journey.run,
                body: &[],
            },
            &mut self.scratch,
        );
        if rendered.is_err() {
            shard
                .step(WS_CONNECT_STEP)
                .record_error(ErrorKind::Template);
            return None;
        }
        let key = ws::Key::generate(&mut self.rng);
        let path = String::from_utf8_lossy(&self.scratch);
        ws::encode_handshake(
            &ws.host_header,
            &path,
            key.as_str(),
            &ws.subprotocols,
            &ws.headers,
            &mut self.out,
        );
        slot.arm(began + shard.plan().connect_timeout.as_nanos() as u64);
        let result = self
            .upgrade(shard, ws, slot, &mut stream, key.as_str())
            .await;
        slot.disarm();
        match result {
            Ok(()) => {
                let done = shard.now_ns();
                shard.step(WS_CONNECT_STEP).record_reply(None, began, done);
                Some(stream)
            }
            Err(kind) => {
                if !shard.interrupted() {
                    shard.step(WS_CONNECT_STEP).record_error(kind);
                }
                shard.conn_closed();
                None
            }
        }
    }

    async fn upgrade(
        &mut self,
        shard: &ShardState,
        ws: &WsPlan,
        slot: &Slot,
        stream: &mut Stream,
        key: &str,
    ) -> Result<(), ErrorKind> {
        self.write_out(shard, slot, stream).await?;
        loop {
            match ws::check_handshake_response(&self.buf, key, &ws.subprotocols) {
                Ok(Handshake::Accepted { head_len, .. }) => {
                    // What follows the head is already frames.
                    self.buf.drain(..head_len);
                    return Ok(());
                }
                Ok(Handshake::Partial) => self.read_more(shard, slot, stream).await?,
                Err(_) => return Err(ErrorKind::WsHandshake),
            }
        }
    }

    /// Sends `out` (emptied); the buffer comes back for reuse.
    async fn write_out(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        stream: &mut Stream,
    ) -> Result<(), ErrorKind> {
        let write = pin!(stream.write_all(std::mem::take(&mut self.out)));
        let Some((res, mut written)) = (Expiring { fut: write, slot }).await else {
            self.out = Vec::with_capacity(256);
            return Err(ErrorKind::Timeout);
        };
        written.clear();
        self.out = written;
        match res {
            Ok(n) => {
                shard.step(WS_MESSAGE_STEP).bytes_out += n as u64;
                Ok(())
            }
            Err(e) => Err(read_error_kind(&e)),
        }
    }

    /// Appends what the socket has to `buf`; `Err` on close, failure or the slot's deadline.
    async fn read_more(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        stream: &mut Stream,
    ) -> Result<(), ErrorKind> {
        if self.buf.len() == self.buf.capacity() {
            self.buf.reserve(self.buf.capacity().max(READ_BUF));
        }
        let owned = std::mem::take(&mut self.buf);
        let (len, cap) = (owned.len(), owned.capacity());
        let read = pin!(stream.read(owned.slice_mut(len..cap)));
        let Some((res, slice)) = (Expiring { fut: read, slot }).await else {
            self.buf = Vec::with_capacity(READ_BUF);
            return Err(ErrorKind::Timeout);
        };
        self.buf = slice.into_inner();
        match res {
            Ok(0) => Err(ErrorKind::WsClosed),
            Ok(n) => {
                shard.step(WS_MESSAGE_STEP).bytes_in += n as u64;
                Ok(())
            }
            Err(e) => Err(match read_error_kind(&e) {
                ErrorKind::Reset => ErrorKind::WsClosed,
                other => other,
            }),
        }
    }

    /// Messages on schedule until the scenario stops or the connection drops.
    async fn session(
        &mut self,
        shard: &ShardState,
        ws: &WsPlan,
        slot: &Slot,
        stream: &mut Stream,
        start_ns: u64,
        period_ns: u64,
    ) -> End {
        loop {
            if period_ns == 0 {
                // Hold only: wake now and then to see whether the run is over.
                if !sleep_for(shard, IDLE_CHECK).await {
                    return End::Stopped;
                }
                continue;
            }
            let intended = start_ns + period_ns * (self.seq + 1);
            // monoio's timer wakes up to a tick late: wake early and send (latency then counts
            // from the actual send, which is earlier than intended).
            if !sleep_until(shard, intended.saturating_sub(RELEASE_AHEAD_NS)).await {
                return End::Stopped;
            }
            self.seq += 1;
            if !self.encode_message(ws, &shard.group.journey.run) {
                shard
                    .step(WS_MESSAGE_STEP)
                    .record_error(ErrorKind::Template);
                continue;
            }
            let sent = shard.now_ns();
            shard.step(WS_MESSAGE_STEP).record_send_lag(intended, sent);
            slot.arm(sent + shard.timeout_ns);
            let outcome = match self.write_out(shard, slot, stream).await {
                Ok(()) => {
                    shard.stats().ws.sent += 1;
                    self.await_reply(shard, ws, slot, stream).await
                }
                Err(kind) => Err(kind),
            };
            slot.disarm();
            match outcome {
                Ok(()) => {
                    let done = shard.now_ns();
                    shard
                        .step(WS_MESSAGE_STEP)
                        .record_reply(Some(intended), sent, done);
                }
                Err(kind) => {
                    if !shard.interrupted() {
                        shard.step(WS_MESSAGE_STEP).record_error(kind);
                    }
                    return End::Dropped;
                }
            }
        }
    }

    /// False when the message's template could not be rendered (it is not sent).
    fn encode_message(&mut self, ws: &WsPlan, run: &[RunValue]) -> bool {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.scratch.clear();
        let rendered = ws.message.render(
            &mut RenderContext {
                vu: self.vu,
                iteration: self.seq,
                vars: &[],
                rng: &mut self.rng,
                now_ms,
                run,
                body: &[],
            },
            &mut self.scratch,
        );
        if rendered.is_err() {
            return false;
        }
        self.token.clear();
        if ws.correlate_id {
            crate::plan::template::write_msg_id(&mut self.token, self.vu, self.seq);
        }
        let kind = if ws.binary {
            MessageKind::Binary
        } else {
            MessageKind::Text
        };
        self.out.clear();
        ws::encode_message(kind, &self.scratch, 0, &mut self.rng, &mut self.out);
        true
    }

    /// Reads until the in-flight message's reply; answers pings on the way.
    async fn await_reply(
        &mut self,
        shard: &ShardState,
        ws: &WsPlan,
        slot: &Slot,
        stream: &mut Stream,
    ) -> Result<(), ErrorKind> {
        loop {
            let mut matched = false;
            let mut pong = false;
            let mut closed = false;
            // Decode every whole frame buffered; stop at the reply (later frames wait).
            loop {
                let decoded = match self.decoder.decode(&self.buf) {
                    Ok(d) => d,
                    Err(e) => return Err(ws_kind(e)),
                };
                match decoded {
                    Decoded::Partial {
                        consumed,
                        next_frame_len,
                    } => {
                        super::ws_steps::io::consumed_partial(
                            &mut self.buf,
                            consumed,
                            next_frame_len,
                        );
                        break;
                    }
                    Decoded::Event { consumed, event } => {
                        match event {
                            Event::Message { payload, .. } => {
                                shard.stats().ws.received += 1;
                                if !ws.correlate_id
                                    || memchr::memmem::find(payload, &self.token).is_some()
                                {
                                    matched = true;
                                }
                            }
                            Event::Ping(payload) => {
                                // Answered after the borrow of the buffer ends.
                                self.scratch.clear();
                                self.scratch.extend_from_slice(payload);
                                pong = true;
                            }
                            Event::Pong(_) => {}
                            Event::Close { code, .. } => {
                                shard.stats().ws.record_server_close(code);
                                closed = true;
                            }
                        }
                        self.buf.drain(..consumed);
                        if matched || pong || closed {
                            break;
                        }
                    }
                }
            }
            if closed {
                // Answer the close, then count the drop.
                self.out.clear();
                let _ = ws::encode_close(Some((1000, "")), &mut self.rng, &mut self.out);
                let _ = self.write_out(shard, slot, stream).await;
                return Err(ErrorKind::WsClosed);
            }
            if pong {
                self.out.clear();
                let _ = ws::encode_pong(&self.scratch, &mut self.rng, &mut self.out);
                self.write_out(shard, slot, stream).await?;
            }
            if matched {
                return Ok(());
            }
            if !pong {
                self.read_more(shard, slot, stream).await?;
            }
        }
    }

    /// The closing handshake at the end of the run: send a close, wait briefly for the reply.
    async fn close(&mut self, shard: &ShardState, slot: &Slot, stream: &mut Stream) {
        self.out.clear();
        if ws::encode_close(Some((1000, "done")), &mut self.rng, &mut self.out).is_err() {
            return;
        }
        slot.arm(shard.now_ns() + CLOSE_WAIT_NS.min(shard.timeout_ns));
        if self.write_out(shard, slot, stream).await.is_ok() {
            loop {
                match self.decoder.decode(&self.buf) {
                    Ok(Decoded::Event {
                        event: Event::Close { .. },
                        ..
                    }) => {
                        shard.stats().ws.closed_cleanly += 1;
                        break;
                    }
                    Ok(Decoded::Event { consumed, .. }) => {
                        self.buf.drain(..consumed);
                    }
                    Ok(Decoded::Partial { consumed, .. }) => {
                        self.buf.drain(..consumed);
                        if self.read_more(shard, slot, stream).await.is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        slot.disarm();
    }
}

/// The run's frame and message limits, as the codec takes them.
pub(crate) fn ws_limits(shard: &ShardState) -> ws::Limits {
    let limits = shard.plan().limits;
    ws::Limits {
        max_frame_bytes: limits.max_ws_frame,
        max_message_bytes: limits.max_ws_message,
    }
}
