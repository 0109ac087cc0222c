//! Panics are contained (issue #16): a shard that panics before it is ready or in the middle of
//! a run, and a collector that panics, each end the run with a reason while the next run is
//! unaffected. The panics are injected by `engine::faults`, compiled only into test builds.
//! Each test is a real run from the daemon's runner against the in-process sandbox on loopback.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use daemon::runner::{Retention, RunOptions, Runs};
use daemon::sandbox::{Sandbox, SandboxConfig};
use daemon::store::{RunMeta, RunState, Store};
use engine::faults::{self, Fault};
use engine::scenario::{self, Files, Source};
use engine::Plan;
use serde_json::Value;

/// Faults are process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

struct Bench {
    sandbox: Sandbox,
    runs: Arc<Runs>,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Self {
        faults::disarm_all();
        let sandbox = Sandbox::start(SandboxConfig::default()).expect("sandbox");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let (stored, _) = store.load_all();
        let runs = Runs::start(store, stored, Retention::default()).expect("runs");
        Bench {
            sandbox,
            runs,
            _dir: dir,
        }
    }

    /// Two shards at 200/s for `secs` seconds against the sandbox.
    fn plan(&self, secs: u32) -> (Plan, String) {
        let text = format!(
            "[target]\nurl = \"{}\"\n\n[load]\nmodel = \"open\"\nrate = 200\nduration = \"{secs}s\"\nconnections = 8\n\n[engine]\nthreads = 2\n\n[[steps]]\nname = \"get\"\npath = \"/\"\n",
            self.sandbox.url()
        );
        let source = Source::in_memory("t.toml", text.as_str(), Files::Disk);
        let spec = scenario::parse(&source).expect("parse");
        let plan = Plan::from_spec(&spec, &source).unwrap_or_else(|e| panic!("{e}"));
        (plan, text)
    }

    /// Submits a run and waits (at most 30 s) for it to be over.
    fn run(&self, secs: u32) -> (RunMeta, Option<Value>) {
        let (plan, text) = self.plan(secs);
        let meta = self
            .runs
            .submit(plan, &text, &BTreeMap::new(), true, RunOptions::default())
            .expect("submit");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let map = self.runs.lock();
                let run = map.get(&meta.id).expect("the run is listed");
                if run.meta.state.is_over() {
                    return (run.meta.clone(), run.result.clone());
                }
            }
            assert!(Instant::now() < deadline, "run {} never ended", meta.id);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn warnings(result: &Value) -> Vec<String> {
    result["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn requests(result: &Value) -> u64 {
    result["requests"].as_u64().expect("requests")
}

/// The next run after a contained panic is clean: finished, no warning, every request counted.
fn assert_clean_run(bench: &Bench) {
    let before = bench.sandbox.requests();
    let (meta, result) = bench.run(1);
    assert_eq!(meta.state, RunState::Finished, "{:?}", meta.error);
    let result = result.expect("a result");
    assert!(warnings(&result).is_empty(), "{:?}", warnings(&result));
    assert_eq!(requests(&result), bench.sandbox.requests() - before);
    assert!(requests(&result) > 100, "{}", requests(&result));
}

#[test]
fn a_shard_that_panics_mid_run_ends_it_with_a_warning_and_its_partial_results() {
    let _one = serial();
    let bench = Bench::new();
    faults::arm(Fault::ShardAtInterval {
        shard: 1,
        interval: 2,
    });
    let before = bench.sandbox.requests();
    let started = Instant::now();
    let (meta, result) = bench.run(4);
    assert_eq!(meta.state, RunState::Finished, "{:?}", meta.error);
    // It ran to its planned end on the other shard, not cut short, not hanging.
    assert!(started.elapsed() >= Duration::from_secs(4));
    let result = result.expect("a result");
    let w = warnings(&result);
    assert!(
        w.iter()
            .any(|w| w.starts_with("shard 1 panicked (injected fault")),
        "{w:?}"
    );
    // Shard 0's four seconds and shard 1's first second are counted; shard 1's second second
    // died with it. Each shard offers half of 200/s.
    let served = bench.sandbox.requests() - before;
    let counted = requests(&result);
    assert!(counted <= served, "{counted} counted, {served} served");
    assert!(counted >= 450, "{counted}");
    // The live intervals went on after the panic (they would freeze waiting for shard 1).
    let intervals = bench.runs.lock()[&meta.id].intervals.len();
    assert!(intervals >= 4, "{intervals} intervals");
    assert_clean_run(&bench);
}

#[test]
fn a_shard_that_panics_before_it_is_ready_does_not_hold_the_run() {
    let _one = serial();
    let bench = Bench::new();
    faults::arm(Fault::ShardBeforeReady { shard: 0 });
    let before = bench.sandbox.requests();
    let (meta, result) = bench.run(2);
    assert_eq!(meta.state, RunState::Finished, "{:?}", meta.error);
    let result = result.expect("a result");
    let w = warnings(&result);
    assert!(w.iter().any(|w| w.starts_with("shard 0 panicked")), "{w:?}");
    // Shard 1 carried its half of the load: 100/s for 2 s.
    let counted = requests(&result);
    assert_eq!(counted, bench.sandbox.requests() - before);
    assert!((150..=260).contains(&counted), "{counted}");
    assert_clean_run(&bench);
}

#[test]
fn a_collector_that_panics_fails_the_run_and_stops_its_load() {
    let _one = serial();
    let bench = Bench::new();
    faults::arm(Fault::CollectorAfter { intervals: 1 });
    let started = Instant::now();
    let (meta, _) = bench.run(10);
    assert_eq!(meta.state, RunState::Failed);
    let error = meta.error.unwrap_or_default();
    assert!(error.starts_with("the collector panicked"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // The load stopped with it: nothing more reaches the sandbox.
    let after_end = bench.sandbox.requests();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(bench.sandbox.requests(), after_end, "load kept running");
    assert_clean_run(&bench);
}
