//! The one latency histogram constructor and its rendered summary.
//!
//! Every histogram in the system comes from [`new_histogram`], so any two merge exactly (same
//! bounds, same precision). Values are microseconds. Percentiles are computed only here, when a
//! report is rendered — never on the hot path.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest trackable value: one hour, in microseconds.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept (0.1% relative error).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram in microseconds, 1 µs … 1 h, 3 significant digits (~190 KiB).
pub type LatencyHistogram = Histogram<u64>;

/// Builds a latency histogram. The only constructor used anywhere.
pub fn new_histogram() -> LatencyHistogram {
    // Static bounds that hdrhistogram accepts; a failure here is a programming error.
    Histogram::new_with_bounds(1, HIGHEST_US, SIGNIFICANT_DIGITS)
        .expect("static histogram bounds are valid")
}

/// Records a duration given in nanoseconds, clamped into the histogram's range.
#[inline]
pub fn record_ns(histogram: &mut LatencyHistogram, ns: u64) {
    histogram.saturating_record(ns / 1000);
}

/// The value at quantile `q` (0..=1) in µs; 0 for an empty histogram (no samples, no latency).
pub fn quantile_us(h: &LatencyHistogram, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

/// The figures a report shows for one histogram, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub p99_99: u64,
    pub max: u64,
}

impl LatencySummary {
    /// Renders the summary of a histogram (all zero when it is empty).
    pub fn of(h: &LatencyHistogram) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            min: h.min(),
            mean: round2(h.mean()),
            stdev: round2(h.stdev()),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_merge_and_summarize() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for us in 1..=1000u64 {
            record_ns(&mut a, us * 1000);
        }
        record_ns(&mut b, 2_000_000_000_000); // 2000 s: beyond nothing, still within 1 h
        record_ns(&mut b, u64::MAX); // clamped, not lost
        a.add(&b).unwrap();
        let s = LatencySummary::of(&a);
        assert_eq!(s.count, 1002);
        assert_eq!(s.min, 1);
        assert!((499..=501).contains(&s.p50), "p50 {}", s.p50);
        assert!(s.max >= HIGHEST_US);
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(
            LatencySummary::of(&new_histogram()),
            LatencySummary::default()
        );
    }
}
