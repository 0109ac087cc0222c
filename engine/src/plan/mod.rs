//! `Plan`: a validated, resolved, immutable description of a run, and its split into shards.
//!
//! `Plan::from_spec` is the only place a scenario's meaning is checked. It reports every problem
//! it finds (not just the first), each located at `file:line:col`, resolves the target's
//! addresses (so no shard ever does DNS) and pre-encodes the request. Once a `Plan` exists,
//! nothing can fail because of configuration.
//!
//! Each section is checked in a module of its own (`target`, `placement`, `model`, `websocket`,
//! `scenarios`, `journey`, `threshold`, `capacity`), all reporting through `checker`; this
//! module puts their results together and answers questions about the whole run.

pub mod capacity;
mod checker;
pub mod journey;
mod limits;
mod model;
mod phases;
mod placement;
mod scenarios;
mod shard_split;
mod target;
pub mod template;
pub mod threshold;
mod websocket;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

pub use crate::plan::checker::{PlanError, PlanErrors};
pub use crate::plan::limits::{Limits, DEFAULT_LIMIT, MAX_LIMIT, MIN_LIMIT};
pub use crate::plan::model::LoadModel;
pub use crate::plan::placement::DriverChoice;
pub use crate::plan::scenarios::ScenarioPlan;
pub use crate::plan::shard_split::{GroupPlan, ShardPlan};
pub use crate::plan::target::{Target, TlsPlan};
pub use crate::plan::websocket::{WsPlan, WS_CONNECT_STEP, WS_MESSAGE_STEP};

use crate::plan::capacity::{check_capacity, CapacityPlan};
use crate::plan::checker::Checker;
use crate::plan::journey::{Phases, StepPlan};
use crate::plan::limits::check_limits;
use crate::plan::phases::{check_setup, check_teardown};
use crate::plan::placement::{check_cpus, check_driver, check_local_ips};
use crate::plan::scenarios::{check_scenarios, check_total_connections, scenario_views};
use crate::plan::target::{check_http, check_request, check_target, check_tls};
use crate::plan::threshold::{check_thresholds, Names, Threshold};
use crate::scenario::{ScenarioSpec, Source, ThresholdSpec};
use crate::schedule::Schedule;

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
    pub local_ips: Vec<IpAddr>,
    /// What a target may make a connection hold (`[engine] max_body`, `max_ws_*`).
    pub limits: Limits,
    /// Whole-run thresholds and each scenario's own (scoped to it).
    pub thresholds: Vec<Threshold>,
    /// A capacity search instead of one run.
    pub capacity: Option<CapacityPlan>,
    /// Set for `https://` targets.
    pub tls: Option<TlsPlan>,
    /// `[[setup]]` and `[[teardown]]`, run once around the load.
    pub phases: Phases,
    /// The environment variables `env()` read, with their values: what `loadctl submit` sends
    /// so the daemon plans with the submitter's values.
    pub env_read: BTreeMap<String, String>,
    /// HTTP/2 (`[target] http = "2"`, `--http2`): concurrent streams per connection, each a
    /// virtual user of its own. `None`: HTTP/1.1.
    pub h2_streams: Option<u32>,
}

impl Plan {
    /// Validates a spec and resolves everything a run needs.
    pub fn from_spec(spec: &ScenarioSpec, source: &Source) -> Result<Plan, PlanErrors> {
        let (plan, read) = template::env::scoped(source.env.clone(), || Self::check(spec, source));
        plan.map(|plan| Plan {
            env_read: read,
            ..plan
        })
    }

