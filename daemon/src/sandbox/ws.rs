//! WebSocket plumbing and the `/ws/echo` endpoint.
//!
//! The handshake is answered by an axum handler (so `/ws/*` requests are counted and held by a stall
//! like any other); hyper then hands over the connection and tokio-tungstenite speaks frames on it.
//! axum's own `WebSocket` is not used because it cannot send a fragmented message, which the echo's
//! `fragment` option needs. It refuses extensions and subprotocols: none is offered in the answer.

use std::collections::VecDeque;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::SandboxState;

/// An accepted WebSocket connection.
pub(super) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Echoes held back (by `delay_ms` or a stall) before the echo stops reading: beyond this the
/// client is slowed by TCP instead of growing the queue.
const MAX_PENDING_ECHOES: usize = 1024;
/// How long a closing connection waits for the peer's half of the close handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// WebSocket counters shown by `/control/stats`.
#[derive(Default)]
pub(super) struct WsStats {
    /// Open now (a gauge, not reset by `/control/reset-stats`).
    connections: AtomicU64,
    /// Text and binary messages received, and sent (an echo, or one delivery of a broadcast).
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    /// Room members disconnected for falling behind their room.
    lagged: AtomicU64,
}

impl WsStats {
    pub(super) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub(super) fn messages_in(&self) -> u64 {
        self.messages_in.load(Ordering::Relaxed)
    }

    pub(super) fn messages_out(&self) -> u64 {
        self.messages_out.load(Ordering::Relaxed)
    }

    pub(super) fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    pub(super) fn count_in(&self) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_out(&self, messages: u64) {
        self.messages_out.fetch_add(messages, Ordering::Relaxed);
    }

    pub(super) fn count_lagged(&self) {
        self.lagged.fetch_add(1, Ordering::Relaxed);
    }

    /// Resets the counters, not the gauge.
    pub(super) fn reset(&self) {
        self.messages_in.store(0, Ordering::Relaxed);
        self.messages_out.store(0, Ordering::Relaxed);
        self.lagged.store(0, Ordering::Relaxed);
    }
}

/// Counts a connection as open for as long as it lives.
struct Open(Arc<SandboxState>);

impl Open {
    fn new(state: Arc<SandboxState>) -> Self {
        state.ws.connections.fetch_add(1, Ordering::Relaxed);
        Open(state)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.ws.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers a WebSocket handshake with 101 and runs `session` on the connection once hyper hands it
/// over; answers 400 (or 426 for another protocol version) to anything else.
pub(super) fn accept<F, Fut>(
    mut request: Request,
    state: &Arc<SandboxState>,
    session: F,
) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let accept_key = match handshake_key(request.headers()) {
        Ok(key) => derive_accept_key(key.as_bytes()),
        Err(refusal) => return refusal.into_response(),
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "connection cannot upgrade\n",
        )
            .into_response();
    };
    let open = Open::new(Arc::clone(state));
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = TokioIo::new(upgraded);
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        session(socket).await;
        drop(open);
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
        ],
        [(header::SEC_WEBSOCKET_ACCEPT, accept_key)],
    )
        .into_response()
}

/// Why a request is not a handshake this server accepts.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    NotAHandshake,
    /// Any version but 13 (RFC 6455 §4.4: answer 426 naming the version spoken).
    WrongVersion,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotAHandshake => {
                (StatusCode::BAD_REQUEST, "not a WebSocket handshake\n").into_response()
            }
            Refusal::WrongVersion => (
                StatusCode::UPGRADE_REQUIRED,
                [(header::SEC_WEBSOCKET_VERSION, "13")],
                "version 13 only\n",
            )
                .into_response(),
        }
    }
}

/// The `Sec-WebSocket-Key` of a valid version-13 handshake.
fn handshake_key(headers: &HeaderMap) -> Result<&HeaderValue, Refusal> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    let key = headers.get(header::SEC_WEBSOCKET_KEY);
    let (true, true, Some(key)) = (
        has_token(header::CONNECTION, "upgrade"),
        has_token(header::UPGRADE, "websocket"),
        key,
    ) else {
        return Err(Refusal::NotAHandshake);
    };
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return Err(Refusal::WrongVersion);
    }
    Ok(key)
}

