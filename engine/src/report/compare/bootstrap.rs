//! The bootstrap behind a comparison's verdicts: resample each run's per-second figures with
//! replacement, recompute the statistic (median, or mean for error rates) of each, and take the
//! spread of the change between them as its confidence interval.
//!
//! Seeded, so the same two results always give the same verdict. It refuses to pretend with
//! too little data: the caller decides what "too few seconds" means.

/// How the change between two statistics is expressed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Effect {
    /// candidate ÷ baseline − 1 (latencies, rates).
    Relative,
    /// candidate − baseline (error fractions).
    Absolute,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Statistic {
    Median,
    Mean,
}

/// A change and its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub baseline: f64,
    pub candidate: f64,
    pub change: f64,
    pub low: f64,
    pub high: f64,
}

/// Fixed seed: verdicts are reproducible.
const SEED: u64 = 0x0001_0add_5eed;

fn stat(kind: Statistic, values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    match kind {
        Statistic::Mean => values.iter().sum::<f64>() / values.len() as f64,
        Statistic::Median => {
            let n = values.len();
            let (_, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
            let upper = *upper;
            if n % 2 == 1 {
                upper
            } else {
                // The lower middle is the largest of the lower half.
                let lower = values[..n / 2]
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max);
                (lower + upper) / 2.0
            }
        }
    }
}

fn effect(kind: Effect, baseline: f64, candidate: f64) -> f64 {
    match kind {
        Effect::Absolute => candidate - baseline,
        Effect::Relative if baseline > 0.0 => candidate / baseline - 1.0,
        Effect::Relative if candidate > 0.0 => f64::INFINITY,
        Effect::Relative => 0.0,
    }
}

/// `confidence` (e.g. 0.95) two-sided percentile interval of the change, from `resamples`
/// bootstrap resamples of each side. Both sides must be non-empty.
pub fn estimate(
    baseline: &[f64],
    candidate: &[f64],
    statistic: Statistic,
    kind: Effect,
    confidence: f64,
    resamples: usize,
) -> Estimate {
    let mut b = baseline.to_vec();
    let mut c = candidate.to_vec();
    let b_stat = stat(statistic, &mut b);
    let c_stat = stat(statistic, &mut c);
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut changes = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for x in b.iter_mut() {
            *x = baseline[rng.usize(..baseline.len())];
        }
        for x in c.iter_mut() {
            *x = candidate[rng.usize(..candidate.len())];
        }
        changes.push(effect(
            kind,
            stat(statistic, &mut b),
            stat(statistic, &mut c),
        ));
    }
    changes.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    let at = |q: f64| {
        if changes.is_empty() {
            effect(kind, b_stat, c_stat)
        } else {
            let i = (q * (changes.len() - 1) as f64).round() as usize;
            changes[i.min(changes.len() - 1)]
        }
    };
    Estimate {
        baseline: b_stat,
        candidate: c_stat,
        change: effect(kind, b_stat, c_stat),
        low: at(tail),
        high: at(1.0 - tail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(stat(Statistic::Median, &mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(stat(Statistic::Median, &mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(stat(Statistic::Mean, &mut [1.0, 2.0]), 1.5);
        assert!(stat(Statistic::Median, &mut []).is_nan());
    }

    #[test]
    fn a_clear_shift_has_an_interval_that_excludes_zero() {
        let base: Vec<f64> = (0..30).map(|i| 1000.0 + f64::from(i % 7) * 20.0).collect();
        let slow: Vec<f64> = base.iter().map(|x| x * 1.5).collect();
        let e = estimate(
            &base,
            &slow,
            Statistic::Median,
            Effect::Relative,
            0.95,
            2000,
        );
        assert!((e.change - 0.5).abs() < 1e-9, "{e:?}");
        assert!(e.low > 0.4 && e.high < 0.6, "{e:?}");
    }

    #[test]
    fn the_same_distribution_has_an_interval_around_zero() {
        let a: Vec<f64> = (0..40).map(|i| 900.0 + f64::from((i * 37) % 100)).collect();
        let b: Vec<f64> = (0..40)
            .map(|i| 900.0 + f64::from((i * 53 + 11) % 100))
            .collect();
        let e = estimate(&a, &b, Statistic::Median, Effect::Relative, 0.95, 2000);
        assert!(e.low < 0.0 && e.high > 0.0, "{e:?}");
        assert!(e.high - e.low < 0.1, "{e:?}");
        // Reproducible.
        assert_eq!(
            e,
            estimate(&a, &b, Statistic::Median, Effect::Relative, 0.95, 2000)
        );
    }

    #[test]
    fn absolute_means_for_error_rates() {
        let e = estimate(
            &[0.0, 0.0, 0.0, 0.0],
            &[0.1, 0.1, 0.1, 0.1],
            Statistic::Mean,
            Effect::Absolute,
            0.9,
            500,
        );
        assert!((e.change - 0.1).abs() < 1e-12 && (e.low - 0.1).abs() < 1e-12);
        assert_eq!(effect(Effect::Relative, 0.0, 5.0), f64::INFINITY);
        assert_eq!(effect(Effect::Relative, 0.0, 0.0), 0.0);
    }
}
