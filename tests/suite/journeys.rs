//! Journeys against the sandbox: captures feed later steps, a wrong-tenant token shows up as
//! errors, a failed capture cuts the iteration short, thresholds set the exit code (1 failed,
//! 4 aborted early), and journey mistakes are refused with located messages before any traffic.

use std::time::{Duration, Instant};

use testbed::{run_loadctl_timeout, Sandbox};

fn write(name: &str, text: &str) -> std::path::PathBuf {
    testbed::scenario_file("journeys", name, text)
}

/// Runs a scenario file; returns (exit code, JSON results or Null, stderr).
fn run(file: &std::path::Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    testbed::run_file(file, extra)
}

use testbed::step;

#[test]
fn a_wrong_tenant_token_is_refused_and_fails_the_thresholds() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "cross_tenant.toml",
        &format!(
            r#"thresholds = ["error_rate < 1%", "step(own tenant).p99 < 5s"]
[target]
url = "{}"
[load]
connections = 2
requests = 20
[vars]
user = "u{{{{vu}}}}-{{{{iteration}}}}-{{{{random(1,1000000000)}}}}"
[[steps]]
name = "register in a"
method = "POST"
path = "/api/t/alpha/register"
json = {{ username = "{{{{user}}}}", password = "pw" }}
capture = {{ token = {{ json = "/token" }} }}
[[steps]]
name = "own tenant"
path = "/api/t/alpha/sessions"
headers = ["Authorization: Bearer {{{{token}}}}"]
check = {{ status = [200] }}
[[steps]]
name = "other tenant"
path = "/api/t/beta/sessions"
headers = ["Authorization: Bearer {{{{token}}}}"]
check = {{ status = [200] }}
"#,
            sandbox.url("")
        ),
    );
    let (code, r, stderr) = run(&file, &[]);
    assert_eq!(code, Some(1), "thresholds failed → exit 1; {stderr}");
    assert_eq!(step(&r, "register in a")["requests"], 20);
    assert_eq!(step(&r, "own tenant")["errors_total"], 0, "{}", r["steps"]);
    let other = step(&r, "other tenant");
    assert_eq!(
        other["errors"]["status_4xx"], 20,
        "403 for a foreign token: {other}"
    );
    assert_eq!(other["checks_failed"], 20);
    let verdicts = r["thresholds"].as_array().expect("thresholds");
    assert_eq!(verdicts[0]["passed"], false, "{verdicts:?}");
    assert_eq!(verdicts[1]["passed"], true, "{verdicts:?}");
}

#[test]
fn a_failed_capture_cuts_the_iteration_short() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "bad_capture.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
connections = 2
requests = 10
[[steps]]
name = "first"
path = "/"
capture = {{ id = {{ regex = "id=(\\d+)" }} }}
[[steps]]
name = "second"
path = "/bytes/{{{{id}}}}"
"#,
            sandbox.url("")
        ),
    );
    let (code, r, stderr) = run(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(step(&r, "first")["errors"]["capture_failed"], 10);
    assert_eq!(step(&r, "second")["requests"], 0);
    assert_eq!(r["iterations"], 10);
    assert_eq!(r["iterations_failed"], 10);
}

#[test]
fn abort_on_fail_stops_a_failing_run_early_with_exit_4() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "abort.toml",
        &format!(
            r#"thresholds = [{{ expr = "error_rate < 1%", abort_on_fail = true, delay = "1s" }}]
[target]
url = "{}"
[load]
rate = 100
duration = "30s"
"#,
            sandbox.url("/status/503")
        ),
    );
    let started = Instant::now();
    let (code, r, stderr) = run(&file, &[]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(r["aborted_by"], "error_rate < 1%");
    assert!(
        r["elapsed_s"].as_f64().unwrap_or(99.0) < 10.0,
        "{}",
        r["elapsed_s"]
    );
}

