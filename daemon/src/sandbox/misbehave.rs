//! The `/misbehave/*` endpoints: broken servers a load generator must survive and classify.
//!
//! Each behaviour is written by hand on the raw socket, after `conn` has read the request head, and
//! ends the connection. Nothing here goes through hyper, which would refuse to send most of it.
//! Whatever a behaviour waits for (the client leaving, its next request) is bounded by
//! [`SILENT_HOLD`], so a test that forgets a connection cannot pin a sandbox task for good.

use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::body::filler;

/// Length of `/misbehave/huge-header`'s one header line, name included.
const HUGE_HEADER_LINE_LEN: usize = 1 << 20;
/// `/misbehave/trickle`'s body: this many bytes, one per `TRICKLE_INTERVAL`.
const TRICKLE_BODY_LEN: usize = 100;
const TRICKLE_INTERVAL: Duration = Duration::from_millis(10);
/// `/misbehave/silent` (and every other wait on the client) gives up after this long.
const SILENT_HOLD: Duration = Duration::from_secs(60);
/// `/misbehave/reset-mid-body`: body bytes sent before the reset, of the 1000 announced.
const MID_BODY_SENT: usize = 100;
/// `/misbehave/reset-mid-body` waits this long between the partial body and the reset, so the
/// client is mid-response (head decoded, body begun) when the reset lands.
const MID_BODY_PAUSE: Duration = Duration::from_millis(20);
/// `/misbehave/endless-chunked`: the size of each chunk (hex `10000` on the wire).
const ENDLESS_CHUNK_LEN: usize = 64 << 10;
/// `/misbehave/many-headers`: more header fields than any sane client's limit (loadd's is 64).
const MANY_HEADERS: usize = 100;

const GARBAGE: &[u8] = b"this is not http\r\n\r\n";
const STATUS_LINE_200: &[u8] = b"HTTP/1.1 200 OK\r\n";
const HUGE_HEADER_NAME: &[u8] = b"x-huge: ";
const HUGE_HEADER_END: &[u8] = b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const LYING_LENGTH: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789";
const TRICKLE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n";
/// One chunk of a chunked body, then a clean close: the last chunk never comes.
const SHORT_CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n";
/// A 103 and the final 200 in one write, each with its own `x-stage` (`hint`, `final`).
const EARLY_HINTS: &[u8] = b"HTTP/1.1 103 Early Hints\r\nlink: </hint.css>\r\nx-stage: hint\r\n\r\n\
HTTP/1.1 200 OK\r\nx-stage: final\r\nx-final: yes\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
const RESET_MID_BODY_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n";
/// Valid, keep-alive by default (no `Connection: close`): the close that follows is unannounced.
const KEEPALIVE_OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
/// Announces 10 bytes and sends 100: the last 90 are where the next response should start.
const LONG_BODY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n\
0123456789not-http! not-http! not-http! not-http! not-http! not-http! not-http! not-http! not-http! ";
const ENDLESS_CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
const ENDLESS_CHUNK_SIZE_LINE: &[u8] = b"10000\r\n";
/// Both framings at once: the classic request-smuggling ambiguity (RFC 9112 §6.3).
const BAD_FRAMING: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\
transfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Misbehaviour {
    /// Closes with `SO_LINGER` 0: the client reads ECONNRESET.
    Reset,
    /// Closes without answering.
    Close,
    /// Answers with bytes that are not HTTP, then closes.
    Garbage,
    /// A 200 status line, then a 1 MiB header line.
    HugeHeader,
    /// Announces 1000 bytes, sends 10, closes.
    LyingLength,
    /// A chunked body with one chunk, then a clean close before the last chunk.
    ShortChunked,
    /// A 103 Early Hints head and the final 200 in one write, then a close.
    EarlyHints,
    /// A valid response whose 100-byte body arrives one byte every 10 ms.
    Trickle,
    /// Never answers; holds the connection until the client closes it (or a minute passes).
    Silent,
    /// Announces 1000 bytes, sends 100, pauses, then resets (`SO_LINGER` 0) mid-body.
    ResetMidBody,
    /// A valid keep-alive response (no `Connection: close`), then closes at once: a server's
    /// idle or request-count limit (nginx's `keepalive_requests`) hit at the worst moment.
    KeepAliveClose,
    /// A valid keep-alive response, then waits for the client's next request on the connection
    /// and closes without answering it: the request was delivered, and dropped.
    KeepAliveDrop,
    /// Announces 10 bytes and sends 100, then holds the connection until the client leaves: the
    /// surplus sits where the next response would start.
    LongBody,
    /// A chunked body that never ends: 64 KiB chunks as fast as the client reads them.
    EndlessChunked,
    /// A 200 with 100 header fields.
    ManyHeaders,
    /// A 200 with both `Content-Length` and `Transfer-Encoding: chunked`.
    BadFraming,
    /// Any other `/misbehave/*` path: a raw 404.
    Unknown,
}

