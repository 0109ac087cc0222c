//! Compiling a journey: tasks flattened into steps, variables given slots (feeders and `[vars]`
//! before any step, captures at the step that sets them), then each step compiled in a
//! `StepContext` that says which variables it may use.
//!
//! The request bytes, the captures and checks are compiled by `request` and `response`; this
//! module decides what a step is and what it can see, and encodes nothing itself.

use toml::Spanned;

use crate::plan::checker::Checker;
use crate::plan::journey::feeder::compile_feeders;
use crate::plan::journey::request::compile_request;
use crate::plan::journey::response::{
    compile_capture, compile_checks, compile_expect_status, needs_body, needs_head,
};
use crate::plan::journey::scope::{
    Binding, IterationNames, Phase, StepContext, Variables, PRELUDE,
};
use crate::plan::journey::timing::{compile_think, compile_timeout};
use crate::plan::journey::Check;
use crate::plan::journey::RunScope;
use crate::plan::journey::{Journey, RequestBase, StepPlan, TaskPlan, Think};
use crate::plan::template::{self, Escape, Template};
use crate::scenario::{ScenarioSpec, StepSpec};

/// Compiles `[[steps]]` (or `[[tasks]]`), with `[feeders]` and `[vars]`.
pub(crate) fn compile(c: &mut Checker<'_>, spec: &ScenarioSpec, base: &RequestBase<'_>) -> Journey {
    let (specs, tasks, prelude) = flatten_tasks(c, spec);
    let task_per_vu = check_task_choice(c, spec);
    let mut vars = Variables::default();
    let feeders = compile_feeders(c, spec, base.source, &mut vars);
    let iteration_vars = compile_iteration_vars(c, spec, base.run, &mut vars);
    bind_captures(c, &specs, &mut vars);
    let named_tasks = spec.tasks.len() > 1;
    let steps: Vec<StepPlan> = specs
        .iter()
        .enumerate()
        .map(|(index, (task, s))| {
            let cx = StepContext {
                index,
                task: *task,
                task_name: named_tasks
                    .then(|| tasks.get(*task).map(|t| t.name.as_str()))
                    .flatten(),
                base,
                vars: &vars,
                run: base.run,
                phase: Phase::Load,
            };
            compile_step(c, &cx, s)
        })
        .collect();
    check_unique_names(c, &specs, &steps);
    super::ws::check_socket_order(c, &specs);
    let mut steps = steps;
    super::ws::keep_reconnected_upgrades(&mut steps, &tasks);
    Journey {
        steps,
        vars: vars.names,
        iteration_vars,
        feeders,
        tasks,
        task_per_vu,
        prelude: 0..prelude,
        run: Vec::new(),
        cookies: false,
        origin: None,
    }
}

