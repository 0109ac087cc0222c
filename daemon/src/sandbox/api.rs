//! The `/api/t/{t}/...` endpoints: the route table, the tenant and token registries, bearer-token
//! authentication and the JSON error shape every API route shares.
//!
//! Each area (`tenants`, `quiz`, `members`, `uploads`, `events`) owns its per-tenant state and its
//! handlers; this module only wires them and decides who is calling. State lives in memory behind
//! plain locks: this is a test target, so it refuses persistence, eviction and real password hashing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::tenants::{self, Tenant};
use super::{events, members, quiz, uploads};

/// Longest accepted text field (username, title, name, topic, …), in bytes.
const MAX_TEXT_LEN: usize = 256;
/// Largest body of any API request but an upload, in bytes.
const MAX_JSON_BODY_LEN: usize = 1 << 20;
/// Random bytes in a token (rendered as twice as many hex digits).
const TOKEN_LEN: usize = 16;

pub(super) fn router<S>() -> Router<S>
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
        .with_state(Arc::new(Api::default()))
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

/// Every tenant, and every token issued to any of them.
#[derive(Default)]
pub(super) struct Api {
    tenants: RwLock<HashMap<String, Arc<Tenant>>>,
    tokens: RwLock<HashMap<String, Caller>>,
}

impl Api {
    /// The tenant named `name`, created on first use; 400 if the name is not `[a-z0-9-]{1,32}`.
    pub(super) fn tenant_or_create(&self, name: &str) -> Result<Arc<Tenant>, ApiError> {
        if !tenants::is_valid_name(name) {
            return Err(ApiError::BadRequest(
                "tenant names are 1 to 32 of [a-z0-9-]".into(),
            ));
        }
        if let Some(tenant) = self.tenant(name) {
            return Ok(tenant);
        }
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        let tenant = tenants
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Tenant::new(name)));
        Ok(Arc::clone(tenant))
    }

    pub(super) fn tenant(&self, name: &str) -> Option<Arc<Tenant>> {
        let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        tenants.get(name).cloned()
    }

    /// A new random token bound to `caller`'s tenant and user.
    pub(super) fn issue_token(&self, caller: Caller) -> Result<String, ApiError> {
        let mut random = [0u8; TOKEN_LEN];
        getrandom::fill(&mut random)
            .map_err(|_| ApiError::Internal("no randomness for a token"))?;
        let token: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        tokens.insert(token.clone(), caller);
        Ok(token)
    }

    fn caller(&self, token: &str) -> Option<Caller> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        tokens.get(token).cloned()
    }
}

/// Who a bearer token speaks for. As an extractor it is the authentication: 401 without a known
/// token, 403 when the token belongs to a tenant other than the path's `{t}`.
#[derive(Clone)]
pub(super) struct Caller {
    pub(super) tenant: Arc<Tenant>,
    pub(super) user_id: u64,
    pub(super) username: Arc<str>,
}

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let caller = api.caller(token).ok_or(ApiError::Unauthorized)?;
        let params = RawPathParams::from_request_parts(parts, api)
            .await
            .map_err(|_| ApiError::Forbidden)?;
        let tenant = params.iter().find(|(key, _)| *key == "t").map(|(_, t)| t);
        if tenant != Some(caller.tenant.name()) {
            return Err(ApiError::Forbidden);
        }
        Ok(caller)
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The `{id}` path segment; anything that is not a number names nothing, so it is a 404.
pub(super) struct Id(pub(super) u64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("no such id"))?;
        let id = params.iter().find(|(key, _)| *key == "id");
        let id = id.and_then(|(_, id)| id.parse().ok());
        id.map(Id).ok_or(ApiError::NotFound("no such id"))
    }
}

/// A JSON request body. Unlike axum's `Json` it ignores `Content-Type` (load generators often omit
/// it) and answers every malformed body with 400 in the API's error shape.
pub(super) struct JsonBody<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let body =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                    _ => ApiError::BadRequest("unreadable body".into()),
                })?;
        serde_json::from_slice(&body)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("bad JSON body: {e}")))
    }
}

/// 400 unless `value` is non-empty and at most `MAX_TEXT_LEN` bytes.
pub(super) fn check_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.len() > MAX_TEXT_LEN {
        return Err(ApiError::BadRequest(format!(
            "`{field}` must be 1 to {MAX_TEXT_LEN} bytes"
        )));
    }
    Ok(())
}

/// Locks a tenant's state; a handler that panicked mid-update cannot leave it worse than torn.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every API failure, answered as `{"error": "..."}` with a stable message.
#[derive(Debug)]
pub(super) enum ApiError {
    BadRequest(String),
    Unauthorized,
    /// Login with an unknown tenant, an unknown user or the wrong password.
    WrongLogin,
    Forbidden,
    NotFound(&'static str),
    Conflict(&'static str),
    PayloadTooLarge,
    UnsupportedMediaType,
    Internal(&'static str),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, message.as_str()),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "send `Authorization: Bearer TOKEN` with a token from register or login",
            ),
            ApiError::WrongLogin => (StatusCode::UNAUTHORIZED, "wrong username or password"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "token belongs to another tenant"),
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, *message),
            ApiError::Conflict(message) => (StatusCode::CONFLICT, *message),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send multipart/form-data",
            ),
            ApiError::Internal(message) => (StatusCode::INTERNAL_SERVER_ERROR, *message),
        };
        (status, Json(ErrorBody { error: message })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_needs_the_scheme_and_a_token() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("value"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            "bearer  abc ".parse().expect("value"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("value"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().expect("value"));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn tokens_are_random_and_bound_to_their_caller() {
        let api = Api::default();
        let tenant = api.tenant_or_create("acme").expect("valid name");
        let caller = Caller {
            tenant,
            user_id: 7,
            username: "ann".into(),
        };
        let first = api.issue_token(caller.clone()).expect("token");
        let second = api.issue_token(caller).expect("token");
        assert_ne!(first, second);
        assert_eq!(first.len(), 2 * TOKEN_LEN);
        let bound = api.caller(&first).expect("known token");
        assert_eq!((bound.tenant.name(), bound.user_id), ("acme", 7));
        assert!(api.caller("nope").is_none());
        assert!(api.tenant_or_create("Not_Valid").is_err());
    }
}
