//! The sandbox over real loopback sockets, spoken to in raw HTTP/1.1 with `std::net::TcpStream`.
//!
//! Every socket has read and write timeouts, so a broken endpoint fails a test instead of hanging it.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{Sandbox, SandboxConfig};

mod api;
mod capacity;
mod pages;
mod uploads;
mod ws;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).expect("sandbox starts")
}

fn connect(sandbox: &Sandbox) -> Client {
    let stream = TcpStream::connect(sandbox.addr()).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    Client {
        stream,
        buf: Vec::new(),
    }
}

/// `GET /control/stats` as JSON.
fn stats(sandbox: &Sandbox) -> serde_json::Value {
    let reply = get(sandbox, "/control/stats");
    assert_eq!(reply.status, 200);
    serde_json::from_slice(&reply.body).expect("JSON stats")
}

/// One request on a fresh connection.
fn get(sandbox: &Sandbox, path: &str) -> Reply {
    connect(sandbox).request("GET", path, "")
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let (_, value) = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        Some(value)
    }
}

struct Client {
    stream: TcpStream,
    /// Bytes read but not yet consumed (the start of the next response on a kept-alive connection).
    buf: Vec<u8>,
}

impl Client {
    fn request(&mut self, method: &str, path: &str, body: &str) -> Reply {
        self.request_with(method, path, &[], body.as_bytes())
    }

    fn request_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut request = format!("{method} {path} HTTP/1.1\r\nhost: sandbox\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        self.send(&request);
        self.stream.write_all(body).expect("write body");
        self.read_reply(method == "HEAD")
    }

    /// A JSON request, with `token` as a bearer token; returns the status and the JSON answer
    /// (`Null` for an empty body).
    fn json(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(authorization.as_deref().map(|a| ("authorization", a)));
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let reply = self.request_with(method, path, &headers, body.as_bytes());
        if reply.body.is_empty() {
            return (reply.status, serde_json::Value::Null);
        }
        let json = serde_json::from_slice(&reply.body).expect("JSON answer");
        (reply.status, json)
    }

    fn send(&mut self, raw: &str) {
        self.stream.write_all(raw.as_bytes()).expect("write");
    }

    /// Reads more bytes into `buf`; panics on EOF.
    fn fill(&mut self) {
        let mut chunk = [0u8; 16 << 10];
        let n = self.stream.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed mid-response");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// Consumes and returns the first `n` buffered bytes, reading until there are that many.
    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill();
        }
        self.buf.drain(..n).collect()
    }

    /// Consumes and returns bytes up to and including `delimiter`.
    fn take_through(&mut self, delimiter: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = find(&self.buf, delimiter) {
                return self.take(at + delimiter.len());
            }
            self.fill();
        }
    }

    fn read_to_end(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.buf);
        self.stream.read_to_end(&mut rest).expect("read to end");
        rest
    }

    fn read_reply(&mut self, head_only: bool) -> Reply {
        let head = String::from_utf8(self.take_through(b"\r\n\r\n")).expect("utf-8 head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status = status_line.split(' ').nth(1).expect("status code");
        let status = status.parse().expect("numeric status");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_string(), value.trim().to_string()))
            .collect();
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || reply.status == 204 || reply.status == 304 {
            return reply;
        }
        if let Some(len) = reply.header("content-length") {
            reply.body = self.take(len.parse().expect("numeric content-length"));
        } else if reply.header("transfer-encoding") == Some("chunked") {
            reply.body = self.read_chunked();
        } else {
            reply.body = self.read_to_end();
        }
        reply
    }

    fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let size_line = String::from_utf8(self.take_through(b"\r\n")).expect("utf-8 size");
            let size = usize::from_str_radix(size_line.trim_end(), 16).expect("hex chunk size");
            if size == 0 {
                self.take_through(b"\r\n");
                return body;
            }
            body.extend(self.take(size));
            assert_eq!(self.take(2), b"\r\n");
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn root_answers_ok() {
    let sandbox = sandbox();
    let reply = get(&sandbox, "/");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"ok\n");
    assert!(reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain")));
}

#[test]
fn bytes_sends_exactly_n_bytes() {
    let sandbox = sandbox();
    let reply = get(&sandbox, "/bytes/5000");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("5000"));
    assert_eq!(reply.body.len(), 5000);
    // Longer than the shared filler buffer, so sent as several frames.
    let reply = get(&sandbox, "/bytes/3000001");
    assert_eq!(reply.body.len(), 3_000_001);
    assert_eq!(get(&sandbox, "/bytes/67108865").status, 400);
}

#[test]
fn chunked_streams_n_bytes_in_chunks() {
    let sandbox = sandbox();
    let reply = get(&sandbox, "/chunked/1000");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    assert_eq!(reply.body.len(), 1000);
}

#[test]
fn status_answers_with_the_code_asked_for() {
    let sandbox = sandbox();
    let reply = get(&sandbox, "/status/503");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, b"status\n");
    assert_eq!(get(&sandbox, "/status/204").status, 204);
    assert_eq!(get(&sandbox, "/status/101").status, 400);
    assert_eq!(get(&sandbox, "/status/600").status, 400);
}