/// Steps flattened, each with its task; a journey without [[tasks]] is one task. Beside
/// `[[tasks]]`, `[[steps]]` may hold `once` steps only (a login): they run before any task
/// (Locust's `on_start`), as task `PRELUDE`, and what they capture every task can read.
fn flatten_tasks<'s>(
    c: &mut Checker<'_>,
    spec: &'s ScenarioSpec,
) -> (Vec<(usize, &'s StepSpec)>, Vec<TaskPlan>, usize) {
    let mut specs: Vec<(usize, &StepSpec)> = Vec::new();
    let mut tasks = Vec::new();
    if spec.tasks.is_empty() {
        specs.extend(spec.steps.iter().map(|s| (0, s)));
        tasks.push(TaskPlan {
            name: "default".into(),
            weight: 1,
            steps: 0..spec.steps.len(),
        });
        return (specs, tasks, 0);
    }
    for s in spec.steps.iter().filter(|s| !s.once) {
        c.error(
            &s.span(),
            "beside [[tasks]], [[steps]] holds only `once = true` steps (a login every task reads): move this step into a task",
        );
    }
    specs.extend(spec.steps.iter().map(|s| (PRELUDE, s)));
    let prelude = specs.len();
    for (t, task) in spec.tasks.iter().enumerate() {
        let weight = task.weight.as_ref().map_or(1, |w| *w.get_ref());
        if task.steps.is_empty() {
            c.error(
                &task.name.span(),
                format!("task `{}` has no steps", task.name.get_ref()),
            );
        }
        let start = specs.len();
        specs.extend(task.steps.iter().map(|s| (t, s)));
        tasks.push(TaskPlan {
            name: task.name.get_ref().clone(),
            weight,
            steps: start..specs.len(),
        });
    }
    if tasks.iter().all(|t| t.weight == 0) {
        c.error(
            &spec.tasks[0].name.span(),
            "every task has weight 0: nothing would run",
        );
    }
    (specs, tasks, prelude)
}

/// `task_choice`: true when each virtual user draws its task once.
fn check_task_choice(c: &mut Checker<'_>, spec: &ScenarioSpec) -> bool {
    match &spec.task_choice {
        None => false,
        Some(v) => match v.get_ref().as_str() {
            "iteration" => false,
            "vu" => true,
            other => {
                c.error(
                    &v.span(),
                    format!("task_choice `{other}`: use \"iteration\" or \"vu\""),
                );
                false
            }
        },
    }
}

/// `[vars]`: (slot, template) rendered at the start of each iteration, from built-ins and
/// run-wide values.
fn compile_iteration_vars(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    run: &RunScope,
    vars: &mut Variables,
) -> Vec<(usize, Template)> {
    let mut iteration_vars = Vec::new();
    for (name, text) in &spec.vars {
        if !template::is_identifier(name) || template::BUILTINS.contains(&name.as_str()) {
            c.error(
                &text.span(),
                format!("variable name `{name}` must be an identifier other than a built-in"),
            );
            continue;
        }
        match Template::compile_in(text.get_ref(), Escape::None, &mut IterationNames { run }) {
            Ok(t) => iteration_vars.push((vars.set_before_steps(name.clone()), t)),
            Err(e) => {
                let at = text.span().start + 1 + e.offset;
                c.error(&(at..at), e.message);
            }
        }
    }
    iteration_vars
}

/// Gives every captured name a slot, bound to the first step of each task that captures it.
fn bind_captures(c: &mut Checker<'_>, specs: &[(usize, &StepSpec)], vars: &mut Variables) {
    for (i, (task, s)) in specs.iter().enumerate() {
        for (name, spec) in &s.capture {
            if !template::is_identifier(name) || template::BUILTINS.contains(&name.as_str()) {
                c.error(
                    &spec.span(),
                    format!(
                        "capture name `{name}` must be an identifier other than a built-in ({})",
                        template::BUILTINS.join(", ")
                    ),
                );
            } else if vars.is_set_before_steps(name) {
                c.error(
                    &spec.span(),
                    format!("`{name}` is already a [vars] variable: capture into another name"),
                );
            } else if !vars
                .bindings
                .iter()
                .any(|b| b.name == *name && b.task == *task)
            {
                vars.bindings.push(Binding {
                    name: name.clone(),
                    step: i,
                    task: *task,
                });
                if !vars.names.contains(name) {
                    vars.names.push(name.clone());
                }
            }
        }
    }
}

/// Reports and thresholds refer to steps by name.
fn check_unique_names(c: &mut Checker<'_>, specs: &[(usize, &StepSpec)], steps: &[StepPlan]) {
    for (i, (_, s)) in specs.iter().enumerate() {
        if steps[..i].iter().any(|p| p.name == steps[i].name) {
            let span = s.name.as_ref().map_or_else(|| s.span(), Spanned::span);
            c.error(
                &span,
                format!(
                    "step name `{}` is used twice: name each step uniquely",
                    steps[i].name
                ),
            );
        }
    }
}

/// One step: its request, what it reads from the response, and its pause.
pub(super) fn compile_step(c: &mut Checker<'_>, cx: &StepContext<'_>, s: &StepSpec) -> StepPlan {
    if s.is_ws() {
        return super::ws::compile_ws_step(c, cx, s);
    }
    super::ws::check_http_step(c, s);
    if s.path.get_ref().is_empty() {
        c.error(
            &s.span(),
            "a step needs a `path` (an HTTP request) or one of ws_connect, ws_send, ws_expect, ws_close",
        );
    }
    let method = s
        .method
        .as_ref()
        .map_or_else(|| "GET".to_string(), |m| m.get_ref().to_ascii_uppercase());
    if let Some(m) = &s.method {
        if crate::proto::http1::validate_header(&method, "").is_err() {
            c.error(
                &m.span(),
                format!("`{}` is not a valid method", m.get_ref()),
            );
        }
    }
    let name = s.name.as_ref().map_or_else(
        || match cx.task_name {
            Some(t) => format!("{t}: {method} {}", s.path.get_ref()),
            None => format!("{method} {}", s.path.get_ref()),
        },
        |n| n.get_ref().clone(),
    );
    let compressed = s
        .compressed
        .as_ref()
        .map_or(cx.base.client.compressed, |b| *b.get_ref());
    let request = compile_request(c, cx, s, &method, compressed);
    let decompress = compressed || asks_encoding(cx, s);
    let follow_redirects = s
        .follow_redirects
        .as_ref()
        .map_or(Some(cx.base.client.follow_redirects), |n| {
            compile_follow_redirects(c, n)
        })
        .unwrap_or(0);
    let captures = s
        .capture
        .iter()
        .filter_map(|(name, spec)| compile_capture(c, name, spec, &cx.vars.names))
        .collect::<Vec<_>>();
    let mut checks = s
        .check
        .as_ref()
        .map(|k| compile_checks(c, k))
        .unwrap_or_default();
    let json_templates = s
        .check
        .as_ref()
        .map(|k| compile_json_templates(c, cx, k))
        .unwrap_or_default();
    if cx.phase == Phase::Load {
        for (field, span) in [
            ("each", s.each.as_ref().map(Spanned::span)),
            ("parallel", s.parallel.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                c.error(
                    &span,
                    format!("`{field}` is for [[setup]] and [[teardown]] steps"),
                );
            }
        }
    }
    if cx.phase != Phase::Load {
        for (field, span) in [
            (
                "follow_redirects",
                s.follow_redirects.as_ref().map(Spanned::span),
            ),
            ("compressed", s.compressed.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                c.error(
                    &span,
                    format!("`{field}` is not supported in [[setup]] and [[teardown]] steps yet: they go over a plain HTTP/1.1 client"),
                );
            }
        }
    }
    let expect_status = compile_expect_status(c, s.expect_status.as_ref());
    if !expect_status.is_empty() {
        checks.push(Check::Status(expect_status.clone()));
    }
    let think = s
        .think
        .as_ref()
        .map_or(Think::None, |t| compile_think(c, t));
    let needs_body = needs_body(&captures, &checks);
    StepPlan {
        name,
        head_request: method == "HEAD",
        request,
        needs_body,
        needs_head: needs_head(&captures, &checks) || (decompress && needs_body),
        captures,
        checks,
        think,
        once: s.once,
        expect_status,
        timeout_ns: s.timeout.as_ref().and_then(|t| compile_timeout(c, t)),
        json_templates,
        follow_redirects,
        decompress,
        ws: None,
    }
}

/// Most redirect hops a step may follow (curl's default is 50, k6's 10).
pub(crate) const MAX_REDIRECTS: u64 = 20;

/// `follow_redirects`: 0 to `MAX_REDIRECTS`.
pub(crate) fn compile_follow_redirects(c: &mut Checker<'_>, n: &Spanned<u64>) -> Option<u8> {
    let hops = *n.get_ref();
    if hops > MAX_REDIRECTS {
        c.error(
            &n.span(),
            format!("follow_redirects: at most {MAX_REDIRECTS} hops (e.g. 5), not {hops}"),
        );
        return None;
    }
    Some(hops as u8)
}

/// The step or `[request]` writes its own `Accept-Encoding`: it wants compression too.
fn asks_encoding(cx: &StepContext<'_>, s: &StepSpec) -> bool {
    let named = |h: &str| {
        h.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("accept-encoding"))
    };
    s.headers.iter().any(|h| named(h.get_ref()))
        || cx
            .base
            .default_headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("accept-encoding"))
}

/// `check.json` values that are templates (`"{{run.count(answer)}}"`): rendered once the value
/// is known, so only setup and teardown steps may have them.
fn compile_json_templates(
    c: &mut Checker<'_>,
    cx: &StepContext<'_>,
    k: &crate::scenario::CheckSpec,
) -> Vec<(String, Template)> {
    let Some(j) = &k.json else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (pointer, expected) in j.get_ref() {
        let Some(text) = expected.as_str().filter(|t| t.contains("{{")) else {
            continue;
        };
        if cx.phase == Phase::Load {
            c.error(
                &j.span(),
                format!("`{pointer}`: a templated expected value is for [[setup]] and [[teardown]] steps"),
            );
            continue;
        }
        if let Some(t) = cx.template(c, text, j.span(), Escape::None) {
            out.push((pointer.clone(), t));
        }
    }
    out
}
