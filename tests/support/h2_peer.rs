//! `H2Peer`: the independent HTTP/2 server of `h2_peer.py` (Python `h2`, h2c with prior
//! knowledge) on a free loopback port, stopped on drop.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::child::spawn_with_banner;

pub struct H2Peer {
    child: Child,
    port: u16,
}

impl H2Peer {
    /// Whether Python can import `h2` (scripts/test.sh installs it).
    pub fn available() -> bool {
        Command::new("python3")
            .args(["-c", "import h2"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// A server announcing `max_streams` as SETTINGS_MAX_CONCURRENT_STREAMS.
    pub fn start(max_streams: u32) -> Result<Self> {
        Self::spawn(max_streams, None)
    }

    /// The same over TLS with this certificate and key, selecting `alpn` (`"h2"`, or
    /// `"http/1.1"` to agree to nothing an h2-only client offers).
    pub fn start_tls(max_streams: u32, cert: &Path, key: &Path, alpn: &str) -> Result<Self> {
        Self::spawn(max_streams, Some((cert, key, alpn)))
    }

    fn spawn(max_streams: u32, tls: Option<(&Path, &Path, &str)>) -> Result<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/h2_peer.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .arg("--max-streams")
            .arg(max_streams.to_string());
        if let Some((cert, key, alpn)) = tls {
            cmd.arg("--tls").arg(cert).arg(key).arg(alpn);
        }
        let (mut child, line) = spawn_with_banner(&mut cmd, Duration::from_secs(15))
            .context("start python3 h2_peer.py (scripts/test.sh installs `h2`)")?;
        let port = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("h2_peer.py did not start: {line:?} (is the `h2` package installed?)");
        };
        Ok(Self { child, port })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for H2Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
