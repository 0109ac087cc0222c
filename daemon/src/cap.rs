//! The limits a run is held to while it goes, for what cannot be known before it starts: a
//! closed-model or WebSocket run has no schedule, so its rate is measured each second against
//! `--max-rate`; and every run has a wall-clock deadline (its planned end, plus its graceful
//! stop, plus slack; at most `--max-duration` plus the graceful stop), past which the daemon
//! stops it whatever the engine thinks.
//!
//! It only judges: the runner stops the run and records the message this returns.

use std::time::Duration;

use engine::Plan;

/// Late beyond the graceful stop before the daemon steps in (start-up, the last interval).
const DEADLINE_SLACK: Duration = Duration::from_secs(10);

/// What a running run is held to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RuntimeCap {
    /// Highest measured rate of any second (set for runs with a closed or WebSocket part).
    pub max_rate_per_s: Option<f64>,
    /// Longest the run may go from the engine's start.
    pub deadline: Option<Duration>,
}

impl RuntimeCap {
    /// The cap for a planned run under the operator's `--max-rate` and `--max-duration`.
    pub fn for_plan(plan: &Plan, max_rate: Option<f64>, max_duration: Option<Duration>) -> Self {
        // An open run's peak rate was checked against the limit before it was accepted.
        let max_rate_per_s = max_rate.filter(|_| !plan.is_open());
        let graceful = plan
            .scenarios
            .iter()
            .map(|s| s.graceful_stop)
            .max()
            .unwrap_or_default();
        let end = match (plan.planned_end(), max_duration) {
            (Some(e), Some(m)) => Some(e.min(m)),
            (e, m) => e.or(m),
        };
        Self {
            max_rate_per_s,
            deadline: end.map(|e| e + graceful + DEADLINE_SLACK),
        }
    }

    /// Why a second that measured `rate_per_s` breaks the cap, if it does.
    pub fn judge_rate(&self, rate_per_s: f64) -> Option<String> {
        let max = self.max_rate_per_s?;
        (rate_per_s > max).then(|| {
            format!(
                "stopped by the daemon: a measured rate of {rate_per_s:.0}/s is over its limit of {max}/s (--max-rate)"
            )
        })
    }

    /// Why a run that has gone for `elapsed` breaks the cap, if it does.
    pub fn judge_elapsed(&self, elapsed: Duration) -> Option<String> {
        let deadline = self.deadline?;
        (elapsed > deadline).then(|| {
            format!(
                "stopped by the daemon: still running after {}s, past its planned end, graceful stop and {}s of slack",
                deadline.as_secs(),
                DEADLINE_SLACK.as_secs()
            )
        })
    }
}

impl std::fmt::Display for RuntimeCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.max_rate_per_s {
            Some(r) => write!(f, "rate {r}/s measured")?,
            None => write!(f, "rate unchecked")?,
        }
        match self.deadline {
            Some(d) => write!(f, ", stopped after {}s", d.as_secs()),
            None => write!(f, ", no deadline"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_only_what_it_was_given() {
        let none = RuntimeCap::default();
        assert_eq!(none.judge_rate(1e9), None);
        assert_eq!(none.judge_elapsed(Duration::from_secs(1 << 30)), None);
        let cap = RuntimeCap {
            max_rate_per_s: Some(100.0),
            deadline: Some(Duration::from_secs(5)),
        };
        assert_eq!(cap.judge_rate(100.0), None);
        assert!(cap.judge_rate(101.0).unwrap().contains("--max-rate"));
        assert_eq!(cap.judge_elapsed(Duration::from_secs(5)), None);
        assert!(cap.judge_elapsed(Duration::from_secs(6)).is_some());
    }
}
