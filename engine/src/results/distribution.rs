//! The latency distribution a report plots: corrected and uncorrected latency at log-spaced
//! percentiles, read from the run's merged histograms.
//!
//! Percentiles are read here, when the result is built, and nowhere earlier; it refuses to
//! interpolate points the sample count does not resolve.

use serde::{Deserialize, Serialize};

use crate::metrics::histogram::LatencyHistogram;

/// One point of the latency distribution: the value at `percentile` (0–100), corrected (from
/// the intended start) and uncorrected (from the send).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PercentilePoint {
    pub percentile: f64,
    pub corrected_us: u64,
    pub uncorrected_us: u64,
}

impl PercentilePoint {
    /// Five points per decade of 1/(1−p), as far as the sample count resolves, plus the usual
    /// named percentiles and the maximum (100) last. Empty when nothing was recorded.
    pub fn distribution(corrected: &LatencyHistogram, uncorrected: &LatencyHistogram) -> Vec<Self> {
        let count = corrected.len();
        if count == 0 {
            return Vec::new();
        }
        let mut ps: Vec<f64> = (0..)
            .map(|k| 100.0 * (1.0 - 10f64.powf(-f64::from(k) / 5.0)))
            .take_while(|p| 100.0 / (100.0 - p) <= count as f64)
            .take(60)
            .chain(
                [50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 99.999]
                    .into_iter()
                    .filter(|p| 100.0 / (100.0 - p) <= count as f64),
            )
            .map(|p| (p * 1e6).round() / 1e6)
            .collect();
        ps.sort_by(f64::total_cmp);
        ps.dedup();
        let q = crate::metrics::histogram::quantile_us;
        let mut points: Vec<Self> = ps
            .into_iter()
            .map(|p| Self {
                percentile: p,
                corrected_us: q(corrected, p / 100.0),
                uncorrected_us: q(uncorrected, p / 100.0),
            })
            .collect();
        points.push(Self {
            percentile: 100.0,
            corrected_us: corrected.max(),
            uncorrected_us: uncorrected.max(),
        });
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_is_log_spaced_and_ends_at_the_max() {
        let mut corrected = crate::metrics::histogram::new_histogram();
        let mut uncorrected = crate::metrics::histogram::new_histogram();
        for us in 1..=10_000u64 {
            corrected.record(us).unwrap();
            uncorrected.record(us / 2 + 1).unwrap();
        }
        let d = PercentilePoint::distribution(&corrected, &uncorrected);
        assert!(d.windows(2).all(|w| w[0].percentile < w[1].percentile));
        assert!(d.windows(2).all(|w| w[0].corrected_us <= w[1].corrected_us));
        let last = d.last().unwrap();
        assert_eq!(
            (last.percentile, last.corrected_us),
            (100.0, corrected.max())
        );
        // 10,000 samples resolve p99.99 but not p99.999.
        assert!(d.iter().any(|p| p.percentile == 95.0));
        assert!(d.iter().any(|p| p.percentile == 99.99));
        assert!(!d.iter().any(|p| p.percentile == 99.999));
        assert!(PercentilePoint::distribution(
            &crate::metrics::histogram::new_histogram(),
            &uncorrected
        )
        .is_empty());
    }
}
