//! What an API request carries, read and checked: the `{id}` path segment, a JSON body, and
//! the text fields inside it. It refuses to authenticate (that is `caller`) or to route.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Longest accepted text field (username, title, name, topic, …), in bytes.
const MAX_TEXT_LEN: usize = 256;

/// The `{id}` path segment; anything that is not a number names nothing, so it is a 404.
pub(in crate::sandbox) struct Id(pub(in crate::sandbox) u64);

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
pub(in crate::sandbox) struct JsonBody<T>(pub(in crate::sandbox) T);

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
pub(in crate::sandbox) fn check_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.len() > MAX_TEXT_LEN {
        return Err(ApiError::BadRequest(format!(
            "`{field}` must be 1 to {MAX_TEXT_LEN} bytes"
        )));
    }
    Ok(())
}
