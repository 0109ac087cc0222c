//! Faults a test arms to prove that panics are contained: a shard or the collector panics at a
//! chosen point. Compiled only with the `fault-injection` feature, which only test builds
//! enable (the daemon's dev-dependencies), so a released binary has no such hook.

use std::sync::{Mutex, MutexGuard};

/// Where a panic is injected. Each armed fault fires once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Shard `shard` panics before it reports its connections open.
    ShardBeforeReady { shard: usize },
    /// Shard `shard` panics when it is about to ship interval `interval`.
    ShardAtInterval { shard: usize, interval: u64 },
    /// The collector panics once it has passed on `intervals` intervals.
    CollectorAfter { intervals: usize },
}

static ARMED: Mutex<Vec<Fault>> = Mutex::new(Vec::new());

fn armed() -> MutexGuard<'static, Vec<Fault>> {
    ARMED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Arms `fault` for the next run that reaches its point.
pub fn arm(fault: Fault) {
    armed().push(fault);
}

/// Removes every armed fault.
pub fn disarm_all() {
    armed().clear();
}

/// Whether `fault` was armed (and disarms it).
fn fire(fault: Fault) -> bool {
    let mut faults = armed();
    match faults.iter().position(|f| *f == fault) {
        Some(at) => {
            faults.remove(at);
            true
        }
        None => false,
    }
}

pub(crate) fn shard_before_ready(shard: usize) {
    if fire(Fault::ShardBeforeReady { shard }) {
        panic!("injected fault: shard {shard} before ready");
    }
}

pub(crate) fn shard_at_interval(shard: usize, interval: u64) {
    if fire(Fault::ShardAtInterval { shard, interval }) {
        panic!("injected fault: shard {shard} at interval {interval}");
    }
}

pub(crate) fn collector_after(intervals: usize) {
    if fire(Fault::CollectorAfter { intervals }) {
        panic!("injected fault: collector after {intervals} intervals");
    }
}
