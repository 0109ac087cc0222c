//! A `TlsStream` after its handshake, split into a reader and a writer that two tasks drive at
//! once (HTTP/2: a read always in flight, writes whenever a stream has something to send).
//!
//! They share the rustls connection in a `RefCell` that is never borrowed across an await: the
//! reader decrypts everything its buffer holds in one borrow, the writer encrypts a whole write
//! in one borrow (rustls' unbuffered API offers `WriteTraffic` whenever it is given no records,
//! so the writer passes none). What the reader's records make rustls send back (a TLS 1.3 key
//! update, an alert) is left in the shared `reply` and goes out with the writer's next write;
//! the reader wakes the writer for it.
//!
//! Like `TlsStream`, a dropped read or write loses its buffer and fails the connection; the
//! caller closes it.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::task::Waker;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use rustls::client::UnbufferedClientConnection;
use rustls::unbuffered::ConnectionState;

use super::error::TlsError;
use super::stream::{
    discard_front, encode_need, encrypt_need, make_room, unexpected, Outgoing, TlsStream,
};

/// Plaintext encrypted per record (TLS's maximum).
const RECORD_PLAIN: usize = 1 << 14;

struct Shared {
    conn: UnbufferedClientConnection,
    /// Ciphertext the reader's records called for, sent before the writer's next bytes.
    reply: Outgoing,
    /// The writer, parked until it has something to send.
    writer: Option<Waker>,
}

pub struct TlsReader {
    shared: Rc<RefCell<Shared>>,
    tcp: OwnedReadHalf<TcpStream>,
    incoming: Vec<u8>,
    /// Plaintext that came with the handshake, handed out first.
    early: Vec<u8>,
    closed: bool,
}

pub struct TlsWriter {
    shared: Rc<RefCell<Shared>>,
    tcp: OwnedWriteHalf<TcpStream>,
    out: Outgoing,
}

/// Splits `stream`; `None` if an earlier operation failed it.
pub fn split(stream: TlsStream) -> Option<(TlsReader, TlsWriter)> {
    let parts = stream.into_parts()?;
    let (read, write) = parts.tcp.into_split();
    let shared = Rc::new(RefCell::new(Shared {
        conn: parts.conn,
        reply: Outgoing {
            buf: Vec::new(),
            len: 0,
        },
        writer: None,
    }));
    let reader = TlsReader {
        shared: shared.clone(),
        tcp: read,
        incoming: parts.incoming,
        early: parts.plain,
        closed: false,
    };
    let writer = TlsWriter {
        shared,
        tcp: write,
        out: Outgoing {
            buf: vec![0; RECORD_PLAIN + 1024],
            len: 0,
        },
    };
    Some((reader, writer))
}

impl TlsReader {
    /// Appends the next plaintext to `dst`: how many bytes, 0 at the end of the connection.
    pub async fn read_into(&mut self, dst: &mut Vec<u8>) -> io::Result<usize> {
        if !self.early.is_empty() {
            dst.extend_from_slice(&self.early);
            let n = self.early.len();
            self.early.clear();
            return Ok(n);
        }
        loop {
            if self.closed {
                return Ok(0);
            }
            let n = self.decrypt(dst).map_err(TlsError::into_io)?;
            if n > 0 {
                return Ok(n);
            }
            if self.closed {
                return Ok(0);
            }
            make_room(&mut self.incoming).map_err(TlsError::into_io)?;
            let buf = std::mem::take(&mut self.incoming);
            let (len, cap) = (buf.len(), buf.capacity());
            let (res, slice) = self.tcp.read(buf.slice_mut(len..cap)).await;
            self.incoming = slice.into_inner();
            if res? == 0 {
                return Ok(0);
            }
        }
    }

