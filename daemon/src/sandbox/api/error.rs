//! The JSON error shape every `/api/t/...` route shares: `{"error": "..."}` with a stable
//! message and the status that goes with it. It refuses to carry internals into a response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Every API failure, answered as `{"error": "..."}` with a stable message.
#[derive(Debug)]
pub(in crate::sandbox) enum ApiError {
    BadRequest(String),
    Unauthorized,
    /// A webhook whose signature does not verify.
    BadSignature,
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
            ApiError::BadSignature => (
                StatusCode::UNAUTHORIZED,
                "Webhook-Signature does not verify: t=UNIX_SECONDS,v1=hex(HMAC-SHA256(secret, t + \".\" + body))",
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
