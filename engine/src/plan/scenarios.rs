//! One scenario at a time: each `[scenarios.NAME]` section (or the file itself, when it has
//! none) is seen as a file of its own — the shared sections plus its load and journey — and
//! checked into a `ScenarioPlan`.
//!
//! It decides which sections apply where and puts a scenario's parts together; the parts
//! themselves are checked by `model`, `websocket` and `journey`, and thresholds by `threshold`.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;

use crate::client::decode::ACCEPT_ENCODING;
use crate::plan::checker::Checker;
use crate::plan::journey::{
    self, compile_follow_redirects, ClientDefaults, Journey, RequestBase, RunScope, StepPlan,
};
use crate::plan::model::{check_connections, check_model, LoadModel};
use crate::plan::target::CheckedTarget;
use crate::plan::websocket::{check_websocket, ws_journey, WsPlan};
use crate::proto::http1;
use crate::scenario::{ScenarioSection, ScenarioSpec, Source, ThresholdSpec};

/// k6's default: running iterations get this long to finish after the load ends.
const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(30);

/// One scenario: what an iteration does and how iterations are started.
#[derive(Clone, Debug)]
pub struct ScenarioPlan {
    pub name: String,
    /// What one iteration does: one request, or a journey of steps.
    pub journey: Journey,
    pub model: LoadModel,
    pub connections: u32,
    /// Offset of this scenario's start from the run's origin.
    pub start_after: Duration,
    /// After the load ends, how long running iterations may take to finish.
    pub graceful_stop: Duration,
    pub tags: BTreeMap<String, String>,
    /// Index of this scenario's first step among the run's steps.
    pub step_base: usize,
    /// `ws://`/`wss://`: what each connection does (its journey is then two pseudo-steps,
    /// "ws connect" and "ws message", for the figures).
    pub websocket: Option<WsPlan>,
}

impl ScenarioPlan {
    /// This scenario's steps' indices among the run's.
    pub fn step_range(&self) -> std::ops::Range<usize> {
        self.step_base..self.step_base + self.journey.steps.len()
    }

    /// When the load of this scenario ends, from the run's origin (`None`: unbounded, e.g.
    /// an iteration count).
    pub fn end(&self) -> Option<Duration> {
        let own = match &self.model {
            LoadModel::Closed { duration, .. } => *duration,
            LoadModel::Open { schedule, .. } => Some(Duration::from_nanos(schedule.end_ns())),
        };
        own.map(|d| d + self.start_after)
    }
}

/// A scenario's view of the file: the shared sections with its own load and journey.
pub(crate) struct View {
    name: String,
    spec: ScenarioSpec,
    tags: BTreeMap<String, String>,
}

/// Every scenario checked, in file order.
pub(crate) struct CheckedScenarios<'v> {
    pub plans: Vec<ScenarioPlan>,
    /// Each plan's own thresholds, as its section writes them.
    pub own_thresholds: Vec<&'v [Spanned<ThresholdSpec>]>,
    /// False when some scenario could not be planned (its errors are reported).
    pub complete: bool,
}

/// Checks each view in turn, numbering the run's steps across scenarios.
pub(crate) fn check_scenarios<'v>(
    c: &mut Checker<'_>,
    views: &'v [View],
    target: Option<&CheckedTarget>,
    headers: &[(String, String)],
    run: &RunScope,
) -> CheckedScenarios<'v> {
    let mut out = CheckedScenarios {
        plans: Vec::with_capacity(views.len()),
        own_thresholds: Vec::with_capacity(views.len()),
        complete: true,
    };
    for view in views {
        match check_scenario(c, view, target, headers, run) {
            Some(mut s) => {
                s.step_base = out.plans.iter().map(|s| s.journey.steps.len()).sum();
                out.own_thresholds.push(&view.spec.thresholds);
                out.plans.push(s);
            }
            None => out.complete = false,
        }
    }
    out
}

/// Each scenario's view of the file; one view, named "default", for a file without
/// `[scenarios]`.
pub(crate) fn scenario_views(c: &mut Checker<'_>, spec: &ScenarioSpec) -> Vec<View> {
    if spec.scenarios.is_empty() {
        return vec![View {
            name: "default".into(),
            spec: spec.clone(),
            tags: Default::default(),
        }];
    }
    refuse_top_level_journey(c, spec);
    sections_in_file_order(c.source(), spec)
        .into_iter()
        .map(|(name, section)| {
            let mut view = spec.clone();
            view.scenarios = Default::default();
            view.load = section.load.clone();
            view.steps = section.steps.clone();
            view.tasks = section.tasks.clone();
            view.task_choice = section.task_choice.clone();
            view.vars = section.vars.clone();
            view.thresholds = section.thresholds.clone();
            View {
                name: name.clone(),
                spec: view,
                tags: section.tags.clone(),
            }
        })
        .collect()
}

