//! `Results`: the merged outcome of a run, as JSON (schema `loadd.results.v1`, documented in
//! `docs/results.schema.json`), built once from merged stats and what the caller knows beyond
//! them (`RunFacts`).
//!
//! What it is made of lives beside it: the summaries (`summary`), the environment manifest
//! (`environment`), the percentile distribution (`distribution`), and the collector that merges
//! shards' intervals (`collector`). It refuses to render: readable text is `report::text`'s.

pub mod collector;
mod distribution;
mod environment;
mod phase;
mod summary;
pub mod verdict;

use serde::{Deserialize, Serialize};

pub use self::distribution::PercentilePoint;
pub use self::environment::Environment;
pub use self::phase::PhaseStepResult;
use self::summary::{error_map, per_second, round3, status_map};
pub use self::summary::{
    IntervalSummary, ModelSummary, ScenarioResult, StepInterval, StepResult, TlsSummary, WsSummary,
};
use crate::metrics::histogram::LatencySummary;
use crate::metrics::stats::{Stats, StatsSet};
use crate::results::verdict::ThresholdResult;
use crate::units::format_us;

pub const SCHEMA: &str = "loadd.results.v1";

/// What the collector knows of a scenario beyond the stats.
pub struct ScenarioFacts {
    pub name: String,
    pub tags: std::collections::BTreeMap<String, String>,
    pub model: ModelSummary,
    pub start_after_s: f64,
    /// The scenario's planned load time, if bounded.
    pub planned_s: Option<f64>,
    pub steps: std::ops::Range<usize>,
}

/// The result of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub schema: String,
    pub target: String,
    pub driver: String,
    pub shards: usize,
    pub cpus: Vec<usize>,
    pub model: ModelSummary,
    pub elapsed_s: f64,
    pub requests: u64,
    pub rate_per_s: f64,
    pub requested_rate_per_s: Option<f64>,
    /// Errors by kind, every kind present (zeros included), in a stable order.
    pub errors: serde_json::Map<String, serde_json::Value>,
    pub errors_total: u64,
    pub status: serde_json::Map<String, serde_json::Value>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes of compressed bodies after decoding (bodies a check or capture read); `bytes_in`
    /// counts them as they came over the wire.
    #[serde(default)]
    pub bytes_decoded: u64,
    /// Redirect hops followed (`follow_redirects`): requests on the wire, not in `requests`.
    #[serde(default)]
    pub redirects: u64,
    /// Responses by the HTTP version they came over (`"1.1"`, `"2"`); empty for WebSocket
    /// runs. One version per run for now: `http = "auto"` would mix them.
    #[serde(default)]
    pub http_version: std::collections::BTreeMap<String, u64>,
    /// "intended" (open model: corrected for coordinated omission) or "sent".
    pub latency_basis: String,
    pub latency_us: LatencySummary,
    pub service_time_us: LatencySummary,
    pub schedule_lag_us: LatencySummary,
    pub late: u64,
    pub dropped: u64,
    pub connects: u64,
    /// False when the generator could not keep its schedule or a shard failed: percentiles
    /// are then lower bounds. `warnings` says why.
    pub trustworthy: bool,
    pub warnings: Vec<String>,
    /// Journey iterations (one per request without `[[steps]]`).
    pub iterations: u64,
    /// Iterations cut short by a failed request or capture.
    pub iterations_failed: u64,
    /// Iterations still running when the graceful stop ran out (not in `iterations`).
    #[serde(default)]
    pub iterations_interrupted: u64,
    /// Iterations per second, over the same basis as `rate_per_s`.
    pub iterations_per_s: f64,
    /// Whole-iteration duration (from the intended start in the open model).
    pub iteration_us: LatencySummary,
    pub checks_passed: u64,
    pub checks_failed: u64,
    /// Per step, in journey order.
    pub steps: Vec<StepResult>,
    /// Every threshold's verdict, in the scenario's order.
    pub thresholds: Vec<ThresholdResult>,
    /// `[[setup]]` steps, apart from the load (empty without setup).
    #[serde(default)]
    pub setup: Vec<PhaseStepResult>,
    /// Set when setup failed: the load never started. Says which step and what it got.
    #[serde(default)]
    pub setup_failed: Option<String>,
    /// `[[teardown]]` steps: a failed one fails the run like a threshold.
    #[serde(default)]
    pub teardown: Vec<PhaseStepResult>,
    #[serde(default)]
    pub teardown_failed: Option<String>,
    pub thresholds_failed: bool,
    /// Set when an `abort_on_fail` threshold stopped the run early: which one.
    pub aborted_by: Option<String>,
    /// Per scenario, in the file's order.
    #[serde(default)]
    pub scenarios: Vec<ScenarioResult>,
    /// `https://`: handshakes, how many resumed a session, and their duration (separate from
    /// request latency).
    #[serde(default)]
    pub tls: Option<TlsSummary>,
    /// `ws://`/`wss://`: connections, messages and round trips.
    #[serde(default)]
    pub websocket: Option<WsSummary>,
    /// Journeys with WebSocket steps: what their sockets sent and received.
    #[serde(default)]
    pub ws_messages: Option<WsMessages>,
    pub intervals: Vec<IntervalSummary>,
    /// Where and with what the run was made (empty in results written before it existed).
    #[serde(default)]
    pub environment: Environment,
    /// Corrected and uncorrected latency at log-spaced percentiles, for the percentile plot.
    #[serde(default)]
    pub latency_distribution: Vec<PercentilePoint>,
}

