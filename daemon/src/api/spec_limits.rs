//! The operator's limits checked on a scenario as written, before it is planned: planning
//! builds every upload payload and pre-encodes every request body, and a run allocates
//! histograms per step and per shard, so a small submission can ask for gigabytes. This module
//! counts what the spec asks for (shards, CPUs, local addresses, steps, payload bytes, the
//! graceful stop) from the text alone, allocating nothing in proportion to it.
//!
//! It refuses to judge meaning: a value it cannot read is left for the planner to report with
//! its location, and limits that need the plan (connections, rate, duration) are in `policy`.

use std::collections::BTreeMap;
use std::time::Duration;

use engine::scenario::{RequestSpec, ScenarioSpec, StepSpec, TaskSpec};
use engine::units;

/// More `local_ips` entries than this is refused before any is expanded.
pub const MAX_LOCAL_IP_ENTRIES: usize = 1024;

/// What the spec-level checks need of the operator's limits.
#[derive(Clone, Copy, Debug)]
pub struct SpecLimits {
    /// Most shards (`[engine] threads`, or entries in `cpus`).
    pub max_threads: usize,
    /// Most steps over every scenario and task.
    pub max_steps: usize,
    /// Most bytes of request bodies and upload payloads the plan would hold, summed over steps.
    pub max_payload_bytes: u64,
    /// Longest run; an explicit `graceful_stop` longer than this is refused too.
    pub max_duration: Option<Duration>,
}

