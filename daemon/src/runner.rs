//! The runs loadd knows about, and the one thread that executes them, one at a time.
//!
//! [`Runs`] is the registry the API reads (behind one mutex, held only to copy or update small
//! things and write a small state file, never across a run or a network wait). The runner thread takes queued runs in submission order,
//! starts each on the engine's own threads, and turns its `RunEvent`s into stored intervals,
//! a result, a histogram and an HdrHistogram interval log, persisting each as it arrives and
//! waking live tails.
//! It refuses to run two loads at once: they would steal each other's CPUs.
//!
//! Each stored interval is the engine's `IntervalSummary` as is: it already carries what the live
//! table needs (`latency_p999_us`, `errors_by_kind`, and in the open model `requested_per_s`).
//! A run submitted with `stats` also keeps, in memory only, each interval's full measurements
//! (`engine::metrics::wire`, histograms as base64 V2+deflate) and its totals, for clients that merge runs
//! of several daemons exactly. A run submitted with `start_at` waits for that wall-clock instant
//! before starting the engine, so daemons given the same instant start together.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engine::report::hlog::{corrected_latency, HlogWriter, V2DeflateSerializer};
use engine::results::Environment;
use engine::run::{RunEvent, Stopper};
use engine::Plan;
use hdrhistogram::serialization::Serializer;
use tokio::sync::watch;

use crate::store::{RunMeta, RunState, Store, StoredRun};

mod retention;
pub use retention::{DeleteError, Retention};

/// One run, in memory.
pub struct Run {
    pub meta: RunMeta,
    /// Interval summaries as the engine serialized them (opaque JSON objects).
    pub intervals: Vec<serde_json::Value>,
    /// The engine's `Results`, serialized.
    pub result: Option<serde_json::Value>,
    /// Corrected-latency histogram, V2+deflate.
    pub histogram_v2: Option<Vec<u8>>,
    /// The run's totals as `engine::metrics::wire` JSON (runs submitted with `stats` only).
    pub final_stats: Option<serde_json::Value>,
    plan: Option<Plan>,
    options: RunOptions,
    /// SHA-256 of the submitted scenario text, noted in the result's environment.
    scenario_sha256: Option<String>,
    stopper: Option<Stopper>,
    /// Bumped on every change; live tails wait on it.
    changed: watch::Sender<u64>,
}

impl Run {
    fn new(meta: RunMeta) -> Self {
        Self {
            meta,
            intervals: Vec::new(),
            result: None,
            histogram_v2: None,
            final_stats: None,
            plan: None,
            options: RunOptions::default(),
            scenario_sha256: None,
            stopper: None,
            changed: watch::Sender::new(0),
        }
    }

    fn touch(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// A receiver that wakes on every change of this run.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// How a submission asked to be run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunOptions {
    /// Start the engine at this wall-clock instant (Unix ms) rather than as soon as possible.
    pub start_at_unix_ms: Option<u64>,
    /// Keep each interval's full measurements and the totals for the event stream.
    pub stats: bool,
    /// What the run is held to while it goes.
    pub cap: crate::cap::RuntimeCap,
}

/// How far in the past a `start_at` may be when it is submitted or reached (the submission
/// and planning took that long); later than this, the common start is lost.
pub const START_AT_MAX_LATE: Duration = Duration::from_secs(5);
/// How far ahead a `start_at` may be: the daemon runs nothing else while it waits.
pub const START_AT_MAX_AHEAD: Duration = Duration::from_secs(600);

/// Refuses a `start_at` (Unix ms) too far in the past or the future, saying why.
pub fn check_start_at(start_at_unix_ms: u64) -> Result<(), String> {
    let now = unix_ms();
    if start_at_unix_ms.saturating_add(START_AT_MAX_LATE.as_millis() as u64) < now {
        return Err(format!(
            "start_at is {} ms in the past (by this daemon's clock; at most {} s is allowed): pick a time a few seconds ahead, and check that the clocks are synchronized (NTP)",
            now - start_at_unix_ms,
            START_AT_MAX_LATE.as_secs()
        ));
    }
    if start_at_unix_ms > now.saturating_add(START_AT_MAX_AHEAD.as_millis() as u64) {
        return Err(format!(
            "start_at is {} s ahead (by this daemon's clock; at most {} s is allowed)",
            (start_at_unix_ms - now) / 1000,
            START_AT_MAX_AHEAD.as_secs()
        ));
    }
    Ok(())
}

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("a run is already queued or running (submit with ?queue=true to queue behind it)")]
    Busy,
    #[error("cannot store the run")]
    Store(#[from] std::io::Error),
    #[error("loadd is shutting down")]
    ShuttingDown,
    #[error("{0} runs are already queued (this daemon's limit, --max-queued); try again later")]
    QueueFull(usize),
}

