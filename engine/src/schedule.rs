//! The open-model arrival schedule: when the k-th request of a run is intended to start.
//!
//! Rates are piecewise linear over stages (a constant rate is one flat stage), so the cumulative
//! number of arrivals N(t) is piecewise quadratic and arrival k is at the t where N(t) = k. Time
//! is always computed from the run origin (`origin + t_k`), never accumulated from sleeps, so
//! timer jitter cannot drift the rate. Shard i of n takes arrivals i, i+n, i+2n… of the one
//! global schedule, so shards interleave evenly instead of bursting in phase.

/// One stage: move linearly from the previous rate to `target_rate_per_s` over `duration_ns`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateStage {
    pub duration_ns: u64,
    pub target_rate_per_s: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Segment {
    start_ns: u64,
    duration_ns: u64,
    r0: f64,
    r1: f64,
    /// Arrivals (fractional) before this segment starts.
    count_before: f64,
}

impl Segment {
    fn count(&self) -> f64 {
        (self.r0 + self.r1) * 0.5 * (self.duration_ns as f64 / 1e9)
    }

    /// Seconds into the segment at which `c` arrivals of it have happened.
    fn offset_s(&self, c: f64) -> f64 {
        let d = self.duration_ns as f64 / 1e9;
        let a = (self.r1 - self.r0) / (2.0 * d);
        let b = self.r0;
        // Root of a·τ² + b·τ − c = 0 in the cancellation-free form 2c / (b + √(b² + 4ac)).
        let denom = b + (b * b + 4.0 * a * c).max(0.0).sqrt();
        if denom <= 0.0 {
            0.0
        } else {
            2.0 * c / denom
        }
    }
}

/// A whole run's arrival schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    segments: Vec<Segment>,
    total: u64,
}