    /// Decrypts every whole record buffered into `dst`, in one borrow of the connection.
    fn decrypt(&mut self, dst: &mut Vec<u8>) -> Result<usize, TlsError> {
        let mut shared = self.shared.borrow_mut();
        let Shared {
            conn,
            reply,
            writer,
        } = &mut *shared;
        let mut appended = 0;
        loop {
            let status = conn.process_tls_records(&mut self.incoming);
            let mut discard = status.discard;
            let more = match status.state.map_err(|e| TlsError::from_rustls(e, false))? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(|e| TlsError::from_rustls(e, false))?;
                        discard += record.discard;
                        dst.extend_from_slice(record.payload);
                        appended += record.payload.len();
                    }
                    true
                }
                ConnectionState::EncodeTlsData(mut data) => {
                    reply.push(|spare| data.encode(spare).map_err(encode_need))?;
                    true
                }
                ConnectionState::TransmitTlsData(data) => {
                    data.done();
                    if let Some(w) = writer.take() {
                        w.wake();
                    }
                    true
                }
                // Nothing more in the buffer: a socket read is next.
                ConnectionState::WriteTraffic(_) | ConnectionState::BlockedHandshake => false,
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    self.closed = true;
                    false
                }
                other => return Err(TlsError::Protocol(unexpected(&other))),
            };
            discard_front(&mut self.incoming, discard);
            if !more {
                return Ok(appended);
            }
        }
    }
}

impl TlsWriter {
    /// Whether the reader left ciphertext to send (then `write_all` with nothing sends it).
    pub fn has_reply(&self) -> bool {
        self.shared.borrow().reply.len > 0
    }

    /// Parks `waker` until the reader has a reply to send.
    pub fn wake_on_reply(&self, waker: &Waker) {
        let mut shared = self.shared.borrow_mut();
        if !shared.writer.as_ref().is_some_and(|w| w.will_wake(waker)) {
            shared.writer = Some(waker.clone());
        }
    }

    /// Encrypts and sends `plain` (after any reply the reader left): the plaintext bytes sent.
    pub async fn write_all(&mut self, plain: &[u8]) -> io::Result<usize> {
        self.encrypt(plain).map_err(TlsError::into_io)?;
        let pending = self.out.len;
        let buf = std::mem::take(&mut self.out.buf);
        let (res, slice) = self.tcp.write_all(buf.slice(..pending)).await;
        self.out.buf = slice.into_inner();
        self.out.len = 0;
        res.map(|_| plain.len())
    }

    fn encrypt(&mut self, plain: &[u8]) -> Result<(), TlsError> {
        let mut shared = self.shared.borrow_mut();
        let Shared { conn, reply, .. } = &mut *shared;
        if reply.len > 0 {
            let bytes = &reply.buf[..reply.len];
            self.out.push(|spare| match spare.get_mut(..bytes.len()) {
                Some(room) => {
                    room.copy_from_slice(bytes);
                    Ok(bytes.len())
                }
                None => Err(super::stream::Need::Room(bytes.len())),
            })?;
            reply.len = 0;
        }
        for chunk in plain.chunks(RECORD_PLAIN) {
            loop {
                // No records given: rustls is free to say `WriteTraffic`.
                let status = conn.process_tls_records(&mut []);
                match status.state.map_err(|e| TlsError::from_rustls(e, false))? {
                    ConnectionState::WriteTraffic(mut traffic) => {
                        self.out
                            .push(|spare| traffic.encrypt(chunk, spare).map_err(encrypt_need))?;
                        break;
                    }
                    ConnectionState::EncodeTlsData(mut data) => {
                        self.out
                            .push(|spare| data.encode(spare).map_err(encode_need))?;
                    }
                    // The bytes are in `out` already, ahead of what follows.
                    ConnectionState::TransmitTlsData(data) => data.done(),
                    ConnectionState::PeerClosed | ConnectionState::Closed => {
                        return Err(TlsError::Io(io::ErrorKind::BrokenPipe.into()));
                    }
                    other => return Err(TlsError::Protocol(unexpected(&other))),
                }
            }
        }
        Ok(())
    }
}
