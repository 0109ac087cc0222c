//! permessage-deflate (RFC 7692), the receiving half: the offer a client makes, the server's
//! agreement checked, and compressed messages inflated under a size limit, so a deflate bomb
//! from a hostile server is an error and never memory growth.
//!
//! We never compress what we send (the RFC lets a sender leave any message uncompressed), so
//! only the server's parameters matter: with its context takeover (the default) one inflater
//! keeps the sliding window from message to message; with `server_no_context_takeover` it is
//! reset before each one.

use flate2::{Decompress, FlushDecompress, Status};

/// The `Sec-WebSocket-Extensions` value a client offers.
pub const OFFER: &str = "permessage-deflate";

/// What the server agreed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The server starts each message with an empty window.
    pub server_no_context_takeover: bool,
}

/// Why an agreement or a compressed message is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeflateError {
    #[error("the server's permessage-deflate parameters are not valid")]
    BadAgreement,
    #[error("a compressed message is not valid deflate data")]
    Corrupt,
    #[error("a compressed message inflates past the message limit")]
    TooLarge,
}

/// Checks the server's `Sec-WebSocket-Extensions` value (RFC 7692 §7.1): exactly
/// `permessage-deflate`, with known parameters each at most once.
pub fn parse_agreement(value: &str) -> Result<Agreement, DeflateError> {
    let mut parts = value.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case(OFFER))
    {
        return Err(DeflateError::BadAgreement);
    }
    let mut agreement = Agreement {
        server_no_context_takeover: false,
    };
    let mut seen: Vec<&str> = Vec::new();
    for p in parts {
        let (name, arg) = match p.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (p, None),
        };
        if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            return Err(DeflateError::BadAgreement);
        }
        seen.push(name);
        let bits_ok = |a: Option<&str>| {
            a.and_then(|a| a.parse::<u8>().ok())
                .is_some_and(|b| (8..=15).contains(&b))
        };
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if arg.is_none() => {
                agreement.server_no_context_takeover = true;
            }
            // Our inflater keeps a full 32 KiB window: any smaller one the server uses fits.
            "server_max_window_bits" if bits_ok(arg) => {}
            // About our compressor, which we do not use.
            "client_no_context_takeover" if arg.is_none() => {}
            "client_max_window_bits" if arg.is_none() || bits_ok(arg) => {}
            _ => return Err(DeflateError::BadAgreement),
        }
    }
    Ok(agreement)
}

/// Inflates a connection's compressed messages.
pub struct Inflater {
    z: Decompress,
    agreement: Agreement,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("agreement", &self.agreement)
            .finish_non_exhaustive()
    }
}

/// The four bytes a sender strips from the end of each compressed message (§7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

impl Inflater {
    pub fn new(agreement: Agreement) -> Self {
        Inflater {
            z: Decompress::new(false),
            agreement,
        }
    }

    /// A new connection's agreement; the inflater's memory is kept.
    pub fn reset(&mut self, agreement: Agreement) {
        self.z.reset(false);
        self.agreement = agreement;
    }

    /// Inflates one message's payload into `out` (cleared first), refusing to write more than
    /// `limit` bytes.
    pub fn inflate(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        if self.agreement.server_no_context_takeover {
            self.z.reset(false);
        }
        out.clear();
        self.feed(payload, out, limit)?;
        self.feed(&TAIL, out, limit)
    }

    /// Inflates `input` onto `out`. The buffer may grow to one byte past `limit`, so that a
    /// message of exactly `limit` bytes fits and one more byte is the proof of a larger one.
    fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        loop {
            if out.len() == out.capacity() {
                let grow = out.capacity().max(1024).min(limit + 1 - out.len());
                out.reserve_exact(grow);
            }
            let (read_before, wrote_before) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| DeflateError::Corrupt)?;
            if out.len() > limit {
                return Err(DeflateError::TooLarge);
            }
            let read = (self.z.total_in() - read_before) as usize;
            let wrote = self.z.total_out() - wrote_before;
            input = &input[read..];
            let room_left = out.len() < out.capacity();
            match status {
                Status::StreamEnd => return Ok(()),
                // All read, and the output did not fill the room: nothing is pending.
                _ if input.is_empty() && room_left => return Ok(()),
                // Room to write, input left, and no progress: the data is cut or corrupt.
                _ if read == 0 && wrote == 0 && room_left => return Err(DeflateError::Corrupt),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// A server's compressor: raw deflate, each message sync-flushed and its tail stripped.
    struct Server(Compress);

    impl Server {
        fn new() -> Self {
            Server(Compress::new(Compression::default(), false))
        }

        fn message(&mut self, data: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(data.len() + 64);
            let mut input = data;
            loop {
                let before = self.0.total_in();
                self.0
                    .compress_vec(input, &mut out, FlushCompress::Sync)
                    .expect("compress");
                input = &input[(self.0.total_in() - before) as usize..];
                if input.is_empty() && out.ends_with(&TAIL) {
                    break;
                }
                out.reserve(out.capacity().max(64));
            }
            out.truncate(out.len() - 4);
            out
        }
    }

    #[test]
    fn agreements_are_checked() {
        let ok = |v: &str| parse_agreement(v);
        assert_eq!(
            ok("permessage-deflate"),
            Ok(Agreement {
                server_no_context_takeover: false
            })
        );
        assert_eq!(
            ok("permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=\"10\""),
            Ok(Agreement {
                server_no_context_takeover: true
            })
        );
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; unknown",
        ] {
            assert_eq!(ok(bad), Err(DeflateError::BadAgreement), "{bad}");
        }
    }

    #[test]
    fn messages_inflate_with_the_window_carried_over() {
        let mut server = Server::new();
        let mut inflater = Inflater::new(parse_agreement(OFFER).expect("agreement"));
        let mut out = Vec::new();
        let first = b"{\"type\":\"tick\",\"seq\":1}".repeat(50);
        let second = b"{\"type\":\"tick\",\"seq\":1}".repeat(50);
        let a = server.message(&first);
        let b = server.message(&second);
        // The second message refers back into the first's window: far smaller.
        assert!(b.len() < a.len() / 2, "{} then {}", a.len(), b.len());
        inflater.inflate(&a, &mut out, 1 << 20).expect("first");
        assert_eq!(out, first);
        inflater.inflate(&b, &mut out, 1 << 20).expect("second");
        assert_eq!(out, second);
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_garbage_is_corrupt() {
        let mut server = Server::new();
        let bomb = server.message(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 128 << 10, "{}", bomb.len());
        let mut inflater = Inflater::new(parse_agreement(OFFER).expect("agreement"));
        let mut out = Vec::new();
        assert_eq!(
            inflater.inflate(&bomb, &mut out, 1 << 20),
            Err(DeflateError::TooLarge)
        );
        assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
        let mut fresh = Inflater::new(parse_agreement(OFFER).expect("agreement"));
        assert_eq!(
            fresh.inflate(&[0xff, 0xff, 0xff, 0x00, 0x12], &mut out, 1 << 20),
            Err(DeflateError::Corrupt)
        );
        // Exactly at the limit is fine.
        let mut server = Server::new();
        let exact = server.message(&[7u8; 4096]);
        let mut inflater = Inflater::new(parse_agreement(OFFER).expect("agreement"));
        inflater
            .inflate(&exact, &mut out, 4096)
            .expect("at the limit");
        assert_eq!(out.len(), 4096);
    }
}
