//! Endpoints for what a real HTTP client does: redirect chains, cookies, compressed bodies and
//! a decompression bomb.
//!
//! - `GET /redirect/{n}`: a 302 to `/redirect/{n-1}`, until `/redirect/0` answers 200.
//! - `GET /redirect-to?url=U&status=S`: an S (default 302) to `U`, wherever it points.
//! - `POST /cookies/login`: a 303 to `/cookies` that sets `session` (a new value each time, path
//!   `/`) and `scoped` (path `/cookies/scoped`).
//! - `GET /cookies/set?name=value&…`: 200, setting each pair (path `/`).
//! - `GET /cookies` and `GET /cookies/scoped`: the cookies the request carried, as JSON
//!   (`{"cookies": {"session": "…"}}`).
//! - `GET /compressed/{gzip|deflate|br}`: a JSON body in that coding when `Accept-Encoding`
//!   offers it, as it is otherwise.
//! - `GET /bomb/{gzip|br}`: 64 MiB of zeros in that coding (about 64 KiB on the wire), whatever
//!   the request asked for: a hostile target.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

/// Longest chain `/redirect/{n}` starts.
const MAX_CHAIN: u32 = 50;
/// What a bomb decodes to.
const BOMB_LEN: usize = 64 << 20;

pub(super) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/redirect/{n}", get(chain))
        .route("/redirect-to", get(redirect_to))
        .route("/cookies", get(show_cookies))
        .route("/cookies/scoped", get(show_cookies))
        .route("/cookies/set", get(set_cookies))
        .route("/cookies/login", post(login))
        .route("/compressed/{coding}", get(compressed))
        .route("/bomb/{coding}", get(bomb))
}

fn found(status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (status, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn chain(Path(n): Path<u32>) -> Response {
    match n {
        0 => Json(serde_json::json!({ "redirected": true })).into_response(),
        n if n <= MAX_CHAIN => found(StatusCode::FOUND, &format!("/redirect/{}", n - 1)),
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[derive(Deserialize)]
struct RedirectTo {
    url: String,
    status: Option<u16>,
}

async fn redirect_to(Query(q): Query<RedirectTo>) -> Response {
    match StatusCode::from_u16(q.status.unwrap_or(302)) {
        Ok(s) if s.is_redirection() => found(s, &q.url),
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The request's cookies by name (a repeated name keeps its last value).
fn cookies_of(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

async fn show_cookies(headers: HeaderMap) -> Response {
    Json(serde_json::json!({ "cookies": cookies_of(&headers) })).into_response()
}

async fn set_cookies(Query(pairs): Query<BTreeMap<String, String>>) -> Response {
    let mut response = Json(serde_json::json!({ "set": pairs.len() })).into_response();
    for (name, value) in &pairs {
        if let Ok(v) = HeaderValue::from_str(&format!("{name}={value}; Path=/")) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

async fn login() -> Response {
    static SESSIONS: AtomicU64 = AtomicU64::new(0);
    let n = SESSIONS.fetch_add(1, Ordering::Relaxed) + 1;
    let mut response = found(StatusCode::SEE_OTHER, "/cookies");
    for cookie in [
        format!("session=s-{n}; Path=/; HttpOnly"),
        "scoped=1; Path=/cookies/scoped".to_string(),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The body `/compressed/*` sends: JSON of about 4 KiB.
fn document() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| {
        let items: Vec<_> = (0..100)
            .map(|i| serde_json::json!({ "id": i, "name": format!("item-{i}") }))
            .collect();
        serde_json::to_vec(&serde_json::json!({ "ok": true, "items": items })).unwrap_or_default()
    })
}

fn encode(coding: &str, data: &[u8]) -> Option<Vec<u8>> {
    let level = flate2::Compression::default();
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(data).ok()?;
            e.finish().ok()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
            e.write_all(data).ok()?;
            e.finish().ok()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                e.write_all(data).ok()?;
            }
            Some(out)
        }
        _ => None,
    }
}

fn offers(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|c| c.split(';').next().unwrap_or("").trim() == coding)
}

fn coded(coding: &str, body: Vec<u8>) -> Response {
    let json = HeaderValue::from_static("application/json");
    match HeaderValue::from_str(coding) {
        Ok(c) => (
            [(header::CONTENT_TYPE, json), (header::CONTENT_ENCODING, c)],
            Bytes::from(body),
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn compressed(Path(coding): Path<String>, headers: HeaderMap) -> Response {
    if !offers(&headers, &coding) {
        return ([(header::CONTENT_TYPE, "application/json")], document()).into_response();
    }
    match encode(&coding, document()) {
        Some(body) => coded(&coding, body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn bomb(Path(coding): Path<String>) -> Response {
    static GZIP: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    static BR: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    let cell = match coding.as_str() {
        "gzip" => &GZIP,
        "br" => &BR,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match cell.get_or_init(|| encode(&coding, &vec![0u8; BOMB_LEN])) {
        Some(body) => coded(&coding, body.clone()),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
