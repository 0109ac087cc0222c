//! Running `[[setup]]` before the load and `[[teardown]]` after it.
//!
//! Setup steps run in order; a step with `each = N` runs N iterations, `parallel` at a time,
//! and what it captures becomes a list in iteration order. The first failure (an error
//! status, a failed check or capture, a lost connection) stops setup: the load never starts.
//! Teardown steps all run (cleanup should not stop at the first problem); a failure fails the
//! run. Nothing here touches the load's statistics.

mod client;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use self::client::{Client, Dialer, Exchange};
use crate::metrics::stats::{CheckKind, Stats};
use crate::metrics::ErrorKind;
use crate::net::tls;
use crate::plan::journey::{PhaseStep, StepPlan};
use crate::plan::template::{RenderContext, RunValue};
use crate::plan::Plan;
use crate::results::{PhaseStepResult, Results, StepResult};
use crate::shard::conn::inspect::{inspect, Response};

/// Most body bytes quoted in a failure message.
const QUOTED_BODY: usize = 200;

/// What a phase did: each step's figures and the first failure.
pub struct PhaseOutcome {
    pub steps: Vec<PhaseStepResult>,
    pub failure: Option<String>,
}

/// Runs setup; returns the run-wide values for the load. `stopped` is polled between
/// iterations so a stop during setup ends it.
pub fn run_setup(
    plan: &Plan,
    stopped: &(dyn Fn() -> bool + Sync),
) -> (Vec<RunValue>, PhaseOutcome) {
    let phases = &plan.phases;
    let mut values: Vec<RunValue> = phases
        .values
        .iter()
        .map(|v| {
            if v.list {
                RunValue::List(Vec::new())
            } else {
                RunValue::Scalar(Vec::new())
            }
        })
        .collect();
    let mut outcome = PhaseOutcome {
        steps: Vec::new(),
        failure: None,
    };
    let dialer = match dialer(plan) {
        Ok(d) => d,
        Err(why) => {
            outcome.failure = Some(why);
            return (values, outcome);
        }
    };
    for step in &phases.setup {
        if stopped() {
            outcome.failure = Some("the run was stopped during setup".into());
            break;
        }
        let (result, captured) = run_step("setup", step, &dialer, plan, &values, stopped, true);
        for (var, items) in captured {
            if let Some(v) = values.get_mut(var) {
                *v = if step.list {
                    RunValue::List(items)
                } else {
                    RunValue::Scalar(items.into_iter().next().unwrap_or_default())
                };
            }
        }
        let failure = result.failure.clone();
        outcome.steps.push(result);
        if failure.is_some() {
            outcome.failure = failure;
            break;
        }
    }
    (values, outcome)
}

/// Runs teardown after the load, with setup's values and the load's step counts.
pub fn run_teardown(plan: &Plan, setup_values: &[RunValue], results: &Results) -> PhaseOutcome {
    let phases = &plan.phases;
    let mut values = setup_values.to_vec();
    values.extend(
        phases
            .counts
            .iter()
            .map(|name| RunValue::Scalar(successes(&results.steps, name).to_string().into_bytes())),
    );
    let mut outcome = PhaseOutcome {
        steps: Vec::new(),
        failure: None,
    };
    let dialer = match dialer(plan) {
        Ok(d) => d,
        Err(why) => {
            outcome.failure = Some(why);
            return outcome;
        }
    };
    for step in &phases.teardown {
        let (result, _) = run_step("teardown", step, &dialer, plan, &values, &|| false, false);
        if outcome.failure.is_none() {
            outcome.failure.clone_from(&result.failure);
        }
        outcome.steps.push(result);
    }
    outcome
}

/// Responses of a load step that were not errors (over every scenario, shard and daemon).
fn successes(steps: &[StepResult], name: &str) -> u64 {
    let status_errors = |s: &StepResult| {
        ["status_4xx", "status_5xx"]
            .iter()
            .filter_map(|k| s.errors.get(*k).and_then(serde_json::Value::as_u64))
            .sum::<u64>()
    };
    steps
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.requests.saturating_sub(status_errors(s)))
        .sum()
}

