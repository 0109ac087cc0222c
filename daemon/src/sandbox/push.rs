//! `/ws/push` and `/ws/t/{t}/push`: a live stream for listen-only clients. After the client's
//! first message (a subscribe; answered `{"type":"subscribed"}`) the server pushes
//! `{"type":"tick","seq":k,"ts_ms":…,"ts_us":…}` at `rate` messages per second, stamped with
//! the wall-clock time the tick was due. A stall holds pushes after they are stamped, so a
//! stalled server shows in the client's push latency, as a real backlog would.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts as _, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::api::caller::Caller;
use super::ws::{self, Socket};
use super::SandboxState;

/// Most pushes per second one socket may ask for.
const MAX_RATE: u32 = 100_000;

#[derive(Deserialize)]
pub(super) struct PushParams {
    /// Messages per second (default 10).
    rate: Option<u32>,
    /// `connect`: push from the upgrade on, without waiting for a subscribe.
    start: Option<String>,
}

/// Anyone may listen.
pub(super) async fn open(
    State(state): State<Arc<SandboxState>>,
    Query(params): Query<PushParams>,
    request: Request,
) -> Response {
    start(state, params, request)
}

/// Tenant `t`'s stream: only with a bearer token of one of its users (401 / 403 otherwise).
pub(super) async fn with_token(
    State(state): State<Arc<SandboxState>>,
    Query(params): Query<PushParams>,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    if let Err(e) = Caller::from_request_parts(&mut parts, &state.api).await {
        return e.into_response();
    }
    start(state, params, Request::from_parts(parts, body))
}

fn start(state: Arc<SandboxState>, params: PushParams, request: Request) -> Response {
    let rate = params.rate.unwrap_or(10);
    if rate == 0 || rate > MAX_RATE {
        let message = format!("rate must be 1 to {MAX_RATE} messages per second\n");
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    let pushing = Arc::clone(&state);
    let subscribe = params.start.as_deref() != Some("connect");
    ws::accept(request, &state, move |socket| {
        push(socket, pushing, rate, subscribe)
    })
}

async fn push(mut socket: Socket, state: Arc<SandboxState>, rate: u32, subscribe: bool) {
    if subscribe && !subscribed(&mut socket, &state).await {
        return;
    }
    stream(socket, state, rate).await;
}

/// Waits for the client's first message and answers it; `false` when the client went first.
async fn subscribed(socket: &mut Socket, state: &SandboxState) -> bool {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(_) | Message::Binary(_))) => break,
            Some(Ok(Message::Close(_))) => {
                ws::finish(socket).await;
                return false;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return false,
        }
    }
    state.ws.count_in();
    let subscribed = Message::text(r#"{"type":"subscribed"}"#);
    if socket.send(subscribed).await.is_err() {
        return false;
    }
    state.ws.count_out(1);
    true
}

/// Pushes stamped ticks until the client leaves.
async fn stream(mut socket: Socket, state: Arc<SandboxState>, rate: u32) {
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    // A stalled stream catches up in a burst, as a backlog drains.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let due_wall = SystemTime::now() + period;
    let origin = Instant::now() + period;
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Close(_))) => return ws::finish(&mut socket).await,
                Some(Ok(Message::Text(_) | Message::Binary(_))) => state.ws.count_in(),
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return,
            },
            tick = ticks.tick() => {
                // Stamped with when it was due, then held by a stall like any other answer.
                let due = due_wall + tick.saturating_duration_since(origin);
                let us = due.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
                let message = format!(
                    r#"{{"type":"tick","seq":{seq},"ts_ms":{},"ts_us":{us}}}"#,
                    us / 1000
                );
                seq += 1;
                state.wait_out_stall().await;
                if socket.send(Message::text(message)).await.is_err() {
                    return;
                }
                state.ws.count_out(1);
            }
        }
    }
}
