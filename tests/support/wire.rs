//! Arbitrary bytes to a server over one connection, and whatever it answers until it closes or
//! goes quiet: for abuse `raw_request` cannot express (bodies longer than their limit or than
//! their `Content-Length`, bytes that are not HTTP, heads that never end).
//!
//! It refuses to interpret beyond the status line: a reply is its status (if any) and its text.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result};

/// Bounds connecting and each blocked write: a server that stops reading does not hang a test.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What came back over one connection.
#[derive(Debug)]
pub struct WireReply {
    /// From a leading `HTTP/1.x NNN` status line; `None` if the server sent none.
    pub status: Option<u16>,
    /// Everything read, lossily decoded.
    pub text: String,
    /// Why sending stopped early (the server may refuse before reading everything).
    pub write_error: Option<String>,
}

/// Connects, writes `parts` in order (stopping at the first failed write), then reads until the
/// server closes, resets, or sends nothing for `quiet`.
pub fn exchange(addr: SocketAddr, parts: &[&[u8]], quiet: Duration) -> Result<WireReply> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_read_timeout(Some(quiet))?;
    let mut write_error = None;
    for part in parts {
        if let Err(e) = stream.write_all(part) {
            write_error = Some(e.to_string());
            break;
        }
    }
    let mut wire = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => wire.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Quiet (timeout) or reset: what was read is the reply.
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&wire).into_owned();
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok());
    Ok(WireReply {
        status,
        text,
        write_error,
    })
}
