//! What `[[setup]]` and `[[teardown]]` did, reported apart from the load: their requests never
//! enter the load's percentiles or error rate.

use serde::{Deserialize, Serialize};

/// One setup or teardown step over all its iterations.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PhaseStepResult {
    /// "setup" or "teardown".
    pub phase: String,
    pub name: String,
    pub requests: u64,
    /// Iterations that failed (an error status, a failed check or capture, a lost connection).
    pub failed: u64,
    pub checks_passed: u64,
    pub checks_failed: u64,
    pub latency_ms_mean: f64,
    pub latency_ms_max: f64,
    /// The first failure: the iteration, what went wrong, and the response's status and body.
    pub failure: Option<String>,
}
