//! What a step can see: a journey's variables with the step that sets each (feeders and `[vars]`
//! before any step, captures at the step that makes them), and the `StepContext` a step is
//! compiled in, which resolves a template's names to slots or says why it may not use one.

use std::ops::Range;

use crate::plan::checker::{did_you_mean, Checker};
use crate::plan::journey::RequestBase;
use crate::plan::template::{self, Escape, Template};

/// The `step` and `task` of a variable set before any step (a feeder column, `[vars]`).
pub(super) const BEFORE_STEPS: usize = usize::MAX;

/// Where a variable gets its value.
pub(super) struct Binding {
    pub name: String,
    /// The flat index of the step that captures it, or `BEFORE_STEPS`.
    pub step: usize,
    /// That step's task, or `BEFORE_STEPS`.
    pub task: usize,
}

/// A journey's variables: a name's index in `names` is its slot in each virtual user.
#[derive(Default)]
pub(super) struct Variables {
    pub names: Vec<String>,
    pub bindings: Vec<Binding>,
}

impl Variables {
    /// A variable set at the start of every iteration; returns its slot.
    pub(super) fn set_before_steps(&mut self, name: String) -> usize {
        let slot = self.names.len();
        self.names.push(name.clone());
        self.bindings.push(Binding {
            name,
            step: BEFORE_STEPS,
            task: BEFORE_STEPS,
        });
        slot
    }

    pub(super) fn is_set_before_steps(&self, name: &str) -> bool {
        self.bindings
            .iter()
            .any(|b| b.name == name && b.step == BEFORE_STEPS)
    }
}

/// What compiling one step needs to know: where it sits and which variables exist.
pub(super) struct StepContext<'a> {
    /// The step's index among the journey's steps (every task's, flattened).
    pub index: usize,
    pub task: usize,
    /// Prefixes the step's default name when the journey has several named tasks.
    pub task_name: Option<&'a str>,
    pub base: &'a RequestBase<'a>,
    pub vars: &'a Variables,
}

impl StepContext<'_> {
    /// A variable's slot, if this step may read it: set before any step, or captured earlier in
    /// the same task.
    fn lookup(&self, var: &str) -> Result<usize, String> {
        let (index, task) = (self.index, self.task);
        let bindings = &self.vars.bindings;
        let same_task = bindings
            .iter()
            .filter(|b| b.name == var && (b.task == task || b.task == BEFORE_STEPS))
            .min_by_key(|b| b.step);
        match same_task.or_else(|| bindings.iter().find(|b| b.name == var)) {
            Some(b) if b.step == BEFORE_STEPS || (b.task == task && b.step < index) => {
                Ok(self.vars.names.iter().position(|v| v == var).unwrap_or(0))
            }
            Some(b) if b.task != task => Err(format!(
                "`{{{{{var}}}}}` is captured in another task: a task can use only what it captures itself or [vars]"
            )),
            Some(b) => Err(format!(
                "`{{{{{var}}}}}` is used in step {} but only captured in step {} — capture it in an earlier step",
                index + 1,
                b.step + 1
            )),
            None => {
                let names = self.vars.names.iter().map(String::as_str);
                let hint = did_you_mean(var, names.chain(template::BUILTINS));
                Err(format!("`{{{{{var}}}}}` is not defined: capture it in an earlier step or use a built-in{hint}"))
            }
        }
    }

    /// Compiles a template of this step; errors point into the string written at `span`.
    pub(super) fn template(
        &self,
        c: &mut Checker<'_>,
        text: &str,
        span: Range<usize>,
        escape: Escape,
    ) -> Option<Template> {
        match Template::compile(text, escape, &mut |var| self.lookup(var)) {
            Ok(t) => Some(t),
            Err(e) => {
                // Point into the string where possible (+1 skips the opening quote).
                let at = span.start + 1 + e.offset;
                c.error(&(at..at), e.message);
                None
            }
        }
    }
}
