//! A validated `[capacity]` section: the SLOs, the rates and how each level is held. The search
//! that uses it is `run::capacity`; its renderers are in `report::capacity`.

use std::time::Duration;

use crate::plan::threshold::{Metric, Threshold};

/// A validated `[capacity]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct CapacityPlan {
    pub slo: Vec<Threshold>,
    pub start_rate: f64,
    pub max_rate: f64,
    /// Step-up multiplier before the first failure.
    pub factor: f64,
    /// Each level's length.
    pub hold: Duration,
    /// The start of each level that is not judged.
    pub warmup: Duration,
    /// Bisection stops when (fail − pass) / pass is at most this.
    pub precision: f64,
}

impl CapacityPlan {
    /// Connections a level needs so that the generator never caps concurrency below what the
    /// SLO allows (Little's law: rate × latency limit), with slack.
    pub fn connections_needed(&self) -> u32 {
        let limit_s = self
            .slo
            .iter()
            .filter_map(|t| match t.metric {
                Metric::Latency(_) | Metric::Service(_) | Metric::Iteration(_) => {
                    Some(t.limit / 1e6)
                }
                _ => None,
            })
            .fold(0.0f64, f64::max);
        let limit_s = if limit_s > 0.0 { limit_s } else { 1.0 };
        ((self.max_rate * limit_s * 1.5).ceil() as u32).clamp(32, 10_000)
    }

    /// A few seconds in all, for `--smoke`.
    pub fn smoke(&mut self) {
        self.hold = self.hold.min(Duration::from_millis(1200));
        self.warmup = self.warmup.min(Duration::from_millis(200));
        self.max_rate = self.max_rate.min(self.start_rate * self.factor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_follow_littles_law() {
        let plan = CapacityPlan {
            slo: vec![crate::plan::threshold::parse("p99 < 500ms", &[]).expect("slo")],
            start_rate: 10.0,
            max_rate: 1000.0,
            factor: 2.0,
            hold: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            precision: 0.05,
        };
        assert_eq!(plan.connections_needed(), 750);
    }
}
