//! The WebSocket steps of a journey, run by the user's connection task: a socket of the user's
//! own beside its HTTP connection, opened by `ws_connect`, used by `ws_send` and `ws_expect`,
//! closed by `ws_close` or when the iteration ends.
//!
//! Timing: the upgrade counts from the step's (intended) start; a send from its start to the
//! write's end; each message a `ws_expect` matches from the last send (or the upgrade, if
//! nothing was sent since), so a reply's latency includes any lateness of the send it answers.
//! Messages that do not match are counted as received and skipped; pings are answered. A
//! server close, a dropped socket, a protocol error or a timed-out wait is a counted error of
//! the step and ends the socket and the iteration.

pub(crate) mod io;
mod listen;
mod reconnect;

use crate::metrics::ErrorKind;
use crate::net::tls::Stream;
use crate::plan::journey::{StepPlan, WsAction, WsConnect, WsExpect};
use crate::plan::template::{RenderContext, RunValue};
use crate::proto::ws::{self, deflate, Decoded, Event, MessageDecoder, MessageKind};
use crate::shard::conn::deadline::Slot;
use crate::shard::conn::inspect::{inspect, Response};
use crate::shard::conn::socket::{connect, ws_kind};
use crate::shard::state::ShardState;

/// How long the closing handshake at the end of an iteration may take.
const CLOSE_WAIT_NS: u64 = 2_000_000_000;

/// What a WebSocket step reads of its user.
pub(crate) struct User<'a> {
    pub vu: u64,
    pub iteration: u64,
    pub vars: &'a mut [Vec<u8>],
    pub rng: &'a mut fastrand::Rng,
}

impl User<'_> {
    fn cx<'c>(&'c mut self, run: &'c [RunValue]) -> RenderContext<'c> {
        RenderContext {
            vu: self.vu,
            iteration: self.iteration,
            vars: self.vars,
            rng: self.rng,
            now_ms: super::wall_ms(),
            run,
            body: &[],
        }
    }
}

/// A user's socket and its buffers, kept from one connect to the next.
#[derive(Default)]
pub(crate) struct Socket {
    stream: Option<Stream>,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// A `ws_expect`'s `text_contains`, rendered.
    needle: Vec<u8>,
    decoder: MessageDecoder,
    /// When the message that later expects answer was sent (or the socket opened).
    anchor: u64,
    /// Cuts a read short at a timer (`io::read_or_wake`), kept from one read to the next.
    canceller: Option<monoio::io::Canceller>,
    /// The last upgrade, kept when a later `ws_listen` reconnects (`reconnect.rs`).
    again: Option<Box<reconnect::Again>>,
    /// permessage-deflate: offered by the current connect, and the inflater once agreed (kept
    /// from one connect to the next), with the buffer messages are inflated into.
    offered_deflate: bool,
    inflater: Option<Box<deflate::Inflater>>,
    inflated: Vec<u8>,
}

/// A message's payload as sent: inflated into `inflated` when it came compressed (under the
/// message limit, `max_ws_message`; a bomb is `body_too_large`, bad data `decompress`, bad text
/// `ws_protocol`).
pub(super) fn plain<'a>(
    inflater: &mut Option<Box<deflate::Inflater>>,
    inflated: &'a mut Vec<u8>,
    payload: &'a [u8],
    compressed: bool,
    kind: MessageKind,
    limit: usize,
) -> Result<&'a [u8], ErrorKind> {
    if !compressed {
        return Ok(payload);
    }
    // The last large message has been handled: give back its room.
    if inflated.capacity() > ws::KEEP_BYTES {
        *inflated = Vec::new();
    }
    let Some(inflater) = inflater.as_mut() else {
        return Err(ErrorKind::WsProtocol);
    };
    inflater
        .inflate(payload, inflated, limit)
        .map_err(|e| match e {
            deflate::DeflateError::TooLarge => ErrorKind::BodyTooLarge,
            _ => ErrorKind::Decompress,
        })?;
    if kind == MessageKind::Text && std::str::from_utf8(inflated).is_err() {
        return Err(ErrorKind::WsProtocol);
    }
    Ok(inflated)
}

/// Where a scan of the buffered frames stopped.
enum Seen {
    NeedMore,
    /// A ping: its pong is in `out`.
    Ping,
    Closed,
    /// The last match came; its captures and checks passed (`true`) or a capture failed.
    Done(bool),
}

