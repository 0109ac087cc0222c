//! The API's accept loop: hyper's HTTP/1 server with the guards `axum::serve` lacks, so a
//! client cannot starve the listener. A connection that sends no complete request head within
//! the header timeout is closed (hyper's `header_read_timeout`, which restarts each time a
//! kept-alive connection waits for its next head, so it is the idle timeout too); past the
//! connection cap a new connection is closed at once.
//!
//! It refuses to judge requests: routing, auth and limits are the router's.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The guards of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Guards {
    /// Longest wait for a complete request head, the first or the next on a kept-alive one.
    pub header_timeout: Duration,
    /// Most API connections open at once.
    pub max_connections: usize,
}

/// Accepts and serves connections until the future is dropped; each connection runs on a task
/// of its own, so dropping the loop stops accepting but lets open connections finish.
pub async fn serve(listener: TcpListener, app: Router, guards: Guards) {
    let slots = Arc::new(Semaphore::new(guards.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or a reset before accept: back off briefly, keep serving.
                eprintln!("loadd: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Past the cap: dropping the stream closes it at once.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The peer travels with each request, for the audit log and the failed-auth limit.
        let app = app.clone().layer(Extension(ConnectInfo(peer)));
        tokio::spawn(async move {
            serve_one(stream, app, guards).await;
            drop(slot);
        });
    }
}

async fn serve_one(stream: TcpStream, app: Router, guards: Guards) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(guards.header_timeout)
        .keep_alive(true);
    let _ = builder
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
        .with_upgrades()
        .await;
}
