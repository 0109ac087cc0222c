//! The tasks that own an HTTP/2 connection's socket: the driver connects (again after a GOAWAY
//! or a close, once a lane waits), reads and feeds the codec; the writer beside it writes what
//! lanes and the codec queue. The socket is split so a read in flight never delays a write.
//!
//! Plain TCP only (h2c, prior knowledge): the plan refuses `https://` with HTTP/2 for now, since
//! the TLS stream cannot yet be read and written at once.

use std::future::poll_fn;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;

use super::H2Conn;
use crate::net::tls::Stream;
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
                    Err(_) => {
                        // Each waiting lane counts the failure as its own request's.
                        h2.connect_failed();
                        monoio::time::sleep(CONNECT_BACKOFF).await;
                        continue;
                    }
                }
            }
        };
        let Stream::Plain(tcp) = socket else {
            // The plan refuses https:// with HTTP/2; never reached.
            shard.conn_closed();
            h2.connect_failed();
            continue;
        };
        if !h2.alive() {
            shard.conn_closed();
            break;
        }
        let (reader, writer) = tcp.into_split();
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

/// Reads and feeds the codec until the connection ends, fails, drains or is stopped.
async fn read(
    shard: &ShardState,
    h2: &H2Conn,
    mut reader: OwnedReadHalf<TcpStream>,
    buf: &mut Vec<u8>,
) {
    loop {
        if buf.capacity() - buf.len() < READ_BUF / 4 {
            buf.reserve(READ_BUF);
        }
        let owned = std::mem::take(buf);
        let (len, cap) = (owned.len(), owned.capacity());
        let reading = pin!(reader.read(owned.slice_mut(len..cap)));
        // Stopped: the buffer goes down with the cancelled read (plain TCP: nothing is lost
        // that matters, the connection closes).
        let Some((res, slice)) = (Expiring {
            fut: reading,
            slot: &h2.stop,
        })
        .await
        else {
            return;
        };
        *buf = slice.into_inner();
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
async fn write(shard: Rc<ShardState>, h2: Rc<H2Conn>, mut writer: OwnedWriteHalf<TcpStream>) {
    let mut pending: Vec<u8> = Vec::with_capacity(16 * 1024);
    while poll_fn(|cx| h2.poll_out(&mut pending, cx)).await {
        let writing = pin!(writer.write_all(std::mem::take(&mut pending)));
        let Some((res, written)) = (Expiring {
            fut: writing,
            slot: &h2.stop_write,
        })
        .await
        else {
            return;
        };
        pending = written;
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
