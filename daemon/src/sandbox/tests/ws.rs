//! The WebSocket endpoints, spoken to with tungstenite's blocking client (and, where frames matter,
//! its frame reader on a raw socket).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameSocket};
use tokio_tungstenite::tungstenite::{self, Bytes, Message, WebSocket};

use super::{connect, find, get, sandbox, stats, IO_TIMEOUT};
use crate::sandbox::Sandbox;

type Ws = WebSocket<TcpStream>;

fn ws(sandbox: &Sandbox, path: &str) -> Ws {
    let stream = TcpStream::connect(sandbox.addr()).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let url = format!("ws://{}{path}", sandbox.addr());
    let (ws, response) = tungstenite::client::client(url, stream).expect("handshake");
    assert_eq!(response.status(), 101);
    ws
}

/// The next text or binary message, skipping pings and pongs.
fn next_data(ws: &mut Ws) -> Message {
    loop {
        match ws.read().expect("a message") {
            message @ (Message::Text(_) | Message::Binary(_)) => return message,
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected data, got {other:?}"),
        }
    }
}

/// Sends `message` and times its echo.
fn round_trip(ws: &mut Ws, message: &str) -> Duration {
    let sent = Instant::now();
    ws.send(Message::text(message)).expect("send");
    assert_eq!(next_data(ws), Message::text(message));
    sent.elapsed()
}