/// Connections over all scenarios, checked: a sum past `u32::MAX` would wrap to a small number
/// and slip under every limit compared with it, so it is refused where the overflow happens.
pub(crate) fn check_total_connections(
    c: &mut Checker<'_>,
    views: &[View],
    plans: &[ScenarioPlan],
) -> u32 {
    let mut total: u32 = 0;
    for (view, plan) in views.iter().zip(plans) {
        match total.checked_add(plan.connections) {
            Some(t) => total = t,
            None => {
                let load = &view.spec.load;
                let span = [&load.connections, &load.vus, &load.max_vus]
                    .into_iter()
                    .find_map(|v| v.as_ref().map(Spanned::span))
                    .unwrap_or(0..0);
                c.error(
                    &span,
                    format!("connections: total over all scenarios exceeds {}", u32::MAX),
                );
                return u32::MAX;
            }
        }
    }
    total
}

/// Top-level load and journey sections would be ambiguous next to [scenarios].
fn refuse_top_level_journey(c: &mut Checker<'_>, spec: &ScenarioSpec) {
    let misplaced = [
        ("[load]", spec.load.first_span()),
        ("[[steps]]", spec.steps.first().map(|s| s.span())),
        ("[[tasks]]", spec.tasks.first().map(|t| t.name.span())),
        ("task_choice", spec.task_choice.as_ref().map(Spanned::span)),
        ("[vars]", spec.vars.values().next().map(Spanned::span)),
        (
            "[request] method",
            spec.request.method.as_ref().map(Spanned::span),
        ),
        (
            "[request] body",
            spec.request.body.as_ref().map(Spanned::span),
        ),
    ];
    for (what, span) in misplaced {
        if let Some(span) = span {
            c.error(
                &span,
                format!(
                    "{what} does not apply next to [scenarios]: move it into a scenario's section"
                ),
            );
        }
    }
}

/// `[scenarios]` in file order (the map is sorted by name; toml gives no span for a table that
/// only dotted headers define): where the file first names each one.
fn sections_in_file_order<'s>(
    source: &Source,
    spec: &'s ScenarioSpec,
) -> Vec<(&'s String, &'s ScenarioSection)> {
    let mut sections: Vec<_> = spec.scenarios.iter().collect();
    let text = &source.text;
    sections.sort_by_key(|(name, _)| {
        [format!("scenarios.{name}"), format!("scenarios.\"{name}\"")]
            .iter()
            .filter_map(|k| text.find(k.as_str()))
            .min()
            .unwrap_or(usize::MAX)
    });
    sections
}

/// A scenario's load model and journey; `None` when something in it is wrong (reported).
fn check_scenario(
    c: &mut Checker<'_>,
    view: &View,
    target: Option<&CheckedTarget>,
    headers: &[(String, String)],
    run: &RunScope,
) -> Option<ScenarioPlan> {
    let spec = &view.spec;
    let load = &spec.load;
    let model = check_model(c, spec);
    let connections = check_connections(c, load, model.as_ref());
    let start_after = load
        .start_after
        .as_ref()
        .and_then(|d| c.duration_or_zero(d, "start_after"))
        .unwrap_or(Duration::ZERO);
    let graceful_stop = load
        .graceful_stop
        .as_ref()
        .and_then(|d| c.duration_or_zero(d, "graceful_stop"))
        .unwrap_or(DEFAULT_GRACEFUL_STOP);
    let target = target?;
    let websocket = if target.target.websocket {
        check_websocket(c, spec, target, headers, model.as_ref())
    } else {
        if let Some(w) = spec.websocket.as_ref().and_then(|w| w.rate.as_ref()) {
            c.error(&w.span(), "[websocket] applies to ws:// and wss:// targets");
        }
        None
    };
    let journey = match &websocket {
        Some(ws) => ws_journey(ws),
        None => {
            let client = client_defaults(c, spec);
            let mut journey = http_journey(c, spec, target, headers, run, client);
            let steps = !(spec.steps.is_empty() && spec.tasks.is_empty());
            journey.cookies = spec
                .request
                .cookies
                .as_ref()
                .map_or(steps, |b| *b.get_ref());
            journey.origin = url::Url::parse(&target.target.url)
                .and_then(|u| u.join("/"))
                .ok();
            journey
        }
    };
    Some(ScenarioPlan {
        name: view.name.clone(),
        journey,
        model: model?,
        connections,
        start_after,
        graceful_stop,
        tags: view.tags.clone(),
        step_base: 0,
        websocket,
    })
}