#[test]
fn head_sends_no_body_and_keeps_the_connection() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let reply = client.request("HEAD", "/", "");
    assert_eq!(reply.status, 200);
    // Had the server sent a body, it would now be read as the next status line.
    assert_eq!(client.request("GET", "/", "").body, b"ok\n");
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    assert_eq!(client.request("GET", "/", "").status, 200);
    assert_eq!(client.request("GET", "/bytes/10", "").body.len(), 10);
    assert_eq!(sandbox.requests(), 2);
}

#[test]
fn echo_returns_the_request_body() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    assert_eq!(client.request("POST", "/echo", "hello").body, b"hello");
    assert_eq!(client.request("PUT", "/echo", "again").body, b"again");
}

#[test]
fn close_answers_then_closes() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let reply = client.request("GET", "/close", "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.read_to_end().is_empty());
}

#[test]
fn delay_waits_before_answering() {
    let sandbox = sandbox();
    let started = Instant::now();
    assert_eq!(get(&sandbox, "/delay/100").body, b"ok\n");
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[test]
fn misbehave_reset_resets_the_connection() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    client.send("GET /misbehave/reset HTTP/1.1\r\nhost: sandbox\r\n\r\n");
    match client.stream.read(&mut [0u8; 64]) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected a reset, got {other:?}"),
    }
    assert_eq!(sandbox.requests(), 1);
}

#[test]
fn misbehave_garbage_is_not_http() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    client.send("GET /misbehave/garbage HTTP/1.1\r\nhost: sandbox\r\n\r\n");
    assert_eq!(client.read_to_end(), b"this is not http\r\n\r\n");
}

#[test]
fn misbehave_lying_length_sends_less_than_announced() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    client.send("GET /misbehave/lying-length HTTP/1.1\r\nhost: sandbox\r\n\r\n");
    let response = client.read_to_end();
    assert!(find(&response, b"content-length: 1000").is_some());
    assert!(response.ends_with(b"\r\n\r\n0123456789"));
}

#[test]
fn misbehave_short_chunked_stops_before_the_last_chunk() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    client.send("GET /misbehave/short-chunked HTTP/1.1\r\nhost: sandbox\r\n\r\n");
    let response = client.read_to_end();
    assert!(find(&response, b"transfer-encoding: chunked").is_some());
    assert!(response.ends_with(b"\r\n\r\n5\r\nhello\r\n"));
}

#[test]
fn misbehave_huge_header_sends_a_megabyte_line() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    client.send("GET /misbehave/huge-header HTTP/1.1\r\nhost: sandbox\r\n\r\n");
    let response = client.read_to_end();
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(response.len() > 1 << 20);
}

#[test]
fn misbehave_trickle_is_valid_but_slow() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let started = Instant::now();
    client.send("GET /misbehave/trickle HTTP/1.1\r\nhost: sandbox\r\n\r\n");
    let reply = client.read_reply(false);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 100);
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[test]
fn misbehave_silent_never_answers() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let timeout = Some(Duration::from_millis(200));
    client.stream.set_read_timeout(timeout).expect("timeout");
    client.send("GET /misbehave/silent HTTP/1.1\r\nhost: sandbox\r\n\r\n");
    let error = client.stream.read(&mut [0u8; 64]).expect_err("no answer");
    assert!(matches!(
        error.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
}

#[test]
fn stall_holds_new_requests() {
    let sandbox = sandbox();
    assert_eq!(
        connect(&sandbox)
            .request("POST", "/control/stall?ms=300", "")
            .status,
        204
    );
    let started = Instant::now();
    assert_eq!(get(&sandbox, "/").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn stall_holds_requests_already_in_flight() {
    let sandbox = sandbox();
    let mut in_flight = connect(&sandbox);
    let started = Instant::now();
    in_flight.send("GET /delay/50 HTTP/1.1\r\nhost: sandbox\r\n\r\n");
    std::thread::sleep(Duration::from_millis(10));
    connect(&sandbox).request("POST", "/control/stall?ms=300", "");
    assert_eq!(in_flight.read_reply(false).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn requests_counts_all_but_control() {
    let sandbox = sandbox();
    get(&sandbox, "/");
    get(&sandbox, "/status/404");
    get(&sandbox, "/no/such/path");
    let mut client = connect(&sandbox);
    client.send("GET /misbehave/close HTTP/1.1\r\nhost: sandbox\r\n\r\n");
    assert!(client.read_to_end().is_empty());
    assert_eq!(sandbox.requests(), 4);

    let reply = get(&sandbox, "/control/stats");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        stats(&sandbox),
        serde_json::json!({
            "requests": 4,
            "ws_connections": 0,
            "ws_messages_in": 0,
            "ws_messages_out": 0,
            "ws_lagged_disconnects": 0,
            "rooms": {},
        })
    );
    assert_eq!(
        connect(&sandbox)
            .request("POST", "/control/reset-stats", "")
            .status,
        204
    );
    assert_eq!(sandbox.requests(), 0);
}

#[test]
fn oversized_first_head_is_refused() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    let filler = "a".repeat(70 << 10);
    client.send(&format!("GET / HTTP/1.1\r\nx-filler: {filler}\r\n\r\n"));
    assert_eq!(client.read_reply(false).status, 431);
}

#[test]
fn shutdown_stops_listening() {
    let sandbox = sandbox();
    let addr = sandbox.addr();
    assert!(sandbox.url().starts_with("http://127.0.0.1:"));
    sandbox.shutdown();
    assert!(TcpStream::connect(addr).is_err());
}
