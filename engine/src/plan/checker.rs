//! `Checker`: collects every problem `Plan::from_spec` finds, each located at `file:line:col`,
//! and hands them back in file order as `PlanErrors`.
//!
//! Every section's checks (`target`, `model`, `websocket`, …) report through it, so this module
//! imports none of them: it owns the error types, the parsers of values that many sections share
//! (durations, scaled counts) and the "did you mean" hint, and it judges no section itself.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::scenario::{CountSpec, Source};
use crate::units;

/// One problem in a spec, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<PlanError>);

impl std::fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanErrors {}

/// Collects located errors while validating.
pub(crate) struct Checker<'a> {
    source: &'a Source,
    /// With the byte offset they point at, to report in file order.
    errors: Vec<(usize, PlanError)>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(source: &'a Source) -> Self {
        Self {
            source,
            errors: Vec::new(),
        }
    }

    /// Where the spec came from (its text, for looking up where a section is written).
    pub(crate) fn source(&self) -> &'a Source {
        self.source
    }

    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.errors.push((
            span.start,
            PlanError {
                location: self.source.locate(span),
                message: message.into(),
            },
        ));
    }

    /// `Err` with every error in file order (errors at one place keep the order they were
    /// found in), or `Ok` when nothing was wrong.
    pub(crate) fn finish(mut self) -> Result<(), PlanErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors.sort_by_key(|(at, _)| *at);
        Err(PlanErrors(
            self.errors.into_iter().map(|(_, e)| e).collect(),
        ))
    }

    /// A duration greater than zero.
    pub(crate) fn duration(&mut self, value: &Spanned<String>, what: &str) -> Option<Duration> {
        match units::parse_duration(value.get_ref()) {
            Ok(d) if d.is_zero() => {
                self.error(&value.span(), format!("{what} must be greater than zero"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(&value.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    /// A duration that may be zero (offsets, grace periods).
    pub(crate) fn duration_or_zero(
        &mut self,
        value: &Spanned<String>,
        what: &str,
    ) -> Option<Duration> {
        match units::parse_duration(value.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(&value.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    /// A non-negative count written as a number or with a unit suffix ("10k").
    pub(crate) fn scaled(&mut self, value: &Spanned<CountSpec>, what: &str) -> Option<f64> {
        let parsed = match value.get_ref() {
            CountSpec::Int(i) if *i >= 0 => Some(*i as f64),
            CountSpec::Float(f) if f.is_finite() && *f >= 0.0 => Some(*f),
            CountSpec::Text(t) => units::parse_scaled(t).ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                &value.span(),
                format!("{what} must be a non-negative number such as 100, 2.5 or \"10k\""),
            );
        }
        parsed
    }
}

/// The closest of `candidates` to `name` (for "did you mean" hints), if any is close.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"` for the closest candidate, or nothing when none is close.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|h| format!("; did you mean `{h}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names() {
        assert_eq!(closest("tokn", ["token", "id"]), Some("token"));
        assert_eq!(closest("zzzzzz", ["token", "id"]), None);
        assert_eq!(
            closest("conections", ["connections", "rate"]),
            Some("connections")
        );
        assert_eq!(did_you_mean("rat", ["rate"]), "; did you mean `rate`?");
        assert_eq!(did_you_mean("zzzzzz", ["rate"]), "");
    }

    #[test]
    fn errors_come_back_in_file_order() {
        let source = Source::in_memory("t.toml", "a\nb\nc\n", crate::scenario::Files::Disk);
        let mut c = Checker::new(&source);
        assert!(Checker::new(&source).finish().is_ok());
        c.error(&(4..5), "third line");
        c.error(&(0..1), "first line");
        c.error(&(4..4), "third line again");
        let lines: Vec<String> = c
            .finish()
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "t.toml:1:1: first line",
                "t.toml:3:1: third line",
                "t.toml:3:1: third line again"
            ]
        );
    }
}
