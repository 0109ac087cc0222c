//! Every scenario file in `scenarios/` is validated and smoke-run against the sandbox, and
//! malformed files are refused with located messages and exit code 2 before any traffic.

use std::path::PathBuf;
use std::time::Duration;

use testbed::{run_loadctl, Sandbox};

fn scenario_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    files
}

#[test]
fn every_scenario_validates() {
    for file in scenario_files() {
        let out = run_loadctl(["validate".as_ref(), file.as_os_str()]);
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_scenario_smoke_runs_against_the_sandbox() {
    let _guard = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox starts");
    for file in scenario_files() {
        let path = file.display().to_string();
        // --smoke runs any file for ~2 s, keeping its rates and the shape of its stages.
        let (code, r, stderr) =
            testbed::run_file(&file, &["--base-url", &sandbox.url(""), "--smoke"]);
        assert!(
            matches!(code, Some(0 | 1)),
            "{path}: exit {code:?}: {stderr}"
        );
        if r["schema"] == "loadd.capacity.v1" {
            // A capacity search: every level passed (the smoke levels are far below capacity).
            let levels = r["levels"].as_array().map(Vec::len).unwrap_or(0);
            assert!(levels >= 2, "{path}: {r}");
            assert!(
                r["sustainable_rate_per_s"].as_f64().is_some(),
                "{path}: {r}"
            );
            continue;
        }
        let requests = r["requests"].as_u64().unwrap_or(0);
        assert!(requests > 0, "{path}: no requests: {r}");
        assert_eq!(r["errors_total"], 0, "{path}: errors: {}", r["errors"]);
        assert_eq!(
            r["checks_failed"], 0,
            "{path}: failed checks: {}",
            r["steps"]
        );
        // Latency thresholds are the workloads' SLOs, not assertions: on a shared 2-core box a
        // 2 s smoke run's tail is noise. Every other threshold (errors, checks, rates) must pass.
        let failed: Vec<&serde_json::Value> = r["thresholds"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter(|t| t["passed"] == false && t["unit"] != "us")
                    .collect()
            })
            .unwrap_or_default();
        assert!(failed.is_empty(), "{path}: {failed:?}");
        assert_eq!(r["setup_failed"], serde_json::Value::Null, "{path}");
        assert_eq!(
            r["teardown_failed"],
            serde_json::Value::Null,
            "{path}: {}",
            r["teardown"]
        );
    }
    assert!(sandbox.requests().expect("stats") > 0);
}

#[test]
fn malformed_scenarios_are_located_and_refused() {
    let dir = std::env::temp_dir().join(format!("loadd-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cases = [
        // (file text, expected location prefix, expected words)
        (
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nconections = 3\n",
            ":4:1:",
            "unknown field `conections`",
        ),
        (
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nrate = 0\n",
            ":4:8:",
            "rate must be greater than zero",
        ),
        (
            "[target]\nurl = \"ftp://127.0.0.1:1/\"\n",
            ":2:7:",
            "unsupported scheme",
        ),
        (
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nduration = \"5 parsecs\"\n",
            ":4:12:",
            "not a duration",
        ),
        (
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[request]\nbody_file = \"missing.bin\"\n",
            ":4:13:",
            "body_file: cannot read",
        ),
        // A TOML syntax error: located at the offending character, in the parser's words.
        ("[target\nurl = 1\n", ":1:8:", "invalid table header"),
    ];
    for (i, (text, at, words)) in cases.iter().enumerate() {
        let file = dir.join(format!("bad{i}.toml"));
        std::fs::write(&file, text).expect("write fixture");
        for cmd in ["validate", "run"] {
            let out = testbed::run_loadctl_timeout(
                [cmd.as_ref(), file.as_os_str()],
                Duration::from_secs(20),
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} case {i}: {stderr}");
            let expected = format!("{}{at}", file.display());
            assert!(
                stderr.contains(&expected),
                "{cmd} case {i}: want `{expected}` in {stderr}"
            );
            assert!(
                stderr.contains(words),
                "{cmd} case {i}: want `{words}` in {stderr}"
            );
            assert!(out.stdout.is_empty(), "{cmd} case {i}: printed results");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn several_errors_are_reported_at_once() {
    let dir = std::env::temp_dir().join(format!("loadd-multi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("multi.toml");
    std::fs::write(
        &file,
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nrate = -5\nconnections = 0\n[request]\nheaders = [\"no colon\"]\ntimeout = \"0s\"\n",
    )
    .expect("write fixture");
    let out = run_loadctl(["validate".as_ref(), file.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    for (line, want) in lines.iter().zip([":4:8:", ":5:15:", ":7:12:", ":8:11:"]) {
        assert!(line.contains(want), "{line} should be at {want}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
