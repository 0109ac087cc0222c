//! `GET /v1/runs/{id}/events`: a run's intervals as Server-Sent Events, then its end.
//!
//! The stream opens with `event: run` (no id): the run's meta, whose `steps` names what
//! `steps[i]` of each interval refers to, and `requested_rate_per_s`.
//! Each interval is `event: interval` with `id: N` (1-based interval index) and the engine's
//! interval summary as JSON; the last event is `event: finished` (the result) or `event: ended`
//! (`{"state", "error"}` for an aborted or failed run). A run submitted with `stats=true` has
//! each interval's full measurements under `stats` and, just before `finished`, an
//! `event: stats` with the run's totals (`engine::metrics::wire`). Every interval is kept, so a tail that
//! reconnects with `Last-Event-ID: N` (or asks `?from=N` for interval N onwards) misses nothing.
//! It refuses to poll: a tail sleeps on the run's change counter; and past `--max-subscribers`
//! open streams it refuses a new one with 429.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use super::{ApiError, AppState};

#[derive(Deserialize)]
pub struct EventsQuery {
    /// First interval to send (1-based).
    from: Option<u64>,
}

struct Tail {
    state: AppState,
    id: String,
    /// Index (0-based) of the next interval to send.
    next: usize,
    changes: watch::Receiver<u64>,
    ready: VecDeque<Event>,
    ended: bool,
    /// This stream's place under `--max-subscribers`, given back when the stream is dropped.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let next = match (last_seen, query.from) {
        (Some(n), _) => n,
        (None, Some(from)) => from.saturating_sub(1),
        (None, None) => 0,
    };
    let slot = std::sync::Arc::clone(&state.subscribers)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::TooManyRequests(
                "too many live event streams are open (this daemon's limit, --max-subscribers)"
                    .into(),
            )
        })?;
    let (changes, meta) = {
        let runs = state.runs.lock();
        let run = runs.get(&id).ok_or(ApiError::NotFound("no such run"))?;
        (run.subscribe(), run.meta.clone())
    };
    let opening = Event::default()
        .event("run")
        .data(serde_json::to_string(&meta).unwrap_or_else(|_| "{}".into()));
    let tail = Tail {
        state,
        id,
        next: usize::try_from(next).unwrap_or(usize::MAX),
        changes,
        ready: VecDeque::from([opening]),
        ended: false,
        _slot: slot,
    };
    let stream = stream::unfold(tail, |mut t| async move {
        loop {
            if let Some(event) = t.ready.pop_front() {
                return Some((Ok(event), t));
            }
            if t.ended {
                return None;
            }
            // Mark what we are about to read as seen first, so a change after it wakes us.
            t.changes.borrow_and_update();
            if !t.fill() && t.changes.changed().await.is_err() {
                return None;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

impl Tail {
    /// Queues what is new; returns whether anything was.
    fn fill(&mut self) -> bool {
        let runs = self.state.runs.lock();
        let Some(run) = runs.get(&self.id) else {
            self.ended = true;
            return true;
        };
        for (i, iv) in run.intervals.iter().enumerate().skip(self.next) {
            self.ready.push_back(
                Event::default()
                    .event("interval")
                    .id((i + 1).to_string())
                    .data(iv.to_string()),
            );
        }
        self.next = self.next.max(run.intervals.len());
        if run.meta.state.is_over() {
            if let Some(totals) = &run.final_stats {
                self.ready
                    .push_back(Event::default().event("stats").data(totals.to_string()));
            }
            let end = match &run.result {
                Some(r) => Event::default().event("finished").data(r.to_string()),
                None => Event::default()
                    .event("ended")
                    .data(json!({"state": run.meta.state, "error": run.meta.error}).to_string()),
            };
            self.ready.push_back(end);
            self.ended = true;
        }
        !self.ready.is_empty()
    }
}
