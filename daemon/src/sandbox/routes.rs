//! The well-behaved endpoints, as an axum `Router` served by hyper (see `conn`).
//!
//! Owns the endpoint table (merging in the `api` and `pages` routers), the counting/stall
//! middleware and the control endpoints. It never sees a `/misbehave/*` request: those are answered
//! raw before hyper is involved.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::body::{FillerBody, Framing, FILLER_LEN};
use super::{api, capacity, client, pages, push, rooms, ws, SandboxState};

/// Largest body `/bytes/{n}` and `/chunked/{n}` will send.
const MAX_BODY_LEN: usize = 64 << 20;
/// `/chunked/{n}` sends its body in about this many chunks.
const CHUNKS_PER_BODY: usize = 4;

pub(super) fn app(state: Arc<SandboxState>) -> Router {
    Router::new()
        .route("/", get(ok))
        .route("/bytes/{n}", get(bytes))
        .route("/delay/{ms}", get(delay))
        .route("/status/{code}", get(status))
        .route("/chunked/{n}", get(chunked))
        .route("/echo", post(echo).put(echo))
        .route("/close", get(close))
        .route("/control/stall", post(stall))
        .route("/control/stats", get(stats))
        .route("/control/reset-stats", post(reset_stats))
        .route("/control/capacity", post(capacity::configure))
        .route("/control/slow", post(capacity::slow))
        .route("/ws/echo", get(ws::echo))
        .route("/ws/rooms/{room}", get(rooms::join))
        .route("/ws/t/{t}/rooms/{room}", get(rooms::join_with_token))
        .route("/ws/push", get(push::open))
        .route("/ws/t/{t}/push", get(push::with_token))
        .merge(slowable(&state))
        .merge(pages::router())
        .merge(client::router())
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            count_and_hold,
        ))
        .with_state(state)
}

/// The routes `/control/slow` slows: the API and the capacity endpoint (nothing else pays for the
/// check).
fn slowable(state: &Arc<SandboxState>) -> Router<Arc<SandboxState>> {
    Router::new()
        .route("/capacity/work", get(capacity::work))
        .merge(api::router(Arc::clone(&state.api)))
        .layer(middleware::from_fn_with_state(
            Arc::clone(state),
            capacity::slow_down,
        ))
}

/// Counts every request outside `/control/`, and holds it while a stall is in force — both before
/// the handler runs and after, so requests already in flight when a stall begins are held too.
async fn count_and_hold(
    State(state): State<Arc<SandboxState>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/control/") {
        return next.run(request).await;
    }
    state.count_request();
    state.wait_out_stall().await;
    let response = next.run(request).await;
    state.wait_out_stall().await;
    response
}

async fn ok() -> &'static str {
    "ok\n"
}

async fn bytes(Path(n): Path<usize>) -> Response {
    filler_response(n, FILLER_LEN, Framing::Length)
}

async fn chunked(Path(n): Path<usize>) -> Response {
    filler_response(n, n.div_ceil(CHUNKS_PER_BODY), Framing::Chunked)
}

fn filler_response(len: usize, frame_len: usize, framing: Framing) -> Response {
    if len > MAX_BODY_LEN {
        let message = format!("at most {MAX_BODY_LEN} bytes\n");
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    let body = Body::new(FillerBody::new(len, frame_len, framing));
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

async fn delay(Path(ms): Path<u64>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "ok\n"
}

async fn status(Path(code): Path<u16>) -> Response {
    let status = match StatusCode::from_u16(code) {
        Ok(status) if (200..=599).contains(&code) => status,
        _ => StatusCode::BAD_REQUEST,
    };
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return status.into_response();
    }
    (status, "status\n").into_response()
}

/// Streams the request body back, keeping its framing (a `Content-Length` request gets one back).
async fn echo(body: Body) -> Response {
    Response::new(body)
}

/// hyper closes the connection after a response carrying `Connection: close`.
async fn close() -> impl IntoResponse {
    ([(header::CONNECTION, "close")], "ok\n")
}

#[derive(Deserialize)]
struct StallQuery {
    ms: u64,
}

async fn stall(
    State(state): State<Arc<SandboxState>>,
    Query(query): Query<StallQuery>,
) -> StatusCode {
    state.stall_for(query.ms);
    StatusCode::NO_CONTENT
}

/// The body of `GET /control/stats`.
#[derive(Serialize)]
struct Stats {
    requests: u64,
    /// WebSocket connections open now.
    ws_connections: u64,
    /// Text and binary messages received, and sent (each echo, each delivery of a broadcast).
    ws_messages_in: u64,
    ws_messages_out: u64,
    /// Room members disconnected (close code 1008) for falling too far behind.
    ws_lagged_disconnects: u64,
    /// Members per open room.
    rooms: BTreeMap<String, usize>,
}

async fn stats(State(state): State<Arc<SandboxState>>) -> Json<Stats> {
    Json(Stats {
        requests: state.requests(),
        ws_connections: state.ws.connections(),
        ws_messages_in: state.ws.messages_in(),
        ws_messages_out: state.ws.messages_out(),
        ws_lagged_disconnects: state.ws.lagged(),
        rooms: state.rooms.members(),
    })
}

/// Zeroes the counters (requests and WebSocket messages), not the gauges.
async fn reset_stats(State(state): State<Arc<SandboxState>>) -> StatusCode {
    state.reset_requests();
    state.ws.reset();
    StatusCode::NO_CONTENT
}