#[test]
fn journey_mistakes_are_located_with_hints() {
    let file = write(
        "mistakes.toml",
        r#"thresholds = ["p95 < 1s", "eror_rate < 1%", "step(logn).p99 < 1s"]
[target]
url = "http://127.0.0.1:9/"
[[steps]]
name = "login"
path = "/login/{{tokn}}"
capture = { token = { json = "/token" } }
[[steps]]
name = "use"
path = "/x/{{later}}"
[[steps]]
name = "capture late"
path = "/y"
capture = { later = { regex = "(unclosed" } }
"#,
    );
    for cmd in ["validate", "run"] {
        let out = run_loadctl_timeout([cmd.as_ref(), file.as_os_str()], Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        let expect = [
            (":1:", "did you mean `error_rate`"),
            (":1:", "did you mean `login`"),
            (":6:16:", "did you mean `token`"),
            (":10:", "only captured in step 3"),
            (":14:", "bad regex"),
        ];
        assert_eq!(lines.len(), expect.len(), "{stderr}");
        for (line, (at, words)) in lines.iter().zip(expect) {
            assert!(
                line.contains(at) && line.contains(words),
                "want {at} … {words} in: {line}"
            );
        }
    }
}

#[test]
fn uploads_arrive_whole_and_tasks_split_by_weight() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "mix.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
connections = 4
requests = 400
[[tasks]]
name = "upload"
weight = 1
[[tasks.steps]]
name = "sign up"
method = "POST"
path = "/api/t/up/register"
json = {{ username = "u{{{{uuid}}}}", password = "pw" }}
capture = {{ token = {{ json = "/token" }} }}
[[tasks.steps]]
name = "send"
method = "POST"
path = "/api/t/up/uploads"
headers = ["Authorization: Bearer {{{{token}}}}"]
upload = {{ size = "100KiB", filename = "f{{{{vu}}}}.bin" }}
check = {{ status = [201], json = {{ "/bytes" = 102400 }} }}
[[tasks]]
name = "browse"
weight = 3
[[tasks.steps]]
name = "home"
path = "/"
check = {{ status = [200] }}
"#,
            sandbox.url("")
        ),
    );
    let (code, r, stderr) = run(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let sends = step(&r, "send")["requests"].as_u64().unwrap_or(0);
    let homes = step(&r, "home")["requests"].as_u64().unwrap_or(0);
    assert_eq!(sends + homes, 400, "{}", r["steps"]);
    // 1:3 weights over 400 draws: 100 expected, sd ≈ 8.7; ±45 is over 5 sd.
    assert!(
        (55..=145).contains(&sends),
        "upload task drawn {sends} times of 400"
    );
    // The server measured every file part at exactly the configured size.
    assert_eq!(step(&r, "send")["checks_failed"], 0, "{}", r["steps"]);
    assert_eq!(step(&r, "send")["checks_passed"], sends * 2);
    assert_eq!(r["errors_total"], 0);
}

#[test]
fn ramping_users_follow_their_stages() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    // Each request takes ≥ 20 ms, so throughput follows the number of active users.
    let file = write(
        "ramp.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
model = "closed"
stages = [{{ duration = "2s", target = 0 }}, {{ duration = "2s", target = 6 }}]
"#,
            sandbox.url("/delay/20")
        ),
    );
    let (code, r, stderr) = run(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        r["model"]["connections"], 6,
        "one connection per user at the peak"
    );
    let per_second: Vec<u64> = r["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .map(|i| i["requests"].as_u64().unwrap_or(0))
        .collect();
    // No user in the first two seconds; then the ramp to 6 users of ≤ 50 requests/s each.
    assert!(per_second.len() >= 4, "{per_second:?}");
    assert_eq!(per_second[0], 0, "{per_second:?}");
    assert!(per_second[1] <= 2, "{per_second:?}");
    assert!(
        per_second[3] > per_second[2] && per_second[3] > 100,
        "{per_second:?}"
    );
    assert!(per_second[3] <= 6 * 50 + 10, "{per_second:?}");
}

#[test]
fn a_unique_feeder_uses_each_row_once_then_ends_the_run() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let rows: String = (0..40).map(|i| format!("user{i},pw{i}\n")).collect();
    write("people.csv", &format!("username,password\n{rows}"));
    let file = write(
        "feed.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
model = "closed"
connections = 4
duration = "20s"
[feeders.people]
file = "people.csv"
mode = "unique"
[[steps]]
name = "register"
method = "POST"
path = "/api/t/feeders/register"
json = {{ username = "{{{{people.username}}}}", password = "{{{{people.password}}}}" }}
check = {{ status = [201] }}
"#,
            sandbox.url("")
        ),
    );
    let (code, r, stderr) = run(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    // 40 rows, each registered exactly once: a reused row would be a 409 and a failed check.
    assert_eq!(r["requests"], 40, "{r}");
    assert_eq!(r["checks_failed"], 0, "{}", r["steps"]);
    assert!(
        r["elapsed_s"].as_f64().unwrap_or(99.0) < 10.0,
        "ended when the rows ran out"
    );
    assert!(
        r["warnings"].to_string().contains("ran out of rows"),
        "{}",
        r["warnings"]
    );

    let missing = write(
        "feed_missing.toml",
        "[target]\nurl = \"http://127.0.0.1:9/\"\n[feeders.x]\nfile = \"nope.csv\"\n[[steps]]\npath = \"/{{x.a}}\"\n",
    );
    let out = run_loadctl_timeout(
        ["validate".as_ref(), missing.as_os_str()],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("feed_missing.toml:3:1") && stderr.contains("nope.csv"),
        "{stderr}"
    );
}
