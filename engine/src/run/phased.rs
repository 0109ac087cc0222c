//! A run with `[[setup]]` or `[[teardown]]`: one thread runs setup, starts the load with the
//! run-wide values setup captured, forwards the load's events, then runs teardown before the
//! caller sees `Finished`. A failed setup ends the run before any load, with results that say
//! which step failed and what it got.

use std::sync::{Arc, Mutex};

use crossbeam_channel::{bounded, select, Receiver, Sender};

use super::assemble::{assemble, Measured};
use super::phase::{run_setup, run_teardown};
use super::{start_load, Finished, RunEvent, RunHandle, StartError};
use crate::metrics::stats::StatsSet;
use crate::plan::Plan;
use crate::shard::Control;

pub(super) fn start(plan: &Plan, max: u64) -> Result<RunHandle, StartError> {
    let (events_tx, events_rx) = bounded(64 * plan.shards().max(1));
    let (control_tx, control_rx) = bounded(16);
    let plan = plan.clone();
    let fault = Arc::new(Mutex::new(None));
    let noted = fault.clone();
    let thread = std::thread::Builder::new()
        .name("loadd-phases".into())
        .spawn(move || {
            let ran = crate::panics::contain(|| run(&plan, max, &control_rx, &events_tx));
            let why = match ran {
                Ok(fault) => fault,
                Err(why) => Some(format!("the run's phases panicked ({why})")),
            };
            *noted.lock().unwrap_or_else(|p| p.into_inner()) = why;
        })?;
    Ok(RunHandle {
        events: events_rx,
        control: vec![control_tx],
        threads: vec![thread],
        fault,
    })
}

/// Setup, load, teardown. Returns the load's fault when it ended without a result.
fn run(
    plan: &Plan,
    max: u64,
    control: &Receiver<Control>,
    out: &Sender<RunEvent>,
) -> Option<String> {
    let stop_seen = std::sync::atomic::AtomicBool::new(false);
    let stopped = || {
        if control.try_recv().is_ok_and(|c| matches!(c, Control::Stop)) {
            stop_seen.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        stop_seen.load(std::sync::atomic::Ordering::Relaxed)
    };
    let (values, setup) = run_setup(plan, &stopped);
    if let Some(why) = setup.failure {
        let mut finished = no_load(plan);
        finished.results.setup = setup.steps;
        finished.results.setup_failed = Some(why);
        let _ = out.send(RunEvent::Finished(Box::new(finished)));
        return None;
    }
    let load_plan = plan.with_run_values(&values);
    let handle = match start_load(&load_plan, max) {
        Ok(h) => h,
        Err(e) => {
            let mut finished = no_load(plan);
            finished.results.setup = setup.steps;
            finished.results.setup_failed = Some(format!("the load could not start: {e}"));
            let _ = out.send(RunEvent::Finished(Box::new(finished)));
            return None;
        }
    };
    if stop_seen.load(std::sync::atomic::Ordering::Relaxed) {
        handle.stop();
    }
    let mut finished = None;
    loop {
        select! {
            recv(handle.events) -> ev => match ev {
                Ok(RunEvent::Finished(f)) => {
                    finished = Some(f);
                    break;
                }
                Ok(ev) => {
                    let _ = out.send(ev);
                }
                Err(_) => break,
            },
            recv(control) -> c => {
                if matches!(c, Ok(Control::Stop)) {
                    handle.stop();
                }
            },
        }
    }
    let fault = handle.fault();
    // Dropping the handle waits for the load's threads before teardown starts.
    drop(handle);
    let Some(mut finished) = finished else {
        return fault;
    };
    let teardown = run_teardown(&load_plan, &values, &finished.results);
    finished.results.setup = setup.steps;
    finished.results.teardown = teardown.steps;
    finished.results.teardown_failed = teardown.failure;
    let _ = out.send(RunEvent::Finished(finished));
    None
}

/// The result of a run whose load never started.
fn no_load(plan: &Plan) -> Finished {
    let totals = Box::new(StatsSet::new(plan.steps().count(), plan.scenarios.len()));
    let results = assemble(
        plan,
        &totals,
        Vec::new(),
        Measured {
            elapsed_s: 0.0,
            driver: "none".into(),
            cpus: Vec::new(),
            shards: plan.shards(),
            warnings: vec!["setup failed: the load never started".into()],
        },
    );
    Finished { results, totals }
}
