//! The environment manifest of a run: where and with what it was made (loadd version, kernel,
//! host, CPUs, start time, the scenario file's fingerprint), so a report read later or compared
//! says so.
//!
//! It only reads what the process can see of itself; it refuses to probe the network or the
//! target.

use serde::{Deserialize, Serialize};

/// Where and with what a run was made, so a report read later (or compared) says so.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Environment {
    pub loadd_version: String,
    /// `uname -r` (from /proc/sys/kernel/osrelease); empty where unknown.
    pub kernel: String,
    pub os: String,
    pub arch: String,
    pub hostname: String,
    /// CPUs this process could run on.
    pub cpus_available: usize,
    /// Wall-clock start of the run, Unix milliseconds.
    pub started_unix_ms: u64,
    /// SHA-256 (hex) of the scenario file as read; set by whoever read the file.
    #[serde(default)]
    pub scenario_sha256: Option<String>,
}

impl Environment {
    /// This process's environment, for a run that ended now after `elapsed_s`.
    pub fn current(elapsed_s: f64) -> Self {
        let proc = |name: &str| {
            std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self {
            loadd_version: env!("CARGO_PKG_VERSION").into(),
            kernel: proc("osrelease"),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            hostname: proc("hostname"),
            cpus_available: std::thread::available_parallelism().map_or(0, |n| n.get()),
            started_unix_ms: now_ms.saturating_sub((elapsed_s.max(0.0) * 1000.0) as u64),
            scenario_sha256: None,
        }
    }

    /// The fingerprint `scenario_sha256` holds: `sha256sum FILE` gives the same.
    pub fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256sum() {
        assert_eq!(
            Environment::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
