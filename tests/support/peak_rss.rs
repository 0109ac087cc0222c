//! Running `loadctl` while watching its peak resident memory (`VmHWM` in `/proc/PID/status`), to
//! tell a bounded buffer from one that grows with what a target sends.
//!
//! It refuses to guess: the peak is the last reading taken while the process was alive (the
//! high-water mark only grows), and a run past its bound is killed and fails the test.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often the high-water mark is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Runs `loadctl ARGS` (with `--output json`) within `timeout`, asserts exit 0, and returns its
/// JSON result and its peak resident memory in KiB.
pub fn run_json_peak_rss(args: &[&str], timeout: Duration) -> (serde_json::Value, u64) {
    let mut child = Command::new(crate::bin("loadctl"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn loadctl {args:?}: {e}"));
    let status_file = format!("/proc/{}/status", child.id());
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let mut peak_kib = 0;
    let status = loop {
        // Read before reaping: after `try_wait` reports an exit, the /proc entry is gone.
        if let Some(kib) = high_water_kib(&status_file) {
            peak_kib = peak_kib.max(kib);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(SAMPLE_EVERY),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("loadctl {args:?} did not finish within {timeout:?}: killed");
            }
        }
    };
    let stdout = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
    assert!(
        status.success(),
        "loadctl {args:?} exited with {status}\nstdout: {stdout}\nstderr: {stderr}"
    );
    let value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("loadctl {args:?} printed no JSON ({e}): {stdout}\n{stderr}"));
    assert!(peak_kib > 0, "no VmHWM read from {status_file}");
    (value, peak_kib)
}

/// `VmHWM:   12345 kB` → 12345; `None` once the process is gone (or a zombie without memory).
fn high_water_kib(status_file: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
