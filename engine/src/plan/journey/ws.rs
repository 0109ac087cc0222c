//! WebSocket steps of a journey: `ws_connect`, `ws_send`, `ws_expect`, `ws_close`, compiled
//! into a `WsAction` the user's connection runs (`shard::conn::ws_steps`).
//!
//! A step does one of them and nothing of an HTTP request. A journey's socket is the user's
//! own: opened by `ws_connect`, used by the steps after it in the same task, and closed by
//! `ws_close` or at the end of the iteration.

use toml::Spanned;

use crate::plan::checker::Checker;
use crate::plan::journey::compile::{compile_think, compile_timeout};
use crate::plan::journey::response::{compile_capture, compile_checks, needs_body};
use crate::plan::journey::scope::StepContext;
use crate::plan::journey::{Check, StepPlan, StepRequest, Think};
use crate::plan::template::{Escape, Template};
use crate::proto::ws;
use crate::scenario::{StepSpec, WsExpectSpec, WsSendSpec};

/// Most matching messages one `ws_expect` waits for.
const MAX_EXPECT_COUNT: u64 = 100_000;

/// What a WebSocket step does.
#[derive(Clone, Debug)]
pub enum WsAction {
    Connect(WsConnect),
    Send { binary: bool, message: Template },
    Expect(WsExpect),
    Close { code: u16, reason: String },
}

/// The upgrade request: `GET` + base path, the templated path, the fixed lines, then the
/// key (fresh per connect) and the templated headers.
#[derive(Clone, Debug)]
pub struct WsConnect {
    pub start: Vec<u8>,
    pub path: Template,
    /// ` HTTP/1.1\r\nHost: …\r\nUpgrade: websocket\r\n…Sec-WebSocket-Version: 13\r\n`
    pub after_path: Vec<u8>,
    pub headers: Vec<Template>,
    pub subprotocols: Vec<String>,
}

/// What a message must be to match; every given condition must hold.
#[derive(Clone, Debug)]
pub struct WsExpect {
    pub json: Vec<(String, serde_json::Value)>,
    pub text_contains: Option<Template>,
    pub regex: Option<regex::bytes::Regex>,
    pub timeout_ns: Option<u64>,
    pub count: u32,
}

impl WsExpect {
    /// True when `payload` satisfies every condition; `needle` is `text_contains` rendered.
    pub fn matches(&self, payload: &[u8], needle: &[u8]) -> bool {
        if self.text_contains.is_some() && memchr::memmem::find(payload, needle).is_none() {
            return false;
        }
        if self.regex.as_ref().is_some_and(|re| !re.is_match(payload)) {
            return false;
        }
        if self.json.is_empty() {
            return true;
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload) else {
            return false;
        };
        self.json
            .iter()
            .all(|(pointer, expected)| value.pointer(pointer) == Some(expected))
    }
}

