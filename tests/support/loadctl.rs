//! Running `loadctl` as a child process with a hard time bound (a `Captured` child): stdout and
//! stderr are captured, and a run past its bound is killed and reported with what it printed.
//!
//! It refuses to interpret results beyond "exit 0 and one JSON object": assertions belong to tests.

use std::ffi::OsStr;
use std::process::{Command, Output};
use std::time::Duration;

use crate::child::Captured;

/// The bound `run_loadctl` and `run_json` put on one run.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A `loadctl` child being run; killed on drop if still running.
pub struct LoadctlRun {
    child: Captured,
    args: Vec<String>,
}

impl LoadctlRun {
    pub fn start<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let child = Captured::spawn(Command::new(crate::bin("loadctl")).args(&args));
        LoadctlRun { child, args }
    }

    /// Waits for the exit; past `timeout` kills the child and panics with what it printed.
    pub fn wait(self, timeout: Duration) -> Output {
        self.child.wait(timeout)
    }

    /// `wait`, then asserts exit 0 and parses stdout as one JSON object.
    pub fn json(self, timeout: Duration) -> serde_json::Value {
        let output = self.child.wait(timeout);
        parse_json(&self.args, &output)
    }
}

/// Runs `loadctl ARGS` to completion (bounded by `DEFAULT_RUN_TIMEOUT`).
pub fn run_loadctl<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    LoadctlRun::start(args).wait(DEFAULT_RUN_TIMEOUT)
}

/// Runs `loadctl ARGS` to completion within `timeout`.
pub fn run_loadctl_timeout<I, S>(args: I, timeout: Duration) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    LoadctlRun::start(args).wait(timeout)
}

/// Runs `loadctl ARGS` (which should include `--output json`), asserts exit 0 and returns the
/// JSON object it printed.
pub fn run_json<I, S>(args: I) -> serde_json::Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    LoadctlRun::start(args).json(DEFAULT_RUN_TIMEOUT)
}

pub(crate) fn parse_json(args: &[String], output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "loadctl {args:?} exited with {}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("loadctl {args:?} stdout is not one JSON object ({e}):\n{stdout}\nstderr: {stderr}")
    });
    assert!(
        value.is_object(),
        "loadctl {args:?} printed JSON that is not an object: {value}"
    );
    value
}