/// The messages of a journey's WebSocket steps (each step's own row has its timings).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WsMessages {
    pub sent: u64,
    /// Every data message received, those no `ws_expect` matched included.
    pub received: u64,
    /// Closing handshakes the server answered (`ws_close`, and at each iteration's end).
    pub closed_cleanly: u64,
    /// Sockets a `ws_listen` closed and opened again (`reconnect`).
    #[serde(default)]
    pub reconnects: u64,
    /// Closes the server started, by code ("1000", "1001", "1008": a lagged member, "other").
    #[serde(default)]
    pub server_closes: std::collections::BTreeMap<String, u64>,
}

/// `WsCounters::server_closes` by name.
pub(crate) fn server_closes(counts: [u64; 4]) -> std::collections::BTreeMap<String, u64> {
    crate::metrics::stats::SERVER_CLOSE_NAMES
        .iter()
        .zip(counts)
        .map(|(name, n)| (name.to_string(), n))
        .collect()
}

/// Every response of an HTTP run came over the one version its plan speaks.
fn http_versions(responses: u64, facts: &RunFacts) -> std::collections::BTreeMap<String, u64> {
    let mut versions = std::collections::BTreeMap::new();
    if !facts.websocket && responses > 0 {
        let version = if facts.model.h2_streams.is_some() {
            "2"
        } else {
            "1.1"
        };
        versions.insert(version.to_string(), responses);
    }
    versions
}

/// What the collector knows beyond the stats.
pub struct RunFacts {
    pub target: String,
    pub driver: String,
    pub cpus: Vec<usize>,
    pub model: ModelSummary,
    pub open: bool,
    pub elapsed_s: f64,
    /// The duration rates are computed over (planned duration when the run completed it).
    pub rate_basis_s: f64,
    pub warnings: Vec<String>,
    pub shards: usize,
    pub step_names: Vec<String>,
    /// Mean requested iterations per second (open model).
    pub requested_rate_per_s: Option<f64>,
    pub scenarios: Vec<ScenarioFacts>,
    /// `Some(insecure_skip_verify)` for an `https://` target.
    pub tls: Option<bool>,
    /// A ws:// target: every scenario's steps are "ws connect", "ws message".
    pub websocket: bool,
}

