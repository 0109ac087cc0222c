//! Child processes the tests and benches start, in the two shapes they come in: a command run to
//! its exit with stdout and stderr captured (`Captured`, `run_bounded`), and a server whose first
//! line on stdout is its banner (`spawn_with_banner`). Pipes are drained by threads, so no child
//! ever blocks on a full pipe.
//!
//! It refuses to wait without a bound: a command past its bound is killed and the test fails with
//! what it printed; a server that prints no banner within its bound is killed and reported.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How often a running child is checked for its exit.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// A running command whose stdout and stderr are being captured; killed on drop if still running.
pub struct Captured {
    child: Child,
    /// The command as `{:?}` shows it, for failure messages.
    what: String,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Captured {
    /// Spawns `cmd` with stdin from /dev/null and both outputs captured.
    pub fn spawn(cmd: &mut Command) -> Captured {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        Captured {
            child,
            what,
            stdout,
            stderr,
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the exit; past `timeout` kills the child and panics with what it printed.
    pub fn wait(self, timeout: Duration) -> Output {
        self.wait_watching(timeout, || {})
    }

    /// `wait`, calling `watch()` before each check for the exit, while the child's `/proc`
    /// entry still exists (it is gone once the exit is reaped).
    pub fn wait_watching(mut self, timeout: Duration, mut watch: impl FnMut()) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            watch();
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(POLL_EVERY),
                Err(e) => panic!("wait for {}: {e}", self.what),
            }
        };
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let stdout = self.stdout.take().map(join).unwrap_or_default();
        let stderr = self.stderr.take().map(join).unwrap_or_default();
        let Some(status) = status else {
            panic!(
                "{} did not finish within {timeout:?}: killed.\nstdout: {}\nstderr: {}",
                self.what,
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
}

impl Drop for Captured {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to its exit within `timeout` (stdin from /dev/null); past it, the child is killed
/// and the test fails with what it printed.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    Captured::spawn(cmd).wait(timeout)
}

/// An `Output` read as text: what the assertions of most tests look at.
#[derive(Debug)]
pub struct TextOutput {
    /// The exit code; `None` if a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl TextOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl From<Output> for TextOutput {
    fn from(out: Output) -> Self {
        TextOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Spawns the server `cmd` (stdin from /dev/null, stdout piped; stderr as the caller set it,
/// else inherited) and returns it with the first line it printed, within `timeout`. The rest of
/// stdout is drained by a thread. Without a first line in time, the child is killed.
pub fn spawn_with_banner(cmd: &mut Command, timeout: Duration) -> Result<(Child, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let stdout = child.stdout.take().context("stdout not piped")?;
    let (first_line, rx) = mpsc::channel();
    // Keeps draining after the banner so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = first_line.send(lines.next());
        for _ in lines {}
    });
    let printed = match rx.recv_timeout(timeout) {
        Ok(Some(Ok(line))) => return Ok((child, line)),
        Ok(other) => format!("no first line ({other:?})"),
        Err(_) => format!("nothing within {timeout:?}"),
    };
    let _ = child.kill();
    let exit = child.wait();
    bail!("{cmd:?} printed {printed}; exit: {exit:?}")
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
