//! `[load]`: how iterations are started. A closed model (connections back to back, optionally
//! ramping users or iteration budgets) or an open one (arrivals on a schedule), named by `model`,
//! by one of k6's executors, or implied by the fields given; and how many connections carry it.
//!
//! It checks that the fields given fit the model and builds the schedules; it does not pace
//! anything (the scheduler interprets a `LoadModel`), nor split the load across shards.

use std::time::Duration;

use toml::Spanned;

use crate::plan::checker::{did_you_mean, Checker};
use crate::scenario::{LoadSpec, ScenarioSpec, StageSpec};
use crate::schedule::{RateStage, Schedule};

const DEFAULT_DURATION: Duration = Duration::from_secs(10);
const DEFAULT_CONNECTIONS: u32 = 10;
/// The open-model queue holds this much of the peak rate before dropping arrivals.
const QUEUE_SECONDS: f64 = 10.0;
const MIN_QUEUE: usize = 1024;
const MAX_QUEUE: usize = 1 << 20;

/// How load is applied, validated.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadModel {
    /// Connections send back to back (wrk). Stops at the duration or the request count.
    Closed {
        duration: Option<Duration>,
        /// Iterations shared by all users (every request without `[[steps]]`).
        requests: Option<u64>,
        /// Ramping virtual users: how many are active over time (stage targets are user
        /// counts); `None`: all connections, all the time.
        vus: Option<Schedule>,
        /// Iterations each user runs before it stops.
        per_vu: Option<u64>,
    },
    /// Arrivals follow a schedule (wrk2, k6 arrival-rate executors).
    Open {
        schedule: Schedule,
        max_queue: usize,
    },
}

/// `duration` as given: `None` when absent, `Some(None)` when present but wrong (reported).
type GivenDuration = Option<Option<Duration>>;

/// The load model, closed or open as `executor` or `model` says (or the fields imply); `None`
/// when something in it is wrong (reported).
pub(crate) fn check_model(c: &mut Checker<'_>, spec: &ScenarioSpec) -> Option<LoadModel> {
    let load = &spec.load;
    let duration = load.duration.as_ref().map(|d| c.duration(d, "duration"));
    let by_executor = check_executor(c, load).ok()?;
    let is_open = match (&load.model, by_executor) {
        (_, Some(open)) => open,
        (Some(m), None) => match m.get_ref().as_str() {
            "open" => true,
            "closed" => false,
            other => {
                c.error(
                    &m.span(),
                    format!("model `{other}` is unknown: use \"closed\" or \"open\""),
                );
                return None;
            }
        },
        (None, None) => load.rate.is_some() || load.stages.is_some(),
    };
    if is_open {
        open_model(c, load, duration)
    } else {
        closed_model(c, load, duration)
    }
}

/// Connections back to back, for a duration, an iteration budget or ramping users.
fn closed_model(
    c: &mut Checker<'_>,
    load: &LoadSpec,
    duration: GivenDuration,
) -> Option<LoadModel> {
    for (field, present) in [
        ("rate", load.rate.as_ref().map(Spanned::span)),
        ("start_rate", load.start_rate.as_ref().map(Spanned::span)),
        ("max_queue", load.max_queue.as_ref().map(Spanned::span)),
    ] {
        if let Some(span) = present {
            c.error(&span, format!("{field} only applies to the open model"));
        }
    }
    let shared = shared_iterations(c, load);
    let requests = closed_requests(c, shared);
    let per_vu = iterations_per_vu(c, load, shared);
    let vus = ramping_vus(c, load).ok()?;
    let duration = match (duration, &vus) {
        (_, Some(v)) => Some(Duration::from_nanos(v.end_ns())),
        (Some(d), None) => d,
        (None, None) if requests.is_some() || per_vu.is_some() => None,
        (None, None) => Some(DEFAULT_DURATION),
    };
    Some(LoadModel::Closed {
        duration,
        requests,
        vus,
        per_vu,
    })
}

/// `requests` or `iterations` (the same budget under two names), with the name used.
fn shared_iterations<'s>(
    c: &mut Checker<'_>,
    load: &'s LoadSpec,
) -> Option<(&'s Spanned<crate::scenario::CountSpec>, &'static str)> {
    match (&load.requests, &load.iterations) {
        (Some(_), Some(i)) => {
            c.error(
                &i.span(),
                "give either requests or iterations (the same thing), not both",
            );
            None
        }
        (Some(r), None) => Some((r, "requests")),
        (None, Some(i)) => Some((i, "iterations")),
        (None, None) => None,
    }
}

/// The shared iteration budget, a whole number.
fn closed_requests(
    c: &mut Checker<'_>,
    shared: Option<(&Spanned<crate::scenario::CountSpec>, &str)>,
) -> Option<u64> {
    let (r, what) = shared?;
    match c.scaled(r, what) {
        Some(n) if n >= 1.0 && n.fract() == 0.0 => Some(n as u64),
        Some(_) => {
            c.error(
                &r.span(),
                format!("{what} must be a whole number of at least 1"),
            );
            None
        }
        None => None,
    }
}

