//! Codec tests: table-driven cases, every split point of a response, and header validation.
use super::*;

/// What a caller ends up with after feeding a whole response stream and then EOF.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    head: ResponseHead,
    body: Vec<u8>,
    /// Completed by `finish_eof` rather than by `Step::Complete`.
    via_eof: bool,
    /// Bytes after the response (a pipelined one) left in the caller's buffer.
    leftover: usize,
}

/// Feeds `pieces` with the caller's buffer discipline (drop `consumed`, call again while that
/// makes progress, else append the next piece), then EOF; checks every step's ranges.
fn drive(pieces: &[&[u8]], head_request: bool) -> Result<Seen, DecodeError> {
    let mut dec = ResponseDecoder::new();
    dec.reset(head_request);
    let mut buf = Vec::new();
    let mut body = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        buf.extend_from_slice(piece);
        loop {
            let step = dec.decode(&buf)?;
            let (Step::Partial {
                consumed,
                body: range,
            }
            | Step::Complete {
                consumed,
                body: range,
            }) = step.clone();
            assert!(consumed <= buf.len() && range.start <= range.end && range.end <= consumed);
            body.extend_from_slice(&buf[range]);
            buf.drain(..consumed);
            assert_eq!(dec.body_bytes(), body.len() as u64);
            if let Step::Complete { .. } = step {
                for rest in &pieces[i + 1..] {
                    buf.extend_from_slice(rest);
                }
                let head = dec.head().expect("complete implies a head");
                let leftover = buf.len();
                return Ok(Seen {
                    head,
                    body,
                    via_eof: false,
                    leftover,
                });
            }
            if consumed == 0 || buf.is_empty() {
                break;
            }
        }
    }
    dec.finish_eof()?;
    assert!(buf.is_empty(), "an until-close body consumes everything");
    let head = dec.head().expect("eof completion implies a head");
    Ok(Seen {
        head,
        body,
        via_eof: true,
        leftover: 0,
    })
}

/// Feeds `input` whole, split in two at every byte (sampled for big inputs), one byte at a
/// time, and in three pieces; every way must end the same. Returns that outcome.
fn drive_every_split(input: &[u8], head_request: bool) -> Result<Seen, DecodeError> {
    let whole = drive(&[input], head_request);
    let stride = if input.len() > 8192 { 997 } else { 1 };
    for at in (0..=input.len()).step_by(stride) {
        let (a, b) = input.split_at(at);
        assert_eq!(drive(&[a, b], head_request), whole, "split at {at}");
        let (b, c) = b.split_at(b.len() / 2);
        assert_eq!(
            drive(&[a, b, c], head_request),
            whole,
            "split at {at} and half the rest"
        );
    }
    let size = if input.len() > 8192 { 1000 } else { 1 };
    let pieces: Vec<&[u8]> = input.chunks(size).collect();
    assert_eq!(drive(&pieces, head_request), whole, "{size}-byte pieces");
    whole
}

struct Want {
    status: u16,
    keep_alive: bool,
    body_kind: BodyKind,
    body: &'static [u8],
    via_eof: bool,
    leftover: usize,
}

const fn ok(status: u16, keep_alive: bool, body_kind: BodyKind, body: &'static [u8]) -> Want {
    Want {
        status,
        keep_alive,
        body_kind,
        body,
        via_eof: false,
        leftover: 0,
    }
}

struct Case {
    name: &'static str,
    input: Vec<u8>,
    head_request: bool,
    want: Result<Want, DecodeError>,
}

fn case(name: &'static str, input: &[u8], want: Result<Want, DecodeError>) -> Case {
    Case {
        name,
        input: input.to_vec(),
        head_request: false,
        want,
    }
}

fn head_with(lines: &str, times: usize) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\n{}Content-Length: 0\r\n\r\n",
        lines.repeat(times)
    )
    .into_bytes()
}

