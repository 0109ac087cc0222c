//! `Daemon`: `loadd serve --listen 127.0.0.1:0` as a child process with its own state directory,
//! its address read from the banner and its token from the state directory (or given, as a fleet
//! shares one), SIGKILLed on drop (which is also the "kill -9" case). Also the few calls tests
//! make on it (GETs and POSTs with or without the token, polling a run, SIGTERM, `loadctl`
//! pointed at it) and `remote_loadctl` for `loadctl` aimed anywhere.
//!
//! It refuses to wait without a bound: no banner, no health or a run that never gets where a
//! test waits for it fails the test with what was seen.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::child::{run_bounded, spawn_with_banner, TextOutput};
use crate::raw_http;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const BANNER: &str = "loadd listening on http://";

/// How a `loadd serve` is started beyond its state directory.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeOptions<'a> {
    /// Further `loadd serve` flags (e.g. `--max-body-bytes`).
    pub extra: &'a [&'a str],
    /// The token, given as `LOADD_TOKEN` (a fleet shares one); without it, loadd generates its
    /// own and it is read from the state directory.
    pub token: Option<&'a str>,
    /// Discard loadd's stderr (a bench prints its own report); tests keep it for failures.
    pub quiet: bool,
    /// Write loadd's stderr (its log, audit lines included) to this file instead.
    pub stderr_file: Option<&'a Path>,
}

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
        Self::start_with(
            state_dir,
            ServeOptions {
                extra,
                ..ServeOptions::default()
            },
        )
    }

    /// `start`, with a given token or a quiet stderr.
    pub fn start_with(state_dir: &Path, options: ServeOptions<'_>) -> Result<Daemon> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("create {}", state_dir.display()))?;
        let mut cmd = Command::new(crate::bin("loadd"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .args(options.extra)
            // Its own directory: a scenario's relative file names must never resolve here.
            .current_dir(state_dir);
        match options.token {
            Some(token) => cmd.env("LOADD_TOKEN", token),
            None => cmd.env_remove("LOADD_TOKEN"),
        };
        if options.quiet {
            cmd.stderr(Stdio::null());
        } else if let Some(path) = options.stderr_file {
            let file = std::fs::File::create(path)
                .with_context(|| format!("create {}", path.display()))?;
            cmd.stderr(file);
        }
        let (child, line) =
            spawn_with_banner(&mut cmd, START_TIMEOUT).context("start loadd serve")?;
        // From here on, a failure drops (and so kills) the daemon.
        let mut daemon = Daemon {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: String::new(),
        };
        daemon.addr = line
            .trim()
            .strip_prefix(BANNER)
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("loadd's first line is not `{BANNER}IP:PORT`: {line:?}"))?;
        daemon.token = match options.token {
            Some(token) => token.to_string(),
            None => std::fs::read_to_string(state_dir.join("token"))
                .context("loadd's token file")?
                .trim()
                .to_string(),
        };
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

    /// The process id (to read its threads in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then the exit status within `timeout` (else the test fails).
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success(), "kill -TERM {}: {killed}", self.child.id());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "loadd did not exit within {timeout:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /v1/health` (no token): the status, 0 if the exchange failed.
    pub fn health(&self) -> u16 {
        raw_http::request(self.addr, "GET", "/v1/health", &[], b"").map_or(0, |r| r.status)
    }

    /// A request with `token` as its bearer (none: no `Authorization`): `(status, body)`,
    /// status 0 (and the error) if the exchange failed.
    pub fn call_as(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> (u16, String) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        match raw_http::request(self.addr, method, path, &headers, body) {
            Ok(r) => (r.status, r.body_text()),
            Err(e) => (0, format!("{e:#}")),
        }
    }

    /// An authorized request: `(status, body)`, status 0 (and the error) if the exchange failed.
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        self.call_as(method, path, Some(&self.token), body)
    }

    /// An authorized GET: `(status, body)`.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.call("GET", path, b"")
    }

    /// An authorized GET that must answer 200 with JSON.
    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
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

    /// `loadctl ARGS` aimed at this daemon with its token, bounded by `timeout`.
    pub fn loadctl(&self, args: &[&str], timeout: Duration) -> TextOutput {
        remote_loadctl(args, Some(&self.url()), Some(&self.token), timeout)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `loadctl ARGS` with `url` as `LOADD_URL` and `token` as `LOADD_TOKEN` (each unset if `None`)
/// and no state directory to find a token in, so only what the test gives counts; bounded by
/// `timeout`.
pub fn remote_loadctl(
    args: &[&str],
    url: Option<&str>,
    token: Option<&str>,
    timeout: Duration,
) -> TextOutput {
    let mut cmd = Command::new(crate::bin("loadctl"));
    cmd.args(args).env("XDG_STATE_HOME", "/nonexistent");
    match url {
        Some(url) => cmd.env("LOADD_URL", url),
        None => cmd.env_remove("LOADD_URL"),
    };
    match token {
        Some(token) => cmd.env("LOADD_TOKEN", token),
        None => cmd.env_remove("LOADD_TOKEN"),
    };
    run_bounded(&mut cmd, timeout).into()
}