/// `iterations_per_vu`, which excludes a shared budget and ramping users.
fn iterations_per_vu(
    c: &mut Checker<'_>,
    load: &LoadSpec,
    shared: Option<(&Spanned<crate::scenario::CountSpec>, &str)>,
) -> Option<u64> {
    match &load.iterations_per_vu {
        Some(n) if *n.get_ref() == 0 => {
            c.error(&n.span(), "iterations_per_vu must be at least 1");
            None
        }
        Some(n) => {
            if let Some((r, what)) = shared {
                c.error(
                    &r.span(),
                    format!("{what} does not apply with iterations_per_vu: give one"),
                );
            }
            if let Some(s) = load.stages.as_ref().and_then(|s| s.first()) {
                c.error(
                    &s.duration.span(),
                    "stages do not apply with iterations_per_vu (users are constant)",
                );
            }
            Some(*n.get_ref())
        }
        None => None,
    }
}

/// Ramping users from the closed model's `stages` (targets are user counts); `Err` when the
/// stages are unusable (reported).
fn ramping_vus(c: &mut Checker<'_>, load: &LoadSpec) -> Result<Option<Schedule>, ()> {
    let Some(stages) = &load.stages else {
        if let Some(v) = &load.start_vus {
            c.error(&v.span(), "start_vus only applies with stages");
        }
        return Ok(None);
    };
    if let Some(d) = &load.duration {
        c.error(
            &d.span(),
            "duration does not apply with stages: their durations add up to the run's",
        );
    }
    let start = load.start_vus.as_ref().map_or(0.0, |v| *v.get_ref() as f64);
    let mut out = check_stages(c, stages, "stage target (virtual users)").ok_or(())?;
    // Users come whole.
    out.iter_mut()
        .for_each(|s| s.target_rate_per_s = s.target_rate_per_s.floor());
    let v = Schedule::new(start, &out);
    if v.peak_rate_per_s() < 1.0 {
        let at = stages.first().map_or(0..0, |s| s.target.span());
        c.error(
            &at,
            "the stages never have a virtual user: give a stage a target of at least 1",
        );
        return Err(());
    }
    Ok(Some(v))
}

/// Arrivals on a schedule: a constant rate or ramping stages.
fn open_model(c: &mut Checker<'_>, load: &LoadSpec, duration: GivenDuration) -> Option<LoadModel> {
    for (field, span) in [
        ("requests", load.requests.as_ref().map(Spanned::span)),
        ("iterations", load.iterations.as_ref().map(Spanned::span)),
        (
            "iterations_per_vu",
            load.iterations_per_vu.as_ref().map(Spanned::span),
        ),
        ("start_vus", load.start_vus.as_ref().map(Spanned::span)),
    ] {
        if let Some(span) = span {
            c.error(&span, format!("{field} only applies to the closed model; the open model runs for its duration or stages"));
        }
    }
    let schedule = open_schedule(c, load, duration)?;
    let max_queue = match &load.max_queue {
        Some(q) => *q.get_ref() as usize,
        None => ((schedule.peak_rate_per_s() * QUEUE_SECONDS) as usize).clamp(MIN_QUEUE, MAX_QUEUE),
    };
    Some(LoadModel::Open {
        schedule,
        max_queue,
    })
}

fn open_schedule(
    c: &mut Checker<'_>,
    load: &LoadSpec,
    duration: GivenDuration,
) -> Option<Schedule> {
    match (&load.rate, &load.stages) {
        (Some(r), Some(_)) => {
            c.error(
                &r.span(),
                "give either rate (constant) or stages (ramping), not both",
            );
            None
        }
        (Some(r), None) => {
            let rate = c.scaled(r, "rate")?;
            if rate <= 0.0 {
                c.error(&r.span(), "rate must be greater than zero");
                return None;
            }
            let d = duration.unwrap_or(Some(DEFAULT_DURATION))?;
            Some(Schedule::constant(rate, d.as_nanos() as u64))
        }
        (None, Some(stages)) => ramping_rate(c, load, stages),
        (None, None) => {
            let span = load.model.as_ref().map(Spanned::span).unwrap_or(0..0);
            c.error(&span, "the open model needs a rate or stages");
            None
        }
    }
}

/// The open model's `stages` (targets are arrival rates), from `start_rate`.
fn ramping_rate(c: &mut Checker<'_>, load: &LoadSpec, stages: &[StageSpec]) -> Option<Schedule> {
    if let Some(d) = &load.duration {
        c.error(
            &d.span(),
            "duration does not apply with stages: their durations add up to the run's",
        );
    }
    let start = match &load.start_rate {
        Some(s) => c.scaled(s, "start_rate")?,
        None => 0.0,
    };
    let out = check_stages(c, stages, "stage target")?;
    let schedule = Schedule::new(start, &out);
    if schedule.total() == 0 {
        let at = stages.first().map_or(0..0, |s| s.duration.span());
        c.error(
            &at,
            "the stages never send a request: give a stage a target rate above zero",
        );
        return None;
    }
    Some(schedule)
}

