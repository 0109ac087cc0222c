//! loadd's control API (JSON under `/v1`, described in `docs/openapi.yaml`): the router, its
//! shared state, bearer-token auth and the one error type every route answers with.
//!
//! `app(state)` builds the whole router so tests drive it without sockets; `serve` binds it.
//! It refuses to leak internals: every failure is a stable `{"error": "..."}` body.

mod events;
mod listen;
mod policy;
mod report;
mod routes;
mod serve;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

pub use policy::{AllowRule, Limits, Policy};
pub use serve::{default_state_dir, serve_forever};

use crate::runner::Runs;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub runs: Arc<Runs>,
    pub policy: Arc<Policy>,
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let body_limit = state.policy.limits.max_body_bytes;
    let authed = Router::new()
        .route("/v1/runs", post(routes::submit).get(routes::list))
        .route("/v1/runs/{id}", get(routes::status))
        .route("/v1/runs/{id}/events", get(events::events))
        .route("/v1/runs/{id}/stop", post(routes::stop))
        .route("/v1/runs/{id}/report", get(routes::report))
        .route("/v1/runs/{id}/histogram", get(routes::histogram))
        .route("/metrics", get(routes::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/v1/health", get(routes::health))
        .merge(authed)
        .fallback(|| async { ApiError::NotFound("no such route") })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(t) if state.policy.token_matches(t.trim()) => next.run(request).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

/// Every failure an API route can answer with.
#[derive(Debug)]
pub enum ApiError {
    Unauthorized,
    NotFound(&'static str),
    /// The scenario does not parse or plan: located messages, as `loadctl validate` prints them.
    InvalidScenario(Vec<String>),
    BadRequest(String),
    Forbidden(String),
    Conflict(String),
    TooLarge(String),
    /// Logged; the client only learns that it was our fault.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "missing or wrong bearer token"}),
            ),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, serde_json::json!({"error": what})),
            ApiError::InvalidScenario(details) => (
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "invalid scenario", "details": details}),
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, serde_json::json!({"error": m})),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, serde_json::json!({"error": m})),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, serde_json::json!({"error": m})),
            ApiError::TooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({"error": m}),
            ),
            ApiError::Internal(m) => {
                eprintln!("loadd: error: {m}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"error": "internal error"}),
                )
            }
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
