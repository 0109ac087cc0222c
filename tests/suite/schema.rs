//! `docs/results.schema.json` against real results: `loadctl run --output json` over HTTP (closed,
//! open, with errors, a multi-scenario file with thresholds), ws://, https:// and h2c, and the JSON
//! report loadd serves for a submitted run. The schema is strict (every field required, no
//! unknown ones), so a field added to or dropped from `engine::Results` fails here until the
//! schema says so.
//!
//! It checks shapes only; what the figures should be is for the tests of each feature.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use testbed::{run_json, Daemon, Nginx, NginxConfig, NginxTls, Pki, Sandbox};

const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results.schema.json");
        let text = std::fs::read_to_string(&path).expect("read docs/results.schema.json");
        let schema: Value = serde_json::from_str(&text).expect("docs/results.schema.json is JSON");
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", path.display()))
    })
}

/// Every way `result` breaks the schema, one per line (empty when it conforms).
fn violations(result: &Value) -> String {
    validator()
        .iter_errors(result)
        .map(|e| format!("  at `{}`: {e}\n", e.instance_path()))
        .collect()
}

fn assert_conforms(what: &str, result: &Value) {
    let found = violations(result);
    assert!(
        found.is_empty(),
        "{what}: the result does not match docs/results.schema.json:\n{found}"
    );
}

fn run(args: &[&str]) -> Value {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "json", "-q"]);
    run_json(&all)
}

#[test]
fn http_runs_match_the_schema() {
    let _load = testbed::serial();
    let sandbox = Sandbox::start().unwrap();
    let closed = run(&[&sandbox.url("/"), "-n", "300", "-c", "4"]);
    assert_eq!(
        closed["http_version"],
        serde_json::json!({ "1.1": 300 }),
        "{closed}"
    );
    assert_conforms("closed model", &closed);
    let open = run(&[&sandbox.url("/"), "-R", "200", "-d", "1s", "-c", "4"]);
    assert_conforms("open model", &open);
    // Errors by kind in the intervals, and a status class other than 2xx.
    let failing = run(&[&sandbox.url("/status/503"), "-n", "50", "-c", "2"]);
    assert!(
        failing["errors"]["status_5xx"].as_u64() > Some(0),
        "{failing}"
    );
    assert_conforms("5xx answers", &failing);
    // Several scenarios with tags, journeys, checks and thresholds; the file's fingerprint.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/api_load.toml");
    let file = file.to_str().unwrap();
    let scenarios = testbed::run_loadctl([
        "run",
        file,
        "--base-url",
        &sandbox.url(""),
        "--smoke",
        "--output",
        "json",
        "-q",
    ]);
    let stdout = String::from_utf8_lossy(&scenarios.stdout);
    let scenarios: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "api_load.toml: no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&scenarios.stderr)
        )
    });
    assert_eq!(scenarios["model"]["kind"], "scenarios", "{scenarios}");
    assert!(!scenarios["thresholds"].as_array().unwrap().is_empty());
    assert_conforms("scenarios/api_load.toml", &scenarios);
}

#[test]
fn websocket_tls_and_h2_runs_match_the_schema() {
    let _load = testbed::serial();
    let sandbox = Sandbox::start().unwrap();
    let ws_url = format!("ws://{}/ws/echo", sandbox.addr());
    let ws = run(&[&ws_url, "-c", "4", "-R", "100", "-d", "1s"]);
    assert!(ws["websocket"].is_object(), "{ws}");
    assert_conforms("ws:// run", &ws);
    let journey = testbed::scenario_file(
        "schema",
        "ws_steps.toml",
        &format!(
            "[target]\nurl = \"http://{}\"\n[load]\nmodel = \"closed\"\nconnections = 2\niterations = 10\n\
             [[steps]]\nws_connect = \"/ws/echo\"\n[[steps]]\nws_send = {{ text = \"hi\" }}\n\
             [[steps]]\nws_expect = {{ text_contains = \"hi\" }}\n",
            sandbox.addr()
        ),
    );
    let steps = run(&[&journey.display().to_string()]);
    assert_eq!(steps["ws_messages"]["sent"], 10, "{steps}");
    assert_conforms("journey with WebSocket steps", &steps);

    let pki = Pki::generate().unwrap();
    let nginx = Nginx::start_tls(
        NginxConfig::default(),
        NginxTls::new(&pki.server_cert, &pki.server_key),
    )
    .unwrap();
    let https = run(&[&nginx.https_url("/"), "-k", "-n", "200", "-c", "2"]);
    assert!(https["tls"].is_object(), "{https}");
    assert_conforms("https:// run", &https);

    let h2c = Nginx::start_with(NginxConfig {
        h2c: true,
        ..NginxConfig::default()
    })
    .unwrap();
    let h2 = run(&[
        &h2c.h2c_url("/"),
        "--http2",
        "--streams",
        "4",
        "-n",
        "200",
        "-c",
        "2",
    ]);
    assert_eq!(h2["model"]["h2_streams"], 4, "{h2}");
    assert_conforms("HTTP/2 run", &h2);
}

#[test]
fn the_daemons_report_matches_the_schema() {
    let _load = testbed::serial();
    let sandbox = Sandbox::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("state"), &[]).unwrap();
    let file = tmp.path().join("closed.toml");
    std::fs::write(
        &file,
        format!(
            "thresholds = [\"p99 < 5s\"]\n[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nconnections = 2\nduration = \"1s\"\n",
            sandbox.url("/")
        ),
    )
    .unwrap();
    let out = daemon.loadctl(&["submit", file.to_str().unwrap()], SUBMIT_TIMEOUT);
    assert_eq!(out.code, Some(0), "submit: {}\n{}", out.stdout, out.stderr);
    let runs = daemon.json("/v1/runs");
    let id = runs["runs"][0]["id"].as_str().unwrap().to_string();
    let report = daemon.json(&format!("/v1/runs/{id}/report?format=json"));
    assert!(report["requests"].as_u64() > Some(0), "{report}");
    assert_conforms("loadd's JSON report", &report);
}

/// The schema catches drift both ways: a field the results lose, and one they gain unannounced.
#[test]
fn the_schema_refuses_a_missing_or_unknown_field() {
    let _load = testbed::serial();
    let sandbox = Sandbox::start().unwrap();
    let result = run(&[&sandbox.url("/"), "-n", "100", "-c", "2"]);
    assert_conforms("plain run", &result);
    let pointers = [
        "/environment",
        "/latency_distribution",
        "/websocket",
        "/environment/kernel",
        "/errors/ws_closed",
        "/latency_us/p99_9",
        "/steps/0/latency_p95_us",
        "/intervals/0/latency_p999_us",
        "/scenarios/0/iterations_interrupted",
    ];
    for pointer in pointers {
        let mut broken = result.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let removed = broken
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .and_then(|o| o.remove(key));
        assert!(
            removed.is_some(),
            "{pointer} is not in the result: {result}"
        );
        assert!(
            !violations(&broken).is_empty(),
            "the schema accepts a result without {pointer}"
        );
    }
    for parent in ["", "/model", "/latency_us", "/steps/0", "/environment"] {
        let mut broken = result.clone();
        broken
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap()
            .insert("surprise".into(), Value::from(1));
        assert!(
            !violations(&broken).is_empty(),
            "the schema accepts an unknown field in `{parent}`"
        );
    }
}
