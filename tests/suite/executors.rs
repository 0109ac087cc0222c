//! Executors and several scenarios per file, against the sandbox: per-user and shared iteration
//! counts are exact (checked on the server's own counter), scenarios run side by side with their
//! own steps, tags and `start_after`, a graceful stop interrupts iterations that would outlast
//! it, `once` steps run once per user, form bodies are encoded, and mistakes are located.

use std::time::Duration;

use testbed::Sandbox;

fn write(name: &str, text: &str) -> std::path::PathBuf {
    testbed::scenario_file("executors", name, text)
}

/// Runs a scenario file; returns (exit code, JSON results or Null, stderr).
fn run(file: &std::path::Path) -> (Option<i32>, serde_json::Value, String) {
    testbed::run_file(file, &[])
}

use testbed::step;

#[test]
fn per_vu_and_shared_iterations_are_exact() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let url = sandbox.url("/");
    let per_vu = write(
        "per_vu.toml",
        &format!(
            "[target]\nurl = \"{url}\"\n[load]\nexecutor = \"per-vu-iterations\"\nvus = 3\niterations_per_vu = 4\n"
        ),
    );
    let before = sandbox.requests().expect("counter");
    let (code, r, stderr) = run(&per_vu);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(r["iterations"], 12, "3 users × 4");
    assert_eq!(sandbox.requests().expect("counter") - before, 12);

    let shared = write(
        "shared.toml",
        &format!(
            "[target]\nurl = \"{url}\"\n[load]\nexecutor = \"shared-iterations\"\nvus = 4\niterations = 25\n"
        ),
    );
    let before = sandbox.requests().expect("counter");
    let (code, r, stderr) = run(&shared);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(r["iterations"], 25);
    assert_eq!(sandbox.requests().expect("counter") - before, 25);
}

#[test]
fn scenarios_run_side_by_side_with_their_own_start() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "two.toml",
        &format!(
            r#"thresholds = ["error_rate < 1%", "scenario(late).p99 < 5s"]
[target]
url = "{}"

[scenarios.steady]
tags = {{ team = "web" }}
thresholds = ["rate > 20"]
[scenarios.steady.load]
executor = "constant-arrival-rate"
rate = 40
duration = "3s"
max_vus = 4
[[scenarios.steady.steps]]
name = "home"
path = "/"

[scenarios.late]
[scenarios.late.load]
executor = "constant-vus"
vus = 1
duration = "1s"
start_after = "1500ms"
[[scenarios.late.steps]]
name = "slow"
path = "/delay/20"
"#,
            sandbox.url("")
        ),
    );
    let (code, r, stderr) = run(&file);
    assert_eq!(code, Some(0), "{stderr}\n{r}");
    let scenarios = r["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios.len(), 2);
    assert_eq!(scenarios[0]["name"], "steady", "file order");
    assert_eq!(scenarios[0]["tags"]["team"], "web");
    assert_eq!(scenarios[0]["model"]["kind"], "open");
    assert_eq!(scenarios[1]["model"]["kind"], "closed");
    assert_eq!(scenarios[1]["start_after_s"], 1.5);
    assert_eq!(step(&r, "home")["scenario"], "steady");
    assert_eq!(step(&r, "slow")["scenario"], "late");
    let home = step(&r, "home")["requests"].as_u64().expect("n");
    assert!((110..=130).contains(&home), "40/s for 3 s: {home}");
    let slow = step(&r, "slow")["requests"].as_u64().expect("n");
    // One user, ~20 ms a request, for 1 s.
    assert!((10..=50).contains(&slow), "{slow}");
    // The late scenario sent nothing in the first second, then did.
    let intervals = r["intervals"].as_array().expect("intervals");
    let slow_in = |k: usize| intervals[k]["steps"][1]["requests"].as_u64().unwrap_or(0);
    assert_eq!(slow_in(0), 0, "{}", intervals[0]);
    assert!(slow_in(2) > 0, "{}", intervals[2]);
    // Scenario thresholds are scoped and named after their scenario.
    let names: Vec<&str> = r["thresholds"]
        .as_array()
        .expect("thresholds")
        .iter()
        .filter_map(|t| t["threshold"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "error_rate < 1%",
            "scenario(late).p99 < 5s",
            "scenario(steady).rate > 20"
        ]
    );
}

#[test]
fn the_graceful_stop_interrupts_iterations_that_would_outlast_it() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "graceful.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
vus = 2
duration = "1s"
graceful_stop = "300ms"
[[steps]]
name = "first"
path = "/"
think = "20s"
[[steps]]
name = "never"
path = "/"
"#,
            sandbox.url("")
        ),
    );
    let started = std::time::Instant::now();
    let (code, r, stderr) = run(&file);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the 20 s think time was not waited out"
    );
    assert_eq!(r["iterations_interrupted"], 2, "{r}");
    assert_eq!(r["iterations"], 0);
    assert_eq!(step(&r, "first")["requests"], 2);
    assert_eq!(step(&r, "never")["requests"], 0);
    assert_eq!(
        r["errors_total"], 0,
        "an interruption is not the target's error"
    );
}

#[test]
fn once_steps_run_once_per_user_and_forms_are_encoded() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "once.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
executor = "per-vu-iterations"
vus = 2
iterations_per_vu = 5
[[steps]]
name = "login"
once = true
method = "POST"
path = "/echo"
form = {{ user = "a b&c", n = "{{{{vu}}}}" }}
check = {{ body_contains = "n=" }}
capture = {{ echoed = {{ regex = "user=([^&]+)" }} }}
[[steps]]
name = "work"
method = "POST"
path = "/echo"
body = "{{{{echoed}}}}"
check = {{ body_contains = "a+b%26c" }}
[[steps]]
name = "file"
method = "POST"
path = "/echo"
body_file = "payload.bin"
check = {{ body_contains = "file-payload-42" }}
"#,
            sandbox.url("")
        ),
    );
    let payload = file.with_file_name("payload.bin");
    std::fs::write(&payload, b"file-payload-42\x00\xff").expect("payload");
    let (code, r, stderr) = run(&file);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(step(&r, "login")["requests"], 2, "once per user");
    assert_eq!(step(&r, "work")["requests"], 10);
    assert_eq!(step(&r, "work")["checks_failed"], 0, "{r}");
    assert_eq!(step(&r, "file")["requests"], 10);
    assert_eq!(step(&r, "file")["checks_failed"], 0, "{r}");
    assert_eq!(r["iterations"], 10);
}

#[test]
fn executor_and_scenario_mistakes_are_located() {
    let file = write(
        "bad_executors.toml",
        r#"thresholds = ["scenario(nope).p95 < 1s"]
[target]
url = "http://127.0.0.1:9/"
[load]
rate = 5
[scenarios.a.load]
executor = "constant-arival-rate"
[scenarios.b.load]
executor = "ramping-vus"
vus = 0
[scenarios.c.load]
executor = "per-vu-iterations"
model = "open"
"#,
    );
    testbed::assert_located(
        &file,
        &[
            (5, "does not apply next to [scenarios]"),
            (7, "did you mean `constant-arrival-rate`"),
            (9, "executor `ramping-vus` needs stages"),
            (10, "at least 1"),
            (12, "executor `per-vu-iterations` needs iterations_per_vu"),
            (13, "contradicts executor"),
            (1, "no scenario is named `nope`"),
        ],
    );
}