/// The single `[request]`, or `[[steps]]`/`[[tasks]]` compiled.
fn http_journey(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    target: &CheckedTarget,
    headers: &[(String, String)],
    run: &RunScope,
    client: ClientDefaults,
) -> Journey {
    let source = c.source();
    if spec.steps.is_empty() && spec.tasks.is_empty() {
        if let Some((_, f)) = spec.feeders.iter().next() {
            c.error(
                &f.span(),
                "[feeders] apply to [[steps]]: add steps or drop the feeder",
            );
        }
        if let Some((_, v)) = spec.vars.iter().next() {
            c.error(
                &v.span(),
                "[vars] apply to [[steps]]: add steps or drop [vars]",
            );
        }
        return single_request(c, spec, source, target, headers, client);
    }
    for (field, span) in [
        ("method", spec.request.method.as_ref().map(Spanned::span)),
        ("body", spec.request.body.as_ref().map(Spanned::span)),
        (
            "body_file",
            spec.request.body_file.as_ref().map(Spanned::span),
        ),
    ] {
        if let Some(span) = span {
            c.error(
                &span,
                format!("[request] {field} does not apply with [[steps]]: give it in each step"),
            );
        }
    }
    let base_path = target.path_and_query.split('?').next().unwrap_or("");
    journey::compile(
        c,
        spec,
        &RequestBase {
            source,
            base_path,
            host_header: &target.host_header,
            tls: target.target.tls,
            default_headers: headers,
            run,
            client,
        },
    )
}

/// `[request]`'s `follow_redirects` and `compressed`.
fn client_defaults(c: &mut Checker<'_>, spec: &ScenarioSpec) -> ClientDefaults {
    ClientDefaults {
        follow_redirects: spec
            .request
            .follow_redirects
            .as_ref()
            .and_then(|n| compile_follow_redirects(c, n))
            .unwrap_or(0),
        compressed: spec
            .request
            .compressed
            .as_ref()
            .is_some_and(|b| *b.get_ref()),
        http2: spec
            .target
            .http
            .as_ref()
            .is_some_and(|h| h.get_ref() == "2"),
    }
}

/// The one-request journey of a file without `[[steps]]` (and of `loadctl run URL`).
fn single_request(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    source: &Source,
    target: &CheckedTarget,
    headers: &[(String, String)],
    client: ClientDefaults,
) -> Journey {
    let (path_and_query, host_header) = (target.path_and_query.as_str(), &target.host_header);
    let mut headers = headers.to_vec();
    if client.compressed
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("accept-encoding"))
    {
        headers.push(("Accept-Encoding".into(), ACCEPT_ENCODING.into()));
    }
    let method = spec
        .request
        .method
        .as_ref()
        .map_or_else(|| "GET".to_string(), |m| m.get_ref().to_ascii_uppercase());
    let body = check_body(c, spec, source);
    let mut request = Vec::with_capacity(256 + body.len());
    http1::encode_request(
        &http1::RequestSpec {
            method: &method,
            path_and_query,
            host_header,
            headers: &headers,
            body: &body,
        },
        &mut request,
    );
    let mut step = StepPlan::fixed(
        format!("{method} {path_and_query}"),
        method == "HEAD",
        request,
    );
    step.follow_redirects = client.follow_redirects;
    Journey::single(vec![step])
}

fn check_body(c: &mut Checker<'_>, spec: &ScenarioSpec, source: &Source) -> Vec<u8> {
    match (&spec.request.body, &spec.request.body_file) {
        (Some(b), Some(_)) => {
            c.error(&b.span(), "give either body or body_file, not both");
            Vec::new()
        }
        (Some(b), None) => b.get_ref().as_bytes().to_vec(),
        (None, Some(f)) => source.read_file(f.get_ref()).unwrap_or_else(|e| {
            c.error(&f.span(), format!("body_file: {e}"));
            Vec::new()
        }),
        (None, None) => Vec::new(),
    }
}
