//! `Plan`: a validated, resolved, immutable description of a run, and its split into shards.
//!
//! `Plan::from_spec` is the only place a scenario's meaning is checked. It reports every problem
//! it finds (not just the first), each located at `file:line:col`, resolves the target's
//! addresses (so no shard ever does DNS) and pre-encodes the request. Once a `Plan` exists,
//! nothing can fail because of configuration.

use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::journey::{self, Journey, RequestBase, StepPlan, StepRequest, Think};
use crate::proto::http1;
use crate::schedule::{RateStage, Schedule};
use crate::spec::{CountSpec, ScenarioSpec, Source, ThresholdSpec};
use crate::threshold::{self, Threshold};
use crate::units;

const DEFAULT_DURATION: Duration = Duration::from_secs(10);
const DEFAULT_CONNECTIONS: u32 = 10;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
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
        requests: Option<u64>,
        /// Ramping virtual users: how many are active over time (stage targets are user
        /// counts); `None`: all connections, all the time.
        vus: Option<Schedule>,
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
}

/// A validated run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub target: Target,
    /// What one iteration does: one request, or a journey of steps.
    pub journey: Journey,
    pub model: LoadModel,
    pub connections: u32,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// CPUs to pin shards to, one shard each (`None`: unpinned, when pinning is unavailable).
    pub cpus: Vec<Option<usize>>,
    pub driver: DriverChoice,
    pub thresholds: Vec<Threshold>,
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

        let connections = match &spec.load.connections {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > u32::MAX as u64 => {
                c.error(&n.span(), "connections must be at least 1");
                DEFAULT_CONNECTIONS
            }
            Some(n) => *n.get_ref() as u32,
            None => DEFAULT_CONNECTIONS,
        };
        let model = check_model(&mut c, spec);
        // Ramping users: one connection per user at the peak, unless the file says more.
        let mut connections = connections;
        if let Some(LoadModel::Closed { vus: Some(v), .. }) = &model {
            let peak = v.peak_rate_per_s().ceil() as u32;
            match &spec.load.connections {
                None => connections = peak,
                Some(n) if (*n.get_ref() as u32) < peak => c.error(
                    &n.span(),
                    format!(
                        "connections ({}) is below the stages' peak of {peak} virtual users",
                        n.get_ref()
                    ),
                ),
                Some(_) => {}
            }
        }
        let cpus = check_cpus(&mut c, spec, connections);
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

        let journey = target.as_ref().map(|(_, path_and_query, host_header)| {
                                    if spec.steps.is_empty() && spec.tasks.is_empty() {
                if let Some((_, f)) = spec.feeders.iter().next() {
                    c.error(&f.span(), "[feeders] apply to [[steps]]: add steps or drop the feeder");
                }
                if let Some((_, v)) = spec.vars.iter().next() {
                    c.error(&v.span(), "[vars] apply to [[steps]]: add steps or drop [vars]");
                }
                single_request(&mut c, spec, source, path_and_query, host_header, &headers)
            } else {
                for (field, span) in [
                    ("method", spec.request.method.as_ref().map(Spanned::span)),
                    ("body", spec.request.body.as_ref().map(Spanned::span)),
                    ("body_file", spec.request.body_file.as_ref().map(Spanned::span)),
                ] {
                    if let Some(span) = span {
                        c.error(&span, format!("[request] {field} does not apply with [[steps]]: give it in each step"));
                    }
                }
                let base_path = path_and_query.split('?').next().unwrap_or("");
                journey::compile(
                    &mut c,
                    spec,
                                        &RequestBase {
                        source,
                        base_path,
                        host_header,
                        default_headers: &headers,
                    },
                )
            }
        });

        let step_names: Vec<String> = journey
            .as_ref()
            .map(|j| j.steps.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default();
        let thresholds = check_thresholds(&mut c, &spec.thresholds, &step_names);

        if !c.errors.is_empty() {
            c.errors.sort_by_key(|(at, _)| *at);
            return Err(PlanErrors(c.errors.into_iter().map(|(_, e)| e).collect()));
        }
        let (Some((target, _, _)), Some(model), Some(journey)) = (target, model, journey) else {
            return Err(PlanErrors(vec![PlanError {
                location: source.name.clone(),
                message: "invalid scenario".into(),
            }]));
        };
        Ok(Plan {
            thresholds,
            target,
            journey,
            model,
            connections,
            timeout,
            connect_timeout,
            cpus,
            driver,
        })
    }

    /// Shortens the run to about `total` for a smoke test: an open model keeps its rates and
    /// shape over `total`; a closed model runs at most `total`.
    pub fn smoke(&mut self, total: Duration) {
        match &mut self.model {
            LoadModel::Open { schedule, .. } => {
                *schedule = schedule.scaled_to(total.as_nanos() as u64)
            }
            LoadModel::Closed { duration, vus, .. } => {
                *duration = Some(duration.map_or(total, |d| d.min(total)));
                if let Some(v) = vus {
                    *v = v.scaled_to(total.as_nanos() as u64);
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

    /// Whether latency is measured from intended start times.
    pub fn is_open(&self) -> bool {
        matches!(self.model, LoadModel::Open { .. })
    }

    /// Requested arrival rate (iterations per second) averaged over the schedule: the constant
    /// rate itself, or the mean of a ramping one.
    pub fn requested_rate_per_s(&self) -> Option<f64> {
        match &self.model {
            LoadModel::Open { schedule, .. } => {
                let secs = schedule.end_ns() as f64 / 1e9;
                Some(if secs > 0.0 {
                    (schedule.total() as f64 / secs * 1000.0).round() / 1000.0
                } else {
                    0.0
                })
            }
            LoadModel::Closed { .. } => None,
        }
    }

    /// Splits the run across shards: connections and request budgets divided as evenly as
    /// possible; open-model arrivals interleaved (shard i takes arrivals i, i+n, …).
    pub fn split(&self) -> Vec<ShardPlan> {
        let n = self.shards().max(1);
        (0..n)
            .map(|i| {
                let share =
                    |total: u64| total / n as u64 + u64::from((i as u64) < total % n as u64);
                let work = match &self.model {
                    LoadModel::Closed {
                        duration,
                        requests,
                        vus,
                    } => LoadModel::Closed {
                        duration: *duration,
                        requests: requests.map(share),
                        vus: vus.clone(),
                    },
                    LoadModel::Open {
                        schedule,
                        max_queue,
                    } => LoadModel::Open {
                        schedule: schedule.clone(),
                        max_queue: (*max_queue / n).max(1),
                    },
                };
                ShardPlan {
                    index: i,
                    shards: n,
                    cpu: self.cpus.get(i).copied().flatten(),
                    connections: share(u64::from(self.connections)) as u32,
                    addr: self.target.addrs[0],
                    journey: self.journey.clone(),
                    timeout: self.timeout,
                    connect_timeout: self.connect_timeout,
                    work,
                    driver: self.driver,
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
    pub connections: u32,
    pub addr: SocketAddr,
    pub journey: Journey,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// This shard's share of the load: its request budget, its queue bound.
    pub work: LoadModel,
    pub driver: DriverChoice,
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
        "https" => {
            c.error(
                &span,
                "https:// targets are not supported yet (TLS comes later); use http://",
            );
            return None;
        }
        other => {
            c.error(
                &span,
                format!("unsupported scheme `{other}://`; use http://"),
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
    steps: &[String],
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
        match threshold::parse(expr, steps) {
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
    stages: &[crate::spec::StageSpec],
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

fn check_model(c: &mut Checker<'_>, spec: &ScenarioSpec) -> Option<LoadModel> {
    let load = &spec.load;
    let duration = load.duration.as_ref().map(|d| c.duration(d, "duration"));
    let is_open = match &load.model {
        Some(m) => match m.get_ref().as_str() {
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
        None => load.rate.is_some() || load.stages.is_some(),
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
        let requests = match &load.requests {
            Some(r) => match c.scaled(r, "requests") {
                Some(n) if n >= 1.0 && n.fract() == 0.0 => Some(n as u64),
                Some(_) => {
                    c.error(&r.span(), "requests must be a whole number of at least 1");
                    None
                }
                None => None,
            },
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
            (None, None) if requests.is_some() => None,
            (None, None) => Some(DEFAULT_DURATION),
        };
        return Some(LoadModel::Closed {
            duration,
            requests,
            vus,
        });
    }

    if let Some(r) = &load.requests {
        c.error(&r.span(), "requests only applies to the closed model; the open model runs for its duration or stages");
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
        if n == 0 {
            c.error(&t.span(), "threads must be at least 1");
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
    use crate::spec;

    fn plan(text: &str) -> Result<Plan, PlanErrors> {
        let source = Source::in_memory("t.toml", text, crate::spec::Files::Disk);
        let spec = spec::parse(&source).map_err(|e| {
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
            p.model,
            LoadModel::Closed {
                duration: None,
                requests: Some(101),
                vus: None,
            }
        );
        let StepRequest::Static(bytes) = &p.journey.steps[0].request else {
            panic!("a single request is pre-encoded")
        };
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("GET /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"),
            "{text}"
        );
        let shards = p.split();
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].connections + shards[1].connections, 5);
        let budgets: Vec<_> = shards
            .iter()
            .map(|s| match s.work {
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
        let LoadModel::Open { schedule, .. } = &p.model else {
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
