//! `Stream`: a connection's socket, plain TCP or TLS over TCP, read and written through the
//! same monoio traits so the connection code does not care which. It adds no buffering.

use std::io;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, CancelHandle, CancelableAsyncReadRent};
use monoio::net::TcpStream;
use monoio::BufResult;

use super::stream::TlsStream;

/// A connection's socket: plain TCP or TLS over TCP, with the same read/write traits.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    /// Boxed: a TLS connection's state is far larger than a socket.
    Tls(Box<TlsStream>),
}

impl Stream {
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.set_nodelay(nodelay),
            Stream::Tls(tls) => tls.tcp().set_nodelay(nodelay),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// `read`, cut short when `c` is cancelled (`Err` that `is_cancelled` tells), losing
    /// nothing: the stream reads on as before. The way to wait for data and a timer at once.
    pub async fn cancelable_read<T: IoBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> BufResult<usize, T> {
        match self {
            Stream::Plain(tcp) => tcp.cancelable_read(buf, c).await,
            Stream::Tls(tls) => tls.cancelable_read(buf, c).await,
        }
    }

    /// Whether a TLS handshake resumed a session (`false` for plain TCP).
    pub fn resumed(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(tls) => tls.resumed(),
        }
    }
}

impl From<TcpStream> for Stream {
    fn from(tcp: TcpStream) -> Self {
        Stream::Plain(tcp)
    }
}

impl From<TlsStream> for Stream {
    fn from(tls: TlsStream) -> Self {
        Stream::Tls(Box::new(tls))
    }
}

impl AsyncReadRent for Stream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf).await,
            Stream::Tls(tls) => tls.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(tcp) => tcp.readv(buf).await,
            Stream::Tls(tls) => tls.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for Stream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf).await,
            Stream::Tls(tls) => tls.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(tcp) => tcp.writev(buf).await,
            Stream::Tls(tls) => tls.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush().await,
            Stream::Tls(_) => Ok(()),
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.shutdown().await,
            Stream::Tls(tls) => tls.shutdown().await,
        }
    }
}
