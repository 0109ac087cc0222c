//! loadd's control API (JSON under `/v1`, described in `docs/openapi.yaml`): the router, its
//! shared state, bearer-token auth and the one error type every route answers with.
//!
//! `app(state)` builds the whole router so tests drive it without sockets; `serve` binds it.
//! It refuses to leak internals: every failure is a stable `{"error": "..."}` body.

mod allowlist;
mod auth;
mod events;
mod listen;
mod policy;
mod report;
mod routes;
mod serve;
mod spec_limits;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

pub use allowlist::AllowRule;
pub use auth::Caller;
pub use policy::{Limits, NamedToken, Policy};
pub use serve::{default_state_dir, serve_forever};

use crate::runner::Runs;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub runs: Arc<Runs>,
    pub policy: Arc<Policy>,
    /// Failed token attempts per client address.
    pub failures: Arc<auth::Failures>,
    /// Live event streams that may be open at once (`--max-subscribers`).
    pub subscribers: Arc<tokio::sync::Semaphore>,
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let body_limit = state.policy.limits.max_body_bytes;
    let authed = Router::new()
        .route("/v1/runs", post(routes::submit).get(routes::list))
        .route("/v1/runs/{id}", get(routes::status).delete(routes::delete))
        .route("/v1/runs/{id}/events", get(events::events))
        .route("/v1/runs/{id}/stop", post(routes::stop))
        .route("/v1/runs/{id}/report", get(routes::report))
        .route("/v1/runs/{id}/histogram", get(routes::histogram))
        .route("/metrics", get(routes::metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/v1/health", get(routes::health))
        .merge(authed)
        .fallback(|| async { ApiError::NotFound("no such route") })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
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
    /// Over a rate or count limit (429).
    TooManyRequests(String),
    /// Logged; the client only learns that it was our fault.
    Internal(String),
}

impl ApiError {
    /// One line for the audit log (internals included: the log is the operator's).
    pub fn summary(&self) -> String {
        match self {
            ApiError::Unauthorized => "401 missing or wrong bearer token".into(),
            ApiError::NotFound(m) => format!("404 {m}"),
            ApiError::InvalidScenario(d) => format!("400 invalid scenario: {}", d.join("; ")),
            ApiError::BadRequest(m) => format!("400 {m}"),
            ApiError::Forbidden(m) => format!("403 {m}"),
            ApiError::Conflict(m) => format!("409 {m}"),
            ApiError::TooLarge(m) => format!("413 {m}"),
            ApiError::TooManyRequests(m) => format!("429 {m}"),
            ApiError::Internal(m) => format!("500 {m}"),
        }
    }
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
            ApiError::TooManyRequests(m) => (
                StatusCode::TOO_MANY_REQUESTS,
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