/// Why a stop was refused.
#[derive(Debug)]
pub enum StopError {
    NotFound,
    AlreadyOver(RunState),
}

/// Every run loadd knows about.
pub struct Runs {
    runs: Mutex<BTreeMap<String, Run>>,
    store: Store,
    queue: Mutex<mpsc::Sender<String>>,
    /// Set by [`Runs::shutdown`]: no new runs are accepted.
    closing: AtomicBool,
    retention: Retention,
}

impl Runs {
    /// Loads the stored runs and starts the runner thread.
    pub fn start(
        store: Store,
        stored: Vec<StoredRun>,
        retention: Retention,
    ) -> std::io::Result<Arc<Runs>> {
        let (tx, rx) = mpsc::channel();
        let mut map = BTreeMap::new();
        for s in stored {
            let mut run = Run::new(s.meta);
            run.intervals = s.intervals;
            run.result = s.result;
            run.histogram_v2 = s.histogram_v2;
            map.insert(run.meta.id.clone(), run);
        }
        let runs = Arc::new(Runs {
            runs: Mutex::new(map),
            store,
            queue: Mutex::new(tx),
            closing: AtomicBool::new(false),
            retention,
        });
        runs.prune();
        let worker = Arc::clone(&runs);
        std::thread::Builder::new()
            .name("loadd-runner".into())
            .spawn(move || runner_main(&worker, &rx))?;
        Ok(runs)
    }

    /// A run's HdrHistogram interval log as stored (`None`: the run has none).
    pub fn hlog(&self, id: &str) -> std::io::Result<Option<String>> {
        self.store.read_hlog(id)
    }

    /// The registry, locked. A panic elsewhere while holding it leaves plain data behind.
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Run>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Files a validated run (with the files that came with it): queued, or refused when
    /// `queue` is false and another is pending.
    pub fn submit(
        &self,
        plan: Plan,
        scenario: &str,
        files: &BTreeMap<String, Vec<u8>>,
        queue: bool,
        options: RunOptions,
    ) -> Result<RunMeta, SubmitError> {
        let meta = {
            let mut runs = self.lock();
            if self.closing.load(Ordering::SeqCst) {
                return Err(SubmitError::ShuttingDown);
            }
            if !queue && runs.values().any(|r| !r.meta.state.is_over()) {
                return Err(SubmitError::Busy);
            }
            if self.queue_is_full(&runs) {
                return Err(SubmitError::QueueFull(self.retention.max_queued));
            }
            let meta = RunMeta {
                id: next_id(runs.keys().next_back().map(String::as_str)),
                state: RunState::Queued,
                created_unix_ms: unix_ms(),
                target: plan.target.url.clone(),
                stop_requested: false,
                error: None,
                steps: plan.steps().map(|s| s.name.clone()).collect(),
                requested_rate_per_s: plan.requested_rate_per_s(),
            };
            self.store.create(&meta, scenario, files)?;
            let mut run = Run::new(meta.clone());
            run.plan = Some(plan);
            run.options = options;
            run.scenario_sha256 = Some(Environment::sha256_hex(scenario.as_bytes()));
            runs.insert(meta.id.clone(), run);
            meta
        };
        let sent = self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(meta.id.clone());
        if sent.is_err() {
            // The runner thread is gone: say so instead of leaving the run queued forever.
            self.finish(
                &meta.id,
                RunState::Failed,
                Some("the runner thread stopped".into()),
            );
        }
        Ok(self.lock().get(&meta.id).map_or(meta, |r| r.meta.clone()))
    }