/// Reads until the peer's close arrives or the connection ends (bounded), so both halves of the
/// close handshake are exchanged; tungstenite sends the reply to a peer's close by itself.
pub(super) async fn finish(socket: &mut Socket) {
    let drain = async { while let Some(Ok(_)) = socket.next().await {} };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain).await;
}

/// Starts the close handshake with `code`, then finishes it.
pub(super) async fn close(socket: &mut Socket, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    if socket.send(Message::Close(Some(frame))).await.is_ok() {
        finish(socket).await;
    }
}

/// `/ws/echo`'s query: test knobs, all off by default.
#[derive(Clone, Copy, Default, Deserialize)]
pub(super) struct EchoOptions {
    /// Each message is echoed this long after it arrived (messages overlap: it is latency, not a
    /// throughput limit).
    #[serde(default)]
    delay_ms: u64,
    /// The server pings this often; 0 never.
    #[serde(default)]
    ping_every_ms: u64,
    /// After echoing this many messages the server closes with 1000.
    close_after: Option<u64>,
    /// Echoes are sent as frames of at most this many payload bytes.
    fragment: Option<NonZeroUsize>,
}

pub(super) async fn echo(
    State(state): State<Arc<SandboxState>>,
    Query(options): Query<EchoOptions>,
    request: Request,
) -> Response {
    let session_state = Arc::clone(&state);
    accept(request, &state, move |socket| {
        run_echo(socket, session_state, options)
    })
}

async fn run_echo(mut socket: Socket, state: Arc<SandboxState>, options: EchoOptions) {
    let delay = Duration::from_millis(options.delay_ms);
    // Deadlines grow with arrival time (the delay is constant), so the queue stays sorted.
    let mut pending: VecDeque<(Instant, Message)> = VecDeque::new();
    let mut pings = (options.ping_every_ms > 0).then(|| {
        let period = Duration::from_millis(options.ping_every_ms);
        let mut pings = tokio::time::interval_at(Instant::now() + period, period);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        pings
    });
    let mut echoed = 0u64;
    loop {
        let due = pending.front().map(|(at, _)| *at);
        tokio::select! {
            incoming = socket.next(), if pending.len() < MAX_PENDING_ECHOES => match incoming {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    state.ws.count_in();
                    pending.push_back((Instant::now() + delay, message));
                }
                // Pings were answered by tungstenite; pongs need nothing.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) => return finish(&mut socket).await,
                None | Some(Err(_)) => return,
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let Some((_, message)) = pending.pop_front() else { continue };
                // A stall holds echoes, including those of messages that arrived before it began.
                state.wait_out_stall().await;
                let sent = match options.fragment {
                    Some(frame_len) => send_fragmented(&mut socket, message, frame_len).await,
                    None => socket.send(message).await,
                };
                if sent.is_err() {
                    return;
                }
                state.ws.count_out(1);
                echoed += 1;
                if options.close_after == Some(echoed) {
                    return close(&mut socket, CloseCode::Normal, "").await;
                }
            }
            () = next_tick(&mut pings) => {
                if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Waits for the next tick, forever when there is no interval.
async fn next_tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Sends a data message as frames of at most `frame_len` payload bytes: the first carries the
/// message's opcode, the rest are continuations, the last one is final. Text may be cut inside a
/// UTF-8 sequence, as RFC 6455 allows: only the reassembled message must be valid.
async fn send_fragmented(
    socket: &mut Socket,
    message: Message,
    frame_len: NonZeroUsize,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let (opcode, mut rest) = match message {
        Message::Text(text) => (OpData::Text, Bytes::from(text)),
        Message::Binary(bytes) => (OpData::Binary, bytes),
        other => return socket.send(other).await,
    };
    let mut opcode = OpCode::Data(opcode);
    loop {
        let payload = rest.split_to(frame_len.get().min(rest.len()));
        let is_final = rest.is_empty();
        socket
            .feed(Message::Frame(Frame::message(payload, opcode, is_final)))
            .await?;
        if is_final {
            return socket.flush().await;
        }
        opcode = OpCode::Data(OpData::Continue);
    }
}
