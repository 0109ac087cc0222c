//! `loadd serve` cannot be turned against its owner: limits checked on the scenario before it is
//! planned (400 naming the flag), closed-model runs held to `--max-rate` while they go, tokens
//! too short to start with, failed attempts limited per address and audited, results on disk
//! before a run is finished, private state files, the built-in deny list and port-scoped
//! allowlist, and `loadctl submit` refusing to bundle files from outside the scenario's folder.
//!
//! No test here sends anywhere but loopback: every submission whose target is not loopback
//! carries a `start_at` minutes ahead, so even a daemon that wrongly accepted it would only wait
//! (until the test kills it), never connect.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use testbed::{Daemon, Sandbox, ServeOptions};

fn submit(daemon: &Daemon, toml: &str) -> (u16, String) {
    daemon.call("POST", "/v1/runs", toml.as_bytes())
}

/// Unix ms `secs` from now: a start time that keeps a wrongly accepted run waiting.
fn later(secs: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    now + secs * 1000
}

fn run_id(body: &str) -> String {
    let v: Value = serde_json::from_str(body).expect("JSON");
    v["id"].as_str().expect("an id").to_string()
}

fn is_over(run: &Value) -> bool {
    matches!(
        run["state"].as_str(),
        Some("finished" | "failed" | "aborted")
    )
}

#[test]
fn limits_are_checked_on_the_spec_before_planning() {
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        &tmp.path().join("state"),
        &[
            "--max-rate",
            "1000",
            "--max-duration",
            "1m",
            "--max-threads",
            "2",
            "--max-payload-bytes",
            "10MiB",
        ],
    )
    .expect("loadd serve");
    let head = format!("[target]\nurl = \"{}\"\n", sandbox.url("/"));
    let at = later(500);
    let steps = |n: usize, extra: &str| format!("[[steps]]\npath = \"/\"\n{extra}").repeat(n);
    let cases = [
        (format!("{head}[engine]\nthreads = 1000\n"), "--max-threads"),
        (format!("{head}[engine]\ncpus = [0, 0, 0]\n"), "--max-threads"),
        (
            format!("{head}{}", steps(2, "upload = { size = \"8MiB\" }\n")),
            "--max-payload-bytes",
        ),
        (format!("{head}{}", steps(300, "")), "--max-steps"),
        (
            format!("{head}[load]\nconnections = 2\nduration = \"10s\"\ngraceful_stop = \"2h\"\n"),
            "--max-duration",
        ),
        (
            // A mean of ~380/s, under the limit; one second peaks at 20000/s.
            format!(
                "{head}[load]\nstart_rate = 0\nstages = [{{ duration = \"1s\", target = 20000 }}, {{ duration = \"1s\", target = 0 }}, {{ duration = \"50s\", target = 0 }}]\n"
            ),
            "--max-rate",
        ),
        (
            format!(
                "{head}[engine]\nlocal_ips = [{}]\n",
                (0..2000)
                    .map(|i| format!("\"127.0.{}.{}\"", i / 250, 1 + i % 250))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            "local_ips",
        ),
    ];
    for (toml, limit) in &cases {
        let (status, body) =
            daemon.call("POST", &format!("/v1/runs?start_at={at}"), toml.as_bytes());
        assert_eq!(status, 400, "{limit}: {body}");
        assert!(body.contains(limit), "{limit}: {body}");
    }
    assert_eq!(daemon.json("/v1/runs")["runs"], Value::Array(vec![]));
    assert_eq!(sandbox.requests().expect("sandbox count"), 0);
}

#[test]
fn a_closed_model_run_is_held_to_the_rate_limit_while_it_goes() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon =
        Daemon::start(&tmp.path().join("state"), &["--max-rate", "50"]).expect("loadd serve");
    // Back to back on four connections: far more than 50/s, and nothing to check it by ahead.
    let toml = format!(
        "[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nconnections = 4\nduration = \"20s\"\n",
        sandbox.url("/")
    );
    let (status, body) = submit(&daemon, &toml);
    assert_eq!(status, 201, "{body}");
    let started = Instant::now();
    let run = daemon.wait_run(&run_id(&body), Duration::from_secs(15), is_over);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run went on for {:?}",
        started.elapsed()
    );
    assert_eq!(run["state"], "finished", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("--max-rate"), "{run}");
}

