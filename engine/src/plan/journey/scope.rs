//! What a step can see: a journey's variables with the step that sets each (feeders and `[vars]`
//! before any step, captures at the step that makes them), the run-wide values of `[[setup]]`,
//! and the `StepContext` a step is compiled in, which resolves a template's names to slots or
//! says why it may not use one.

use std::cell::RefCell;
use std::ops::Range;

use crate::plan::checker::{did_you_mean, Checker};
use crate::plan::journey::RequestBase;
use crate::plan::template::{self, Escape, Names, RunRef, Template};

/// The `step` and `task` of a variable set before any step (a feeder column, `[vars]`).
pub(super) const BEFORE_STEPS: usize = usize::MAX;
/// The `task` of a `once` step of `[[steps]]` beside `[[tasks]]`: it runs before any task, so
/// every task may read what it captures.
pub(super) const PRELUDE: usize = usize::MAX - 1;

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

/// A run-wide value: captured by a `[[setup]]` step (a list when the step has `each`).
#[derive(Clone, Debug)]
pub struct RunName {
    pub name: String,
    pub list: bool,
    /// The setup step that captures it.
    pub step: usize,
}

/// The run-wide values of a file, and the load steps `[[teardown]]` counts.
#[derive(Debug, Default)]
pub struct RunScope {
    pub values: Vec<RunName>,
    /// Names of the load's steps, which `run.count(STEP)` may name.
    pub load_steps: Vec<String>,
    /// Steps whose success counts teardown reads; count `i` is run slot `values.len() + i`.
    pub counts: RefCell<Vec<String>>,
}

impl RunScope {
    /// `run.NAME` as a step before setup step `before` (all of them: `usize::MAX`) sees it.
    fn lookup(&self, name: &str, before: usize) -> Result<RunRef, String> {
        match self.values.iter().position(|v| v.name == name) {
            Some(i) if self.values[i].step < before => Ok(if self.values[i].list {
                RunRef::List(i)
            } else {
                RunRef::Scalar(i)
            }),
            Some(i) => Err(format!(
                "`run.{name}` is captured by setup step {}: only later steps can read it",
                self.values[i].step + 1
            )),
            None if self.values.is_empty() => Err(format!(
                "`run.{name}` is not defined: run-wide values are captured by [[setup]] steps"
            )),
            None => {
                let hint = did_you_mean(name, self.values.iter().map(|v| v.name.as_str()));
                Err(format!(
                    "`run.{name}` is not captured by any [[setup]] step{hint}"
                ))
            }
        }
    }

    fn count(&self, step: &str) -> Result<usize, String> {
        if !self.load_steps.iter().any(|s| s == step) {
            let hint = did_you_mean(step, self.load_steps.iter().map(String::as_str));
            return Err(format!(
                "`run.count({step})`: no step of the load is named `{step}`{hint}"
            ));
        }
        let mut counts = self.counts.borrow_mut();
        let i = counts.iter().position(|c| c == step).unwrap_or_else(|| {
            counts.push(step.to_owned());
            counts.len() - 1
        });
        Ok(self.values.len() + i)
    }
}

/// What `[vars]` can read: built-ins and run-wide values, nothing captured.
pub(super) struct IterationNames<'a> {
    pub run: &'a RunScope,
}

impl Names for IterationNames<'_> {
    fn var(&mut self, name: &str) -> Result<usize, String> {
        Err(format!(
            "`{{{{{name}}}}}`: [vars] are built from built-ins ({}) and run-wide values (run.NAME)",
            template::BUILTINS.join(", ")
        ))
    }

    fn run(&mut self, name: &str) -> Result<RunRef, String> {
        self.run.lookup(name, usize::MAX)
    }
}

/// Where a step sits in the run: its phase decides which run-wide values it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Setup step `n`: sees what steps before it captured.
    Setup(usize),
    Load,
    Teardown,
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
    pub run: &'a RunScope,
    pub phase: Phase,
}

/// A step's names as a template sees them.
struct StepNames<'c, 'a> {
    cx: &'c StepContext<'a>,
    body: bool,
}

impl Names for StepNames<'_, '_> {
    fn var(&mut self, name: &str) -> Result<usize, String> {
        if let Phase::Setup(_) | Phase::Teardown = self.cx.phase {
            return Err(format!(
                "`{{{{{name}}}}}`: setup and teardown steps read run-wide values, as run.NAME"
            ));
        }
        self.cx.lookup(name)
    }

    fn run(&mut self, name: &str) -> Result<RunRef, String> {
        let before = match self.cx.phase {
            Phase::Setup(n) => n,
            Phase::Load | Phase::Teardown => usize::MAX,
        };
        self.cx.run.lookup(name, before)
    }

    fn count(&mut self, step: &str) -> Result<usize, String> {
        if self.cx.phase != Phase::Teardown {
            return Err(format!(
                "`run.count({step})` is only known after the load: use it in [[teardown]] steps"
            ));
        }
        self.cx.run.count(step)
    }

    fn body_allowed(&self) -> bool {
        self.body
    }
}

impl StepContext<'_> {
    /// A variable's slot, if this step may read it: set before any step, or captured earlier in
    /// the same task.
    fn lookup(&self, var: &str) -> Result<usize, String> {
        let (index, task) = (self.index, self.task);
        let bindings = &self.vars.bindings;
        let same_task = bindings
            .iter()
            .filter(|b| b.name == var && [task, BEFORE_STEPS, PRELUDE].contains(&b.task))
            .min_by_key(|b| b.step);
        match same_task.or_else(|| bindings.iter().find(|b| b.name == var)) {
            Some(b)
                if b.step == BEFORE_STEPS
                    || ((b.task == task || b.task == PRELUDE) && b.step < index) =>
            {
                Ok(self.vars.names.iter().position(|v| v == var).unwrap_or(0))
            }
            Some(b) if b.task != task => Err(format!(
                "`{{{{{var}}}}}` is captured in another task: a task can use only what it captures itself, [vars], or what a `once` step of [[steps]] captures before any task"
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
        self.compile_template(c, text, span, escape, false)
    }

    /// A header's template, which may read the step's `{{body}}` (a signature).
    pub(super) fn header_template(
        &self,
        c: &mut Checker<'_>,
        text: &str,
        span: Range<usize>,
    ) -> Option<Template> {
        self.compile_template(c, text, span, Escape::Header, true)
    }

    fn compile_template(
        &self,
        c: &mut Checker<'_>,
        text: &str,
        span: Range<usize>,
        escape: Escape,
        body: bool,
    ) -> Option<Template> {
        let mut names = StepNames { cx: self, body };
        match Template::compile_in(text, escape, &mut names) {
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
