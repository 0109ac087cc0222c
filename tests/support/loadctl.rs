//! Running `loadctl` as a child process with a hard time bound: stdout and stderr are captured
//! by reader threads, and a run past its bound is killed and reported with what it printed.
//!
//! It refuses to interpret results beyond "exit 0 and one JSON object": assertions belong to tests.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The bound `run_loadctl` and `run_json` put on one run.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A `loadctl` child being run; killed on drop if still running.
pub struct LoadctlRun {
    child: Child,
    args: Vec<String>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
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
        let loadctl = crate::bin("loadctl");
        let mut child = Command::new(&loadctl)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} {args:?}: {e}", loadctl.display()));
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        LoadctlRun {
            child,
            args,
            stdout,
            stderr,
        }
    }

    /// Waits for the exit; past `timeout` kills the child and panics with what it printed.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("wait for loadctl {:?}: {e}", self.args),
            }
        };
        let status: Option<ExitStatus> = match status {
            Some(status) => Some(status),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                None
            }
        };
        let stdout = self.stdout.take().map(join).unwrap_or_default();
        let stderr = self.stderr.take().map(join).unwrap_or_default();
        let Some(status) = status else {
            panic!(
                "loadctl {:?} did not finish within {timeout:?}: killed.\nstdout: {}\nstderr: {}",
                self.args,
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        };
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// `wait`, then asserts exit 0 and parses stdout as one JSON object.
    pub fn json(self, timeout: Duration) -> serde_json::Value {
        let args = self.args.clone();
        let output = self.wait(timeout);
        parse_json(&args, &output)
    }
}

impl Drop for LoadctlRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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

fn parse_json(args: &[String], output: &Output) -> serde_json::Value {
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

fn drain<R: Read + Send + 'static>(mut pipe: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn join(handle: JoinHandle<Vec<u8>>) -> Vec<u8> {
    handle.join().unwrap_or_default()
}