fn dialer(plan: &Plan) -> Result<Dialer, String> {
    let addr = *plan
        .target
        .addrs
        .first()
        .ok_or_else(|| format!("{} resolved to no address", plan.target.url))?;
    let tls = match &plan.tls {
        None => None,
        Some(t) => {
            // Setup and teardown speak HTTP/1.1 even in an HTTP/2 run: offer only that.
            let options = tls::TlsOptions {
                alpn: tls::Alpn::Http11,
                ..t.options.clone()
            };
            Some((
                tls::client_config(&options).map_err(|e| e.to_string())?,
                t.server_name.clone(),
            ))
        }
    };
    Ok(Dialer {
        addr,
        tls,
        connect_timeout: plan.connect_timeout,
    })
}

/// Per captured variable slot, its values in iteration order.
type Captured = Vec<(usize, Vec<Vec<u8>>)>;

/// What one iteration left: its captures (by variable slot) or why it failed.
struct Iteration {
    captured: Vec<(usize, Vec<u8>)>,
    latency: Duration,
    requested: bool,
    stats: Stats,
    failure: Option<String>,
}

/// Runs a step's iterations; returns its figures and, per captured slot, the values in order.
fn run_step(
    phase: &str,
    step: &PhaseStep,
    dialer: &Dialer,
    plan: &Plan,
    values: &[RunValue],
    stopped: &(dyn Fn() -> bool + Sync),
    stop_at_failure: bool,
) -> (PhaseStepResult, Captured) {
    let each = step.each;
    let slots = Mutex::new((0..each).map(|_| None).collect::<Vec<Option<Iteration>>>());
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let nvars = plan.phases.values.len();
    let worker = || {
        let mut client = Client::new(dialer);
        loop {
            if (stop_at_failure && failed.load(Ordering::Relaxed)) || stopped() {
                return;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= each {
                return;
            }
            let it = iterate(&step.step, i, &mut client, plan, values, nvars);
            if it.failure.is_some() {
                failed.store(true, Ordering::Relaxed);
            }
            if let Ok(mut s) = slots.lock() {
                s[i as usize] = Some(it);
            }
        }
    };
    if step.parallel <= 1 {
        worker();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..step.parallel {
                scope.spawn(worker);
            }
        });
    }
    let done = slots.into_inner().unwrap_or_default();
    summarize(phase, step, done)
}

fn summarize(
    phase: &str,
    step: &PhaseStep,
    done: Vec<Option<Iteration>>,
) -> (PhaseStepResult, Captured) {
    let mut result = PhaseStepResult {
        phase: phase.into(),
        name: step.step.name.clone(),
        ..PhaseStepResult::default()
    };
    let mut captured: Vec<(usize, Vec<Vec<u8>>)> = step
        .step
        .captures
        .iter()
        .map(|c| (c.var, Vec::new()))
        .collect();
    let mut total_ms = 0.0;
    for (i, it) in done.into_iter().enumerate() {
        let Some(it) = it else {
            // Not run: an earlier iteration failed, or the run was stopped.
            if result.failure.is_none() {
                result.failure = Some(format!("{phase} step `{}` was not finished", result.name));
            }
            continue;
        };
        if it.requested {
            result.requests += 1;
            let ms = it.latency.as_secs_f64() * 1e3;
            total_ms += ms;
            result.latency_ms_max = result.latency_ms_max.max(ms);
        }
        result.checks_passed += it.stats.checks_passed;
        result.checks_failed += it.stats.checks_failed;
        if let Some(why) = it.failure {
            result.failed += 1;
            if result.failure.is_none()
                || result
                    .failure
                    .as_deref()
                    .is_some_and(|f| f.ends_with("was not finished"))
            {
                let at = if step.each > 1 {
                    format!(" (iteration {i})")
                } else {
                    String::new()
                };
                result.failure = Some(format!("{phase} step `{}`{at}: {why}", result.name));
            }
        }
        for (slot, value) in it.captured {
            if let Some((_, list)) = captured.iter_mut().find(|(s, _)| *s == slot) {
                list.push(value);
            }
        }
    }
    if result.requests > 0 {
        result.latency_ms_mean = total_ms / result.requests as f64;
    }
    (result, captured)
}

