//! Merges what shards report into one-second run intervals and the run's totals.
//!
//! Interval k is emitted once every shard still running has reported k (or something later:
//! a shard whose channel was full folds k into k+1). Totals are the exact merge of every
//! interval plus each shard's final remainder. Emptied buckets go back to their shard.
//! The alignment by index (`Aligner`) also merges a fleet's daemons (`run::fleet`); it only
//! adds figures up, and refuses to average percentiles.

use std::collections::VecDeque;

use crossbeam_channel::Sender;

use crate::metrics::stats::{ShardEvent, ShardFinal, StatsSet};
use crate::results::IntervalSummary;
use crate::schedule::Schedule;

/// One merged second of the run.
#[derive(Debug)]
pub struct RunInterval {
    pub summary: IntervalSummary,
    pub stats: Box<StatsSet>,
}

/// Interval `index` as merged so far.
pub struct Pending {
    index: u64,
    pub stats: Box<StatsSet>,
    /// Connections open at its end, added over the sources that reported it.
    pub active: u32,
}

/// Intervals from several sources (a run's shards, a fleet's daemons) merged by index:
/// interval k is complete once every source still running has reported k or later.
pub struct Aligner {
    steps: usize,
    scenarios: usize,
    /// Open model: each scenario's schedule and start offset (ns), for each second's
    /// requested arrivals; empty when some scenario is closed.
    schedules: Vec<(u64, Schedule)>,
    last_seen: Vec<u64>,
    finished: Vec<bool>,
    pending: VecDeque<Pending>,
}

impl Aligner {
    /// The whole run's shape (`steps`, `scenarios`) and its schedules, for `sources` sources.
    pub fn new(
        sources: usize,
        steps: usize,
        scenarios: usize,
        schedules: Vec<(u64, Schedule)>,
    ) -> Self {
        Self {
            steps,
            scenarios,
            schedules,
            last_seen: vec![0; sources],
            finished: vec![false; sources],
            pending: VecDeque::new(),
        }
    }

    pub fn done(&self) -> bool {
        self.finished.iter().all(|&f| f)
    }

    /// Interval `index`, to merge a source's figures into (made empty the first time).
    pub fn slot(&mut self, index: u64) -> &mut Pending {
        let at = match self.pending.iter().position(|p| p.index >= index) {
            Some(at) if self.pending[at].index == index => return &mut self.pending[at],
            Some(at) => at,
            None => self.pending.len(),
        };
        let stats = Box::new(StatsSet::new(self.steps, self.scenarios));
        self.pending.insert(
            at,
            Pending {
                index,
                stats,
                active: 0,
            },
        );
        &mut self.pending[at]
    }

    /// `source` has reported interval `index` (and so everything before it).
    pub fn seen(&mut self, source: usize, index: u64) {
        if let Some(seen) = self.last_seen.get_mut(source) {
            *seen = (*seen).max(index);
        }
    }

    /// `source` will report no more intervals.
    pub fn finish(&mut self, source: usize) {
        if let Some(f) = self.finished.get_mut(source) {
            *f = true;
        }
    }

    /// What the whole schedule asked for in interval `index` (open model).
    pub fn requested_per_s(&self, index: u64) -> Option<f64> {
        requested_per_s(&self.schedules, index)
    }

    /// Moves the intervals that became complete to `out`, in order.
    pub fn ready(&mut self, out: &mut Vec<RunInterval>) {
        let complete_upto = (0..self.finished.len())
            .filter(|&i| !self.finished[i])
            .map(|i| self.last_seen[i])
            .min()
            .unwrap_or(u64::MAX);
        while self
            .pending
            .front()
            .is_some_and(|p| p.index <= complete_upto)
        {
            if let Some(p) = self.pending.pop_front() {
                let requested = self.requested_per_s(p.index);
                out.push(RunInterval {
                    summary: IntervalSummary::of(p.index, &p.stats, p.active, requested),
                    stats: p.stats,
                });
            }
        }
    }
}