#[test]
fn a_short_token_is_refused_at_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(testbed::bin("loadd"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(tmp.path())
        .env("LOADD_TOKEN", "short-but-not-empty");
    let out: testbed::TextOutput = testbed::run_bounded(&mut cmd, Duration::from_secs(10)).into();
    assert_eq!(out.code, Some(2), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(lines[0].contains("at least 32"), "{out:?}");
    assert!(
        !lines[0].contains("short-but-not-empty"),
        "the token leaked: {out:?}"
    );
}

#[test]
fn failed_attempts_are_limited_per_address_and_every_decision_is_audited() {
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let made = testbed::run_bounded(
        Command::new(testbed::bin("loadd"))
            .args(["token", "add", "ci-runner", "--state-dir"])
            .arg(&state),
        Duration::from_secs(10),
    );
    assert!(made.status.success(), "{made:?}");
    let ci_token = String::from_utf8_lossy(&made.stdout).trim().to_string();
    assert!(ci_token.len() >= 32, "{ci_token:?}");
    let log = tmp.path().join("loadd.log");
    let daemon = Daemon::start_with(
        &state,
        ServeOptions {
            stderr_file: Some(&log),
            ..ServeOptions::default()
        },
    )
    .expect("loadd serve");

    // A client's own token submits and stops; its name is in the audit lines.
    let toml = format!(
        "[target]\nurl = \"{}\"\n[load]\nconnections = 2\nduration = \"5s\"\n",
        sandbox.url("/")
    );
    let at = later(300);
    let (status, body) = daemon.call_as(
        "POST",
        &format!("/v1/runs?start_at={at}"),
        Some(&ci_token),
        toml.as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    let id = run_id(&body);
    let (status, body) = daemon.call("POST", &format!("/v1/runs/{id}/stop"), b"");
    assert_eq!(status, 202, "{body}");
    let (status, _) = submit(&daemon, "[target]\nurl = \"http://192.0.2.1/\"\n");
    assert_eq!(status, 403);

    // Wrong tokens: counted, then the address is refused even with the right one.
    for _ in 0..10 {
        let (status, _) = daemon.call_as("GET", "/v1/runs", Some("wrong"), b"");
        assert_eq!(status, 401);
    }
    let (status, body) = daemon.call_as("GET", "/v1/runs", Some("wrong"), b"");
    assert_eq!(status, 429, "{body}");
    let (status, body) = daemon.get("/v1/runs");
    assert_eq!(
        status, 429,
        "the limit holds for the right token too: {body}"
    );
    assert_eq!(daemon.health(), 200, "health needs no token");

    let text = std::fs::read_to_string(&log).expect("loadd's log");
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("loadd: audit:"))
        .collect();
    let has = |what: &[&str]| audit.iter().any(|l| what.iter().all(|w| l.contains(w)));
    assert!(
        has(&[
            "ci-runner from 127.0.0.1:",
            &format!("submit: run {id}"),
            &sandbox.url("/"),
            "connections 2"
        ]),
        "{text}"
    );
    assert!(
        has(&["default from 127.0.0.1:", &format!("stop: run {id}")]),
        "{text}"
    );
    assert!(
        has(&[
            "default from 127.0.0.1:",
            "refused submit: 403",
            "192.0.2.1"
        ]),
        "{text}"
    );
    assert!(
        has(&[
            "unauthenticated from 127.0.0.1:",
            "wrong bearer token",
            "10 failures"
        ]),
        "{text}"
    );
    assert!(!text.contains(&ci_token), "a token reached the log");
}

#[test]
fn a_run_is_finished_only_once_its_result_is_on_disk_and_state_is_private() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let daemon = Daemon::start(&state, &[]).expect("loadd serve");
    let toml = |secs: u64| {
        format!(
            "[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nconnections = 2\nduration = \"{secs}s\"\n[request]\nheaders = [\"Authorization: Bearer target-secret\"]\n",
            sandbox.url("/")
        )
    };

    // A result that cannot be written (its name taken by a directory) must not end `finished`.
    let (status, body) = submit(&daemon, &toml(2));
    assert_eq!(status, 201, "{body}");
    let id = run_id(&body);
    std::fs::create_dir_all(state.join("runs").join(&id).join("result.json/in-the-way"))
        .expect("block result.json");
    let run = daemon.wait_run(&id, Duration::from_secs(20), is_over);
    assert_eq!(run["state"], "failed", "{run}");
    assert!(
        run["error"].as_str().unwrap_or_default().contains("result"),
        "{run}"
    );

    // A run that saves: every directory 0700, every file 0600, whatever the umask.
    let (status, body) = submit(&daemon, &toml(1));
    assert_eq!(status, 201, "{body}");
    let id = run_id(&body);
    let run = daemon.wait_run(&id, Duration::from_secs(20), is_over);
    assert_eq!(run["state"], "finished", "{run}");
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    let dir = state.join("runs").join(&id);
    assert_eq!(mode(&state.join("runs")), 0o700);
    assert_eq!(mode(&dir), 0o700);
    for entry in std::fs::read_dir(&dir).expect("run dir") {
        let p = entry.expect("entry").path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    assert!(dir.join("result.json").is_file());
}

#[test]
fn the_deny_list_holds_whatever_allow_says() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        &tmp.path().join("state"),
        &["--allow", "::/0", "--allow", "0.0.0.0/0"],
    )
    .expect("loadd serve");
    let at = later(500);
    let own = daemon.url();
    let targets = [
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[::ffff:169.254.169.254]/".to_string(),
        "http://0.0.0.0:9/".to_string(),
        "http://[::]:9/".to_string(),
        "http://224.0.0.1:9/".to_string(),
        "http://[fe80::1]:9/".to_string(),
        format!("{own}/v1/runs"),
    ];
    for target in &targets {
        let toml =
            format!("[target]\nurl = \"{target}\"\n[load]\nconnections = 1\nduration = \"1s\"\n");
        let (status, body) =
            daemon.call("POST", &format!("/v1/runs?start_at={at}"), toml.as_bytes());
        assert_eq!(status, 403, "{target}: {body}");
        assert!(body.contains("never a load target"), "{target}: {body}");
    }
    assert_eq!(daemon.json("/v1/runs")["runs"], Value::Array(vec![]));
}

