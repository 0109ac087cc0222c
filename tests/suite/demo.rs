//! The demo's coordinated-omission part (`scripts/demo.sh` with `LOADD_DEMO_ONLY=stall`), run as
//! written against a sandbox this test starts: the target's one-second stall must show in the
//! corrected tail and not in the uncorrected one, so the demo cannot stop showing what it says.
//!
//! It does not judge the demo's other parts (closed model, journey): other tests cover those runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testbed::Sandbox;

/// The part runs for 6 s; the rest is startup, with room for a busy machine.
const DEMO_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn the_demo_stall_shows_in_the_corrected_tail_only() {
    let _load = testbed::serial();
    let sandbox = Sandbox::start().unwrap();
    let loadctl = testbed::bin("loadctl");
    let bin_dir = loadctl.parent().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let out = testbed::run_bounded(
        Command::new("bash")
            .arg(&script)
            .env("LOADD_DEMO_BIN", bin_dir)
            .env("LOADD_DEMO_URL", sandbox.url(""))
            .env("LOADD_DEMO_ONLY", "stall"),
        DEMO_TIMEOUT,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "demo.sh failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let figures = figures(&stdout);
    let get = |name: &str| -> u64 {
        *figures
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` in the figures line\nstdout: {stdout}"))
    };
    let (c99, cmax, u99) = (
        get("corrected_p99_us"),
        get("corrected_max_us"),
        get("uncorrected_p99_us"),
    );
    // 2000 requests of 12,000 are due during the 1 s stall: they wait up to 1 s.
    assert!(
        c99 >= 500_000,
        "corrected p99 {c99} µs: the stall did not show\n{stdout}"
    );
    assert!(
        cmax >= 500_000,
        "corrected max {cmax} µs: the stall did not show\n{stdout}"
    );
    // Only the ~20 requests in flight when the stall began took long from their send.
    assert!(
        u99 < 200_000 && u99 * 4 < c99,
        "uncorrected p99 {u99} µs is not far below the corrected {c99} µs\n{stdout}"
    );
    assert!(
        stdout.contains("only the corrected latency"),
        "the demo no longer says what the gap means\n{stdout}"
    );
    // The load reached the target (the sandbox counts requests, not control calls).
    let seen = sandbox.requests().unwrap();
    assert!(seen >= 6_000, "the sandbox saw only {seen} requests");
}

/// `figures key=value …`, the last line the stall part prints.
fn figures(stdout: &str) -> BTreeMap<String, u64> {
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("figures "))
        .unwrap_or_else(|| panic!("demo.sh printed no `figures` line:\n{stdout}"));
    line.split_whitespace()
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("`{pair}` is not key=value in {line:?}"));
            let value = value
                .parse()
                .unwrap_or_else(|e| panic!("`{pair}`: {e} in {line:?}"));
            (key.to_string(), value)
        })
        .collect()
}
