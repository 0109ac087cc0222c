//! `[websocket]` for `ws://` and `wss://` targets: each connection holds a WebSocket and sends
//! templated messages on a schedule; replies are matched by order or by the message's id.
//!
//! It checks the section and refuses what does not apply to a WebSocket (steps, tasks, arrival
//! rates); it speaks no protocol (`proto::ws` does) and schedules nothing.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::plan::checker::Checker;
use crate::plan::journey::{Journey, StepPlan};
use crate::plan::model::LoadModel;
use crate::plan::target::CheckedTarget;
use crate::plan::template::{Escape, Template, BUILTINS};
use crate::scenario::{ScenarioSpec, WebSocketSpec};

/// A validated `[websocket]` section.
#[derive(Clone, Debug)]
pub struct WsPlan {
    /// Path and query of the upgrade request.
    pub path: Template,
    pub host_header: String,
    pub headers: Vec<(String, String)>,
    pub subprotocols: Vec<String>,
    pub message: Template,
    pub binary: bool,
    /// Replies are found by the message's `{{msg_id}}` rather than by order.
    pub correlate_id: bool,
    /// Messages per second per connection (0: hold only).
    pub rate_per_conn: f64,
    pub ramp: Duration,
    pub reconnect: bool,
    pub backoff: Duration,
}

impl WsPlan {
    /// Messages `sockets` sockets are asked to send in `d`, each starting at its place in the
    /// ramp and sending message k at its start + k / rate (what `conn::ws` does).
    pub fn planned_messages(&self, sockets: u32, d: Duration) -> u64 {
        if self.rate_per_conn <= 0.0 || sockets == 0 {
            return 0;
        }
        let period_ns = (1e9 / self.rate_per_conn) as u64;
        let (ramp, total, end) = (
            self.ramp.as_nanos() as u64,
            u64::from(sockets),
            d.as_nanos() as u64,
        );
        (0..total)
            .map(|i| end.saturating_sub(ramp * i / total) / period_ns.max(1))
            .sum()
    }
}

/// Step indices of a WebSocket scenario's two pseudo-steps.
pub const WS_CONNECT_STEP: usize = 0;
pub const WS_MESSAGE_STEP: usize = 1;

/// `[websocket]` for a ws:// target, checked.
pub(crate) fn check_websocket(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    target: &CheckedTarget,
    headers: &[(String, String)],
    model: Option<&LoadModel>,
) -> Option<WsPlan> {
    let ws = spec.websocket.clone().unwrap_or_default();
    refuse_journey_and_model(c, spec, model);
    let path = upgrade_path(c, &ws, &target.path_and_query);
    let message_text = ws.message.as_ref().map_or_else(
        || r#"{"id":"{{msg_id}}","t":{{now_ms}}}"#.to_string(),
        |m| m.get_ref().clone(),
    );
    let message_span = ws.message.as_ref().map_or(0..0, Spanned::span);
    let message = builtins_only(c, &message_text, message_span, Escape::None);
    let correlate_id = correlate_by_id(c, &ws, &message_text);
    let rate_per_conn = match &ws.rate {
        Some(r) if !(r.get_ref().is_finite() && *r.get_ref() >= 0.0) => {
            c.error(
                &r.span(),
                "rate (messages per second per connection) must be 0 or more",
            );
            None
        }
        Some(r) => Some(*r.get_ref()),
        None => Some(1.0),
    };
    let ws_headers = handshake_headers(c, &ws, headers);
    let subprotocols = check_subprotocols(c, &ws);
    let ramp = match &ws.ramp {
        Some(r) => c.duration_or_zero(r, "ramp"),
        None => Some(Duration::from_secs(1)),
    };
    let backoff = match &ws.backoff {
        Some(b) => c.duration_or_zero(b, "backoff"),
        None => Some(Duration::from_secs(1)),
    };
    Some(WsPlan {
        path: path?,
        host_header: target.host_header.clone(),
        headers: ws_headers,
        subprotocols,
        message: message?,
        binary: ws.binary,
        correlate_id,
        rate_per_conn: rate_per_conn?,
        ramp: ramp?,
        reconnect: ws.reconnect.unwrap_or(true),
        backoff: backoff?,
    })
}

