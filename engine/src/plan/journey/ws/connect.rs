//! `ws_connect`: the upgrade request compiled once, its path and headers templated.

use toml::Spanned;

use super::WsConnect;
use crate::plan::checker::Checker;
use crate::plan::journey::scope::StepContext;
use crate::plan::template::Escape;
use crate::proto::ws;
use crate::scenario::StepSpec;

/// `ws_connect`: a path on the target, or a `ws://`/`wss://` URL of the target's own origin.
pub(super) fn compile_connect(
    c: &mut Checker<'_>,
    cx: &StepContext<'_>,
    s: &StepSpec,
    url: &Spanned<String>,
) -> Option<WsConnect> {
    let text = url.get_ref().as_str();
    let path = match path_of(text, cx.base.host_header, cx.base.tls) {
        Ok(p) => p,
        Err(e) => {
            c.error(&url.span(), e);
            return None;
        }
    };
    let path = cx.template(c, path, url.span(), Escape::Path)?;
    let subprotocols = s
        .subprotocols
        .as_ref()
        .map(|p| p.get_ref().clone())
        .unwrap_or_default();
    for p in &subprotocols {
        if let Err(e) = ws::validate_subprotocol(p) {
            if let Some(sp) = &s.subprotocols {
                c.error(&sp.span(), format!("subprotocol `{p}`: {e}"));
            }
        }
    }
    let mut headers = Vec::new();
    let mut has_host = false;
    let defaults = cx.base.default_headers.iter().filter(|(n, _)| {
        // The run's headers go on the upgrade too, but not those about a request body.
        !["content-type", "content-length", "transfer-encoding"]
            .iter()
            .any(|b| n.eq_ignore_ascii_case(b))
            && ws::validate_handshake_header(n, "").is_ok()
    });
    for (n, v) in defaults {
        has_host |= n.eq_ignore_ascii_case("host");
        if let Some(t) = cx.template(c, &format!("{n}: {v}"), 0..0, Escape::Header) {
            headers.push(t);
        }
    }
    for h in &s.headers {
        let Some((n, _)) = h.get_ref().split_once(':') else {
            c.error(
                &h.span(),
                format!("header `{}` must be written \"Name: value\"", h.get_ref()),
            );
            continue;
        };
        if let Err(e) = ws::validate_handshake_header(n.trim(), "") {
            c.error(&h.span(), format!("header `{}`: {e}", n.trim()));
            continue;
        }
        has_host |= n.trim().eq_ignore_ascii_case("host");
        if let Some(t) = cx.header_template(c, h.get_ref(), h.span()) {
            headers.push(t);
        }
    }
    let mut after_path = String::from(" HTTP/1.1\r\n");
    if !has_host {
        after_path.push_str(&format!("Host: {}\r\n", cx.base.host_header));
    }
    after_path
        .push_str("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n");
    if !subprotocols.is_empty() {
        after_path.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            subprotocols.join(", ")
        ));
    }
    let compression = s.compression.as_ref().is_some_and(|k| *k.get_ref());
    if compression {
        after_path.push_str(&format!(
            "Sec-WebSocket-Extensions: {}\r\n",
            ws::deflate::OFFER
        ));
    }
    Some(WsConnect {
        start: format!("GET {}", cx.base.base_path.trim_end_matches('/')).into_bytes(),
        path,
        after_path: after_path.into_bytes(),
        headers,
        subprotocols,
        kept: false,
        compression,
    })
}

/// The path (and query) of a `ws_connect`: as written when it starts with `/`, or taken from
/// a URL whose scheme fits the target (`ws` for http, `wss` for https) and whose host is the
/// target's.
fn path_of<'a>(text: &'a str, host_header: &str, tls: bool) -> Result<&'a str, String> {
    if text.starts_with('/') {
        return Ok(text);
    }
    let (scheme, rest) = text.split_once("://").ok_or_else(|| {
        format!("ws_connect `{text}`: give a path (\"/ws/rooms/1\") or a ws:// or wss:// URL")
    })?;
    let want = if tls { "wss" } else { "ws" };
    if !scheme.eq_ignore_ascii_case(want) {
        return Err(format!(
            "ws_connect `{text}`: the target is {}, so its sockets are {want}://",
            if tls { "https" } else { "http" }
        ));
    }
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let default_port = if tls { ":443" } else { ":80" };
    let same = authority.eq_ignore_ascii_case(host_header)
        || format!("{authority}{default_port}").eq_ignore_ascii_case(host_header)
        || authority.eq_ignore_ascii_case(&format!("{host_header}{default_port}"));
    if !same {
        return Err(format!(
            "ws_connect `{text}`: sockets go to the target's host ({host_header}); another origin is not supported"
        ));
    }
    Ok(path)
}
