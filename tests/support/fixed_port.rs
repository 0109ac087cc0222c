//! `FixedPortSandbox`: `loadd sandbox` on an address chosen by the test, so it can be killed and
//! started again on the same port while a load runs against it (a target going away and coming
//! back). `Sandbox` is the usual choice: it binds a fresh port and cannot come back on it.
//!
//! It refuses to outlive the test: the child is SIGKILLed on `kill` or drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::raw_http;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const BANNER: &str = "sandbox listening on http://";

/// A sandbox on a fixed loopback address.
pub struct FixedPortSandbox {
    child: Child,
    addr: SocketAddr,
}

impl FixedPortSandbox {
    /// Starts `loadd sandbox --listen ADDR` (it binds with `SO_REUSEADDR`, so a port whose last
    /// owner just died can be taken again) and returns once it printed its banner.
    pub fn start(addr: SocketAddr) -> Result<Self> {
        let loadd = crate::bin("loadd");
        let mut child = Command::new(&loadd)
            .args(["sandbox", "--listen", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawn {} sandbox", loadd.display()))?;
        let stdout = child.stdout.take().context("sandbox stdout not piped")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let mut sandbox = FixedPortSandbox { child, addr };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) if line.trim() == format!("{BANNER}{addr}") => Ok(sandbox),
            other => {
                sandbox.kill();
                bail!("sandbox on {addr} did not start: {other:?}")
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /control/stats` → the requests this process has seen.
    pub fn requests(&self) -> Result<u64> {
        let response = raw_http::request(self.addr, "GET", "/control/stats", &[], b"")?;
        let stats: serde_json::Value = serde_json::from_slice(&response.body)
            .with_context(|| format!("/control/stats body {:?}", response.body_text()))?;
        stats["requests"]
            .as_u64()
            .with_context(|| format!("/control/stats has no integer `requests`: {stats}"))
    }

    /// SIGKILL: the kernel closes its sockets, nothing is said to connected clients.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FixedPortSandbox {
    fn drop(&mut self) {
        self.kill();
    }
}
