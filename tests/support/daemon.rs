//! `Daemon`: `loadd serve --listen 127.0.0.1:0` as a child process with its own state directory,
//! its address read from the banner and its token from the state directory, SIGKILLed on drop.
//! Also the few calls tests make on it (authorized GETs and POSTs, polling a run, `loadctl`
//! pointed at it).
//!
//! It refuses to wait without a bound: no banner, no health or a run that never gets where a
//! test waits for it fails the test with what was seen.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::raw_http;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const BANNER: &str = "loadd listening on http://";

/// A running `loadd serve`.
pub struct Daemon {
    child: Child,
    addr: SocketAddr,
    token: String,
}

impl Daemon {
    /// Starts `loadd serve` on a free loopback port with `state_dir` (created) and `extra` flags
    /// (e.g. `--max-body-bytes`), and returns once `/v1/health` answers.
    pub fn start(state_dir: &Path, extra: &[&str]) -> Result<Daemon> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("create {}", state_dir.display()))?;
        let loadd = crate::bin("loadd");
        let mut child = Command::new(&loadd)
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .args(extra)
            // Its own directory: nothing relative may resolve in the test's working directory.
            .current_dir(state_dir)
            .env_remove("LOADD_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawn {} serve", loadd.display()))?;
        let stdout = child.stdout.take().context("loadd stdout not piped")?;
        let (tx, rx) = mpsc::channel();
        // Keeps draining after the banner so loadd never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let mut daemon = Daemon {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: String::new(),
        };
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            other => bail!("loadd serve printed no banner within {START_TIMEOUT:?}: {other:?}"),
        };
        daemon.addr = line
            .trim()
            .strip_prefix(BANNER)
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("loadd's first line is not `{BANNER}IP:PORT`: {line:?}"))?;
        daemon.token = std::fs::read_to_string(state_dir.join("token"))
            .context("loadd's token file")?
            .trim()
            .to_string();
        let deadline = Instant::now() + START_TIMEOUT;
        while daemon.health() != 200 {
            if Instant::now() >= deadline {
                bail!("/v1/health never answered 200 within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(daemon)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `GET /v1/health` (no token): the status, 0 if the exchange failed.
    pub fn health(&self) -> u16 {
        raw_http::request(self.addr, "GET", "/v1/health", &[], b"").map_or(0, |r| r.status)
    }

    /// An authorized request: `(status, body)`, status 0 (and the error) if the exchange failed.
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let auth = format!("Bearer {}", self.token);
        match raw_http::request(self.addr, method, path, &[("Authorization", &auth)], body) {
            Ok(r) => (r.status, r.body_text()),
            Err(e) => (0, format!("{e:#}")),
        }
    }

    /// An authorized GET that must answer 200 with JSON.
    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, b"");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Polls `/v1/runs/{id}` until `done` says so, within `timeout`; returns that status.
    pub fn wait_run(&self, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let run = self.json(&format!("/v1/runs/{id}"));
            if done(&run) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} did not get there within {timeout:?}: {run}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `loadctl ARGS` aimed at this daemon (`LOADD_URL`, `LOADD_TOKEN`), bounded by `timeout`.
    pub fn loadctl(&self, args: &[&str], timeout: Duration) -> Output {
        let mut child = Command::new(crate::bin("loadctl"))
            .args(args)
            .env("LOADD_URL", self.url())
            .env("LOADD_TOKEN", &self.token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn loadctl {args:?}: {e}"));
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("loadctl {args:?} did not finish within {timeout:?}: killed");
                }
            }
        };
        let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
            h.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        Output {
            status,
            stdout: join(stdout),
            stderr: join(stderr),
        }
    }
}

fn drain<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