impl Socket {
    pub(crate) fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Runs one WebSocket step; `Some(done)` when it succeeded (counted either way).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_step(
        &mut self,
        shard: &ShardState,
        id: usize,
        index: usize,
        step: &StepPlan,
        action: &WsAction,
        intended: Option<u64>,
        mut user: User<'_>,
    ) -> Option<u64> {
        let began = shard.now_ns();
        if let Some(i) = intended {
            shard.step(0).record_send_lag(i, began);
        }
        let start = intended.map_or(began, |i| i.min(began));
        let slot = shard.slot(id);
        let deadline = began + step.timeout_ns.unwrap_or(shard.timeout_ns);
        let run = &shard.group.journey.run;
        let result = match action {
            // Boxed, as the listen and the close: their state is large, and every HTTP user's
            // task would carry its room (they allocate per socket anyway).
            WsAction::Connect(c) => {
                Box::pin(self.connect(shard, slot, index, c, deadline, &mut user)).await
            }
            WsAction::Send { binary, message } => {
                match self.encode_message(*binary, message, &mut user, run) {
                    Err(_) => Err(ErrorKind::Template),
                    Ok(()) => self.send(shard, slot, deadline, start).await,
                }
            }
            WsAction::Expect(e) => {
                let deadline = e.timeout_ns.map_or(deadline, |t| began + t);
                return self
                    .expect(shard, slot, index, step, e, deadline, user)
                    .await;
            }
            WsAction::Listen(l) => {
                return Box::pin(self.listen(shard, id, slot, index, l, start, began, user)).await;
            }
            WsAction::Close { code, reason } => {
                let closed = Box::pin(
                    self.closing_handshake(shard, slot, deadline, *code, reason, user.rng),
                )
                .await;
                self.drop_stream(shard);
                closed
            }
        };
        match result {
            Ok(()) => {
                let done = shard.now_ns();
                shard.step(index).record_reply(intended, began, done);
                Some(done)
            }
            Err(kind) => self.failed(shard, index, kind),
        }
    }

    /// Renders `message` and encodes it as one masked frame into `out`; the render goes
    /// through `needle`, which no expect is using meanwhile. `Err` when the template failed
    /// (then `out` holds nothing to send).
    fn encode_message(
        &mut self,
        binary: bool,
        message: &crate::plan::template::Template,
        user: &mut User<'_>,
        run: &[RunValue],
    ) -> Result<(), crate::plan::template::RenderError> {
        self.out.clear();
        self.needle.clear();
        message.render(&mut user.cx(run), &mut self.needle)?;
        let kind = if binary {
            MessageKind::Binary
        } else {
            MessageKind::Text
        };
        ws::encode_message(kind, &self.needle, 0, user.rng, &mut self.out);
        Ok(())
    }

    /// Counts a failed step; the socket goes too unless only a template failed.
    pub(super) fn failed(
        &mut self,
        shard: &ShardState,
        index: usize,
        kind: ErrorKind,
    ) -> Option<u64> {
        if !shard.interrupted() {
            shard.step(index).record_error(kind);
        }
        if kind != ErrorKind::Template {
            self.drop_stream(shard);
        }
        None
    }

    /// The end of an iteration (or of the run): close what is still open, cleanly if the run
    /// goes on.
    pub(crate) async fn finish(&mut self, shard: &ShardState, id: usize, rng: &mut fastrand::Rng) {
        if self.stream.is_none() {
            return;
        }
        if !shard.interrupted() {
            let slot = shard.slot(id);
            let deadline = shard.now_ns() + CLOSE_WAIT_NS.min(shard.timeout_ns);
            let _ = self
                .closing_handshake(shard, slot, deadline, 1000, "", rng)
                .await;
        }
        self.drop_stream(shard);
    }

    pub(crate) fn drop_stream(&mut self, shard: &ShardState) {
        if self.stream.take().is_some() {
            shard.conn_closed();
        }
        // A large frame's room goes with the socket (the user keeps the buffer for its next).
        self.buf.clear();
        self.buf.shrink_to(ws::KEEP_BYTES);
    }