impl Results {
    /// The result of a run from its merged totals, its intervals and what the caller knows
    /// beyond the stats; thresholds are the caller's to judge (`thresholds` starts empty).
    pub fn build(set: &StatsSet, intervals: Vec<IntervalSummary>, mut facts: RunFacts) -> Self {
        let totals = &set.total();
        let warnings =
            generator_warnings(totals, std::mem::take(&mut facts.warnings), facts.websocket);
        let rate_per_s = per_second(totals.requests, facts.rate_basis_s);
        let steps = step_results(set, &facts);
        let scenarios = scenario_results(set, &facts);
        let journeys = set.iterations();
        let http_version = http_versions(totals.requests, &facts);
        Self {
            schema: SCHEMA.into(),
            target: facts.target,
            driver: facts.driver,
            shards: facts.shards,
            cpus: facts.cpus,
            requested_rate_per_s: facts.requested_rate_per_s,
            model: facts.model,
            elapsed_s: round3(facts.elapsed_s),
            requests: totals.requests,
            rate_per_s: round3(rate_per_s),
            errors: error_map(totals),
            errors_total: totals.errors_total(),
            status: status_map(totals),
            bytes_in: totals.bytes_in,
            bytes_out: totals.bytes_out,
            bytes_decoded: totals.bytes_decoded,
            redirects: totals.redirects,
            http_version,
            latency_basis: if facts.open { "intended" } else { "sent" }.into(),
            latency_us: LatencySummary::of(&totals.latency),
            service_time_us: LatencySummary::of(&totals.service),
            schedule_lag_us: LatencySummary::of(&totals.lag),
            late: totals.late,
            dropped: totals.dropped,
            connects: totals.connects,
            trustworthy: warnings.is_empty(),
            warnings,
            iterations: journeys.count,
            iterations_failed: journeys.failed,
            iterations_interrupted: journeys.interrupted,
            iterations_per_s: round3(per_second(journeys.count, facts.rate_basis_s)),
            iteration_us: LatencySummary::of(&journeys.duration),
            checks_passed: totals.checks_passed,
            checks_failed: totals.checks_failed,
            steps,
            thresholds: Vec::new(),
            thresholds_failed: false,
            setup: Vec::new(),
            setup_failed: None,
            teardown: Vec::new(),
            teardown_failed: None,
            aborted_by: None,
            websocket: facts.websocket.then(|| {
                let ranges = facts.scenarios.iter().map(|sc| &sc.steps);
                WsSummary::of(set, ranges, facts.rate_basis_s)
            }),
            ws_messages: (!facts.websocket && set.ws != Default::default()).then_some(WsMessages {
                sent: set.ws.sent,
                received: set.ws.received,
                closed_cleanly: set.ws.closed_cleanly,
                reconnects: set.ws.reconnects,
                server_closes: server_closes(set.ws.server_closes),
            }),
            tls: facts.tls.map(|insecure| TlsSummary {
                handshakes: set.handshake.len(),
                resumed: set.resumed,
                handshake_us: LatencySummary::of(&set.handshake),
                insecure_skip_verify: insecure,
            }),
            scenarios,
            intervals,
            environment: Environment::current(facts.elapsed_s),
            latency_distribution: PercentilePoint::distribution(&totals.latency, &totals.service),
        }
    }
}

/// The caller's warnings, plus the generator's own: dropped arrivals, or more than 1% of
/// requests sent late. Any warning makes the run untrustworthy.
fn generator_warnings(totals: &Stats, mut warnings: Vec<String>, websocket: bool) -> Vec<String> {
    if totals.dropped > 0 && websocket {
        warnings.push(format!(
            "{} scheduled messages were never sent: their sockets were still waiting for a reply (or reconnecting) when the run ended. The offered rate fell short of the requested one.",
            totals.dropped
        ));
    } else if totals.dropped > 0 {
        warnings.push(format!(
            "{} scheduled requests were dropped: every connection was busy and the queue was full. Percentiles are lower bounds; raise --connections.",
            totals.dropped
        ));
    }
    let scheduled = totals.lag.len();
    let late_fraction = if scheduled == 0 {
        0.0
    } else {
        totals.late as f64 / scheduled as f64
    };
    if late_fraction > 0.01 {
        warnings.push(format!(
            "{:.1}% of requests were sent more than 2 ms after their intended time (schedule lag p99 {}): the offered load fell behind the requested rate. Latencies still count from the intended time; raise --connections if the target was not saturated.",
            late_fraction * 100.0,
            format_us(LatencySummary::of(&totals.lag).p99)
        ));
    }
    warnings
}

