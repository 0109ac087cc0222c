//! The real `loadd serve` on a free loopback port with a temporary state directory, driven by the
//! real `loadctl` and by raw HTTP: submit and tail, reports, stop, restart with runs preserved,
//! kill -9 mid-run, SIGTERM mid-run (graceful), files travelling with a scenario, per-step live
//! data, and every refusal (401, 403, 400, 404, 409). Every wait is bounded.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testbed::{raw_request, remote_loadctl, run_bounded, Daemon, Sandbox, TextOutput};

/// The bound on one `loadctl` call against a daemon.
const LOADCTL_TIMEOUT: Duration = Duration::from_secs(60);

/// `loadd serve` with a fresh token in `state_dir`; killed on drop.
fn serve(state_dir: &Path) -> Daemon {
    Daemon::start(state_dir, &[]).expect("loadd serve")
}

/// `loadctl ARGS` against `daemon`.
fn loadctl(daemon: &Daemon, args: &[&str]) -> TextOutput {
    daemon.loadctl(args, LOADCTL_TIMEOUT)
}

fn write_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path
}

fn closed_scenario(sandbox: &Sandbox, duration: &str) -> String {
    format!(
        "[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nconnections = 4\nduration = \"{duration}\"\n",
        sandbox.url("/")
    )
}

