//! A misbehaving target is counted by error kind while the run goes on: resets, closes without
//! an answer, garbage, a 1 MiB header, a body cut short (lying Content-Length, unfinished chunked)
//! and silence (timeouts).
//! Each case runs a bounded closed-model load against one of the sandbox's raw endpoints and
//! checks that every request the sandbox saw shows up as exactly the expected kind.

use testbed::{run_json, Sandbox};

fn run_against(sandbox: &Sandbox, path: &str, extra: &[&str]) -> serde_json::Value {
    let url = sandbox.url(path);
    let mut args = vec![
        "run",
        url.as_str(),
        "-c",
        "2",
        "-t",
        "1",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    run_json(args)
}

fn errors(r: &serde_json::Value, kind: &str) -> u64 {
    r["errors"][kind].as_u64().unwrap_or(0)
}

#[test]
fn each_misbehaviour_is_counted_by_its_kind() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    for (path, kind) in [
        ("/misbehave/reset", "reset"),
        ("/misbehave/close", "reset"),
        ("/misbehave/garbage", "parse"),
        ("/misbehave/huge-header", "head_too_large"),
        // A clean close inside the body is its own kind: the server stopped short, nothing broke.
        ("/misbehave/lying-length", "incomplete"),
        ("/misbehave/short-chunked", "incomplete"),
    ] {
        let r = run_against(&sandbox, path, &["-n", "50"]);
        assert_eq!(r["requests"], 0, "{path}: no valid response expected: {r}");
        assert_eq!(
            errors(&r, kind),
            50,
            "{path}: want 50 {kind}: {}",
            r["errors"]
        );
        assert_eq!(
            r["errors_total"], 50,
            "{path}: only {kind} expected: {}",
            r["errors"]
        );
    }
    // A good request afterwards still works: nothing in the generator was broken.
    let r = run_against(&sandbox, "/", &["-n", "20"]);
    assert_eq!(r["requests"], 20);
    assert_eq!(r["errors_total"], 0);
}

#[test]
fn silence_is_a_timeout_and_the_run_still_ends() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    let r = run_against(
        &sandbox,
        "/misbehave/silent",
        &["-n", "4", "--timeout", "300ms"],
    );
    assert_eq!(errors(&r, "timeout"), 4, "{}", r["errors"]);
    assert_eq!(r["requests"], 0);
}

#[test]
fn a_trickled_response_is_complete() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    // 100 bytes one at a time every 10 ms: ~1 s per response; 2 of them in parallel.
    let r = run_against(
        &sandbox,
        "/misbehave/trickle",
        &["-n", "2", "--timeout", "5s"],
    );
    assert_eq!(r["requests"], 2, "{}", r["errors"]);
    assert_eq!(r["errors_total"], 0);
    assert!(
        r["latency_us"]["min"].as_u64().unwrap_or(0) >= 900_000,
        "{}",
        r["latency_us"]
    );
}

#[test]
fn a_refused_connection_is_counted_and_the_run_ends() {
    let _guard = testbed::serial();
    // A port nobody listens on (bound then released).
    let port = testbed::free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let r = run_json(
        [url.as_str(), "-c", "2", "-d", "500ms", "--output", "json"]
            .iter()
            .fold(vec!["run"], |mut v, a| {
                v.push(a);
                v
            }),
    );
    assert!(errors(&r, "connect") > 0, "{}", r["errors"]);
    assert_eq!(r["requests"], 0);
}

#[test]
fn captures_and_checks_read_the_final_head_after_early_hints() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    // The sandbox writes a 103 (`x-stage: hint`) and the 200 (`x-stage: final`, `x-final`) in
    // one write, so both heads arrive in one read.
    let file = testbed::scenario_file(
        "misbehave",
        "early_hints.toml",
        &format!(
            r#"[target]
url = "{}"
[load]
model = "closed"
connections = 2
requests = 20
[[steps]]
name = "hinted"
path = "/misbehave/early-hints"
capture = {{ stage = {{ header = "x-stage" }} }}
check = {{ header = ["x-final"] }}
[[steps]]
name = "after"
method = "POST"
path = "/echo"
body = "stage={{{{stage}}}}"
# The sandbox serves /misbehave/* only as a connection's first request.
headers = ["Connection: close"]
check = {{ body_contains = "stage=final" }}
"#,
            sandbox.url("")
        ),
    );
    let (code, r, stderr) = testbed::run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let hinted = testbed::step(&r, "hinted");
    assert_eq!(hinted["requests"], 20, "{hinted}");
    assert_eq!(hinted["errors_total"], 0, "{}", hinted["errors"]);
    assert_eq!(hinted["checks_passed"], 20, "{hinted}");
    assert_eq!(hinted["checks_failed"], 0, "{hinted}");
    // The captured value is the final head's, as the echo shows.
    let after = testbed::step(&r, "after");
    assert_eq!(after["requests"], 20, "{after}");
    assert_eq!(after["checks_passed"], 20, "{after}");
    assert_eq!(sandbox.requests().expect("sandbox stats"), 40);
}

#[test]
fn a_kept_body_past_max_body_is_body_too_large_and_the_limit_is_configurable() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    // A 2 MB body a check reads: over the 1 MiB default, under a 4 MiB limit.
    for (engine, kind) in [("", "body_too_large"), ("max_body = \"4MiB\"", "ok")] {
        let file = testbed::scenario_file(
            "misbehave",
            "max_body.toml",
            &format!(
                r#"[target]
url = "{}"
[load]
model = "closed"
connections = 2
requests = 10
[engine]
{engine}
[[steps]]
name = "big"
path = "/bytes/2000000"
check = {{ body_contains = "never there" }}
"#,
                sandbox.url("")
            ),
        );
        let (code, r, stderr) = testbed::run_file(&file, &[]);
        assert_eq!(code, Some(0), "{stderr}");
        let big = testbed::step(&r, "big");
        if kind == "ok" {
            assert_eq!(big["requests"], 10, "{big}");
            assert_eq!(big["errors_total"], 0, "{}", big["errors"]);
            assert_eq!(big["checks_failed"], 10, "the whole body was read: {big}");
        } else {
            assert_eq!(big["errors"][kind], 10, "{}", big["errors"]);
            assert_eq!(big["errors_total"], 10, "{}", big["errors"]);
        }
    }
}
