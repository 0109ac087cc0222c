//! Running `loadctl` while watching its peak resident memory (`VmHWM` in `/proc/PID/status`), to
//! tell a bounded buffer from one that grows with what a target sends.
//!
//! It refuses to guess: the peak is the last reading taken while the process was alive (the
//! high-water mark only grows), and a run past its bound is killed and fails the test.

use std::process::Command;
use std::time::Duration;

use crate::child::Captured;
use crate::loadctl::parse_json;

/// Runs `loadctl ARGS` (with `--output json`) within `timeout`, asserts exit 0, and returns its
/// JSON result and its peak resident memory in KiB.
pub fn run_json_peak_rss(args: &[&str], timeout: Duration) -> (serde_json::Value, u64) {
    let child = Captured::spawn(Command::new(crate::bin("loadctl")).args(args));
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    // Each reading comes before the exit is reaped: after that the /proc entry is gone.
    let output = child.wait_watching(timeout, || {
        if let Some(kib) = high_water_kib(&status_file) {
            peak_kib = peak_kib.max(kib);
        }
    });
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let value = parse_json(&args, &output);
    assert!(peak_kib > 0, "no VmHWM read from {status_file}");
    (value, peak_kib)
}

/// `VmHWM:   12345 kB` → 12345; `None` once the process is gone (or a zombie without memory).
fn high_water_kib(status_file: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