    /// Graceful stop: a queued run is aborted; a running one drains and keeps its results.
    pub fn stop(&self, id: &str) -> Result<RunMeta, StopError> {
        let mut runs = self.lock();
        let run = runs.get_mut(id).ok_or(StopError::NotFound)?;
        match run.meta.state {
            RunState::Queued => {
                run.meta.stop_requested = true;
                self.abort_queued(run, "stopped before it started");
            }
            RunState::Running => self.stop_running(run),
            over => return Err(StopError::AlreadyOver(over)),
        }
        Ok(run.meta.clone())
    }

    /// For a daemon that is going away: refuses new runs, aborts queued ones, stops the
    /// running one gracefully and waits (up to `grace`) until its result is stored.
    /// Returns the run it waited for and whether it ended in time.
    pub fn shutdown(&self, grace: Duration) -> Option<(String, bool)> {
        self.closing.store(true, Ordering::SeqCst);
        let running = {
            let mut runs = self.lock();
            let mut running = None;
            for run in runs.values_mut() {
                match run.meta.state {
                    RunState::Queued => {
                        self.abort_queued(run, "loadd was shut down before the run started");
                    }
                    RunState::Running => {
                        self.stop_running(run);
                        running = Some(run.meta.id.clone());
                    }
                    _ => {}
                }
            }
            running
        }?;
        let deadline = Instant::now() + grace;
        loop {
            let over = self
                .lock()
                .get(&running)
                .is_none_or(|r| r.meta.state.is_over());
            if over || Instant::now() >= deadline {
                return Some((running, over));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A queued run that will never start: aborted, with why.
    fn abort_queued(&self, run: &mut Run, why: &str) {
        run.meta.state = RunState::Aborted;
        run.meta.error = Some(why.into());
        run.plan = None;
        self.save_state(&run.meta);
        run.touch();
    }

    /// Graceful stop of the running run: in-flight requests finish, results are kept.
    fn stop_running(&self, run: &mut Run) {
        run.meta.stop_requested = true;
        if let Some(s) = &run.stopper {
            s.stop();
        }
        self.save_state(&run.meta);
        run.touch();
    }

    fn save_state(&self, meta: &RunMeta) {
        if let Err(e) = self.store.write_state(meta) {
            eprintln!(
                "loadd: warning: run {}: cannot save its state: {e}",
                meta.id
            );
        }
    }

    fn finish(&self, id: &str, state: RunState, error: Option<String>) {
        {
            let mut runs = self.lock();
            if let Some(run) = runs.get_mut(id) {
                run.meta.state = state;
                run.meta.error = error;
                run.stopper = None;
                self.save_state(&run.meta);
                run.touch();
            }
        }
        self.prune();
    }
}

fn runner_main(runs: &Runs, queue: &mpsc::Receiver<String>) {
    for id in queue.iter() {
        let (plan, options) = {
            let mut map = runs.lock();
            let Some(run) = map.get_mut(&id) else {
                continue;
            };
            // Stopped while queued.
            let Some(plan) = run.plan.take() else {
                continue;
            };
            run.meta.state = RunState::Running;
            runs.save_state(&run.meta);
            run.touch();
            (plan, run.options)
        };
        if let Some(at) = options.start_at_unix_ms {
            if !wait_for_start(runs, &id, at) {
                continue;
            }
        }
        // A panic in here must not take the runner thread (and every queued run) with it.
        if let Err(why) = engine::panics::contain(|| execute(runs, &id, &plan, options)) {
            eprintln!("loadd: error: run {id}: the runner panicked: {why}");
            runs.finish(
                &id,
                RunState::Failed,
                Some(format!("loadd's runner panicked ({why}); see loadd's log")),
            );
        }
    }
}

/// Sleeps until `start_at_unix_ms` by this machine's clock. False (the run is over) when it
/// was stopped meanwhile, or when the instant passed so long ago that it would not start
/// together with its peers (it waited behind another run).
fn wait_for_start(runs: &Runs, id: &str, start_at_unix_ms: u64) -> bool {
    // Short sleeps, so a stop or a shutdown while waiting is seen at once.
    const POLL: Duration = Duration::from_millis(20);
    let start_at = UNIX_EPOCH + Duration::from_millis(start_at_unix_ms);
    loop {
        let stopped = runs.lock().get(id).is_none_or(|r| r.meta.stop_requested);
        if stopped {
            runs.finish(
                id,
                RunState::Aborted,
                Some("stopped before its start time".into()),
            );
            return false;
        }
        match start_at.duration_since(SystemTime::now()) {
            Ok(left) if !left.is_zero() => std::thread::sleep(left.min(POLL)),
            _ => break,
        }
    }
    let late = SystemTime::now()
        .duration_since(start_at)
        .unwrap_or_default();
    if late > START_AT_MAX_LATE {
        runs.finish(
            id,
            RunState::Failed,
            Some(format!(
                "missed its start_at by {} ms (it waited behind another run)",
                late.as_millis()
            )),
        );
        return false;
    }
    true
}

fn execute(runs: &Runs, id: &str, plan: &Plan, options: RunOptions) {
    let mut log = match runs.store.interval_log(id) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("loadd: warning: run {id}: cannot open its interval log: {e}");
            None
        }
    };
    // The interval log starts when the run does (its base time) and gets a line a second.
    let mut hlog_file = match runs.store.hlog(id) {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!("loadd: warning: run {id}: cannot create its interval log: {e}");
            None
        }
    };
    let mut serializer = V2DeflateSerializer::new();
    let mut hlog_pending = hlog_file.as_mut().map(|f| (f, &mut serializer));
    let mut hlog: Option<HlogWriter<'_, std::fs::File>> = None;
    let handle = match engine::start(plan) {
        Ok(h) => h,
        Err(e) => {
            runs.finish(id, RunState::Failed, Some(e.to_string()));
            return;
        }
    };
    let mut scenario_sha256 = None;
    {
        let mut map = runs.lock();
        if let Some(run) = map.get_mut(id) {
            scenario_sha256 = run.scenario_sha256.clone();
            let stopper = handle.stopper();
            // A stop that arrived between dequeuing and starting.
            if run.meta.stop_requested {
                stopper.stop();
            }
            run.stopper = Some(stopper);
        }
    }
    let mut finished = false;
    let mut capped: Option<String> = None;
    let started = Instant::now();
    loop {
        let event = match handle.events().recv_timeout(Duration::from_millis(500)) {
            Ok(event) => event,
            Err(e) if e.is_timeout() => {
                if capped.is_none() {
                    capped = options.cap.judge_elapsed(started.elapsed());
                    if capped.is_some() {
                        handle.stop();
                    }
                }
                continue;
            }
            Err(_) => break,
        };
        match event {
            RunEvent::Started { .. } => {
                if let Some((file, serializer)) = hlog_pending.take() {
                    let comment = format!("loadd run {id}: corrected latency");
                    hlog = HlogWriter::begin(file, serializer, SystemTime::now(), &comment)
                        .map_err(|e| eprintln!("loadd: warning: run {id}: interval log: {e}"))
                        .ok();
                }
            }
            RunEvent::Interval(iv) => {
                if let Some(w) = hlog.as_mut() {
                    let start = Duration::from_secs_f64((iv.summary.t_s - 1.0).max(0.0));
                    let line =
                        w.interval(start, Duration::from_secs(1), &corrected_latency(&iv.stats));
                    if let Err(e) = line {
                        eprintln!("loadd: warning: run {id}: interval log: {e}");
                        hlog = None;
                    }
                }
                if capped.is_none() {
                    capped = options.cap.judge_rate(iv.summary.rate_per_s);
                    if capped.is_some() {
                        handle.stop();
                    }
                }
                store_interval(runs, id, iv, options.stats, log.as_mut());
            }
            RunEvent::Finished(mut f) => {
                f.results.environment.scenario_sha256 = scenario_sha256.take();
                if let Some(w) = hlog.take() {
                    let end = Duration::from_secs_f64(f.results.elapsed_s.max(0.0));
                    if let Err(e) = w.finish(&corrected_latency(&f.totals), end) {
                        eprintln!("loadd: warning: run {id}: interval log: {e}");
                    }
                }
                finished = store_result(runs, id, &f, options.stats);
                if !finished {
                    runs.finish(
                        id,
                        RunState::Failed,
                        Some("the result could not be saved (see loadd's log)".into()),
                    );
                    return;
                }
            }
        }
    }
    if let Some(why) = &capped {
        eprintln!("loadd: audit: run {id}: {why}");
    }
    let fault = handle.fault();
    // The run is over only once its threads are: no load outlives it into the next run.
    drop(handle);
    if finished {
        runs.finish(id, RunState::Finished, capped);
    } else {
        let why = capped
            .or(fault)
            .unwrap_or_else(|| "the run ended without a result".into());
        runs.finish(id, RunState::Failed, Some(why));
    }
}

