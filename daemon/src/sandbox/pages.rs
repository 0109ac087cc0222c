//! Page loads: `GET /pages/{name}` (HTML) and the assets it references under `/static/`.
//!
//! Every body is built once per process into a shared buffer of a fixed size, with an `ETag` that
//! is a hash of its bytes; `If-None-Match` with that tag (or `*`) gets a 304. Every page name serves
//! the same document. It refuses anything a real static server would add: ranges, compression,
//! `Last-Modified`.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const PAGE_LEN: usize = 8 << 10;
const APP_JS_LEN: usize = 60 << 10;
const STYLE_CSS_LEN: usize = 15 << 10;
const LOGO_PNG_LEN: usize = 30 << 10;
/// Longest page name, in bytes.
const MAX_PAGE_NAME_LEN: usize = 64;

/// Pages are revalidated on every load (so repeat visits exercise 304s); assets are cacheable.
const PAGE_CACHE_CONTROL: &str = "no-cache";
const ASSET_CACHE_CONTROL: &str = "public, max-age=3600";

pub(super) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/pages/{name}", get(page))
        .route("/static/{file}", get(asset))
}

/// One static body and the headers that describe it.
struct Asset {
    body: Bytes,
    content_type: &'static str,
    cache_control: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: Vec<u8>, content_type: &'static str, cache_control: &'static str) -> Self {
        let etag = format!("\"{:016x}\"", fnv1a(&body));
        Asset {
            body: Bytes::from(body),
            content_type,
            cache_control,
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
        }
    }

    fn respond(&self, request_headers: &HeaderMap) -> Response {
        let headers = [
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(self.cache_control),
            ),
            (header::ETAG, self.etag.clone()),
        ];
        if self.matches(request_headers) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        let content_type = (
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        (headers, [content_type], self.body.clone()).into_response()
    }

    /// Whether `If-None-Match` lists this asset's tag (compared weakly, as RFC 9110 asks) or `*`.
    fn matches(&self, request_headers: &HeaderMap) -> bool {
        let ours = self.etag.as_bytes();
        (request_headers.get_all(header::IF_NONE_MATCH).iter())
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == ours)
    }
}

struct Assets {
    page: Asset,
    app_js: Asset,
    style_css: Asset,
    logo_png: Asset,
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| Assets {
        page: Asset::new(build_page(), "text/html; charset=utf-8", PAGE_CACHE_CONTROL),
        app_js: Asset::new(build_app_js(), "text/javascript", ASSET_CACHE_CONTROL),
        style_css: Asset::new(build_style_css(), "text/css", ASSET_CACHE_CONTROL),
        logo_png: Asset::new(build_logo_png(), "image/png", ASSET_CACHE_CONTROL),
    })
}

async fn page(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let valid = (1..=MAX_PAGE_NAME_LEN).contains(&name.len())
        && (name.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return StatusCode::NOT_FOUND.into_response();
    }
    assets().page.respond(&headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let assets = assets();
    let asset = match file.as_str() {
        "app.js" => &assets.app_js,
        "style.css" => &assets.style_css,
        "logo.png" => &assets.logo_png,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    asset.respond(&headers)
}

/// `head`, then as many `unit(i)` as fit, then spaces, then `tail`: exactly `len` bytes.
fn fill_to(len: usize, head: &str, unit: impl Fn(usize) -> String, tail: &str) -> Vec<u8> {
    let mut out = head.as_bytes().to_vec();
    for i in 0.. {
        let unit = unit(i);
        if out.len() + unit.len() + tail.len() > len {
            break;
        }
        out.extend_from_slice(unit.as_bytes());
    }
    out.resize(len.saturating_sub(tail.len()).max(out.len()), b' ');
    out.extend_from_slice(tail.as_bytes());
    out
}

fn build_page() -> Vec<u8> {
    let head = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
        <title>loadd sandbox</title>\n<link rel=\"stylesheet\" href=\"/static/style.css\">\n\
        <script src=\"/static/app.js\" defer></script>\n</head>\n<body>\n\
        <header><img src=\"/static/logo.png\" alt=\"logo\" width=\"120\" height=\"40\"></header>\n\
        <main>\n";
    let paragraph = |i| {
        format!("<p class=\"c{i}\">Paragraph {i}: a sandbox page for load tests, sized to look like a real one.</p>\n")
    };
    fill_to(PAGE_LEN, head, paragraph, "</main>\n</body>\n</html>\n")
}

fn build_app_js() -> Vec<u8> {
    let head = "\"use strict\";\nconst handlers = [];\n";
    let function = |i| {
        format!("function handler{i}(event) {{ return event.detail + {i}; }}\nhandlers.push(handler{i});\n")
    };
    fill_to(APP_JS_LEN, head, function, "export default handlers;\n")
}

fn build_style_css() -> Vec<u8> {
    let head = "body { margin: 0; font-family: sans-serif; }\n";
    let rule = |i| {
        format!(
            ".c{i} {{ margin: {}px; color: #{:06x}; }}\n",
            i % 17,
            i * 7919 % 0xff_ffff
        )
    };
    fill_to(STYLE_CSS_LEN, head, rule, "/* end */\n")
}

/// A PNG signature followed by pseudo-random bytes: the right size and type, not a decodable image.
fn build_logo_png() -> Vec<u8> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let mut out = SIGNATURE.to_vec();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < LOGO_PNG_LEN {
        // xorshift64: incompressible enough to behave like image data on the wire.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(state.to_le_bytes()[0]);
    }
    out
}

/// FNV-1a, 64-bit: a stable content hash for the `ETag`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_have_their_sizes_and_distinct_tags() {
        let assets = assets();
        assert_eq!(assets.page.body.len(), PAGE_LEN);
        assert_eq!(assets.app_js.body.len(), APP_JS_LEN);
        assert_eq!(assets.style_css.body.len(), STYLE_CSS_LEN);
        assert_eq!(assets.logo_png.body.len(), LOGO_PNG_LEN);
        assert!(assets.page.body.ends_with(b"</html>\n"));
        assert_ne!(assets.page.etag, assets.app_js.etag);
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let asset = &assets().style_css;
        let tag = asset.etag.to_str().expect("ascii").to_owned();
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, value.parse().expect("value"));
            headers
        };
        assert!(asset.matches(&with(&tag)));
        assert!(asset.matches(&with(&format!("\"other\", W/{tag}"))));
        assert!(asset.matches(&with("*")));
        assert!(!asset.matches(&with("\"other\"")));
        assert!(!asset.matches(&HeaderMap::new()));
    }
}