/// Stage durations and targets (rates, or user counts), every problem reported; `None` when
/// no stage is usable.
fn check_stages(c: &mut Checker<'_>, stages: &[StageSpec], what: &str) -> Option<Vec<RateStage>> {
    let mut out = Vec::with_capacity(stages.len());
    for s in stages {
        let d = c.duration(&s.duration, "stage duration");
        let t = c.scaled(&s.target, what);
        if let (Some(d), Some(t)) = (d, t) {
            out.push(RateStage {
                duration_ns: d.as_nanos() as u64,
                target_rate_per_s: t,
            });
        }
    }
    (!out.is_empty()).then_some(out)
}

/// k6's executors: (name, open model?, what it needs).
const EXECUTORS: [(&str, bool); 6] = [
    ("constant-vus", false),
    ("ramping-vus", false),
    ("per-vu-iterations", false),
    ("shared-iterations", false),
    ("constant-arrival-rate", true),
    ("ramping-arrival-rate", true),
];

/// The model an `executor` names, after checking the fields it needs; `Err` when unusable.
fn check_executor(c: &mut Checker<'_>, load: &LoadSpec) -> Result<Option<bool>, ()> {
    let Some(e) = &load.executor else {
        return Ok(None);
    };
    let name = e.get_ref().as_str();
    let Some(&(_, open)) = EXECUTORS.iter().find(|(n, _)| *n == name) else {
        let hint = did_you_mean(name, EXECUTORS.iter().map(|(n, _)| *n));
        c.error(
            &e.span(),
            format!(
                "unknown executor `{name}` (use one of {}){hint}",
                EXECUTORS.map(|(n, _)| n).join(", ")
            ),
        );
        return Err(());
    };
    if let Some(m) = &load.model {
        if (m.get_ref() == "open") != open {
            c.error(
                &m.span(),
                format!("model `{}` contradicts executor `{name}`", m.get_ref()),
            );
        }
    }
    let needs = match name {
        "ramping-vus" | "ramping-arrival-rate" => ("stages", load.stages.is_some()),
        "per-vu-iterations" => ("iterations_per_vu", load.iterations_per_vu.is_some()),
        "shared-iterations" => (
            "iterations",
            load.iterations.is_some() || load.requests.is_some(),
        ),
        "constant-arrival-rate" => ("rate", load.rate.is_some()),
        _ => ("", true),
    };
    if !needs.1 {
        c.error(&e.span(), format!("executor `{name}` needs {}", needs.0));
    }
    let refuses = match name {
        "constant-vus" | "constant-arrival-rate" | "per-vu-iterations" | "shared-iterations" => {
            load.stages
                .as_ref()
                .and_then(|s| s.first())
                .map(|s| ("stages", s.duration.span()))
        }
        _ => None,
    };
    if let Some((field, span)) = refuses {
        c.error(
            &span,
            format!("{field} does not apply to executor `{name}`"),
        );
    }
    Ok(Some(open))
}

/// Connections (virtual users): `connections`, `vus` or `max_vus`; one per user at the peak
/// of ramping users unless the file says more.
pub(crate) fn check_connections(
    c: &mut Checker<'_>,
    load: &LoadSpec,
    model: Option<&LoadModel>,
) -> u32 {
    let is_open = matches!(model, Some(LoadModel::Open { .. }));
    let given: Vec<(&str, &Spanned<u64>)> = [
        ("connections", load.connections.as_ref()),
        ("vus", load.vus.as_ref()),
        ("max_vus", load.max_vus.as_ref()),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.map(|v| (name, v)))
    .collect();
    if let [_, (second, v), ..] = given.as_slice() {
        c.error(
            &v.span(),
            format!("{second}: give one of connections, vus and max_vus"),
        );
    }
    match (given.first(), model.is_some()) {
        (Some(("vus", v)), true) if is_open => c.error(
            &v.span(),
            "vus is for the closed model; the open model's bound is max_vus",
        ),
        (Some(("max_vus", v)), true) if !is_open => c.error(
            &v.span(),
            "max_vus is for the open model; the closed model's users are vus",
        ),
        _ => {}
    }
    let mut connections = match given.first() {
        Some((name, n)) if *n.get_ref() == 0 || *n.get_ref() > u32::MAX as u64 => {
            c.error(&n.span(), format!("{name} must be at least 1"));
            DEFAULT_CONNECTIONS
        }
        Some((_, n)) => *n.get_ref() as u32,
        None => DEFAULT_CONNECTIONS,
    };
    if let Some(LoadModel::Closed { vus: Some(v), .. }) = model {
        let peak = v.peak_rate_per_s().ceil() as u32;
        match given.first() {
            None => connections = peak,
            Some((name, n)) if (*n.get_ref() as u32) < peak => c.error(
                &n.span(),
                format!(
                    "{name} ({}) is below the stages' peak of {peak} virtual users",
                    n.get_ref()
                ),
            ),
            Some(_) => {}
        }
    }
    connections
}