/// Logs one interval and keeps it for live tails (with its full measurements when asked).
fn store_interval(
    runs: &Runs,
    id: &str,
    iv: engine::results::collector::RunInterval,
    stats: bool,
    log: Option<&mut crate::store::IntervalLog>,
) {
    // The engine's summary carries p99.9, errors by kind and the requested rate.
    let Ok(mut value) = serde_json::to_value(&iv.summary) else {
        return;
    };
    if let Some(l) = log {
        if let Err(e) = l.append(&value) {
            eprintln!("loadd: warning: run {id}: cannot append an interval: {e}");
        }
    }
    // After the log line: the full measurements are for live merging, not storage.
    if stats {
        if let Some(o) = value.as_object_mut() {
            o.insert("stats".into(), engine::metrics::wire::encode(&iv.stats));
        }
    }
    let mut map = runs.lock();
    if let Some(run) = map.get_mut(id) {
        run.intervals.push(value);
        run.touch();
    }
}

/// Saves the result and its histogram, and keeps them (with the totals when asked). False
/// when the result is not on disk: the run must not be reported finished then.
fn store_result(runs: &Runs, id: &str, f: &engine::run::Finished, stats: bool) -> bool {
    let result = serde_json::to_value(&f.results).unwrap_or(serde_json::Value::Null);
    let mut histogram = Vec::new();
    let histogram = V2DeflateSerializer::new()
        .serialize(&f.totals.total().latency, &mut histogram)
        .ok()
        .map(|_| histogram);
    if let Err(e) = runs.store.write_result(id, &result, histogram.as_deref()) {
        eprintln!("loadd: error: run {id}: cannot save its result: {e}");
        return false;
    }
    let totals = stats.then(|| engine::metrics::wire::encode(&f.totals));
    let mut map = runs.lock();
    if let Some(run) = map.get_mut(id) {
        run.result = Some(result);
        run.histogram_v2 = histogram;
        run.final_stats = totals;
    }
    true
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `{unix ms, 11 hex digits}-{8 random hex}`: sorts in submission order, because the time part
/// is kept above the newest id's (two submissions in one millisecond), and does not collide.
fn next_id(newest: Option<&str>) -> String {
    let newest_ms = newest
        .and_then(|id| id.get(..11))
        .and_then(|t| u64::from_str_radix(t, 16).ok());
    let ms = match newest_ms {
        Some(n) if n >= unix_ms() => n + 1,
        _ => unix_ms(),
    };
    let mut random = [0u8; 4];
    // Without randomness the time part alone still orders and separates runs.
    let _ = getrandom::fill(&mut random);
    format!("{ms:011x}-{}", hex::encode(random))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_sort_in_submission_order() {
        let a = super::next_id(None);
        let b = super::next_id(Some(&a));
        let c = super::next_id(Some(&b));
        assert!(a < b && b < c, "{a} {b} {c}");
        let far = format!("{:011x}-00000000", super::unix_ms() + 10_000);
        assert!(super::next_id(Some(&far)) > far);
    }

    #[test]
    fn start_at_must_be_near_now() {
        let now = super::unix_ms();
        assert!(super::check_start_at(now).is_ok());
        assert!(super::check_start_at(now - 2_000).is_ok());
        let past = super::check_start_at(now - 60_000).unwrap_err();
        assert!(
            past.contains("in the past") && past.contains("NTP"),
            "{past}"
        );
        assert!(super::check_start_at(now + 30_000).is_ok());
        let far = super::check_start_at(now + 3_600_000).unwrap_err();
        assert!(far.contains("ahead"), "{far}");
        assert!(super::check_start_at(u64::MAX).is_err());
    }
}
