//! `[engine]`'s memory bounds against a hostile target: how large a kept response body, a
//! WebSocket frame and a WebSocket message may be before the connection is ended with a counted
//! `body_too_large`.
//!
//! It only checks and resolves the sizes; the connections enforce them.

use crate::plan::checker::Checker;
use crate::scenario::ScenarioSpec;
use crate::units;

/// Default of every limit: large enough for real pages and messages, small enough that a
/// thousand connections fed their largest cannot hold more than ~1 GiB.
pub const DEFAULT_LIMIT: usize = 1 << 20;
/// No limit may be set above this: past it, a few hundred connections could exhaust the box.
pub const MAX_LIMIT: usize = 64 << 20;
/// Nor below this: a smaller body or message limit would refuse ordinary traffic.
pub const MIN_LIMIT: usize = 1 << 10;

/// The resolved limits, copied into every shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A response body kept for a step's checks or captures (also as decompressed); a body
    /// nobody reads is streamed and never held, whatever its size.
    pub max_body: usize,
    /// One WebSocket frame, which the read buffer holds whole.
    pub max_ws_frame: usize,
    /// One WebSocket message, all its fragments together (also as inflated).
    pub max_ws_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: DEFAULT_LIMIT,
            max_ws_frame: DEFAULT_LIMIT,
            max_ws_message: DEFAULT_LIMIT,
        }
    }
}

/// `max_body`, `max_ws_frame`, `max_ws_message`, each defaulting to 1 MiB.
pub(crate) fn check_limits(c: &mut Checker<'_>, spec: &ScenarioSpec) -> Limits {
    let e = &spec.engine;
    let mut limits = Limits::default();
    for (key, value, slot) in [
        ("max_body", &e.max_body, &mut limits.max_body),
        ("max_ws_frame", &e.max_ws_frame, &mut limits.max_ws_frame),
        (
            "max_ws_message",
            &e.max_ws_message,
            &mut limits.max_ws_message,
        ),
    ] {
        let Some(v) = value else { continue };
        match units::parse_bytes(v.get_ref()) {
            Ok(n) if (MIN_LIMIT as u64..=MAX_LIMIT as u64).contains(&n) => *slot = n as usize,
            Ok(_) => c.error(
                &v.span(),
                format!("{key} must be between 1KiB and 64MiB (default 1MiB)"),
            ),
            Err(err) => c.error(&v.span(), format!("{key}: {err}")),
        }
    }
    if limits.max_ws_frame > limits.max_ws_message {
        if let Some(v) = e.max_ws_frame.as_ref().or(e.max_ws_message.as_ref()) {
            c.error(
                &v.span(),
                "max_ws_frame must not be over max_ws_message (a frame is part of a message)",
            );
        }
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, PlanErrors};
    use crate::scenario::{self, Files, Source};

    fn plan(engine: &str) -> Result<Plan, PlanErrors> {
        let text = format!("[target]\nurl = \"http://127.0.0.1:9/\"\n[engine]\n{engine}\n");
        let source = Source::in_memory("t.toml", &text, Files::Disk);
        let spec = scenario::parse(&source).expect("parses");
        Plan::from_spec(&spec, &source)
    }

    #[test]
    fn limits_default_to_one_mebibyte_and_parse_sizes() {
        assert_eq!(plan("").expect("valid").limits, Limits::default());
        assert_eq!(Limits::default().max_body, 1 << 20);
        let p = plan("max_body = \"4MiB\"\nmax_ws_frame = \"64KiB\"\nmax_ws_message = \"2MB\"")
            .expect("valid");
        assert_eq!(
            p.limits,
            Limits {
                max_body: 4 << 20,
                max_ws_frame: 64 << 10,
                max_ws_message: 2_000_000,
            }
        );
    }

    #[test]
    fn bad_limits_are_located_errors() {
        for (engine, needle) in [
            (
                "max_body = \"1GiB\"",
                "max_body must be between 1KiB and 64MiB",
            ),
            ("max_ws_message = \"12\"", "max_ws_message must be between"),
            ("max_ws_frame = \"lots\"", "max_ws_frame:"),
            (
                "max_ws_frame = \"2MiB\"",
                "max_ws_frame must not be over max_ws_message",
            ),
        ] {
            let err = plan(engine).expect_err(engine).to_string();
            assert!(err.contains("t.toml:4:"), "{engine}: {err}");
            assert!(err.contains(needle), "{engine}: {err}");
        }
    }
}
