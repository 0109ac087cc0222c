//! Capacity search: the highest arrival rate a target sustains while meeting its SLOs.
//!
//! Each level is an open-model run of the scenario's journey at one constant rate, held long
//! enough to be stable; its SLOs are judged on what came after a warm-up. Levels step up by a
//! factor until one fails, then bisect between the last pass and the first failure until they
//! are within the precision. A level that clearly fails (a latency SLO at twice its limit, an
//! error-rate SLO at twice its limit) stops early. A level the generator could not offer —
//! arrivals dropped, or every connection busy while the SLO allowed more concurrency — ends the
//! search with that said, rather than reporting the generator's limit as the target's.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::metrics::stats::StatsSet;
use crate::plan::capacity::CapacityPlan;
use crate::plan::threshold::{Metric, Op, Threshold};
use crate::plan::{LoadModel, Plan};
use crate::results::verdict::ThresholdResult;
use crate::run::{self, RunEvent};
use crate::schedule::Schedule;

/// One level of the search.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Level {
    /// Offered (requested) arrivals per second.
    pub rate_per_s: f64,
    /// Iterations completed per second after the warm-up.
    pub achieved_per_s: f64,
    pub passed: bool,
    /// Stopped before its hold because an SLO was clearly broken.
    pub stopped_early: bool,
    /// Set when the generator, not the target, limited this level.
    pub generator_limited: Option<String>,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
    pub error_rate: f64,
    pub dropped: u64,
    pub duration_s: f64,
    pub slo: Vec<ThresholdResult>,
}

impl Level {
    /// The SLOs it failed, with their figures.
    pub fn why(&self) -> String {
        let failed: Vec<String> = self
            .slo
            .iter()
            .filter(|t| !t.passed)
            .map(|t| format!("{} (actual {})", t.threshold, t.render_actual()))
            .collect();
        failed.join(", ")
    }
}

/// What the search found.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CapacityResult {
    pub schema: String,
    pub target: String,
    pub slo: Vec<String>,
    /// In the order they ran.
    pub levels: Vec<Level>,
    /// The highest rate that met every SLO.
    pub sustainable_rate_per_s: Option<f64>,
    /// The lowest rate that failed one, and why.
    pub first_failing_rate_per_s: Option<f64>,
    pub first_failing_reason: Option<String>,
    /// The search stopped because the generator could not offer a level.
    pub generator_limited: Option<String>,
    /// `max_rate` passed: the capacity is at least that.
    pub reached_max_rate: bool,
    pub verdict: String,
}

pub const SCHEMA: &str = "loadd.capacity.v1";

/// Runs the search. `on_level` sees each level as it finishes; `stop` ends the search early
/// (a level in progress is stopped gracefully and not judged).
pub fn search(
    plan: &Plan,
    capacity: &CapacityPlan,
    mut on_level: impl FnMut(&Level),
    stop: &std::sync::atomic::AtomicBool,
) -> Result<CapacityResult, run::StartError> {
    // Setup runs once for the whole search; every level reads what it captured.
    let prepared;
    let plan = if plan.phases.setup.is_empty() {
        plan
    } else {
        let stopped = || stop.load(std::sync::atomic::Ordering::Relaxed);
        let (values, setup) = run::phase::run_setup(plan, &stopped);
        if let Some(why) = setup.failure {
            return Err(run::StartError::Setup(why));
        }
        let mut p = plan.with_run_values(&values);
        p.phases = Default::default();
        prepared = p;
        &prepared
    };
    let mut levels: Vec<Level> = Vec::new();
    let (mut pass, mut fail): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = capacity.start_rate;
    let mut generator_limited = None;
    let mut reached_max = false;
    loop {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let Some(level) = run_level(plan, capacity, rate, stop)? else {
            break;
        };
        on_level(&level);
        let passed = level.passed;
        let limited = level.generator_limited.clone();
        levels.push(level);
        if let Some(why) = limited {
            generator_limited = Some(why);
            break;
        }
        if passed {
            pass = Some(pass.map_or(rate, |p| p.max(rate)));
        } else {
            fail = Some(fail.map_or(rate, |f| f.min(rate)));
        }
        rate = match (pass, fail) {
            (Some(p), None) if p >= capacity.max_rate => {
                reached_max = true;
                break;
            }
            (Some(p), None) => (p * capacity.factor).min(capacity.max_rate),
            (None, Some(_)) => break, // even the start rate fails
            (Some(p), Some(f)) if (f - p) / p <= capacity.precision => break,
            (Some(p), Some(f)) => round_rate((p + f) / 2.0),
            (None, None) => break,
        };
    }
    let failing = fail.and_then(|f| levels.iter().find(|l| !l.passed && l.rate_per_s == f));
    let verdict = match (pass, fail, &generator_limited) {
        (_, _, Some(why)) => format!(
            "stopped: the generator could not offer the next level ({why}); capacity is at least {}",
            pass.map_or("unknown".into(), |p| format!("{p}/s"))
        ),
        (Some(p), _, None) if reached_max => {
            format!("sustains at least {p}/s (max_rate); raise max_rate to find the limit")
        }
        (Some(p), Some(f), None) => format!(
            "sustains {p}/s; fails at {f}/s: {}",
            failing.map(Level::why).unwrap_or_default()
        ),
        (None, Some(f), None) => format!(
            "fails already at the start rate {f}/s: {}",
            failing.map(Level::why).unwrap_or_default()
        ),
        _ => "stopped before a level was judged".into(),
    };
    Ok(CapacityResult {
        schema: SCHEMA.into(),
        target: plan.target.url.clone(),
        slo: capacity.slo.iter().map(|t| t.text.clone()).collect(),
        first_failing_reason: failing.map(Level::why),
        first_failing_rate_per_s: fail,
        sustainable_rate_per_s: pass,
        generator_limited,
        reached_max_rate: reached_max,
        levels,
        verdict,
    })
}

