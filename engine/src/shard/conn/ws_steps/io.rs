//! A journey socket's reads and writes, bounded by the user's deadline slot. A read or write
//! cut short by the deadline takes its buffer down with it; the socket is then dropped.

use std::pin::pin;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

use super::Socket;
use crate::metrics::ErrorKind;
use crate::net::tls::is_cancelled;
use crate::proto::ws;
use crate::shard::conn::deadline::{Expiring, Slot};
use crate::shard::conn::socket::read_error_kind;
use crate::shard::state::ShardState;

/// Initial read buffer of a socket; grows only for a frame larger than this.
const READ_BUF: usize = 512;

impl Socket {
    /// Sends `out` (emptied); the buffer comes back for reuse.
    pub(super) async fn write_out(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
    ) -> Result<(), ErrorKind> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(ErrorKind::WsClosed);
        };
        let write = pin!(stream.write_all(std::mem::take(&mut self.out)));
        let Some((res, mut written)) = (Expiring { fut: write, slot }).await else {
            return Err(ErrorKind::Timeout);
        };
        written.clear();
        self.out = written;
        match res {
            Ok(n) => {
                shard.step(0).bytes_out += n as u64;
                Ok(())
            }
            Err(e) => Err(match read_error_kind(&e) {
                ErrorKind::Reset => ErrorKind::WsClosed,
                _ => ErrorKind::Write,
            }),
        }
    }

    /// Appends what the socket has to `buf`; `Err` on close, failure or the slot's deadline.
    pub(super) async fn read_more(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
    ) -> Result<(), ErrorKind> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(ErrorKind::WsClosed);
        };
        let owned = room_to_read(&mut self.buf);
        let (len, cap) = (owned.len(), owned.capacity());
        let read = pin!(stream.read(owned.slice_mut(len..cap)));
        let Some((res, slice)) = (Expiring { fut: read, slot }).await else {
            return Err(ErrorKind::Timeout);
        };
        self.buf = slice.into_inner();
        read_outcome(shard, res).map(|_| ())
    }

    /// Answers a server's close (best effort) before the socket is counted as closed.
    pub(super) async fn answer_close(
        &mut self,
        shard: &ShardState,
        slot: &Slot,
        rng: &mut fastrand::Rng,
    ) -> ErrorKind {
        self.out.clear();
        let _ = ws::encode_close(Some((1000, "")), rng, &mut self.out);
        let _ = self.write_out(shard, slot).await;
        ErrorKind::WsClosed
    }
}

/// `buf`, taken out with room for a read: a first buffer, or twice the full one.
fn room_to_read(buf: &mut Vec<u8>) -> Vec<u8> {
    if buf.capacity() == 0 {
        buf.reserve(READ_BUF);
    } else if buf.len() == buf.capacity() {
        buf.reserve(buf.capacity().max(READ_BUF));
    }
    std::mem::take(buf)
}

/// A read's result as the steps count it: `Ok(true)` with bytes, `Ok(false)` cut short by the
/// canceller, the error kind otherwise (an end of stream or a reset is `ws_closed`).
fn read_outcome(shard: &ShardState, res: std::io::Result<usize>) -> Result<bool, ErrorKind> {
    match res {
        Ok(0) => Err(ErrorKind::WsClosed),
        Ok(n) => {
            shard.step(0).bytes_in += n as u64;
            Ok(true)
        }
        Err(e) if is_cancelled(&e) => Ok(false),
        Err(e) => Err(match read_error_kind(&e) {
            ErrorKind::Reset => ErrorKind::WsClosed,
            other => other,
        }),
    }
}

/// Drops the frames a decode consumed and makes room for the next one, whose size is known
/// once its header is in (`Decoded::Partial`). A buffer grown for a large frame shrinks back
/// once the frames after it are small, so a socket does not keep its largest frame's room.
pub(crate) fn consumed_partial(buf: &mut Vec<u8>, consumed: usize, next_frame_len: Option<usize>) {
    buf.drain(..consumed);
    let needed = next_frame_len.unwrap_or(0).max(buf.len());
    if needed <= ws::KEEP_BYTES && buf.capacity() > ws::KEEP_BYTES {
        buf.shrink_to(ws::KEEP_BYTES);
    } else {
        buf.reserve(needed - buf.len());
    }
}

impl Socket {
    /// `read_more`, or `Ok(false)` at `wake_at` (run clock) or when the load stops, with
    /// nothing read and nothing lost: the socket is read while a paced send or the end of a
    /// listen is waited for.
    pub(super) async fn read_or_wake(
        &mut self,
        shard: &ShardState,
        id: usize,
        slot: &Slot,
        wake_at: u64,
    ) -> Result<bool, ErrorKind> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(ErrorKind::WsClosed);
        };
        let owned = room_to_read(&mut self.buf);
        let (len, cap) = (owned.len(), owned.capacity());
        // One canceller per socket: a read that completes gives it back unused; only a fired
        // timer renews it.
        let canceller = self.canceller.take().unwrap_or_default();
        let handle = canceller.handle();
        let wait = Duration::from_nanos(wake_at.saturating_sub(shard.now_ns()));
        let stopping = shard.until_stopping(id);
        let outcome = Expiring {
            fut: pin!(async move {
                let mut read = pin!(stream.cancelable_read(owned.slice_mut(len..cap), handle));
                let sleep = monoio::time::sleep(wait);
                // The end of the load wakes a long listen as its timer would.
                let woken = async {
                    monoio::select! {
                        () = sleep => {},
                        () = stopping => {},
                    }
                };
                monoio::select! {
                    done = &mut read => (done, canceller),
                    () = woken => {
                        // Cancelled, the read still hands its buffer back (with any bytes it got).
                        let renewed = canceller.cancel();
                        (read.await, renewed)
                    }
                }
            }),
            slot,
        }
        .await;
        let Some(((res, slice), canceller)) = outcome else {
            return Err(ErrorKind::Timeout);
        };
        self.canceller = Some(canceller);
        self.buf = slice.into_inner();
        read_outcome(shard, res)
    }
}
