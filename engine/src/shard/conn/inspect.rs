//! Applies a step's checks and captures to a response it received.
//!
//! Checks are counted (per step and per kind) and never stop an iteration (a step's
//! `expect_status` is one of them; whether its status is an error was decided when the response
//! was recorded); a capture that finds nothing is a counted `capture_failed` error of its step
//! and ends the iteration, since later steps need the value. The body is parsed as JSON at most
//! once per response, and only for steps whose captures or checks read JSON.

use crate::metrics::stats::{CheckKind, Stats};
use crate::metrics::ErrorKind;
use crate::plan::journey::{CaptureSource, Check, StepPlan};
use crate::proto::http1::MAX_HEADERS;

/// What a step's response looked like.
pub struct Response<'a> {
    pub status: u16,
    /// The response head as received (status line and headers), when the step needs it.
    pub head: &'a [u8],
    /// The body (up to `MAX_INSPECTED_BODY`), when the step needs it.
    pub body: &'a [u8],
    pub latency_ns: u64,
}

/// Runs checks and captures; returns `false` when a capture failed (already counted).
pub fn inspect(step: &StepPlan, r: &Response<'_>, vars: &mut [Vec<u8>], stats: &mut Stats) -> bool {
    let mut json: Option<Option<serde_json::Value>> = None;
    let json_at = |pointer: &str,
                   json: &mut Option<Option<serde_json::Value>>|
     -> Option<serde_json::Value> {
        json.get_or_insert_with(|| serde_json::from_slice(r.body).ok())
            .as_ref()
            .and_then(|v| v.pointer(pointer))
            .cloned()
    };
    for check in &step.checks {
        let (kind, passed) = match check {
            Check::Status(codes) => (CheckKind::Status, codes.contains(&r.status)),
            Check::BodyContains(needle) => (
                CheckKind::BodyContains,
                memchr::memmem::find(r.body, needle).is_some(),
            ),
            Check::JsonEquals(pointer, expected) => (
                CheckKind::Json,
                json_at(pointer, &mut json).is_some_and(|v| &v == expected),
            ),
            Check::JsonExists(pointer) => (CheckKind::Json, json_at(pointer, &mut json).is_some()),
            Check::BodyNotContains(needle) => (
                CheckKind::BodyNotContains,
                memchr::memmem::find(r.body, needle).is_none(),
            ),
            // A body that is not JSON holds no field at all: absent.
            Check::JsonAbsent(pointer) => {
                (CheckKind::JsonAbsent, json_at(pointer, &mut json).is_none())
            }
            Check::Header(name) => (CheckKind::Header, header(r.head, name).is_some()),
            Check::LatencyUnderNs(limit) => (CheckKind::LatencyUnder, r.latency_ns < *limit),
        };
        stats.record_check(kind, passed);
    }
    for capture in &step.captures {
        let Some(slot) = vars.get_mut(capture.var) else {
            continue;
        };
        slot.clear();
        let found = match &capture.source {
            CaptureSource::Status => {
                slot.extend_from_slice(r.status.to_string().as_bytes());
                true
            }
            CaptureSource::Header(name) => match header(r.head, name) {
                Some(v) => {
                    slot.extend_from_slice(v);
                    true
                }
                None => false,
            },
            CaptureSource::Regex(re) => match re.captures(r.body) {
                Some(caps) => match caps.get(1).or_else(|| caps.get(0)) {
                    Some(m) => {
                        slot.extend_from_slice(m.as_bytes());
                        true
                    }
                    None => false,
                },
                None => false,
            },
            CaptureSource::JsonPointer(pointer) => match json_at(pointer, &mut json) {
                // A string is captured as its content; anything else as its JSON text.
                Some(serde_json::Value::String(s)) => {
                    slot.extend_from_slice(s.as_bytes());
                    true
                }
                Some(serde_json::Value::Null) | None => false,
                Some(other) => {
                    slot.extend_from_slice(other.to_string().as_bytes());
                    true
                }
            },
        };
        if !found {
            stats.record_error(ErrorKind::CaptureFailed);
            return false;
        }
    }
    true
}

