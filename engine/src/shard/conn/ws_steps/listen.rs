//! `ws_listen`: receive for a while; each data message is one response of the step, timed
//! from the server's timestamp in it (`latency_from`; the same host's clock, or one the run
//! says may differ) or, without one, from the message before it (the gaps, where a stalled
//! server shows). A paced stream (`send … every`) goes out meanwhile on an open-model
//! schedule: message k is intended at the step's start + k × every, and its lateness is the
//! run's schedule lag. The socket is read while the next send or the end is waited for, so
//! nothing sits unread in the kernel.

use crate::metrics::stats::CheckKind;
use crate::metrics::ErrorKind;
use crate::plan::journey::WsListen;
use crate::proto::ws::{self, Decoded, Event};
use crate::shard::conn::deadline::Slot;
use crate::shard::conn::socket::ws_kind;
use crate::shard::state::ShardState;

use super::{Socket, User};

/// Sends due within this much go now (as the HTTP pacer does).
const RELEASE_AHEAD_NS: u64 = 2_000_000;

/// What a scan of the buffered frames ended at.
enum Seen {
    NeedMore,
    Ping,
    Closed,
}

impl Socket {
    /// Listens until `l.for_ns` after `began` or the run stops; `Some(done)` unless the socket
    /// failed (counted).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn listen(
        &mut self,
        shard: &ShardState,
        id: usize,
        slot: &Slot,
        index: usize,
        l: &WsListen,
        start: u64,
        began: u64,
        mut user: User<'_>,
    ) -> Option<u64> {
        if self.stream.is_none() {
            return self.failed(shard, index, ErrorKind::WsClosed);
        }
        let end = began + l.for_ns;
        // Writes (a send, a pong) must not hang past the end by more than a request timeout.
        slot.arm(end + shard.timeout_ns);
        let mut sent = 0u64;
        let mut last = began;
        let churn = |from: u64, rng: &mut fastrand::Rng| {
            l.reconnect
                .map(|(after, jitter)| from + after - jitter + rng.u64(0..=2 * jitter))
        };
        let mut reconnect_at = churn(began, user.rng);
        let run = &shard.group.journey.run;
        let outcome = loop {
            let next = match self.scan_listen(shard, index, l, &mut last, user.rng) {
                Err(kind) => Err(kind),
                Ok(Seen::Closed) => Err(self.answer_close(shard, slot, user.rng).await),
                Ok(Seen::Ping) => self.write_out(shard, slot).await,
                Ok(Seen::NeedMore) => Ok(()),
            };
            if let Err(kind) = next {
                break Err(kind);
            }
            let now = shard.now_ns();
            if now >= end || shard.is_stopping() {
                break Ok(());
            }
            if reconnect_at.is_some_and(|at| now >= at && at < end) {
                if let Err(kind) = self.reconnect(shard, slot, user.rng).await {
                    break Err(kind);
                }
                // The reconnect armed the slot for itself.
                slot.arm(end + shard.timeout_ns);
                reconnect_at = churn(shard.now_ns(), user.rng);
                continue;
            }
            let due = l.send.as_ref().map(|(_, _, every)| start + sent * every);
            if let (Some(at), Some((binary, message, _))) = (due, &l.send) {
                if now + RELEASE_AHEAD_NS >= at && at < end {
                    let rendered = self.encode_message(*binary, message, &mut user, run);
                    sent += 1;
                    if rendered.is_err() {
                        shard.step(index).record_error(ErrorKind::Template);
                        continue;
                    }
                    shard.step(0).record_send_lag(at, now);
                    if let Err(kind) = self.write_out(shard, slot).await {
                        break Err(kind);
                    }
                    shard.stats().ws.sent += 1;
                    continue;
                }
            }
            let wake = due.filter(|&d| d < end).map_or(end, |d| d.min(end));
            let wake = reconnect_at.map_or(wake, |r| r.min(wake));
            if let Err(kind) = self.read_or_wake(shard, id, slot, wake).await {
                break Err(kind);
            }
        };
        slot.disarm();
        match outcome {
            Ok(()) => Some(shard.now_ns()),
            Err(kind) => self.failed(shard, index, kind),
        }
    }

    /// Records every whole message buffered, up to a ping to answer or a close.
    fn scan_listen(
        &mut self,
        shard: &ShardState,
        index: usize,
        l: &WsListen,
        last: &mut u64,
        rng: &mut fastrand::Rng,
    ) -> Result<Seen, ErrorKind> {
        let Socket {
            buf,
            out,
            decoder,
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
                    super::io::consumed_partial(buf, consumed, next_frame_len);
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
                    let done = shard.now_ns();
                    shard.stats().ws.received += 1;
                    // Inflated even when not timed: the server's window runs on.
                    let limit = shard.plan().limits.max_ws_message;
                    let payload =
                        super::plain(inflater, inflated, payload, compressed, kind, limit)?;
                    let mut stats = shard.step(index);
                    match &l.latency_from {
                        Some((pointer, unit_ns)) => match stamp_ns(payload, pointer, *unit_ns) {
                            Some(at) => {
                                let latency = wall_ns().saturating_sub(at);
                                stats.record_check(CheckKind::Json, true);
                                stats.record_reply(None, done.saturating_sub(latency), done);
                            }
                            // Counted: a message without the timestamp cannot be timed.
                            None => stats.record_check(CheckKind::Json, false),
                        },
                        None => stats.record_reply(None, *last, done),
                    }
                    *last = done;
                    None
                }
                Event::Ping(payload) => {
                    out.clear();
                    let _ = ws::encode_pong(payload, rng, out);
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
}

/// The timestamp at `pointer` (a number, or a string of digits) in nanoseconds since the
/// Unix epoch; found without building the document.
fn stamp_ns(payload: &[u8], pointer: &str, unit_ns: u64) -> Option<u64> {
    let units = crate::plan::journey::find_json(payload, pointer)?.as_f64()?;
    (units >= 0.0).then_some((units * unit_ns as f64) as u64)
}

/// Now on the wall clock, in nanoseconds since the Unix epoch (what servers stamp).
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