/// One request of a phase step, its checks and captures.
fn iterate(
    step: &StepPlan,
    index: u64,
    client: &mut Client<'_>,
    plan: &Plan,
    values: &[RunValue],
    nvars: usize,
) -> Iteration {
    let mut it = Iteration {
        captured: Vec::new(),
        latency: Duration::ZERO,
        requested: false,
        stats: Stats::new(),
        failure: None,
    };
    let mut vars = vec![Vec::new(); nvars];
    let mut rng = fastrand::Rng::new();
    let (mut request, mut scratch) = (Vec::new(), Vec::new());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut cx = RenderContext {
        vu: 0,
        iteration: index,
        vars: &vars,
        rng: &mut rng,
        now_ms,
        run: values,
        body: &[],
    };
    if let Err(e) = step.request.encode(&mut cx, &mut request, &mut scratch) {
        it.failure = Some(format!("template: {}", e.message()));
        return it;
    }
    let timeout = step.timeout_ns.map_or(plan.timeout, Duration::from_nanos);
    let x = match client.exchange(&request, step.head_request, timeout) {
        Ok(x) => x,
        Err(kind) => {
            it.failure = Some(format!("no response: {}", kind.name()));
            return it;
        }
    };
    it.requested = true;
    it.latency = x.latency;
    let error_status = x.status >= 400 && !step.expect_status.contains(&x.status);
    let seen = Response {
        status: x.status,
        head: &x.head,
        body: &x.body,
        latency_ns: x.latency.as_nanos() as u64,
    };
    let captured = inspect(step, &seen, &mut vars, &mut it.stats);
    let mismatched = check_templates(step, &x, values, &mut it.stats);
    it.failure = if error_status {
        Some(format!("status {}{}", x.status, quote(&x.body)))
    } else if !captured {
        let kind = ErrorKind::CaptureFailed.name();
        Some(format!(
            "{kind}: a capture found nothing in status {}{}",
            x.status,
            quote(&x.body)
        ))
    } else if let Some(why) = mismatched {
        Some(why)
    } else if it.stats.checks_failed > 0 {
        let kinds: Vec<&str> = CheckKind::ALL
            .iter()
            .filter(|k| it.stats.check_failures[**k as usize] > 0)
            .map(|k| k.name())
            .collect();
        Some(format!(
            "check failed ({}) on status {}{}",
            kinds.join(", "),
            x.status,
            quote(&x.body)
        ))
    } else {
        None
    };
    if it.failure.is_none() {
        it.captured = step
            .captures
            .iter()
            .map(|c| (c.var, vars.get(c.var).cloned().unwrap_or_default()))
            .collect();
    }
    it
}

/// `check.json` values rendered from run-wide values (`"{{run.count(answer)}}"`); returns the
/// first mismatch. A JSON string compares as its text, anything else as its JSON.
fn check_templates(
    step: &StepPlan,
    x: &Exchange,
    values: &[RunValue],
    stats: &mut Stats,
) -> Option<String> {
    if step.json_templates.is_empty() {
        return None;
    }
    let json: Option<serde_json::Value> = serde_json::from_slice(&x.body).ok();
    let mut first = None;
    let mut rng = fastrand::Rng::new();
    for (pointer, template) in &step.json_templates {
        let mut expected = Vec::new();
        let rendered = template.render(
            &mut RenderContext {
                vu: 0,
                iteration: 0,
                vars: &[],
                rng: &mut rng,
                now_ms: 0,
                run: values,
                body: &[],
            },
            &mut expected,
        );
        let actual = json.as_ref().and_then(|j| j.pointer(pointer));
        let text = actual.map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let passed = rendered.is_ok() && text.as_deref().map(str::as_bytes) == Some(&expected[..]);
        stats.record_check(CheckKind::Json, passed);
        if !passed && first.is_none() {
            first = Some(format!(
                "`{pointer}` is {}, expected {}",
                text.unwrap_or_else(|| "absent".into()),
                String::from_utf8_lossy(&expected)
            ));
        }
    }
    first
}

/// `: "<start of the body>"`, for a failure message.
fn quote(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(QUOTED_BODY)]);
    let more = if body.len() > QUOTED_BODY { "…" } else { "" };
    format!(": {:?}{more}", text.trim())
}
