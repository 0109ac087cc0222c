//! Scenario files written for one test, run with `loadctl run FILE --output json`, and the
//! check that validation errors point at the right lines.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// Writes `text` to `name` in a temporary directory of this test process, tagged by `tag`.
pub fn scenario_file(tag: &str, name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadd-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// `loadctl run FILE --output json EXTRA…` (60 s bound): exit code, results (Null if none),
/// stderr.
pub fn run_file(file: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec![
        "run".to_string(),
        file.display().to_string(),
        "--output".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = crate::run_loadctl_timeout(&args, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.code(),
        serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `loadctl validate FILE` must exit 2 with, for each `(line, needle)`, an error located at
/// `FILE:line:` that contains `needle`.
pub fn assert_located(file: &Path, expected: &[(usize, &str)]) {
    let out = crate::run_loadctl_timeout(
        ["validate".to_string(), file.display().to_string()],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = file.display().to_string();
    for (line, needle) in expected {
        let prefix = format!("{name}:{line}:");
        assert!(
            err.lines()
                .map(|l| l.trim_start_matches("error: "))
                .any(|l| l.starts_with(&prefix) && l.contains(needle)),
            "expected `{needle}` at line {line}:\n{err}"
        );
    }
}

/// The result of the step named `name` in a run's JSON results.
pub fn step<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {}", r["steps"]))
}