/// Rates are shown and compared rounded to 0.1/s.
fn round_rate(r: f64) -> f64 {
    (r * 10.0).round() / 10.0
}

/// One level; `None` when it was stopped from outside before it could be judged.
fn run_level(
    plan: &Plan,
    capacity: &CapacityPlan,
    rate: f64,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Option<Level>, run::StartError> {
    let level_plan = level_plan(plan, capacity, rate);
    let handle = run::start(&level_plan)?;
    let started = Instant::now();
    let Some(window) = watch(&handle, &level_plan, capacity, stop) else {
        return Ok(None);
    };
    Ok(Some(judge(capacity, rate, window, started)))
}

/// The scenario's journey at one constant rate for the hold, with connections sized from the
/// SLO and no thresholds of its own.
fn level_plan(plan: &Plan, capacity: &CapacityPlan, rate: f64) -> Plan {
    let mut level_plan = plan.clone();
    let connections = capacity.connections_needed();
    let hold_ns = capacity.hold.as_nanos() as u64;
    for s in &mut level_plan.scenarios {
        s.model = LoadModel::Open {
            schedule: Schedule::constant(rate, hold_ns),
            max_queue: ((rate * 10.0) as usize).clamp(1024, 1 << 20),
        };
        s.connections = connections;
        s.graceful_stop = plan.timeout;
    }
    level_plan.thresholds.clear();
    level_plan
}

/// What a level measured after its warm-up.
struct Window {
    judged: StatsSet,
    judged_s: f64,
    window_iterations: u64,
    stopped_early: bool,
    finished: Box<run::Finished>,
}

/// Follows a level's run to its end, stopping it early when an SLO is clearly broken; `None`
/// when it was stopped from outside (or never finished).
fn watch(
    handle: &run::RunHandle,
    level_plan: &Plan,
    capacity: &CapacityPlan,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<Window> {
    let warmup_s = capacity.warmup.as_secs_f64();
    let hold_s = capacity.hold.as_secs_f64();
    let mut window_iterations = 0u64;
    let mut judged = StatsSet::new(level_plan.steps().count(), level_plan.scenarios.len());
    let mut judged_s = 0.0;
    let mut stopped_early = false;
    let mut outside_stop = false;
    let mut finished = None;
    for ev in handle.events().iter() {
        match ev {
            RunEvent::Interval(iv) => {
                // Seconds that start after the warm-up; those past the hold (the drain of the
                // last requests) count in the latencies but not as load time.
                let start_s = iv.summary.t_s - 1.0;
                if start_s >= warmup_s {
                    judged.merge(&iv.stats);
                    if iv.summary.t_s <= hold_s + 1e-9 {
                        judged_s += 1.0;
                        window_iterations += iv.stats.iterations().count;
                    }
                }
                if !stopped_early
                    && judged_s >= 1.0
                    && clearly_fails(&capacity.slo, &judged, judged_s)
                {
                    stopped_early = true;
                    handle.stop();
                }
                if stop.load(std::sync::atomic::Ordering::Relaxed) && !outside_stop {
                    outside_stop = true;
                    handle.stop();
                }
            }
            RunEvent::Finished(f) => finished = Some(f),
            RunEvent::Started { .. } => {}
        }
    }
    let finished = finished?;
    if outside_stop {
        return None;
    }
    Some(Window {
        judged,
        judged_s,
        window_iterations,
        stopped_early,
        finished,
    })
}

/// A level's verdict: its SLOs judged on whole seconds after the warm-up, and whether the
/// generator rather than the target limited it.
fn judge(capacity: &CapacityPlan, rate: f64, window: Window, started: Instant) -> Level {
    let Window {
        mut judged,
        mut judged_s,
        mut window_iterations,
        stopped_early,
        finished,
    } = window;
    // A last partial second is in the totals but not in an interval: judge whole seconds only,
    // unless the level was too short to have one after its warm-up.
    if judged_s == 0.0 {
        judged = (*finished.totals).clone();
        judged_s = started.elapsed().as_secs_f64().max(1e-3);
        window_iterations = judged.iterations().count;
    }
    let slo: Vec<ThresholdResult> = capacity
        .slo
        .iter()
        .map(|t| t.evaluate(&judged, judged_s))
        .collect();
    let passed = slo.iter().all(|t| t.passed);
    let total = judged.total();
    let errors = total.errors_total();
    let failures = errors
        - total.errors[crate::metrics::ErrorKind::Status4xx.index()]
        - total.errors[crate::metrics::ErrorKind::Status5xx.index()];
    let attempts = total.requests + failures;
    let results_dropped = finished.results.dropped;
    let achieved = window_iterations as f64 / judged_s;
    // Connections are sized by Little's law from the SLO, so running out of them means the
    // SLO was already broken: the target's doing. Drops, or a passing level that was not
    // offered in full, are the generator's.
    let generator_limited = if results_dropped > 0 {
        Some(format!(
            "{results_dropped} arrivals dropped at {rate}/s: the generator's queue was full"
        ))
    } else if passed && !stopped_early && achieved < 0.9 * rate {
        Some(format!(
            "asked for {rate}/s but offered only {achieved:.1}/s"
        ))
    } else {
        None
    };
    let q = crate::metrics::histogram::quantile_us;
    Level {
        rate_per_s: rate,
        achieved_per_s: (achieved * 10.0).round() / 10.0,
        passed,
        stopped_early,
        generator_limited,
        latency_p50_us: q(&total.latency, 0.5),
        latency_p99_us: q(&total.latency, 0.99),
        latency_max_us: total.latency.max(),
        error_rate: if attempts == 0 {
            0.0
        } else {
            errors as f64 / attempts as f64
        },
        dropped: results_dropped,
        duration_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        slo,
    }
}

/// An SLO broken by a wide margin: twice a latency or error limit (any error against a 0% one).
fn clearly_fails(slo: &[Threshold], set: &StatsSet, seconds: f64) -> bool {
    slo.iter().any(|t| {
        let actual = t.measure(set, seconds);
        match (t.metric, t.op) {
            (
                Metric::Latency(_) | Metric::Service(_) | Metric::Iteration(_) | Metric::ErrorRate,
                Op::Lt | Op::Le,
            ) => actual > 2.0 * t.limit && actual > 0.0,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_failures_need_a_wide_margin() {
        let slo = vec![crate::plan::threshold::parse("p99 < 10ms", &[]).expect("slo")];
        let mut set = StatsSet::new(1, 1);
        set.steps[0].record_response(200, None, 0, 15_000_000);
        assert!(!clearly_fails(&slo, &set, 1.0), "15 ms against 10 ms");
        set.steps[0].record_response(200, None, 0, 30_000_000);
        assert!(clearly_fails(&slo, &set, 1.0), "30 ms against 10 ms");
    }
}
