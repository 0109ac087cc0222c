//! Thresholds: pass/fail criteria on a run's metrics, k6 style — `"p95 < 200ms"`,
//! `"error_rate < 1%"`, `"rate > 1000"`, `"checks > 99.9%"`, `"step(login).p99 < 1s"`,
//! `"iteration.p95 < 2s"`, `"service.p99 < 50ms"`.
//!
//! Parsed and checked when the plan is built (unknown metrics and steps are located errors with a
//! hint). They are judged on measured stats by `results::verdict`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::plan::checker::{did_you_mean, Checker};
use crate::scenario::ThresholdSpec;
use crate::units;

/// What a threshold measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// Corrected latency at a quantile (0..=1), in µs.
    Latency(f64),
    /// Uncorrected service time at a quantile, in µs.
    Service(f64),
    /// Iteration duration at a quantile, in µs (whole run only).
    Iteration(f64),
    /// Errors ÷ (responses + failures), as a fraction.
    ErrorRate,
    /// Checks passed ÷ checks run, as a fraction.
    Checks,
    /// Responses per second.
    Rate,
    Requests,
    Errors,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    pub fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
        }
    }
}

/// A parsed threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// As written, for reports.
    pub text: String,
    /// Restricts the metric to one journey step (an index among the run's steps).
    pub step: Option<usize>,
    /// Restricts the metric to one scenario: its index and its steps.
    pub scenario: Option<(usize, std::ops::Range<usize>)>,
    pub metric: Metric,
    pub op: Op,
    /// In the metric's unit: µs for latencies, a fraction for rates.
    pub limit: f64,
    /// `abort_on_fail`: stop the run once it fails, but not before this many ns.
    pub abort_after_ns: Option<u64>,
}

/// The names a threshold may refer to.
pub struct Names<'a> {
    /// Every step of the run, in order.
    pub steps: &'a [String],
    /// Every scenario with its steps' range in `steps`.
    pub scenarios: &'a [(String, std::ops::Range<usize>)],
    /// Set for thresholds written inside a scenario's section: they are that scenario's.
    pub within: Option<usize>,
}

/// Parses `[step(NAME).]metric op value` for a single-scenario run; `steps` are its names.
pub fn parse(text: &str, steps: &[String]) -> Result<Threshold, String> {
    parse_in(
        text,
        &Names {
            steps,
            scenarios: &[],
            within: None,
        },
    )
}

/// Parses `[scenario(NAME).][step(NAME).]metric op value`.
pub fn parse_in(text: &str, names: &Names<'_>) -> Result<Threshold, String> {
    let t = text.trim();
    let (op_at, op, op_len) = ["<=", ">=", "<", ">"]
        .iter()
        .find_map(|sym| t.find(sym).map(|i| (i, *sym, sym.len())))
        .ok_or_else(|| {
            format!("`{t}` needs a comparison: <, <=, > or >= (e.g. \"p95 < 200ms\")")
        })?;
    let op = match op {
        "<=" => Op::Le,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        _ => Op::Gt,
    };
    let lhs = t[..op_at].trim();
    let rhs = t[op_at + op_len..].trim();
    let (scenario, lhs) = match (lhs.strip_prefix("scenario("), names.within) {
        (Some(_), Some(_)) => {
            return Err("a scenario's own thresholds already apply to it: drop scenario(…)".into())
        }
        (Some(rest), None) => {
            let (name, after) = rest
                .split_once(").")
                .ok_or_else(|| format!("`{lhs}`: write scenario(NAME).metric"))?;
            let index = names
                .scenarios
                .iter()
                .position(|(s, _)| s == name)
                .ok_or_else(|| {
                    let hint = did_you_mean(name, names.scenarios.iter().map(|(s, _)| s.as_str()));
                    format!("no scenario is named `{name}`{hint}")
                })?;
            (Some(index), after)
        }
        (None, within) => (within, lhs),
    };
    let scenario = scenario.and_then(|i| names.scenarios.get(i).map(|(_, r)| (i, r.clone())));
    let (step, metric_text) = match lhs.strip_prefix("step(") {
        Some(rest) => {
            let (name, after) = rest
                .split_once(").")
                .ok_or_else(|| format!("`{lhs}`: write step(NAME).metric"))?;
            let range = scenario
                .as_ref()
                .map_or(0..names.steps.len(), |(_, r)| r.clone());
            let candidates = names.steps.get(range.clone()).unwrap_or_default();
            let mut matches = candidates
                .iter()
                .enumerate()
                .filter(|(_, s)| *s == name)
                .map(|(i, _)| range.start + i);
            let index = matches.next().ok_or_else(|| {
                let hint = did_you_mean(name, candidates.iter().map(String::as_str));
                format!("no step is named `{name}`{hint}")
            })?;
            if matches.next().is_some() && scenario.is_none() {
                return Err(format!(
                    "several scenarios have a step `{name}`: write scenario(NAME).step({name}).…"
                ));
            }
            (Some(index), after)
        }
        None => (None, lhs),
    };
    let metric = parse_metric(metric_text)?;
    if step.is_some() && matches!(metric, Metric::Iteration(_)) {
        return Err("iteration durations are for the whole journey, not one step".into());
    }
    let limit = match metric {
        Metric::Latency(_) | Metric::Service(_) | Metric::Iteration(_) => {
            units::parse_duration(rhs)
                .map(|d| d.as_secs_f64() * 1e6)
                .map_err(|e| format!("{metric_text}: {e}"))?
        }
        Metric::ErrorRate | Metric::Checks => parse_fraction(rhs)?,
        Metric::Rate | Metric::Requests | Metric::Errors => {
            units::parse_scaled(rhs).map_err(|e| format!("{metric_text}: {e}"))?
        }
    };
    let text = match (names.within, &scenario) {
        (Some(_), Some((i, _))) => {
            let name = names.scenarios.get(*i).map_or("", |(n, _)| n.as_str());
            format!("scenario({name}).{t}")
        }
        _ => t.to_string(),
    };
    Ok(Threshold {
        text,
        step,
        scenario,
        metric,
        op,
        limit,
        abort_after_ns: None,
    })
}

