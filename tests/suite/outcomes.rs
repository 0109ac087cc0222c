//! Expected outcomes against the sandbox: an expected refusal (`expect_status = [403]`) is a
//! success of its step and no error, negative checks (`body_not_contains`, `json_absent`) catch
//! a leak, a per-step `timeout` times out that step only, `--task` runs only the named tasks,
//! and mistakes in these keys are refused at `file:line:col` before any traffic.

use std::time::Duration;

use testbed::{assert_located, run_loadctl_timeout, step, Sandbox};

fn write(name: &str, text: &str) -> std::path::PathBuf {
    testbed::scenario_file("outcomes", name, text)
}

/// Runs a scenario file; returns (exit code, JSON results or Null, stderr).
fn run(file: &std::path::Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    testbed::run_file(file, extra)
}

/// A tenant-isolation probe: alpha's token reads beta's sessions (which hold `beta-secret`).
/// `cross` is the cross-tenant step's outcome keys; `leak` an extra step reading beta's data
/// with beta's own token under the same negative checks (which must then fail).
fn isolation_probe(url: &str, cross: &str, leak: bool) -> String {
    let leak_step = if leak {
        r#"[[steps]]
name = "leaky read"
path = "/api/t/beta/sessions"
headers = ["Authorization: Bearer {{token_b}}"]
check = { body_not_contains = "beta-secret", json_absent = ["/sessions"] }
"#
    } else {
        ""
    };
    format!(
        r#"thresholds = ["error_rate < 0.1%"]
[target]
url = "{url}"
[load]
connections = 2
requests = 20
[[steps]]
name = "register a"
method = "POST"
path = "/api/t/alpha/register"
json = {{ username = "a{{{{uuid}}}}", password = "pw" }}
capture = {{ token_a = {{ json = "/token" }} }}
[[steps]]
name = "register b"
method = "POST"
path = "/api/t/beta/register"
json = {{ username = "b{{{{uuid}}}}", password = "pw" }}
capture = {{ token_b = {{ json = "/token" }} }}
[[steps]]
name = "beta secret"
method = "POST"
path = "/api/t/beta/sessions"
headers = ["Authorization: Bearer {{{{token_b}}}}"]
json = {{ title = "beta-secret" }}
check = {{ status = [201] }}
[[steps]]
name = "own read"
path = "/api/t/beta/sessions"
headers = ["Authorization: Bearer {{{{token_b}}}}"]
check = {{ status = [200], body_contains = "beta-secret" }}
[[steps]]
name = "cross read"
path = "/api/t/beta/sessions"
headers = ["Authorization: Bearer {{{{token_a}}}}"]
{cross}
check = {{ body_not_contains = "beta-secret", json_absent = ["/sessions"] }}
{leak_step}"#
    )
}

#[test]
fn an_expected_refusal_is_a_success_and_leaks_nothing() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "isolation.toml",
        &isolation_probe(&sandbox.url(""), "expect_status = [403]", false),
    );
    let (code, r, stderr) = run(&file, &[]);
    assert_eq!(code, Some(0), "an expected 403 is no error; {stderr}");
    let cross = step(&r, "cross read");
    assert_eq!(cross["requests"], 20, "{cross}");
    assert_eq!(
        cross["status"]["4xx"], 20,
        "the 403s are still counted: {cross}"
    );
    assert_eq!(cross["errors"]["status_4xx"], 0, "{cross}");
    assert_eq!(cross["errors_total"], 0, "{cross}");
    // expect_status, body_not_contains and json_absent: three passed checks per response.
    assert_eq!(cross["checks_passed"], 60, "{cross}");
    assert_eq!(cross["checks_failed"], 0, "{cross}");
    assert_eq!(step(&r, "own read")["checks_failed"], 0, "{}", r["steps"]);
    assert_eq!(r["errors_total"], 0);
    assert_eq!(r["thresholds"][0]["passed"], true, "{}", r["thresholds"]);
}

#[test]
fn a_wrong_expectation_and_a_leak_fail_their_checks() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "isolation_broken.toml",
        &isolation_probe(&sandbox.url(""), "expect_status = [200]", true),
    );
    let (code, r, stderr) = run(&file, &[]);
    assert_eq!(code, Some(1), "the error_rate threshold fails; {stderr}");
    let cross = step(&r, "cross read");
    assert_eq!(
        cross["errors"]["status_4xx"], 20,
        "an unexpected 403: {cross}"
    );
    assert_eq!(cross["check_failures"]["status"], 20, "{cross}");
    assert_eq!(
        cross["checks_passed"], 40,
        "the negative checks pass: {cross}"
    );
    let leak = step(&r, "leaky read");
    assert_eq!(leak["requests"], 20, "{leak}");
    assert_eq!(leak["check_failures"]["body_not_contains"], 20, "{leak}");
    assert_eq!(leak["check_failures"]["json_absent"], 20, "{leak}");
    assert_eq!(
        leak["errors_total"], 0,
        "a failed check is not an error: {leak}"
    );
}

