//! Merges what shards report into one-second run intervals and the run's totals.
//!
//! Interval k is emitted once every shard still running has reported k (or something later:
//! a shard whose channel was full folds k into k+1). Totals are the exact merge of every
//! interval plus each shard's final remainder. Emptied buckets go back to their shard.

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

struct Pending {
    index: u64,
    stats: Box<StatsSet>,
    active: u32,
}

/// The collector's state for one run.
pub struct Collector {
    shards: usize,
    steps: usize,
    scenarios: usize,
    /// Open model: each scenario's schedule and start offset (ns), for each second's
    /// requested arrivals; empty when some scenario is closed.
    schedules: Vec<(u64, Schedule)>,
    last_seen: Vec<u64>,
    finished: Vec<bool>,
    pending: VecDeque<Pending>,
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
            steps,
            scenarios,
            schedules,
            last_seen: vec![0; shards],
            finished: vec![false; shards],
            pending: VecDeque::new(),
            totals: Box::new(StatsSet::new(steps, scenarios)),
            finals: Vec::with_capacity(shards),
        }
    }

    pub fn done(&self) -> bool {
        self.finished.iter().all(|&f| f)
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
                self.last_seen[shard] = iv.index;
                self.totals.merge(&iv.stats);
                let slot = match self.pending.iter_mut().find(|p| p.index == iv.index) {
                    Some(p) => p,
                    None => {
                        let at = self
                            .pending
                            .iter()
                            .position(|p| p.index > iv.index)
                            .unwrap_or(self.pending.len());
                        self.pending.insert(
                            at,
                            Pending {
                                index: iv.index,
                                stats: Box::new(StatsSet::new(self.steps, self.scenarios)),
                                active: 0,
                            },
                        );
                        &mut self.pending[at]
                    }
                };
                slot.stats.merge(&iv.stats);
                slot.active += iv.active_connections;
                iv.stats.reset();
                if let Some(tx) = recycle.get(shard) {
                    let _ = tx.try_send(iv.stats);
                }
            }
            ShardEvent::Final(f) => {
                let shard = f.shard.min(self.shards - 1);
                self.finished[shard] = true;
                self.totals.merge(&f.rest);
                self.finals.push(f);
            }
        }
        let complete_upto = (0..self.shards)
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
                let requested = (!self.schedules.is_empty()).then(|| {
                    let end = p.index * 1_000_000_000;
                    let n: f64 = self
                        .schedules
                        .iter()
                        .map(|(offset, s)| {
                            let before = |t: u64| match t.checked_sub(*offset) {
                                Some(t) => s.arrivals_before(t),
                                None => 0.0,
                            };
                            before(end) - before(end - 1_000_000_000)
                        })
                        .sum();
                    (n * 1000.0).round() / 1000.0
                });
                out.push(RunInterval {
                    summary: IntervalSummary::of(p.index, &p.stats, p.active, requested),
                    stats: p.stats,
                });
            }
        }
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
            shard,
            rest: Box::new(StatsSet::new(1, 1)),
            driver: "legacy",
            cpu: None,
            failure: None,
            feeder_exhausted: false,
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
