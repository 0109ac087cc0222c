//! Splitting a run across several daemons at the scenario level: daemon `i` of `n` gets a
//! scenario text of its own, so each daemon plans, runs and reports its share as any run.
//!
//! - Open model: daemon `i` takes arrivals `i, i+n, i+2n…` of the one schedule, as shards do
//!   inside a daemon. Its share starts at the instant of arrival `i` (`start_after`) with every
//!   rate divided by `n` from there on, so the shares interleave instead of bursting in phase and
//!   their totals add up to the whole schedule's. Connections (the concurrency bound) and an
//!   explicit `max_queue` are divided, at least 1 each.
//! - Closed model: users (`connections`/`vus`, stage targets, `start_vus`) and shared
//!   iterations are divided as evenly as possible, remainders to the first daemons. A daemon
//!   whose share would be zero users or iterations does not run that scenario (it is dropped
//!   from its text, or the daemon gets no share at all).
//! - Thresholds are removed from the shares: they are judged once, on the merged result.
//! - `unique` feeders: the caller gives each daemon a disjoint slice of the rows
//!   ([`split_rows`]); the other modes read the whole file on every daemon.
//!
//! It refuses `[capacity]` (a search for one machine's limit) and edits only load fields,
//! keeping the rest of the file as written.

use std::time::Duration;

use toml_edit::{DocumentMut, InlineTable, Item, TableLike};

use crate::plan::{LoadModel, Plan, ScenarioPlan};
use crate::scenario::{self, CountSpec, LoadSpec, Source};
use crate::schedule::Schedule;

/// Daemon `index`'s share of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    /// The scenario text to submit.
    pub text: String,
    /// The scenarios it runs, by name ("default" in a file without `[scenarios]`).
    pub scenarios: Vec<String>,
}

/// Why a run cannot be split.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(
        "[capacity] searches the limit of one load generator: submit it to one daemon (--daemon)"
    )]
    Capacity,
    #[error("cannot split the scenario: {0}")]
    Text(String),
    #[error("feeder file `{0}` is read in unique mode and in another mode: give the unique feeder a file of its own")]
    MixedFeeder(String),
    #[error("feeder file `{file}`: {message}")]
    Feeder { file: String, message: String },
}

/// Submission-time overrides, applied to the text before it is split (as `loadd` applies
/// them to a single submission).
#[derive(Clone, Debug, Default)]
pub struct Overrides<'a> {
    pub duration: Option<&'a str>,
    pub rate_scale: Option<f64>,
    pub base_url: Option<&'a str>,
}

/// `total` divided among `count` as evenly as possible, remainders to the first.
pub fn share_of(total: u64, index: usize, count: usize) -> u64 {
    let (i, n) = (index as u64, count.max(1) as u64);
    total / n + u64::from(i < total % n)
}

/// The text with `loadctl submit`'s `--base-url`, `--duration` and `--rate-scale` applied to
/// the top-level sections, as `loadd` applies them to one submission.
pub fn apply_overrides(text: &str, o: &Overrides<'_>) -> Result<String, SplitError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| SplitError::Text(e.to_string()))?;
    if let Some(base) = o.base_url {
        let target = child(doc.as_table_mut(), "target")?;
        let url = target
            .get("url")
            .and_then(Item::as_str)
            .ok_or_else(|| SplitError::Text("[target] has no url".into()))?;
        let rebased = scenario::rebase(url, base);
        target.insert("url", toml_edit::value(rebased));
    }
    if o.duration.is_some() || o.rate_scale.is_some() {
        let load = child(doc.as_table_mut(), "load")?;
        if let Some(d) = o.duration {
            load.insert("duration", toml_edit::value(d));
        }
        if let Some(scale) = o.rate_scale {
            for key in ["rate", "start_rate"] {
                if let Some(r) = load.get(key).and_then(item_number) {
                    load.insert(key, toml_edit::value(r * scale));
                }
            }
            for stage in stage_tables(load) {
                if let Some(t) = stage.get("target").and_then(item_number) {
                    stage.insert("target", toml_edit::value(t * scale));
                }
            }
        }
    }
    Ok(doc.to_string())
}

