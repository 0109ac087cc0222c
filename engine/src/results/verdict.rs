//! Judging thresholds on measured stats: a threshold's value over a `StatsSet` and its verdict.
//! Done on merged stats at the end of a run and, for `abort_on_fail` ones, on the running totals
//! once their delay has passed. Parsing and checking them is `plan::threshold`'s.

use serde::{Deserialize, Serialize};

use crate::metrics::histogram::{quantile_us, LatencyHistogram};
use crate::metrics::stats::{Stats, StatsSet};
use crate::metrics::ErrorKind;
use crate::plan::threshold::{Metric, Threshold};

/// A threshold's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub threshold: String,
    pub passed: bool,
    /// The measured value, in the unit of `limit`.
    pub actual: f64,
    pub limit: f64,
    /// "us", "fraction", "per_s" or "count".
    pub unit: String,
}

impl ThresholdResult {
    /// The measured value for people: `1.20ms`, `2.50%`, `1000.0/s`.
    pub fn render_actual(&self) -> String {
        match self.unit.as_str() {
            "us" => crate::units::format_us(self.actual as u64),
            "fraction" => format!("{:.2}%", self.actual * 100.0),
            "per_s" => format!("{:.1}/s", self.actual),
            _ => format!("{}", self.actual),
        }
    }
}

/// A quantile in µs, or the mean for `q < 0` (how `mean` is encoded).
fn quantile(h: &LatencyHistogram, q: f64) -> f64 {
    if q < 0.0 && !h.is_empty() {
        h.mean()
    } else {
        quantile_us(h, q.max(0.0)) as f64
    }
}

impl Threshold {
    /// The metric's value over `set`, with `elapsed_s` for rates.
    pub fn measure(&self, set: &StatsSet, elapsed_s: f64) -> f64 {
        let total;
        let s: &Stats = match (self.step.and_then(|i| set.steps.get(i)), &self.scenario) {
            (Some(step), _) => step,
            (None, Some((_, range))) => {
                total = set.total_of(range.clone());
                &total
            }
            (None, None) => {
                total = set.total();
                &total
            }
        };
        match self.metric {
            Metric::Latency(q) => quantile(&s.latency, q),
            Metric::Service(q) => quantile(&s.service, q),
            Metric::Iteration(q) => match self
                .scenario
                .as_ref()
                .and_then(|(i, _)| set.journeys.get(*i))
            {
                Some(j) => quantile(&j.duration, q),
                None => quantile(&set.iterations().duration, q),
            },
            Metric::ErrorRate => {
                // Transport failures have no response, so they add to the denominator.
                let failures = s.errors_total()
                    - s.errors[ErrorKind::Status4xx.index()]
                    - s.errors[ErrorKind::Status5xx.index()];
                let attempts = s.requests + failures;
                if attempts == 0 {
                    0.0
                } else {
                    s.errors_total() as f64 / attempts as f64
                }
            }
            Metric::Checks => {
                let n = s.checks_passed + s.checks_failed;
                if n == 0 {
                    1.0
                } else {
                    s.checks_passed as f64 / n as f64
                }
            }
            Metric::Rate => {
                if elapsed_s > 0.0 {
                    s.requests as f64 / elapsed_s
                } else {
                    0.0
                }
            }
            Metric::Requests => s.requests as f64,
            Metric::Errors => s.errors_total() as f64,
        }
    }

    pub fn evaluate(&self, set: &StatsSet, elapsed_s: f64) -> ThresholdResult {
        let actual = self.measure(set, elapsed_s);
        let unit = match self.metric {
            Metric::Latency(_) | Metric::Service(_) | Metric::Iteration(_) => "us",
            Metric::ErrorRate | Metric::Checks => "fraction",
            Metric::Rate => "per_s",
            Metric::Requests | Metric::Errors => "count",
        };
        ThresholdResult {
            threshold: self.text.clone(),
            passed: self.op.holds(actual, self.limit),
            actual: (actual * 1e6).round() / 1e6,
            limit: self.limit,
            unit: unit.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::stats::StatsSet;
    use crate::plan::threshold::parse;

    fn steps() -> Vec<String> {
        vec!["login".into(), "scoreboard".into()]
    }

    #[test]
    fn evaluates_on_stats() {
        let mut set = StatsSet::new(2, 1);
        for i in 0..100u64 {
            set.steps[0].record_response(200, None, 0, (i + 1) * 1_000_000); // 1..100 ms
            set.steps[1].record_response(if i < 5 { 500 } else { 200 }, None, 0, 1_000_000);
        }
        let r = parse("p95 < 200ms", &steps()).unwrap().evaluate(&set, 1.0);
        assert!(r.passed, "{r:?}");
        let r = parse("step(login).p99 < 50ms", &steps())
            .unwrap()
            .evaluate(&set, 1.0);
        assert!(!r.passed, "{r:?}");
        let r = parse("error_rate < 1%", &steps())
            .unwrap()
            .evaluate(&set, 1.0);
        assert!(!r.passed && (r.actual - 0.025).abs() < 1e-9, "{r:?}");
        let r = parse("step(login).error_rate < 1%", &steps())
            .unwrap()
            .evaluate(&set, 1.0);
        assert!(r.passed, "{r:?}");
        let r = parse("rate > 150", &steps()).unwrap().evaluate(&set, 1.0);
        assert!(r.passed, "{r:?}");
    }
}
