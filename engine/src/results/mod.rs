//! `Results`: the merged outcome of a run, as JSON (schema `loadd.results.v1`, documented in
//! `docs/results.schema.json`) and as a readable table.
//!
//! Built once from merged stats; percentiles are computed here and nowhere earlier.

pub mod collector;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::metrics::histogram::{LatencyHistogram, LatencySummary};
use crate::metrics::stats::{CheckKind, Stats, StatsSet};
use crate::metrics::ErrorKind;
use crate::plan::threshold::ThresholdResult;
use crate::units::format_us;

pub const SCHEMA: &str = "loadd.results.v1";

/// The load model as run, for the report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelSummary {
    /// "closed" or "open"
    pub kind: String,
    pub connections: u32,
    pub duration_s: Option<f64>,
    pub requests: Option<u64>,
    /// Peak requested rate (open model).
    pub rate_per_s: Option<f64>,
}

/// One second of a run, merged across shards.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IntervalSummary {
    /// End of the interval, seconds from the origin.
    pub t_s: f64,
    pub requests: u64,
    pub rate_per_s: f64,
    pub errors: u64,
    pub latency_p50_us: u64,
    pub latency_p90_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
    #[serde(default)]
    pub latency_p999_us: u64,
    pub service_p99_us: u64,
    pub lag_p99_us: u64,
    pub active_connections: u32,
    /// Errors of this second by kind: only the kinds that occurred.
    #[serde(default)]
    pub errors_by_kind: serde_json::Map<String, serde_json::Value>,
    /// Open model: arrivals the schedule asked for in this second.
    #[serde(default)]
    pub requested_per_s: Option<f64>,
    /// The same second per journey step, in journey order (names are in `Results.steps`).
    #[serde(default)]
    pub steps: Vec<StepInterval>,
}

/// One step's figures for one second.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepInterval {
    pub requests: u64,
    pub errors: u64,
    pub checks_failed: u64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
}

impl IntervalSummary {
    /// `requested_per_s`: what the schedule asked for in this second (open model).
    pub fn of(
        index: u64,
        set: &StatsSet,
        active_connections: u32,
        requested_per_s: Option<f64>,
    ) -> Self {
        let stats = &set.total();
        let q = crate::metrics::histogram::quantile_us;
        Self {
            t_s: index as f64,
            requests: stats.requests,
            rate_per_s: stats.requests as f64,
            errors: stats.errors_total(),
            latency_p50_us: q(&stats.latency, 0.5),
            latency_p90_us: q(&stats.latency, 0.9),
            latency_p99_us: q(&stats.latency, 0.99),
            latency_max_us: stats.latency.max(),
            latency_p999_us: q(&stats.latency, 0.999),
            service_p99_us: q(&stats.service, 0.99),
            lag_p99_us: q(&stats.lag, 0.99),
            active_connections,
            errors_by_kind: ErrorKind::ALL
                .iter()
                .filter(|k| stats.errors[k.index()] > 0)
                .map(|k| (k.name().to_string(), stats.errors[k.index()].into()))
                .collect(),
            requested_per_s,
            steps: set
                .steps
                .iter()
                .map(|st| StepInterval {
                    requests: st.requests,
                    errors: st.errors_total(),
                    checks_failed: st.checks_failed,
                    latency_p50_us: q(&st.latency, 0.5),
                    latency_p99_us: q(&st.latency, 0.99),
                })
                .collect(),
        }
    }
}

/// One journey step's figures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepResult {
    pub name: String,
    pub requests: u64,
    pub rate_per_s: f64,
    pub errors: serde_json::Map<String, serde_json::Value>,
    pub errors_total: u64,
    pub status: serde_json::Map<String, serde_json::Value>,
    pub checks_passed: u64,
    pub checks_failed: u64,
    /// Failed checks by kind (status, body_contains, json, header, latency_under).
    pub check_failures: serde_json::Map<String, serde_json::Value>,
    pub latency_us: LatencySummary,
    pub service_time_us: LatencySummary,
    /// The scenario the step belongs to ("default" in a file without `[scenarios]`).
    #[serde(default)]
    pub scenario: String,
    /// Corrected latency at p95 (the per-step table shows it; `LatencySummary` has no p95).
    #[serde(default)]
    pub latency_p95_us: u64,
}