#[test]
fn mapped_addresses_are_not_admitted_by_an_ipv6_rule() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon =
        Daemon::start(&tmp.path().join("state"), &["--allow", "::/0"]).expect("loadd serve");
    let toml = "[target]\nurl = \"http://[::ffff:10.0.0.1]:9/\"\n[load]\nconnections = 1\nduration = \"1s\"\n";
    let (status, body) = daemon.call(
        "POST",
        &format!("/v1/runs?start_at={}", later(500)),
        toml.as_bytes(),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("10.0.0.1") && body.contains("allowlist"),
        "{body}"
    );
}

#[test]
fn deny_loopback_admits_only_the_port_a_rule_names() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let rule = format!("127.0.0.1:{}", sandbox.addr().port());
    let daemon = Daemon::start(
        &tmp.path().join("state"),
        &["--deny-loopback", "--allow", &rule],
    )
    .expect("loadd serve");
    let scenario =
        |url: &str| format!("[target]\nurl = \"{url}\"\n[load]\nconnections = 1\nrequests = 5\n");
    let (status, body) = submit(&daemon, &scenario(&sandbox.url("/")));
    assert_eq!(status, 201, "{body}");
    let run = daemon.wait_run(&run_id(&body), Duration::from_secs(20), is_over);
    assert_eq!(run["state"], "finished", "{run}");
    let other = format!("http://127.0.0.1:{}/", testbed::free_port());
    let (status, body) = submit(&daemon, &scenario(&other));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("allowlist"), "{body}");
}

#[test]
fn submit_refuses_files_outside_the_scenario_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&tmp.path().join("state"), &[]).expect("loadd serve");
    std::fs::write(tmp.path().join("secret"), "do-not-send").expect("secret");
    let folder = tmp.path().join("scenarios");
    std::fs::create_dir_all(&folder).expect("folder");
    std::os::unix::fs::symlink(tmp.path().join("secret"), folder.join("link")).expect("link");
    let secret = tmp.path().join("secret");
    for (name, file) in [
        ("up.toml", "../secret".to_string()),
        ("abs.toml", secret.display().to_string()),
        ("link.toml", "link".to_string()),
    ] {
        let path = folder.join(name);
        std::fs::write(
            &path,
            format!(
                "[target]\nurl = \"http://127.0.0.1:9/\"\n[request]\nmethod = \"POST\"\nbody_file = \"{file}\"\n"
            ),
        )
        .expect("scenario");
        let out = daemon.loadctl(
            &["submit", path.to_str().expect("utf-8 path")],
            Duration::from_secs(20),
        );
        assert_eq!(out.code, Some(2), "{name}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: {out:?}");
        assert!(
            lines[0].contains(&format!("{name}:5:")) && lines[0].contains("outside"),
            "{name}: {out:?}"
        );
    }
    assert_eq!(daemon.json("/v1/runs")["runs"], Value::Array(vec![]));
}