impl Schedule {
    /// A schedule starting at `start_rate_per_s` and going through `stages` in order.
    /// Callers validate: rates finite and ≥ 0, durations > 0.
    pub fn new(start_rate_per_s: f64, stages: &[RateStage]) -> Self {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut t, mut rate, mut count) = (0u64, start_rate_per_s, 0.0f64);
        for stage in stages {
            let seg = Segment {
                start_ns: t,
                duration_ns: stage.duration_ns,
                r0: rate,
                r1: stage.target_rate_per_s,
                count_before: count,
            };
            count += seg.count();
            t += stage.duration_ns;
            rate = stage.target_rate_per_s;
            segments.push(seg);
        }
        // Arrival k exists when N(t) reaches k within the schedule: k = 0 … ⌈count⌉−1.
        let total = count.ceil().max(0.0) as u64;
        Self { segments, total }
    }

    /// A constant rate for a duration.
    pub fn constant(rate_per_s: f64, duration_ns: u64) -> Self {
        Self::new(
            rate_per_s,
            &[RateStage {
                duration_ns,
                target_rate_per_s: rate_per_s,
            }],
        )
    }

    /// Arrivals intended before `t_ns` (fractional): N(t), the area under the rate.
    pub fn arrivals_before(&self, t_ns: u64) -> f64 {
        let Some(s) = self
            .segments
            .iter()
            .find(|s| t_ns < s.start_ns + s.duration_ns)
        else {
            return self
                .segments
                .last()
                .map_or(0.0, |s| s.count_before + s.count());
        };
        let tau = t_ns.saturating_sub(s.start_ns) as f64 / 1e9;
        let d = s.duration_ns as f64 / 1e9;
        s.count_before + s.r0 * tau + (s.r1 - s.r0) * tau * tau / (2.0 * d)
    }

    /// The same shape and rates compressed (or stretched) to last `total_ns`: for smoke runs.
    pub fn scaled_to(&self, total_ns: u64) -> Schedule {
        let end = self.end_ns().max(1);
        let factor = total_ns as f64 / end as f64;
        let start = self.segments.first().map_or(0.0, |s| s.r0);
        let stages: Vec<RateStage> = self
            .segments
            .iter()
            .map(|s| RateStage {
                duration_ns: ((s.duration_ns as f64 * factor) as u64).max(1),
                target_rate_per_s: s.r1,
            })
            .collect();
        Schedule::new(start, &stages)
    }

    /// The schedule's value (a rate, or a number of virtual users) at `t_ns` from the origin;
    /// the last stage's target after the end.
    pub fn value_at(&self, t_ns: u64) -> f64 {
        for s in &self.segments {
            if t_ns < s.start_ns + s.duration_ns {
                let into = t_ns.saturating_sub(s.start_ns) as f64 / s.duration_ns.max(1) as f64;
                return s.r0 + (s.r1 - s.r0) * into;
            }
        }
        self.segments.last().map_or(0.0, |s| s.r1)
    }

    /// Total arrivals in the schedule.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When the schedule ends, in ns from the origin.
    pub fn end_ns(&self) -> u64 {
        self.segments
            .last()
            .map_or(0, |s| s.start_ns + s.duration_ns)
    }

    /// Highest rate anywhere in the schedule.
    pub fn peak_rate_per_s(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.r0.max(s.r1))
            .fold(0.0, f64::max)
    }

    /// Intended start of arrival `k` (0-based) in ns from the origin; `None` past the end.
    /// `hint` is a segment index to start searching from (cursors pass their last one).
    fn time_of(&self, k: u64, hint: &mut usize) -> Option<u64> {
        if k >= self.total {
            return None;
        }
        let kf = k as f64;
        while let Some(seg) = self.segments.get(*hint) {
            let end = seg.count_before + seg.count();
            if kf < end || *hint + 1 == self.segments.len() {
                let offset_ns = (seg.offset_s(kf - seg.count_before) * 1e9).round() as u64;
                return Some(seg.start_ns + offset_ns.min(seg.duration_ns));
            }
            *hint += 1;
        }
        None
    }

    /// A cursor over the arrivals that shard `shard` of `shards` owns.
    pub fn cursor(&self, shard: usize, shards: usize) -> Cursor {
        Cursor {
            next_k: shard as u64,
            step: shards.max(1) as u64,
            segment: 0,
        }
    }
}

/// Walks one shard's arrivals in order; O(1) amortized per arrival.
#[derive(Clone, Debug)]
pub struct Cursor {
    next_k: u64,
    step: u64,
    segment: usize,
}

impl Cursor {
    /// Intended time of the next arrival without consuming it.
    pub fn peek(&mut self, schedule: &Schedule) -> Option<u64> {
        schedule.time_of(self.next_k, &mut self.segment)
    }