/// Expects the server's close frame with `code`, then the end of the connection.
fn expect_close(ws: &mut Ws, code: CloseCode) {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                assert_eq!(frame.map(|f| f.code), Some(code));
                break;
            }
            Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_) | Message::Pong(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    // Reading on flushes our close reply; the connection then ends.
    assert!(matches!(
        ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
}

/// Polls `/control/stats` until `done` holds for it (bounded), and returns it.
fn stats_until(sandbox: &Sandbox, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let stats = stats(sandbox);
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn echo_returns_text_and_binary_and_answers_pings() {
    let sandbox = sandbox();
    let mut ws = ws(&sandbox, "/ws/echo");
    ws.send(Message::text("hello")).expect("send");
    assert_eq!(next_data(&mut ws), Message::text("hello"));
    let binary = Bytes::from_static(&[0, 1, 2, 255]);
    ws.send(Message::Binary(binary.clone())).expect("send");
    assert_eq!(next_data(&mut ws), Message::Binary(binary));
    ws.send(Message::Ping(Bytes::from_static(b"are you there")))
        .expect("send");
    assert_eq!(
        ws.read().expect("pong"),
        Message::Pong(Bytes::from_static(b"are you there"))
    );

    let stats = stats(&sandbox);
    assert_eq!(stats["ws_connections"], 1);
    assert_eq!(stats["ws_messages_in"], 2);
    assert_eq!(stats["ws_messages_out"], 2);
    // The handshake is a request like any other.
    assert_eq!(stats["requests"], 1);
    ws.close(None).expect("close");
    // The server's half of the close handshake, then the end.
    assert!(matches!(ws.read(), Ok(Message::Close(_))));
    assert!(matches!(
        ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    let stats = stats_until(&sandbox, |s| s["ws_connections"] == 0);
    assert_eq!(stats["ws_connections"], 0);
}

#[test]
fn echo_refuses_what_is_not_a_handshake() {
    let sandbox = sandbox();
    assert_eq!(get(&sandbox, "/ws/echo").status, 400);
    let mut client = connect(&sandbox);
    let old_version = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "8"),
    ];
    let reply = client.request_with("GET", "/ws/echo", &old_version, b"");
    assert_eq!(reply.status, 426);
    assert_eq!(reply.header("sec-websocket-version"), Some("13"));
    // The connection is still good for HTTP.
    assert_eq!(client.request("GET", "/", "").status, 200);
    assert_eq!(get(&sandbox, "/ws/echo?fragment=0").status, 400);
}

#[test]
fn a_kept_alive_connection_can_upgrade() {
    let sandbox = sandbox();
    let mut client = connect(&sandbox);
    assert_eq!(client.request("GET", "/", "").status, 200);
    assert!(client.buf.is_empty());
    let url = format!("ws://{}/ws/echo", sandbox.addr());
    let (mut ws, _) = tungstenite::client::client(url, client.stream).expect("handshake");
    round_trip(&mut ws, "upgraded");
    assert_eq!(sandbox.requests(), 2);
}

#[test]
fn echo_waits_delay_ms() {
    let sandbox = sandbox();
    let mut ws = ws(&sandbox, "/ws/echo?delay_ms=100");
    assert!(round_trip(&mut ws, "slow") >= Duration::from_millis(100));
}

#[test]
fn echo_sends_pings_when_asked() {
    let sandbox = sandbox();
    let mut ws = ws(&sandbox, "/ws/echo?ping_every_ms=20");
    let mut pings = 0;
    while pings < 3 {
        match ws.read().expect("a ping") {
            Message::Ping(_) => pings += 1,
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    // Pings do not disturb the echo.
    round_trip(&mut ws, "still here");
}

#[test]
fn echo_closes_after_n_messages() {
    let sandbox = sandbox();
    let mut ws = ws(&sandbox, "/ws/echo?close_after=2");
    for text in ["one", "two", "three"] {
        ws.send(Message::text(text)).expect("send");
    }
    assert_eq!(next_data(&mut ws), Message::text("one"));
    assert_eq!(next_data(&mut ws), Message::text("two"));
    expect_close(&mut ws, CloseCode::Normal);
}

#[test]
fn echo_fragments_when_asked() {
    let sandbox = sandbox();
    // Multi-byte characters, so some frame boundaries fall inside one.
    let text = "héllo wörld, ça va? ✓";

    // The message as a client API sees it: reassembled and valid UTF-8.
    let mut reassembling = ws(&sandbox, "/ws/echo?fragment=3");
    round_trip(&mut reassembling, text);

    // The frames themselves, read off a raw socket after a hand-made handshake.
    let mut stream = TcpStream::connect(sandbox.addr()).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let handshake = "GET /ws/echo?fragment=3 HTTP/1.1\r\nhost: sandbox\r\nconnection: Upgrade\r\n\
        upgrade: websocket\r\nsec-websocket-version: 13\r\n\
        sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    stream.write_all(handshake.as_bytes()).expect("write");
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut chunk).expect("read");
        assert!(n > 0, "closed during the handshake");
        head.extend_from_slice(&chunk[..n]);
        if let Some(at) = find(&head, b"\r\n\r\n") {
            break at + 4;
        }
    };
    let answer = String::from_utf8_lossy(&head[..end]);
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    // RFC 6455's own example key and answer.
    assert!(
        answer.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{answer}"
    );
    let mut frames = FrameSocket::from_partially_read(stream, head[end..].to_vec());

    let mut request = Frame::message(text.as_bytes().to_vec(), OpCode::Data(Data::Text), true);
    request.header_mut().mask = Some([7, 1, 9, 4]);
    frames.send(request).expect("send");
    let mut received = Vec::new();
    let mut opcodes = Vec::new();
    loop {
        let frame = frames.read(None).expect("a frame").expect("not closed");
        assert!(frame.len() <= 3 + 14, "payloads of at most 3 bytes");
        opcodes.push(frame.header().opcode);
        received.extend_from_slice(frame.payload());
        if frame.header().is_final {
            break;
        }
    }
    assert_eq!(received, text.as_bytes());
    assert_eq!(opcodes.len(), text.len().div_ceil(3));
    assert_eq!(opcodes[0], OpCode::Data(Data::Text));
    assert!(opcodes[1..]
        .iter()
        .all(|&op| op == OpCode::Data(Data::Continue)));
}

#[test]
fn stall_holds_echoes() {
    let sandbox = sandbox();
    let mut ws = ws(&sandbox, "/ws/echo");
    round_trip(&mut ws, "before");
    let reply = connect(&sandbox).request("POST", "/control/stall?ms=300", "");
    assert_eq!(reply.status, 204);
    let started = Instant::now();
    ws.send(Message::text("during")).expect("send");
    std::thread::sleep(Duration::from_millis(50));
    ws.send(Message::text("later")).expect("send");
    assert_eq!(next_data(&mut ws), Message::text("during"));
    assert_eq!(next_data(&mut ws), Message::text("later"));
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn rooms_broadcast_to_every_member_of_the_room() {
    let sandbox = sandbox();
    let mut alice = ws(&sandbox, "/ws/rooms/quiz");
    let mut bob = ws(&sandbox, "/ws/rooms/quiz");
    let mut carol = ws(&sandbox, "/ws/rooms/quiz");
    let mut elsewhere = ws(&sandbox, "/ws/rooms/other");
    let stats = stats(&sandbox);
    assert_eq!(stats["rooms"], serde_json::json!({ "quiz": 3, "other": 1 }));
    assert_eq!(stats["ws_connections"], 4);

    alice.send(Message::text("question 1")).expect("send");
    for member in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(next_data(member), Message::text("question 1"));
    }
    bob.send(Message::binary(b"answer".to_vec())).expect("send");
    for member in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(next_data(member), Message::binary(b"answer".to_vec()));
    }
    let stats = stats_until(&sandbox, |s| s["ws_messages_out"] == 6);
    assert_eq!(stats["ws_messages_in"], 2);
    assert_eq!(stats["ws_messages_out"], 6);
    // Nothing crossed into the other room.
    elsewhere
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    match elsewhere.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected nothing, got {other:?}"),
    }

    drop((alice, bob, carol, elsewhere));
    let stats = stats_until(&sandbox, |s| s["rooms"] == serde_json::json!({}));
    assert_eq!(stats["rooms"], serde_json::json!({}));
}

#[test]
fn rooms_disconnect_a_member_that_falls_behind() {
    let sandbox = sandbox();
    let mut slow = ws(&sandbox, "/ws/rooms/busy");
    let mut fast = ws(&sandbox, "/ws/rooms/busy");
    // Enough to fill the loopback buffers of the member that does not read, then its backlog.
    let message = Message::binary(vec![7u8; 16 << 10]);
    let sent = 4096;
    for _ in 0..sent {
        fast.send(message.clone()).expect("send");
        assert_eq!(next_data(&mut fast), message);
    }
    let mut received = 0;
    loop {
        match slow.read().expect("a message or the close") {
            Message::Binary(_) => received += 1,
            Message::Close(frame) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Policy));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(received < sent, "received {received} of {sent}");
    // Reading on sends our half of the close handshake.
    assert!(matches!(
        slow.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    let stats = stats_until(&sandbox, |s| s["rooms"]["busy"] == 1);
    assert_eq!(stats["ws_lagged_disconnects"], 1);
    assert_eq!(stats["rooms"]["busy"], 1);
    // The fast member is still served.
    fast.send(Message::text("still on")).expect("send");
    assert_eq!(next_data(&mut fast), Message::text("still on"));
}