/// An event stream opened by hand: the status line of its answer, and the socket kept open.
fn open_events(daemon: &Daemon, id: &str) -> (String, std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(daemon.addr()).expect("connect to loadd");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let request = format!(
        "GET /v1/runs/{id}/events HTTP/1.1\r\nHost: loadd\r\nAuthorization: Bearer {}\r\n\r\n",
        daemon.token()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut line = String::new();
    BufReader::new(stream.try_clone().expect("clone"))
        .read_line(&mut line)
        .expect("a status line");
    (line, stream)
}

#[test]
fn the_queue_and_the_event_streams_are_bounded() {
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        &tmp.path().join("state"),
        &["--max-queued", "1", "--max-subscribers", "2"],
    )
    .expect("loadd serve");
    // The first waits for its start time (it holds the runner), the second queues behind it.
    let toml = format!(
        "[target]\nurl = \"{}\"\n[load]\nconnections = 1\nduration = \"1s\"\n",
        sandbox.url("/")
    );
    let path = format!("/v1/runs?start_at={}", later(300));
    let (status, body) = daemon.call("POST", &path, toml.as_bytes());
    assert_eq!(status, 201, "{body}");
    let first = run_id(&body);
    let (status, body) = daemon.call("POST", &path, toml.as_bytes());
    assert_eq!(status, 201, "{body}");
    let (status, body) = daemon.call("POST", &path, toml.as_bytes());
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("--max-queued"), "{body}");

    let (a, _keep_a) = open_events(&daemon, &first);
    let (b, keep_b) = open_events(&daemon, &first);
    assert!(a.contains(" 200 ") && b.contains(" 200 "), "{a} {b}");
    let (c, _) = open_events(&daemon, &first);
    assert!(c.contains(" 429 "), "{c}");
    drop(keep_b);
    // The slot comes back once the server sees the stream gone (its next write or keep-alive).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (d, _keep_d) = open_events(&daemon, &first);
        if d.contains(" 200 ") {
            break;
        }
        assert!(Instant::now() < deadline, "no slot came back: {d}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(sandbox.requests().expect("sandbox count"), 0);
}

#[test]
fn old_runs_are_deleted_past_keep_runs_and_on_request() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let daemon = Daemon::start(&state, &["--keep-runs", "2"]).expect("loadd serve");
    let toml = format!(
        "[target]\nurl = \"{}\"\n[load]\nconnections = 1\nrequests = 3\n",
        sandbox.url("/")
    );
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, body) = submit(&daemon, &toml);
        assert_eq!(status, 201, "{body}");
        let id = run_id(&body);
        daemon.wait_run(&id, Duration::from_secs(20), is_over);
        ids.push(id);
    }
    let listed: Vec<String> = daemon.json("/v1/runs")["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(listed, vec![ids[2].clone(), ids[1].clone()]);
    assert!(
        !state.join("runs").join(&ids[0]).exists(),
        "the oldest run's files stay"
    );

    let (status, body) = daemon.call("DELETE", &format!("/v1/runs/{}", ids[1]), b"");
    assert_eq!(status, 204, "{body}");
    assert!(!state.join("runs").join(&ids[1]).exists());
    assert_eq!(daemon.get(&format!("/v1/runs/{}", ids[1])).0, 404);
    assert_eq!(daemon.call("DELETE", "/v1/runs/..", b"").0, 404);

    // A run that is not over cannot be deleted.
    let (status, body) = daemon.call(
        "POST",
        &format!("/v1/runs?start_at={}", later(300)),
        toml.as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    let waiting = run_id(&body);
    let (status, body) = daemon.call("DELETE", &format!("/v1/runs/{waiting}"), b"");
    assert_eq!(status, 409, "{body}");
}

#[test]
fn kill_9_around_the_result_write_never_leaves_a_finished_run_without_its_result() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let toml = format!(
        "[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nconnections = 4\nduration = \"500ms\"\n",
        sandbox.url("/")
    );
    // SIGKILL at times spanning the run's end and its result's write: before the load ends,
    // around it, and well after.
    let mut ids = Vec::new();
    for after_ms in [300, 450, 550, 600, 650, 700, 800, 2500] {
        let daemon = Daemon::start(&state, &[]).expect("loadd serve");
        let (status, body) = submit(&daemon, &toml);
        assert_eq!(status, 201, "{body}");
        ids.push(run_id(&body));
        std::thread::sleep(Duration::from_millis(after_ms));
        drop(daemon);
    }
    let daemon = Daemon::start(&state, &[]).expect("loadd serve");
    let (mut finished, mut aborted) = (0, 0);
    for id in &ids {
        let run = daemon.json(&format!("/v1/runs/{id}"));
        match run["state"].as_str() {
            // Finished means complete: its result and its histogram are there and whole.
            Some("finished") => {
                finished += 1;
                let report = daemon.json(&format!("/v1/runs/{id}/report"));
                assert!(report["requests"].as_u64().unwrap_or(0) > 0, "{report}");
                let (status, _) = daemon.get(&format!("/v1/runs/{id}/histogram"));
                assert_eq!(status, 200, "{id}");
            }
            Some("aborted") => aborted += 1,
            _ => panic!("{id} after kill -9 and a restart: {run}"),
        }
    }
    assert!(
        finished >= 1 && aborted >= 1,
        "{finished} finished, {aborted} aborted"
    );
}
