//! A journey: the steps one iteration runs, compiled from `[[steps]]` (or from the single
//! `[request]`) into pre-encoded or pre-compiled requests, captures, checks and think times.
//!
//! Compiling resolves every template variable to a slot (captured by an earlier step), checks
//! regexes, pointers and durations, and reports every problem at its `file:line:col`. It builds
//! nothing per request; `inspect` applies captures and checks at run time.

use std::io::Write as _;
use std::ops::Range;

use toml::Spanned;

use crate::plan::Checker;
use crate::spec::{CaptureSpec, CheckSpec, StepSpec, ThinkSpec};
use crate::template::{self, Escape, RenderContext, Template};
use crate::units;

/// Most body bytes kept for captures and checks; the rest is counted, not kept.
pub const MAX_INSPECTED_BODY: usize = 1 << 20;

/// The compiled steps of one iteration.
#[derive(Clone, Debug)]
pub struct Journey {
    pub steps: Vec<StepPlan>,
    /// Variable names (`[vars]` first, then captures); a name's index is its slot in each
    /// virtual user.
    pub vars: Vec<String>,
    /// `[vars]`: (slot, template) rendered at the start of every iteration.
    pub iteration_vars: Vec<(usize, Template)>,
}

/// One compiled step.
#[derive(Clone, Debug)]
pub struct StepPlan {
    pub name: String,
    pub head_request: bool,
    pub request: StepRequest,
    pub captures: Vec<Capture>,
    pub checks: Vec<Check>,
    pub think: Think,
    /// Captures or checks read the body / the head: keep them while reading.
    pub needs_body: bool,
    pub needs_head: bool,
}

/// How a step's request bytes are made.
#[derive(Clone, Debug)]
pub enum StepRequest {
    /// Encoded once; copied per request.
    Static(Vec<u8>),
    /// Rendered per request from templates.
    Dynamic {
        /// `METHOD ` and the base path.
        start: Vec<u8>,
        path: Template,
        /// ` HTTP/1.1\r\nHost: …\r\n`
        after_path: Vec<u8>,
        /// Whole `Name: value` lines.
        headers: Vec<Template>,
        body: Option<Template>,
        content_length: bool,
    },
}

impl StepRequest {
    /// Writes the request into `out` (cleared first); `scratch` holds the body while its length
    /// is unknown. Neither allocates once both have grown to the request's size.
    pub fn encode(&self, cx: &mut RenderContext<'_>, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
        out.clear();
        match self {
            StepRequest::Static(bytes) => out.extend_from_slice(bytes),
            StepRequest::Dynamic {
                start,
                path,
                after_path,
                headers,
                body,
                content_length,
            } => {
                out.extend_from_slice(start);
                path.render(cx, out);
                out.extend_from_slice(after_path);
                for h in headers {
                    h.render(cx, out);
                    out.extend_from_slice(b"\r\n");
                }
                scratch.clear();
                if let Some(b) = body {
                    b.render(cx, scratch);
                }
                if *content_length {
                    let _ = write!(out, "Content-Length: {}\r\n", scratch.len());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(scratch);
            }
        }
    }
}

/// Where a captured value comes from.
#[derive(Clone, Debug)]
pub enum CaptureSource {
    JsonPointer(String),
    /// Lower-case header name.
    Header(String),
    Regex(regex::bytes::Regex),
    Status,
}

#[derive(Clone, Debug)]
pub struct Capture {
    pub var: usize,
    pub name: String,
    pub source: CaptureSource,
}

#[derive(Clone, Debug)]
pub enum Check {
    Status(Vec<u16>),
    BodyContains(Vec<u8>),
    JsonEquals(String, serde_json::Value),
    JsonExists(String),
    /// Lower-case header name.
    Header(String),
    LatencyUnderNs(u64),
}

/// Pause after a step, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Think {
    None,
    Fixed(u64),
    Uniform(u64, u64),
    Exponential(u64),
}

impl Think {
    /// Draws one pause.
    pub fn sample_ns(self, rng: &mut fastrand::Rng) -> u64 {
        match self {
            Think::None => 0,
            Think::Fixed(ns) => ns,
            Think::Uniform(lo, hi) => rng.u64(lo..=hi),
            // Inverse transform; 1 − u keeps the log's argument in (0, 1].
            Think::Exponential(mean) => (-(mean as f64) * (1.0 - rng.f64()).ln()) as u64,
        }
    }
}