const METRICS: [&str; 8] = [
    "p50..p99.99, min, max, mean",
    "service.p99",
    "iteration.p95",
    "error_rate",
    "checks",
    "rate",
    "requests",
    "errors",
];

fn parse_metric(text: &str) -> Result<Metric, String> {
    let (family, stat) = match text.split_once('.') {
        Some((f @ ("service" | "iteration" | "latency"), s)) => (f, s),
        _ => ("latency", text),
    };
    if family == "latency" {
        match stat {
            "error_rate" => return Ok(Metric::ErrorRate),
            "checks" => return Ok(Metric::Checks),
            "rate" => return Ok(Metric::Rate),
            "requests" => return Ok(Metric::Requests),
            "errors" => return Ok(Metric::Errors),
            _ => {}
        }
    }
    let q = match stat {
        "min" => 0.0,
        "max" => 1.0,
        "median" => 0.5,
        "mean" => -1.0,
        p => match p.strip_prefix('p').and_then(|n| n.parse::<f64>().ok()) {
            Some(n) if (0.0..=100.0).contains(&n) => n / 100.0,
            _ => {
                let hint = did_you_mean(text, ["p95", "p99", "error_rate", "checks", "rate"]);
                return Err(format!(
                    "unknown metric `{text}` (use {}){hint}",
                    METRICS.join(", ")
                ));
            }
        },
    };
    Ok(match family {
        "service" => Metric::Service(q),
        "iteration" => Metric::Iteration(q),
        _ => Metric::Latency(q),
    })
}

/// `5%` or `0.05`, for settings written like a threshold's rate.
pub fn parse_fraction_text(text: &str) -> Result<f64, String> {
    parse_fraction(text.trim())
}

/// `1%`, `99.9%` or a plain fraction `0.01`.
fn parse_fraction(text: &str) -> Result<f64, String> {
    let bad =
        || format!("`{text}` is not a rate: use a percentage like 1% or a fraction like 0.01");
    let v = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => text.parse::<f64>().map_err(|_| bad())?,
    };
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(bad())
    }
}

/// Default `delay` before an `abort_on_fail` threshold may stop a run.
const DEFAULT_ABORT_DELAY: Duration = Duration::from_secs(10);