    fn check(spec: &ScenarioSpec, source: &Source) -> Result<Plan, PlanErrors> {
        let mut c = Checker::new(source);
        let target = check_target(&mut c, &spec.target.url);
        let request = check_request(&mut c, spec);
        let driver = check_driver(&mut c, spec);
        let local_ips = check_local_ips(&mut c, spec);
        let limits = check_limits(&mut c, spec);
        let h2_streams = check_http(&mut c, spec, target.as_ref().map(|t| &t.target));

        // Each scenario is checked as a file of its own: shared sections plus its section.
        let views = scenario_views(&mut c, spec);
        let (phases, run_scope) = check_setup(&mut c, spec, target.as_ref(), &request.headers);
        let checked = check_scenarios(
            &mut c,
            &views,
            target.as_ref(),
            &request.headers,
            &run_scope,
        );
        let scenarios = checked.plans;
        let phases = check_teardown(
            &mut c,
            spec,
            target.as_ref(),
            &request.headers,
            phases,
            run_scope,
            &scenarios,
        );
        let connections = check_total_connections(&mut c, &views, &scenarios);
        let cpus = check_cpus(&mut c, spec, connections.max(1));
        let names = RunNames::of(&scenarios);
        let thresholds = run_thresholds(&mut c, spec, &checked.own_thresholds, &names);
        let mut tls = target
            .as_ref()
            .and_then(|t| check_tls(&mut c, spec, source, &t.target));
        if let (Some(tls), Some(_)) = (tls.as_mut(), h2_streams) {
            // Only h2: a server that picks HTTP/1.1 is refused per connection, not spoken to.
            tls.options.alpn = crate::net::tls::Alpn::H2;
        }
        let capacity = spec
            .capacity
            .as_ref()
            .and_then(|cap| check_capacity(&mut c, spec, cap, &names.within(None)));

        c.finish()?;
        let (Some(target), true) = (target, checked.complete && !scenarios.is_empty()) else {
            return Err(PlanErrors(vec![PlanError {
                location: source.name.clone(),
                message: "invalid scenario".into(),
            }]));
        };
        Ok(Plan {
            thresholds,
            capacity,
            tls,
            target: target.target,
            scenarios,
            timeout: request.timeout,
            connect_timeout: request.connect_timeout,
            cpus,
            driver,
            local_ips,
            limits,
            phases,
            env_read: BTreeMap::new(),
            h2_streams,
        })
    }

