//! A run's `Results` from a plan and merged totals: what the plan says of itself (model,
//! planned time, scenarios), the rate basis, `Results::build`, and the thresholds judged on the
//! totals. One machine's run and a fleet's merged run are assembled here alike, so both read
//! and judge the same.
//!
//! It refuses to measure anything: what the run measured beyond the stats (its time, driver,
//! CPUs, warnings) comes from the caller as `Measured`.

use crate::metrics::stats::StatsSet;
use crate::plan::{LoadModel, Plan, ScenarioPlan};
use crate::results::{IntervalSummary, ModelSummary, Results, RunFacts, ScenarioFacts};

/// What a run measured beyond its stats.
pub(crate) struct Measured {
    pub elapsed_s: f64,
    pub driver: String,
    pub cpus: Vec<usize>,
    pub shards: usize,
    pub warnings: Vec<String>,
}

/// The result of `plan` from its merged `totals` and `intervals`, with every threshold judged.
pub(crate) fn assemble(
    plan: &Plan,
    totals: &StatsSet,
    intervals: Vec<IntervalSummary>,
    measured: Measured,
) -> Results {
    let PlanFacts {
        model,
        planned_s,
        scenarios,
    } = plan_facts(plan);
    let elapsed_s = measured.elapsed_s;
    // A paced ws:// run counts each message from its intended send time too.
    let open = plan.is_open() || (plan.target.websocket && model.kind == "open");
    // Rates are over the planned duration when the run lasted it (the drain of in-flight
    // requests after the end is not load time); over the real time otherwise.
    let rate_basis_s = match planned_s {
        Some(p) if elapsed_s >= p => p,
        _ => elapsed_s,
    };
    let mut results = Results::build(
        totals,
        intervals,
        RunFacts {
            target: plan.target.url.clone(),
            driver: measured.driver,
            cpus: measured.cpus,
            model,
            open,
            elapsed_s,
            rate_basis_s,
            warnings: measured.warnings,
            shards: measured.shards,
            step_names: plan.steps().map(|s| s.name.clone()).collect(),
            requested_rate_per_s: plan.requested_rate_per_s(),
            scenarios,
            tls: plan.tls.as_ref().map(|t| t.options.insecure_skip_verify),
            websocket: plan.target.websocket,
        },
    );
    // Thresholds on rates use the same basis as the summary's rates.
    results.thresholds = plan
        .thresholds
        .iter()
        .map(|t| t.evaluate(totals, rate_basis_s))
        .collect();
    results.thresholds_failed = results.thresholds.iter().any(|t| !t.passed);
    results
}

/// What a plan says of itself in a report: its model, its planned load time (when bounded) and
/// its scenarios.
pub struct PlanFacts {
    pub model: ModelSummary,
    pub planned_s: Option<f64>,
    pub scenarios: Vec<ScenarioFacts>,
}

pub fn plan_facts(plan: &Plan) -> PlanFacts {
    let scenarios = plan
        .scenarios
        .iter()
        .map(|sc| {
            let (mut model, planned_s) = model_summary(sc);
            model.h2_streams = plan.h2_streams;
            ScenarioFacts {
                name: sc.name.clone(),
                tags: sc.tags.clone(),
                model,
                start_after_s: sc.start_after.as_secs_f64(),
                planned_s,
                steps: sc.step_range(),
            }
        })
        .collect();
    let (mut model, planned_s) = match plan.scenarios.as_slice() {
        [one] => model_summary(one),
        _ => {
            let end = plan.planned_end().map(|d| d.as_secs_f64());
            (
                ModelSummary {
                    kind: "scenarios".into(),
                    connections: plan.connections(),
                    duration_s: end,
                    requests: None,
                    rate_per_s: None,
                    h2_streams: None,
                    ramp_s: None,
                },
                end,
            )
        }
    };
    model.h2_streams = plan.h2_streams;
    PlanFacts {
        model,
        planned_s,
        scenarios,
    }
}

/// A scenario's model for the report, and its planned load time.
pub fn model_summary(s: &ScenarioPlan) -> (ModelSummary, Option<f64>) {
    if let (Some(ws), LoadModel::Closed { duration, .. }) = (&s.websocket, &s.model) {
        // Messages go out on each socket's schedule, whatever the replies do: an open model.
        if ws.rate_per_conn > 0.0 {
            let d = duration.map(|d| d.as_secs_f64());
            return (
                ModelSummary {
                    kind: "open".into(),
                    connections: s.connections,
                    duration_s: d,
                    requests: None,
                    rate_per_s: Some(ws.rate_per_conn * f64::from(s.connections)),
                    h2_streams: None,
                    ramp_s: Some(ws.ramp.as_secs_f64()),
                },
                d,
            );
        }
    }
    match &s.model {
        LoadModel::Closed {
            duration, requests, ..
        } => (
            ModelSummary {
                kind: "closed".into(),
                connections: s.connections,
                duration_s: duration.map(|d| d.as_secs_f64()),
                requests: *requests,
                rate_per_s: None,
                h2_streams: None,
                ramp_s: None,
            },
            duration.map(|d| d.as_secs_f64()),
        ),
        LoadModel::Open { schedule, .. } => {
            let d = schedule.end_ns() as f64 / 1e9;
            (
                ModelSummary {
                    kind: "open".into(),
                    connections: s.connections,
                    duration_s: Some(d),
                    requests: None,
                    rate_per_s: Some(schedule.peak_rate_per_s()),
                    h2_streams: None,
                    ramp_s: None,
                },
                Some(d),
            )
        }
    }
}