/// HTTP fields a WebSocket step may not have.
fn http_fields(s: &StepSpec) -> [(&'static str, Option<std::ops::Range<usize>>); 10] {
    [
        (
            "path",
            (!s.path.get_ref().is_empty()).then(|| s.path.span()),
        ),
        ("method", s.method.as_ref().map(Spanned::span)),
        ("body", s.body.as_ref().map(Spanned::span)),
        ("body_file", s.body_file.as_ref().map(Spanned::span)),
        ("json", s.json.as_ref().map(Spanned::span)),
        ("form", s.form.as_ref().map(Spanned::span)),
        ("upload", s.upload.as_ref().map(Spanned::span)),
        ("expect_status", s.expect_status.as_ref().map(Spanned::span)),
        (
            "follow_redirects",
            s.follow_redirects.as_ref().map(Spanned::span),
        ),
        ("compressed", s.compressed.as_ref().map(Spanned::span)),
    ]
}

/// A step with a `ws_*` action.
pub(super) fn compile_ws_step(c: &mut Checker<'_>, cx: &StepContext<'_>, s: &StepSpec) -> StepPlan {
    let actions = [
        s.ws_connect.as_ref().map(Spanned::span),
        s.ws_send.as_ref().map(Spanned::span),
        s.ws_expect.as_ref().map(Spanned::span),
        s.ws_close.as_ref().map(Spanned::span),
    ];
    if let Some(second) = actions.iter().flatten().nth(1) {
        c.error(
            second,
            "a step does one WebSocket action: put ws_connect, ws_send, ws_expect and ws_close in steps of their own",
        );
    }
    for (field, span) in http_fields(s) {
        if let Some(span) = span {
            c.error(
                &span,
                format!("`{field}` is for HTTP steps; this step is a WebSocket action"),
            );
        }
    }
    if s.once {
        c.error(
            &s.span(),
            "a WebSocket step cannot be `once`: the socket closes at the end of each iteration",
        );
    }
    if cx.base.client.http2 {
        c.error(
            &s.span(),
            "WebSocket steps need HTTP/1.1 (WebSocket over HTTP/2, RFC 8441, is not supported): use http = \"1.1\"",
        );
    }
    let action = if let Some(url) = &s.ws_connect {
        compile_connect(c, cx, s, url).map(WsAction::Connect)
    } else if let Some(send) = &s.ws_send {
        compile_send(c, cx, send)
    } else if let Some(expect) = &s.ws_expect {
        compile_expect(c, cx, expect).map(WsAction::Expect)
    } else {
        s.ws_close.as_ref().and_then(|close| {
            let k = close.get_ref();
            let code = k.code.unwrap_or(1000);
            let reason = k.reason.clone().unwrap_or_default();
            let mut probe = Vec::new();
            match ws::encode_close(
                Some((code, &reason)),
                &mut fastrand::Rng::with_seed(0),
                &mut probe,
            ) {
                Ok(()) => Some(WsAction::Close { code, reason }),
                Err(e) => {
                    c.error(&close.span(), format!("ws_close: {e}"));
                    None
                }
            }
        })
    };
    if s.ws_connect.is_none() && s.subprotocols.is_some() {
        if let Some(p) = &s.subprotocols {
            c.error(&p.span(), "`subprotocols` belongs to a ws_connect step");
        }
    }
    if s.ws_connect.is_none() && !s.headers.is_empty() {
        c.error(
            &s.headers[0].span(),
            "`headers` of a WebSocket step go with its ws_connect (the upgrade request)",
        );
    }
    let expect = s.ws_expect.is_some();
    let captures: Vec<_> = if expect {
        s.capture
            .iter()
            .filter_map(|(name, spec)| compile_capture(c, name, spec, &cx.vars.names))
            .collect()
    } else {
        for spec in s.capture.values() {
            c.error(
                &spec.span(),
                "only a ws_expect step captures: from the message it matched",
            );
        }
        Vec::new()
    };
    let checks = match &s.check {
        Some(k) if expect => {
            let checks = compile_checks(c, k);
            message_checks(c, k, checks)
        }
        Some(k) => {
            let span = k
                .body_contains
                .as_ref()
                .map_or_else(|| s.span(), Spanned::span);
            c.error(
                &span,
                "only a ws_expect step has checks: of the message it matched",
            );
            Vec::new()
        }
        None => Vec::new(),
    };
    let name = s.name.as_ref().map_or_else(
        || {
            let what = match (&s.ws_connect, &action) {
                (Some(url), _) => format!("ws_connect {}", url.get_ref()),
                (None, Some(WsAction::Send { .. })) => format!("ws_send {}", cx.index + 1),
                (None, Some(WsAction::Expect(_))) => format!("ws_expect {}", cx.index + 1),
                _ => format!("ws_close {}", cx.index + 1),
            };
            match cx.task_name {
                Some(t) => format!("{t}: {what}"),
                None => what,
            }
        },
        |n| n.get_ref().clone(),
    );
    let needs_body = needs_body(&captures, &checks);
    let mut plan = StepPlan::fixed(name, false, Vec::new());
    plan.request = StepRequest::Static(Vec::new());
    plan.needs_body = needs_body;
    plan.captures = captures;
    plan.checks = checks;
    plan.think = s
        .think
        .as_ref()
        .map_or(Think::None, |t| compile_think(c, t));
    plan.timeout_ns = s.timeout.as_ref().and_then(|t| compile_timeout(c, t));
    plan.ws = action.map(Box::new);
    plan
}

/// Checks of a message: those about its body; status and headers have no meaning here.
fn message_checks(
    c: &mut Checker<'_>,
    k: &crate::scenario::CheckSpec,
    checks: Vec<Check>,
) -> Vec<Check> {
    for (field, span) in [
        ("status", k.status.as_ref().map(Spanned::span)),
        ("header", k.header.as_ref().map(Spanned::span)),
    ] {
        if let Some(span) = span {
            c.error(
                &span,
                format!("check.{field} does not apply to a WebSocket message"),
            );
        }
    }
    checks
        .into_iter()
        .filter(|k| !matches!(k, Check::Status(_) | Check::Header(_)))
        .collect()
}

/// `ws_connect`: a path on the target, or a `ws://`/`wss://` URL of the target's own origin.
fn compile_connect(
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
    Some(WsConnect {
        start: format!("GET {}", cx.base.base_path.trim_end_matches('/')).into_bytes(),
        path,
        after_path: after_path.into_bytes(),
        headers,
        subprotocols,
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

/// `ws_send`: one of text, binary or json.
fn compile_send(
    c: &mut Checker<'_>,
    cx: &StepContext<'_>,
    send: &Spanned<WsSendSpec>,
) -> Option<WsAction> {
    let k = send.get_ref();
    let given = [k.text.is_some(), k.binary.is_some(), k.json.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        c.error(
            &send.span(),
            "ws_send: give exactly one of text, binary or json, e.g. { text = \"hello {{vu}}\" }",
        );
        return None;
    }
    let (binary, text, escape) = match (&k.text, &k.binary, &k.json) {
        (Some(t), _, _) => (false, t.clone(), Escape::None),
        (_, Some(b), _) => (true, b.clone(), Escape::None),
        (_, _, Some(j)) => match serde_json::to_string(j) {
            Ok(t) => (false, t, Escape::JsonString),
            Err(e) => {
                c.error(&send.span(), format!("ws_send json cannot be encoded: {e}"));
                return None;
            }
        },
        _ => return None,
    };
    let message = cx.template(c, &text, send.span(), escape)?;
    Some(WsAction::Send { binary, message })
}

/// `ws_expect`: at least one condition, a count, a timeout.
fn compile_expect(
    c: &mut Checker<'_>,
    cx: &StepContext<'_>,
    expect: &Spanned<WsExpectSpec>,
) -> Option<WsExpect> {
    let k = expect.get_ref();
    let span = expect.span();
    let text_contains = match &k.text_contains {
        Some(t) => Some(cx.template(c, t, span.clone(), Escape::None)?),
        None => None,
    };
    let regex = match &k.regex {
        Some(r) => match regex::bytes::Regex::new(r) {
            Ok(re) => Some(re),
            Err(e) => {
                c.error(&span, format!("ws_expect regex: {e}"));
                return None;
            }
        },
        None => None,
    };
    let mut json = Vec::new();
    for (pointer, value) in k.json.iter().flatten() {
        if !pointer.is_empty() && !pointer.starts_with('/') {
            c.error(
                &span,
                format!("ws_expect json: `{pointer}` is not a JSON pointer: write \"/{pointer}\""),
            );
            continue;
        }
        match serde_json::to_value(value) {
            Ok(v) => json.push((pointer.clone(), v)),
            Err(e) => c.error(&span, format!("ws_expect json `{pointer}`: {e}")),
        }
    }
    let count = k.count.unwrap_or(1);
    if count == 0 || count > MAX_EXPECT_COUNT {
        c.error(
            &span,
            format!("ws_expect count must be 1 to {MAX_EXPECT_COUNT}, not {count}"),
        );
        return None;
    }
    let timeout_ns = match &k.timeout {
        Some(t) => compile_timeout(c, &Spanned::new(span.clone(), t.clone())),
        None => None,
    };
    Some(WsExpect {
        json,
        text_contains,
        regex,
        timeout_ns,
        count: count as u32,
    })
}

/// Every `ws_send`, `ws_expect` and `ws_close` has a `ws_connect` before it in its task.
pub(super) fn check_socket_order(c: &mut Checker<'_>, specs: &[(usize, &StepSpec)]) {
    let mut open_in: Option<usize> = None;
    for (task, s) in specs {
        if open_in.is_some_and(|t| t != *task) {
            open_in = None;
        }
        if s.ws_connect.is_some() {
            open_in = Some(*task);
        } else if s.is_ws() && open_in.is_none() {
            c.error(
                &s.span(),
                "no socket is open here: a ws_connect step must come first in this task",
            );
        }
        if s.ws_close.is_some() {
            open_in = None;
        }
    }
}