/// What the whole schedule asked for in interval `index` (open model; `None` when
/// `schedules` is empty): each scenario's arrivals counted from its own start offset.
pub fn requested_per_s(schedules: &[(u64, Schedule)], index: u64) -> Option<f64> {
    if schedules.is_empty() {
        return None;
    }
    let end = index.saturating_mul(1_000_000_000);
    let n: f64 = schedules
        .iter()
        .map(|(offset, s)| {
            let before = |t: u64| t.checked_sub(*offset).map_or(0.0, |t| s.arrivals_before(t));
            before(end) - before(end.saturating_sub(1_000_000_000))
        })
        .sum();
    Some((n * 1000.0).round() / 1000.0)
}

/// The collector's state for one run.
pub struct Collector {
    shards: usize,
    aligner: Aligner,
    pub totals: Box<StatsSet>,
    pub finals: Vec<ShardFinal>,
}

impl Collector {
    pub fn new(
        shards: usize,
        steps: usize,
        scenarios: usize,
        schedules: Vec<(u64, Schedule)>,
    ) -> Self {
        Self {
            shards,
            aligner: Aligner::new(shards, steps, scenarios, schedules),
            totals: Box::new(StatsSet::new(steps, scenarios)),
            finals: Vec::with_capacity(shards),
        }
    }

    pub fn done(&self) -> bool {
        self.aligner.done()
    }

    /// Takes one shard event; returns the intervals that became complete.
    pub fn take(
        &mut self,
        event: ShardEvent,
        recycle: &[Sender<Box<StatsSet>>],
        out: &mut Vec<RunInterval>,
    ) {
        match event {
            ShardEvent::Interval(mut iv) => {
                let shard = iv.shard.min(self.shards - 1);
                self.aligner.seen(shard, iv.index);
                self.totals.merge(&iv.stats);
                let slot = self.aligner.slot(iv.index);
                slot.stats.merge(&iv.stats);
                slot.active += iv.active_connections;
                iv.stats.reset();
                if let Some(tx) = recycle.get(shard) {
                    let _ = tx.try_send(iv.stats);
                }
            }
            ShardEvent::Final(f) => {
                let shard = f.shard.min(self.shards - 1);
                self.aligner.finish(shard);
                self.totals.merge(&f.rest);
                self.finals.push(f);
            }
        }
        self.aligner.ready(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::stats::ShardInterval;

    fn interval(shard: usize, index: u64, requests: u64) -> ShardEvent {
        let mut stats = Box::new(StatsSet::new(1, 1));
        for _ in 0..requests {
            stats.steps[0].record_response(200, None, 0, 1000);
        }
        ShardEvent::Interval(ShardInterval {
            shard,
            index,
            stats,
            active_connections: 1,
        })
    }

    fn final_of(shard: usize) -> ShardEvent {
        ShardEvent::Final(ShardFinal {
            driver: "legacy",
            ..ShardFinal::empty(shard)
        })
    }

    #[test]
    fn intervals_wait_for_every_shard_and_totals_are_exact() {
        let mut c = Collector::new(2, 1, 1, Vec::new());
        let mut out = Vec::new();
        c.take(interval(0, 1, 5), &[], &mut out);
        assert!(out.is_empty(), "shard 1 has not reported interval 1");
        c.take(interval(0, 2, 5), &[], &mut out);
        c.take(interval(1, 1, 3), &[], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].summary.requests, 8);
        assert_eq!(out[0].summary.active_connections, 2);
        // Shard 1 skipped interval 2 (folded into 3).
        c.take(interval(1, 3, 4), &[], &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].summary.requests, 5);
        c.take(final_of(0), &[], &mut out);
        c.take(final_of(1), &[], &mut out);
        assert!(c.done());
        assert_eq!(out.len(), 3);
        assert_eq!(c.totals.total().requests, 17);
    }
}