/// One scenario's figures (a file without `[scenarios]` has one, "default").
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScenarioResult {
    pub name: String,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    pub model: ModelSummary,
    pub start_after_s: f64,
    pub requests: u64,
    pub rate_per_s: f64,
    pub errors_total: u64,
    pub latency_us: LatencySummary,
    pub service_time_us: LatencySummary,
    pub iterations: u64,
    pub iterations_failed: u64,
    /// Iterations still running when the graceful stop ran out.
    pub iterations_interrupted: u64,
    pub iterations_per_s: f64,
    pub iteration_us: LatencySummary,
    pub checks_passed: u64,
    pub checks_failed: u64,
    /// Indices of its steps in `Results.steps`.
    pub steps: std::ops::Range<usize>,
}

/// WebSocket figures of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WsSummary {
    /// Upgrades that succeeded (reconnects included).
    pub connections: u64,
    pub connect_errors: u64,
    /// Connections that succeeded among those attempted.
    pub connect_success_rate: f64,
    /// TCP + TLS + upgrade.
    pub connect_us: LatencySummary,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub messages_sent_per_s: f64,
    pub messages_received_per_s: f64,
    /// Messages whose reply arrived; their round trip is `rtt_us`.
    pub replies: u64,
    /// Round trip from each message's intended send time (corrected).
    pub rtt_us: LatencySummary,
    /// Round trip from the actual send.
    pub rtt_service_us: LatencySummary,
    /// Live connections lost: server closes, resets, reply timeouts.
    pub drops: u64,
    /// Drops over messages sent.
    pub drop_rate: f64,
    pub reconnects: u64,
    pub closed_cleanly: u64,
}

/// TLS figures of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TlsSummary {
    pub handshakes: u64,
    pub resumed: u64,
    pub handshake_us: LatencySummary,
    /// Certificates were not verified (`insecure_skip_verify`).
    pub insecure_skip_verify: bool,
}

impl WsSummary {
    fn of(set: &StatsSet, scenarios: &[ScenarioFacts], basis_s: f64) -> Self {
        let mut connect = Stats::new();
        let mut message = Stats::new();
        for sc in scenarios {
            if let Some(s) = set.steps.get(sc.steps.start) {
                connect.merge(s);
            }
            if let Some(s) = set.steps.get(sc.steps.start + 1) {
                message.merge(s);
            }
        }
        let connect_errors = connect.errors_total();
        let attempts = connect.requests + connect_errors;
        let drops = message.errors_total();
        Self {
            connections: connect.requests,
            connect_errors,
            connect_success_rate: if attempts == 0 {
                0.0
            } else {
                round3(connect.requests as f64 / attempts as f64)
            },
            connect_us: LatencySummary::of(&connect.latency),
            messages_sent: set.ws.sent,
            messages_received: set.ws.received,
            messages_sent_per_s: round3(per_second(set.ws.sent, basis_s)),
            messages_received_per_s: round3(per_second(set.ws.received, basis_s)),
            replies: message.requests,
            rtt_us: LatencySummary::of(&message.latency),
            rtt_service_us: LatencySummary::of(&message.service),
            drops,
            drop_rate: if set.ws.sent == 0 {
                0.0
            } else {
                drops as f64 / set.ws.sent as f64
            },
            reconnects: set.ws.reconnects,
            closed_cleanly: set.ws.closed_cleanly,
        }
    }
}

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

impl StepResult {
    fn of(name: &str, s: &Stats, rate_basis_s: f64) -> Self {
        let mut check_failures = serde_json::Map::new();
        for k in CheckKind::ALL {
            check_failures.insert(k.name().into(), s.check_failures[k as usize].into());
        }
        Self {
            name: name.to_string(),
            requests: s.requests,
            rate_per_s: round3(per_second(s.requests, rate_basis_s)),
            errors: error_map(s),
            errors_total: s.errors_total(),
            status: status_map(s),
            checks_passed: s.checks_passed,
            checks_failed: s.checks_failed,
            check_failures,
            latency_us: LatencySummary::of(&s.latency),
            service_time_us: LatencySummary::of(&s.service),
            scenario: String::new(),
            latency_p95_us: crate::metrics::histogram::quantile_us(&s.latency, 0.95),
        }
    }
}

fn error_map(s: &Stats) -> serde_json::Map<String, serde_json::Value> {
    ErrorKind::ALL
        .iter()
        .map(|k| (k.name().to_string(), s.errors[k.index()].into()))
        .collect()
}

fn status_map(s: &Stats) -> serde_json::Map<String, serde_json::Value> {
    s.status
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("{}xx", i + 1), (*n).into()))
        .collect()
}

fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
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
    pub intervals: Vec<IntervalSummary>,
    /// Where and with what the run was made (empty in results written before it existed).
    #[serde(default)]
    pub environment: Environment,
    /// Corrected and uncorrected latency at log-spaced percentiles, for the percentile plot.
    #[serde(default)]
    pub latency_distribution: Vec<PercentilePoint>,
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
    pub fn build(set: &StatsSet, intervals: Vec<IntervalSummary>, facts: RunFacts) -> Self {
        let totals = &set.total();
        let mut warnings = facts.warnings;
        if totals.dropped > 0 {
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
        let rate_per_s = per_second(totals.requests, facts.rate_basis_s);
        let scenario_of = |i: usize| {
            facts
                .scenarios
                .iter()
                .find(|sc| sc.steps.contains(&i))
                .map_or_else(String::new, |sc| sc.name.clone())
        };
        let steps = set
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let name = facts.step_names.get(i).map_or("step", String::as_str);
                let mut step = StepResult::of(name, s, facts.rate_basis_s);
                step.scenario = scenario_of(i);
                step
            })
            .collect();
        let scenarios = facts
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
            .collect();
        let journeys = set.iterations();
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
            aborted_by: None,
            websocket: facts
                .websocket
                .then(|| WsSummary::of(set, &facts.scenarios, facts.rate_basis_s)),
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

    /// The readable summary table.
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let m = &self.model;
        let model = match (m.kind.as_str(), m.rate_per_s) {
            ("open", Some(r)) => format!("open model, {} req/s", trim_float(r)),
            ("scenarios", _) => format!("{} scenarios", self.scenarios.len()),
            _ => "closed model".to_string(),
        };
        let _ = writeln!(
            o,
            "Target     {}  ({model}, {} connections)",
            self.target, m.connections
        );
        let cpus: Vec<String> = self.cpus.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(
            o,
            "Engine     {} shard(s) on CPU {}, driver {}",
            self.shards,
            if cpus.is_empty() {
                "(unpinned)".into()
            } else {
                cpus.join(",")
            },
            self.driver
        );
        let requested = self
            .requested_rate_per_s
            .map(|r| format!(" (requested {}/s)", trim_float(r)))
            .unwrap_or_default();
        let journey = self.steps.len() > 1;
        let _ = writeln!(
            o,
            "Requests   {} in {:.2}s: {:.1} req/s{}; {} in, {} out",
            self.requests,
            self.elapsed_s,
            self.rate_per_s,
            if journey { "" } else { &requested },
            format_bytes(self.bytes_in),
            format_bytes(self.bytes_out)
        );
        if journey && self.websocket.is_none() {
            let rate = self.iterations_per_s;
            let requested = self
                .requested_rate_per_s
                .map(|r| format!(", requested {}/s", trim_float(r)))
                .unwrap_or_default();
            let interrupted = if self.iterations_interrupted > 0 {
                format!(
                    ", {} interrupted by the graceful stop",
                    self.iterations_interrupted
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "Iterations {} ({rate:.1}/s{requested}), {} cut short{interrupted}",
                self.iterations, self.iterations_failed
            );
        }
        let status: Vec<String> = self
            .status
            .iter()
            .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if self.websocket.is_none() {
            let _ = writeln!(o, "Status     {}", or_none(&status));
        }
        let errors: Vec<String> = self
            .errors
            .iter()
            .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(o, "Errors     {}", or_none(&errors));
        if let Some(w) = &self.websocket {
            let _ = writeln!(
                o,
                "WebSocket  {} connections ({} failed, {:.2}% ok), {} reconnects, {} drops ({:.3}%), {} closed cleanly",
                w.connections,
                w.connect_errors,
                w.connect_success_rate * 100.0,
                w.reconnects,
                w.drops,
                w.drop_rate * 100.0,
                w.closed_cleanly
            );
            let _ = writeln!(
                o,
                "Messages   {} sent ({:.1}/s), {} received ({:.1}/s), {} replies: RTT p50 {}, p99 {}, max {} (from intended send times)",
                w.messages_sent,
                w.messages_sent_per_s,
                w.messages_received,
                w.messages_received_per_s,
                w.replies,
                format_us(w.rtt_us.p50),
                format_us(w.rtt_us.p99),
                format_us(w.rtt_us.max)
            );
        }
        if let Some(t) = &self.tls {
            let _ = writeln!(
                o,
                "TLS        {} handshakes ({} resumed), p50 {}, p99 {}{}",
                t.handshakes,
                t.resumed,
                format_us(t.handshake_us.p50),
                format_us(t.handshake_us.p99),
                if t.insecure_skip_verify {
                    "; CERTIFICATES NOT VERIFIED (insecure_skip_verify)"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            o,
            "\nLatency            min     mean      p50      p90      p99    p99.9   p99.99      max"
        );
        let basis = if self.latency_basis == "intended" {
            "corrected"
        } else {
            "latency"
        };
        row(&mut o, basis, &self.latency_us);
        if self.latency_basis == "intended" {
            row(&mut o, "uncorrected", &self.service_time_us);
            row(&mut o, "schedule lag", &self.schedule_lag_us);
            let _ = writeln!(
                o,
                "\nLatency counts from each request's intended start (coordinated omission corrected). Late {}, dropped {}.",
                self.late, self.dropped
            );
        }
        if self.steps.len() > 1 {
            let _ = writeln!(
                o,
                "\nStep                          requests    req/s   errors  checks✗      p50      p90      p99      max"
            );
            let several = self.scenarios.len() > 1;
            for (i, st) in self.steps.iter().enumerate() {
                // With several scenarios, each one's steps under a line of its totals.
                if let Some(sc) = self
                    .scenarios
                    .iter()
                    .find(|sc| several && sc.steps.start == i)
                {
                    let start = if sc.start_after_s > 0.0 {
                        format!(" from {}s", trim_float(sc.start_after_s))
                    } else {
                        String::new()
                    };
                    let name: String = format!("[{}]{start}", sc.name).chars().take(30).collect();
                    let _ = writeln!(
                        o,
                        "{name:<30}{:>8} {:>8.1} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8}",
                        sc.requests,
                        sc.rate_per_s,
                        sc.errors_total,
                        sc.checks_failed,
                        format_us(sc.latency_us.p50),
                        format_us(sc.latency_us.p90),
                        format_us(sc.latency_us.p99),
                        format_us(sc.latency_us.max)
                    );
                }
                let name: String = st.name.chars().take(28).collect();
                let _ = writeln!(
                    o,
                    "  {name:<28}{:>8} {:>8.1} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8}",
                    st.requests,
                    st.rate_per_s,
                    st.errors_total,
                    st.checks_failed,
                    format_us(st.latency_us.p50),
                    format_us(st.latency_us.p90),
                    format_us(st.latency_us.p99),
                    format_us(st.latency_us.max)
                );
            }
            if self.websocket.is_none() {
                let _ = writeln!(
                    o,
                    "  whole iteration{:>21}{:>44} {:>8} {:>8} {:>8}",
                    self.iterations,
                    format_us(self.iteration_us.p50),
                    format_us(self.iteration_us.p90),
                    format_us(self.iteration_us.p99),
                    format_us(self.iteration_us.max)
                );
            }
        }
        if self.checks_passed + self.checks_failed > 0 {
            let total = self.checks_passed + self.checks_failed;
            let _ = writeln!(
                o,
                "Checks     {:.2}% passed ({} of {total})",
                100.0 * self.checks_passed as f64 / total as f64,
                self.checks_passed
            );
        }
        if !self.thresholds.is_empty() {
            let _ = writeln!(o, "\nThresholds");
            for t in &self.thresholds {
                let _ = writeln!(
                    o,
                    "  {} {:<36} actual {}",
                    if t.passed { "✓ pass" } else { "✗ FAIL" },
                    t.threshold,
                    t.render_actual()
                );
            }
        }
        if let Some(t) = &self.aborted_by {
            let _ = writeln!(o, "\nABORTED: threshold `{t}` failed (abort_on_fail)");
        }
        for w in &self.warnings {
            let _ = writeln!(o, "\nWARNING: {w}");
        }
        o
    }
}

fn row(o: &mut String, name: &str, s: &LatencySummary) {
    let _ = writeln!(
        o,
        "  {name:<13}{:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        format_us(s.min),
        format_us(s.mean as u64),
        format_us(s.p50),
        format_us(s.p90),
        format_us(s.p99),
        format_us(s.p99_9),
        format_us(s.p99_99),
        format_us(s.max)
    );
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn format_bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.2} GiB", n as f64 / 1_073_741_824.0),
    }
}

fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Where and with what a run was made, so a report read later (or compared) says so.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Environment {
    pub loadd_version: String,
    /// `uname -r` (from /proc/sys/kernel/osrelease); empty where unknown.
    pub kernel: String,
    pub os: String,
    pub arch: String,
    pub hostname: String,
    /// CPUs this process could run on.
    pub cpus_available: usize,
    /// Wall-clock start of the run, Unix milliseconds.
    pub started_unix_ms: u64,
    /// SHA-256 (hex) of the scenario file as read; set by whoever read the file.
    #[serde(default)]
    pub scenario_sha256: Option<String>,
}

impl Environment {
    /// This process's environment, for a run that ended now after `elapsed_s`.
    pub fn current(elapsed_s: f64) -> Self {
        let proc = |name: &str| {
            std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self {
            loadd_version: env!("CARGO_PKG_VERSION").into(),
            kernel: proc("osrelease"),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            hostname: proc("hostname"),
            cpus_available: std::thread::available_parallelism().map_or(0, |n| n.get()),
            started_unix_ms: now_ms.saturating_sub((elapsed_s.max(0.0) * 1000.0) as u64),
            scenario_sha256: None,
        }
    }

    /// The fingerprint `scenario_sha256` holds: `sha256sum FILE` gives the same.
    pub fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest as _;
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// One point of the latency distribution: the value at `percentile` (0–100), corrected (from
/// the intended start) and uncorrected (from the send).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PercentilePoint {
    pub percentile: f64,
    pub corrected_us: u64,
    pub uncorrected_us: u64,
}

impl PercentilePoint {
    /// Five points per decade of 1/(1−p), as far as the sample count resolves, plus the usual
    /// named percentiles and the maximum (100) last. Empty when nothing was recorded.
    pub fn distribution(corrected: &LatencyHistogram, uncorrected: &LatencyHistogram) -> Vec<Self> {
        let count = corrected.len();
        if count == 0 {
            return Vec::new();
        }
        let mut ps: Vec<f64> = (0..)
            .map(|k| 100.0 * (1.0 - 10f64.powf(-f64::from(k) / 5.0)))
            .take_while(|p| 100.0 / (100.0 - p) <= count as f64)
            .take(60)
            .chain(
                [50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 99.999]
                    .into_iter()
                    .filter(|p| 100.0 / (100.0 - p) <= count as f64),
            )
            .map(|p| (p * 1e6).round() / 1e6)
            .collect();
        ps.sort_by(f64::total_cmp);
        ps.dedup();
        let q = crate::metrics::histogram::quantile_us;
        let mut points: Vec<Self> = ps
            .into_iter()
            .map(|p| Self {
                percentile: p,
                corrected_us: q(corrected, p / 100.0),
                uncorrected_us: q(uncorrected, p / 100.0),
            })
            .collect();
        points.push(Self {
            percentile: 100.0,
            corrected_us: corrected.max(),
            uncorrected_us: uncorrected.max(),
        });
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(r.render_text().contains("WARNING"));

        let mut ok = StatsSet::new(1, 1);
        ok.steps[0].record_response(200, None, 0, 1000);
        let r = Results::build(&ok, vec![], facts(false));
        assert!(r.trustworthy, "{:?}", r.warnings);
        assert_eq!(r.rate_per_s, 1.0);
        let json = serde_json::to_string(&r).unwrap();
        let back: Results = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn distribution_is_log_spaced_and_ends_at_the_max() {
        let mut corrected = crate::metrics::histogram::new_histogram();
        let mut uncorrected = crate::metrics::histogram::new_histogram();
        for us in 1..=10_000u64 {
            corrected.record(us).unwrap();
            uncorrected.record(us / 2 + 1).unwrap();
        }
        let d = PercentilePoint::distribution(&corrected, &uncorrected);
        assert!(d.windows(2).all(|w| w[0].percentile < w[1].percentile));
        assert!(d.windows(2).all(|w| w[0].corrected_us <= w[1].corrected_us));
        let last = d.last().unwrap();
        assert_eq!(
            (last.percentile, last.corrected_us),
            (100.0, corrected.max())
        );
        // 10,000 samples resolve p99.99 but not p99.999.
        assert!(d.iter().any(|p| p.percentile == 95.0));
        assert!(d.iter().any(|p| p.percentile == 99.99));
        assert!(!d.iter().any(|p| p.percentile == 99.999));
        assert!(PercentilePoint::distribution(
            &crate::metrics::histogram::new_histogram(),
            &uncorrected
        )
        .is_empty());
        assert_eq!(
            Environment::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn units_render() {
        assert_eq!(format_us(850), "850µs");
        assert_eq!(format_us(12_300), "12.30ms");
        assert_eq!(format_us(1_500_000), "1.50s");
        assert_eq!(format_bytes(2048), "2.0 KiB");
    }
}
