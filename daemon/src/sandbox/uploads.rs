//! File uploads: `POST /api/t/{t}/uploads` (multipart/form-data with a `file` part) and
//! `GET /api/t/{t}/uploads/{id}`.
//!
//! Only sizes and file names are kept; the bytes are counted and dropped as they arrive. The limit
//! is enforced here rather than by axum's body limit so that an oversized body can be drained before
//! the 413: closing on unread bytes sends a reset, which can destroy the answer before the client
//! reads it. It refuses to store, checksum or serve back what was uploaded.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use hyper::body::Body as _;
use serde::Serialize;

use super::api::caller::{lock, Caller};
use super::api::error::ApiError;
use super::api::input::Id;

/// Largest accepted upload (the sum of every part's data), in bytes.
const MAX_UPLOAD_LEN: usize = 8 << 20;
/// How much of an oversized body is read and dropped before answering 413 …
const MAX_DRAIN_LEN: usize = 64 << 20;
/// … and for how long.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The part whose size and file name are recorded.
const FILE_PART: &str = "file";
/// Longer file names are cut to this many characters.
const MAX_FILENAME_CHARS: usize = 255;

#[derive(Default)]
pub(super) struct Uploads {
    stored: Vec<Uploaded>,
}

#[derive(Clone, Serialize)]
pub(super) struct Uploaded {
    upload_id: u64,
    bytes: usize,
    filename: String,
}

/// The `file` part as received.
struct FilePart {
    bytes: usize,
    filename: String,
}

pub(super) async fn upload(
    caller: Caller,
    request: Request,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    if !is_multipart(request.headers()) {
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain_body(request.into_body())).await;
        return Err(ApiError::UnsupportedMediaType);
    }
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let file = match read_parts(&mut multipart).await {
        Err(ApiError::PayloadTooLarge) => {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain(&mut multipart)).await;
            return Err(ApiError::PayloadTooLarge);
        }
        other => other?,
    };
    let mut uploads = lock(&caller.tenant.uploads);
    let uploaded = Uploaded {
        upload_id: uploads.stored.len() as u64 + 1,
        bytes: file.bytes,
        filename: file.filename,
    };
    uploads.stored.push(uploaded.clone());
    Ok((StatusCode::CREATED, Json(uploaded)))
}

pub(super) async fn read(caller: Caller, Id(id): Id) -> Result<Json<Uploaded>, ApiError> {
    let uploads = lock(&caller.tenant.uploads);
    let index = usize::try_from(id.wrapping_sub(1)).unwrap_or(usize::MAX);
    let uploaded = uploads.stored.get(index);
    uploaded
        .cloned()
        .map(Json)
        .ok_or(ApiError::NotFound("no such upload"))
}

fn is_multipart(headers: &HeaderMap) -> bool {
    let content_type = headers.get(header::CONTENT_TYPE);
    let content_type = content_type.and_then(|value| value.to_str().ok());
    content_type.is_some_and(|value| {
        let essence = value.split(';').next().unwrap_or_default();
        essence.trim().eq_ignore_ascii_case("multipart/form-data")
    })
}

/// Counts every part's data; returns the first `file` part, or 413 as soon as the total is over.
async fn read_parts(multipart: &mut Multipart) -> Result<FilePart, ApiError> {
    let mut total = 0usize;
    let mut file = None;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let filename = field.file_name().unwrap_or_default();
        let filename: String = filename.chars().take(MAX_FILENAME_CHARS).collect();
        let is_file = file.is_none() && field.name() == Some(FILE_PART);
        let mut part_len = 0;
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            part_len += chunk.len();
            total += chunk.len();
            if total > MAX_UPLOAD_LEN {
                return Err(ApiError::PayloadTooLarge);
            }
        }
        if is_file {
            file = Some(FilePart {
                bytes: part_len,
                filename,
            });
        }
    }
    file.ok_or_else(|| ApiError::BadRequest(format!("no `{FILE_PART}` part in the body")))
}

/// Reads and drops the rest of a multipart body, up to `MAX_DRAIN_LEN`.
async fn drain(multipart: &mut Multipart) {
    let mut drained = 0;
    // `next_field` skips what is left of a part that was not read to its end.
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            drained += chunk.len();
            if drained > MAX_DRAIN_LEN {
                return;
            }
        }
    }
}

/// Reads and drops a body that will not be parsed, up to `MAX_DRAIN_LEN`.
async fn drain_body(mut body: Body) {
    let mut drained = 0;
    while let Some(Ok(frame)) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        drained += frame.data_ref().map_or(0, |data| data.len());
        if drained > MAX_DRAIN_LEN {
            return;
        }
    }
}

fn malformed(error: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::BadRequest(format!("malformed multipart body: {}", error.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_form_data_is_multipart() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("value"));
            headers
        };
        assert!(is_multipart(&headers("multipart/form-data; boundary=x")));
        assert!(is_multipart(&headers("Multipart/Form-Data;boundary=x")));
        assert!(!is_multipart(&headers("application/json")));
        assert!(!is_multipart(&headers("multipart/mixed; boundary=x")));
        assert!(!is_multipart(&HeaderMap::new()));
    }
}
