//! `Plan`: a validated, resolved, immutable description of a run, and its split into shards.
//!
//! `Plan::from_spec` is the only place a scenario's meaning is checked. It reports every problem
//! it finds (not just the first), each located at `file:line:col`, resolves the target's
//! addresses (so no shard ever does DNS) and pre-encodes the request. Once a `Plan` exists,
//! nothing can fail because of configuration.

pub mod capacity;
pub mod journey;
pub mod template;
pub mod threshold;

use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::plan::journey::{Journey, RequestBase, StepPlan, StepRequest, Think};
use crate::plan::threshold::Threshold;
use crate::proto::http1;
use crate::scenario::{CountSpec, LoadSpec, ScenarioSpec, Source, ThresholdSpec};
use crate::schedule::{RateStage, Schedule};
use crate::units;

const DEFAULT_DURATION: Duration = Duration::from_secs(10);
const DEFAULT_CONNECTIONS: u32 = 10;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// More shards than this is a typo, not a machine (and would allocate per shard).
const MAX_THREADS: usize = 1024;
/// k6's default: running iterations get this long to finish after the load ends.
const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(30);
/// The open-model queue holds this much of the peak rate before dropping arrivals.
const QUEUE_SECONDS: f64 = 10.0;
const MIN_QUEUE: usize = 1024;
const MAX_QUEUE: usize = 1 << 20;

/// Which io driver the shards use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverChoice {
    /// io_uring with tuned setup flags, falling back to plain io_uring, then to epoll.
    Auto,
    /// io_uring only (fails the run if it cannot be set up).
    Uring,
    /// monoio's legacy (epoll) driver.
    Legacy,
}

impl DriverChoice {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Self::Auto),
            "uring" | "io_uring" => Some(Self::Uring),
            "legacy" | "epoll" => Some(Self::Legacy),
            _ => None,
        }
    }
}

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

/// The resolved target.
#[derive(Clone, Debug)]
pub struct Target {
    /// The URL as the user gave it, normalized.
    pub url: String,
    pub addrs: Vec<SocketAddr>,
    /// `https://` or `wss://`
    pub tls: bool,
    /// `ws://` or `wss://`: scenarios hold WebSockets instead of sending requests.
    pub websocket: bool,
    /// The host as written (a name or an address), for SNI.
    pub host: String,
}

/// TLS for an `https://` target, validated (the config was built once to check it).
#[derive(Clone, Debug)]
pub struct TlsPlan {
    pub options: crate::net::tls::TlsOptions,
    pub server_name: crate::net::tls::ServerName<'static>,
}

/// A validated run: one target, one or more scenarios side by side.
#[derive(Clone, Debug)]
pub struct Plan {
    pub target: Target,
    /// At least one; a file without `[scenarios]` has one named "default".
    pub scenarios: Vec<ScenarioPlan>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// CPUs to pin shards to, one shard each (`None`: unpinned, when pinning is unavailable).
    pub cpus: Vec<Option<usize>>,
    pub driver: DriverChoice,
    /// Local addresses connections bind to, rotated (empty: the kernel picks).
    pub local_ips: Vec<std::net::IpAddr>,
    /// Whole-run thresholds and each scenario's own (scoped to it).
    pub thresholds: Vec<Threshold>,
    /// A capacity search instead of one run.
    pub capacity: Option<crate::plan::capacity::CapacityPlan>,
    /// Set for `https://` targets.
    pub tls: Option<TlsPlan>,
}

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
    pub tags: std::collections::BTreeMap<String, String>,
    /// Index of this scenario's first step among the run's steps.
    pub step_base: usize,
    /// `ws://`/`wss://`: what each connection does (its journey is then two pseudo-steps,
    /// "ws connect" and "ws message", for the figures).
    pub websocket: Option<WsPlan>,
}

/// A validated `[websocket]` section.
#[derive(Clone, Debug)]
pub struct WsPlan {
    /// Path and query of the upgrade request.
    pub path: crate::plan::template::Template,
    pub host_header: String,
    pub headers: Vec<(String, String)>,
    pub subprotocols: Vec<String>,
    pub message: crate::plan::template::Template,
    pub binary: bool,
    /// Replies are found by the message's `{{msg_id}}` rather than by order.
    pub correlate_id: bool,
    /// Messages per second per connection (0: hold only).
    pub rate_per_conn: f64,
    pub ramp: Duration,
    pub reconnect: bool,
    pub backoff: Duration,
}

/// Step indices of a WebSocket scenario's two pseudo-steps.
pub const WS_CONNECT_STEP: usize = 0;
pub const WS_MESSAGE_STEP: usize = 1;

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

/// One problem in a spec, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<PlanError>);

impl std::fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanErrors {}

/// Collects located errors while validating.
pub(crate) struct Checker<'a> {
    source: &'a Source,
    /// With the byte offset they point at, to report in file order.
    errors: Vec<(usize, PlanError)>,
}