impl Misbehaviour {
    /// `None` unless `path` starts with `/misbehave/`.
    pub(super) fn from_path(path: &[u8]) -> Option<Misbehaviour> {
        let name = path.strip_prefix(b"/misbehave/")?;
        Some(match name {
            b"reset" => Misbehaviour::Reset,
            b"close" => Misbehaviour::Close,
            b"garbage" => Misbehaviour::Garbage,
            b"huge-header" => Misbehaviour::HugeHeader,
            b"lying-length" => Misbehaviour::LyingLength,
            b"short-chunked" => Misbehaviour::ShortChunked,
            b"early-hints" => Misbehaviour::EarlyHints,
            b"trickle" => Misbehaviour::Trickle,
            b"silent" => Misbehaviour::Silent,
            b"reset-mid-body" => Misbehaviour::ResetMidBody,
            b"keepalive-close" => Misbehaviour::KeepAliveClose,
            b"keepalive-drop" => Misbehaviour::KeepAliveDrop,
            b"long-body" => Misbehaviour::LongBody,
            b"endless-chunked" => Misbehaviour::EndlessChunked,
            b"many-headers" => Misbehaviour::ManyHeaders,
            b"bad-framing" => Misbehaviour::BadFraming,
            _ => Misbehaviour::Unknown,
        })
    }

    /// Acts it out and closes. Write errors only mean the client left first.
    pub(super) async fn perform(self, mut stream: TcpStream) {
        let _ = match self {
            Misbehaviour::Reset => SockRef::from(&stream).set_linger(Some(Duration::ZERO)),
            Misbehaviour::Close => Ok(()),
            Misbehaviour::Garbage => stream.write_all(GARBAGE).await,
            Misbehaviour::HugeHeader => write_huge_header(&mut stream).await,
            Misbehaviour::LyingLength => stream.write_all(LYING_LENGTH).await,
            Misbehaviour::ShortChunked => stream.write_all(SHORT_CHUNKED).await,
            Misbehaviour::EarlyHints => stream.write_all(EARLY_HINTS).await,
            Misbehaviour::Trickle => trickle(&mut stream).await,
            Misbehaviour::Silent => {
                hold(&mut stream).await;
                Ok(())
            }
            Misbehaviour::ResetMidBody => reset_mid_body(&mut stream).await,
            Misbehaviour::KeepAliveClose => stream.write_all(KEEPALIVE_OK).await,
            Misbehaviour::KeepAliveDrop => keepalive_drop(&mut stream).await,
            Misbehaviour::LongBody => long_body(&mut stream).await,
            Misbehaviour::EndlessChunked => {
                tokio::time::timeout(SILENT_HOLD, endless_chunked(&mut stream))
                    .await
                    .unwrap_or(Ok(()))
            }
            Misbehaviour::ManyHeaders => write_many_headers(&mut stream).await,
            Misbehaviour::BadFraming => stream.write_all(BAD_FRAMING).await,
            Misbehaviour::Unknown => stream.write_all(NOT_FOUND).await,
        };
    }
}

