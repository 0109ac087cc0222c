//! The summaries a result is made of: the load model as run, each second (`IntervalSummary`),
//! each journey step (`StepResult`), each scenario (`ScenarioResult`), and the WebSocket and
//! TLS figures, each with how it is read from merged `Stats`.
//!
//! These are plain serialisable records (schema `loadd.results.v1`); percentiles are read from
//! histograms here and nowhere earlier. They refuse to render themselves: that is `report`'s.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::metrics::histogram::LatencySummary;
use crate::metrics::stats::{CheckKind, Stats, StatsSet};
use crate::metrics::ErrorKind;

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
    /// HTTP/2: concurrent streams per connection (each a user); absent over HTTP/1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h2_streams: Option<u32>,
    /// ws:// with a message rate: sockets start spread over this many seconds, so the
    /// requested rate builds up over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_s: Option<f64>,
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
    /// Failed checks by kind (status, body_contains, json, header, latency_under,
    /// body_not_contains, json_absent).
    pub check_failures: serde_json::Map<String, serde_json::Value>,
    pub latency_us: LatencySummary,
    pub service_time_us: LatencySummary,
    /// The scenario the step belongs to ("default" in a file without `[scenarios]`).
    #[serde(default)]
    pub scenario: String,
    /// Corrected latency at p95 (the per-step table shows it; `LatencySummary` has no p95).
    #[serde(default)]
    pub latency_p95_us: u64,
    /// Redirect hops this step followed (its latency covers each whole chain).
    #[serde(default)]
    pub redirects: u64,
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
    pub steps: Range<usize>,
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
    /// Closes the server started, by code ("1000", "1001", "1008": a lagged member, "other").
    #[serde(default)]
    pub server_closes: std::collections::BTreeMap<String, u64>,
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
    /// `scenario_steps`: each scenario's steps in `set` ("ws connect", then "ws message").
    pub(super) fn of<'a>(
        set: &StatsSet,
        scenario_steps: impl Iterator<Item = &'a Range<usize>>,
        basis_s: f64,
    ) -> Self {
        let mut connect = Stats::new();
        let mut message = Stats::new();
        for steps in scenario_steps {
            if let Some(s) = set.steps.get(steps.start) {
                connect.merge(s);
            }
            if let Some(s) = set.steps.get(steps.start + 1) {
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
            server_closes: super::server_closes(set.ws.server_closes),
        }
    }
}

impl StepResult {
    pub(super) fn of(name: &str, s: &Stats, rate_basis_s: f64) -> Self {
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
            redirects: s.redirects,
        }
    }
}

pub(super) fn error_map(s: &Stats) -> serde_json::Map<String, serde_json::Value> {
    ErrorKind::ALL
        .iter()
        .map(|k| (k.name().to_string(), s.errors[k.index()].into()))
        .collect()
}

pub(super) fn status_map(s: &Stats) -> serde_json::Map<String, serde_json::Value> {
    s.status
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("{}xx", i + 1), (*n).into()))
        .collect()
}

pub(super) fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
