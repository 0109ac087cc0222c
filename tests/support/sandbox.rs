//! `Sandbox`: `loadd sandbox` as a child process, killed on drop, on a free loopback port
//! (`start`, its address read from the first line it prints) or on an address the test chose
//! (`start_on`, so it can be killed and started again on the same port while a load runs against
//! it: a target going away and coming back). Also the sandbox's control endpoints the tests use.
//!
//! It refuses to guess: no first line within the bound, or one that does not name the address,
//! means the test fails with what was printed.

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::child::spawn_with_banner;
use crate::raw_http;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const BANNER: &str = "sandbox listening on http://";

/// A running sandbox target.
pub struct Sandbox {
    child: Child,
    addr: SocketAddr,
}

impl Sandbox {
    /// A sandbox on a port the OS picks on 127.0.0.1.
    pub fn start() -> Result<Self> {
        Self::spawn("127.0.0.1:0".parse()?)
    }

    /// A sandbox on `addr` (it binds with `SO_REUSEADDR`, so a port whose last owner just died
    /// can be taken again).
    pub fn start_on(addr: SocketAddr) -> Result<Self> {
        let sandbox = Self::spawn(addr)?;
        if sandbox.addr != addr {
            bail!("sandbox asked for {addr} listens on {}", sandbox.addr);
        }
        Ok(sandbox)
    }

    fn spawn(listen: SocketAddr) -> Result<Self> {
        let loadd = crate::bin("loadd");
        let (mut child, line) = spawn_with_banner(
            Command::new(&loadd).args(["sandbox", "--listen", &listen.to_string()]),
            START_TIMEOUT,
        )
        .context("start loadd sandbox")?;
        let Some(addr) = parse_banner(&line) else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("sandbox's first line is not `{BANNER}IP:PORT` on loopback: {line:?}");
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

    /// SIGKILL: the kernel closes its sockets, nothing is said to connected clients.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `POST /control/stall?ms=N`: the sandbox holds every request for the next `ms`.
    pub fn stall(&self, ms: u64) -> Result<()> {
        self.control(&format!("/control/stall?ms={ms}"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill();
    }
}

fn parse_banner(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix(BANNER)?;
    let authority = rest.split('/').next()?;
    let addr: SocketAddr = authority.parse().ok()?;
    addr.ip().is_loopback().then_some(addr)
}