/// Daemon `index`'s share of `plan` (planned from `text`) split `count` ways; `None` when it
/// has nothing to run.
pub fn split(
    text: &str,
    plan: &Plan,
    index: usize,
    count: usize,
) -> Result<Option<Share>, SplitError> {
    if index >= count {
        return Err(SplitError::Text(format!(
            "daemon {index} of {count} does not exist"
        )));
    }
    if plan.capacity.is_some() {
        return Err(SplitError::Capacity);
    }
    let spec = scenario::parse(&Source::in_memory("scenario", text, scenario::Files::Disk))
        .map_err(|e| SplitError::Text(e.to_string()))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| SplitError::Text(e.to_string()))?;
    doc.remove("thresholds");
    let multi = !spec.scenarios.is_empty();
    let mut kept = Vec::with_capacity(plan.scenarios.len());
    for sc in &plan.scenarios {
        let written = if multi {
            &spec
                .scenarios
                .get(&sc.name)
                .ok_or_else(|| {
                    SplitError::Text(format!("scenario `{}` is not in the text", sc.name))
                })?
                .load
        } else {
            &spec.load
        };
        let edits = share_load(sc, written, index, count);
        let root = doc.as_table_mut();
        let section: &mut dyn TableLike = if multi {
            let all = child(root, "scenarios")?;
            match edits {
                None => {
                    all.remove(&sc.name);
                    continue;
                }
                Some(_) => {
                    let own = child(all, &sc.name)?;
                    own.remove("thresholds");
                    own
                }
            }
        } else {
            match edits {
                None => return Ok(None),
                Some(_) => root,
            }
        };
        let load = child(section, "load")?;
        for (key, value) in edits.into_iter().flatten() {
            match value {
                Some(v) => load.insert(key, Item::Value(v)),
                None => load.remove(key),
            };
        }
        kept.push(sc.name.clone());
    }
    if kept.is_empty() {
        return Ok(None);
    }
    Ok(Some(Share {
        text: doc.to_string(),
        scenarios: kept,
    }))
}

/// Files read by `unique` feeders, whose rows must be split between the daemons.
pub fn unique_feeder_files(text: &str) -> Result<Vec<String>, SplitError> {
    let spec = scenario::parse(&Source::in_memory("scenario", text, scenario::Files::Disk))
        .map_err(|e| SplitError::Text(e.to_string()))?;
    let feeders: Vec<(String, bool)> = spec
        .feeders
        .values()
        .map(|f| {
            let f = f.get_ref();
            (f.file.clone(), f.mode.as_deref() == Some("unique"))
        })
        .collect();
    let mut unique: Vec<String> = Vec::new();
    for (file, is_unique) in &feeders {
        if *is_unique && !unique.contains(file) {
            if feeders.iter().any(|(f, u)| f == file && !u) {
                return Err(SplitError::MixedFeeder(file.clone()));
            }
            unique.push(file.clone());
        }
    }
    Ok(unique)
}

