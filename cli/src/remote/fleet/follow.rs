//! One thread per daemon follows its run's Server-Sent Events (resuming with `Last-Event-ID`
//! when the stream drops, as `loadctl tail` does) and hands each event, decoded, to the merger
//! over a channel: so a slow or silent daemon never holds up reading the others.
//!
//! It refuses a stream without per-interval `stats`: such a daemon (older than this loadctl)
//! cannot be merged exactly, and guessing from its percentiles would not be honest.

use std::io::{BufRead, BufReader};
use std::sync::mpsc::Sender;
use std::time::Duration;

use engine::metrics::stats::StatsSet;
use engine::results::IntervalSummary;
use engine::Results;
use serde_json::Value;

use super::super::Client;

/// Reconnection attempts when an event stream drops before the run's end.
const RECONNECTS: u32 = 10;

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
            let mut last_id = None;
            let mut attempts = 0;
            loop {
                match follow(&client, &id, &mut last_id, &mut |m| {
                    let _ = out.send((daemon, m));
                }) {
                    Ok(true) => return,
                    Ok(false) if attempts < RECONNECTS => {
                        attempts += 1;
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    Ok(false) => {
                        let why = format!("lost the event stream of run {id}");
                        let _ = out.send((daemon, Msg::Failed(why)));
                        return;
                    }
                    Err(why) => {
                        let _ = out.send((daemon, Msg::Failed(why)));
                        return;
                    }
                }
            }
        })
}

/// One connection's worth of events. `Ok(true)`: the run ended; `Ok(false)`: the stream dropped
/// (resume); `Err`: refused or unusable (do not retry).
fn follow(
    client: &Client,
    id: &str,
    last_id: &mut Option<u64>,
    send: &mut dyn FnMut(Msg),
) -> Result<bool, String> {
    let mut req = client
        .agent
        .get(format!("{}/v1/runs/{id}/events", client.base))
        .header("Accept", "text/event-stream");
    if let Some(a) = client.auth() {
        req = req.header("Authorization", a);
    }
    if let Some(n) = last_id {
        req = req.header("Last-Event-ID", n.to_string());
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(_) if last_id.is_some() => return Ok(false),
        Err(e) => return Err(client.unreachable(&e).message),
    };
    if resp.status().as_u16() != 200 {
        let status = resp.status().as_u16();
        let body = resp.into_body().read_to_string().unwrap_or_default();
        return Err(super::super::refused(&super::super::Reply { status, body }).message);
    }
    let reader = BufReader::new(resp.into_body().into_reader());
    let (mut event, mut data, mut event_id) = (String::new(), String::new(), None::<u64>);
    for line in reader.lines() {
        let Ok(line) = line else {
            return Ok(false);
        };
        if line.is_empty() {
            if !event.is_empty() {
                if let Some(done) = dispatch(&event, &data, event_id, send)? {
                    return Ok(done);
                }
                if event == "interval" && event_id.is_some() {
                    *last_id = event_id;
                }
            }
            event.clear();
            data.clear();
            event_id = None;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = value.to_string(),
            "id" => event_id = value.parse().ok(),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    Ok(false)
}

/// Decodes one event and sends it; `Some(true)` when it ends the run.
fn dispatch(
    event: &str,
    data: &str,
    event_id: Option<u64>,
    send: &mut dyn FnMut(Msg),
) -> Result<Option<bool>, String> {
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
            Ok(Some(true))
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
            Ok(Some(true))
        }
        _ => Ok(None),
    }
}
