//! What a step reads from its response: captures (a JSON pointer, a header, a regex, the status)
//! into variables, checks a response must pass (negative ones too: `body_not_contains`,
//! `json_absent`), and the statuses it expects (`expect_status`).
//!
//! Compiled here, with pointers, regexes and status codes checked; applied per response by
//! `inspect` (and, for what counts as an error, `Stats::record_response_expecting`), which this
//! module does not do.

use toml::Spanned;

use crate::plan::checker::Checker;
use crate::plan::journey::{Capture, CaptureSource, Check};
use crate::scenario::{CaptureSpec, CheckSpec};
use crate::units;

/// Captures or checks read the body: keep it while reading.
pub(super) fn needs_body(captures: &[Capture], checks: &[Check]) -> bool {
    captures.iter().any(|k| {
        matches!(
            k.source,
            CaptureSource::JsonPointer(_) | CaptureSource::Regex(_)
        )
    }) || checks.iter().any(|k| {
        matches!(
            k,
            Check::BodyContains(_)
                | Check::BodyNotContains(_)
                | Check::JsonEquals(..)
                | Check::JsonExists(_)
                | Check::JsonAbsent(_)
        )
    })
}

/// Captures or checks read a header: keep the head while reading.
pub(super) fn needs_head(captures: &[Capture], checks: &[Check]) -> bool {
    captures
        .iter()
        .any(|k| matches!(k.source, CaptureSource::Header(_)))
        || checks.iter().any(|k| matches!(k, Check::Header(_)))
}

/// One capture into the variable `name` (whose slot is its index in `vars`).
pub(super) fn compile_capture(
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

/// `expect_status`: codes from 100 to 599, at least one. They become a `Check::Status` too,
/// so a status outside the list is a failed check.
pub(super) fn compile_expect_status(
    c: &mut Checker<'_>,
    spec: Option<&Spanned<Vec<u16>>>,
) -> Vec<u16> {
    let Some(s) = spec else {
        return Vec::new();
    };
    let codes = s.get_ref();
    if codes.is_empty() {
        c.error(
            &s.span(),
            "expect_status is empty: list the statuses this step expects, e.g. [403] or [200, 409] (or leave it out)",
        );
    }
    for code in codes.iter().filter(|code| !(100..=599).contains(*code)) {
        c.error(
            &s.span(),
            format!("expect_status: `{code}` is not an HTTP status (100 to 599), e.g. [403]"),
        );
    }
    codes.clone()
}

/// A JSON pointer (RFC 6901): empty (the whole body) or `/`-separated, with `~` only as `~0`
/// or `~1`. `None` when it is one; else why not.
fn pointer_problem(pointer: &str) -> Option<String> {
    if !(pointer.is_empty() || pointer.starts_with('/')) {
        return Some(format!(
            "JSON pointer `{pointer}` must start with `/` (e.g. \"/id\")"
        ));
    }
    let bytes = pointer.as_bytes();
    let bad_escape = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')));
    bad_escape.then(|| {
        format!("JSON pointer `{pointer}`: `~` must be written `~0` (and `/` inside a name `~1`)")
    })
}

/// Pointers of `json_exists` or `json_absent`, each checked.
fn pointers(c: &mut Checker<'_>, key: &str, list: &Spanned<Vec<String>>) -> Vec<String> {
    for p in list.get_ref() {
        if let Some(why) = pointer_problem(p) {
            c.error(&list.span(), format!("{key}: {why}"));
        }
    }
    list.get_ref().clone()
}

pub(super) fn compile_checks(c: &mut Checker<'_>, k: &CheckSpec) -> Vec<Check> {
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
            // A template is compiled with the step (`json_templates`).
            if expected.as_str().is_some_and(|t| t.contains("{{")) {
                continue;
            }
            match serde_json::to_value(expected) {
                Ok(v) => out.push(Check::JsonEquals(pointer.clone(), v)),
                Err(e) => c.error(&j.span(), format!("`{pointer}`: {e}")),
            }
        }
    }
    if let Some(list) = &k.json_exists {
        out.extend(
            pointers(c, "json_exists", list)
                .into_iter()
                .map(Check::JsonExists),
        );
    }
    if let Some(b) = &k.body_not_contains {
        if b.get_ref().is_empty() {
            // Every body contains the empty string: the check could never pass.
            c.error(
                &b.span(),
                "body_not_contains is empty: give the text the body must not contain",
            );
        }
        out.push(Check::BodyNotContains(b.get_ref().as_bytes().to_vec()));
    }
    if let Some(list) = &k.json_absent {
        if list.get_ref().is_empty() {
            c.error(
                &list.span(),
                "json_absent is empty: list JSON pointers, e.g. [\"/other_tenant\"]",
            );
        }
        out.extend(
            pointers(c, "json_absent", list)
                .into_iter()
                .map(Check::JsonAbsent),
        );
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