#[test]
fn submit_tails_reports_and_survives_a_restart() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let daemon = serve(&state);
    let mode = std::fs::metadata(state.join("token"))
        .expect("token")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");

    let file = write_scenario(
        tmp.path(),
        "two_seconds.toml",
        &closed_scenario(&sandbox, "2s"),
    );
    let file = file.to_str().expect("utf-8 path");
    let out = loadctl(&daemon, &["submit", file]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let interval_lines = out
        .stdout
        .lines()
        .filter(|l| l.contains(" req/s  p99 "))
        .count();
    assert!(interval_lines >= 1, "no interval lines:\n{}", out.stdout);
    assert!(
        out.stdout.contains("Requests"),
        "no summary:\n{}",
        out.stdout
    );

    let runs = daemon.json("/v1/runs");
    let run = &runs["runs"][0];
    assert_eq!(run["state"], "finished", "{runs}");
    let id = run["id"].as_str().expect("id").to_string();
    assert!(run["intervals"].as_u64().unwrap_or(0) >= 1, "{run}");

    let report = daemon.json(&format!("/v1/runs/{id}/report?format=json"));
    let requests = report["requests"].as_u64().expect("requests");
    assert!(requests > 0, "{report}");
    // The sandbox saw at least every request the report counts.
    assert!(sandbox.requests().expect("stats") >= requests);
    let csv = loadctl(&daemon, &["report", &id, "--format", "csv"]);
    assert_eq!(csv.code, Some(0), "{}", csv.stderr);
    let mut lines = csv.stdout.lines();
    assert!(
        lines.next().is_some_and(|h| h.starts_with("interval,")),
        "{}",
        csv.stdout
    );
    assert!(lines.count() >= 1, "{}", csv.stdout);
    let html = loadctl(&daemon, &["report", &id, "--format", "html"]);
    assert!(
        html.stdout.contains("<html>") && html.stdout.contains("finished"),
        "{}",
        html.stdout
    );
    let (status, histogram) = daemon.get(&format!("/v1/runs/{id}/histogram"));
    assert_eq!(status, 200);
    assert!(!histogram.is_empty());
    let (status, metrics) = daemon.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("loadd_runs{state=\"finished\"} 1"),
        "{metrics}"
    );

    // Detached submit, then tail by id: the tail replays every interval and the result.
    let out = loadctl(&daemon, &["submit", "--detach", "-d", "1s", file]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let id2 = out.stdout.trim().to_string();
    let tail = loadctl(&daemon, &["tail", &id2]);
    assert_eq!(tail.code, Some(0), "{}", tail.stderr);
    assert!(
        tail.stdout.contains(" req/s  p99 ") && tail.stdout.contains("Requests"),
        "{}",
        tail.stdout
    );
    let detached = daemon.json(&format!("/v1/runs/{id2}/report"));
    assert_eq!(detached["model"]["duration_s"], 1.0, "{detached}");
    let list = loadctl(&daemon, &["list"]);
    assert!(
        list.stdout.contains(&id) && list.stdout.contains(&id2),
        "{}",
        list.stdout
    );

    // A failed threshold is `submit`'s exit code, as with `loadctl run`: a CI gate.
    let gate = write_scenario(
        tmp.path(),
        "gate.toml",
        &format!(
            "thresholds = [\"requests > 100000000\"]\n{}",
            closed_scenario(&sandbox, "1s")
        ),
    );
    let out = loadctl(&daemon, &["submit", gate.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);

    // Restart: every run is still listed and its report served.
    drop(daemon);
    let daemon = serve(&state);
    let runs = daemon.json("/v1/runs");
    let states: Vec<&str> = runs["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["state"].as_str())
        .collect();
    assert_eq!(states, ["finished", "finished", "finished"], "{runs}");
    let again = daemon.json(&format!("/v1/runs/{id}/report"));
    assert_eq!(again, report);
}

#[test]
fn stop_queue_conflict_and_kill_during_a_run() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let daemon = serve(&state);
    let long = write_scenario(tmp.path(), "long.toml", &closed_scenario(&sandbox, "60s"));
    let long = long.to_str().expect("utf-8 path");

    let out = loadctl(&daemon, &["submit", "--detach", long]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let id = out.stdout.trim().to_string();
    daemon.wait_run(&id, Duration::from_secs(20), |r| {
        r["intervals"].as_u64().unwrap_or(0) >= 2
    });

    // One run at a time: refused when asked not to queue, queued otherwise.
    let out = loadctl(&daemon, &["submit", "--detach", "--no-queue", long]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("409"), "{}", out.stderr);
    let (status, body) = daemon.call(
        "POST",
        "/v1/runs",
        std::fs::read(long).expect("read").as_slice(),
    );
    assert_eq!(status, 201, "{body}");
    let queued: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(queued["state"], "queued");
    let queued_id = queued["id"].as_str().expect("id").to_string();
    assert_eq!(loadctl(&daemon, &["stop", &queued_id]).code, Some(0));

    // Graceful stop keeps the results.
    let out = loadctl(&daemon, &["stop", &id]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let run = daemon.wait_run(&id, Duration::from_secs(20), |r| r["state"] != "running");
    assert_eq!(run["state"], "finished", "{run}");
    assert_eq!(run["stop_requested"], true);
    let report = daemon.json(&format!("/v1/runs/{id}/report"));
    assert!(
        report["elapsed_s"].as_f64().unwrap_or(99.0) < 30.0,
        "{report}"
    );
    assert!(report["requests"].as_u64().unwrap_or(0) > 0, "{report}");
    assert_eq!(
        daemon.json(&format!("/v1/runs/{queued_id}"))["state"],
        "aborted"
    );

    // kill -9 during a run: after a restart it is aborted, with the intervals flushed so far.
    let out = loadctl(&daemon, &["submit", "--detach", long]);
    let killed = out.stdout.trim().to_string();
    daemon.wait_run(&killed, Duration::from_secs(20), |r| {
        r["intervals"].as_u64().unwrap_or(0) >= 2
    });
    drop(daemon);
    let daemon = serve(&state);
    let run = daemon.json(&format!("/v1/runs/{killed}"));
    assert_eq!(run["state"], "aborted", "{run}");
    assert!(run["intervals"].as_u64().unwrap_or(0) >= 2, "{run}");
    let (status, csv) = daemon.get(&format!("/v1/runs/{killed}/report?format=csv"));
    assert_eq!(status, 200);
    assert!(csv.lines().count() >= 3, "{csv}");
    let tail = loadctl(&daemon, &["tail", &killed]);
    assert_eq!(tail.code, Some(3), "{}\n{}", tail.stdout, tail.stderr);
    assert!(tail.stderr.contains("aborted"), "{}", tail.stderr);
    assert!(
        tail.stdout
            .lines()
            .filter(|l| l.contains(" req/s "))
            .count()
            >= 2,
        "{}",
        tail.stdout
    );
    // Resuming: `Last-Event-ID: 1` (or `?from=2`) replays from interval 2 on, then the end.
    let resume = |path: &str, headers: &[(&str, &str)]| {
        let auth = format!("Bearer {}", daemon.token());
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        raw_request(daemon.addr(), "GET", path, &all, b"")
            .expect("events")
            .body_text()
    };
    let path = format!("/v1/runs/{killed}/events");
    for body in [
        resume(&path, &[("Last-Event-ID", "1")]),
        resume(&format!("{path}?from=2"), &[]),
    ] {
        assert!(!body.contains("id: 1\n"), "{body}");
        assert!(
            body.contains("id: 2\n") && body.contains("event: ended"),
            "{body}"
        );
    }
    // The earlier runs are intact.
    assert_eq!(daemon.json(&format!("/v1/runs/{id}"))["state"], "finished");
}

#[test]
fn refusals() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = serve(&tmp.path().join("state"));
    // Auth: health is open, everything else needs the token.
    assert_eq!(daemon.call_as("GET", "/v1/health", None, b"").0, 200);
    for token in [None, Some("wrong")] {
        let (status, body) = daemon.call_as("GET", "/v1/runs", token, b"");
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("\"error\""), "{body}");
    }
    let out = remote_loadctl(
        &["list"],
        Some(&daemon.url()),
        Some("wrong"),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("401"), "{}", out.stderr);

    // Not on the allowlist: 403 before any traffic (10.255.255.1 is never contacted).
    let far = write_scenario(
        tmp.path(),
        "far.toml",
        "[target]\nurl = \"http://10.255.255.1/\"\n",
    );
    let out = loadctl(&daemon, &["submit", far.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("403") && out.stderr.contains("allowlist"),
        "{}",
        out.stderr
    );

    // Malformed: located messages, as `loadctl validate` prints them.
    let bad = write_scenario(
        tmp.path(),
        "bad.toml",
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nconections = 3\n",
    );
    let out = loadctl(&daemon, &["submit", bad.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("bad.toml:4:1:"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // It was refused locally, before contacting any daemon (none listens here: still exit 2).
    let out = remote_loadctl(
        &["submit", bad.to_str().expect("utf-8")],
        Some(&format!("http://127.0.0.1:{}", testbed::free_port())),
        Some("t"),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("bad.toml:4:1:"), "{}", out.stderr);
    // The daemon locates the same error for a raw TOML body.
    let (status, body) = daemon.call(
        "POST",
        "/v1/runs?name=bad.toml",
        &std::fs::read(&bad).expect("read"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad.toml:4:1:"), "{body}");

    // Unknown run.
    let out = loadctl(&daemon, &["status", "no-such-run"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("404"), "{}", out.stderr);
    let (status, body) = daemon.get("/v1/runs/no-such-run/events");
    assert_eq!(
        (status, body.contains("no such run")),
        (404, true),
        "{body}"
    );
    assert_eq!(daemon.json("/v1/runs")["runs"], serde_json::json!([]));

    // Bad flags: one line, exit 2.
    let out = loadctl(&daemon, &["report", "x", "--format", "pdf"]);
    assert_eq!(out.code, Some(2));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    // No daemon there: exit 3, one line.
    let out = remote_loadctl(
        &["list"],
        Some(&format!("http://127.0.0.1:{}", testbed::free_port())),
        Some("t"),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(3), "{}", out.stderr);

    // A non-loopback listen address needs an explicit token.
    let out: TextOutput = run_bounded(
        Command::new(testbed::bin("loadd"))
            .args(["serve", "--listen", "0.0.0.0:0", "--state-dir"])
            .arg(tmp.path().join("other"))
            .env_remove("LOADD_TOKEN"),
        Duration::from_secs(20),
    )
    .into();
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("explicit token"));
}

#[test]
fn files_travel_with_the_scenario() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = serve(&tmp.path().join("daemon").join("state"));
    // The scenario and its payload live in a directory the daemon never looks at.
    let project = tmp.path().join("project");
    std::fs::create_dir_all(project.join("payload")).expect("mkdir");
    const PAYLOAD_LEN: u64 = 20_000;
    let payload: Vec<u8> = (0..PAYLOAD_LEN).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(project.join("payload/body.bin"), &payload).expect("payload");
    let text = format!(
        "[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nconnections = 2\nduration = \"1s\"\n\
         [request]\nmethod = \"POST\"\nbody_file = \"payload/body.bin\"\n",
        sandbox.url("/echo")
    );
    let file = write_scenario(&project, "upload.toml", &text);
    let out = loadctl(&daemon, &["submit", file.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let id = daemon.json("/v1/runs")["runs"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let report = daemon.json(&format!("/v1/runs/{id}/report"));
    let requests = report["requests"].as_u64().expect("requests");
    assert!(requests > 0, "{report}");
    assert_eq!(report["errors_total"], 0, "{report}");
    // Every request carried the file, and /echo sent it back.
    let per_request = |k: &str| report[k].as_u64().unwrap_or(0) / requests;
    assert!(per_request("bytes_out") >= PAYLOAD_LEN, "{report}");
    assert!(per_request("bytes_in") >= PAYLOAD_LEN, "{report}");
    // The daemon kept what it ran.
    let stored = tmp
        .path()
        .join("daemon/state/runs")
        .join(&id)
        .join("files")
        .join(hex(b"payload/body.bin"));
    assert_eq!(std::fs::read(stored).expect("stored file"), payload);

    // Without the file (a raw TOML body), the daemon refuses with a location, not its disk.
    let (status, body) = daemon.call("POST", "/v1/runs?name=upload.toml", text.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("upload.toml:9:") && body.contains("was not sent with the scenario"),
        "{body}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn journeys_show_per_step_live_data() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = serve(&tmp.path().join("state"));
    let text = format!(
        "[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nconnections = 2\nduration = \"4s\"\n\
         [[steps]]\nname = \"home\"\npath = \"/\"\ncheck = {{ status = [200] }}\n\
         [[steps]]\nname = \"bytes\"\npath = \"/bytes/100\"\n",
        sandbox.url("/")
    );
    let file = write_scenario(tmp.path(), "journey.toml", &text);
    let out = loadctl(
        &daemon,
        &["submit", "--detach", file.to_str().expect("utf-8")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let id = out.stdout.trim().to_string();
    let run = daemon.wait_run(&id, Duration::from_secs(20), |r| {
        r["intervals"].as_u64().unwrap_or(0) >= 1 || r["state"] != "running"
    });
    assert_eq!(run["state"], "running", "{run}");
    assert_eq!(run["steps"], serde_json::json!(["home", "bytes"]), "{run}");
    let (status, metrics) = daemon.get("/metrics");
    assert_eq!(status, 200);
    for step in ["home", "bytes"] {
        assert!(
            metrics.contains(&format!(
                "loadd_run_step_requests{{run=\"{id}\",step=\"{step}\"}}"
            )),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!(
                "loadd_run_step_latency_us{{run=\"{id}\",step=\"{step}\",quantile=\"0.99\"}}"
            )),
            "{metrics}"
        );
    }
    // Piped, the tail prints a line per step under each interval line.
    let tail = loadctl(&daemon, &["tail", &id]);
    assert_eq!(tail.code, Some(0), "{}\n{}", tail.stdout, tail.stderr);
    assert!(
        tail.stdout.contains("step home: ") && tail.stdout.contains("step bytes: "),
        "{}",
        tail.stdout
    );
    let (status, csv) = daemon.get(&format!("/v1/runs/{id}/report?format=csv"));
    assert_eq!(status, 200);
    let header = csv.lines().next().unwrap_or("");
    assert!(
        header.contains(",step_0_requests,") && header.contains(",step_1_latency_p99_us"),
        "{csv}"
    );
    let row: Vec<&str> = csv.lines().nth(1).unwrap_or("").split(',').collect();
    assert_eq!(row.len(), header.split(',').count(), "{csv}");
}

#[test]
fn sigterm_stops_the_run_and_keeps_its_result() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let mut daemon = serve(&state);
    let long = write_scenario(tmp.path(), "long.toml", &closed_scenario(&sandbox, "60s"));
    let out = loadctl(
        &daemon,
        &["submit", "--detach", long.to_str().expect("utf-8")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let id = out.stdout.trim().to_string();
    daemon.wait_run(&id, Duration::from_secs(20), |r| {
        r["intervals"].as_u64().unwrap_or(0) >= 2
    });
    let status = daemon.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{status:?}");
    drop(daemon);
    let daemon = serve(&state);
    let run = daemon.json(&format!("/v1/runs/{id}"));
    assert_eq!(run["state"], "finished", "{run}");
    assert_eq!(run["stop_requested"], true, "{run}");
    let report = daemon.json(&format!("/v1/runs/{id}/report"));
    assert!(report["requests"].as_u64().unwrap_or(0) > 0, "{report}");
    assert!(
        report["elapsed_s"].as_f64().unwrap_or(99.0) < 30.0,
        "{report}"
    );
}

#[test]
fn submit_sends_its_tasks_and_the_submitters_environment() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = serve(&tmp.path().join("state"));
    // Two tasks; each request carries a value only the submitting shell has.
    let text = format!(
        "[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nconnections = 2\nduration = \"1s\"\n\
         [[tasks]]\nname = \"reads\"\n[[tasks.steps]]\nname = \"read\"\npath = \"/\"\n\
         [[tasks]]\nname = \"writes\"\n[[tasks.steps]]\nname = \"write\"\nmethod = \"POST\"\n\
         path = \"/echo\"\nbody = \"key={{{{env('LOADD_T_SUBMIT_KEY')}}}}\"\n\
         check = {{ body_contains = \"key=from-the-shell\" }}\n",
        sandbox.url("/")
    );
    let file = write_scenario(tmp.path(), "tasks.toml", &text);
    let file = file.to_str().expect("utf-8");
    let submit = |args: &[&str]| -> TextOutput {
        let mut cmd = Command::new(testbed::bin("loadctl"));
        cmd.arg("submit")
            .args(args)
            .env("XDG_STATE_HOME", "/nonexistent")
            .env("LOADD_URL", daemon.url())
            .env("LOADD_TOKEN", daemon.token())
            .env("LOADD_T_SUBMIT_KEY", "from-the-shell");
        run_bounded(&mut cmd, LOADCTL_TIMEOUT).into()
    };

    let out = submit(&["--task", "writes", file]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let id = daemon.json("/v1/runs")["runs"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let report = daemon.json(&format!("/v1/runs/{id}/report"));
    let write = testbed::step(&report, "write");
    let writes = write["requests"].as_u64().expect("requests");
    assert!(writes > 0, "{report}");
    assert_eq!(write["checks_passed"], writes, "{report}");
    assert_eq!(report["errors_total"], 0, "{report}");
    assert_eq!(
        report["requests"], writes,
        "only the chosen task ran: {report}"
    );

    // A task the file does not have: refused here, in one line, before the daemon sees it.
    let out = submit(&["--task", "writs", file]);
    assert_eq!(out.code, Some(2), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("did you mean `writes`"),
        "{}",
        out.stderr
    );
    assert_eq!(
        daemon.json("/v1/runs")["runs"].as_array().map(Vec::len),
        Some(1)
    );

    // The daemon never reads its own environment for a scenario: PATH is set in its process.
    let probe = format!(
        "[target]\nurl = \"{}\"\n[[steps]]\nname = \"leak\"\npath = \"/?p={{{{env('PATH')}}}}\"\n",
        sandbox.url("/")
    );
    let (status, body) = daemon.call("POST", "/v1/runs?name=probe.toml", probe.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`PATH` is not set"), "{body}");
    let plain = text.replace("{{env('LOADD_T_SUBMIT_KEY')}}", "x");
    let (status, body) = daemon.call("POST", "/v1/runs?tasks=reads,nope", plain.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`nope` is not a task"), "{body}");
}
