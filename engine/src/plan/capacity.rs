//! A validated `[capacity]` section: the SLOs, the rates and how each level is held, and the
//! checks that build it. The search that uses it is `run::capacity`; its renderers are in
//! `report::capacity`.

use std::time::Duration;

use toml::Spanned;

use crate::plan::checker::Checker;
use crate::plan::threshold::{self, Metric, Names, Threshold};
use crate::scenario::{CapacitySpec, ScenarioSpec};

/// A validated `[capacity]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct CapacityPlan {
    pub slo: Vec<Threshold>,
    pub start_rate: f64,
    pub max_rate: f64,
    /// Step-up multiplier before the first failure.
    pub factor: f64,
    /// Each level's length.
    pub hold: Duration,
    /// The start of each level that is not judged.
    pub warmup: Duration,
    /// Bisection stops when (fail − pass) / pass is at most this.
    pub precision: f64,
}

impl CapacityPlan {
    /// Connections a level needs so that the generator never caps concurrency below what the
    /// SLO allows (Little's law: rate × latency limit), with slack.
    pub fn connections_needed(&self) -> u32 {
        let limit_s = self
            .slo
            .iter()
            .filter_map(|t| match t.metric {
                Metric::Latency(_) | Metric::Service(_) | Metric::Iteration(_) => {
                    Some(t.limit / 1e6)
                }
                _ => None,
            })
            .fold(0.0f64, f64::max);
        let limit_s = if limit_s > 0.0 { limit_s } else { 1.0 };
        ((self.max_rate * limit_s * 1.5).ceil() as u32).clamp(32, 10_000)
    }

    /// A few seconds in all, for `--smoke`.
    pub fn smoke(&mut self) {
        self.hold = self.hold.min(Duration::from_millis(1200));
        self.warmup = self.warmup.min(Duration::from_millis(200));
        self.max_rate = self.max_rate.min(self.start_rate * self.factor);
    }
}

/// A `[capacity]` section: only for one scenario, whose rate it sets itself.
pub(crate) fn check_capacity(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    cap: &CapacitySpec,
    names: &Names<'_>,
) -> Option<CapacityPlan> {
    refuse_rate_settings(c, spec, cap);
    let slo = check_slo(c, cap, names);
    let start_rate = c.scaled(&cap.start_rate, "start_rate");
    let max_rate = c.scaled(&cap.max_rate, "max_rate");
    if let (Some(s), Some(m)) = (start_rate, max_rate) {
        if s <= 0.0 {
            c.error(
                &cap.start_rate.span(),
                "start_rate must be greater than zero",
            );
        } else if m < s {
            c.error(&cap.max_rate.span(), "max_rate must be at least start_rate");
        }
    }
    let factor = match &cap.factor {
        Some(f) if !(*f.get_ref() > 1.0 && f.get_ref().is_finite()) => {
            c.error(&f.span(), "factor must be greater than 1");
            None
        }
        Some(f) => Some(*f.get_ref()),
        None => Some(2.0),
    };
    let (hold, warmup) = check_levels(c, cap);
    let precision = match &cap.precision {
        Some(p) => match threshold::parse_fraction_text(p.get_ref()) {
            Ok(v) if v > 0.0 => Some(v),
            _ => {
                c.error(
                    &p.span(),
                    "precision must be a percentage above 0, e.g. \"5%\"",
                );
                None
            }
        },
        None => Some(0.05),
    };
    Some(CapacityPlan {
        slo,
        start_rate: start_rate?,
        max_rate: max_rate?,
        factor: factor?,
        hold: hold?,
        warmup: warmup?,
        precision: precision?,
    })
}

/// The search sets the rate of each level: several scenarios or a rate of the file's own
/// would contradict it.
fn refuse_rate_settings(c: &mut Checker<'_>, spec: &ScenarioSpec, cap: &CapacitySpec) {
    if let Some((name, _)) = spec.scenarios.iter().next() {
        c.error(
            &cap.slo.span(),
            format!("[capacity] searches one scenario's rate: drop [scenarios] (found `{name}`)"),
        );
    }
    for (what, span) in [
        ("rate", spec.load.rate.as_ref().map(Spanned::span)),
        (
            "stages",
            spec.load
                .stages
                .as_ref()
                .and_then(|s| s.first())
                .map(|s| s.duration.span()),
        ),
        ("duration", spec.load.duration.as_ref().map(Spanned::span)),
        ("model", spec.load.model.as_ref().map(Spanned::span)),
        ("executor", spec.load.executor.as_ref().map(Spanned::span)),
    ] {
        if let Some(span) = span {
            c.error(
                &span,
                format!("[load] {what} does not apply with [capacity], which sets the rate of each level"),
            );
        }
    }
}

/// The objectives every level must meet: at least one.
fn check_slo(c: &mut Checker<'_>, cap: &CapacitySpec, names: &Names<'_>) -> Vec<Threshold> {
    let mut slo = Vec::new();
    for s in cap.slo.get_ref() {
        match threshold::parse_in(s.get_ref(), names) {
            Ok(t) => slo.push(t),
            Err(message) => c.error(&s.span(), format!("slo: {message}")),
        }
    }
    if cap.slo.get_ref().is_empty() {
        c.error(
            &cap.slo.span(),
            "slo needs at least one objective, e.g. \"p99 < 500ms\"",
        );
    }
    slo
}

/// How long each level runs, and how much of its start is not judged.
fn check_levels(c: &mut Checker<'_>, cap: &CapacitySpec) -> (Option<Duration>, Option<Duration>) {
    let hold = match &cap.hold {
        Some(h) => c.duration(h, "hold"),
        None => Some(Duration::from_secs(30)),
    };
    let warmup = match &cap.warmup {
        Some(w) => c.duration_or_zero(w, "warmup"),
        None => hold.map(|h| (h / 5).min(Duration::from_secs(5))),
    };
    if let (Some(w), Some(h), Some(span)) = (warmup, hold, cap.warmup.as_ref().map(Spanned::span)) {
        if w >= h {
            c.error(&span, "warmup must be shorter than hold");
        }
    }
    (hold, warmup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_follow_littles_law() {
        let plan = CapacityPlan {
            slo: vec![threshold::parse("p99 < 500ms", &[]).expect("slo")],
            start_rate: 10.0,
            max_rate: 1000.0,
            factor: 2.0,
            hold: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            precision: 0.05,
        };
        assert_eq!(plan.connections_needed(), 750);
    }
}
