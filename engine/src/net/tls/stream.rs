//! `TlsStream`: a TLS client connection over a monoio `TcpStream`, driving rustls' unbuffered
//! API with two owned ciphertext buffers.
//!
//! It implements monoio's `AsyncReadRent`/`AsyncWriteRent`, so connection code reads into
//! `buf.slice_mut(len..cap)` and `write_all(vec)` exactly as on a `TcpStream`. Buffers stay
//! small while a connection idles: the ciphertext buffer grows to a record's size only when
//! such a record arrives, and plaintext goes straight into the caller's buffer. The handshake,
//! reads, writes and the close all run one loop over rustls' states (`drive`); only what a
//! state means differs between them.
//!
//! It refuses to be clever about cancellation: if a read or write future is dropped while the
//! socket holds one of its buffers, the stream is poisoned (every later call fails) and the
//! caller closes it. It never panics and never leaks.

use std::fmt;
use std::io;
use std::mem;
use std::sync::Arc;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut, IoVecWrapperMut};
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelHandle, CancelableAsyncReadRent,
};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use rustls::{ClientConfig, HandshakeKind, ProtocolVersion};

use super::error::TlsError;
use super::write_buf::bytes_of;

/// Ciphertext buffer at the start: the server's first flight (certificates) usually fits.
const INCOMING_HANDSHAKE: usize = 4 * 1024;
/// Ciphertext buffer kept after the handshake: small responses and control records fit; a
/// larger record grows it to that record's size (once per connection).
const INCOMING_IDLE: usize = 2 * 1024;
/// A handshake message may span records and is reassembled in place (rustls caps one at
/// 64 KiB); beyond this the peer is not speaking TLS we accept.
const INCOMING_MAX: usize = 0xffff + RECORD_MAX;
/// Largest record on the wire (TLS 1.2's ciphertext bound plus the header).
const RECORD_MAX: usize = 5 + (1 << 14) + 2048;
const HEADER_LEN: usize = 5;
/// Outgoing ciphertext at the start (a ClientHello) and kept after the handshake.
const OUTGOING_IDLE: usize = 1024;
/// Plaintext encrypted per `write` call: one full record, so the outgoing buffer stays under
/// ~16.5 KiB whatever the caller writes (`write_all` loops).
const WRITE_CHUNK: usize = 1 << 14;

/// A client TLS connection after its handshake.
pub struct TlsStream {
    tcp: TcpStream,
    conn: UnbufferedClientConnection,
    /// Ciphertext received and not yet discarded; its spare capacity is what the next socket
    /// read fills.
    incoming: Vec<u8>,
    out: Outgoing,
    /// Decrypted bytes the caller's buffer had no room for, served before anything else.
    plain: Vec<u8>,
    plain_pos: usize,
    /// The peer sent close_notify: reads return 0 from now on.
    peer_closed: bool,
    /// An operation failed or was dropped mid-way: the TLS state no longer matches the wire.
    poisoned: bool,
    /// Set during `cancelable_read`: socket reads stop (without losing a byte) when cancelled.
    cancel: Option<CancelHandle>,
}

/// Ciphertext to send. `buf` is zero-filled up to its length once; `len` bytes are pending.
pub(super) struct Outgoing {
    pub(super) buf: Vec<u8>,
    pub(super) len: usize,
}

/// A stream taken apart after its handshake (`split`): the socket, the TLS state, ciphertext
/// not yet processed and plaintext not yet read.
pub(super) struct Parts {
    pub(super) tcp: TcpStream,
    pub(super) conn: UnbufferedClientConnection,
    pub(super) incoming: Vec<u8>,
    pub(super) plain: Vec<u8>,
}

/// What `TlsStream::drive` is doing; each reads rustls' states in its own way.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op<'a> {
    Handshake,
    /// Decrypt the next record with data into the caller's buffer.
    Read,
    /// Encrypt and send this plaintext (at most `WRITE_CHUNK`).
    Write(&'a [u8]),
    /// Queue close_notify if the connection can carry it, and send it.
    Close,
}

/// What the driver does after one `process_tls_records` call.
enum Next {
    /// Call again (something was encoded or consumed).
    Again,
    /// Send the outgoing buffer, then call again.
    Transmit,
    /// Read more ciphertext from the socket.
    NeedData,
    /// The peer closed cleanly: reads return 0 from now on.
    PeerClosed,
    /// The operation is over once the outgoing buffer (if any) is sent.
    Finished,
}

