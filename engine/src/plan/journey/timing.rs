//! The durations of a step: its response timeout and its think time, shared by HTTP and
//! WebSocket steps.

use toml::Spanned;

use crate::plan::checker::Checker;
use crate::plan::journey::Think;
use crate::scenario::ThinkSpec;
use crate::units;

/// A step's `timeout`: a positive duration.
pub(super) fn compile_timeout(c: &mut Checker<'_>, t: &Spanned<String>) -> Option<u64> {
    match units::parse_duration(t.get_ref()) {
        Ok(d) if !d.is_zero() => Some(d.as_nanos() as u64),
        Ok(_) => {
            c.error(
                &t.span(),
                "timeout must be greater than zero, e.g. \"250ms\"",
            );
            None
        }
        Err(e) => {
            c.error(&t.span(), format!("timeout: {e} (e.g. \"250ms\")"));
            None
        }
    }
}

pub(super) fn compile_think(c: &mut Checker<'_>, t: &Spanned<ThinkSpec>) -> Think {
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