/// A CSV file's header and its rows `index, index+count, …` (daemon `index`'s disjoint slice).
pub fn split_rows(
    file: &str,
    csv_bytes: &[u8],
    index: usize,
    count: usize,
) -> Result<Vec<u8>, SplitError> {
    let problem = |message: String| SplitError::Feeder {
        file: file.to_string(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new().from_reader(csv_bytes);
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(csv_bytes.len() / count.max(1)));
    let header = reader.byte_headers().map_err(|e| problem(e.to_string()))?;
    writer
        .write_byte_record(header)
        .map_err(|e| problem(e.to_string()))?;
    let mut rows = 0usize;
    let mut mine = 0usize;
    for record in reader.byte_records() {
        let record = record.map_err(|e| problem(e.to_string()))?;
        if rows % count.max(1) == index {
            writer
                .write_byte_record(&record)
                .map_err(|e| problem(e.to_string()))?;
            mine += 1;
        }
        rows += 1;
    }
    if mine == 0 {
        return Err(problem(format!(
            "{rows} rows cannot give each of {count} daemons a disjoint share in unique mode"
        )));
    }
    writer.into_inner().map_err(|e| problem(e.to_string()))
}

/// One load field to set (`Some`) or remove (`None`).
type Edit = (&'static str, Option<toml_edit::Value>);

/// The edits that turn a scenario's load into daemon `index`'s share; `None`: no share.
fn share_load(
    sc: &ScenarioPlan,
    written: &LoadSpec,
    index: usize,
    count: usize,
) -> Option<Vec<Edit>> {
    let share = |total: u64, of: usize| share_of(total, index, of);
    let int = |n: u64| Some(toml_edit::Value::from(i64::try_from(n).unwrap_or(i64::MAX)));
    let mut edits: Vec<Edit> = Vec::new();
    match &sc.model {
        LoadModel::Open { schedule, .. } => {
            let segments = segments(schedule, written);
            let (start_ns, start_rate, stages) = open_share(schedule, &segments, index, count)?;
            for key in ["rate", "duration", "executor", "model", "stages"] {
                edits.push((key, None));
            }
            let mut list = toml_edit::Array::new();
            for (duration_ns, target) in stages {
                let mut stage = InlineTable::new();
                stage.insert("duration", format!("{duration_ns}ns").into());
                stage.insert("target", target.into());
                list.push(stage);
            }
            let start_after = sc.start_after + Duration::from_nanos(start_ns);
            edits.extend([
                ("model", Some("open".into())),
                ("start_rate", Some(start_rate.into())),
                ("stages", Some(list.into())),
                (
                    "start_after",
                    Some(format!("{}ns", start_after.as_nanos()).into()),
                ),
            ]);
            // A bound on concurrency, not load: at least one connection each.
            let key = if written.max_vus.is_some() {
                "max_vus"
            } else {
                "connections"
            };
            edits.push((key, int(share(u64::from(sc.connections), count).max(1))));
            if let Some(q) = &written.max_queue {
                edits.push(("max_queue", int(share(*q.get_ref(), count).max(1))));
            }
        }
        LoadModel::Closed {
            requests,
            vus,
            per_vu: _,
            duration: _,
        } => {
            // Every daemon that takes part needs at least one user and one iteration.
            let mut takers = (count as u64).min(u64::from(sc.connections));
            if let Some(r) = requests {
                takers = takers.min(*r);
            }
            if let Some(v) = vus {
                takers = takers.min(v.peak_rate_per_s().floor() as u64);
            }
            if index as u64 >= takers {
                return None;
            }
            let takers = takers as usize;
            let users_key = if written.vus.is_some() {
                Some("vus")
            } else if written.connections.is_some() || vus.is_none() {
                Some("connections")
            } else {
                // Ramping users without a connection count: the share's peak sets it.
                None
            };
            if let Some(key) = users_key {
                edits.push((key, int(share(u64::from(sc.connections), takers))));
            }
            if let Some(r) = requests {
                let key = if written.iterations.is_some() {
                    "iterations"
                } else {
                    "requests"
                };
                edits.push((key, int(share(*r, takers))));
            }
            if let Some(start) = &written.start_vus {
                edits.push(("start_vus", int(share(*start.get_ref(), takers))));
            }
            if let Some(stages) = &written.stages {
                let mut list = toml_edit::Array::new();
                for s in stages {
                    let target = count_value(s.target.get_ref()).unwrap_or(0.0).floor();
                    let mut stage = InlineTable::new();
                    stage.insert("duration", s.duration.get_ref().as_str().into());
                    stage.insert("target", int(share(target as u64, takers))?);
                    list.push(stage);
                }
                edits.push(("stages", None));
                edits.push(("stages", Some(list.into())));
            }
        }
    }
    Some(edits)
}

/// A schedule's linear pieces: (start ns, duration ns, rate at start, rate at end).
type Segment = (u64, u64, f64, f64);

/// The pieces of an open schedule, from the stages as written (a constant rate is one piece).
fn segments(schedule: &Schedule, written: &LoadSpec) -> Vec<Segment> {
    let Some(stages) = &written.stages else {
        let rate = schedule.value_at(0);
        return vec![(0, schedule.end_ns(), rate, rate)];
    };
    let mut rate = written
        .start_rate
        .as_ref()
        .and_then(|r| count_value(r.get_ref()))
        .unwrap_or(0.0);
    let mut at = 0u64;
    let mut out = Vec::with_capacity(stages.len());
    for s in stages {
        // The plan accepted these, so they parse.
        let d =
            crate::units::parse_duration(s.duration.get_ref()).map_or(0, |d| d.as_nanos() as u64);
        let target = count_value(s.target.get_ref()).unwrap_or(0.0);
        out.push((at, d, rate, target));
        at += d;
        rate = target;
    }
    out
}

/// When a share's first arrival is due (ns), its rate then, and its stages (duration ns, target).
type OpenShare = (u64, f64, Vec<(u64, f64)>);

/// Daemon `index`'s open share: when its first arrival is due (ns from the scenario's start),
/// its rate then, and the rest of the stages as (duration ns, target rate) — all rates divided
/// by `count`. `None` when the schedule has fewer arrivals than `index + 1`.
fn open_share(
    schedule: &Schedule,
    segments: &[Segment],
    index: usize,
    count: usize,
) -> Option<OpenShare> {
    if index as u64 >= schedule.total() {
        return None;
    }
    let first = first_arrival_ns(schedule, index as u64);
    let n = count as f64;
    let stages: Vec<(u64, f64)> = segments
        .iter()
        .filter_map(|&(start, duration, _, r1)| {
            let end = start + duration;
            (end > first).then(|| (end - start.max(first), r1 / n))
        })
        .collect();
    if stages.is_empty() {
        return None;
    }
    Some((first, schedule.value_at(first) / n, stages))
}

/// The earliest instant (ns) at which `k` arrivals are due: arrival `k`'s intended time.
fn first_arrival_ns(schedule: &Schedule, k: u64) -> u64 {
    let (mut lo, mut hi) = (0u64, schedule.end_ns());
    let want = k as f64;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if schedule.arrivals_before(mid) >= want {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

fn count_value(c: &CountSpec) -> Option<f64> {
    match c {
        CountSpec::Int(i) => Some(*i as f64),
        CountSpec::Float(f) => Some(*f),
        CountSpec::Text(t) => crate::units::parse_scaled(t).ok(),
    }
}

fn item_number(item: &Item) -> Option<f64> {
    match item.as_value()? {
        toml_edit::Value::Integer(i) => Some(*i.value() as f64),
        toml_edit::Value::Float(f) => Some(*f.value()),
        toml_edit::Value::String(s) => crate::units::parse_scaled(s.value()).ok(),
        _ => None,
    }
}

/// The stage tables of a load section, inline (`stages = [{…}]`) or not (`[[load.stages]]`).
fn stage_tables(load: &mut dyn TableLike) -> Vec<&mut dyn TableLike> {
    match load.get_mut("stages") {
        Some(Item::ArrayOfTables(a)) => a.iter_mut().map(|t| t as &mut dyn TableLike).collect(),
        Some(Item::Value(toml_edit::Value::Array(a))) => a
            .iter_mut()
            .filter_map(|v| v.as_inline_table_mut())
            .map(|t| t as &mut dyn TableLike)
            .collect(),
        _ => Vec::new(),
    }
}

/// The table under `key`, created (as a `[section]`) when the file has none.
fn child<'a>(
    parent: &'a mut dyn TableLike,
    key: &str,
) -> Result<&'a mut dyn TableLike, SplitError> {
    if parent.get(key).is_none() {
        parent.insert(key, Item::Table(toml_edit::Table::new()));
    }
    parent
        .get_mut(key)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| SplitError::Text(format!("`{key}` is not a table")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Files;

    fn plan_of(text: &str) -> Plan {
        let source = Source::in_memory("t.toml", text, Files::Disk);
        let spec = scenario::parse(&source).unwrap();
        Plan::from_spec(&spec, &source).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
    }

    fn shares(text: &str, n: usize) -> Vec<Option<(Share, Plan)>> {
        let plan = plan_of(text);
        (0..n)
            .map(|i| {
                split(text, &plan, i, n)
                    .unwrap()
                    .map(|s| (s.clone(), plan_of(&s.text)))
            })
            .collect()
    }

    /// Every arrival time of a plan's first scenario, from its origin.
    fn arrivals(plan: &Plan) -> Vec<u64> {
        let sc = &plan.scenarios[0];
        let LoadModel::Open { schedule, .. } = &sc.model else {
            panic!("open")
        };
        let mut cursor = schedule.cursor(0, 1);
        let mut out = Vec::new();
        while let Some(t) = cursor.peek(schedule) {
            out.push(t + sc.start_after.as_nanos() as u64);
            cursor.advance();
        }
        out
    }

    const TARGET: &str = "[target]\nurl = \"http://127.0.0.1:9/\"\n";

    #[test]
    fn shares_divide_evenly_remainders_first() {
        let got: Vec<u64> = (0..3).map(|i| share_of(10, i, 3)).collect();
        assert_eq!(got, [4, 3, 3]);
        assert_eq!((0..4).map(|i| share_of(2, i, 4)).sum::<u64>(), 2);
    }

    #[test]
    fn open_shares_interleave_the_one_schedule() {
        for (load, n) in [
            ("rate = 200\nduration = \"3s\"", 3),
            ("rate = 100\nduration = \"1s\"", 3),
            ("rate = \"1k\"\nduration = \"2s\"", 7),
            ("rate = 7\nduration = \"1s\"", 2),
            (
                "start_rate = 5\nstages = [{duration = \"2s\", target = 50}, {duration = \"1s\", target = 50}, {duration = \"2s\", target = 0}]",
                3,
            ),
        ] {
            let text = format!("{TARGET}[load]\n{load}\nconnections = 8\n[[thresholds]]\nexpr = \"p99 < 1s\"\n");
            let whole = arrivals(&plan_of(&text));
            let mut merged: Vec<u64> = shares(&text, n)
                .into_iter()
                .flatten()
                .flat_map(|(share, plan)| {
                    assert!(!share.text.contains("thresholds"), "{}", share.text);
                    assert!(plan.thresholds.is_empty());
                    assert!(plan.scenarios[0].connections >= 1);
                    arrivals(&plan)
                })
                .collect();
            merged.sort_unstable();
            assert_eq!(merged.len(), whole.len(), "{load} / {n}");
            // The same instants as one machine's schedule, to within rounding.
            for (a, b) in merged.iter().zip(&whole) {
                assert!(a.abs_diff(*b) <= 1_000, "{load} / {n}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn open_model_keeps_the_rest_of_the_file_and_divides_bounds() {
        let text = format!(
            "# a comment that stays\n{TARGET}[load]\nexecutor = \"constant-arrival-rate\"\nrate = 90\nduration = \"2s\"\nmax_vus = 5\nmax_queue = 100\n[request]\nmethod = \"POST\"\nbody = \"x\"\n"
        );
        let got = shares(&text, 3);
        let (share, plan) = got[1].clone().unwrap();
        assert!(
            share.text.starts_with("# a comment that stays\n"),
            "{}",
            share.text
        );
        assert!(share.text.contains("method = \"POST\""));
        assert_eq!(plan.scenarios[0].connections, 2);
        let LoadModel::Open {
            schedule,
            max_queue,
        } = &plan.scenarios[0].model
        else {
            panic!("open")
        };
        assert_eq!(*max_queue, 33);
        assert_eq!(schedule.total(), 60);
        // Arrival 1 of 90/s, to the nanosecond.
        let start = plan.scenarios[0].start_after.as_nanos();
        assert!(start.abs_diff(11_111_111) <= 1, "{start}");
    }

    #[test]
    fn too_few_arrivals_leave_a_daemon_out() {
        let text = format!("{TARGET}[load]\nrate = 2\nduration = \"1s\"\n");
        let got = shares(&text, 3);
        assert!(got[0].is_some() && got[1].is_some());
        assert!(got[2].is_none());
    }

    #[test]
    fn closed_users_and_iterations_divide() {
        let text = format!("{TARGET}[load]\nconnections = 5\nrequests = 101\n");
        let got: Vec<(u32, u64)> = shares(&text, 3)
            .into_iter()
            .map(|s| {
                let (_, plan) = s.unwrap();
                let LoadModel::Closed { requests, .. } = plan.scenarios[0].model else {
                    panic!("closed")
                };
                (plan.scenarios[0].connections, requests.unwrap())
            })
            .collect();
        assert_eq!(got, [(2, 34), (2, 34), (1, 33)]);
        // Two users cannot be split three ways: the third daemon sits this one out.
        let text = format!("{TARGET}[load]\nvus = 2\niterations = \"1k\"\n");
        let got = shares(&text, 3);
        assert!(got[2].is_none());
        let (_, plan) = got[0].clone().unwrap();
        assert_eq!(plan.scenarios[0].connections, 1);
        assert!(matches!(
            plan.scenarios[0].model,
            LoadModel::Closed {
                requests: Some(500),
                ..
            }
        ));
        // Default users (10) with a duration.
        let text = format!("{TARGET}[load]\nduration = \"5s\"\n");
        let users: Vec<u32> = shares(&text, 4)
            .into_iter()
            .map(|s| s.unwrap().1.scenarios[0].connections)
            .collect();
        assert_eq!(users, [3, 3, 2, 2]);
    }

    #[test]
    fn ramping_users_divide_by_stage() {
        let text = format!(
            "{TARGET}[load]\nexecutor = \"ramping-vus\"\nstart_vus = 3\nstages = [{{duration = \"1s\", target = 7}}, {{duration = \"1s\", target = 2}}]\n"
        );
        let got = shares(&text, 2);
        let peaks: Vec<u32> = got
            .iter()
            .map(|s| s.as_ref().unwrap().1.scenarios[0].connections)
            .collect();
        assert_eq!(peaks, [4, 3]);
        let text = format!(
            "{TARGET}[load]\nexecutor = \"ramping-vus\"\nstages = [{{duration = \"1s\", target = 2}}]\n"
        );
        assert!(shares(&text, 3)[2].is_none());
    }

    #[test]
    fn a_zero_share_drops_only_that_scenario() {
        let text = format!(
            "thresholds = [\"scenario(solo).p99 < 1s\"]\n{TARGET}[scenarios.crowd.load]\nconnections = 4\nduration = \"1s\"\n[[scenarios.crowd.steps]]\npath = \"/a\"\n[scenarios.solo]\nthresholds = [\"p99 < 1s\"]\n[scenarios.solo.load]\nvus = 1\nduration = \"1s\"\n[[scenarios.solo.steps]]\npath = \"/b\"\n"
        );
        let got = shares(&text, 2);
        let (first, plan) = got[0].clone().unwrap();
        assert_eq!(first.scenarios, ["crowd", "solo"]);
        assert_eq!(plan.scenarios.len(), 2);
        let (second, plan) = got[1].clone().unwrap();
        assert_eq!(second.scenarios, ["crowd"]);
        assert_eq!(plan.scenarios[0].connections, 2);
        assert!(!second.text.contains("solo"), "{}", second.text);
    }

    #[test]
    fn capacity_is_refused() {
        let text =
            format!("{TARGET}[capacity]\nslo = [\"p99 < 1s\"]\nstart_rate = 10\nmax_rate = 100\n");
        let plan = plan_of(&text);
        assert!(matches!(
            split(&text, &plan, 0, 2),
            Err(SplitError::Capacity)
        ));
    }

    #[test]
    fn overrides_match_the_daemons() {
        let text = format!(
            "{TARGET}[load]\nstart_rate = 4\nstages = [{{duration = \"1s\", target = \"1k\"}}]\n"
        );
        let out = apply_overrides(
            &text,
            &Overrides {
                duration: None,
                rate_scale: Some(0.5),
                base_url: Some("http://127.0.0.1:7"),
            },
        )
        .unwrap();
        let plan = plan_of(&out);
        assert_eq!(plan.target.url, "http://127.0.0.1:7/");
        let LoadModel::Open { schedule, .. } = &plan.scenarios[0].model else {
            panic!("open")
        };
        assert_eq!(schedule.peak_rate_per_s(), 500.0);
        assert_eq!(schedule.value_at(0), 2.0);
        let out = apply_overrides(
            &format!("{TARGET}[load]\nrate = 10\n"),
            &Overrides {
                duration: Some("2s"),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(plan_of(&out).planned_end(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn unique_rows_are_disjoint_and_cover_the_file() {
        let csv = b"user,pass\n\"a,1\",x\nb,y\nc,z\nd,w\ne,v\n";
        let parts: Vec<String> = (0..2)
            .map(|i| String::from_utf8(split_rows("u.csv", csv, i, 2).unwrap()).unwrap())
            .collect();
        assert_eq!(parts[0], "user,pass\n\"a,1\",x\nc,z\ne,v\n");
        assert_eq!(parts[1], "user,pass\nb,y\nd,w\n");
        assert!(split_rows("u.csv", b"user\nonly\n", 1, 2).is_err());
        let text = format!(
            "{TARGET}[feeders.a]\nfile = \"u.csv\"\nmode = \"unique\"\n[feeders.b]\nfile = \"v.csv\"\n"
        );
        assert_eq!(unique_feeder_files(&text).unwrap(), ["u.csv"]);
        let mixed = format!(
            "{TARGET}[feeders.a]\nfile = \"u.csv\"\nmode = \"unique\"\n[feeders.b]\nfile = \"u.csv\"\n"
        );
        assert!(matches!(
            unique_feeder_files(&mixed),
            Err(SplitError::MixedFeeder(_))
        ));
    }
}
