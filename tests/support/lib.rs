//! `testbed`: what the workspace's integration tests and benches share — the built binaries
//! (`bin`), RAII loopback servers (`Nginx`, `Sandbox`, `Daemon`, `WsPeer`, `H2Peer`) that bind free ports,
//! report their address and stop on drop, one bounded runner for child processes (`Captured`,
//! `run_bounded`) with `loadctl`'s on top (`run_loadctl`, `run_json`), and a throwaway PKI
//! (`Pki`) for TLS listeners.
//!
//! It refuses to talk to anything but 127.0.0.0/8, to use fixed ports, or to wait without a bound.

mod child;
mod daemon;
mod h2_peer;
mod loadctl;
mod nginx;
mod peak_rss;
mod pki;
mod raw_http;
mod sandbox;
mod scenario;
mod wire;
mod ws_peer;

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

pub use child::{run_bounded, Captured, TextOutput};
pub use daemon::{remote_loadctl, Daemon, ServeOptions};
pub use h2_peer::H2Peer;
pub use loadctl::{run_json, run_loadctl, run_loadctl_timeout, LoadctlRun, DEFAULT_RUN_TIMEOUT};
pub use nginx::{
    Nginx, NginxConfig, NginxTls, StubStatus, BIG_BYTES as NGINX_BIG_BYTES,
    GZIP_BODY as NGINX_GZIP_BODY, GZIP_REPEAT as NGINX_GZIP_REPEAT, INDEX_BODY as NGINX_INDEX_BODY,
};
pub use peak_rss::run_json_peak_rss;
pub use pki::Pki;
pub use raw_http::{request as raw_request, RawResponse};
pub use sandbox::Sandbox;
pub use scenario::{assert_located, run_file, scenario_file, step};
pub use wire::{exchange as wire_exchange, WireReply};
pub use ws_peer::WsPeer;

/// Path of a binary built from this workspace (`loadctl`, `loadd`), next to the running test or
/// bench: `target/<profile>/deps/<exe>` → `target/<profile>/<name>`.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe: cannot locate the running test binary");
    let deps = exe.parent().expect("test binary has no parent directory");
    // Tests and benches live in `deps/`; a binary run from the profile dir itself also works.
    let profile_dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps/ has no parent directory")
    } else {
        deps
    };
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --workspace --bins` first (same profile as the tests; \
         `scripts/test.sh` does this)",
        path.display()
    );
    path
}

/// A port that was free on 127.0.0.1 a moment ago (the OS picked it). Another process can take
/// it before it is used: callers that bind it retry on "address in use".
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local_addr of a bound listener")
        .port()
}

/// Serializes tests that generate load inside one test binary, so that a rate or latency
/// assertion is not judged while another test saturates the machine's two cores.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOAD: Mutex<()> = Mutex::new(());
    // A test that panicked while holding the lock leaves nothing to repair.
    LOAD.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
