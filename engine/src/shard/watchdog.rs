//! The watchdog: on each housekeeping tick, stops a scenario whose load is over, interrupts one
//! whose graceful stop ran out (after its own end, or after a stop from outside), and expires
//! the deadline slot of every request that outlived its timeout.
//!
//! It decides only when: stopping is `ShardState::stop`/`interrupt`, and what an expired slot
//! means is the connection's call (a counted timeout, or an uncounted cut when interrupted).

use std::rc::Rc;

use crate::plan::LoadModel;
use crate::shard::state::ShardState;

pub(super) struct Watchdog {
    /// Per scenario: when its load ends (its clock), and when its graceful stop runs out.
    ends: Vec<(Option<u64>, Option<u64>)>,
    /// A stop from outside: when it came (run clock), so the graceful stop counts from it.
    stopped_at: Option<u64>,
}

impl Watchdog {
    pub fn new(states: &[Rc<ShardState>]) -> Self {
        Watchdog {
            ends: states.iter().map(|s| group_ends(s)).collect(),
            stopped_at: None,
        }
    }

    /// A stop from outside at `run_now` (run clock): every scenario stops taking new work.
    pub fn stop_all(&mut self, states: &[Rc<ShardState>], run_now: u64) {
        self.stopped_at.get_or_insert(run_now);
        states.iter().for_each(|s| s.stop());
    }

    /// One tick at `run_now` (run clock).
    pub fn check(&self, states: &[Rc<ShardState>], run_now: u64) {
        for (state, (end, grace_end)) in states.iter().zip(&self.ends) {
            let now = state.now_ns();
            // A closed model stops at its duration. An open one's pacer ends the load itself;
            // arrivals still queued for a connection may go out for one request timeout (they
            // were due within the load), then are dropped and counted — a stalled target does
            // not keep the run going for the whole graceful stop.
            let queue_drain_ns = if state.dispatch.is_some() {
                state
                    .timeout_ns
                    .min(state.group.graceful_stop.as_nanos() as u64)
            } else {
                0
            };
            if end.is_some_and(|t| now >= t + queue_drain_ns) {
                state.stop();
            }
            let external = self
                .stopped_at
                .map(|t| run_now >= t + state.group.graceful_stop.as_nanos() as u64);
            if grace_end.is_some_and(|t| now >= t) || external == Some(true) {
                state.interrupt();
            }
            let watchdog_now = if state.interrupted() { u64::MAX } else { now };
            for slot in state.slots() {
                slot.check(watchdog_now);
            }
        }
    }
}

/// When a scenario's load ends (its clock), and when its graceful stop runs out.
fn group_ends(state: &ShardState) -> (Option<u64>, Option<u64>) {
    let end = match &state.group.work {
        LoadModel::Closed { duration, .. } => duration.map(|d| d.as_nanos() as u64),
        LoadModel::Open { schedule, .. } => Some(schedule.end_ns()),
    };
    let grace = state.group.graceful_stop.as_nanos() as u64;
    (end, end.map(|e| e + grace))
}