async fn write_huge_header(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(STATUS_LINE_200).await?;
    stream.write_all(HUGE_HEADER_NAME).await?;
    let value = filler().slice(..HUGE_HEADER_LINE_LEN - HUGE_HEADER_NAME.len());
    stream.write_all(&value).await?;
    stream.write_all(HUGE_HEADER_END).await
}

async fn trickle(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(TRICKLE_HEAD).await?;
    for _ in 0..TRICKLE_BODY_LEN {
        stream.write_all(b"x").await?;
        tokio::time::sleep(TRICKLE_INTERVAL).await;
    }
    Ok(())
}

async fn reset_mid_body(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(RESET_MID_BODY_HEAD).await?;
    stream.write_all(&filler()[..MID_BODY_SENT]).await?;
    tokio::time::sleep(MID_BODY_PAUSE).await;
    SockRef::from(&*stream).set_linger(Some(Duration::ZERO))
}

async fn keepalive_drop(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(KEEPALIVE_OK).await?;
    // The first byte of the next request is enough: it has been delivered, and is dropped.
    let mut first = [0u8; 1];
    let _ = tokio::time::timeout(SILENT_HOLD, stream.read(&mut first)).await;
    Ok(())
}

async fn long_body(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(LONG_BODY).await?;
    // Closing now could meet the client's next request with a reset that destroys the unread
    // surplus; staying until it leaves keeps what the client reads deterministic.
    hold(stream).await;
    Ok(())
}

async fn endless_chunked(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(ENDLESS_CHUNKED_HEAD).await?;
    let chunk = filler().slice(..ENDLESS_CHUNK_LEN);
    loop {
        stream.write_all(ENDLESS_CHUNK_SIZE_LINE).await?;
        stream.write_all(&chunk).await?;
        stream.write_all(b"\r\n").await?;
    }
}

async fn write_many_headers(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(64 + MANY_HEADERS * 16);
    head.extend_from_slice(STATUS_LINE_200);
    for i in 0..MANY_HEADERS {
        head.extend_from_slice(format!("x-h{i}: {i}\r\n").as_bytes());
    }
    head.extend_from_slice(b"content-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(&head).await
}

/// Waits (bounded) until the client closes, discarding whatever it sends.
async fn hold(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    let drain = async { while let Ok(1..) = stream.read(&mut sink).await {} };
    let _ = tokio::time::timeout(SILENT_HOLD, drain).await;
}

#[cfg(test)]
mod tests {
    use super::Misbehaviour;

    #[test]
    fn only_misbehave_paths_are_raw() {
        assert_eq!(Misbehaviour::from_path(b"/"), None);
        assert_eq!(Misbehaviour::from_path(b"/misbehave"), None);
        let reset = Misbehaviour::from_path(b"/misbehave/reset");
        assert_eq!(reset, Some(Misbehaviour::Reset));
        let other = Misbehaviour::from_path(b"/misbehave/nope");
        assert_eq!(other, Some(Misbehaviour::Unknown));
    }

    #[test]
    fn every_behaviour_has_its_path() {
        for (path, want) in [
            (
                &b"/misbehave/reset-mid-body"[..],
                Misbehaviour::ResetMidBody,
            ),
            (b"/misbehave/keepalive-close", Misbehaviour::KeepAliveClose),
            (b"/misbehave/keepalive-drop", Misbehaviour::KeepAliveDrop),
            (b"/misbehave/long-body", Misbehaviour::LongBody),
            (b"/misbehave/endless-chunked", Misbehaviour::EndlessChunked),
            (b"/misbehave/many-headers", Misbehaviour::ManyHeaders),
            (b"/misbehave/bad-framing", Misbehaviour::BadFraming),
        ] {
            assert_eq!(Misbehaviour::from_path(path), Some(want));
        }
    }

    #[test]
    fn long_body_sends_more_than_it_announces() {
        let (_, body) = super::LONG_BODY.split_at(
            super::LONG_BODY
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap_or(0)
                + 4,
        );
        assert_eq!(body.len(), 100);
    }
}
