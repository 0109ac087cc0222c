//! A blocking HTTP/1.1 connection for setup and teardown steps: the same sans-io codec as the
//! shards, over a std socket (and rustls for `https://`).
//!
//! Setup and teardown send a handful of requests before and after the load, so simplicity
//! beats speed here: one thread per parallel iteration, a kept-alive connection each, and a
//! reused connection that the server closed meanwhile is reopened once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::ErrorKind;
use crate::net::tls::{ClientConfig, ServerName};
use crate::plan::journey::MAX_INSPECTED_BODY;
use crate::proto::http1::{ResponseDecoder, Step};

/// Where and how to connect.
pub(super) struct Dialer {
    pub addr: SocketAddr,
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    pub connect_timeout: Duration,
}

enum Socket {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Socket::Plain(s) => s.read(buf),
            Socket::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Socket::Plain(s) => s.write(buf),
            Socket::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Socket::Plain(s) => s.flush(),
            Socket::Tls(s) => s.flush(),
        }
    }
}

/// One response, as a step's checks and captures read it.
pub(super) struct Exchange {
    pub status: u16,
    pub head: Vec<u8>,
    pub body: Vec<u8>,
    pub latency: Duration,
}

/// A connection that is opened when first needed and kept alive between requests.
pub(super) struct Client<'a> {
    dialer: &'a Dialer,
    socket: Option<Socket>,
    decoder: ResponseDecoder,
}

impl<'a> Client<'a> {
    pub(super) fn new(dialer: &'a Dialer) -> Self {
        Client {
            dialer,
            socket: None,
            decoder: ResponseDecoder::new(),
        }
    }

    /// Sends `request` and reads its response within `timeout`.
    pub(super) fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
        timeout: Duration,
    ) -> Result<Exchange, ErrorKind> {
        let started = Instant::now();
        for attempt in 0..2 {
            let reused = self.socket.is_some();
            let socket = match self.socket.take() {
                Some(s) => s,
                None => self.connect(timeout)?,
            };
            match self.send(socket, request, head_request, started) {
                Ok(x) => return Ok(x),
                // A kept-alive connection the server closed while idle: once more, fresh.
                Err(ErrorKind::Reset) if reused && attempt == 0 => continue,
                Err(kind) => return Err(kind),
            }
        }
        Err(ErrorKind::Reset)
    }

    fn connect(&self, timeout: Duration) -> Result<Socket, ErrorKind> {
        let d = self.dialer;
        let tcp = TcpStream::connect_timeout(&d.addr, d.connect_timeout)
            .map_err(|_| ErrorKind::Connect)?;
        let _ = tcp.set_nodelay(true);
        tcp.set_read_timeout(Some(timeout))
            .and_then(|()| tcp.set_write_timeout(Some(timeout)))
            .map_err(|_| ErrorKind::Connect)?;
        Ok(match &d.tls {
            None => Socket::Plain(tcp),
            Some((config, name)) => {
                let conn = rustls::ClientConnection::new(config.clone(), name.clone())
                    .map_err(|_| ErrorKind::TlsHandshake)?;
                Socket::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        })
    }

    fn send(
        &mut self,
        mut socket: Socket,
        request: &[u8],
        head_request: bool,
        started: Instant,
    ) -> Result<Exchange, ErrorKind> {
        socket
            .write_all(request)
            .map_err(|e| io_kind(&e, ErrorKind::Write))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let (mut head, mut body) = (Vec::new(), Vec::new());
        self.decoder.reset(head_request);
        loop {
            if !buf.is_empty() {
                let had_head = self.decoder.head().is_some();
                let step = self.decoder.decode(&buf).map_err(ErrorKind::from)?;
                if !had_head {
                    if let Some(h) = self.decoder.head() {
                        head.extend_from_slice(&buf[..h.head_len.min(buf.len())]);
                    }
                }
                let (consumed, range, done) = match step {
                    Step::Complete { consumed, body } => (consumed, body, true),
                    Step::Partial { consumed, body } => (consumed, body, false),
                };
                let room = MAX_INSPECTED_BODY.saturating_sub(body.len());
                body.extend_from_slice(&buf[range.start..range.end.min(range.start + room)]);
                buf.drain(..consumed);
                if done {
                    return Ok(self.finish(socket, head, body, started));
                }
                if consumed > 0 && !buf.is_empty() {
                    continue;
                }
            }
            let n = socket
                .read(&mut chunk)
                .map_err(|e| io_kind(&e, ErrorKind::Read))?;
            if n == 0 {
                if !self.decoder.in_progress() && buf.is_empty() {
                    return Err(ErrorKind::Reset);
                }
                self.decoder.finish_eof().map_err(ErrorKind::from)?;
                let x = self.finish(socket, head, body, started);
                self.socket = None;
                return Ok(x);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn finish(
        &mut self,
        socket: Socket,
        head: Vec<u8>,
        body: Vec<u8>,
        started: Instant,
    ) -> Exchange {
        let (status, keep_alive) = self
            .decoder
            .head()
            .map_or((0, false), |h| (h.status, h.keep_alive));
        if keep_alive {
            self.socket = Some(socket);
        }
        Exchange {
            status,
            head,
            body,
            latency: started.elapsed(),
        }
    }
}

fn io_kind(e: &std::io::Error, otherwise: ErrorKind) -> ErrorKind {
    use std::io::ErrorKind as Io;
    match e.kind() {
        Io::WouldBlock | Io::TimedOut => ErrorKind::Timeout,
        Io::ConnectionReset | Io::BrokenPipe | Io::ConnectionAborted | Io::UnexpectedEof => {
            ErrorKind::Reset
        }
        Io::InvalidData => ErrorKind::TlsHandshake,
        _ => otherwise,
    }
}