fn cases() -> Vec<Case> {
    use BodyKind::*;
    use DecodeError::*;
    let mut many_headers = String::new();
    for i in 0..MAX_HEADERS {
        many_headers.push_str(&format!("X-{i}: v\r\n"));
    }
    let big_value = format!("X: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
    let big_trailer = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: {}\r\n\r\n",
        "a".repeat(MAX_HEAD_BYTES)
    );
    let long_ext = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;{}\r\nhello\r\n0\r\n\r\n",
        "a".repeat(MAX_CHUNK_LINE)
    );
    vec![
        case("content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", Ok(ok(200, true, Length(5), b"hello"))),
        case("content-length 0", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Ok(ok(200, true, Length(0), b""))),
        case("404 is decoded, not judged", b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno", Ok(ok(404, true, Length(2), b"no"))),
        case(
            "chunked with extensions and trailers",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=val\r\nhello\r\n6 ; a=\"b\"\r\n world\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n",
            Ok(ok(200, true, Chunked, b"hello world")),
        ),
        case(
            "chunked, hex sizes, last coding",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\nA\r\n0123456789\r\n00\r\n\r\n",
            Ok(ok(200, true, Chunked, b"0123456789")),
        ),
        case("close-delimited", b"HTTP/1.1 200 OK\r\n\r\nuntil close", Ok(Want { via_eof: true, ..ok(200, false, UntilClose, b"until close") })),
        case("te not chunked is close-delimited", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", Ok(Want { via_eof: true, ..ok(200, false, UntilClose, b"zz") })),
        Case { head_request: true, ..case("HEAD with content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Ok(ok(200, true, None, b""))) },
        Case { head_request: true, ..case("HEAD with chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Ok(ok(200, true, None, b""))) },
        case("204 ignores content-length", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", Ok(ok(204, true, None, b""))),
        case("304 ignores content-length", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", Ok(ok(304, true, None, b""))),
        case(
            "100 continue before 200",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            Ok(ok(200, true, Length(2), b"ok")),
        ),
        case(
            "103 early hints before 200",
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            Ok(ok(201, true, Length(0), b"")),
        ),
        case(
            "101 completes without body",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi",
            Ok(Want { leftover: 4, ..ok(101, false, None, b"") }),
        ),
        case("1.0 closes by default", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", Ok(ok(200, false, Length(2), b"ok"))),
        case("1.0 keep-alive", b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", Ok(ok(200, true, Length(2), b"ok"))),
        case("1.0 close-delimited", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nok", Ok(Want { via_eof: true, ..ok(200, false, UntilClose, b"ok") })),
        case("connection close", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", Ok(ok(200, false, Length(2), b"ok"))),
        case("connection list", b"HTTP/1.1 200 OK\r\nConnection: upgrade , CLOSE\r\nContent-Length: 0\r\n\r\n", Ok(ok(200, false, Length(0), b""))),
        case(
            "duplicate content-length agreeing",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2, 2\r\n\r\nok",
            Ok(ok(200, true, Length(2), b"ok")),
        ),
        case("duplicate content-length disagreeing", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", Err(BadFraming)),
        case("content-length list disagreeing", b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", Err(BadFraming)),
        case("te and cl", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", Err(BadFraming)),
        case("non-numeric content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\nhello", Err(BadFraming)),
        case("signed content-length", b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", Err(BadFraming)),
        case("empty content-length", b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", Err(BadFraming)),
        case("content-length overflow", b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n", Err(BadFraming)),
        case("chunk size of 16 digits", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", Err(Parse)),
        case("chunk size of 15 digits is fine until cut", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\nabc", Err(Incomplete)),
        Case { input: long_ext.into_bytes(), ..case("chunk line too long", b"", Err(Parse)) },
        case("chunk size missing", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", Err(Parse)),
        case("chunk size not hex", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Err(Parse)),
        case("chunk size bare LF", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", Err(Parse)),
        case("chunk size stray CR", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r\nhello\r\n0\r\n\r\n", Err(Parse)),
        case("chunk data without CRLF", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n", Err(Parse)),
        case("chunk data CR without LF", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\rX0\r\n\r\n", Err(Parse)),
        case("trailer without colon", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnope\r\n\r\n", Err(Parse)),
        Case { input: big_trailer.into_bytes(), ..case("trailers too large", b"", Err(HeadTooLarge)) },
        Case { input: head_with(&many_headers, 1), ..case("too many headers", b"", Err(TooManyHeaders)) },
        Case { input: head_with("X: v\r\n", MAX_HEADERS - 1), ..case("as many headers as allowed", b"", Ok(ok(200, true, Length(0), b""))) },
        Case { input: head_with(&big_value, 1), ..case("head too large", b"", Err(HeadTooLarge)) },
        case("garbage", b"garbage\r\n\r\n", Err(Parse)),
        case("http/2 status line", b"HTTP/2 200 OK\r\n\r\n", Err(Parse)),
        case("four-digit status", b"HTTP/1.1 2000 OK\r\n\r\n", Err(Parse)),
        case("cut in head", b"HTTP/1.1 200 OK\r\nContent-Len", Err(Truncated)),
        case("cut in body", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", Err(Incomplete)),
        case("cut before the body", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Err(Incomplete)),
        case("cut in a chunk", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", Err(Incomplete)),
        case("cut before the last chunk", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", Err(Incomplete)),
        case("cut in trailers", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n", Err(Incomplete)),
        case("cut after a 100 continue", b"HTTP/1.1 100 Continue\r\n\r\n", Err(Truncated)),
        case(
            "pipelined content-length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            Ok(Want { leftover: 38, ..ok(200, true, Length(2), b"ok") }),
        ),
        case(
            "pipelined chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            Ok(Want { leftover: 27, ..ok(200, true, Chunked, b"ok") }),
        ),
    ]
}

#[test]
fn table_at_every_split() {
    for c in cases() {
        let got = drive_every_split(&c.input, c.head_request);
        match (&got, &c.want) {
            (Ok(seen), Ok(want)) => {
                let actual = (
                    seen.head.status,
                    seen.head.keep_alive,
                    seen.head.body,
                    &seen.body[..],
                    seen.via_eof,
                    seen.leftover,
                );
                let expected = (
                    want.status,
                    want.keep_alive,
                    want.body_kind,
                    want.body,
                    want.via_eof,
                    want.leftover,
                );
                assert_eq!(actual, expected, "{}", c.name);
            }
            (Err(got), Err(want)) => assert_eq!(got, want, "{}", c.name),
            _ => panic!("{}: got {got:?}", c.name),
        }
    }
}

#[test]
fn chunked_body_ranges_concatenate_to_the_payload_at_every_split() {
    let payload: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in payload.chunks(700).chain(payload.chunks(1).take(3)) {
        input.extend_from_slice(format!("{:x};e=1\r\n", chunk.len()).as_bytes());
        input.extend_from_slice(chunk);
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(b"0\r\nT: 1\r\n\r\n");
    let mut expected = payload.clone();
    expected.extend_from_slice(&payload[..3]);
    let seen = drive_every_split(&input, false).expect("valid response");
    assert_eq!(seen.body, expected);
}

#[test]
fn one_call_reports_one_chunk_then_continues() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let mut dec = ResponseDecoder::new();
    let Ok(Step::Partial { consumed, body }) = dec.decode(input) else {
        panic!("first call stops before the second chunk's data");
    };
    assert_eq!(&input[body], b"hello");
    assert_eq!(&input[consumed..consumed + 6], b" world");
    let rest = &input[consumed..];
    assert_eq!(
        dec.decode(rest),
        Ok(Step::Complete {
            consumed: rest.len(),
            body: 0..6
        })
    );
    assert_eq!(dec.body_bytes(), 11);
}

#[test]
fn pipelined_responses_decode_one_after_the_other() {
    let first = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".as_slice();
    let second = b"HTTP/1.1 500 Oops\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx".as_slice();
    let buf = [first, second].concat();
    let mut dec = ResponseDecoder::new();
    assert_eq!(
        dec.decode(&buf),
        Ok(Step::Complete {
            consumed: first.len(),
            body: 38..40
        })
    );
    let head = dec.head().expect("parsed");
    assert_eq!((head.status, head.head_len), (200, 38));
    // Done stays done until reset.
    assert_eq!(
        dec.decode(&buf[first.len()..]),
        Ok(Step::Complete {
            consumed: 0,
            body: 0..0
        })
    );
    dec.reset(false);
    assert!(!dec.in_progress() && dec.head().is_none());
    let rest = &buf[first.len()..];
    assert_eq!(
        dec.decode(rest),
        Ok(Step::Complete {
            consumed: rest.len(),
            body: rest.len() - 1..rest.len()
        })
    );
    assert_eq!(
        dec.head().map(|h| (h.status, h.keep_alive)),
        Some((500, false))
    );
}

#[test]
fn large_length_body_is_consumed_as_it_arrives() {
    let mut dec = ResponseDecoder::new();
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
    assert_eq!(
        dec.decode(head),
        Ok(Step::Partial {
            consumed: head.len(),
            body: head.len()..head.len()
        })
    );
    let piece = [7u8; 65536];
    let mut left = 1_000_000usize;
    while left > piece.len() {
        assert_eq!(
            dec.decode(&piece),
            Ok(Step::Partial {
                consumed: piece.len(),
                body: 0..piece.len()
            })
        );
        left -= piece.len();
    }
    assert_eq!(
        dec.decode(&piece),
        Ok(Step::Complete {
            consumed: left,
            body: 0..left
        })
    );
    assert_eq!(dec.body_bytes(), 1_000_000);
}

/// A 1xx head and the final one in one read: the caller's copy of `input[..head_len]`, taken in
/// the call after which `head()` appears, is the final head, not the informational one.
#[test]
fn the_final_head_is_at_the_front_after_informational_heads() {
    let hints = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nX-Stage: hint\r\n\r\n";
    let cont = "HTTP/1.1 100 Continue\r\n\r\n";
    let last = "HTTP/1.1 200 OK\r\nX-Stage: final\r\nContent-Length: 2\r\n\r\n";
    let input = format!("{hints}{cont}{last}ok");
    let mut dec = ResponseDecoder::new();
    let mut buf = input.as_bytes().to_vec();
    let mut kept = Vec::new();
    let mut calls = 0;
    loop {
        calls += 1;
        let had_head = dec.head().is_some();
        let step = dec.decode(&buf).expect("valid");
        if let (false, Some(h)) = (had_head, dec.head()) {
            kept.extend_from_slice(&buf[..h.head_len]);
        }
        let (Step::Partial { consumed, .. } | Step::Complete { consumed, .. }) = step.clone();
        buf.drain(..consumed);
        if matches!(step, Step::Complete { .. }) {
            break;
        }
        assert!(consumed > 0 && calls < 10, "{step:?}");
    }
    assert_eq!(String::from_utf8_lossy(&kept), last);
    assert_eq!(dec.head().map(|h| h.status), Some(200));
    assert_eq!(
        calls, 3,
        "one call per informational head, one for the response"
    );
}

#[test]
fn eof_and_progress() {
    let mut dec = ResponseDecoder::new();
    assert!(!dec.in_progress());
    assert_eq!(
        dec.decode(b""),
        Ok(Step::Partial {
            consumed: 0,
            body: 0..0
        })
    );
    assert!(!dec.in_progress());
    assert_eq!(
        dec.finish_eof(),
        Err(DecodeError::Truncated),
        "idle close: the caller checks in_progress first"
    );

    dec.reset(false);
    assert_eq!(
        dec.decode(b"H"),
        Ok(Step::Partial {
            consumed: 0,
            body: 0..0
        })
    );
    assert!(dec.in_progress());
    assert_eq!(dec.finish_eof(), Err(DecodeError::Truncated));

    dec.reset(false);
    assert!(dec.decode(b"HTTP/1.1 200 OK\r\n\r\nab").is_ok());
    assert_eq!(dec.finish_eof(), Ok(()));
    assert_eq!(
        dec.finish_eof(),
        Ok(()),
        "a complete response stays complete"
    );
    assert_eq!(dec.body_bytes(), 2);
}

#[test]
fn errors_are_sticky() {
    let mut dec = ResponseDecoder::default();
    assert_eq!(dec.decode(b"nonsense\r\n\r\n"), Err(DecodeError::Parse));
    assert_eq!(
        dec.decode(b"HTTP/1.1 200 OK\r\n\r\n"),
        Err(DecodeError::Parse)
    );
    assert_eq!(dec.finish_eof(), Err(DecodeError::Parse));
}

fn encode(spec: RequestSpec<'_>) -> String {
    let mut out = Vec::new();
    encode_request(&spec, &mut out);
    String::from_utf8(out).expect("test requests are UTF-8")
}

fn spec<'a>(method: &'a str, headers: &'a [(String, String)], body: &'a [u8]) -> RequestSpec<'a> {
    RequestSpec {
        method,
        path_and_query: "/p?q=1",
        host_header: "example.com:8080",
        headers,
        body,
    }
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn encode_get() {
    let got = encode(spec("GET", &[], b""));
    assert_eq!(got, "GET /p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    let mut parsed = [httparse::EMPTY_HEADER; 4];
    let mut req = httparse::Request::new(&mut parsed);
    assert_eq!(
        req.parse(got.as_bytes()),
        Ok(httparse::Status::Complete(got.len()))
    );
}

#[test]
fn encode_post_with_body() {
    let h = headers(&[("Content-Type", "application/json")]);
    assert_eq!(
        encode(spec("POST", &h, b"{\"a\":1}")),
        "POST /p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
    );
    assert_eq!(
        encode(spec("PUT", &[], b"")),
        "PUT /p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(
        encode(spec("DELETE", &[], b"x")),
        "DELETE /p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 1\r\n\r\nx"
    );
}

#[test]
fn encode_keeps_user_host_length_and_connection() {
    let h = headers(&[("host", "other"), ("Connection", "close")]);
    assert_eq!(
        encode(spec("GET", &h, b"")),
        "GET /p?q=1 HTTP/1.1\r\nhost: other\r\nConnection: close\r\n\r\n"
    );
    let h = headers(&[("CONTENT-LENGTH", "2")]);
    assert_eq!(
        encode(spec("POST", &h, b"ab")),
        "POST /p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nCONTENT-LENGTH: 2\r\n\r\nab"
    );
    let h = headers(&[("Transfer-Encoding", "chunked")]);
    assert_eq!(
        encode(spec("POST", &h, b"0\r\n\r\n")),
        "POST /p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
}

#[test]
fn validate_header_cases() {
    for (name, value) in [
        ("X-Id", "1"),
        ("a!#$%&'*+-.^_`|~9", ""),
        ("Accept", "text/html, */*;q=0.8\t"),
    ] {
        assert_eq!(validate_header(name, value), Ok(()), "{name}: {value}");
    }
    for (name, value) in [
        ("", "v"),
        ("Bad Name", "v"),
        ("X:", "v"),
        ("Ünï", "v"),
        ("X(", "v"),
        ("X", "a\r\nEvil: 1"),
        ("X", "a\nb"),
        ("X", "a\0"),
    ] {
        assert!(validate_header(name, value).is_err(), "{name:?}: {value:?}");
    }
}
