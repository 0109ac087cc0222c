//! The API's accept loop: hyper's HTTP/1 server with the guards `axum::serve` lacks, so a
//! client cannot starve the listener. A connection that sends no complete request head within
//! the header timeout is closed (hyper's `header_read_timeout`); one with no bytes either way
//! for the idle timeout is shut down gracefully (an in-flight response, such as a live tail,
//! is finished first); past the connection cap a new connection is closed at once.
//!
//! It refuses to judge requests: routing, auth and limits are the router's.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The guards of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Guards {
    /// Longest wait for a complete request head.
    pub header_timeout: Duration,
    /// Longest a connection may carry no bytes either way.
    pub idle_timeout: Duration,
    /// Most API connections open at once.
    pub max_connections: usize,
}

/// Accepts and serves connections until the future is dropped; each connection runs on a task
/// of its own, so dropping the loop stops accepting but lets open connections finish.
pub async fn serve(listener: TcpListener, app: Router, guards: Guards) {
    let slots = Arc::new(Semaphore::new(guards.max_connections));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
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
        let app = app.clone();
        tokio::spawn(async move {
            serve_one(stream, app, guards).await;
            drop(slot);
        });
    }
}

async fn serve_one(stream: TcpStream, app: Router, guards: Guards) {
    let origin = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let io = Watched {
        inner: stream,
        origin,
        last: Arc::clone(&last),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(guards.header_timeout)
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .with_upgrades();
    tokio::pin!(conn);
    let tick = (guards.idle_timeout / 4).max(Duration::from_millis(100));
    let mut shutting_down = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep(tick), if !shutting_down => {
                let quiet = origin.elapsed().saturating_sub(Duration::from_millis(
                    last.load(Ordering::Relaxed),
                ));
                if quiet >= guards.idle_timeout {
                    conn.as_mut().graceful_shutdown();
                    shutting_down = true;
                }
            }
        }
    }
}

/// The socket, noting when bytes last moved (milliseconds since `origin`) for the idle timeout.
struct Watched {
    inner: TcpStream,
    origin: Instant,
    last: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
