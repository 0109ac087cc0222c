//! `WsPeer`: the independent WebSocket server of `ws_peer.py` (Python `websockets`) on a free
//! loopback port, stopped on drop.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::child::spawn_with_banner;

pub struct WsPeer {
    child: Child,
    port: u16,
}

impl WsPeer {
    /// Plain `ws://`; with `tls = Some((cert, key))`, `wss://`.
    pub fn start(tls: Option<(&Path, &Path)>) -> Result<Self> {
        Self::start_script("ws_peer.py", tls)
    }

    /// Plain `ws://`, agreeing to permessage-deflate when a client offers it.
    pub fn start_deflate() -> Result<Self> {
        Self::start_args("ws_peer.py", None, &["--deflate"])
    }

    /// `ws_hostile.py`: a server that breaks the protocol on purpose (see the script).
    pub fn start_hostile() -> Result<Self> {
        Self::start_script("ws_hostile.py", None)
    }

    fn start_script(name: &str, tls: Option<(&Path, &Path)>) -> Result<Self> {
        Self::start_args(name, tls, &[])
    }

    fn start_args(name: &str, tls: Option<(&Path, &Path)>, extra: &[&str]) -> Result<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support")
            .join(name);
        let port = crate::free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg(port.to_string());
        if let Some((cert, key)) = tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        cmd.args(extra);
        let (mut child, line) =
            spawn_with_banner(&mut cmd, Duration::from_secs(15)).with_context(|| {
                format!("start python3 {name} (scripts/test.sh installs `websockets`)")
            })?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name} did not start: {line:?} (is the `websockets` package installed?)");
        }
        Ok(Self { child, port })
    }

    /// `ws://127.0.0.1:PORT{path}` (or `wss://` when `tls`).
    pub fn url(&self, tls: bool, path: &str) -> String {
        let scheme = if tls { "wss" } else { "ws" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for WsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