/// What a compiled journey needs from the rest of the plan.
pub struct RequestBase<'a> {
    pub base_path: &'a str,
    pub host_header: &'a str,
    pub default_headers: &'a [(String, String)],
}

/// Compiles `[[steps]]`.
pub(crate) fn compile(
    c: &mut Checker<'_>,
    specs: &[StepSpec],
    var_specs: &std::collections::BTreeMap<String, Spanned<String>>,
    base: &RequestBase<'_>,
) -> Journey {
    let mut vars: Vec<String> = Vec::new();
    // (name, step index that sets it); `[vars]` are set before step 0.
    let mut captured_at: Vec<(String, usize)> = Vec::new();
    let mut iteration_vars = Vec::new();
    for (name, text) in var_specs {
        if !template::is_identifier(name) || template::BUILTINS.contains(&name.as_str()) {
            c.error(
                &text.span(),
                format!("variable name `{name}` must be an identifier other than a built-in"),
            );
            continue;
        }
        let mut only_builtins = |var: &str| -> Result<usize, String> {
            Err(format!(
                "`{{{{{var}}}}}`: [vars] are built from built-ins only ({})",
                template::BUILTINS.join(", ")
            ))
        };
        match Template::compile(text.get_ref(), Escape::None, &mut only_builtins) {
            Ok(t) => {
                iteration_vars.push((vars.len(), t));
                vars.push(name.clone());
                captured_at.push((name.clone(), usize::MAX));
            }
            Err(e) => {
                let at = text.span().start + 1 + e.offset;
                c.error(&(at..at), e.message);
            }
        }
    }
    for (i, s) in specs.iter().enumerate() {
        for (name, spec) in &s.capture {
            if !template::is_identifier(name) || template::BUILTINS.contains(&name.as_str()) {
                c.error(
                    &spec.span(),
                    format!(
                        "capture name `{name}` must be an identifier other than a built-in ({})",
                        template::BUILTINS.join(", ")
                    ),
                );
            } else if captured_at
                .iter()
                .any(|(n, at)| n == name && *at == usize::MAX)
            {
                c.error(
                    &spec.span(),
                    format!("`{name}` is already a [vars] variable: capture into another name"),
                );
            } else if !captured_at.iter().any(|(n, _)| n == name) {
                captured_at.push((name.clone(), i));
                vars.push(name.clone());
            }
        }
    }
    let steps = specs
        .iter()
        .enumerate()
        .map(|(i, s)| compile_step(c, i, s, base, &vars, &captured_at))
        .collect();
    Journey {
        steps,
        vars,
        iteration_vars,
    }
}

