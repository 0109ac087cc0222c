//! One HTTP/1.1 request over a fresh `TcpStream` (sent with `Connection: close`), read to the end
//! of the connection: the tests' oracle for exactly what a server sends (status, framing headers,
//! the body as it was on the wire, chunk sizes included).
//!
//! It refuses to be a client: no connection reuse, no body decoding, no redirects.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Bounds every raw exchange: a test server that hangs fails the test instead of the CI run.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as it was on the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The bytes after the head, undecoded (a chunked body keeps its chunk framing).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// First value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `METHOD path` with `headers` (plus `Host`, `Connection: close` and, for a body,
/// `Content-Length`) and reads until the server closes.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<RawResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut wire = Vec::new();
    stream
        .read_to_end(&mut wire)
        .with_context(|| format!("read response to {method} {path} from {addr}"))?;
    parse(&wire).with_context(|| format!("response to {method} {path} from {addr}"))
}

fn parse(wire: &[u8]) -> Result<RawResponse> {
    let Some(head_len) = wire.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!(
            "no complete head in {} bytes: {:?}",
            wire.len(),
            String::from_utf8_lossy(wire)
        );
    };
    let head = std::str::from_utf8(&wire[..head_len]).context("head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(RawResponse {
        status,
        headers,
        body: wire[head_len + 4..].to_vec(),
    })
}
