//! WebSocket steps of a journey: `ws_connect`, `ws_send`, `ws_expect`, `ws_close`, compiled
//! into a `WsAction` the user's connection runs (`shard::conn::ws_steps`).
//!
//! A step does one of them and nothing of an HTTP request. A journey's socket is the user's
//! own: opened by `ws_connect`, used by the steps after it in the same task, and closed by
//! `ws_close` or at the end of the iteration.

mod connect;
mod listen;
pub(crate) mod pointer;

use toml::Spanned;

use crate::plan::checker::Checker;
use crate::plan::journey::response::{compile_capture, compile_checks, needs_body};
use crate::plan::journey::scope::StepContext;
use crate::plan::journey::timing::{compile_think, compile_timeout};
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
    Listen(WsListen),
}

/// Receive for `for_ns`; each message is a response of the step, timed from its timestamp
/// (`latency_from`: pointer, nanoseconds per unit) or, without one, from the message before.
#[derive(Clone, Debug)]
pub struct WsListen {
    pub for_ns: u64,
    pub latency_from: Option<(String, u64)>,
    /// (binary, message, every_ns): sent from the step's start, one every `every_ns`.
    pub send: Option<(bool, Template, u64)>,
    /// (after_ns, jitter_ns): close and reopen the socket after `after` ± `jitter`, again and
    /// again.
    pub reconnect: Option<(u64, u64)>,
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
    /// A later `ws_listen` reconnects: the user keeps the rendered upgrade to send again.
    pub kept: bool,
    /// permessage-deflate is offered (`compression = true`).
    pub compression: bool,
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
        // Scalars are found without building the document; a container or an escaped string
        // is compared on the parsed document.
        self.json.iter().all(
            |(pointer, expected)| match pointer::find(payload, pointer) {
                None => false,
                Some(pointer::Scalar::Escaped) => parsed_equals(payload, pointer, expected),
                Some(found) => found
                    .equals(expected)
                    .unwrap_or_else(|| parsed_equals(payload, pointer, expected)),
            },
        )
    }
}

/// `expected` at `pointer` in the parsed document (allocates: the rare cases only).
fn parsed_equals(payload: &[u8], pointer: &str, expected: &serde_json::Value) -> bool {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .is_some_and(|v| v.pointer(pointer) == Some(expected))
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

/// `compression` belongs to `ws_connect`.
fn check_compression(c: &mut Checker<'_>, s: &StepSpec) {
    if let Some(k) = &s.compression {
        if s.ws_connect.is_none() {
            c.error(
                &k.span(),
                "`compression` (permessage-deflate) is offered by a ws_connect step; an HTTP step asks for compressed bodies with `compressed = true`",
            );
        }
    }
}

/// A step with a `ws_*` action.
/// An HTTP step with `compression` (which only a ws_connect offers).
pub(super) fn check_http_step(c: &mut Checker<'_>, s: &StepSpec) {
    check_compression(c, s);
}

pub(super) fn compile_ws_step(c: &mut Checker<'_>, cx: &StepContext<'_>, s: &StepSpec) -> StepPlan {
    let actions = [
        s.ws_connect.as_ref().map(Spanned::span),
        s.ws_send.as_ref().map(Spanned::span),
        s.ws_expect.as_ref().map(Spanned::span),
        s.ws_close.as_ref().map(Spanned::span),
        s.ws_listen.as_ref().map(Spanned::span),
    ];
    if let Some(second) = actions.iter().flatten().nth(1) {
        c.error(
            second,
            "a step does one WebSocket action: put ws_connect, ws_send, ws_expect and ws_close in steps of their own",
        );
    }
    for (field, span) in http_fields(s) {
        if let Some(span) = span {
            let hint = if field == "compressed" {
                " (a WebSocket asks for permessage-deflate with `compression = true` on its ws_connect)"
            } else {
                ""
            };
            c.error(
                &span,
                format!("`{field}` is for HTTP steps; this step is a WebSocket action{hint}"),
            );
        }
    }
    check_compression(c, s);
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
        connect::compile_connect(c, cx, s, url).map(WsAction::Connect)
    } else if let Some(send) = &s.ws_send {
        compile_send(c, cx, send, false)
    } else if let Some(listen) = &s.ws_listen {
        listen::compile_listen(c, cx, listen).map(WsAction::Listen)
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
                (None, Some(WsAction::Listen(_))) => format!("ws_listen {}", cx.index + 1),
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

/// `ws_send` (or `ws_listen`'s `send`, `paced`): one of text, binary or json.
fn compile_send(
    c: &mut Checker<'_>,
    cx: &StepContext<'_>,
    send: &Spanned<WsSendSpec>,
    paced: bool,
) -> Option<WsAction> {
    let k = send.get_ref();
    if (k.every.is_some() || k.rate.is_some()) && !paced {
        c.error(
            &send.span(),
            "ws_send sends one message: a paced stream goes in ws_listen, which reads the socket while it waits: ws_listen = { for = \"1m\", send = { text = \"…\", every = \"12s\" } }",
        );
    }
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

/// A `ws_connect` whose socket a later `ws_listen` of its task reconnects keeps its upgrade.
pub(super) fn keep_reconnected_upgrades(steps: &mut [super::StepPlan], tasks: &[super::TaskPlan]) {
    for task in tasks {
        let mut connect = None;
        for i in task.steps.clone() {
            match steps[i].ws.as_deref() {
                Some(WsAction::Connect(_)) => connect = Some(i),
                Some(WsAction::Listen(l)) if l.reconnect.is_some() => {
                    if let Some(WsAction::Connect(c)) =
                        connect.and_then(|c| steps[c].ws.as_deref_mut())
                    {
                        c.kept = true;
                    }
                }
                _ => {}
            }
        }
    }
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