/// Each threshold parsed against the run's names; `abort_on_fail` ones get their delay.
pub(crate) fn check_thresholds(
    c: &mut Checker<'_>,
    specs: &[Spanned<ThresholdSpec>],
    names: &Names<'_>,
) -> Vec<Threshold> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let (expr, abort, delay) = match spec.get_ref() {
            ThresholdSpec::Expr(e) => (e, false, None),
            ThresholdSpec::Table {
                expr,
                abort_on_fail,
                delay,
            } => (expr, *abort_on_fail, delay.as_ref()),
        };
        match parse_in(expr, names) {
            Ok(mut t) => {
                if abort {
                    let d = match delay.map(|d| units::parse_duration(d)) {
                        Some(Ok(d)) => d,
                        Some(Err(e)) => {
                            c.error(&spec.span(), format!("threshold delay: {e}"));
                            DEFAULT_ABORT_DELAY
                        }
                        None => DEFAULT_ABORT_DELAY,
                    };
                    t.abort_after_ns = Some(d.as_nanos() as u64);
                } else if delay.is_some() {
                    c.error(&spec.span(), "delay only applies with abort_on_fail = true");
                }
                out.push(t);
            }
            Err(message) => c.error(&spec.span(), format!("threshold: {message}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::stats::StatsSet;

    fn steps() -> Vec<String> {
        vec!["login".into(), "scoreboard".into()]
    }

    #[test]
    fn parses_the_k6_forms() {
        let t = parse("p95 < 200ms", &steps()).unwrap();
        assert_eq!(
            (t.metric, t.op, t.limit, t.step),
            (Metric::Latency(0.95), Op::Lt, 200_000.0, None)
        );
        let t = parse("error_rate<1%", &steps()).unwrap();
        assert_eq!((t.metric, t.limit), (Metric::ErrorRate, 0.01));
        let t = parse("checks >= 99.9%", &steps()).unwrap();
        assert_eq!(t.metric, Metric::Checks);
        assert!((t.limit - 0.999).abs() < 1e-12);
        let t = parse("rate > 1k", &steps()).unwrap();
        assert_eq!((t.metric, t.limit), (Metric::Rate, 1000.0));
        let t = parse("step(scoreboard).p99 < 1s", &steps()).unwrap();
        assert_eq!((t.step, t.metric), (Some(1), Metric::Latency(0.99)));
        assert_eq!(
            parse("iteration.p50 < 2s", &steps()).unwrap().metric,
            Metric::Iteration(0.5)
        );
        assert_eq!(
            parse("service.max < 2s", &steps()).unwrap().metric,
            Metric::Service(1.0)
        );
    }

    #[test]
    fn refuses_with_hints() {
        let e = parse("p101 < 1s", &steps()).unwrap_err();
        assert!(e.contains("unknown metric"), "{e}");
        let e = parse("eror_rate < 1%", &steps()).unwrap_err();
        assert!(e.contains("did you mean `error_rate`"), "{e}");
        let e = parse("step(logn).p95 < 1s", &steps()).unwrap_err();
        assert!(e.contains("did you mean `login`"), "{e}");
        assert!(parse("p95 200ms", &steps()).is_err());
        assert!(parse("error_rate < 150%", &steps()).is_err());
        assert!(parse("p95 < fast", &steps()).is_err());
    }

    #[test]
    fn scenario_scopes_and_ambiguous_steps() {
        let steps: Vec<String> = ["login", "read", "login"].map(String::from).to_vec();
        let scenarios = [("web".to_string(), 0..2), ("api".to_string(), 2..3)];
        let mut names = Names {
            steps: &steps,
            scenarios: &scenarios,
            within: None,
        };
        let t = parse_in("scenario(api).step(login).p95 < 1s", &names).unwrap();
        assert_eq!((t.step, t.scenario.clone()), (Some(2), Some((1, 2..3))));
        let e = parse_in("step(login).p95 < 1s", &names).unwrap_err();
        assert!(e.contains("several scenarios"), "{e}");
        let e = parse_in("scenario(ap).p95 < 1s", &names).unwrap_err();
        assert!(e.contains("did you mean `api`"), "{e}");
        names.within = Some(0);
        let t = parse_in("step(login).p95 < 1s", &names).unwrap();
        assert_eq!(t.step, Some(0));
        assert_eq!(t.text, "scenario(web).step(login).p95 < 1s");
        assert!(parse_in("scenario(api).p95 < 1s", &names).is_err());

        // Scoped evaluation reads only the scenario's steps and iterations.
        let mut set = StatsSet::new(3, 2);
        set.steps[0].record_response(200, None, 0, 1_000_000);
        set.steps[2].record_response(500, None, 0, 1_000_000);
        set.record_iteration(1, 0, 9_000_000, true);
        names.within = None;
        let web = parse_in("scenario(web).error_rate < 1%", &names).unwrap();
        assert!(web.evaluate(&set, 1.0).passed);
        let api = parse_in("scenario(api).error_rate < 1%", &names).unwrap();
        assert!(!api.evaluate(&set, 1.0).passed);
        let it = parse_in("scenario(web).iteration.max < 5ms", &names).unwrap();
        assert!(it.evaluate(&set, 1.0).passed, "web ran no iteration");
        let it = parse_in("iteration.max < 5ms", &names).unwrap();
        assert!(
            !it.evaluate(&set, 1.0).passed,
            "api's 9 ms iteration counts"
        );
    }
}
