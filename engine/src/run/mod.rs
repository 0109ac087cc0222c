//! Starting a run: shards, the common origin, the collector, and the events a caller reads.
//!
//! `start` spawns one thread per shard and one collector thread and returns at once. The
//! collector waits until every shard has opened its connections, picks one origin for all,
//! then streams `RunEvent`s: `Started`, one `Interval` per second, and `Finished` last.

mod assemble;
pub mod capacity;
pub mod fleet;
pub mod phase;
mod phased;
pub mod split;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use self::assemble::{assemble, Measured};
pub use self::assemble::{model_summary, plan_facts, PlanFacts};
use crate::metrics::stats::{ShardEvent, StatsSet};
use crate::plan::Plan;
use crate::results::collector::{Collector, RunInterval};
use crate::results::{IntervalSummary, Results};
use crate::shard::{self, Control, ShardLinks};

/// Sockets kept free for everything that is not a load connection.
const FD_RESERVE: u64 = 64;
/// Time between choosing the origin and the first arrival, so every shard has it first.
const START_LEAD: Duration = Duration::from_millis(20);

/// What a run streams to its caller.
#[derive(Debug)]
pub enum RunEvent {
    /// Every shard has its connections open; the schedule starts now.
    Started {
        shards: usize,
        connections: u32,
        /// Most connections this process can open (open-file limit less a reserve).
        connection_cap: u64,
    },
    /// One merged second.
    Interval(RunInterval),
    /// The run is over.
    Finished(Box<Finished>),
}

/// The end of a run: the report and the exact merged histograms behind it.
#[derive(Debug)]
pub struct Finished {
    pub results: Results,
    pub totals: Box<StatsSet>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{connections} connections need more open files than this process may have ({limit}); use at most {max} connections or raise the hard limit (ulimit -Hn)")]
    TooManyConnections {
        connections: u32,
        limit: u64,
        max: u64,
    },
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("{0}")]
    Setup(String),
}

/// A running run. Dropping it stops the run and waits for its threads, so a run that ends
/// early (its collector panicked, its caller gave up) never leaves load running behind it.
pub struct RunHandle {
    events: Receiver<RunEvent>,
    control: Vec<Sender<Control>>,
    threads: Vec<JoinHandle<()>>,
    /// Why the run ended without `Finished`, when it did (a contained panic).
    fault: Arc<Mutex<Option<String>>>,
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        self.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl RunHandle {
    /// The run's events, ending with `Finished`.
    pub fn events(&self) -> &Receiver<RunEvent> {
        &self.events
    }

    /// Graceful stop: no new requests; in-flight ones complete; results are kept.
    pub fn stop(&self) {
        self.stopper().stop();
    }

    /// A handle that can stop the run from another thread (e.g. a signal handler).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            control: self.control.clone(),
        }
    }

    /// Waits for the end, discarding intervals, and returns the result.
    pub fn wait(self) -> Option<Box<Finished>> {
        let mut finished = None;
        for ev in self.events.iter() {
            if let RunEvent::Finished(f) = ev {
                finished = Some(f);
            }
        }
        finished
    }

    /// Why the events ended without `Finished`: the collector panicked (the load was
    /// stopped). `None` while the run goes on or when it finished.
    pub fn fault(&self) -> Option<String> {
        lock(&self.fault).clone()
    }
}

fn lock(fault: &Mutex<Option<String>>) -> std::sync::MutexGuard<'_, Option<String>> {
    fault.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops a run from anywhere; cheap to clone.
#[derive(Clone)]
pub struct Stopper {
    control: Vec<Sender<Control>>,
}

impl Stopper {
    pub fn stop(&self) {
        for c in &self.control {
            let _ = c.try_send(Control::Stop);
        }
    }
}

/// The open-file limit after raising the soft limit to the hard one.
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

/// Starts a run: `[[setup]]` first if the plan has one, then the load, then `[[teardown]]`.
pub fn start(plan: &Plan) -> Result<RunHandle, StartError> {
    let limit = raise_fd_limit();
    let max = limit.saturating_sub(FD_RESERVE + 8 * plan.shards() as u64);
    if u64::from(plan.connections()) > max {
        return Err(StartError::TooManyConnections {
            connections: plan.connections(),
            limit,
            max,
        });
    }
    if plan.phases.is_empty() {
        start_load(plan, max)
    } else {
        phased::start(plan, max)
    }
}