    /// TCP (+ TLS) and the upgrade; an open socket is closed first.
    async fn connect(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        index: usize,
        c: &WsConnect,
        deadline: u64,
        user: &mut User<'_>,
    ) -> Result<(), ErrorKind> {
        if self.stream.is_some() {
            let closing = shard.now_ns() + CLOSE_WAIT_NS.min(shard.timeout_ns);
            let _ = self
                .closing_handshake(shard, slot, closing, 1000, "", user.rng)
                .await;
            self.drop_stream(shard);
        }
        // The request first: a template that fails opens nothing.
        let key = ws::Key::generate(user.rng);
        self.out.clear();
        self.out.extend_from_slice(&c.start);
        let run = &shard.group.journey.run;
        let mut cx = user.cx(run);
        c.path
            .render(&mut cx, &mut self.out)
            .map_err(|_| ErrorKind::Template)?;
        self.out.extend_from_slice(&c.after_path);
        self.out.extend_from_slice(b"Sec-WebSocket-Key: ");
        let key_at = self.out.len();
        self.out.extend_from_slice(key.as_str().as_bytes());
        self.out.extend_from_slice(b"\r\n");
        for h in &c.headers {
            h.render(&mut cx, &mut self.out)
                .map_err(|_| ErrorKind::Template)?;
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        if c.kept {
            self.again = Some(Box::new(reconnect::Again {
                request: self.out.clone(),
                key_at,
                step: index,
                subprotocols: c.subprotocols.clone(),
                deflate: c.compression,
            }));
        }
        self.offered_deflate = c.compression;
        self.open(shard, slot, key.as_str(), &c.subprotocols, deadline)
            .await
    }

    /// TCP (+ TLS), then the upgrade request in `out`, answered for `key`.
    async fn open(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        key: &str,
        subprotocols: &[String],
        deadline: u64,
    ) -> Result<(), ErrorKind> {
        // Boxed: a TLS handshake's state is large (as for HTTP connections).
        self.stream = Some(Box::pin(connect(shard)).await?);
        self.buf.clear();
        self.decoder.reset();
        self.decoder
            .set_limits(crate::shard::conn::ws::ws_limits(shard));
        slot.arm(deadline);
        let upgraded = self.upgrade(shard, slot, key, subprotocols).await;
        slot.disarm();
        upgraded?;
        self.anchor = shard.now_ns();
        Ok(())
    }

    async fn upgrade(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        key: &str,
        subprotocols: &[String],
    ) -> Result<(), ErrorKind> {
        self.write_out(shard, slot).await?;
        let offered = self.offered_deflate;
        loop {
            match ws::check_handshake_response_with(&self.buf, key, subprotocols, offered) {
                Ok((ws::Handshake::Accepted { head_len, .. }, agreed)) => {
                    // What follows the head is already frames.
                    self.buf.drain(..head_len);
                    self.decoder.allow_compressed(agreed.is_some());
                    if let Some(a) = agreed {
                        match self.inflater.as_mut() {
                            Some(i) => i.reset(a),
                            None => self.inflater = Some(Box::new(deflate::Inflater::new(a))),
                        }
                    }
                    return Ok(());
                }
                Ok((ws::Handshake::Partial, _)) => self.read_more(shard, slot).await?,
                Err(_) => return Err(ErrorKind::WsHandshake),
            }
        }
    }

    /// Writes the message in `out`; later expects count from `start`.
    async fn send(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        deadline: u64,
        start: u64,
    ) -> Result<(), ErrorKind> {
        if self.stream.is_none() {
            return Err(ErrorKind::WsClosed);
        }
        slot.arm(deadline);
        let written = self.write_out(shard, slot).await;
        slot.disarm();
        written?;
        shard.stats().ws.sent += 1;
        self.anchor = start;
        Ok(())
    }

    /// Waits for `e.count` matching messages, each one response of the step.
    #[allow(clippy::too_many_arguments)]
    async fn expect(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        index: usize,
        step: &StepPlan,
        e: &WsExpect,
        deadline: u64,
        mut user: User<'_>,
    ) -> Option<u64> {
        self.needle.clear();
        if let Some(t) = &e.text_contains {
            let run = &shard.group.journey.run;
            if t.render(&mut user.cx(run), &mut self.needle).is_err() {
                return self.failed(shard, index, ErrorKind::Template);
            }
        }
        if self.stream.is_none() {
            return self.failed(shard, index, ErrorKind::WsClosed);
        }
        slot.arm(deadline);
        let mut matched = 0;
        let outcome = loop {
            let seen = self.scan(shard, index, step, e, &mut user, &mut matched);
            let next = match seen {
                Err(kind) => Err(kind),
                Ok(Seen::Done(ok)) => break Ok(ok),
                Ok(Seen::Closed) => Err(self.answer_close(shard, slot, user.rng).await),
                Ok(Seen::Ping) => self.write_out(shard, slot).await,
                Ok(Seen::NeedMore) => self.read_more(shard, slot).await,
            };
            if let Err(kind) = next {
                break Err(kind);
            }
        };
        slot.disarm();
        match outcome {
            Ok(true) => Some(shard.now_ns()),
            // A capture found nothing: counted by `inspect`; the socket stays for the close.
            Ok(false) => None,
            Err(kind) => self.failed(shard, index, kind),
        }
    }

    /// Handles the whole frames buffered, up to the first that needs an answer or ends the wait.
    fn scan(
        &mut self,
        shard: &ShardState,
        index: usize,
        step: &StepPlan,
        e: &WsExpect,
        user: &mut User<'_>,
        matched: &mut u32,
    ) -> Result<Seen, ErrorKind> {
        let Socket {
            buf,
            out,
            needle,
            decoder,
            anchor,
            inflater,
            inflated,
            ..
        } = self;
        loop {
            let decoded = decoder.decode(buf).map_err(ws_kind)?;
            let (consumed, event) = match decoded {
                Decoded::Partial {
                    consumed,
                    next_frame_len,
                } => {
                    io::consumed_partial(buf, consumed, next_frame_len);
                    return Ok(Seen::NeedMore);
                }
                Decoded::Event { consumed, event } => (consumed, event),
            };
            let seen = match event {
                Event::Message {
                    payload,
                    compressed,
                    kind,
                } => {
                    shard.stats().ws.received += 1;
                    let limit = shard.plan().limits.max_ws_message;
                    let payload = plain(inflater, inflated, payload, compressed, kind, limit)?;
                    if e.matches(payload, needle) {
                        *matched += 1;
                        let done = shard.now_ns();
                        let mut stats = shard.step(index);
                        stats.record_reply(None, *anchor, done);
                        (*matched >= e.count).then(|| {
                            let r = Response {
                                status: 101,
                                head: &[],
                                body: payload,
                                latency_ns: done.saturating_sub(*anchor),
                            };
                            Seen::Done(inspect(step, &r, user.vars, &mut stats))
                        })
                    } else {
                        None
                    }
                }
                Event::Ping(payload) => {
                    out.clear();
                    let _ = ws::encode_pong(payload, user.rng, out);
                    Some(Seen::Ping)
                }
                Event::Pong(_) => None,
                Event::Close { code, .. } => {
                    shard.stats().ws.record_server_close(code);
                    Some(Seen::Closed)
                }
            };
            buf.drain(..consumed);
            if let Some(seen) = seen {
                return Ok(seen);
            }
        }
    }

    /// Sends a close and reads until the server's (other messages are dropped); `Ok` when it
    /// came, counted as a clean close.
    async fn closing_handshake(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        deadline: u64,
        code: u16,
        reason: &str,
        rng: &mut fastrand::Rng,
    ) -> Result<(), ErrorKind> {
        if self.stream.is_none() {
            return Err(ErrorKind::WsClosed);
        }
        self.out.clear();
        ws::encode_close(Some((code, reason)), rng, &mut self.out)
            .map_err(|_| ErrorKind::WsProtocol)?;
        slot.arm(deadline);
        let closed = self.await_close(shard, slot).await;
        slot.disarm();
        if closed.is_ok() {
            shard.stats().ws.closed_cleanly += 1;
        }
        closed
    }

    async fn await_close(&mut self, shard: &ShardState, slot: &Slot) -> Result<(), ErrorKind> {
        self.write_out(shard, slot).await?;
        loop {
            match self.decoder.decode(&self.buf) {
                Ok(Decoded::Event {
                    event: Event::Close { .. },
                    ..
                }) => return Ok(()),
                Ok(Decoded::Event { consumed, event }) => {
                    // Messages still on their way when we closed were received all the same.
                    if matches!(event, Event::Message { .. }) {
                        shard.stats().ws.received += 1;
                    }
                    self.buf.drain(..consumed);
                }
                Ok(Decoded::Partial { consumed, .. }) => {
                    self.buf.drain(..consumed);
                    self.read_more(shard, slot).await?;
                }
                Err(e) => return Err(ws_kind(e)),
            }
        }
    }
}
