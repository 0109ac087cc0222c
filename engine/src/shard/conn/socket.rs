//! Opening a connection: TCP (from a rotating source address when the plan has several), then
//! TLS for `https://`/`wss://`, within the plan's connect timeout; and how a socket's failures
//! are counted.
//!
//! It speaks no protocol over the socket: the HTTP/1.1 and WebSocket connections do that.

use std::io;

use monoio::net::TcpStream;

use crate::metrics::ErrorKind;
use crate::net::tls::Stream;
use crate::shard::state::ShardState;

/// Opens a connection (and its TLS session for `https://`) within the plan's connect timeout.
pub async fn connect(shard: &ShardState) -> Result<Stream, ErrorKind> {
    let opened = monoio::time::timeout(shard.plan().connect_timeout, open(shard)).await;
    match opened {
        Ok(Ok(stream)) => {
            shard.step(0).connects += 1;
            shard.conn_opened();
            Ok(stream)
        }
        Ok(Err(kind)) => Err(kind),
        Err(_) => Err(ErrorKind::Connect),
    }
}

async fn open(shard: &ShardState) -> Result<Stream, ErrorKind> {
    let plan = shard.plan();
    // Rotate over the shard's connects: every target address gets its share of the
    // connections, every local address its share of the ports.
    let n = shard.next_connect();
    let to = plan.target_addr(n);
    let tcp = if plan.local_ips.is_empty() {
        TcpStream::connect_addr(to).await
    } else {
        let from = plan.local_ips[(n * plan.shards + plan.index) % plan.local_ips.len()];
        crate::net::source::connect_from(from, to).await
    }
    .map_err(|_| ErrorKind::Connect)?;
    // Without NODELAY a small request can sit in Nagle's buffer for tens of ms.
    let _ = tcp.set_nodelay(true);
    let Some((config, name)) = shard.tls() else {
        return Ok(Stream::Plain(tcp));
    };
    let began = std::time::Instant::now();
    match crate::net::tls::connect(tcp, config, name).await {
        Ok(tls) => {
            let took = began.elapsed().as_nanos() as u64;
            shard.stats().record_handshake(took, tls.resumed());
            Ok(Stream::from(tls))
        }
        Err(e) => Err(tls_kind(&e).unwrap_or(ErrorKind::Connect)),
    }
}

/// The counted kind of a failed socket read (writes map their non-reset failures to `Write`).
pub fn read_error_kind(e: &io::Error) -> ErrorKind {
    // A TLS alert can arrive on the first read (TLS 1.3: a server refusing our certificate).
    if let Some(kind) = crate::net::tls::tls_error(e).and_then(tls_kind) {
        return kind;
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => ErrorKind::Reset,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Read,
    }
}

/// A WebSocket codec failure as counted: a frame or message over the run's limit is
/// `body_too_large` (the socket is ended), anything else the server got wrong `ws_protocol`.
pub(crate) fn ws_kind(e: crate::proto::ws::WsError) -> ErrorKind {
    use crate::proto::ws::WsError;
    match e {
        WsError::FrameTooLarge | WsError::MessageTooLarge => ErrorKind::BodyTooLarge,
        _ => ErrorKind::WsProtocol,
    }
}

/// The kind of a TLS failure (`None`: not TLS, e.g. a plain socket error inside it).
fn tls_kind(e: &crate::net::tls::TlsError) -> Option<ErrorKind> {
    match e.kind_name() {
        "tls_certificate" => Some(ErrorKind::TlsCertificate),
        "tls_alert" => Some(ErrorKind::TlsAlert),
        "tls_handshake" | "tls_protocol" => Some(ErrorKind::TlsHandshake),
        _ => None,
    }
}