/// How an operation ended.
enum Done {
    /// `Op::Read`: this many plaintext bytes are in the caller's buffer.
    Read(usize),
    /// `Op::Read`: the peer closed (cleanly or not).
    Eof,
    Finished,
}

type State<'c, 'i> = ConnectionState<'c, 'i, ClientConnectionData>;

/// The handshake's reading of a state (beyond encoding and transmitting).
fn handshake_next(state: State<'_, '_>) -> Result<Next, TlsError> {
    match state {
        ConnectionState::BlockedHandshake => Ok(Next::NeedData),
        // Application data may already follow the handshake: it waits inside rustls.
        ConnectionState::WriteTraffic(_) | ConnectionState::ReadTraffic(_) => Ok(Next::Finished),
        ConnectionState::PeerClosed | ConnectionState::Closed => Err(TlsError::HandshakeEof),
        other => Err(TlsError::Handshake(unexpected(&other))),
    }
}

/// A read's reading of a state other than `ReadTraffic` (which `drive` serves in place).
fn read_next(state: State<'_, '_>) -> Result<Next, TlsError> {
    match state {
        ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) => Ok(Next::NeedData),
        ConnectionState::PeerClosed | ConnectionState::Closed => Ok(Next::PeerClosed),
        other => Err(TlsError::Protocol(unexpected(&other))),
    }
}

/// A write's reading of a state: encrypt `chunk` once rustls can.
fn write_next(
    state: State<'_, '_>,
    chunk: &[u8],
    out: &mut Outgoing,
    plain: &mut Vec<u8>,
    peer_closed: &mut bool,
) -> Result<Next, TlsError> {
    match state {
        ConnectionState::WriteTraffic(mut traffic) => out
            .push(|spare| traffic.encrypt(chunk, spare).map_err(encrypt_need))
            .map(|()| Next::Finished),
        // Data that arrived before this write is kept for the next read.
        ConnectionState::ReadTraffic(mut traffic) => {
            while let Some(record) = traffic.next_record() {
                match record {
                    Ok(record) => plain.extend_from_slice(record.payload),
                    Err(e) => return Err(TlsError::from_rustls(e, false)),
                }
            }
            Ok(Next::Again)
        }
        ConnectionState::PeerClosed => {
            // Reads see the close; a request may still go out (the server decides).
            *peer_closed = true;
            Ok(Next::Again)
        }
        ConnectionState::Closed => Err(TlsError::Io(io::ErrorKind::BrokenPipe.into())),
        // Only reachable mid-handshake, which `connect` finished: nothing will unblock.
        ConnectionState::BlockedHandshake => Err(TlsError::Protocol(rustls::Error::General(
            "write before the handshake completed".into(),
        ))),
        other => Err(TlsError::Protocol(unexpected(&other))),
    }
}

/// A close's reading of a state: close_notify goes out only on a connection ready for
/// application data; in any other state (or on a TLS error) there is nothing to send.
fn close_next(state: Result<State<'_, '_>, rustls::Error>, out: &mut Outgoing) -> Next {
    if let Ok(ConnectionState::WriteTraffic(mut traffic)) = state {
        // A failure to queue it leaves nothing to send: the socket is shut down all the same.
        let _ = out.push(|spare| traffic.queue_close_notify(spare).map_err(encrypt_need));
    }
    Next::Finished
}

/// Performs the TLS handshake on a connected socket. Sets `TCP_NODELAY`: without it the
/// handshake's small flights wait on delayed ACKs (tens of ms instead of under one).
/// Dropping the future (a connect timeout) closes the socket.
pub async fn connect(
    tcp: TcpStream,
    config: &Arc<ClientConfig>,
    server_name: &ServerName<'static>,
) -> Result<TlsStream, TlsError> {
    // Best effort, as for plain connections: a socket without it still works, only slower.
    let _ = tcp.set_nodelay(true);
    let conn = UnbufferedClientConnection::new(Arc::clone(config), server_name.clone())
        .map_err(|e| TlsError::from_rustls(e, true))?;
    let mut stream = TlsStream {
        tcp,
        conn,
        incoming: Vec::with_capacity(INCOMING_HANDSHAKE),
        out: Outgoing {
            buf: vec![0; OUTGOING_IDLE],
            len: 0,
        },
        plain: Vec::new(),
        plain_pos: 0,
        peer_closed: false,
        poisoned: false,
        cancel: None,
    };
    stream.handshake().await?;
    stream.trim();
    Ok(stream)
}

