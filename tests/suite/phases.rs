//! Run phases and computed values against the sandbox: `[[setup]]` captures run-wide values
//! every user reads (scalars and lists, made `parallel` at a time), `[[teardown]]` checks the
//! server against `run.count(STEP)`, a failed setup stops the run before any load (exit 3), a
//! failed teardown check fails it (exit 1), signed webhooks verify, an index out of range is a
//! counted `template` error, and mistakes in the new syntax are refused at `file:line:col`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testbed::{assert_located, step, Sandbox};

fn write(name: &str, text: &str) -> PathBuf {
    testbed::scenario_file("phases", name, text)
}

fn seed(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// `loadctl run FILE --output json EXTRA…` with `env` set: exit code, results, stderr.
fn run_env(file: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Value, String) {
    let mut cmd = Command::new(testbed::bin("loadctl"));
    cmd.args(["run", &file.display().to_string(), "--output", "json"])
        .args(extra)
        .envs(env.iter().copied());
    let out = testbed::run_bounded(&mut cmd, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.code(),
        serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn phase_step<'a>(r: &'a Value, phase: &str, name: &str) -> &'a Value {
    r[phase]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no {phase} step {name} in {}", r[phase]))
}

#[test]
fn one_session_made_in_setup_counts_every_answer() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let (code, r, stderr) = run_env(
        &seed("quiz_one_session.toml"),
        &["--base-url", &sandbox.url(""), "--duration", "2s"],
        &[],
    );
    assert_eq!(code, Some(0), "{stderr} {}", r["teardown"]);
    let session = phase_step(&r, "setup", "session");
    assert_eq!(session["requests"], 1, "{session}");
    let answers = step(&r, "answer")["requests"].as_u64().unwrap_or(0);
    assert!(
        answers > 500,
        "every user answered more than once: {answers}"
    );
    let teardown = phase_step(&r, "teardown", "scoreboard counts every answer");
    // status, /total_answers and /players: the server agrees with the run.
    assert_eq!(teardown["checks_passed"], 3, "{teardown}");
    assert_eq!(r["teardown_failed"], Value::Null);
    // Setup and teardown stay out of the load's figures.
    let load: u64 = r["steps"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["requests"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(r["requests"].as_u64(), Some(load), "{}", r["steps"]);
    let seen = sandbox.requests().expect("stats");
    assert_eq!(
        seen,
        load + 3,
        "the sandbox saw the load and 3 phase requests"
    );
}

#[test]
fn tenants_and_sessions_made_in_setup_pin_every_user() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let (code, r, stderr) = run_env(
        &seed("quiz_tenants.toml"),
        &["--base-url", &sandbox.url(""), "--duration", "2s"],
        &[],
    );
    assert_eq!(code, Some(0), "{stderr} {} {}", r["setup"], r["teardown"]);
    assert_eq!(phase_step(&r, "setup", "tenant admins")["requests"], 10);
    assert_eq!(phase_step(&r, "setup", "sessions")["requests"], 50);
    let teardown = phase_step(&r, "teardown", "every session has its players");
    // 50 scoreboards, each with status 200 and /players = 10.
    assert_eq!(teardown["checks_passed"], 100, "{teardown}");
    assert_eq!(step(&r, "join")["requests"], 500);
    assert_eq!(r["errors_total"], 0, "{}", r["errors"]);
}

#[test]
fn a_failed_setup_stops_the_run_before_any_load() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "setup_fails.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
connections = 2
duration = "5s"
[[setup]]
name = "made"
path = "/"
capture = {{ ok = {{ regex = "(ok)" }} }}
[[setup]]
name = "broken"
path = "/status/503"
capture = {{ id = {{ json = "/id" }} }}
[[steps]]
path = "/?{{{{run.id}}}}"
"#,
            sandbox.url("")
        ),
    );
    let (code, r, stderr) = run_env(&file, &[], &[]);
    assert_eq!(code, Some(3), "{stderr}");
    let why = r["setup_failed"].as_str().unwrap_or("");
    assert!(
        why.contains("`broken`") && why.contains("status 503"),
        "{why}"
    );
    assert_eq!(r["requests"], 0, "no load ran");
    assert_eq!(phase_step(&r, "setup", "made")["failed"], 0);
    assert_eq!(
        sandbox.requests().expect("stats"),
        2,
        "only the two setup requests"
    );
}

#[test]
fn a_failed_teardown_check_fails_the_run() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "teardown_fails.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
connections = 2
requests = 10
[[steps]]
name = "echo"
method = "POST"
path = "/echo"
body = '{{"n": 9}}'
[[teardown]]
name = "off by one"
method = "POST"
path = "/echo"
body = '{{"n": {{{{run.count(echo) - 1}}}}}}'
check = {{ json = {{ "/n" = "{{{{run.count(echo)}}}}" }} }}
"#,
            sandbox.url("")
        ),
    );
    let (code, r, stderr) = run_env(&file, &[], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let why = r["teardown_failed"].as_str().unwrap_or("");
    assert!(why.contains("`/n` is 9, expected 10"), "{why}");
    assert_eq!(r["thresholds_failed"], false);
}