fn compile_step(
    c: &mut Checker<'_>,
    index: usize,
    s: &StepSpec,
    base: &RequestBase<'_>,
    vars: &[String],
    captured_at: &[(String, usize)],
) -> StepPlan {
    let method = s
        .method
        .as_ref()
        .map_or_else(|| "GET".to_string(), |m| m.get_ref().to_ascii_uppercase());
    if let Some(m) = &s.method {
        if crate::proto::http1::validate_header(&method, "").is_err() {
            c.error(
                &m.span(),
                format!("`{}` is not a valid method", m.get_ref()),
            );
        }
    }
    let name = s.name.as_ref().map_or_else(
        || format!("{method} {}", s.path.get_ref()),
        |n| n.get_ref().clone(),
    );

    let compile_template = |c: &mut Checker<'_>, text: &str, span: Range<usize>, escape| {
        let mut lookup = |var: &str| -> Result<usize, String> {
            match captured_at.iter().find(|(n, _)| n == var) {
                Some((_, at)) if *at < index || *at == usize::MAX => {
                    Ok(vars.iter().position(|v| v == var).unwrap_or(0))
                }
                Some((_, at)) => Err(format!(
                    "`{{{{{var}}}}}` is used in step {} but only captured in step {} — capture it in an earlier step",
                    index + 1,
                    at + 1
                )),
                None => {
                    let hint = template::closest(var, vars.iter().map(String::as_str).chain(template::BUILTINS))
                        .map(|h| format!("; did you mean `{h}`?"))
                        .unwrap_or_default();
                    Err(format!("`{{{{{var}}}}}` is not defined: capture it in an earlier step or use a built-in{hint}"))
                }
            }
        };
        match Template::compile(text, escape, &mut lookup) {
            Ok(t) => Some(t),
            Err(e) => {
                // Point into the string where possible (+1 skips the opening quote).
                let at = span.start + 1 + e.offset;
                c.error(&(at..at), e.message);
                None
            }
        }
    };

    let path_text = s.path.get_ref();
    if !path_text.starts_with('/') {
        c.error(
            &s.path.span(),
            format!("path `{path_text}` must start with `/`"),
        );
    }
    let path = compile_template(c, path_text, s.path.span(), Escape::Path);
    let mut headers: Vec<Template> = base
        .default_headers
        .iter()
        .filter_map(|(n, v)| compile_template(c, &format!("{n}: {v}"), 0..0, Escape::Header))
        .collect();
    let mut user_header_names = Vec::new();
    for h in &s.headers {
        match h.get_ref().split_once(':') {
            Some((n, _)) if crate::proto::http1::validate_header(n.trim(), "").is_ok() => {
                user_header_names.push(n.trim().to_ascii_lowercase());
                if let Some(t) = compile_template(c, h.get_ref(), h.span(), Escape::Header) {
                    headers.push(t);
                }
            }
            _ => c.error(
                &h.span(),
                format!(
                    "header `{}` must be written \"Name: value\" with a literal name",
                    h.get_ref()
                ),
            ),
        }
    }
    let body = match (&s.body, &s.json) {
        (Some(b), Some(_)) => {
            c.error(&b.span(), "give either body or json, not both");
            None
        }
        (Some(b), None) => compile_template(c, b.get_ref(), b.span(), Escape::None),
        (None, Some(j)) => match serde_json::to_string(j.get_ref()) {
            Ok(text) => {
                if !user_header_names.iter().any(|n| n == "content-type") {
                    headers.push(Template::literal(
                        "Content-Type: application/json",
                        Escape::None,
                    ));
                }
                compile_template(c, &text, j.span(), Escape::JsonString)
            }
            Err(e) => {
                c.error(&j.span(), format!("json body cannot be encoded: {e}"));
                None
            }
        },
        (None, None) => None,
    };
    let has = |n: &str| {
        user_header_names.iter().any(|h| h == n)
            || base
                .default_headers
                .iter()
                .any(|(h, _)| h.eq_ignore_ascii_case(n))
    };
    let content_length = (body.is_some() || matches!(method.as_str(), "POST" | "PUT" | "PATCH"))
        && !has("content-length")
        && !has("transfer-encoding");
    let host = if has("host") {
        String::new()
    } else {
        format!("Host: {}\r\n", base.host_header)
    };
    let request = StepRequest::Dynamic {
        start: format!("{method} {}", base.base_path.trim_end_matches('/')).into_bytes(),
        path: path.unwrap_or_else(|| Template::literal("", Escape::None)),
        after_path: format!(" HTTP/1.1\r\n{host}").into_bytes(),
        headers,
        body,
        content_length,
    };
    let request = freeze_if_static(request);

    let captures = s
        .capture
        .iter()
        .filter_map(|(name, spec)| compile_capture(c, name, spec, vars))
        .collect::<Vec<_>>();
    let checks = s
        .check
        .as_ref()
        .map(|k| compile_checks(c, k))
        .unwrap_or_default();
    let think = s
        .think
        .as_ref()
        .map_or(Think::None, |t| compile_think(c, t));
    let needs_body = captures.iter().any(|k| {
        matches!(
            k.source,
            CaptureSource::JsonPointer(_) | CaptureSource::Regex(_)
        )
    }) || checks.iter().any(|k| {
        matches!(
            k,
            Check::BodyContains(_) | Check::JsonEquals(..) | Check::JsonExists(_)
        )
    });
    let needs_head = captures
        .iter()
        .any(|k| matches!(k.source, CaptureSource::Header(_)))
        || checks.iter().any(|k| matches!(k, Check::Header(_)));
    StepPlan {
        name,
        head_request: method == "HEAD",
        request,
        captures,
        checks,
        think,
        needs_body,
        needs_head,
    }
}

/// A request whose every template is static is encoded once.
fn freeze_if_static(request: StepRequest) -> StepRequest {
    let all_static = match &request {
        StepRequest::Static(_) => true,
        StepRequest::Dynamic {
            path,
            headers,
            body,
            ..
        } => {
            path.is_static()
                && headers.iter().all(Template::is_static)
                && body.as_ref().is_none_or(Template::is_static)
        }
    };
    if !all_static {
        return request;
    }
    let mut rng = fastrand::Rng::with_seed(0);
    let mut cx = RenderContext {
        vu: 0,
        iteration: 0,
        vars: &[],
        rng: &mut rng,
        now_ms: 0,
    };
    let (mut out, mut scratch) = (Vec::new(), Vec::new());
    request.encode(&mut cx, &mut out, &mut scratch);
    StepRequest::Static(out)
}