/// The error of a read that a `cancelable_read`'s handle cancelled (a plain socket's or ours).
pub fn is_cancelled(e: &io::Error) -> bool {
    // monoio reports ECANCELED, from the kernel (io_uring) or before submitting.
    e.raw_os_error() == Some(125)
}

impl TlsStream {
    /// Whether the handshake resumed an earlier session (ticket or session id).
    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }

    /// The negotiated TLS version.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The ALPN protocol the server chose, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The underlying socket (for socket options).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Its parts, for a reader and a writer of their own; `None` once poisoned.
    pub(super) fn into_parts(self) -> Option<Parts> {
        if self.poisoned {
            return None;
        }
        let mut plain = self.plain;
        plain.drain(..self.plain_pos);
        Some(Parts {
            tcp: self.tcp,
            conn: self.conn,
            incoming: self.incoming,
            plain,
        })
    }

    async fn handshake(&mut self) -> Result<(), TlsError> {
        let (res, _) = self.drive(Op::Handshake, Vec::new()).await;
        res.map(|_| ())
    }

    /// After the handshake: give back what the certificates needed, keep idle-sized buffers.
    fn trim(&mut self) {
        if self.incoming.capacity() > INCOMING_IDLE && self.incoming.len() <= INCOMING_IDLE {
            self.incoming.shrink_to(INCOMING_IDLE);
        }
        if self.out.len == 0 && self.out.buf.len() > OUTGOING_IDLE {
            self.out.buf.truncate(OUTGOING_IDLE);
            self.out.buf.shrink_to_fit();
        }
    }

    /// `read`, cut short when `c` is cancelled: then `Err` (see `is_cancelled`) with nothing
    /// lost, and the stream usable as before.
    pub async fn cancelable_read<T: IoBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> BufResult<usize, T> {
        self.cancel = Some(c);
        let read = self.read_plain(buf).await;
        self.cancel = None;
        read
    }

    async fn read_plain<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        if self.poisoned {
            return (Err(poisoned()), buf);
        }
        if self.plain_pos < self.plain.len() {
            let mut rest = &self.plain[self.plain_pos..];
            // monoio's reader for `&[u8]` copies into any `IoBufMut` and is ready at once.
            let (res, buf) = rest.read(buf).await;
            if let Ok(n) = res {
                self.plain_pos += n;
                if self.plain_pos == self.plain.len() {
                    self.plain.clear();
                    self.plain_pos = 0;
                }
            }
            return (res, buf);
        }
        if self.peer_closed {
            return (Ok(0), buf);
        }
        match self.drive(Op::Read, buf).await {
            (Ok(Done::Read(n)), buf) => (Ok(n), buf),
            (Ok(Done::Eof | Done::Finished), buf) => (Ok(0), buf),
            (Err(e), buf) => (Err(e.into_io()), buf),
        }
    }

    async fn write_plain<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        if self.poisoned {
            return (Err(poisoned()), buf);
        }
        let Some(data) = bytes_of(&buf) else {
            let e = io::Error::new(
                io::ErrorKind::Unsupported,
                "TlsStream writes Vec<u8>, Box<[u8]>, static slices, and slices of these",
            );
            return (Err(e), buf);
        };
        let chunk = &data[..data.len().min(WRITE_CHUNK)];
        let written = chunk.len();
        if written == 0 {
            return (Ok(0), buf);
        }
        let (res, _) = self.drive(Op::Write(chunk), Vec::new()).await;
        let res = res.map(|_| written).map_err(TlsError::into_io);
        (res, buf)
    }

    /// Sends close_notify if the connection is in a state to, then shuts the socket down.
    async fn close(&mut self) -> io::Result<()> {
        if !self.poisoned {
            let (res, _) = self.drive(Op::Close, Vec::new()).await;
            res.map_err(TlsError::into_io)?;
        }
        self.tcp.shutdown().await
    }

    /// The one loop over rustls' unbuffered API that every operation runs: process the
    /// records buffered, act on the state rustls reports, repeat until `op` is done. Encoding,
    /// transmitting and reading more ciphertext are the same for every operation; what the
    /// others mean is `op`'s to say (`handshake_next`, `read_next`, `write_next`, `close_next`).
    /// `buf` is the caller's read buffer (`Op::Read` only; the others pass an empty one).
    /// A failure poisons the stream.
    async fn drive<T: IoBufMut>(&mut self, op: Op<'_>, buf: T) -> (Result<Done, TlsError>, T) {
        loop {
            let Self {
                conn,
                incoming,
                out,
                plain,
                peer_closed,
                ..
            } = self;
            let status = conn.process_tls_records(incoming);
            let discard = status.discard;
            let next = match (op, status.state) {
                (Op::Close, state) => Ok(close_next(state, out)),
                (_, Ok(ConnectionState::EncodeTlsData(mut data))) => out
                    .push(|spare| data.encode(spare).map_err(encode_need))
                    .map(|()| Next::Again),
                (_, Ok(ConnectionState::TransmitTlsData(data))) => {
                    // Only a flag for rustls; the bytes go out right below, before anything else.
                    data.done();
                    Ok(Next::Transmit)
                }
                (Op::Read, Ok(ConnectionState::ReadTraffic(mut traffic))) => {
                    match traffic.next_record() {
                        Some(Ok(record)) if !record.payload.is_empty() => {
                            // Straight into the caller's buffer; only what does not fit is kept.
                            let mut rest = record.payload;
                            let (res, buf) = rest.read(buf).await;
                            plain.extend_from_slice(rest);
                            drop(traffic);
                            discard_front(incoming, discard);
                            return (res.map(Done::Read).map_err(TlsError::Io), buf);
                        }
                        Some(Ok(_)) | None => Ok(Next::Again),
                        Some(Err(e)) => Err(TlsError::from_rustls(e, false)),
                    }
                }
                (Op::Handshake, Ok(state)) => handshake_next(state),
                (Op::Read, Ok(state)) => read_next(state),
                (Op::Write(chunk), Ok(state)) => write_next(state, chunk, out, plain, peer_closed),
                (op, Err(e)) => Err(TlsError::from_rustls(e, op == Op::Handshake)),
            };
            discard_front(incoming, discard);
            let step = match next {
                Ok(Next::Again) => Ok(()),
                Ok(Next::Transmit) => self.transmit().await,
                Ok(Next::NeedData) => match self.fill().await {
                    Ok(true) => Ok(()),
                    // The peer closed without close_notify: HTTP framing tells a short body.
                    Ok(false) if op == Op::Read => {
                        self.peer_closed = true;
                        return (Ok(Done::Eof), buf);
                    }
                    Ok(false) => Err(TlsError::HandshakeEof),
                    // A cancelled read took no ciphertext: the state still matches the wire.
                    Err(TlsError::Io(e)) if is_cancelled(&e) => return (Err(TlsError::Io(e)), buf),
                    Err(e) => Err(e),
                },
                Ok(Next::PeerClosed) => {
                    self.peer_closed = true;
                    return (Ok(Done::Eof), buf);
                }
                Ok(Next::Finished) => match self.transmit().await {
                    Ok(()) => return (Ok(Done::Finished), buf),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            if let Err(e) = step {
                return (Err(self.fail(e)), buf);
            }
        }
    }

    /// Sends the pending outgoing ciphertext.
    async fn transmit(&mut self) -> Result<(), TlsError> {
        if self.out.len == 0 {
            return Ok(());
        }
        let pending = self.out.len;
        let buf = mem::take(&mut self.out.buf);
        // Stays set if this future is dropped while the socket holds the buffer.
        self.poisoned = true;
        let (res, slice) = self.tcp.write_all(buf.slice(..pending)).await;
        self.out.buf = slice.into_inner();
        self.out.len = 0;
        self.poisoned = false;
        res.map(|_| ()).map_err(TlsError::Io)
    }

    /// Reads more ciphertext; `false` at end of stream.
    async fn fill(&mut self) -> Result<bool, TlsError> {
        make_room(&mut self.incoming)?;
        let buf = mem::take(&mut self.incoming);
        let (len, cap) = (buf.len(), buf.capacity());
        // Stays set if this future is dropped while the socket holds the buffer.
        self.poisoned = true;
        let (res, slice) = match self.cancel.clone() {
            Some(c) => self.tcp.cancelable_read(buf.slice_mut(len..cap), c).await,
            None => self.tcp.read(buf.slice_mut(len..cap)).await,
        };
        self.incoming = slice.into_inner();
        self.poisoned = false;
        match res {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(TlsError::Io(e)),
        }
    }

    /// Poisons the stream and passes the error on.
    fn fail(&mut self, e: TlsError) -> TlsError {
        self.poisoned = true;
        e
    }
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("protocol", &self.protocol_version())
            .field("resumed", &self.resumed())
            .field("peer_closed", &self.peer_closed)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Outgoing {
    /// Lets rustls write into the free part of the buffer, growing it to the size rustls asks.
    pub(super) fn push(
        &mut self,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, Need>,
    ) -> Result<(), TlsError> {
        // The second attempt has the room rustls asked for.
        for _ in 0..2 {
            match write(self.buf.get_mut(self.len..).unwrap_or_default()) {
                Ok(n) => {
                    self.len += n;
                    return Ok(());
                }
                Err(Need::Room(required)) => {
                    let size = self.len + required;
                    self.buf.reserve_exact(size.saturating_sub(self.buf.len()));
                    self.buf.resize(size, 0);
                }
                Err(Need::Fail(e)) => return Err(TlsError::Protocol(e)),
            }
        }
        Err(TlsError::Protocol(rustls::Error::General(
            "TLS encoder kept asking for more room".into(),
        )))
    }
}

/// Why rustls could not write into the buffer it was given.
pub(super) enum Need {
    Room(usize),
    Fail(rustls::Error),
}

pub(super) fn encode_need(e: EncodeError) -> Need {
    match e {
        EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Need::Room(required_size)
        }
        EncodeError::AlreadyEncoded => Need::Fail(rustls::Error::General(e.to_string())),
    }
}

pub(super) fn encrypt_need(e: EncryptError) -> Need {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Need::Room(required_size)
        }
        EncryptError::EncryptExhausted => Need::Fail(rustls::Error::EncryptError),
    }
}

