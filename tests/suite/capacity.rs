//! Capacity search against a target whose capacity is known: the sandbox's `/capacity/work`
//! serves at most N requests at once, each for S ms, so it sustains N / S per second and
//! queues beyond that. The search must land within 10% of it, and refuse bad sections.

use std::time::Duration;

use testbed::{run_loadctl_timeout, Sandbox};

fn write(name: &str, text: &str) -> std::path::PathBuf {
    testbed::scenario_file("capacity", name, text)
}

#[test]
fn the_search_finds_a_known_capacity_within_ten_percent() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    // 4 slots × 20 ms: 200 requests/s.
    sandbox
        .control("/control/capacity?concurrency=4&service_ms=20")
        .expect("configure capacity");
    let file = write(
        "knee.toml",
        &format!(
            r#"[target]
url = "{}"
[capacity]
slo = ["p99 < 100ms", "error_rate < 1%"]
start_rate = 50
max_rate = 800
factor = 2
hold = "3s"
warmup = "500ms"
precision = "5%"
[[steps]]
name = "work"
path = "/capacity/work"
check = {{ status = [200] }}
"#,
            sandbox.url("")
        ),
    );
    let out = run_loadctl_timeout(
        [
            "run".to_string(),
            file.display().to_string(),
            "--output".into(),
            "json".into(),
            "--report".into(),
            file.with_extension("html").display().to_string(),
        ],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).expect("capacity JSON");
    assert_eq!(r["schema"], "loadd.capacity.v1");
    let found = r["sustainable_rate_per_s"].as_f64().expect("a rate");
    assert!(
        (180.0..=220.0).contains(&found),
        "true capacity 200/s, found {found}: {}",
        r["verdict"]
    );
    let failing = r["first_failing_rate_per_s"]
        .as_f64()
        .expect("a failing rate");
    assert!(failing > found, "{r}");
    assert!(
        r["first_failing_reason"]
            .as_str()
            .is_some_and(|w| w.contains("p99")),
        "{r}"
    );
    assert!(r["generator_limited"].is_null(), "{r}");
    // Stepped up, then bisected; every level has its SLO verdicts.
    let levels = r["levels"].as_array().expect("levels");
    assert!(levels.len() >= 5, "{levels:?}");
    assert_eq!(levels[0]["rate_per_s"], 50.0);
    assert!(levels
        .iter()
        .all(|l| l["slo"].as_array().map(Vec::len) == Some(2)));
}

#[test]
fn bad_capacity_sections_are_located() {
    let file = write(
        "bad_capacity.toml",
        r#"[target]
url = "http://127.0.0.1:9/"
[load]
rate = 100
[capacity]
slo = ["p99 < 100ms", "p101 < 1s"]
start_rate = 500
max_rate = 100
factor = 1
hold = "0s"
precision = "0%"
"#,
    );
    testbed::assert_located(
        &file,
        &[
            (4, "does not apply with [capacity]"),
            (6, "unknown metric `p101`"),
            (8, "max_rate must be at least start_rate"),
            (9, "factor must be greater than 1"),
            (10, "hold must be greater than zero"),
            (11, "precision must be a percentage"),
        ],
    );
}
