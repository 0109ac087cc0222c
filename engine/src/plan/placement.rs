//! Where a run executes: `[engine]`'s CPUs and shard count, the io driver and the local
//! addresses connections bind to.
//!
//! It checks what the file asks for against what this process may use; it pins nothing and
//! opens nothing (the shards do, from the plan).

use std::net::IpAddr;

use crate::plan::checker::Checker;
use crate::scenario::ScenarioSpec;

/// More shards than this is a typo, not a machine (and would allocate per shard).
const MAX_THREADS: usize = 1024;

/// Which io driver the shards use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverChoice {
    /// io_uring with tuned setup flags, falling back to plain io_uring, then to epoll.
    Auto,
    /// io_uring only (fails the run if it cannot be set up).
    Uring,
    /// monoio's legacy (epoll) driver.
    Legacy,
}

impl DriverChoice {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Self::Auto),
            "uring" | "io_uring" => Some(Self::Uring),
            "legacy" | "epoll" => Some(Self::Legacy),
            _ => None,
        }
    }
}

/// `driver`, defaulting to `Auto`.
pub(crate) fn check_driver(c: &mut Checker<'_>, spec: &ScenarioSpec) -> DriverChoice {
    match &spec.engine.driver {
        Some(d) => DriverChoice::parse(d.get_ref()).unwrap_or_else(|| {
            c.error(
                &d.span(),
                "driver must be \"auto\", \"uring\" or \"legacy\"",
            );
            DriverChoice::Auto
        }),
        None => DriverChoice::Auto,
    }
}

/// `local_ips`, expanded (empty: the kernel picks).
pub(crate) fn check_local_ips(c: &mut Checker<'_>, spec: &ScenarioSpec) -> Vec<IpAddr> {
    match &spec.engine.local_ips {
        Some(l) => crate::net::source::parse_local_ips(l.get_ref()).unwrap_or_else(|e| {
            c.error(&l.span(), format!("local_ips: {e}"));
            Vec::new()
        }),
        None => Vec::new(),
    }
}

/// CPUs to pin shards to, one shard each: `cpus` or `threads` or every available CPU, no more
/// shards than connections.
pub(crate) fn check_cpus(
    c: &mut Checker<'_>,
    spec: &ScenarioSpec,
    connections: u32,
) -> Vec<Option<usize>> {
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|id| id.id)
        .collect();
    let mut cpus: Vec<Option<usize>> = match &spec.engine.cpus {
        Some(list) => {
            let mut out = Vec::new();
            for &cpu in list.get_ref() {
                if available.contains(&(cpu as usize)) {
                    out.push(Some(cpu as usize));
                } else {
                    c.error(
                        &list.span(),
                        format!(
                            "cpu {cpu} is not available to this process (available: {available:?})"
                        ),
                    );
                }
            }
            out
        }
        None if available.is_empty() => vec![None],
        None => available.iter().map(|&id| Some(id)).collect(),
    };
    if let Some(t) = &spec.engine.threads {
        let n = *t.get_ref() as usize;
        if n == 0 || n > MAX_THREADS {
            c.error(
                &t.span(),
                format!("threads must be between 1 and {MAX_THREADS}"),
            );
        } else if spec.engine.cpus.is_some() {
            if n != cpus.len() {
                c.error(
                    &t.span(),
                    format!(
                        "threads ({n}) disagrees with the {} cpus listed",
                        cpus.len()
                    ),
                );
            }
        } else {
            // More threads than CPUs: wrap around (shards share CPUs) rather than refuse.
            cpus = (0..n)
                .map(|i| available.get(i % available.len().max(1)).copied())
                .collect();
        }
    }
    // A shard with no connection would do nothing.
    cpus.truncate((connections as usize).max(1));
    if cpus.is_empty() {
        cpus.push(None);
    }
    cpus
}