pub(super) fn unexpected<Data>(state: &ConnectionState<'_, '_, Data>) -> rustls::Error {
    rustls::Error::General(format!("unexpected TLS client state {state:?}"))
}

fn poisoned() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "TLS stream unusable after a failed or cancelled operation: close it",
    )
}

/// Drops the bytes rustls is done with (the front of the buffer), keeping the capacity.
pub(super) fn discard_front(incoming: &mut Vec<u8>, discard: usize) {
    if discard > 0 {
        incoming.drain(..discard.min(incoming.len()));
    }
}

/// Makes room in `incoming` for the next socket read: for the whole record whose header is at
/// the front if that is larger, else twice the room when full.
pub(super) fn make_room(incoming: &mut Vec<u8>) -> Result<(), TlsError> {
    let len = incoming.len();
    let record = match incoming.get(3..HEADER_LEN) {
        Some(&[hi, lo]) => HEADER_LEN + usize::from(u16::from_be_bytes([hi, lo])),
        _ => 0,
    };
    let want = if record > incoming.capacity() {
        record
    } else if len == incoming.capacity() {
        (2 * len).max(INCOMING_IDLE)
    } else {
        return Ok(());
    };
    if want > INCOMING_MAX {
        return Err(TlsError::Protocol(rustls::Error::General(format!(
            "TLS data of {want} bytes buffered without a complete message"
        ))));
    }
    incoming.reserve_exact(want - len);
    Ok(())
}

