//! The one reader of a run's event stream (`GET /v1/runs/{id}/events`, Server-Sent Events), used
//! by `loadctl tail` and by each daemon's follower of a fleet: it parses the stream into events,
//! hands each to its caller, and when the stream drops before the caller has seen the run's end
//! it reconnects with `Last-Event-ID`, so no interval is missed or read twice.
//!
//! It refuses to retry a refused request (a non-200 reply, or a first connection that fails):
//! only a dropped stream is resumed. What an event means is the caller's business.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use super::client::{refused, Client, Failure, Reply};

/// Reconnection attempts when an event stream drops before the run's end.
const RECONNECTS: u32 = 10;
/// Pause before each reconnection.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// One event: its `event:` name, its `data:` lines joined, and its `id:` if it had one.
#[derive(Debug, PartialEq)]
pub(super) struct Event {
    pub(super) name: String,
    pub(super) data: String,
    pub(super) id: Option<u64>,
}

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
    let reader = BufReader::new(resp.into_body().into_reader());
    let mut parser = Parser::default();
    for line in reader.lines() {
        let Ok(line) = line else {
            return Ok(None);
        };
        let Some(event) = parser.line(&line) else {
            continue;
        };
        let event_id = event.id;
        if let Some(end) = on_event(event)? {
            return Ok(Some(end));
        }
        if event_id.is_some() {
            *last_id = event_id;
        }
    }
    Ok(None)
}

/// The event being read, line by line.
#[derive(Default)]
struct Parser {
    name: String,
    data: String,
    id: Option<u64>,
}

impl Parser {
    /// Takes one line; the blank line that ends a named event yields it. Comments (`:`) and
    /// unknown fields are skipped, and an event without a name is dropped.
    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let event = (!self.name.is_empty()).then(|| Event {
                name: std::mem::take(&mut self.name),
                data: std::mem::take(&mut self.data),
                id: self.id,
            });
            self.data.clear();
            self.id = None;
            return event;
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = value.to_string(),
            "id" => self.id = value.parse().ok(),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<Event> {
        let mut parser = Parser::default();
        text.lines().filter_map(|l| parser.line(l)).collect()
    }

    #[test]
    fn events_are_named_with_joined_data_and_their_id() {
        let got = events(
            ": keep-alive\n\nevent: run\ndata: {}\n\nid: 3\nevent: interval\ndata: a\ndata:b\n\n",
        );
        assert_eq!(
            got,
            [
                Event {
                    name: "run".into(),
                    data: "{}".into(),
                    id: None
                },
                Event {
                    name: "interval".into(),
                    data: "a\nb".into(),
                    id: Some(3)
                },
            ]
        );
    }

    #[test]
    fn an_unnamed_event_is_dropped_and_forgotten() {
        let got = events("id: 7\ndata: x\n\nevent: ended\ndata: y\n\n");
        assert_eq!(
            got,
            [Event {
                name: "ended".into(),
                data: "y".into(),
                id: None
            }]
        );
    }
}
