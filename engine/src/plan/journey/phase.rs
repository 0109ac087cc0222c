//! `[[setup]]` and `[[teardown]]`: steps run once around the load (k6's `setup()` and
//! `teardown()`), compiled like load steps but in their own phase.
//!
//! What a setup step captures becomes a run-wide value, read by every later step as
//! `{{run.NAME}}`; a step with `each = N` runs N times (`{{iteration}}` from 0, `parallel` at
//! once) and its captures become lists in iteration order. Teardown steps may check what the
//! server says against `{{run.count(STEP)}}`. This module compiles; `run::phase` executes.

use toml::Spanned;

use crate::plan::checker::Checker;
use crate::plan::journey::compile::compile_step;
use crate::plan::journey::scope::{Binding, Phase, RunName, RunScope, StepContext, Variables};
use crate::plan::journey::{RequestBase, StepPlan};
use crate::plan::template;
use crate::scenario::{ScenarioSpec, StepSpec};

/// Most iterations of one setup or teardown step.
pub const MAX_EACH: u64 = 100_000;
/// Most iterations of a step at once.
pub const MAX_PARALLEL: u64 = 256;

/// One compiled setup or teardown step.
#[derive(Clone, Debug)]
pub struct PhaseStep {
    pub step: StepPlan,
    /// How many times it runs.
    pub each: u64,
    /// How many of those run at once.
    pub parallel: usize,
    /// `each` was given: its captures are lists.
    pub list: bool,
}

/// The run's setup and teardown, and the run-wide values between them.
#[derive(Clone, Debug, Default)]
pub struct Phases {
    pub setup: Vec<PhaseStep>,
    pub teardown: Vec<PhaseStep>,
    /// Run slot `i < values.len()`: setup's captures.
    pub values: Vec<RunName>,
    /// Run slot `values.len() + i`: the success count of the load step `counts[i]`.
    pub counts: Vec<String>,
}

impl Phases {
    pub fn is_empty(&self) -> bool {
        self.setup.is_empty() && self.teardown.is_empty()
    }
}

/// Compiles `[[setup]]`, returning its steps and the run-wide values they capture.
pub(crate) fn compile_setup(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    base: &RequestBase<'_>,
) -> (Vec<PhaseStep>, RunScope) {
    let mut scope = RunScope::default();
    let mut vars = Variables::default();
    for (i, s) in spec.setup.iter().enumerate() {
        for (name, cap) in &s.capture {
            if !template::is_identifier(name) {
                c.error(
                    &cap.span(),
                    format!("capture name `{name}` must be an identifier"),
                );
            } else if let Some(first) = scope.values.iter().find(|v| v.name == *name) {
                c.error(
                    &cap.span(),
                    format!(
                        "`run.{name}` is already captured by setup step {}: capture into another name",
                        first.step + 1
                    ),
                );
            } else {
                scope.values.push(RunName {
                    name: name.clone(),
                    list: s.each.is_some(),
                    step: i,
                });
                vars.names.push(name.clone());
                vars.bindings.push(Binding {
                    name: name.clone(),
                    step: i,
                    task: 0,
                });
            }
        }
    }
    let steps = spec
        .setup
        .iter()
        .enumerate()
        .map(|(i, s)| compile_phase_step(c, base, &scope, &vars, Phase::Setup(i), s))
        .collect();
    (steps, scope)
}

/// Compiles `[[teardown]]`, which sees every run-wide value and may count load steps.
pub(crate) fn compile_teardown(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    base: &RequestBase<'_>,
    scope: &RunScope,
) -> Vec<PhaseStep> {
    let vars = Variables::default();
    spec.teardown
        .iter()
        .map(|s| {
            if let Some((_, cap)) = s.capture.iter().next() {
                c.error(
                    &cap.span(),
                    "teardown steps capture nothing: they check what the server says",
                );
            }
            compile_phase_step(c, base, scope, &vars, Phase::Teardown, s)
        })
        .collect()
}

fn compile_phase_step(
    c: &mut Checker<'_>,
    base: &RequestBase<'_>,
    run: &RunScope,
    vars: &Variables,
    phase: Phase,
    s: &StepSpec,
) -> PhaseStep {
    let cx = StepContext {
        index: 0,
        task: 0,
        task_name: Some(match phase {
            Phase::Teardown => "teardown",
            _ => "setup",
        }),
        base,
        vars,
        run,
        phase,
    };
    for (field, on) in [("once", s.once), ("think", s.think.is_some())] {
        if on {
            c.error(
                &s.span(),
                format!("`{field}` does not apply to setup and teardown steps, which run once"),
            );
        }
    }
    if s.is_ws() {
        c.error(
            &s.span(),
            "WebSocket steps belong to the load's [[steps]], not to setup or teardown",
        );
    }
    let step = compile_step(c, &cx, s);
    let each = s
        .each
        .as_ref()
        .map_or(1, |e| bounded(c, e, "each", MAX_EACH));
    let parallel = s
        .parallel
        .as_ref()
        .map_or(1, |p| bounded(c, p, "parallel", MAX_PARALLEL));
    PhaseStep {
        step,
        each,
        parallel: parallel.min(each).max(1) as usize,
        list: s.each.is_some(),
    }
}

fn bounded(c: &mut Checker<'_>, v: &Spanned<u64>, field: &str, max: u64) -> u64 {
    let n = *v.get_ref();
    if n == 0 || n > max {
        c.error(&v.span(), format!("{field} must be 1 to {max}"));
        return 1;
    }
    n
}
