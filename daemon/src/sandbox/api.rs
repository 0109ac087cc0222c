//! The `/api/t/{t}/...` endpoints: the route table, and nothing else. What the handlers share
//! lives below it: who is calling (`caller`: the tenant and token registries, bearer-token
//! authentication), what a request carries (`input`) and the JSON error shape (`error`).
//!
//! Each area (`tenants`, `quiz`, `members`, `uploads`, `events`) owns its per-tenant state and its
//! handlers; this module only wires them. State lives in memory behind plain locks: this is a test
//! target, so it refuses persistence, eviction and real password hashing.

pub(super) mod caller;
pub(super) mod error;
pub(super) mod input;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use self::caller::Api;
use self::error::ApiError;
use super::{events, members, quiz, tenants, uploads, webhooks};

/// Largest body of any API request but an upload, in bytes.
const MAX_JSON_BODY_LEN: usize = 1 << 20;

pub(super) fn router<S>(api: Arc<Api>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/t/{t}/register", post(tenants::register))
        .route("/api/t/{t}/login", post(tenants::login))
        .route("/api/t/{t}/sessions", post(quiz::create).get(quiz::list))
        .route("/api/t/{t}/sessions/{id}/join", post(quiz::join))
        .route("/api/t/{t}/sessions/{id}/answers", post(quiz::answer))
        .route("/api/t/{t}/sessions/{id}/scoreboard", get(quiz::scoreboard))
        .route(
            "/api/t/{t}/members",
            post(members::create).get(members::search),
        )
        .route(
            "/api/t/{t}/members/{id}",
            get(members::read)
                .put(members::update)
                .delete(members::delete),
        )
        .route("/api/t/{t}/uploads/{id}", get(uploads::read))
        .route("/api/t/{t}/events", post(events::create))
        .route("/api/t/{t}/events/{id}", get(events::read))
        .route("/api/t/{t}/events/{id}/rsvp", post(events::rsvp))
        .route(
            "/api/t/{t}/webhooks",
            post(webhooks::receive).get(webhooks::counts),
        )
        .route(
            "/api/t/{t}/subscriptions",
            post(events::subscribe).get(events::subscriptions),
        )
        .layer(middleware::from_fn(read_body_first))
        // Added after the layer: `uploads` streams its body and enforces its own limit, so it can
        // drain an oversized body before answering.
        .route(
            "/api/t/{t}/uploads",
            post(uploads::upload).layer(DefaultBodyLimit::disable()),
        )
        .with_state(api)
}

/// Reads the whole body before routing. hyper closes a connection whose request body was left
/// unread, so without this a `POST .../join` sent with `{}` (or any refused request) would cost
/// the client a reconnect.
async fn read_body_first(request: Request, next: Next) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_JSON_BODY_LEN)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    Ok(next.run(Request::from_parts(parts, Body::from(body))).await)
}