impl AsyncReadRent for TlsStream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        self.read_plain(buf).await
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match IoVecWrapperMut::new(buf) {
            Ok(one) => {
                let (res, one) = self.read_plain(one).await;
                (res, one.into_inner())
            }
            Err(buf) => (Err(io::ErrorKind::InvalidInput.into()), buf),
        }
    }
}

impl AsyncWriteRent for TlsStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        self.write_plain(buf).await
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // Vectored buffers expose only raw pointers (see `bytes_of`).
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        // Every write goes to the socket before it returns.
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_made_for_the_record_at_the_front() {
        let mut incoming = Vec::with_capacity(INCOMING_IDLE);
        incoming.extend_from_slice(&[23, 3, 3, 0x40, 0x11]);
        make_room(&mut incoming).expect("a full-size record fits the bound");
        assert!(incoming.capacity() >= HEADER_LEN + 0x4011);
        // Room left and no larger record announced: no growth.
        let cap = incoming.capacity();
        make_room(&mut incoming).expect("room left");
        assert_eq!(incoming.capacity(), cap);

        let mut full = vec![0u8; INCOMING_IDLE];
        full[3] = 0;
        full[4] = 10;
        make_room(&mut full).expect("doubles when full");
        assert!(full.capacity() >= 2 * INCOMING_IDLE);
    }

    #[test]
    fn discard_keeps_the_unprocessed_tail() {
        let mut incoming = b"doneTAIL".to_vec();
        discard_front(&mut incoming, 4);
        assert_eq!(incoming, b"TAIL");
        discard_front(&mut incoming, 99);
        assert!(incoming.is_empty());
    }
}