/// The value of header `name` (lower-case) in a response head.
fn header<'h>(head: &'h [u8], name: &str) -> Option<&'h [u8]> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(head).ok()?;
    response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::journey::{Capture, StepRequest, Think};

    fn step(captures: Vec<Capture>, checks: Vec<Check>) -> StepPlan {
        StepPlan {
            name: "s".into(),
            head_request: false,
            request: StepRequest::Static(Vec::new()),
            captures,
            checks,
            think: Think::None,
            needs_body: true,
            needs_head: true,
            once: false,
            expect_status: Vec::new(),
            timeout_ns: None,
            json_templates: Vec::new(),
            follow_redirects: 0,
            decompress: false,
            ws: None,
        }
    }

    const HEAD: &[u8] = b"HTTP/1.1 201 Created\r\nX-Session: abc\r\nContent-Length: 40\r\n\r\n";
    const BODY: &[u8] = br#"{"token":"t-1","user":{"id":7},"ok":true}"#;

    fn response(latency_ns: u64) -> Response<'static> {
        Response {
            status: 201,
            head: HEAD,
            body: BODY,
            latency_ns,
        }
    }

    #[test]
    fn captures_from_every_source() {
        let captures = vec![
            Capture {
                var: 0,
                name: "token".into(),
                source: CaptureSource::JsonPointer("/token".into()),
            },
            Capture {
                var: 1,
                name: "id".into(),
                source: CaptureSource::JsonPointer("/user/id".into()),
            },
            Capture {
                var: 2,
                name: "sid".into(),
                source: CaptureSource::Header("x-session".into()),
            },
            Capture {
                var: 3,
                name: "code".into(),
                source: CaptureSource::Status,
            },
            Capture {
                var: 4,
                name: "re".into(),
                source: CaptureSource::Regex(regex::bytes::Regex::new(r#""id":(\d+)"#).unwrap()),
            },
        ];
        let mut vars = vec![Vec::new(); 5];
        let mut stats = Stats::new();
        assert!(inspect(
            &step(captures, vec![]),
            &response(1),
            &mut vars,
            &mut stats
        ));
        let got: Vec<String> = vars
            .iter()
            .map(|v| String::from_utf8(v.clone()).unwrap())
            .collect();
        assert_eq!(got, ["t-1", "7", "abc", "201", "7"]);
    }

    #[test]
    fn missing_capture_is_a_counted_error() {
        let captures = vec![Capture {
            var: 0,
            name: "x".into(),
            source: CaptureSource::JsonPointer("/nope".into()),
        }];
        let mut vars = vec![Vec::new()];
        let mut stats = Stats::new();
        assert!(!inspect(
            &step(captures, vec![]),
            &response(1),
            &mut vars,
            &mut stats
        ));
        assert_eq!(stats.errors[ErrorKind::CaptureFailed.index()], 1);
    }

    #[test]
    fn checks_are_counted_by_kind() {
        let checks = vec![
            Check::Status(vec![200, 201]),
            Check::Status(vec![200]),
            Check::BodyContains(b"token".to_vec()),
            Check::JsonEquals("/ok".into(), serde_json::Value::Bool(true)),
            Check::JsonEquals("/user/id".into(), serde_json::json!(8)),
            Check::JsonExists("/user".into()),
            Check::Header("x-session".into()),
            Check::Header("x-missing".into()),
            Check::LatencyUnderNs(1_000),
        ];
        let mut stats = Stats::new();
        assert!(inspect(
            &step(vec![], checks),
            &response(5_000),
            &mut [],
            &mut stats
        ));
        assert_eq!(stats.checks_passed, 5);
        assert_eq!(stats.checks_failed, 4);
        assert_eq!(stats.check_failures, [1, 0, 1, 1, 1, 0, 0]);
    }

    #[test]
    fn negative_checks_are_counted_apart() {
        let checks = vec![
            Check::BodyNotContains(b"other_tenant".to_vec()),
            Check::BodyNotContains(b"t-1".to_vec()),
            Check::JsonAbsent("/other_tenant".into()),
            Check::JsonAbsent("/user/id".into()),
        ];
        let mut stats = Stats::new();
        assert!(inspect(
            &step(vec![], checks),
            &response(1),
            &mut [],
            &mut stats
        ));
        assert_eq!(stats.checks_passed, 2);
        assert_eq!(stats.check_failures, [0, 0, 0, 0, 0, 1, 1]);
    }
}