/// The first limit the spec goes over, as a message naming it and its flag.
pub fn check(
    spec: &ScenarioSpec,
    files: &BTreeMap<String, Vec<u8>>,
    limits: &SpecLimits,
) -> Result<(), String> {
    check_engine(spec, limits)?;
    let journeys = journeys(spec);
    let steps: usize = journeys.iter().map(|j| j.steps()).sum();
    if steps > limits.max_steps {
        return Err(format!(
            "{steps} steps is over this daemon's limit of {} (--max-steps)",
            limits.max_steps
        ));
    }
    let mut payload: u64 = 0;
    for j in &journeys {
        payload = payload.saturating_add(j.payload_bytes(&spec.request, files));
    }
    if payload > limits.max_payload_bytes {
        return Err(format!(
            "request bodies and upload payloads of {payload} bytes are over this daemon's limit of {} bytes (--max-payload-bytes)",
            limits.max_payload_bytes
        ));
    }
    if let Some(max) = limits.max_duration {
        let stops = std::iter::once(&spec.load)
            .chain(spec.scenarios.values().map(|s| &s.load))
            .filter_map(|l| l.graceful_stop.as_ref());
        for g in stops {
            if let Ok(d) = units::parse_duration(g.get_ref()) {
                if d > max {
                    return Err(format!(
                        "a graceful_stop of {} is over this daemon's limit of {} (--max-duration)",
                        units::format_duration(d),
                        units::format_duration(max)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `[engine]`: shards and CPUs against the limit, and how many `local_ips` entries there are.
fn check_engine(spec: &ScenarioSpec, limits: &SpecLimits) -> Result<(), String> {
    let e = &spec.engine;
    if let Some(t) = &e.threads {
        if *t.get_ref() > limits.max_threads as u64 {
            return Err(format!(
                "threads = {} is over this daemon's limit of {} (--max-threads)",
                t.get_ref(),
                limits.max_threads
            ));
        }
    }
    if let Some(cpus) = &e.cpus {
        if cpus.get_ref().len() > limits.max_threads {
            return Err(format!(
                "{} cpus is over this daemon's limit of {} (--max-threads)",
                cpus.get_ref().len(),
                limits.max_threads
            ));
        }
    }
    if let Some(ips) = &e.local_ips {
        if ips.get_ref().len() > MAX_LOCAL_IP_ENTRIES {
            return Err(format!(
                "{} local_ips entries is over this daemon's limit of {MAX_LOCAL_IP_ENTRIES}",
                ips.get_ref().len()
            ));
        }
    }
    Ok(())
}

/// One scenario's steps as written: its own steps and its tasks' steps.
struct JourneySpec<'a> {
    steps: &'a [StepSpec],
    tasks: &'a [TaskSpec],
}

impl JourneySpec<'_> {
    fn all(&self) -> impl Iterator<Item = &StepSpec> {
        self.steps
            .iter()
            .chain(self.tasks.iter().flat_map(|t| t.steps.iter()))
    }

    fn steps(&self) -> usize {
        self.all().count()
    }

    /// Bytes the plan would hold for this journey: each step's body (its own, else the
    /// `[request]` one, counted per step because each step's request is encoded on its own)
    /// plus the largest size of its upload. A journey without steps is the `[request]` alone.
    fn payload_bytes(&self, request: &RequestSpec, files: &BTreeMap<String, Vec<u8>>) -> u64 {
        let shared = body_bytes(
            request.body.as_ref().map(|b| b.get_ref().as_str()),
            request.body_file.as_ref().map(|f| f.get_ref().as_str()),
            files,
        );
        if self.steps() == 0 {
            return shared;
        }
        self.all().fold(0u64, |sum, step| {
            let own = body_bytes(
                step.body.as_ref().map(|b| b.get_ref().as_str()),
                step.body_file.as_ref().map(|f| f.get_ref().as_str()),
                files,
            );
            let body = if own > 0 { own } else { shared };
            sum.saturating_add(body).saturating_add(upload_bytes(step))
        })
    }
}

/// Every journey of the file: the top level's, then each `[scenarios]` section's.
fn journeys(spec: &ScenarioSpec) -> Vec<JourneySpec<'_>> {
    std::iter::once(JourneySpec {
        steps: &spec.steps,
        tasks: &spec.tasks,
    })
    .chain(spec.scenarios.values().map(|s| JourneySpec {
        steps: &s.steps,
        tasks: &s.tasks,
    }))
    .collect()
}

/// An inline body's length, or a bundled body file's size (a file not in the bundle is the
/// planner's error to report).
fn body_bytes(body: Option<&str>, file: Option<&str>, files: &BTreeMap<String, Vec<u8>>) -> u64 {
    let inline = body.map_or(0, str::len);
    let file = file.and_then(|f| files.get(f)).map_or(0, Vec::len);
    (inline as u64).saturating_add(file as u64)
}

/// The largest size a step's upload may send (sizes that do not parse count as none).
fn upload_bytes(step: &StepSpec) -> u64 {
    let Some(u) = &step.upload else {
        return 0;
    };
    let u = u.get_ref();
    let one = u.size.iter().map(String::as_str);
    let mix = u.sizes.iter().flatten().map(|s| s.size.as_str());
    one.chain(mix)
        .filter_map(|s| units::parse_bytes(s).ok())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::scenario::{self, Files, Source};

    fn spec(text: &str) -> ScenarioSpec {
        let source = Source::in_memory("s.toml", text, Files::Bundle(BTreeMap::new()));
        scenario::parse(&source).unwrap()
    }

    const LIMITS: SpecLimits = SpecLimits {
        max_threads: 4,
        max_steps: 3,
        max_payload_bytes: 1 << 20,
        max_duration: Some(Duration::from_secs(60)),
    };

    const HEAD: &str = "[target]\nurl = \"http://127.0.0.1:1/\"\n";

    #[test]
    fn within_limits_passes() {
        let s = spec(&format!(
            "{HEAD}[engine]\nthreads = 4\n[[steps]]\npath = \"/\"\nbody = \"abc\"\n"
        ));
        assert_eq!(check(&s, &BTreeMap::new(), &LIMITS), Ok(()));
    }

    #[test]
    fn each_limit_is_named() {
        let none = BTreeMap::new();
        let cases = [
            (format!("{HEAD}[engine]\nthreads = 1024\n"), "--max-threads"),
            (
                format!("{HEAD}[engine]\ncpus = [0,1,2,3,4]\n"),
                "--max-threads",
            ),
            (
                format!("{HEAD}{}", "[[steps]]\npath = \"/\"\n".repeat(4)),
                "--max-steps",
            ),
            (
                format!("{HEAD}[[steps]]\npath = \"/\"\nupload = {{ size = \"64MiB\" }}\n"),
                "--max-payload-bytes",
            ),
            (
                format!("{HEAD}[load]\ngraceful_stop = \"2h\"\n"),
                "--max-duration",
            ),
        ];
        for (text, flag) in cases {
            let e = check(&spec(&text), &none, &LIMITS).unwrap_err();
            assert!(e.contains(flag), "{text}: {e}");
        }
        let ips: Vec<String> = (0..1025)
            .map(|i| format!("\"10.0.{}.{}\"", i / 250, i % 250))
            .collect();
        let text = format!("{HEAD}[engine]\nlocal_ips = [{}]\n", ips.join(","));
        assert!(check(&spec(&text), &none, &LIMITS)
            .unwrap_err()
            .contains("local_ips"));
    }

    #[test]
    fn a_body_file_counts_once_per_step_that_sends_it() {
        let files = BTreeMap::from([("big.bin".to_string(), vec![0u8; 400 << 10])]);
        let text = format!(
            "{HEAD}[request]\nbody_file = \"big.bin\"\n{}",
            "[[steps]]\npath = \"/\"\n".repeat(3)
        );
        let e = check(&spec(&text), &files, &LIMITS).unwrap_err();
        assert!(e.contains("--max-payload-bytes"), "{e}");
        let one = format!("{HEAD}[request]\nbody_file = \"big.bin\"\n");
        assert_eq!(check(&spec(&one), &files, &LIMITS), Ok(()));
    }
}