impl Checker<'_> {
    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.errors.push((
            span.start,
            PlanError {
                location: self.source.locate(span),
                message: message.into(),
            },
        ));
    }

    fn duration(&mut self, value: &Spanned<String>, what: &str) -> Option<Duration> {
        match units::parse_duration(value.get_ref()) {
            Ok(d) if d.is_zero() => {
                self.error(&value.span(), format!("{what} must be greater than zero"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(&value.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    /// A duration that may be zero (offsets, grace periods).
    fn duration_or_zero(&mut self, value: &Spanned<String>, what: &str) -> Option<Duration> {
        match units::parse_duration(value.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(&value.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    fn scaled(&mut self, value: &Spanned<CountSpec>, what: &str) -> Option<f64> {
        let parsed = match value.get_ref() {
            CountSpec::Int(i) if *i >= 0 => Some(*i as f64),
            CountSpec::Float(f) if f.is_finite() && *f >= 0.0 => Some(*f),
            CountSpec::Text(t) => units::parse_scaled(t).ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                &value.span(),
                format!("{what} must be a non-negative number such as 100, 2.5 or \"10k\""),
            );
        }
        parsed
    }
}

impl Plan {
    /// Validates a spec and resolves everything a run needs.
    pub fn from_spec(spec: &ScenarioSpec, source: &Source) -> Result<Plan, PlanErrors> {
        let mut c = Checker {
            source,
            errors: Vec::new(),
        };
        let target = check_target(&mut c, &spec.target.url);

        let headers = check_headers(&mut c, &spec.request.headers);
        if let Some(m) = &spec.request.method {
            if http1::validate_header(&m.get_ref().to_ascii_uppercase(), "").is_err() {
                c.error(
                    &m.span(),
                    format!("`{}` is not a valid method", m.get_ref()),
                );
            }
        }
        let timeout = spec
            .request
            .timeout
            .as_ref()
            .and_then(|t| c.duration(t, "timeout"))
            .unwrap_or(DEFAULT_TIMEOUT);
        let connect_timeout = spec
            .request
            .connect_timeout
            .as_ref()
            .and_then(|t| c.duration(t, "connect_timeout"))
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let driver = match &spec.engine.driver {
            Some(d) => DriverChoice::parse(d.get_ref()).unwrap_or_else(|| {
                c.error(
                    &d.span(),
                    "driver must be \"auto\", \"uring\" or \"legacy\"",
                );
                DriverChoice::Auto
            }),
            None => DriverChoice::Auto,
        };
        let local_ips = match &spec.engine.local_ips {
            Some(l) => crate::net::source::parse_local_ips(l.get_ref()).unwrap_or_else(|e| {
                c.error(&l.span(), format!("local_ips: {e}"));
                Vec::new()
            }),
            None => Vec::new(),
        };

        // Each scenario is checked as a file of its own: shared sections plus its section.
        let views = scenario_views(&mut c, spec);
        let mut scenarios: Vec<ScenarioPlan> = Vec::with_capacity(views.len());
        let mut own_thresholds = Vec::with_capacity(views.len());
        let mut complete = true;
        for view in &views {
            let scenario = check_scenario(&mut c, view, source, target.as_ref(), &headers);
            match scenario {
                Some(mut s) => {
                    s.step_base = scenarios.iter().map(|s| s.journey.steps.len()).sum();
                    own_thresholds.push(&view.spec.thresholds);
                    scenarios.push(s);
                }
                None => complete = false,
            }
        }

        let connections: u32 = scenarios.iter().map(|s| s.connections).sum();
        let cpus = check_cpus(&mut c, spec, connections.max(1));
        let step_names: Vec<String> = scenarios
            .iter()
            .flat_map(|s| s.journey.steps.iter().map(|st| st.name.clone()))
            .collect();
        let scenario_names: Vec<(String, std::ops::Range<usize>)> = scenarios
            .iter()
            .map(|s| (s.name.clone(), s.step_range()))
            .collect();
        let mut names = threshold::Names {
            steps: &step_names,
            scenarios: &scenario_names,
            within: None,
        };
        let mut thresholds = if spec.scenarios.is_empty() {
            Vec::new()
        } else {
            check_thresholds(&mut c, &spec.thresholds, &names)
        };
        for (i, own) in own_thresholds.into_iter().enumerate() {
            names.within = (!spec.scenarios.is_empty()).then_some(i);
            thresholds.extend(check_thresholds(&mut c, own, &names));
        }

        let tls = target
            .as_ref()
            .and_then(|(t, _, _)| check_tls(&mut c, spec, source, t));
        let capacity = spec.capacity.as_ref().and_then(|cap| {
            names.within = None;
            check_capacity(&mut c, spec, cap, &names)
        });

        if !c.errors.is_empty() {
            c.errors.sort_by_key(|(at, _)| *at);
            return Err(PlanErrors(c.errors.into_iter().map(|(_, e)| e).collect()));
        }
        let (Some((target, _, _)), true) = (target, complete && !scenarios.is_empty()) else {
            return Err(PlanErrors(vec![PlanError {
                location: source.name.clone(),
                message: "invalid scenario".into(),
            }]));
        };
        Ok(Plan {
            thresholds,
            capacity,
            tls,
            target,
            scenarios,
            timeout,
            connect_timeout,
            cpus,
            driver,
            local_ips,
        })
    }

    /// Shortens the run to about `total` for a smoke test: an open model keeps its rates and
    /// shape over `total`; a closed model runs at most `total`. Offsets shrink in proportion.
    pub fn smoke(&mut self, total: Duration) {
        let longest = self
            .scenarios
            .iter()
            .filter_map(ScenarioPlan::end)
            .max()
            .unwrap_or(total);
        let scale = total.as_secs_f64() / longest.as_secs_f64().max(1e-9);
        for s in &mut self.scenarios {
            let start = s.start_after.mul_f64(scale.min(1.0));
            let budget = total.saturating_sub(start).max(Duration::from_millis(500));
            s.start_after = start;
            s.graceful_stop = s.graceful_stop.min(total);
            if let Some(ws) = &mut s.websocket {
                ws.ramp = ws.ramp.min(budget / 4);
            }
            match &mut s.model {
                LoadModel::Open { schedule, .. } => {
                    *schedule = schedule.scaled_to(budget.as_nanos() as u64)
                }
                LoadModel::Closed { duration, vus, .. } => {
                    *duration = Some(duration.map_or(budget, |d| d.min(budget)));
                    if let Some(v) = vus {
                        *v = v.scaled_to(budget.as_nanos() as u64);
                    }
                }
            }
        }
        // Let an abort_on_fail threshold judge a smoke run, too.
        for t in &mut self.thresholds {
            if let Some(d) = t.abort_after_ns.as_mut() {
                *d = (*d).min(total.as_nanos() as u64 / 2);
            }
        }
    }

    /// Number of shards (one per CPU entry).
    pub fn shards(&self) -> usize {
        self.cpus.len()
    }

    /// When the last scenario's load ends, from the origin (`None`: some scenario is bounded
    /// by an iteration count rather than time).
    pub fn planned_end(&self) -> Option<Duration> {
        self.scenarios
            .iter()
            .map(ScenarioPlan::end)
            .try_fold(Duration::ZERO, |a, e| e.map(|e| a.max(e)))
    }

    /// Connections of every scenario.
    pub fn connections(&self) -> u32 {
        self.scenarios.iter().map(|s| s.connections).sum()
    }

    /// Every step of the run, in order (a scenario's steps are contiguous).
    pub fn steps(&self) -> impl Iterator<Item = &StepPlan> {
        self.scenarios.iter().flat_map(|s| s.journey.steps.iter())
    }

    /// Whether latency is measured from intended start times (every scenario is open).
    pub fn is_open(&self) -> bool {
        self.scenarios
            .iter()
            .all(|s| matches!(s.model, LoadModel::Open { .. }))
    }

    /// Requested arrival rate (iterations per second) averaged over the schedules when every
    /// scenario is open: the sum of each one's constant rate, or the mean of a ramping one.
    pub fn requested_rate_per_s(&self) -> Option<f64> {
        let mut sum = 0.0;
        for s in &self.scenarios {
            let LoadModel::Open { schedule, .. } = &s.model else {
                return None;
            };
            let secs = schedule.end_ns() as f64 / 1e9;
            if secs > 0.0 {
                sum += schedule.total() as f64 / secs;
            }
        }
        Some((sum * 1000.0).round() / 1000.0)
    }

    /// Open scenarios' schedules with their offsets (ns from the origin), for the collector
    /// to say what each second asked for.
    pub fn schedules(&self) -> Vec<(u64, Schedule)> {
        self.scenarios
            .iter()
            .filter_map(|s| match &s.model {
                LoadModel::Open { schedule, .. } => {
                    Some((s.start_after.as_nanos() as u64, schedule.clone()))
                }
                LoadModel::Closed { .. } => None,
            })
            .collect()
    }

    /// Splits the run across shards: each scenario's connections and iteration budget divided
    /// as evenly as possible; open-model arrivals interleaved (shard i takes arrivals i, i+n, …).
    pub fn split(&self) -> Vec<ShardPlan> {
        let n = self.shards().max(1);
        (0..n)
            .map(|i| {
                let share =
                    |total: u64| total / n as u64 + u64::from((i as u64) < total % n as u64);
                let groups = self
                    .scenarios
                    .iter()
                    .enumerate()
                    .map(|(k, s)| {
                        let work = match &s.model {
                            LoadModel::Closed {
                                duration,
                                requests,
                                vus,
                                per_vu,
                            } => LoadModel::Closed {
                                duration: *duration,
                                requests: requests.map(share),
                                vus: vus.clone(),
                                per_vu: *per_vu,
                            },
                            LoadModel::Open {
                                schedule,
                                max_queue,
                            } => LoadModel::Open {
                                schedule: schedule.clone(),
                                max_queue: (*max_queue / n).max(1),
                            },
                        };
                        GroupPlan {
                            scenario: k,
                            step_base: s.step_base,
                            connections: share(u64::from(s.connections)) as u32,
                            journey: s.journey.clone(),
                            work,
                            start_after: s.start_after,
                            graceful_stop: s.graceful_stop,
                            websocket: s.websocket.clone(),
                        }
                    })
                    .collect();
                ShardPlan {
                    index: i,
                    shards: n,
                    cpu: self.cpus.get(i).copied().flatten(),
                    addr: self.target.addrs[0],
                    timeout: self.timeout,
                    connect_timeout: self.connect_timeout,
                    driver: self.driver,
                    local_ips: self.local_ips.clone(),
                    steps: self.steps().count(),
                    scenarios: self.scenarios.len(),
                    tls: self.tls.clone(),
                    groups,
                }
            })
            .collect()
    }
}

/// One shard's share of a run. Moved into the shard's thread.
#[derive(Clone, Debug)]
pub struct ShardPlan {
    pub index: usize,
    pub shards: usize,
    pub cpu: Option<usize>,
    pub addr: SocketAddr,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub driver: DriverChoice,
    pub local_ips: Vec<std::net::IpAddr>,
    /// Steps and scenarios of the whole run: the shape of the shard's stats.
    pub steps: usize,
    pub scenarios: usize,
    /// Each shard builds its own client config (and session store) from this.
    pub tls: Option<TlsPlan>,
    /// This shard's share of each scenario.
    pub groups: Vec<GroupPlan>,
}

impl ShardPlan {
    pub fn connections(&self) -> u32 {
        self.groups.iter().map(|g| g.connections).sum()
    }
}

/// One scenario's share on one shard.
#[derive(Clone, Debug)]
pub struct GroupPlan {
    pub scenario: usize,
    pub step_base: usize,
    pub connections: u32,
    pub journey: Journey,
    /// This shard's share of the load: its request budget, its queue bound.
    pub work: LoadModel,
    pub start_after: Duration,
    pub graceful_stop: Duration,
    pub websocket: Option<WsPlan>,
}

/// A scenario's view of the file: the shared sections with its own load and journey.
struct View {
    name: String,
    spec: ScenarioSpec,
    tags: std::collections::BTreeMap<String, String>,
}

fn scenario_views(c: &mut Checker<'_>, spec: &ScenarioSpec) -> Vec<View> {
    if spec.scenarios.is_empty() {
        return vec![View {
            name: "default".into(),
            spec: spec.clone(),
            tags: Default::default(),
        }];
    }
    // Top-level load and journey sections would be ambiguous next to [scenarios].
    let misplaced = [
        ("[load]", spec.load.first_span()),
        ("[[steps]]", spec.steps.first().map(|s| s.path.span())),
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
    let mut sections: Vec<_> = spec.scenarios.iter().collect();
    // In file order (the map is sorted by name; toml gives no span for a table that only
    // dotted headers define): where the file first names each one.
    let text = &c.source.text;
    sections.sort_by_key(|(name, _)| {
        [format!("scenarios.{name}"), format!("scenarios.\"{name}\"")]
            .iter()
            .filter_map(|k| text.find(k.as_str()))
            .min()
            .unwrap_or(usize::MAX)
    });
    sections
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

/// A scenario's load model and journey; `None` when something in it is wrong (reported).
fn check_scenario(
    c: &mut Checker<'_>,
    view: &View,
    source: &Source,
    target: Option<&(Target, String, String)>,
    headers: &[(String, String)],
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
    let (target, path_and_query, host_header) = target?;
    let websocket = if target.websocket {
        check_websocket(
            c,
            spec,
            path_and_query,
            host_header,
            headers,
            model.as_ref(),
        )
    } else {
        if let Some(w) = spec.websocket.as_ref().and_then(|w| w.rate.as_ref()) {
            c.error(&w.span(), "[websocket] applies to ws:// and wss:// targets");
        }
        None
    };
    let journey = if let Some(ws) = &websocket {
        ws_journey(ws)
    } else if spec.steps.is_empty() && spec.tasks.is_empty() {
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
        single_request(c, spec, source, path_and_query, host_header, headers)
    } else {
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
                    format!(
                        "[request] {field} does not apply with [[steps]]: give it in each step"
                    ),
                );
            }
        }
        let base_path = path_and_query.split('?').next().unwrap_or("");
        journey::compile(
            c,
            spec,
            &RequestBase {
                source,
                base_path,
                host_header,
                default_headers: headers,
            },
        )
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

/// The two pseudo-steps a WebSocket scenario reports under.
fn ws_journey(_ws: &WsPlan) -> Journey {
    let step = |name: &str| StepPlan {
        name: name.into(),
        head_request: false,
        request: StepRequest::Static(Vec::new()),
        captures: Vec::new(),
        checks: Vec::new(),
        think: Think::None,
        needs_body: false,
        needs_head: false,
        once: false,
    };
    Journey::single(vec![step("ws connect"), step("ws message")])
}

/// `[websocket]` for a ws:// target, checked.
fn check_websocket(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    path_and_query: &str,
    host_header: &str,
    headers: &[(String, String)],
    model: Option<&LoadModel>,
) -> Option<WsPlan> {
    let ws = spec.websocket.clone().unwrap_or_default();
    if let Some(s) = spec.steps.first() {
        c.error(
            &s.path.span(),
            "[[steps]] do not apply to a ws:// target: [websocket] says what each connection sends",
        );
    }
    if let Some(t) = spec.tasks.first() {
        c.error(&t.name.span(), "[[tasks]] do not apply to a ws:// target");
    }
    match model {
        Some(LoadModel::Open { .. }) => {
            let span = spec
                .load
                .rate
                .as_ref()
                .map(Spanned::span)
                .or_else(|| spec.load.model.as_ref().map(Spanned::span))
                .unwrap_or(0..0);
            c.error(
                &span,
                "a ws:// target holds connections (vus, duration); messages are scheduled by [websocket] rate",
            );
        }
        Some(LoadModel::Closed { vus: Some(_), .. }) => {
            let span = spec
                .load
                .stages
                .as_ref()
                .and_then(|s| s.first())
                .map_or(0..0, |s| s.duration.span());
            c.error(
                &span,
                "ramping users are not supported for ws:// yet: use [websocket] ramp",
            );
        }
        _ => {}
    }
    let builtins_only = |c: &mut Checker<'_>, text: &str, span: Range<usize>, escape| {
        let mut refuse = |v: &str| -> Result<usize, String> {
            Err(format!(
                "`{{{{{v}}}}}` is not defined: a WebSocket message or path can use the built-ins ({})",
                crate::plan::template::BUILTINS.join(", ")
            ))
        };
        match crate::plan::template::Template::compile(text, escape, &mut refuse) {
            Ok(t) => Some(t),
            Err(e) => {
                let at = span.start + e.offset.min(span.len());
                c.error(&(at..at), e.message);
                None
            }
        }
    };
    let path = match &ws.path {
        Some(p) => {
            if !p.get_ref().starts_with('/') {
                c.error(&p.span(), "path must start with `/`");
            }
            builtins_only(
                c,
                p.get_ref(),
                p.span(),
                crate::plan::template::Escape::Path,
            )
        }
        None => Some(crate::plan::template::Template::literal(
            path_and_query,
            crate::plan::template::Escape::None,
        )),
    };
    let message_text = ws.message.as_ref().map_or_else(
        || r#"{"id":"{{msg_id}}","t":{{now_ms}}}"#.to_string(),
        |m| m.get_ref().clone(),
    );
    let message_span = ws.message.as_ref().map_or(0..0, Spanned::span);
    let message = builtins_only(
        c,
        &message_text,
        message_span.clone(),
        crate::plan::template::Escape::None,
    );
    let correlate_id = match ws
        .correlate
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span()))
    {
        None | Some(("order", _)) => false,
        Some(("id", span)) => {
            if !message_text.contains("msg_id") {
                c.error(
                    &span,
                    "correlate = \"id\" needs {{msg_id}} in the message, to find its reply",
                );
            }
            true
        }
        Some((other, span)) => {
            c.error(
                &span,
                format!("correlate `{other}` is unknown: use \"order\" or \"id\""),
            );
            false
        }
    };
    let rate_per_conn = match &ws.rate {
        Some(r) if !(r.get_ref().is_finite() && *r.get_ref() >= 0.0) => {
            c.error(
                &r.span(),
                "rate (messages per second per connection) must be 0 or more",
            );
            None
        }
        Some(r) => Some(*r.get_ref()),
        None => Some(1.0),
    };
    let mut ws_headers = headers.to_vec();
    for h in &ws.headers {
        match h.get_ref().split_once(':') {
            Some((n, v)) => match crate::proto::ws::validate_handshake_header(n.trim(), v.trim()) {
                Ok(()) => ws_headers.push((n.trim().to_string(), v.trim().to_string())),
                Err(why) => c.error(&h.span(), format!("header `{}`: {why}", n.trim())),
            },
            None => c.error(&h.span(), "a header is written \"Name: value\""),
        }
    }
    let mut subprotocols = Vec::new();
    for s in &ws.subprotocols {
        match crate::proto::ws::validate_subprotocol(s.get_ref()) {
            Ok(()) => subprotocols.push(s.get_ref().clone()),
            Err(why) => c.error(&s.span(), format!("subprotocol `{}`: {why}", s.get_ref())),
        }
    }
    let ramp = match &ws.ramp {
        Some(r) => c.duration_or_zero(r, "ramp"),
        None => Some(Duration::from_secs(1)),
    };
    let backoff = match &ws.backoff {
        Some(b) => c.duration_or_zero(b, "backoff"),
        None => Some(Duration::from_secs(1)),
    };
    Some(WsPlan {
        path: path?,
        host_header: host_header.to_string(),
        headers: ws_headers,
        subprotocols,
        message: message?,
        binary: ws.binary,
        correlate_id,
        rate_per_conn: rate_per_conn?,
        ramp: ramp?,
        reconnect: ws.reconnect.unwrap_or(true),
        backoff: backoff?,
    })
}

/// `[tls]` for an `https://` target: files found and parsed, the config built once.
fn check_tls(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    source: &Source,
    target: &Target,
) -> Option<TlsPlan> {
    let given = spec.tls.clone().unwrap_or_default();
    let first_span = [
        &given.ca_file,
        &given.client_cert,
        &given.client_key,
        &given.server_name,
    ]
    .into_iter()
    .flatten()
    .map(Spanned::span)
    .next();
    if !target.tls {
        if let Some(span) = first_span {
            c.error(&span, "[tls] applies to https:// targets");
        }
        return None;
    }
    let mut path = |f: &Option<Spanned<String>>| -> Option<std::path::PathBuf> {
        let f = f.as_ref()?;
        if let crate::scenario::Files::Bundle(_) = source.files {
            c.error(
                &f.span(),
                "TLS files are read from the local disk: use loadctl run (submitting them to a daemon is not supported yet)",
            );
            return None;
        }
        Some(source.base_dir.join(f.get_ref()))
    };
    let options = crate::net::tls::TlsOptions {
        ca_file: path(&given.ca_file),
        client_cert: path(&given.client_cert),
        client_key: path(&given.client_key),
        insecure_skip_verify: given.insecure_skip_verify,
        resumption: given.resumption.unwrap_or(true),
        server_name: given.server_name.as_ref().map(|s| s.get_ref().clone()),
        alpn: crate::net::tls::Alpn::Http11,
    };
    let span = first_span.unwrap_or_else(|| spec.target.url.span());
    if let Err(e) = crate::net::tls::client_config(&options) {
        c.error(&span, format!("tls: {e}"));
        return None;
    }
    match crate::net::tls::server_name(&options, &target.host) {
        Ok(server_name) => Some(TlsPlan {
            options,
            server_name,
        }),
        Err(e) => {
            c.error(&span, format!("tls: {e}"));
            None
        }
    }
}

/// A `[capacity]` section: only for one scenario, whose rate it sets itself.
fn check_capacity(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    cap: &crate::scenario::CapacitySpec,
    names: &threshold::Names<'_>,
) -> Option<crate::plan::capacity::CapacityPlan> {
    if let Some((name, _)) = spec.scenarios.iter().next() {
        c.error(
            &cap.slo.span(),
            format!("[capacity] searches one scenario's rate: drop [scenarios] (found `{name}`)"),
        );
    }
    for (what, span) in [
        ("rate", spec.load.rate.as_ref().map(Spanned::span)),
        (
            "stages",
            spec.load
                .stages
                .as_ref()
                .and_then(|s| s.first())
                .map(|s| s.duration.span()),
        ),
        ("duration", spec.load.duration.as_ref().map(Spanned::span)),
        ("model", spec.load.model.as_ref().map(Spanned::span)),
        ("executor", spec.load.executor.as_ref().map(Spanned::span)),
    ] {
        if let Some(span) = span {
            c.error(
                &span,
                format!("[load] {what} does not apply with [capacity], which sets the rate of each level"),
            );
        }
    }
    let mut slo = Vec::new();
    for s in cap.slo.get_ref() {
        match threshold::parse_in(s.get_ref(), names) {
            Ok(t) => slo.push(t),
            Err(message) => c.error(&s.span(), format!("slo: {message}")),
        }
    }
    if cap.slo.get_ref().is_empty() {
        c.error(
            &cap.slo.span(),
            "slo needs at least one objective, e.g. \"p99 < 500ms\"",
        );
    }
    let start_rate = c.scaled(&cap.start_rate, "start_rate");
    let max_rate = c.scaled(&cap.max_rate, "max_rate");
    if let (Some(s), Some(m)) = (start_rate, max_rate) {
        if s <= 0.0 {
            c.error(
                &cap.start_rate.span(),
                "start_rate must be greater than zero",
            );
        } else if m < s {
            c.error(&cap.max_rate.span(), "max_rate must be at least start_rate");
        }
    }
    let factor = match &cap.factor {
        Some(f) if !(*f.get_ref() > 1.0 && f.get_ref().is_finite()) => {
            c.error(&f.span(), "factor must be greater than 1");
            None
        }
        Some(f) => Some(*f.get_ref()),
        None => Some(2.0),
    };
    let hold = match &cap.hold {
        Some(h) => c.duration(h, "hold"),
        None => Some(Duration::from_secs(30)),
    };
    let warmup = match &cap.warmup {
        Some(w) => c.duration_or_zero(w, "warmup"),
        None => hold.map(|h| (h / 5).min(Duration::from_secs(5))),
    };
    if let (Some(w), Some(h), Some(span)) = (warmup, hold, cap.warmup.as_ref().map(Spanned::span)) {
        if w >= h {
            c.error(&span, "warmup must be shorter than hold");
        }
    }
    let precision = match &cap.precision {
        Some(p) => match threshold::parse_fraction_text(p.get_ref()) {
            Ok(v) if v > 0.0 => Some(v),
            _ => {
                c.error(
                    &p.span(),
                    "precision must be a percentage above 0, e.g. \"5%\"",
                );
                None
            }
        },
        None => Some(0.05),
    };
    Some(crate::plan::capacity::CapacityPlan {
        slo,
        start_rate: start_rate?,
        max_rate: max_rate?,
        factor: factor?,
        hold: hold?,
        warmup: warmup?,
        precision: precision?,
    })
}

/// Connections (virtual users): `connections`, `vus` or `max_vus`; one per user at the peak
/// of ramping users unless the file says more.
fn check_connections(c: &mut Checker<'_>, load: &LoadSpec, model: Option<&LoadModel>) -> u32 {
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

fn check_target(c: &mut Checker<'_>, url: &Spanned<String>) -> Option<(Target, String, String)> {
    let span = url.span();
    let text = url.get_ref().trim();
    let parsed = match url::Url::parse(text) {
        Ok(u) => u,
        Err(e) => {
            c.error(
                &span,
                format!("`{text}` is not a valid URL ({e}); use http://host:port/path"),
            );
            return None;
        }
    };
    match parsed.scheme() {
        "http" => {}
        "https" | "ws" | "wss" => {}
        other => {
            c.error(
                &span,
                format!("unsupported scheme `{other}://`; use http://, https://, ws:// or wss://"),
            );
            return None;
        }
    }
    let Some(host) = parsed.host_str() else {
        c.error(&span, format!("`{text}` has no host"));
        return None;
    };
    let port = parsed.port_or_known_default().unwrap_or(80);
    // Resolve here, once: shards connect to addresses and never block on DNS.
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match (lookup_host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            c.error(&span, format!("cannot resolve host `{host}`: {e}"));
            return None;
        }
    };
    if addrs.is_empty() {
        c.error(&span, format!("host `{host}` resolved to no address"));
        return None;
    }
    let host_header = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let mut path_and_query = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    Some((
        Target {
            url: parsed.to_string(),
            addrs,
            tls: matches!(parsed.scheme(), "https" | "wss"),
            websocket: matches!(parsed.scheme(), "ws" | "wss"),
            host: lookup_host.to_string(),
        },
        path_and_query,
        host_header,
    ))
}

fn check_headers(c: &mut Checker<'_>, headers: &[Spanned<String>]) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(headers.len());
    for h in headers {
        let Some((name, value)) = h.get_ref().split_once(':') else {
            c.error(
                &h.span(),
                format!("header `{}` must be written \"Name: value\"", h.get_ref()),
            );
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        match http1::validate_header(name, value) {
            Ok(()) => out.push((name.to_string(), value.to_string())),
            Err(why) => c.error(&h.span(), format!("header `{name}`: {why}")),
        }
    }
    out
}

/// Default `delay` before an `abort_on_fail` threshold may stop a run.
const DEFAULT_ABORT_DELAY: Duration = Duration::from_secs(10);

fn check_thresholds(
    c: &mut Checker<'_>,
    specs: &[Spanned<ThresholdSpec>],
    names: &threshold::Names<'_>,
) -> Vec<Threshold> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let (expr, abort, delay) = match spec.get_ref() {
            ThresholdSpec::Expr(e) => (e, false, None),
            ThresholdSpec::Table {
                expr,
                abort_on_fail,
                delay,
            } => (expr, *abort_on_fail, delay.as_ref()),
        };
        match threshold::parse_in(expr, names) {
            Ok(mut t) => {
                if abort {
                    let d = match delay.map(|d| units::parse_duration(d)) {
                        Some(Ok(d)) => d,
                        Some(Err(e)) => {
                            c.error(&spec.span(), format!("threshold delay: {e}"));
                            DEFAULT_ABORT_DELAY
                        }
                        None => DEFAULT_ABORT_DELAY,
                    };
                    t.abort_after_ns = Some(d.as_nanos() as u64);
                } else if delay.is_some() {
                    c.error(&spec.span(), "delay only applies with abort_on_fail = true");
                }
                out.push(t);
            }
            Err(message) => c.error(&spec.span(), format!("threshold: {message}")),
        }
    }
    out
}

/// The one-request journey of a file without `[[steps]]` (and of `loadctl run URL`).
fn single_request(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    source: &Source,
    path_and_query: &str,
    host_header: &str,
    headers: &[(String, String)],
) -> Journey {
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
            headers,
            body: &body,
        },
        &mut request,
    );
    Journey::single(vec![StepPlan {
        name: format!("{method} {path_and_query}"),
        head_request: method == "HEAD",
        request: StepRequest::Static(request),
        captures: Vec::new(),
        checks: Vec::new(),
        think: Think::None,
        needs_body: false,
        needs_head: false,
        once: false,
    }])
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

/// Stage durations and targets (rates, or user counts), every problem reported; `None` when
/// no stage is usable.
fn check_stages(
    c: &mut Checker<'_>,
    stages: &[crate::scenario::StageSpec],
    what: &str,
) -> Option<Vec<RateStage>> {
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
        let hint = crate::plan::template::closest(name, EXECUTORS.iter().map(|(n, _)| *n))
            .map(|h| format!("; did you mean `{h}`?"))
            .unwrap_or_default();
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

fn check_model(c: &mut Checker<'_>, spec: &ScenarioSpec) -> Option<LoadModel> {
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
    if !is_open {
        for (field, present) in [
            ("rate", load.rate.as_ref().map(Spanned::span)),
            ("start_rate", load.start_rate.as_ref().map(Spanned::span)),
            ("max_queue", load.max_queue.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = present {
                c.error(&span, format!("{field} only applies to the open model"));
            }
        }
        let shared = match (&load.requests, &load.iterations) {
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
        };
        let requests = match shared {
            Some((r, what)) => match c.scaled(r, what) {
                Some(n) if n >= 1.0 && n.fract() == 0.0 => Some(n as u64),
                Some(_) => {
                    c.error(
                        &r.span(),
                        format!("{what} must be a whole number of at least 1"),
                    );
                    None
                }
                None => None,
            },
            None => None,
        };
        let per_vu = match &load.iterations_per_vu {
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
        };
        let vus = match &load.stages {
            Some(stages) => {
                if let Some(d) = &load.duration {
                    c.error(
                        &d.span(),
                        "duration does not apply with stages: their durations add up to the run's",
                    );
                }
                let start = load.start_vus.as_ref().map_or(0.0, |v| *v.get_ref() as f64);
                let mut out = check_stages(c, stages, "stage target (virtual users)")?;
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
                    return None;
                }
                Some(v)
            }
            None => {
                if let Some(v) = &load.start_vus {
                    c.error(&v.span(), "start_vus only applies with stages");
                }
                None
            }
        };
        let duration = match (duration, &vus) {
            (_, Some(v)) => Some(Duration::from_nanos(v.end_ns())),
            (Some(d), None) => d,
            (None, None) if requests.is_some() || per_vu.is_some() => None,
            (None, None) => Some(DEFAULT_DURATION),
        };
        return Some(LoadModel::Closed {
            duration,
            requests,
            vus,
            per_vu,
        });
    }

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
    let schedule = match (&load.rate, &load.stages) {
        (Some(r), Some(_)) => {
            c.error(
                &r.span(),
                "give either rate (constant) or stages (ramping), not both",
            );
            return None;
        }
        (Some(r), None) => {
            let rate = c.scaled(r, "rate")?;
            if rate <= 0.0 {
                c.error(&r.span(), "rate must be greater than zero");
                return None;
            }
            let d = duration.unwrap_or(Some(DEFAULT_DURATION))?;
            Schedule::constant(rate, d.as_nanos() as u64)
        }
        (None, Some(stages)) => {
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
            schedule
        }
        (None, None) => {
            let span = load.model.as_ref().map(Spanned::span).unwrap_or(0..0);
            c.error(&span, "the open model needs a rate or stages");
            return None;
        }
    };
    let max_queue = match &load.max_queue {
        Some(q) => *q.get_ref() as usize,
        None => ((schedule.peak_rate_per_s() * QUEUE_SECONDS) as usize).clamp(MIN_QUEUE, MAX_QUEUE),
    };
    Some(LoadModel::Open {
        schedule,
        max_queue,
    })
}

fn check_cpus(c: &mut Checker<'_>, spec: &ScenarioSpec, connections: u32) -> Vec<Option<usize>> {
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|id| id.id)
        .collect();
    let mut cpus: Vec<Option<usize>> = match &spec.engine.cpus {
        Some(list) => {
            let mut out = Vec::new();
            for &cpu in list.get_ref() {
                if available.contains(&(cpu as usize)) {
                    out.push(Some(cpu as usize));
                } else {
                    c.error(
                        &list.span(),
                        format!(
                            "cpu {cpu} is not available to this process (available: {available:?})"
                        ),
                    );
                }
            }
            out
        }
        None if available.is_empty() => vec![None],
        None => available.iter().map(|&id| Some(id)).collect(),
    };
    if let Some(t) = &spec.engine.threads {
        let n = *t.get_ref() as usize;
        if n == 0 || n > MAX_THREADS {
            c.error(
                &t.span(),
                format!("threads must be between 1 and {MAX_THREADS}"),
            );
        } else if spec.engine.cpus.is_some() {
            if n != cpus.len() {
                c.error(
                    &t.span(),
                    format!(
                        "threads ({n}) disagrees with the {} cpus listed",
                        cpus.len()
                    ),
                );
            }
        } else {
            // More threads than CPUs: wrap around (shards share CPUs) rather than refuse.
            cpus = (0..n)
                .map(|i| available.get(i % available.len().max(1)).copied())
                .collect();
        }
    }
    // A shard with no connection would do nothing.
    cpus.truncate((connections as usize).max(1));
    if cpus.is_empty() {
        cpus.push(None);
    }
    cpus
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;

    fn plan(text: &str) -> Result<Plan, PlanErrors> {
        let source = Source::in_memory("t.toml", text, crate::scenario::Files::Disk);
        let spec = scenario::parse(&source).map_err(|e| {
            PlanErrors(vec![PlanError {
                location: String::new(),
                message: e.to_string(),
            }])
        })?;
        Plan::from_spec(&spec, &source)
    }

    #[test]
    fn closed_defaults_and_split() {
        let p = plan("[target]\nurl = \"http://127.0.0.1:9/x?y=1\"\n[load]\nconnections = 5\nrequests = 101\n[engine]\nthreads = 2\n").unwrap();
        assert_eq!(
            p.scenarios[0].model,
            LoadModel::Closed {
                duration: None,
                requests: Some(101),
                vus: None,
                per_vu: None,
            }
        );
        let StepRequest::Static(bytes) = &p.scenarios[0].journey.steps[0].request else {
            panic!("a single request is pre-encoded")
        };
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("GET /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"),
            "{text}"
        );
        let shards = p.split();
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].connections() + shards[1].connections(), 5);
        let budgets: Vec<_> = shards
            .iter()
            .map(|s| match s.groups[0].work {
                LoadModel::Closed { requests, .. } => requests.unwrap(),
                LoadModel::Open { .. } => 0,
            })
            .collect();
        assert_eq!(budgets.iter().sum::<u64>(), 101);
    }

    #[test]
    fn open_rate_and_stages() {
        let p = plan(
            "[target]\nurl = \"http://127.0.0.1:9/\"\n[load]\nrate = \"2k\"\nduration = \"3s\"\n",
        )
        .unwrap();
        assert!(p.is_open());
        assert_eq!(p.requested_rate_per_s(), Some(2000.0));
        let p = plan("[target]\nurl = \"http://127.0.0.1:9/\"\n[load]\nstages = [{duration = \"2s\", target = 100}, {duration = \"1s\", target = 100}]\n").unwrap();
        let LoadModel::Open { schedule, .. } = &p.scenarios[0].model else {
            panic!("open")
        };
        assert_eq!(schedule.total(), 200);
    }

    #[test]
    fn every_error_is_reported_in_file_order() {
        let err = plan("[target]\nurl = \"gopher://x\"\n[load]\nrate = -1\nduration = \"0s\"\n[request]\nmethod = \"GE T\"\ntimeout = \"fast\"\n")
            .unwrap_err();
        let lines: Vec<String> = err.0.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(
            lines[0].starts_with("t.toml:2:7: unsupported scheme"),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with("t.toml:4:8: rate must be"),
            "{lines:#?}"
        );
        assert!(
            lines[2].starts_with("t.toml:5:12: duration must be greater than zero"),
            "{lines:#?}"
        );
        assert!(lines[3].contains("not a valid method"), "{lines:#?}");
        assert!(lines[4].contains("timeout"), "{lines:#?}");
    }

    #[test]
    fn model_mismatches_are_refused() {
        for (text, needle) in [
            (
                "[load]\nmodel = \"closed\"\nrate = 5\n",
                "only applies to the open model",
            ),
            (
                "[load]\nrate = 5\nrequests = 5\n",
                "only applies to the closed model",
            ),
            (
                "[load]\nrate = 5\nstages = [{duration = \"1s\", target = 1}]\n",
                "not both",
            ),
            (
                "[load]\nstages = [{duration = \"1s\", target = 0}]\n",
                "never send",
            ),
            ("[load]\nmodel = \"open\"\n", "needs a rate or stages"),
            ("[load]\nconnections = 0\n", "at least 1"),
        ] {
            let full = format!("[target]\nurl = \"http://127.0.0.1:9/\"\n{text}");
            let err = plan(&full).unwrap_err().to_string();
            assert!(err.contains(needle), "{text} → {err}");
        }
    }
}
