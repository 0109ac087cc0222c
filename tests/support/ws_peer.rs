//! `WsPeer`: the independent WebSocket server of `ws_peer.py` (Python `websockets`) on a free
//! loopback port, stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct WsPeer {
    child: Child,
    port: u16,
}

impl WsPeer {
    /// Plain `ws://`; with `tls = Some((cert, key))`, `wss://`.
    pub fn start(tls: Option<(&Path, &Path)>) -> Result<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ws_peer.py");
        let port = crate::free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg(port.to_string());
        if let Some((cert, key)) = tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start python3 ws_peer.py (scripts/test.sh installs `websockets`)")?;
        let stdout = child.stdout.take().context("peer stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.trim() == "ready" => Ok(Self { child, port }),
            other => {
                let _ = child.kill();
                bail!(
                    "ws_peer.py did not start: {other:?} (is the `websockets` package installed?)"
                )
            }
        }
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
