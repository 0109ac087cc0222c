//! `Sandbox`: `loadd sandbox --listen 127.0.0.1:0` as a child process, its address read from the
//! first line it prints, killed on drop. Also the sandbox's control endpoints the tests use.
//!
//! It refuses to guess: no first line within the bound means the test fails with what was printed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::raw_http;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const BANNER: &str = "sandbox listening on http://";

/// A running sandbox target.
pub struct Sandbox {
    child: Child,
    addr: SocketAddr,
}

impl Sandbox {
    pub fn start() -> Result<Self> {
        let loadd = crate::bin("loadd");
        let mut child = Command::new(&loadd)
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawn {} sandbox", loadd.display()))?;
        let stdout = child.stdout.take().context("sandbox stdout not piped")?;
        let (first_line, rx) = mpsc::channel();
        // The reader keeps draining stdout after the banner so the sandbox never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = first_line.send(lines.next());
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(other) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "sandbox printed no first line (got {other:?}); exit: {:?}",
                    child.try_wait()
                );
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("sandbox printed nothing within {START_TIMEOUT:?}");
            }
        };
        let addr = parse_banner(&line);
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("sandbox's first line is not `{BANNER}IP:PORT`: {line:?}");
        };
        Ok(Sandbox { child, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET /control/stats` → the sandbox's request counter.
    pub fn requests(&self) -> Result<u64> {
        let response = raw_http::request(self.addr, "GET", "/control/stats", &[], b"")?;
        if response.status != 200 {
            bail!(
                "/control/stats answered {}: {}",
                response.status,
                response.body_text()
            );
        }
        let stats: serde_json::Value = serde_json::from_slice(&response.body)
            .with_context(|| format!("/control/stats body {:?}", response.body_text()))?;
        stats["requests"]
            .as_u64()
            .with_context(|| format!("/control/stats has no integer `requests`: {stats}"))
    }

    /// `POST {path}` on a control endpoint; an error unless it answers 2xx.
    pub fn control(&self, path: &str) -> Result<()> {
        let response = raw_http::request(self.addr, "POST", path, &[], b"")?;
        if !(200..300).contains(&response.status) {
            bail!(
                "{path} answered {}: {}",
                response.status,
                response.body_text()
            );
        }
        Ok(())
    }

    /// `POST /control/stall?ms=N`: the sandbox holds every request for the next `ms`.
    pub fn stall(&self, ms: u64) -> Result<()> {
        let path = format!("/control/stall?ms={ms}");
        let response = raw_http::request(self.addr, "POST", &path, &[], b"")?;
        if !(200..300).contains(&response.status) {
            bail!(
                "{path} answered {}: {}",
                response.status,
                response.body_text()
            );
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_banner(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix(BANNER)?;
    let authority = rest.split('/').next()?;
    let addr: SocketAddr = authority.parse().ok()?;
    addr.ip().is_loopback().then_some(addr)
}