/// Per step, in journey order, each with its scenario's name.
fn step_results(set: &StatsSet, facts: &RunFacts) -> Vec<StepResult> {
    let scenario_of = |i: usize| {
        facts
            .scenarios
            .iter()
            .find(|sc| sc.steps.contains(&i))
            .map_or_else(String::new, |sc| sc.name.clone())
    };
    set.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = facts.step_names.get(i).map_or("step", String::as_str);
            let mut step = StepResult::of(name, s, facts.rate_basis_s);
            step.scenario = scenario_of(i);
            step
        })
        .collect()
}

/// Per scenario, in the file's order.
fn scenario_results(set: &StatsSet, facts: &RunFacts) -> Vec<ScenarioResult> {
    facts
        .scenarios
        .iter()
        .enumerate()
        .map(|(k, sc)| {
            let own = set.total_of(sc.steps.clone());
            let journeys = set.journeys.get(k).cloned().unwrap_or_default();
            // Like the run's rates: over the planned time when the scenario lasted it.
            let ran_s = (facts.elapsed_s - sc.start_after_s).max(0.0);
            let basis = match sc.planned_s {
                Some(p) if ran_s >= p => p,
                _ => ran_s,
            };
            ScenarioResult {
                name: sc.name.clone(),
                tags: sc.tags.clone(),
                model: sc.model.clone(),
                start_after_s: sc.start_after_s,
                requests: own.requests,
                rate_per_s: round3(per_second(own.requests, basis)),
                errors_total: own.errors_total(),
                latency_us: LatencySummary::of(&own.latency),
                service_time_us: LatencySummary::of(&own.service),
                iterations: journeys.count,
                iterations_failed: journeys.failed,
                iterations_interrupted: journeys.interrupted,
                iterations_per_s: round3(per_second(journeys.count, basis)),
                iteration_us: LatencySummary::of(&journeys.duration),
                checks_passed: own.checks_passed,
                checks_failed: own.checks_failed,
                steps: sc.steps.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ErrorKind;

    fn facts(open: bool) -> RunFacts {
        RunFacts {
            target: "http://127.0.0.1:1/".into(),
            driver: "io_uring".into(),
            cpus: vec![0],
            model: ModelSummary {
                kind: if open { "open" } else { "closed" }.into(),
                connections: 2,
                duration_s: Some(1.0),
                requests: None,
                rate_per_s: open.then_some(100.0),
                h2_streams: None,
                ramp_s: None,
            },
            open,
            elapsed_s: 1.0,
            rate_basis_s: 1.0,
            warnings: vec![],
            shards: 1,
            step_names: vec!["GET /".into()],
            requested_rate_per_s: open.then_some(100.0),
            scenarios: Vec::new(),
            tls: None,
            websocket: false,
        }
    }

    #[test]
    fn lag_and_drops_make_a_run_untrustworthy() {
        let mut set = StatsSet::new(1, 1);
        for i in 0..100 {
            set.steps[0].record_send_lag(0, if i < 10 { 5_000_000 } else { 0 });
            set.steps[0].record_response(200, Some(0), 0, 1000);
        }
        let r = Results::build(&set, vec![], facts(true));
        assert!(!r.trustworthy);
        assert_eq!(r.latency_basis, "intended");
        assert_eq!(r.errors.len(), ErrorKind::COUNT);
        assert!(crate::report::text::render(&r).contains("WARNING"));

        let mut ok = StatsSet::new(1, 1);
        ok.steps[0].record_response(200, None, 0, 1000);
        let r = Results::build(&ok, vec![], facts(false));
        assert!(r.trustworthy, "{:?}", r.warnings);
        assert_eq!(r.rate_per_s, 1.0);
        let json = serde_json::to_string(&r).unwrap();
        let back: Results = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
