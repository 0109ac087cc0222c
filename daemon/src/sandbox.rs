//! The sandbox: a loopback HTTP/1.1 target, built into `loadd`, for the README demo and the tests.
//!
//! It owns a listener, a background thread running its own tokio runtime, and the state the tests
//! assert against (the request count and the stall deadline). Well-behaved endpoints go through axum
//! on hyper; misbehaving ones are written by hand on the same port (see `conn`). It refuses to be a
//! production server: no TLS, no limits beyond the few that keep a test from hanging.
//!
//! Besides the raw endpoints it serves realistic user journeys for scenario files: a multi-tenant
//! JSON API under `/api/t/{t}/` (see `api`) and page loads under `/pages/` and `/static/` (see
//! `pages`), all in memory. WebSocket endpoints (an echo with test knobs, broadcast rooms) live in
//! `ws` and `rooms`; an endpoint with a known throughput ceiling in `capacity`. `docs/sandbox.md`
//! lists every endpoint.

mod api;
mod body;
mod capacity;
mod client;
mod conn;
mod events;
mod members;
mod misbehave;
mod pages;
mod push;
mod quiz;
mod rooms;
mod routes;
mod tenants;
#[cfg(test)]
mod tests;
mod uploads;
mod webhooks;
mod ws;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::oneshot;

use capacity::Capacity;
pub use capacity::CapacityConfig;
use rooms::Rooms;
use ws::WsStats;

/// Mass connects against a 128-entry backlog (std's default) are ~20× slower.
const LISTEN_BACKLOG: i32 = 4096;

/// How a sandbox listens and how many tokio worker threads serve it.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    /// Tokio worker threads (at least one is used).
    pub workers: usize,
    /// The shape of `/capacity/work` at start (changeable at run time).
    pub capacity: CapacityConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            workers: 1,
            capacity: CapacityConfig::default(),
        }
    }
}

/// A running sandbox; stops accepting and ends its thread on `shutdown` or drop.
pub struct Sandbox {
    addr: SocketAddr,
    state: Arc<SandboxState>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Binds (backlog 4096, `SO_REUSEADDR`), spawns a thread with its own tokio runtime, and returns
    /// once the socket is listening.
    pub fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        config.capacity.check().map_err(anyhow::Error::msg)?;
        let listener =
            bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.workers.max(1))
            .thread_name("sandbox-worker")
            .enable_all()
            .build()
            .context("cannot start the sandbox's tokio runtime")?;
        let listener = {
            let _in_runtime = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let state = Arc::new(SandboxState::new(config.capacity));
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sandbox".into())
            .spawn({
                let state = Arc::clone(&state);
                move || {
                    runtime.spawn(conn::accept_loop(listener, state));
                    // A dropped sender also ends the wait.
                    let _ = runtime.block_on(stopped);
                    // Dropping the runtime cancels the accept loop and every connection task.
                    drop(runtime);
                }
            })
            .context("cannot spawn the sandbox thread")?;
        Ok(Sandbox {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`; an unspecified listen address is reported as loopback.
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}")
    }

    /// Requests seen (every path but `/control/*`), counted when a request head is read.
    pub fn requests(&self) -> u64 {
        self.state.requests()
    }

    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Blocking entry for `loadd sandbox`: start, print the listening line, wait for SIGINT/SIGTERM.
pub fn serve_forever(config: SandboxConfig) -> anyhow::Result<()> {
    use std::io::Write as _;
    use tokio::signal::unix::{signal, SignalKind};

    let sandbox = Sandbox::start(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Install the handlers before printing: whoever reads the line may signal right away.
    let (mut interrupt, mut terminate) = {
        let _in_runtime = runtime.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        )
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "sandbox listening on {}", sandbox.url())?;
    stdout.flush()?;
    drop(stdout);
    runtime.block_on(async {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    });
    sandbox.shutdown();
    Ok(())
}

fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// What every connection task shares: the request count, the end of the current stall, the
/// WebSocket counters and rooms, and the capacity endpoint's slots.
struct SandboxState {
    requests: AtomicU64,
    origin: Instant,
    /// Microseconds after `origin` until which counted requests are held; 0 means no stall.
    stall_until_us: AtomicU64,
    ws: WsStats,
    rooms: Rooms,
    capacity: Capacity,
    /// Tenants and their tokens: the API's, also read by the token-checked rooms.
    api: Arc<api::caller::Api>,
}

impl SandboxState {
    fn new(capacity: CapacityConfig) -> Self {
        SandboxState {
            requests: AtomicU64::new(0),
            origin: Instant::now(),
            stall_until_us: AtomicU64::new(0),
            ws: WsStats::default(),
            rooms: Rooms::default(),
            capacity: Capacity::new(capacity),
            api: Arc::default(),
        }
    }

    fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn reset_requests(&self) {
        self.requests.store(0, Ordering::Relaxed);
    }

    /// Holds counted requests for `ms` from now (replacing any current stall).
    fn stall_for(&self, ms: u64) {
        let until = self
            .origin
            .elapsed()
            .saturating_add(Duration::from_millis(ms));
        let until_us = u64::try_from(until.as_micros()).unwrap_or(u64::MAX);
        self.stall_until_us
            .store(until_us.max(1), Ordering::Relaxed);
    }

    /// Returns once no stall is in force; re-checks after sleeping in case it was extended.
    async fn wait_out_stall(&self) {
        loop {
            let until_us = self.stall_until_us.load(Ordering::Relaxed);
            if until_us == 0 {
                return;
            }
            let Some(until) = self.origin.checked_add(Duration::from_micros(until_us)) else {
                return;
            };
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep_until(until.into()).await;
        }
    }
}