/// Steps, tasks, arrival rates and ramping users belong to HTTP scenarios.
fn refuse_journey_and_model(c: &mut Checker<'_>, spec: &ScenarioSpec, model: Option<&LoadModel>) {
    if let Some(s) = spec.steps.first() {
        c.error(
            &s.path.span(),
            "[[steps]] do not apply to a ws:// target: [websocket] says what each connection sends",
        );
    }
    if let Some(t) = spec.tasks.first() {
        c.error(&t.name.span(), "[[tasks]] do not apply to a ws:// target");
    }
    match model {
        Some(LoadModel::Open { .. }) => {
            let span = spec
                .load
                .rate
                .as_ref()
                .map(Spanned::span)
                .or_else(|| spec.load.model.as_ref().map(Spanned::span))
                .unwrap_or(0..0);
            c.error(
                &span,
                "a ws:// target holds connections (vus, duration); messages are scheduled by [websocket] rate",
            );
        }
        Some(LoadModel::Closed { vus: Some(_), .. }) => {
            let span = spec
                .load
                .stages
                .as_ref()
                .and_then(|s| s.first())
                .map_or(0..0, |s| s.duration.span());
            c.error(
                &span,
                "ramping users are not supported for ws:// yet: use [websocket] ramp",
            );
        }
        _ => {}
    }
}

/// A path or message template: a WebSocket has no captures, so only built-ins.
fn builtins_only(
    c: &mut Checker<'_>,
    text: &str,
    span: Range<usize>,
    escape: Escape,
) -> Option<Template> {
    let mut refuse = |v: &str| -> Result<usize, String> {
        Err(format!(
            "`{{{{{v}}}}}` is not defined: a WebSocket message or path can use the built-ins ({})",
            BUILTINS.join(", ")
        ))
    };
    match Template::compile(text, escape, &mut refuse) {
        Ok(t) => Some(t),
        Err(e) => {
            let at = span.start + e.offset.min(span.len());
            c.error(&(at..at), e.message);
            None
        }
    }
}

/// `path`, or the URL's path and query.
fn upgrade_path(c: &mut Checker<'_>, ws: &WebSocketSpec, path_and_query: &str) -> Option<Template> {
    match &ws.path {
        Some(p) => {
            if !p.get_ref().starts_with('/') {
                c.error(&p.span(), "path must start with `/`");
            }
            builtins_only(c, p.get_ref(), p.span(), Escape::Path)
        }
        None => Some(Template::literal(path_and_query, Escape::None)),
    }
}

/// `correlate`: by order (false) or by the message's `{{msg_id}}` (true).
fn correlate_by_id(c: &mut Checker<'_>, ws: &WebSocketSpec, message_text: &str) -> bool {
    match ws
        .correlate
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span()))
    {
        None | Some(("order", _)) => false,
        Some(("id", span)) => {
            if !message_text.contains("msg_id") {
                c.error(
                    &span,
                    "correlate = \"id\" needs {{msg_id}} in the message, to find its reply",
                );
            }
            true
        }
        Some((other, span)) => {
            c.error(
                &span,
                format!("correlate `{other}` is unknown: use \"order\" or \"id\""),
            );
            false
        }
    }
}

/// The `[request]` headers, then `[websocket]`'s own.
fn handshake_headers(
    c: &mut Checker<'_>,
    ws: &WebSocketSpec,
    headers: &[(String, String)],
) -> Vec<(String, String)> {
    let mut ws_headers = headers.to_vec();
    for h in &ws.headers {
        match h.get_ref().split_once(':') {
            Some((n, v)) => match crate::proto::ws::validate_handshake_header(n.trim(), v.trim()) {
                Ok(()) => ws_headers.push((n.trim().to_string(), v.trim().to_string())),
                Err(why) => c.error(&h.span(), format!("header `{}`: {why}", n.trim())),
            },
            None => c.error(&h.span(), "a header is written \"Name: value\""),
        }
    }
    ws_headers
}

fn check_subprotocols(c: &mut Checker<'_>, ws: &WebSocketSpec) -> Vec<String> {
    let mut subprotocols = Vec::new();
    for s in &ws.subprotocols {
        match crate::proto::ws::validate_subprotocol(s.get_ref()) {
            Ok(()) => subprotocols.push(s.get_ref().clone()),
            Err(why) => c.error(&s.span(), format!("subprotocol `{}`: {why}", s.get_ref())),
        }
    }
    subprotocols
}

/// The two pseudo-steps a WebSocket scenario reports under.
pub(crate) fn ws_journey(_ws: &WsPlan) -> Journey {
    let step = |name: &str| StepPlan::fixed(name.into(), false, Vec::new());
    Journey::single(vec![step("ws connect"), step("ws message")])
}
