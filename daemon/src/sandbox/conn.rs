//! Accepting connections and deciding, from the first request head, who answers each one.
//!
//! A `/misbehave/*` path is answered raw (see `misbehave`); anything else goes to hyper's HTTP/1.1
//! server and the axum router, keep-alive on, with the bytes already read replayed first. A
//! connection never changes sides after its first request: a load generator reconnects anyway.
//! Connections are served with upgrades on, so a WebSocket handshake hands hyper's connection over.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::misbehave::Misbehaviour;
use super::{routes, SandboxState};

/// The first request head must end within this many bytes.
const MAX_HEAD_LEN: usize = 64 << 10;
/// Initial capacity of the first-head buffer: fits any ordinary request head in one read.
const HEAD_BUF_LEN: usize = 4 << 10;
/// Pause after a failed accept (EMFILE and friends) instead of spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// How long a refused connection is drained before it is closed.
const LINGER_ON_REFUSAL: Duration = Duration::from_secs(1);

const HEAD_TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

pub(super) async fn accept_loop(listener: TcpListener, state: Arc<SandboxState>) {
    let router = routes::app(Arc::clone(&state));
    let mut http = http1::Builder::new();
    http.keep_alive(true);
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let state = Arc::clone(&state);
                let service = TowerToHyperService::new(router.clone());
                let http = http.clone();
                tokio::spawn(async move {
                    let Some((stream, head)) = sniff(stream, &state).await else {
                        return;
                    };
                    let io = TokioIo::new(Replay::new(head, stream));
                    // Client resets and protocol errors end the connection; nothing to report.
                    let _ = http.serve_connection(io, service).with_upgrades().await;
                });
            }
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}

/// Reads the first request head. Answers it here if it is raw (or unusable) and returns `None`;
/// otherwise returns the stream and every byte read so far, for hyper.
async fn sniff(mut stream: TcpStream, state: &SandboxState) -> Option<(TcpStream, Vec<u8>)> {
    // Small responses must not wait for a delayed ACK.
    let _ = stream.set_nodelay(true);
    let mut head = Vec::with_capacity(HEAD_BUF_LEN);
    loop {
        let searched = head.len().saturating_sub(3);
        // `read_buf` grows the Vec when it is full.
        match stream.read_buf(&mut head).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if head[searched..].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if head.len() >= MAX_HEAD_LEN {
            refuse_head(stream).await;
            return None;
        }
    }
    let Some(misbehaviour) = request_path(&head).and_then(Misbehaviour::from_path) else {
        return Some((stream, head));
    };
    state.count_request();
    state.wait_out_stall().await;
    misbehaviour.perform(stream).await;
    None
}

/// Answers 431, then drains what the client is still sending: closing with unread bytes would send
/// a reset, which can destroy the answer before the client reads it.
async fn refuse_head(mut stream: TcpStream) {
    if stream.write_all(HEAD_TOO_LARGE).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let drain = async { while let Ok(1..) = stream.read(&mut sink).await {} };
    let _ = tokio::time::timeout(LINGER_ON_REFUSAL, drain).await;
}

/// The path of the request line's target, without its query.
fn request_path(head: &[u8]) -> Option<&[u8]> {
    let line = head.split(|&b| b == b'\n').next()?;
    let target = line.split(|&b| b == b' ').nth(1)?;
    target.split(|&b| b == b'?').next()
}

/// A stream that first yields bytes already read from it, then reads from it directly.
struct Replay {
    prefix: Vec<u8>,
    replayed: usize,
    stream: TcpStream,
}

impl Replay {
    fn new(prefix: Vec<u8>, stream: TcpStream) -> Self {
        Replay {
            prefix,
            replayed: 0,
            stream,
        }
    }
}

impl AsyncRead for Replay {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let pending = &this.prefix[this.replayed..];
        if pending.is_empty() {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let n = pending.len().min(buf.remaining());
        buf.put_slice(&pending[..n]);
        this.replayed += n;
        if this.replayed == this.prefix.len() {
            // Free the head buffer for the (possibly long) rest of the connection.
            this.prefix = Vec::new();
            this.replayed = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::request_path;

    #[test]
    fn request_path_drops_the_query() {
        let path = request_path(b"GET /misbehave/reset?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!(path, Some(&b"/misbehave/reset"[..]));
        assert_eq!(request_path(b"GET\r\n\r\n"), None);
    }
}
