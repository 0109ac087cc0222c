//! The tasks that own an HTTP/2 connection's socket: the driver connects (again after a GOAWAY
//! or a close, once a lane waits), reads and feeds the codec; the writer beside it writes what
//! lanes and the codec queue. The socket is split so a read in flight never delays a write:
//! plain TCP (h2c, prior knowledge) by monoio's halves, TLS (ALPN `h2`) by `net::tls::split`.

use std::future::poll_fn;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;

use super::H2Conn;
use crate::metrics::ErrorKind;
use crate::net::tls::{self, Stream, TlsReader, TlsWriter};
use crate::shard::conn::deadline::Expiring;
use crate::shard::conn::socket::connect;
use crate::shard::state::ShardState;

/// Read buffer of a connection: several full frames (we announce 16 KiB ones).
const READ_BUF: usize = 64 * 1024;
/// Pause after a failed connect so a down target is not hammered in a hot loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Runs connection `h2` until its last lane ends. `stream`: the socket opened up front, if any.
pub(crate) async fn drive(shard: Rc<ShardState>, h2: Rc<H2Conn>, mut stream: Option<Stream>) {
    let mut buf: Vec<u8> = Vec::new();
    while h2.alive() {
        let socket = match stream.take() {
            Some(s) => s,
            None => {
                if !poll_fn(|cx| h2.poll_demand(cx)).await {
                    break;
                }
                match Box::pin(connect(&shard)).await {
                    Ok(s) => s,
                    Err(kind) => {
                        // Each waiting lane counts the failure as its own request's.
                        h2.connect_failed(kind);
                        monoio::time::sleep(CONNECT_BACKOFF).await;
                        continue;
                    }
                }
            }
        };
        let halves = match socket {
            Stream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                Some((Reader::Plain(r), Writer::Plain(w)))
            }
            // A server that does not agree to h2 would answer our frames with HTTP/1.1.
            Stream::Tls(t) if t.alpn_protocol() == Some(b"h2") => {
                tls::split(*t).map(|(r, w)| (Reader::Tls(r), Writer::Tls(w)))
            }
            Stream::Tls(_) => None,
        };
        let Some((reader, writer)) = halves else {
            shard.conn_closed();
            h2.connect_failed(ErrorKind::H2Protocol);
            monoio::time::sleep(CONNECT_BACKOFF).await;
            continue;
        };
        if !h2.alive() {
            shard.conn_closed();
            break;
        }
        h2.stop.arm(u64::MAX);
        h2.stop_write.arm(u64::MAX);
        h2.open();
        let writing = monoio::spawn(write(shard.clone(), h2.clone(), writer));
        read(&shard, &h2, reader, &mut buf).await;
        h2.close(&shard);
        h2.stop_write.expire();
        let _ = writing.await;
        buf.clear();
        shard.conn_closed();
    }
}

/// The reading half of a connection's socket.
enum Reader {
    Plain(OwnedReadHalf<TcpStream>),
    Tls(TlsReader),
}

/// The writing half.
enum Writer {
    Plain(OwnedWriteHalf<TcpStream>),
    Tls(TlsWriter),
}

impl Reader {
    /// Appends what the socket has (decrypted) to `buf`; 0 at its end.
    async fn read_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        match self {
            Reader::Plain(tcp) => {
                let owned = std::mem::take(buf);
                let (len, cap) = (owned.len(), owned.capacity());
                let (res, slice) = tcp.read(owned.slice_mut(len..cap)).await;
                *buf = slice.into_inner();
                res
            }
            Reader::Tls(tls) => tls.read_into(buf).await,
        }
    }
}

/// Reads and feeds the codec until the connection ends, fails, drains or is stopped.
async fn read(shard: &ShardState, h2: &H2Conn, mut reader: Reader, buf: &mut Vec<u8>) {
    loop {
        if buf.capacity() - buf.len() < READ_BUF / 4 {
            buf.reserve(READ_BUF);
        }
        // Stopped: a buffer in the socket's hands goes down with the cancelled read (nothing
        // that matters is lost: the connection closes).
        let res = {
            let reading = pin!(reader.read_into(buf));
            let Some(res) = (Expiring {
                fut: reading,
                slot: &h2.stop,
            })
            .await
            else {
                return;
            };
            res
        };
        match res {
            Ok(0) | Err(_) => return,
            Ok(n) => shard.step(0).bytes_in += n as u64,
        }
        match h2.receive(buf, shard) {
            Ok(consumed) => {
                buf.drain(..consumed);
            }
            Err(()) => return,
        }
    }
}

/// Writes what is queued until the connection closes or a write fails.
async fn write(shard: Rc<ShardState>, h2: Rc<H2Conn>, mut writer: Writer) {
    let mut pending: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        let more = poll_fn(|cx| {
            // What the TLS reader needs sent back goes out even with no frames queued.
            if let Writer::Tls(tls) = &writer {
                if tls.has_reply() {
                    return Poll::Ready(true);
                }
                tls.wake_on_reply(cx.waker());
            }
            h2.poll_out(&mut pending, cx)
        })
        .await;
        if !more {
            return;
        }
        let res = match &mut writer {
            Writer::Plain(tcp) => {
                let writing = pin!(tcp.write_all(std::mem::take(&mut pending)));
                let Some((res, written)) = (Expiring {
                    fut: writing,
                    slot: &h2.stop_write,
                })
                .await
                else {
                    return;
                };
                pending = written;
                res
            }
            Writer::Tls(tls) => {
                let writing = pin!(tls.write_all(&pending));
                let Some(res) = (Expiring {
                    fut: writing,
                    slot: &h2.stop_write,
                })
                .await
                else {
                    return;
                };
                res
            }
        };
        pending.clear();
        match res {
            Ok(n) => shard.step(0).bytes_out += n as u64,
            Err(_) => {
                // The reader stops too; the lanes' streams fail as the connection closes.
                h2.stop.expire();
                return;
            }
        }
    }
}

impl H2Conn {
    /// Ready with `true` once a lane waits for a connection, `false` once none is left.
    fn poll_demand(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut inner = self.inner.borrow_mut();
        if !self.alive() {
            return Poll::Ready(false);
        }
        if !inner.waiting.is_empty() {
            return Poll::Ready(true);
        }
        inner.driver = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Ready with `true` and the queued frames in `pending` (swapped, not copied), or `false`
    /// once the connection is closed.
    fn poll_out(&self, pending: &mut Vec<u8>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut inner = self.inner.borrow_mut();
        if !inner.out.is_empty() {
            std::mem::swap(&mut inner.out, pending);
            return Poll::Ready(true);
        }
        if inner.conn.is_none() || !self.alive() {
            return Poll::Ready(false);
        }
        if !inner
            .writer
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            inner.writer = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}