#[test]
fn signed_webhooks_verify_and_a_wrong_secret_is_refused() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let args = ["--base-url", &sandbox.url(""), "--duration", "2s"];
    let (code, r, stderr) = run_env(&seed("webhooks.toml"), &args, &[]);
    assert_eq!(code, Some(0), "{stderr} {}", r["teardown"]);
    let hooks = step(&r, "webhook");
    assert!(hooks["requests"].as_u64().unwrap_or(0) >= 150, "{hooks}");
    assert_eq!(hooks["errors_total"], 0, "{hooks}");
    assert_eq!(r["teardown_failed"], Value::Null, "{}", r["teardown"]);

    let (code, r, _) = run_env(
        &seed("webhooks.toml"),
        &args,
        &[("WEBHOOK_SECRET", "whsec_wrong")],
    );
    assert_eq!(code, Some(1));
    let hooks = step(&r, "webhook");
    assert_eq!(hooks["errors"]["status_4xx"], hooks["requests"], "{hooks}");
    assert!(hooks["requests"].as_u64().unwrap_or(0) >= 150, "{hooks}");
}

#[test]
fn a_full_event_answers_409_which_is_expected() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let (code, r, stderr) = run_env(
        &seed("rsvp_flash_crowd.toml"),
        &["--base-url", &sandbox.url(""), "--smoke"],
        &[("RSVP_CAPACITY", "1")],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let rsvp = step(&r, "rsvp");
    let requests = rsvp["requests"].as_u64().unwrap_or(0);
    assert!(requests >= 2, "{rsvp}");
    assert_eq!(rsvp["status"]["2xx"], 1, "one fits: {rsvp}");
    assert_eq!(rsvp["status"]["4xx"].as_u64(), Some(requests - 1), "{rsvp}");
    assert_eq!(rsvp["errors_total"], 0, "{rsvp}");
}

#[test]
fn an_index_past_a_list_is_a_template_error_and_the_run_goes_on() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "index.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
connections = 4
requests = 40
[[setup]]
name = "ids"
path = "/"
each = 2
capture = {{ ids = {{ regex = "(ok)" }} }}
[[steps]]
name = "read"
path = "/?id={{{{run.ids[vu - 1]}}}}"
"#,
            sandbox.url("")
        ),
    );
    let (_, r, stderr) = run_env(&file, &[], &[]);
    let read = step(&r, "read");
    // Users 1 and 2 have an item; users 3 and 4 do not.
    assert!(
        read["requests"].as_u64().unwrap_or(0) > 0,
        "{stderr} {read}"
    );
    assert!(
        read["errors"]["template"].as_u64().unwrap_or(0) > 0,
        "{read}"
    );
    assert_eq!(read["errors_total"], read["errors"]["template"], "{read}");
}

#[test]
fn mistakes_in_phases_and_expressions_are_located() {
    let file = write(
        "bad_phases.toml",
        r#"[target]
url = "http://127.0.0.1:9/"
[load]
connections = 1
requests = 1
[[setup]]
path = "/a/{{run.later}}"
each = 0
[[setup]]
path = "/b"
capture = { later = { json = "/x" } }
[[steps]]
path = "/c/{{run.count(x)}}"
each = 3
[[steps]]
path = "/d/{{run.latr}}"
[[steps]]
path = "/e/{{sha256('x')}}"
[[steps]]
path = "/f/{{vu * 'a'}}"
[[steps]]
path = "/g/{{env('LOADD_SURELY_UNSET')}}"
[[steps]]
path = "/h/{{9223372036854775807 + 1}}"
[[steps]]
path = "/i/{{run.later[0]}}"
[[teardown]]
path = "/j/{{run.count(nope)}}"
"#,
    );
    assert_located(
        &file,
        &[
            (7, "setup step 2"),
            (8, "each must be 1 to"),
            (13, "only known after the load"),
            (14, "`each` is for [[setup]]"),
            (16, "did you mean `later`"),
            (18, "hex("),
            (20, "needs integers"),
            (22, "is not set"),
            (24, "overflow"),
            (26, "not a list"),
            (28, "no step of the load is named `nope`"),
        ],
    );
}

#[test]
fn a_login_before_the_tasks_is_shared_by_every_task() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let file = write(
        "prelude.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
connections = 3
requests = 60
[[steps]]
name = "login"
once = true
method = "POST"
path = "/api/t/shared/register"
json = {{ username = "u-{{{{uuid}}}}", password = "pw" }}
capture = {{ token = {{ json = "/token" }} }}
[[tasks]]
name = "read"
weight = 2
[[tasks.steps]]
name = "list"
path = "/api/t/shared/sessions"
headers = ["Authorization: Bearer {{{{token}}}}"]
check = {{ status = [200] }}
[[tasks]]
name = "write"
[[tasks.steps]]
name = "create"
method = "POST"
path = "/api/t/shared/sessions"
headers = ["Authorization: Bearer {{{{token}}}}"]
json = {{ title = "t" }}
check = {{ status = [201] }}
"#,
            sandbox.url("")
        ),
    );
    let (code, r, stderr) = run_env(&file, &[], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    // One login per user, before its first task, whichever task it drew.
    assert_eq!(step(&r, "login")["requests"], 3, "{}", r["steps"]);
    let list = step(&r, "list")["requests"].as_u64().unwrap_or(0);
    let create = step(&r, "create")["requests"].as_u64().unwrap_or(0);
    assert!(list > 0 && create > 0, "{}", r["steps"]);
    assert_eq!(
        r["errors_total"], 0,
        "no task ran without the token: {}",
        r["errors"]
    );
    assert_eq!(r["checks_failed"], 0);
}
