//! One thread per daemon follows its run's Server-Sent Events (through `sse`, which resumes a
//! dropped stream with `Last-Event-ID`, as for `loadctl tail`) and hands each event, decoded, to
//! the merger over a channel: so a slow or silent daemon never holds up reading the others.
//!
//! It refuses a stream without per-interval `stats`: such a daemon (older than this loadctl)
//! cannot be merged exactly, and guessing from its percentiles would not be honest.

use std::sync::mpsc::Sender;

use engine::metrics::stats::StatsSet;
use engine::results::IntervalSummary;
use engine::Results;
use serde_json::Value;

use super::super::client::{Client, Failure};
use super::super::sse::{self, Reconnects, StreamError};
use crate::exit;

/// What one daemon said, decoded.
pub(super) enum Msg {
    Interval {
        index: u64,
        summary: IntervalSummary,
        stats: Box<StatsSet>,
    },
    /// The run's totals, just before its result.
    Totals(Box<StatsSet>),
    Finished(Box<Results>),
    /// The run ended without a result (aborted, failed), or the stream was lost: why.
    Failed(String),
}

/// Follows daemon `daemon`'s run `id` until its end, sending what it reads to `out`.
pub(super) fn spawn(
    daemon: usize,
    client: Client,
    id: String,
    out: Sender<(usize, Msg)>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("loadctl-follow-{daemon}"))
        .spawn(move || {
            let mut send = |m| {
                let _ = out.send((daemon, m));
            };
            let followed = sse::follow(&client, &id, Reconnects::Silent, |event| {
                dispatch(&event.name, &event.data, event.id, &mut send).map_err(|message| Failure {
                    message,
                    code: exit::NO_RESULT,
                })
            });
            let why = match followed {
                Ok(()) => return,
                Err(StreamError::Lost) => format!("lost the event stream of run {id}"),
                Err(StreamError::Failed(f)) => f.message,
            };
            send(Msg::Failed(why));
        })
}

/// Decodes one event and sends it; `Some(())` when it ends the run, `Err` when it is unusable.
fn dispatch(
    event: &str,
    data: &str,
    event_id: Option<u64>,
    send: &mut dyn FnMut(Msg),
) -> Result<Option<()>, String> {
    let bad =
        |what: &str, e: &dyn std::fmt::Display| format!("loadd sent an unreadable {what}: {e}");
    match event {
        "interval" => {
            let mut value: Value = serde_json::from_str(data).map_err(|e| bad("interval", &e))?;
            let stats = value
                .as_object_mut()
                .and_then(|o| o.remove("stats"))
                .ok_or("loadd sent intervals without `stats`: is it older than this loadctl? (every daemon of a fleet needs the same version)")?;
            let stats = engine::metrics::wire::decode(&stats).map_err(|e| bad("interval", &e))?;
            let summary: IntervalSummary =
                serde_json::from_value(value).map_err(|e| bad("interval", &e))?;
            // The id is the 1-based interval index; `t_s` says the same in seconds.
            let index = event_id.unwrap_or(summary.t_s.round() as u64);
            send(Msg::Interval {
                index,
                summary,
                stats: Box::new(stats),
            });
            Ok(None)
        }
        "stats" => {
            let value: Value = serde_json::from_str(data).map_err(|e| bad("total", &e))?;
            let stats = engine::metrics::wire::decode(&value).map_err(|e| bad("total", &e))?;
            send(Msg::Totals(Box::new(stats)));
            Ok(None)
        }
        "finished" => {
            let results: Results = serde_json::from_str(data).map_err(|e| bad("result", &e))?;
            send(Msg::Finished(Box::new(results)));
            Ok(Some(()))
        }
        "ended" => {
            let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            send(Msg::Failed(format!(
                "the run {}{}",
                v["state"].as_str().unwrap_or("ended"),
                v["error"]
                    .as_str()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )));
            Ok(Some(()))
        }
        _ => Ok(None),
    }
}
