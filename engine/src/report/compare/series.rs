//! The tests of a comparison: a metric's per-second series in both runs, the bootstrapped
//! change of their medians (means for error rates) and the verdict its interval gives against
//! the tolerance.
//!
//! It refuses to judge a change from fewer than `MIN_SECONDS` seconds of either run.

use super::bootstrap::{estimate, Effect, Statistic};
use super::{seconds, Options, Test, Verdict, Worse, MIN_SECONDS};
use crate::results::{IntervalSummary, Results};

/// What a test's interval says, given which way is worse.
pub(super) fn judge(low: f64, high: f64, tolerance: f64, worse: Worse) -> Verdict {
    // Express the interval as "how much worse": positive is worse.
    let (low, high) = match worse {
        Worse::Higher => (low, high),
        Worse::Lower => (-high, -low),
    };
    if low > tolerance {
        Verdict::Regression
    } else if high < -tolerance {
        Verdict::Improvement
    } else if low >= -tolerance && high <= tolerance {
        Verdict::Unchanged
    } else {
        Verdict::Inconclusive
    }
}

pub(super) struct Series<'a> {
    pub(super) scope: &'a str,
    pub(super) metric: &'a str,
    pub(super) unit: &'a str,
    pub(super) worse: Worse,
    pub(super) baseline: Vec<f64>,
    pub(super) candidate: Vec<f64>,
}

pub(super) fn test(s: Series, opts: &Options) -> Test {
    let absolute = s.unit == "fraction";
    let (statistic, effect, tolerance) = if absolute {
        (Statistic::Mean, Effect::Absolute, opts.error_tolerance)
    } else {
        (Statistic::Median, Effect::Relative, opts.tolerance)
    };
    let enough = s.baseline.len() >= MIN_SECONDS && s.candidate.len() >= MIN_SECONDS;
    let e = if s.baseline.is_empty() || s.candidate.is_empty() {
        None
    } else {
        Some(estimate(
            &s.baseline,
            &s.candidate,
            statistic,
            effect,
            opts.confidence,
            if enough { opts.resamples } else { 0 },
        ))
    };
    let verdict = match e {
        Some(e) if enough => judge(e.low, e.high, tolerance, s.worse),
        _ => Verdict::Insufficient,
    };
    let nan = f64::NAN;
    Test {
        scope: s.scope.into(),
        metric: s.metric.into(),
        unit: s.unit.into(),
        baseline: e.map_or(nan, |e| e.baseline),
        candidate: e.map_or(nan, |e| e.candidate),
        change: e.map_or(nan, |e| e.change),
        change_low: e.map_or(nan, |e| e.low),
        change_high: e.map_or(nan, |e| e.high),
        relative: !absolute,
        worse: s.worse,
        samples_baseline: s.baseline.len(),
        samples_candidate: s.candidate.len(),
        verdict,
    }
}

pub(super) fn per_second(r: &Results, f: impl Fn(&IntervalSummary) -> f64) -> Vec<f64> {
    seconds(r).map(f).collect()
}

/// Per-second error fraction, as thresholds count it (transport failures add to attempts).
pub(super) fn error_fraction(i: &IntervalSummary) -> f64 {
    let status: u64 = ["status_4xx", "status_5xx"]
        .iter()
        .filter_map(|k| i.errors_by_kind.get(*k).and_then(serde_json::Value::as_u64))
        .sum();
    let attempts = i.requests + i.errors.saturating_sub(status);
    if attempts == 0 {
        0.0
    } else {
        i.errors as f64 / attempts as f64
    }
}

/// The tests on the whole run's per-second series.
pub(super) fn overall_tests(b: &Results, c: &Results, opts: &Options) -> Vec<Test> {
    vec![
        test(
            Series {
                scope: "overall",
                metric: "p50",
                unit: "us",
                worse: Worse::Higher,
                baseline: per_second(b, |i| i.latency_p50_us as f64),
                candidate: per_second(c, |i| i.latency_p50_us as f64),
            },
            opts,
        ),
        test(
            Series {
                scope: "overall",
                metric: "p99",
                unit: "us",
                worse: Worse::Higher,
                baseline: per_second(b, |i| i.latency_p99_us as f64),
                candidate: per_second(c, |i| i.latency_p99_us as f64),
            },
            opts,
        ),
        test(
            Series {
                scope: "overall",
                metric: "throughput",
                unit: "per_s",
                worse: Worse::Lower,
                baseline: per_second(b, |i| i.rate_per_s),
                candidate: per_second(c, |i| i.rate_per_s),
            },
            opts,
        ),
        test(
            Series {
                scope: "overall",
                metric: "error rate",
                unit: "fraction",
                worse: Worse::Higher,
                baseline: per_second(b, error_fraction),
                candidate: per_second(c, error_fraction),
            },
            opts,
        ),
    ]
}