/// Starts the load itself: the shards and the collector.
fn start_load(plan: &Plan, max: u64) -> Result<RunHandle, StartError> {
    let shard_plans = plan.split();
    let shards = shard_plans.len();
    let (events_tx, events_rx) = bounded(64 * shards);
    let (ready_tx, ready_rx) = unbounded();
    let (run_tx, run_rx) = unbounded();
    let mut control = Vec::with_capacity(shards);
    let mut recycle = Vec::with_capacity(shards);
    let mut threads = Vec::with_capacity(shards + 1);
    for sp in shard_plans {
        let (ctl_tx, ctl_rx) = bounded(16);
        let (rec_tx, rec_rx) = bounded(8);
        control.push(ctl_tx);
        recycle.push(rec_tx);
        threads.push(shard::spawn(
            sp,
            ShardLinks {
                events: events_tx.clone(),
                ready: ready_tx.clone(),
                control: ctl_rx,
                recycle: rec_rx,
            },
        )?);
    }
    drop(events_tx);
    drop(ready_tx);

    let plan = plan.clone();
    let starters = control.clone();
    let cap = max;
    let fault = Arc::new(Mutex::new(None));
    let noted = fault.clone();
    threads.push(
        std::thread::Builder::new()
            .name("loadd-collector".into())
            .spawn(move || {
                let collected = crate::panics::contain(|| {
                    collector_main(
                        &plan, cap, &starters, &ready_rx, &events_rx, &recycle, &run_tx,
                    )
                });
                // Nobody merges the shards' figures any more: stop the load, say why, and let
                // the events end (the shards see the collector gone and finish).
                if let Err(why) = collected {
                    Stopper { control: starters }.stop();
                    *lock(&noted) = Some(format!(
                        "the collector panicked ({why}); the load was stopped"
                    ));
                }
            })?,
    );
    Ok(RunHandle {
        events: run_rx,
        control,
        threads,
        fault,
    })
}

fn collector_main(
    plan: &Plan,
    connection_cap: u64,
    control: &[Sender<Control>],
    ready: &Receiver<usize>,
    events: &Receiver<ShardEvent>,
    recycle: &[Sender<Box<StatsSet>>],
    out: &Sender<RunEvent>,
) {
    let shards = control.len();
    // Shards report ready once connected (or failed, or panicked: then perhaps twice, so
    // each shard counts once); a dead shard thread closes the channel.
    let mut is_ready = vec![false; shards];
    while is_ready.iter().any(|r| !r) {
        let Ok(shard) = ready.recv() else { break };
        if let Some(r) = is_ready.get_mut(shard) {
            *r = true;
        }
    }
    let origin = Instant::now() + START_LEAD;
    for c in control {
        let _ = c.send(Control::Start(origin));
    }
    let _ = out.send(RunEvent::Started {
        shards,
        connections: plan.connections(),
        connection_cap,
    });

    let schedules = if plan.is_open() {
        plan.schedules()
    } else {
        Vec::new()
    };
    let mut collector = Collector::new(
        shards,
        plan.steps().count(),
        plan.scenarios.len(),
        schedules,
    );
    let mut intervals = Vec::new();
    let mut ready = Vec::new();
    let mut aborted_by = None;
    while !collector.done() {
        let Ok(ev) = events.recv() else { break };
        collector.take(ev, recycle, &mut ready);
        for iv in ready.drain(..) {
            intervals.push(iv.summary.clone());
            let _ = out.send(RunEvent::Interval(iv));
            #[cfg(feature = "fault-injection")]
            crate::faults::collector_after(intervals.len());
        }
        if aborted_by.is_none() {
            aborted_by = failed_abort_threshold(plan, &collector.totals, origin);
            if aborted_by.is_some() {
                for c in control {
                    let _ = c.try_send(Control::Stop);
                }
            }
        }
    }
    let elapsed_s = Instant::now()
        .saturating_duration_since(origin)
        .as_secs_f64();
    let mut results = build_results(plan, &collector, intervals, elapsed_s);
    results.aborted_by = aborted_by;
    let _ = out.send(RunEvent::Finished(Box::new(Finished {
        results,
        totals: collector.totals,
    })));
}

/// The first `abort_on_fail` threshold that fails on the running totals once its delay passed.
fn failed_abort_threshold(plan: &Plan, totals: &StatsSet, origin: Instant) -> Option<String> {
    let elapsed = Instant::now().saturating_duration_since(origin);
    let elapsed_ns = elapsed.as_nanos() as u64;
    plan.thresholds
        .iter()
        .filter(|t| t.abort_after_ns.is_some_and(|d| elapsed_ns >= d))
        .find(|t| !t.evaluate(totals, elapsed.as_secs_f64()).passed)
        .map(|t| t.text.clone())
}

/// The run's result from the collector's totals and finals.
fn build_results(
    plan: &Plan,
    collector: &Collector,
    intervals: Vec<IntervalSummary>,
    elapsed_s: f64,
) -> Results {
    let mut finals: Vec<_> = collector.finals.iter().collect();
    finals.sort_by_key(|f| f.shard);
    let mut drivers: Vec<&str> = finals
        .iter()
        .filter(|f| f.failure.is_none() && f.panic.is_none())
        .map(|f| f.driver)
        .collect();
    drivers.dedup();
    let mut warnings: Vec<String> = finals
        .iter()
        .filter_map(|f| {
            let failed = f.failure.as_ref();
            let start = failed.map(|why| format!("shard {} could not start: {why}", f.shard));
            start.or_else(|| {
                f.panic.as_ref().map(|why| {
                    format!(
                        "shard {} panicked ({why}): its users stopped there and its figures since its last one-second interval are lost; the other shards ran on",
                        f.shard
                    )
                })
            })
        })
        .collect();
    if finals.iter().any(|f| f.feeder_exhausted) {
        warnings.push(
            "a unique data feeder ran out of rows, which ended the run before its planned end"
                .into(),
        );
    }
    assemble(
        plan,
        &collector.totals,
        intervals,
        Measured {
            elapsed_s,
            driver: if drivers.is_empty() {
                "none".into()
            } else {
                drivers.join(",")
            },
            cpus: finals.iter().filter_map(|f| f.cpu).collect(),
            shards: plan.shards(),
            warnings,
        },
    )
}
