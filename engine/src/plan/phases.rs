//! Wiring `[[setup]]` and `[[teardown]]` into the plan: setup is compiled before the
//! scenarios (their steps read what it captures), teardown after (it counts their steps).
//! The steps themselves are compiled by `journey::phase`.

use crate::plan::checker::Checker;
use crate::plan::journey::phase::{compile_setup, compile_teardown};
use crate::plan::journey::{ClientDefaults, Phases, RequestBase, RunScope};
use crate::plan::scenarios::ScenarioPlan;
use crate::plan::target::CheckedTarget;
use crate::scenario::ScenarioSpec;

/// What a phase step's request is built from.
fn base<'a>(
    source: &'a crate::scenario::Source,
    target: &'a CheckedTarget,
    headers: &'a [(String, String)],
    run: &'a RunScope,
) -> RequestBase<'a> {
    RequestBase {
        source,
        base_path: target.path_and_query.split('?').next().unwrap_or(""),
        host_header: &target.host_header,
        tls: target.target.tls,
        default_headers: headers,
        run,
        // Setup and teardown go over the blocking phase client, which follows no redirects.
        client: ClientDefaults::default(),
    }
}

/// `[[setup]]`: its steps and the run-wide values they capture.
pub(crate) fn check_setup(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    target: Option<&CheckedTarget>,
    headers: &[(String, String)],
) -> (Phases, RunScope) {
    let (Some(target), Some(first)) = (target, spec.setup.first().or(spec.teardown.first())) else {
        return (Phases::default(), RunScope::default());
    };
    if target.target.websocket {
        c.error(
            &first.path.span(),
            "[[setup]] and [[teardown]] send HTTP requests: they need an http:// or https:// target",
        );
        return (Phases::default(), RunScope::default());
    }
    let none = RunScope::default();
    let (setup, scope) = compile_setup(c, spec, &base(c.source(), target, headers, &none));
    let phases = Phases {
        setup,
        ..Phases::default()
    };
    (phases, scope)
}

/// `[[teardown]]`, once the scenarios' steps are known.
pub(crate) fn check_teardown(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    target: Option<&CheckedTarget>,
    headers: &[(String, String)],
    mut phases: Phases,
    mut scope: RunScope,
    scenarios: &[ScenarioPlan],
) -> Phases {
    let Some(target) = target.filter(|t| !t.target.websocket) else {
        return phases;
    };
    scope.load_steps = scenarios
        .iter()
        .flat_map(|s| s.journey.steps.iter().map(|st| st.name.clone()))
        .collect();
    phases.teardown = compile_teardown(c, spec, &base(c.source(), target, headers, &scope), &scope);
    phases.counts = scope.counts.into_inner();
    phases.values = scope.values;
    phases
}
