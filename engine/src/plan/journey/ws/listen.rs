//! `ws_listen`: how long, where a message's timestamp is, and the paced stream to send.

use toml::Spanned;

use super::{compile_send, WsAction, WsListen};
use crate::plan::checker::Checker;
use crate::plan::journey::scope::StepContext;
use crate::scenario::WsListenSpec;
use crate::units;

/// Longest listen: a day (an endurance run's socket reconnects in a new iteration).
const MAX_LISTEN_NS: u64 = 24 * 3600 * 1_000_000_000;

pub(super) fn compile_listen(
    c: &mut Checker<'_>,
    cx: &StepContext<'_>,
    listen: &Spanned<WsListenSpec>,
) -> Option<WsListen> {
    let k = listen.get_ref();
    let span = listen.span();
    let for_ns = match units::parse_duration(&k.duration) {
        Ok(d) if !d.is_zero() && d.as_nanos() <= u128::from(MAX_LISTEN_NS) => d.as_nanos() as u64,
        Ok(_) => {
            c.error(
                &span,
                "ws_listen: `for` must be more than zero and at most 24h",
            );
            return None;
        }
        Err(e) => {
            c.error(&span, format!("ws_listen for: {e} (e.g. \"30s\")"));
            return None;
        }
    };
    let latency_from = match &k.latency_from {
        None => None,
        Some(l) => {
            if !l.json.starts_with('/') {
                c.error(
                    &span,
                    format!(
                        "latency_from: `{}` is not a JSON pointer: write \"/{}\"",
                        l.json, l.json
                    ),
                );
            }
            let unit_ns = match l.unit.as_deref().unwrap_or("ms") {
                "s" => 1_000_000_000,
                "ms" => 1_000_000,
                "us" => 1_000,
                "ns" => 1,
                other => {
                    c.error(
                        &span,
                        format!("latency_from unit `{other}`: use \"ms\", \"us\", \"s\" or \"ns\""),
                    );
                    1
                }
            };
            Some((l.json.clone(), unit_ns))
        }
    };
    let send = match &k.send {
        None => None,
        Some(send) => {
            let every_ns = match (send.every.as_deref().map(units::parse_duration), send.rate) {
                (Some(Ok(d)), None) if !d.is_zero() => Some(d.as_nanos() as u64),
                (None, Some(r)) if r > 0.0 && r.is_finite() && r <= 1e6 => Some((1e9 / r) as u64),
                (Some(Err(e)), None) => {
                    c.error(&span, format!("ws_listen send every: {e}"));
                    None
                }
                _ => {
                    c.error(
                        &span,
                        "ws_listen send: give `every` (e.g. every = \"12s\") or `rate` (messages per second, e.g. rate = 5), more than zero, not both",
                    );
                    None
                }
            };
            let message = compile_send(c, cx, &Spanned::new(span.clone(), send.clone()), true);
            match (message, every_ns) {
                (Some(WsAction::Send { binary, message }), Some(every)) => {
                    Some((binary, message, every))
                }
                _ => None,
            }
        }
    };
    let reconnect = k.reconnect.as_ref().and_then(|r| {
        let after = units::parse_duration(&r.after);
        let jitter = r.jitter.as_deref().map_or(Ok(std::time::Duration::ZERO), units::parse_duration);
        match (after, jitter) {
            (Ok(a), Ok(j)) if !a.is_zero() && j < a => Some((a.as_nanos() as u64, j.as_nanos() as u64)),
            (Ok(_), Ok(_)) => {
                c.error(&span, "ws_listen reconnect: `after` must be more than zero and more than `jitter`, e.g. { after = \"5m\", jitter = \"30s\" }");
                None
            }
            (Err(e), _) | (_, Err(e)) => {
                c.error(&span, format!("ws_listen reconnect: {e}"));
                None
            }
        }
    });
    Some(WsListen {
        for_ns,
        latency_from,
        send,
        reconnect,
    })
}
