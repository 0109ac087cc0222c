//! The one reader of a run's event stream (`GET /v1/runs/{id}/events`, Server-Sent Events), used
//! by `loadctl tail` and by each daemon's follower of a fleet: it parses the stream into events,
//! hands each to its caller, and when the stream drops before the caller has seen the run's end
//! it reconnects with `Last-Event-ID`, so no interval is missed or read twice.
//!
//! It refuses to retry a refused request (a non-200 reply, or a first connection that fails):
//! only a dropped stream is resumed. What an event means is the caller's business.

mod parse;

use std::io::BufReader;
use std::time::Duration;

pub use self::parse::{read_line, Event, LineError, Parser};
use super::client::{refused, Client, Failure, Reply};
use crate::exit;

/// Reconnection attempts when an event stream drops before the run's end.
const RECONNECTS: u32 = 10;
/// Pause before each reconnection.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// Why following a stream stopped without the caller's end.
pub(super) enum StreamError {
    /// The stream dropped more than `RECONNECTS` times.
    Lost,
    /// Refused, unreachable, or the caller gave up on an event: not worth a retry.
    Failed(Failure),
}

/// Whether a failed reconnection is said on stderr (`tail`) or left to the caller (a fleet).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reconnects {
    Announced,
    Silent,
}

/// Follows run `id`'s events until `on_event` returns `Ok(Some(_))` (the run's end, as the
/// caller reads it) or `Err` (give up). Events carrying an `id` (loadd's intervals) set the
/// `Last-Event-ID` a reconnection resumes after, once `on_event` has taken them.
pub(super) fn follow<T>(
    client: &Client,
    id: &str,
    reconnects: Reconnects,
    mut on_event: impl FnMut(Event) -> Result<Option<T>, Failure>,
) -> Result<T, StreamError> {
    let mut last_id = None;
    let mut attempts = 0;
    loop {
        match connection(client, id, &mut last_id, reconnects, &mut on_event) {
            Ok(Some(end)) => return Ok(end),
            Ok(None) if attempts < RECONNECTS => {
                attempts += 1;
                std::thread::sleep(RECONNECT_DELAY);
            }
            Ok(None) => return Err(StreamError::Lost),
            Err(f) => return Err(StreamError::Failed(f)),
        }
    }
}

/// Reads one connection's worth of events. `Ok(None)`: the stream dropped (resume).
fn connection<T>(
    client: &Client,
    id: &str,
    last_id: &mut Option<u64>,
    reconnects: Reconnects,
    on_event: &mut impl FnMut(Event) -> Result<Option<T>, Failure>,
) -> Result<Option<T>, Failure> {
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
        Err(e) if last_id.is_some() => {
            if reconnects == Reconnects::Announced {
                eprintln!("loadctl: reconnecting to the event stream: {e}");
            }
            return Ok(None);
        }
        Err(e) => return Err(client.unreachable(&e)),
    };
    if resp.status().as_u16() != 200 {
        let status = resp.status().as_u16();
        let body = resp.into_body().read_to_string().unwrap_or_default();
        return Err(refused(&Reply { status, body }));
    }
    let mut reader = BufReader::new(resp.into_body().into_reader());
    let mut parser = Parser::default();
    let mut buf = Vec::new();
    loop {
        let line = match read_line(&mut reader, &mut buf) {
            Ok(Some(line)) => line,
            // The stream ended or dropped: resume.
            Ok(None) | Err(LineError::Io(_)) => return Ok(None),
            // Resuming would read the same again: give up, saying why.
            Err(e) => return Err(unreadable(id, &e)),
        };
        let event = match parser.line(line) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(e) => return Err(unreadable(id, &e)),
        };
        let event_id = event.id;
        if let Some(end) = on_event(event)? {
            return Ok(Some(end));
        }
        if event_id.is_some() {
            *last_id = event_id;
        }
    }
}

fn unreadable(id: &str, e: &LineError) -> Failure {
    Failure {
        message: format!("error: loadd's event stream for run {id}: {e}"),
        code: exit::NO_RESULT,
    }
}