#[test]
fn a_step_timeout_times_out_that_step_only() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "step_timeout.toml",
        &format!(
            r#"[target]
url = "{}"
[request]
timeout = "5s"
[load]
connections = 2
requests = 4
[[steps]]
name = "patient"
path = "/delay/400"
check = {{ status = [200] }}
[[steps]]
name = "impatient"
path = "/delay/1500"
timeout = "250ms"
"#,
            sandbox.url("")
        ),
    );
    let (_, r, stderr) = run(&file, &[]);
    let patient = step(&r, "patient");
    let impatient = step(&r, "impatient");
    assert_eq!(patient["requests"], 4, "{stderr} {patient}");
    assert_eq!(
        patient["errors_total"], 0,
        "400 ms is within 5 s: {patient}"
    );
    assert_eq!(
        impatient["errors"]["timeout"], 4,
        "1.5 s is past the step's 250 ms: {impatient}"
    );
    assert_eq!(impatient["requests"], 0, "{impatient}");
    assert_eq!(r["errors"]["timeout"], 4, "{}", r["errors"]);
    assert!(
        r["elapsed_s"].as_f64().unwrap_or(99.0) < 4.0,
        "the timeouts did not wait out the delay: {}",
        r["elapsed_s"]
    );
}

fn two_tasks(url: &str) -> String {
    format!(
        r#"[target]
url = "{url}"
[load]
connections = 2
requests = 40
[[tasks]]
name = "read"
weight = 3
[[tasks.steps]]
name = "home"
path = "/"
[[tasks]]
name = "write"
weight = 1
[[tasks.steps]]
name = "echo"
method = "POST"
path = "/echo"
body = "x"
[[tasks]]
name = "idle"
weight = 0
[[tasks.steps]]
name = "bytes"
path = "/bytes/10"
"#
    )
}

#[test]
fn task_flag_runs_only_the_named_tasks() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write("tasks.toml", &two_tasks(&sandbox.url("")));
    let (code, r, stderr) = run(&file, &["--task", "write"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(step(&r, "echo")["requests"], 40, "{}", r["steps"]);
    assert_eq!(step(&r, "home")["requests"], 0, "{}", r["steps"]);
    assert_eq!(step(&r, "bytes")["requests"], 0, "{}", r["steps"]);
    // Two names; a weight-0 task runs when it is asked for.
    let (code, r, stderr) = run(&file, &["--task", "write", "--task", "idle"]);
    assert_eq!(code, Some(0), "{stderr}");
    let echo = step(&r, "echo")["requests"].as_u64().unwrap_or(0);
    let bytes = step(&r, "bytes")["requests"].as_u64().unwrap_or(0);
    assert_eq!(echo + bytes, 40, "{}", r["steps"]);
    assert!(bytes > 0 && echo > 0, "{}", r["steps"]);
    assert_eq!(step(&r, "home")["requests"], 0, "{}", r["steps"]);
}

#[test]
fn an_unknown_task_exits_2_naming_the_known_ones() {
    let file = write("tasks_unknown.toml", &two_tasks("http://127.0.0.1:9/"));
    let out = run_loadctl_timeout(
        [
            "run".as_ref(),
            file.as_os_str(),
            "--task".as_ref(),
            "wrte".as_ref(),
        ],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`wrte`"), "{stderr}");
    assert!(stderr.contains("did you mean `write`"), "{stderr}");
    assert!(stderr.contains("tasks: read, write, idle"), "{stderr}");
}

#[test]
fn outcome_mistakes_are_located_before_any_traffic() {
    let file = write(
        "outcome_mistakes.toml",
        r#"[target]
url = "http://127.0.0.1:9/"
[[steps]]
name = "a"
path = "/a"
expect_status = [99]
[[steps]]
name = "b"
path = "/b"
expect_status = []
timeout = "fast"
[[steps]]
name = "c"
path = "/c"
check = { json_absent = ["other_tenant"], body_not_contains = "" }
[[steps]]
name = "d"
path = "/d"
timeout = "0s"
check = { json_absent = ["/a~2b"] }
"#,
    );
    assert_located(
        &file,
        &[
            (6, "`99` is not an HTTP status"),
            (10, "expect_status is empty"),
            (11, "timeout: "),
            (
                15,
                "json_absent: JSON pointer `other_tenant` must start with `/`",
            ),
            (15, "body_not_contains is empty"),
            (19, "timeout must be greater than zero"),
            (20, "`~` must be written `~0`"),
        ],
    );
    let out = run_loadctl_timeout(
        ["validate".as_ref(), file.as_os_str()],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 7, "every mistake at once: {stderr}");
}
