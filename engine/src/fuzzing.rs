//! Entry points for the fuzz targets (`fuzz/`) into parts that are private to the shards.
//! Compiled only with the `fuzzing` feature, which only the fuzz crate enables.

use crate::metrics::stats::Stats;
use crate::plan::Plan;
use crate::scenario::{self, Files, Source};
use crate::shard::conn::inspect::{inspect, Response};

/// A scenario's steps, to run their checks and captures on arbitrary responses.
pub struct Inspector {
    plan: Plan,
}

/// What one step made of a response.
pub struct Inspected {
    pub step: String,
    /// False when a capture found nothing (counted as `capture_failed`).
    pub captured: bool,
    /// Each variable of the journey after the step, by name.
    pub vars: Vec<(String, Vec<u8>)>,
}

impl Inspector {
    /// Plans `scenario` (a loopback target, no files).
    pub fn new(scenario: &str) -> Result<Self, String> {
        let source = Source::in_memory("fuzz.toml", scenario, Files::Disk);
        let spec = scenario::parse(&source).map_err(|e| format!("{e:?}"))?;
        let plan = Plan::from_spec(&spec, &source).map_err(|e| e.to_string())?;
        Ok(Self { plan })
    }

    /// Runs every step's checks and captures on one response.
    pub fn inspect(&self, status: u16, head: &[u8], body: &[u8]) -> Vec<Inspected> {
        let mut out = Vec::new();
        for scenario in &self.plan.scenarios {
            let names = &scenario.journey.vars;
            for step in &scenario.journey.steps {
                let mut vars = vec![Vec::new(); names.len()];
                let mut stats = Stats::new();
                let response = Response {
                    status,
                    head,
                    body,
                    latency_ns: 1_000,
                };
                let captured = inspect(step, &response, &mut vars, &mut stats);
                out.push(Inspected {
                    step: step.name.clone(),
                    captured,
                    vars: names.iter().cloned().zip(vars).collect(),
                });
            }
        }
        out
    }
}