    /// Consumes the arrival returned by the last `peek`.
    pub fn advance(&mut self) {
        self.next_k += self.step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn all_times(s: &Schedule, shard: usize, shards: usize) -> Vec<u64> {
        let mut c = s.cursor(shard, shards);
        let mut out = Vec::new();
        while let Some(t) = c.peek(s) {
            out.push(t);
            c.advance();
        }
        out
    }

    #[test]
    fn constant_rate_is_evenly_spaced_from_origin() {
        let s = Schedule::constant(1000.0, 2 * S);
        let t = all_times(&s, 0, 1);
        assert_eq!(t.len(), 2000);
        assert_eq!(t[0], 0);
        assert_eq!(t[1], 1_000_000);
        assert_eq!(t[1999], 1_999_000_000);
    }

    #[test]
    fn shards_interleave_and_cover_every_arrival_once() {
        let s = Schedule::constant(333.0, 3 * S);
        let mut merged: Vec<u64> = (0..3).flat_map(|i| all_times(&s, i, 3)).collect();
        merged.sort_unstable();
        assert_eq!(merged, all_times(&s, 0, 1));
    }

    #[test]
    fn ramp_counts_match_the_area_under_the_rate() {
        // 0 → 1000/s over 10 s, then hold 1000/s for 5 s: 5000 + 5000 arrivals.
        let stages = [
            RateStage {
                duration_ns: 10 * S,
                target_rate_per_s: 1000.0,
            },
            RateStage {
                duration_ns: 5 * S,
                target_rate_per_s: 1000.0,
            },
        ];
        let s = Schedule::new(0.0, &stages);
        let t = all_times(&s, 0, 1);
        assert_eq!(t.len(), 10_000);
        assert_eq!(s.end_ns(), 15 * S);
        // Half-way through the ramp (5 s), N = 1000 × 5² / (2 × 10) = 1250.
        let by_5s = t.iter().filter(|&&x| x < 5 * S).count();
        assert!((1249..=1251).contains(&by_5s), "{by_5s}");
        // Monotone and within the schedule.
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        assert!(*t.last().unwrap() < 15 * S);
        // Ramp-down to zero also terminates.
        let down = Schedule::new(
            100.0,
            &[RateStage {
                duration_ns: 2 * S,
                target_rate_per_s: 0.0,
            }],
        );
        assert_eq!(all_times(&down, 0, 1).len(), 100);
        assert_eq!(down.peak_rate_per_s(), 100.0);
    }

    #[test]
    fn scaling_keeps_rates_and_shape() {
        let s = Schedule::new(
            0.0,
            &[
                RateStage {
                    duration_ns: 60 * S,
                    target_rate_per_s: 100.0,
                },
                RateStage {
                    duration_ns: 60 * S,
                    target_rate_per_s: 100.0,
                },
            ],
        );
        let small = s.scaled_to(2 * S);
        assert_eq!(small.end_ns(), 2 * S);
        assert_eq!(small.peak_rate_per_s(), 100.0);
        // 1 s ramp 0→100 (50) + 1 s at 100 (100).
        assert_eq!(small.total(), 150);
    }

    #[test]
    fn arrivals_before_counts_the_area() {
        let s = Schedule::new(
            0.0,
            &[
                RateStage {
                    duration_ns: 10 * S,
                    target_rate_per_s: 1000.0,
                },
                RateStage {
                    duration_ns: 5 * S,
                    target_rate_per_s: 1000.0,
                },
            ],
        );
        assert_eq!(s.arrivals_before(0), 0.0);
        assert!((s.arrivals_before(5 * S) - 1250.0).abs() < 1e-6);
        assert!((s.arrivals_before(12 * S) - 7000.0).abs() < 1e-6);
        assert!((s.arrivals_before(99 * S) - 10_000.0).abs() < 1e-6);
    }

    #[test]
    fn value_follows_the_stages() {
        let s = Schedule::new(
            0.0,
            &[
                RateStage {
                    duration_ns: 10 * S,
                    target_rate_per_s: 100.0,
                },
                RateStage {
                    duration_ns: 10 * S,
                    target_rate_per_s: 100.0,
                },
                RateStage {
                    duration_ns: 10 * S,
                    target_rate_per_s: 0.0,
                },
            ],
        );
        assert_eq!(s.value_at(0), 0.0);
        assert_eq!(s.value_at(5 * S), 50.0);
        assert_eq!(s.value_at(15 * S), 100.0);
        assert_eq!(s.value_at(25 * S), 50.0);
        assert_eq!(s.value_at(99 * S), 0.0);
    }

    #[test]
    fn zero_rate_stage_then_rate() {
        let stages = [
            RateStage {
                duration_ns: S,
                target_rate_per_s: 0.0,
            },
            RateStage {
                duration_ns: S,
                target_rate_per_s: 0.0,
            },
            RateStage {
                duration_ns: S,
                target_rate_per_s: 100.0,
            },
        ];
        let t = all_times(&Schedule::new(0.0, &stages), 0, 1);
        assert_eq!(t.len(), 50);
        assert!(t.iter().all(|&x| x >= 2 * S));
    }
}