    /// The plan with setup's run-wide values given to every scenario's journey.
    pub fn with_run_values(&self, values: &[template::RunValue]) -> Plan {
        let mut plan = self.clone();
        for s in &mut plan.scenarios {
            s.journey.run = values.to_vec();
        }
        plan
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

    /// `--task NAME…`: only those weighted tasks run. Every name must be a task of the file,
    /// and every scenario with tasks must keep one (a scenario cannot be dropped from a plan).
    /// The error is one line, with the known tasks and a "did you mean" hint.
    pub fn select_tasks(&mut self, names: &[String]) -> Result<(), String> {
        let mut known: Vec<String> = Vec::new();
        // In file order, each name once (several scenarios may share task names).
        for name in self.scenarios.iter().flat_map(|s| s.journey.task_names()) {
            if !known.iter().any(|k| k == name) {
                known.push(name.to_string());
            }
        }
        if known.is_empty() {
            return Err("--task: this file has no [[tasks]] to choose from".into());
        }
        for name in names {
            if !known.contains(name) {
                let hint = checker::did_you_mean(name, known.iter().map(String::as_str));
                return Err(format!(
                    "--task `{name}` is not a task of this file{hint} (tasks: {})",
                    known.join(", ")
                ));
            }
        }
        for s in &mut self.scenarios {
            let has_tasks = s.journey.task_names().next().is_some();
            if has_tasks && s.journey.keep_tasks(names) == 0 {
                return Err(format!(
                    "--task: scenario `{}` would run none of its tasks ({}): name one of them too",
                    s.name,
                    s.journey.task_names().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(())
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

    /// Connections of every scenario; saturating, so a total past `u32::MAX` (refused by
    /// [`Plan::from_spec`] anyway) can never wrap under a limit.
    pub fn connections(&self) -> u32 {
        self.scenarios
            .iter()
            .fold(0u32, |a, s| a.saturating_add(s.connections))
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
            // ws:// with a message rate: messages per second, averaged as planned (the ramp
            // included).
            if let (
                Some(ws),
                LoadModel::Closed {
                    duration: Some(d), ..
                },
            ) = (&s.websocket, &s.model)
            {
                if ws.rate_per_conn > 0.0 && !d.is_zero() {
                    sum += ws.planned_messages(s.connections, *d) as f64 / d.as_secs_f64();
                    continue;
                }
            }
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
}

/// The names thresholds may refer to: every step of the run, and each scenario's steps.
struct RunNames {
    steps: Vec<String>,
    scenarios: Vec<(String, Range<usize>)>,
}

impl RunNames {
    fn of(scenarios: &[ScenarioPlan]) -> Self {
        Self {
            steps: scenarios
                .iter()
                .flat_map(|s| s.journey.steps.iter().map(|st| st.name.clone()))
                .collect(),
            scenarios: scenarios
                .iter()
                .map(|s| (s.name.clone(), s.step_range()))
                .collect(),
        }
    }

    /// The names as seen from a scenario's own section (`Some(index)`) or from the whole file.
    fn within(&self, scenario: Option<usize>) -> Names<'_> {
        Names {
            steps: &self.steps,
            scenarios: &self.scenarios,
            within: scenario,
        }
    }
}

/// With `[scenarios]`, the file's own thresholds judge the whole run; then each scenario's
/// thresholds are scoped to it (without `[scenarios]`, the one scenario's are the file's).
fn run_thresholds(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    own: &[&[Spanned<ThresholdSpec>]],
    names: &RunNames,
) -> Vec<Threshold> {
    let several = !spec.scenarios.is_empty();
    let mut thresholds = if several {
        check_thresholds(c, &spec.thresholds, &names.within(None))
    } else {
        Vec::new()
    };
    for (i, own) in own.iter().enumerate() {
        thresholds.extend(check_thresholds(
            c,
            own,
            &names.within(several.then_some(i)),
        ));
    }
    thresholds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::journey::StepRequest;
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
    fn task_selection_keeps_only_the_named_tasks() {
        let text = "[target]\nurl = \"http://127.0.0.1:9/\"\n\
            [[tasks]]\nname = \"read\"\nweight = 3\n[[tasks.steps]]\npath = \"/r\"\n\
            [[tasks]]\nname = \"write\"\nweight = 0\n[[tasks.steps]]\npath = \"/w\"\n";
        let mut p = plan(text).unwrap();
        p.select_tasks(&["write".into()]).unwrap();
        let weights: Vec<u64> = p.scenarios[0]
            .journey
            .tasks
            .iter()
            .map(|t| t.weight)
            .collect();
        assert_eq!(weights, [0, 1], "asked for, a weight-0 task runs");
        let err = plan(text)
            .unwrap()
            .select_tasks(&["reed".into()])
            .unwrap_err();
        assert_eq!(
            err,
            "--task `reed` is not a task of this file; did you mean `read`? (tasks: read, write)"
        );
        let plain = "[target]\nurl = \"http://127.0.0.1:9/\"\n";
        assert!(plan(plain)
            .unwrap()
            .select_tasks(&["default".into()])
            .unwrap_err()
            .contains("no [[tasks]]"));
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

    #[test]
    fn connection_totals_past_u32_are_refused_not_wrapped() {
        // Two halves of 2^32: a plain u32 sum is 0 and would pass every limit.
        let text = "[target]\nurl = \"http://127.0.0.1:9/\"\n\
            [scenarios.a.load]\nconnections = 2147483648\nrequests = 1\n\
            [[scenarios.a.steps]]\npath = \"/\"\n\
            [scenarios.b.load]\nconnections = 2147483648\nrequests = 1\n\
            [[scenarios.b.steps]]\npath = \"/\"\n";
        let err = plan(text).unwrap_err().to_string();
        assert!(
            err.contains("connections: total over all scenarios exceeds 4294967295"),
            "{err}"
        );
        assert!(
            err.contains(":9:"),
            "located at scenario b's connections: {err}"
        );
        let under = text.replacen("2147483648", "2147483647", 1);
        assert_eq!(plan(&under).unwrap().connections(), u32::MAX);
    }
}