fn compile_capture(
    c: &mut Checker<'_>,
    name: &str,
    spec: &Spanned<CaptureSpec>,
    vars: &[String],
) -> Option<Capture> {
    let k = spec.get_ref();
    let given = [
        k.json.is_some(),
        k.header.is_some(),
        k.regex.is_some(),
        k.status,
    ]
    .iter()
    .filter(|&&x| x)
    .count();
    if given != 1 {
        c.error(
            &spec.span(),
            format!("capture `{name}` needs exactly one of json, header, regex, status"),
        );
        return None;
    }
    let source = if let Some(p) = &k.json {
        if !(p.is_empty() || p.starts_with('/')) {
            c.error(
                &spec.span(),
                format!(
                    "capture `{name}`: JSON pointer `{p}` must start with `/` (e.g. \"/token\")"
                ),
            );
            return None;
        }
        CaptureSource::JsonPointer(p.clone())
    } else if let Some(h) = &k.header {
        CaptureSource::Header(h.to_ascii_lowercase())
    } else if let Some(r) = &k.regex {
        match regex::bytes::Regex::new(r) {
            Ok(re) => CaptureSource::Regex(re),
            Err(e) => {
                // regex renders its error over several lines: keep to one.
                let why = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                c.error(&spec.span(), format!("capture `{name}`: bad regex: {why}"));
                return None;
            }
        }
    } else {
        CaptureSource::Status
    };
    Some(Capture {
        var: vars.iter().position(|v| v == name)?,
        name: name.to_string(),
        source,
    })
}

fn compile_checks(c: &mut Checker<'_>, k: &CheckSpec) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(s) = &k.status {
        if s.get_ref().is_empty() || s.get_ref().iter().any(|code| !(100..=599).contains(code)) {
            c.error(
                &s.span(),
                "check status takes a list of codes from 100 to 599, e.g. [200, 201]",
            );
        }
        out.push(Check::Status(s.get_ref().clone()));
    }
    if let Some(b) = &k.body_contains {
        out.push(Check::BodyContains(b.get_ref().as_bytes().to_vec()));
    }
    if let Some(j) = &k.json {
        for (pointer, expected) in j.get_ref() {
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                c.error(
                    &j.span(),
                    format!("JSON pointer `{pointer}` must start with `/`"),
                );
            }
            match serde_json::to_value(expected) {
                Ok(v) => out.push(Check::JsonEquals(pointer.clone(), v)),
                Err(e) => c.error(&j.span(), format!("`{pointer}`: {e}")),
            }
        }
    }
    if let Some(list) = &k.json_exists {
        for pointer in list.get_ref() {
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                c.error(
                    &list.span(),
                    format!("JSON pointer `{pointer}` must start with `/`"),
                );
            }
            out.push(Check::JsonExists(pointer.clone()));
        }
    }
    if let Some(list) = &k.header {
        out.extend(
            list.get_ref()
                .iter()
                .map(|h| Check::Header(h.to_ascii_lowercase())),
        );
    }
    if let Some(l) = &k.latency_under {
        match units::parse_duration(l.get_ref()) {
            Ok(d) if !d.is_zero() => out.push(Check::LatencyUnderNs(d.as_nanos() as u64)),
            _ => c.error(
                &l.span(),
                format!(
                    "latency_under: `{}` is not a positive duration",
                    l.get_ref()
                ),
            ),
        }
    }
    out
}

fn compile_think(c: &mut Checker<'_>, t: &Spanned<ThinkSpec>) -> Think {
    let mut d = |text: &str| match units::parse_duration(text) {
        Ok(d) => Some(d.as_nanos() as u64),
        Err(e) => {
            c.error(&t.span(), format!("think: {e}"));
            None
        }
    };
    match t.get_ref() {
        ThinkSpec::Fixed(x) => d(x).map_or(Think::None, Think::Fixed),
        ThinkSpec::Uniform { uniform: [lo, hi] } => match (d(lo), d(hi)) {
            (Some(lo), Some(hi)) if lo <= hi => Think::Uniform(lo, hi),
            (Some(_), Some(_)) => {
                c.error(
                    &t.span(),
                    "think uniform range must be [low, high] with low ≤ high",
                );
                Think::None
            }
            _ => Think::None,
        },
        ThinkSpec::Exponential { exponential } => {
            d(exponential).map_or(Think::None, Think::Exponential)
        }
    }
}
