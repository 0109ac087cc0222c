//! The opening handshake (RFC 6455 §4.1): the upgrade request, and the checks a client must make
//! on the server's 101 response before the first frame.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::WsError;
use crate::proto::http1::{self, MAX_HEADERS, MAX_HEAD_BYTES};

/// Appended to the key before hashing it into Sec-WebSocket-Accept (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Header fields the handshake writes itself; a user header of the same name would contradict it.
const RESERVED_HEADERS: [&str; 8] = [
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

/// A Sec-WebSocket-Key: 16 random bytes in base64, always 24 characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key([u8; 24]);

impl Key {
    /// The key for 16 bytes of caller-supplied randomness.
    pub fn from_random(bytes: [u8; 16]) -> Key {
        let mut text = [0u8; 24];
        // 16 bytes always encode to exactly 24, so this cannot fail.
        let _ = BASE64.encode_slice(bytes, &mut text);
        Key(text)
    }

    /// A fresh key drawn from `rng`.
    pub fn generate(rng: &mut fastrand::Rng) -> Key {
        let mut bytes = [0u8; 16];
        rng.fill(&mut bytes);
        Key::from_random(bytes)
    }

    pub fn as_str(&self) -> &str {
        // Base64 output is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The Sec-WebSocket-Accept a server must answer `key` with: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> [u8; 28] {
    let mut hash = Sha1::new();
    hash.update(key.as_bytes());
    hash.update(GUID);
    let digest = hash.finalize();
    let mut text = [0u8; 28];
    // 20 bytes always encode to exactly 28, so this cannot fail.
    let _ = BASE64.encode_slice(digest.as_slice(), &mut text);
    text
}

/// Appends the upgrade request: `GET`, `Host` (unless `headers` carries one), the upgrade fields,
/// the offered subprotocols (if any), then `headers` verbatim and in order. Check user input with
/// `validate_handshake_header` and `validate_subprotocol` first.
pub fn encode_handshake<S: AsRef<str>>(
    host_header: &str,
    path_and_query: &str,
    key: &str,
    subprotocols: &[S],
    headers: &[(String, String)],
    out: &mut Vec<u8>,
) {
    let line = |out: &mut Vec<u8>, name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        line(out, "Host", host_header);
    }
    line(out, "Upgrade", "websocket");
    line(out, "Connection", "Upgrade");
    line(out, "Sec-WebSocket-Key", key);
    line(out, "Sec-WebSocket-Version", "13");
    if let Some((first, rest)) = subprotocols.split_first() {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(first.as_ref().as_bytes());
        for p in rest {
            out.extend_from_slice(b", ");
            out.extend_from_slice(p.as_ref().as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        line(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

/// Checks a user header for the upgrade request: a valid field (see `http1::validate_header`)
/// that is not one the handshake writes itself.
pub fn validate_handshake_header(name: &str, value: &str) -> Result<(), &'static str> {
    http1::validate_header(name, value)?;
    if RESERVED_HEADERS
        .iter()
        .any(|r| name.eq_ignore_ascii_case(r))
    {
        return Err(
            "this header is part of the WebSocket handshake and is set by loadd \
                    (subprotocols have their own setting; extensions are not supported)",
        );
    }
    Ok(())
}

/// Checks a subprotocol name: a non-empty RFC 9110 token (RFC 6455 §4.1).
pub fn validate_subprotocol(name: &str) -> Result<(), &'static str> {
    match http1::validate_header(name, "") {
        Ok(()) => Ok(()),
        Err(_) => Err("a subprotocol must be a token: letters, digits and !#$%&'*+-.^_`|~ only"),
    }
}

/// Outcome of checking the bytes received after the upgrade request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// The response head is not complete yet; nothing is consumed.
    Partial,
    /// The upgrade succeeded. The head is `head_len` bytes; any bytes after it are already frames.
    /// `subprotocol` is the index of the offered subprotocol the server selected, if it did.
    Accepted {
        head_len: usize,
        subprotocol: Option<usize>,
    },
}

/// Checks the server's answer to `encode_handshake(.., key, subprotocols, ..)`: status 101 over
/// HTTP/1.1, `Upgrade: websocket`, `Connection: upgrade`, the matching Sec-WebSocket-Accept, no
/// extension, and a subprotocol only if it is one of those offered.
pub fn check_handshake_response<S: AsRef<str>>(
    input: &[u8],
    key: &str,
    subprotocols: &[S],
) -> Result<Handshake, WsError> {
    check_handshake_response_with(input, key, subprotocols, false).map(|(h, _)| h)
}

/// `check_handshake_response` for a client that offered permessage-deflate (`deflate`): the
/// server may agree to it, once; its agreement is returned beside the outcome.
pub fn check_handshake_response_with<S: AsRef<str>>(
    input: &[u8],
    key: &str,
    subprotocols: &[S],
    deflate: bool,
) -> Result<(Handshake, Option<super::deflate::Agreement>), WsError> {
    let mut agreed = None;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(input) {
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD_BYTES => {
            return Err(WsError::HandshakeTooLarge)
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if input.len() >= MAX_HEAD_BYTES => {
            return Err(WsError::HandshakeTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok((Handshake::Partial, None)),
        Err(httparse::Error::TooManyHeaders) => return Err(WsError::HandshakeTooLarge),
        Err(_) => return Err(WsError::HandshakeParse),
    };
    let (Some(status), Some(1)) = (response.code, response.version) else {
        return Err(WsError::HandshakeParse);
    };
    if status != 101 {
        return Err(WsError::HandshakeStatus(status));
    }

    let expected_accept = accept_key(key);
    let (mut upgrade, mut connection) = (false, false);
    let mut accepts = 0;
    let mut accept_ok = false;
    let mut protocol: Option<Option<usize>> = None;
    for header in response.headers.iter() {
        let name = header.name;
        let value = header.value.trim_ascii();
        let has_token = |token: &str| {
            value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        };
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token("upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accepts += 1;
            accept_ok = value == expected_accept;
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            // One field naming exactly one of the offered values (RFC 6455 §4.1, item 6).
            let offered = subprotocols
                .iter()
                .position(|p| p.as_ref().as_bytes() == value);
            if protocol.is_some() || offered.is_none() {
                return Err(WsError::HandshakeSubprotocol);
            }
            protocol = Some(offered);
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") && !value.is_empty() {
            let agreement = std::str::from_utf8(value)
                .ok()
                .filter(|_| deflate && agreed.is_none())
                .and_then(|v| super::deflate::parse_agreement(v).ok())
                .ok_or(WsError::HandshakeExtension)?;
            agreed = Some(agreement);
        }
    }
    if !upgrade {
        return Err(WsError::HandshakeUpgrade);
    }
    if !connection {
        return Err(WsError::HandshakeConnection);
    }
    if accepts != 1 || !accept_ok {
        return Err(WsError::HandshakeAccept);
    }
    Ok((
        Handshake::Accepted {
            head_len,
            subprotocol: protocol.flatten(),
        },
        agreed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    #[test]
    fn accept_key_matches_the_rfc_example() {
        // RFC 6455 §1.3's example, and tungstenite's derivation for other keys.
        assert_eq!(&accept_key(RFC_KEY), RFC_ACCEPT.as_bytes());
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..20 {
            let key = Key::generate(&mut rng);
            let theirs = tungstenite::handshake::derive_accept_key(key.as_str().as_bytes());
            assert_eq!(&accept_key(key.as_str()), theirs.as_bytes());
        }
        // The RFC's key is base64 of the ASCII "the sample nonce".
        assert_eq!(Key::from_random(*b"the sample nonce").as_str(), RFC_KEY);
    }

    #[test]
    fn generated_keys_are_24_base64_chars_and_differ() {
        let mut rng = fastrand::Rng::with_seed(3);
        let (a, b) = (Key::generate(&mut rng), Key::generate(&mut rng));
        assert_ne!(a, b);
        for k in [a, b] {
            assert_eq!(k.as_str().len(), 24);
            assert!(k.as_str().ends_with("=="));
            assert_eq!(BASE64.decode(k.as_str()).map(|v| v.len()), Ok(16));
        }
    }

    #[test]
    fn request_is_valid_http_with_the_upgrade_fields() {
        let mut out = Vec::new();
        let headers = vec![("Origin".to_string(), "http://x".to_string())];
        encode_handshake(
            "h:1",
            "/chat?x=1",
            RFC_KEY,
            &["v1", "v2"],
            &headers,
            &mut out,
        );
        let text = String::from_utf8(out).expect("ASCII");
        assert_eq!(
            text,
            "GET /chat?x=1 HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: v1, v2\r\nOrigin: http://x\r\n\r\n"
        );

        let mut out = Vec::new();
        let headers = vec![("HOST".to_string(), "other".to_string())];
        encode_handshake("h", "/", RFC_KEY, &[] as &[&str], &headers, &mut out);
        let text = String::from_utf8(out).expect("ASCII");
        assert!(!text.contains("Host: h\r\n") && text.contains("HOST: other\r\n"));
        assert!(!text.contains("Protocol"), "{text}");
    }

    #[test]
    fn user_input_is_validated() {
        assert_eq!(validate_handshake_header("Origin", "http://a"), Ok(()));
        assert_eq!(validate_handshake_header("Host", "a"), Ok(()));
        for name in [
            "Upgrade",
            "connection",
            "Sec-WebSocket-Key",
            "SEC-WEBSOCKET-EXTENSIONS",
        ] {
            assert!(validate_handshake_header(name, "x").is_err(), "{name}");
        }
        assert!(validate_handshake_header("X", "a\r\nb").is_err());
        assert_eq!(validate_subprotocol("graphql-ws"), Ok(()));
        for bad in ["", "a b", "a,b", "ü"] {
            assert!(validate_subprotocol(bad).is_err(), "{bad:?}");
        }
    }

    fn response(lines: &[&str]) -> Vec<u8> {
        let mut text = String::from("HTTP/1.1 101 Switching Protocols\r\n");
        for l in lines {
            text.push_str(l);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        text.into_bytes()
    }

    const ACCEPT: &str = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    #[test]
    fn responses_are_checked() {
        let check =
            |input: &[u8], offered: &[&str]| check_handshake_response(input, RFC_KEY, offered);
        let ok = response(&["Upgrade: websocket", "Connection: Upgrade", ACCEPT]);
        let accepted = Ok(Handshake::Accepted {
            head_len: ok.len(),
            subprotocol: None,
        });
        assert_eq!(check(&ok, &[]), accepted);
        // Every proper prefix is partial; bytes after the head are left for the frame decoder.
        for end in 0..ok.len() {
            assert_eq!(
                check(&ok[..end], &[]),
                Ok(Handshake::Partial),
                "prefix {end}"
            );
        }
        let with_frame = [&ok[..], b"\x81\x02hi"].concat();
        assert_eq!(check(&with_frame, &[]), accepted);

        let lenient = response(&[
            "upgrade: WebSocket",
            "connection: keep-alive, UPGRADE",
            "sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo= ",
        ]);
        assert!(matches!(
            check(&lenient, &[]),
            Ok(Handshake::Accepted { .. })
        ));

        let chose = response(&[
            "Upgrade: websocket",
            "Connection: Upgrade",
            ACCEPT,
            "Sec-WebSocket-Protocol: b",
        ]);
        assert_eq!(
            check(&chose, &["a", "b"]),
            Ok(Handshake::Accepted {
                head_len: chose.len(),
                subprotocol: Some(1)
            })
        );

        use WsError::*;
        let cases: Vec<(&str, Vec<u8>, &[&str], WsError)> = vec![
            (
                "404",
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                &[],
                HandshakeStatus(404),
            ),
            (
                "200",
                b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
                &[],
                HandshakeStatus(200),
            ),
            (
                "http/1.0",
                b"HTTP/1.0 101 Switching\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
                    .to_vec(),
                &[],
                HandshakeParse,
            ),
            (
                "garbage",
                b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(),
                &[],
                HandshakeParse,
            ),
            (
                "no upgrade",
                response(&["Connection: Upgrade", ACCEPT]),
                &[],
                HandshakeUpgrade,
            ),
            (
                "wrong upgrade",
                response(&["Upgrade: h2c", "Connection: Upgrade", ACCEPT]),
                &[],
                HandshakeUpgrade,
            ),
            (
                "no connection",
                response(&["Upgrade: websocket", ACCEPT]),
                &[],
                HandshakeConnection,
            ),
            (
                "connection close",
                response(&["Upgrade: websocket", "Connection: close", ACCEPT]),
                &[],
                HandshakeConnection,
            ),
            (
                "no accept",
                response(&["Upgrade: websocket", "Connection: Upgrade"]),
                &[],
                HandshakeAccept,
            ),
            (
                "wrong accept",
                response(&[
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo",
                ]),
                &[],
                HandshakeAccept,
            ),
            (
                "two accepts",
                response(&["Upgrade: websocket", "Connection: Upgrade", ACCEPT, ACCEPT]),
                &[],
                HandshakeAccept,
            ),
            (
                "protocol not offered",
                response(&[
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    ACCEPT,
                    "Sec-WebSocket-Protocol: c",
                ]),
                &["a", "b"],
                HandshakeSubprotocol,
            ),
            (
                "protocol when none offered",
                response(&[
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    ACCEPT,
                    "Sec-WebSocket-Protocol: a",
                ]),
                &[],
                HandshakeSubprotocol,
            ),
            (
                "protocol list",
                response(&[
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    ACCEPT,
                    "Sec-WebSocket-Protocol: a, b",
                ]),
                &["a", "b"],
                HandshakeSubprotocol,
            ),
            (
                "two protocols",
                response(&[
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    ACCEPT,
                    "Sec-WebSocket-Protocol: a",
                    "Sec-WebSocket-Protocol: a",
                ]),
                &["a"],
                HandshakeSubprotocol,
            ),
            (
                "extension",
                response(&[
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    ACCEPT,
                    "Sec-WebSocket-Extensions: permessage-deflate",
                ]),
                &[],
                HandshakeExtension,
            ),
        ];
        for (name, input, offered, want) in cases {
            assert_eq!(check(&input, offered), Err(want), "{name}");
        }

        let huge = format!("HTTP/1.1 101 OK\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(check(huge.as_bytes(), &[]), Err(HandshakeTooLarge));
        let many = response(&["X: 1"; MAX_HEADERS + 1]);
        assert_eq!(check(&many, &[]), Err(HandshakeTooLarge));
    }
}
