//! The `/misbehave/*` endpoints: broken servers a load generator must survive and classify.
//!
//! Each behaviour is written by hand on the raw socket, after `conn` has read the request head, and
//! ends the connection. Nothing here goes through hyper, which would refuse to send most of it.

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
/// `/misbehave/silent` gives up on the client after this long.
const SILENT_HOLD: Duration = Duration::from_secs(60);

const GARBAGE: &[u8] = b"this is not http\r\n\r\n";
const STATUS_LINE_200: &[u8] = b"HTTP/1.1 200 OK\r\n";
const HUGE_HEADER_NAME: &[u8] = b"x-huge: ";
const HUGE_HEADER_END: &[u8] = b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const LYING_LENGTH: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789";
const TRICKLE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n";
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
    /// A valid response whose 100-byte body arrives one byte every 10 ms.
    Trickle,
    /// Never answers; holds the connection until the client closes it (or a minute passes).
    Silent,
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
            b"trickle" => Misbehaviour::Trickle,
            b"silent" => Misbehaviour::Silent,
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
            Misbehaviour::Trickle => trickle(&mut stream).await,
            Misbehaviour::Silent => {
                let _ = tokio::time::timeout(SILENT_HOLD, read_until_closed(&mut stream)).await;
                Ok(())
            }
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

async fn read_until_closed(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while let Ok(1..) = stream.read(&mut sink).await {}
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
}
