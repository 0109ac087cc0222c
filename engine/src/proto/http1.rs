//! HTTP/1.1 client codec, sans-io: `encode_request` turns a request into bytes once, up front, and
//! `ResponseDecoder` turns response bytes into a status, framing and body byte ranges.
//!
//! The decoder never buffers, copies or allocates: the head is parsed in place with httparse, body
//! bytes are consumed as they arrive and reported as ranges of the caller's input. It knows nothing
//! of sockets, timers or status classes (mapping 4xx/5xx to an `ErrorKind` is the caller's job), and
//! every limit is a named constant mapped to an `ErrorKind`.

use core::ops::Range;

use crate::ErrorKind;

/// Largest response head (and, separately, largest trailer section) accepted → `HeadTooLarge`.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields in one response head → `TooManyHeaders`.
pub const MAX_HEADERS: usize = 64;
/// Longest chunk-size line, extensions and CRLF included → `Parse`.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Most hex digits in a chunk size: 15 keeps the size below 2^60, so it never overflows a `u64`.
const MAX_CHUNK_SIZE_DIGITS: usize = 15;

/// One request as the scenario describes it, before encoding.
#[derive(Clone, Copy, Debug)]
pub struct RequestSpec<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub host_header: &'a str,
    /// Sent verbatim and in order; check user input with `validate_header` first.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Appends the whole request to `out`: request line, `Host` (unless the user headers carry one), user
/// headers, `Content-Length` (when there is a body or the method is POST/PUT/PATCH, unless the user
/// headers carry `Content-Length` or `Transfer-Encoding`), the blank line and the body.
///
/// No `Connection` header is added: HTTP/1.1 keeps the connection alive by default.
pub fn encode_request(spec: &RequestSpec<'_>, out: &mut Vec<u8>) {
    let has = |name: &str| {
        spec.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let line = |out: &mut Vec<u8>, name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };

    out.extend_from_slice(spec.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(spec.path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !has("host") {
        line(out, "Host", spec.host_header.as_bytes());
    }
    for (name, value) in spec.headers {
        line(out, name, value.as_bytes());
    }
    // Methods are case-sensitive (RFC 9110 §9.1): "post" is not POST.
    let expects_body = matches!(spec.method, "POST" | "PUT" | "PATCH");
    if (!spec.body.is_empty() || expects_body)
        && !has("content-length")
        && !has("transfer-encoding")
    {
        line(
            out,
            "Content-Length",
            spec.body.len().to_string().as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(spec.body);
}

/// Checks a user-supplied header before it is encoded: the name must be an RFC 9110 token and the
/// value must not contain CR, LF or NUL (which would let it inject headers or end the head).
pub fn validate_header(name: &str, value: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("header name is empty");
    }
    if !name.bytes().all(is_tchar) {
        return Err("header name must be a token: letters, digits and !#$%&'*+-.^_`|~ only");
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err("header value must not contain CR, LF or NUL");
    }
    Ok(())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What the decoder learned from a response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
    pub body: BodyKind,
    /// Bytes of this (final) head, status line to blank line; skipped 1xx heads are not counted.
    pub head_len: usize,
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// One step of decoding. (Not `Copy`: `Range` is not.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The response is not complete. The first `consumed` bytes of the input were used (body bytes
    /// are consumed as they arrive, so a large body is never buffered; an incomplete head or framing
    /// line consumes 0). `body` is the range of the input holding body payload seen in this call
    /// (empty if none); chunk framing bytes are never inside it.
    ///
    /// `consumed == 0` means more bytes are needed. When `consumed > 0` and input remains, call again
    /// with the remainder before reading: a chunked body stops at a chunk boundary so that `body`
    /// stays one contiguous range.
    Partial { consumed: usize, body: Range<usize> },
    /// The response is complete after `consumed` bytes; `body` as above. Later bytes (a pipelined
    /// response) are left in the input.
    Complete { consumed: usize, body: Range<usize> },
}

/// Where the decoder is within one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the (next) head; informational 1xx heads are skipped here.
    Head,
    Length {
        remaining: u64,
    },
    /// Waiting for a chunk-size line.
    ChunkSize,
    ChunkData {
        remaining: u64,
    },
    /// Waiting for the CRLF that ends a chunk's data.
    ChunkDataEnd,
    /// After the last chunk: trailer lines until an empty one; `seen` bytes so far.
    Trailers {
        seen: usize,
    },
    UntilClose,
    Done,
    /// Sticky: every later call reports the same failure.
    Failed(ErrorKind),
}

/// Decodes one response at a time from bytes the caller reads; `reset` before each request.
#[derive(Debug)]
pub struct ResponseDecoder {
    state: State,
    head_request: bool,
    started: bool,
    head: Option<ResponseHead>,
    body_bytes: u64,
}

impl Default for ResponseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseDecoder {
    pub fn new() -> Self {
        ResponseDecoder {
            state: State::Head,
            head_request: false,
            started: false,
            head: None,
            body_bytes: 0,
        }
    }

    /// Prepares for the next response. `head_request`: the request was HEAD (no body whatever the
    /// headers say).
    pub fn reset(&mut self, head_request: bool) {
        *self = ResponseDecoder {
            head_request,
            ..ResponseDecoder::new()
        };
    }

    /// Feeds bytes: the caller's buffer, starting where the previous call's `consumed` ended. Gives
    /// the same result for any split of the byte stream.
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, ErrorKind> {
        if !input.is_empty() && self.state != State::Done {
            self.started = true;
        }
        let step = self.step(input);
        if let Err(kind) = step {
            self.state = State::Failed(kind);
        }
        step
    }

    /// The peer closed the connection. Ok if that completes a close-delimited body (or the response
    /// was already complete); otherwise `Err(Reset)`, also when nothing was received — callers tell
    /// an idle close from a cut response with `in_progress()`.
    pub fn finish_eof(&mut self) -> Result<(), ErrorKind> {
        match self.state {
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            State::Done => Ok(()),
            State::Failed(kind) => Err(kind),
            _ => {
                self.state = State::Failed(ErrorKind::Reset);
                Err(ErrorKind::Reset)
            }
        }
    }

    /// True once any byte of the current response has been seen.
    pub fn in_progress(&self) -> bool {
        self.started
    }

    /// The head of the current response once parsed.
    pub fn head(&self) -> Option<ResponseHead> {
        self.head
    }

    /// Body payload bytes seen so far for the current response.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    fn step(&mut self, input: &[u8]) -> Result<Step, ErrorKind> {
        let mut pos = 0;
        let mut body = 0..0;
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            match self.state {
                State::Head => {
                    let Some(head) = parse_head(rest, self.head_request)? else {
                        return Ok(Step::Partial {
                            consumed: pos,
                            body,
                        });
                    };
                    pos += head.head_len;
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue; // informational (100 Continue, 103 Early Hints): the final head follows
                    }
                    self.head = Some(head);
                    self.state = match head.body {
                        BodyKind::None | BodyKind::Length(0) => State::Done,
                        BodyKind::Length(n) => State::Length { remaining: n },
                        BodyKind::Chunked => State::ChunkSize,
                        BodyKind::UntilClose => State::UntilClose,
                    };
                }
                State::Length { remaining } => {
                    let take = self.take_body(remaining, rest.len());
                    body = pos..pos + take;
                    pos += take;
                    let remaining = remaining - take as u64;
                    if remaining > 0 {
                        self.state = State::Length { remaining };
                        return Ok(Step::Partial {
                            consumed: pos,
                            body,
                        });
                    }
                    self.state = State::Done;
                }
                State::ChunkSize => {
                    let Some((line, len)) = take_line(rest, MAX_CHUNK_LINE, ErrorKind::Parse)?
                    else {
                        return Ok(Step::Partial {
                            consumed: pos,
                            body,
                        });
                    };
                    pos += len;
                    self.state = match parse_chunk_size(line)? {
                        0 => State::Trailers { seen: 0 },
                        n => State::ChunkData { remaining: n },
                    };
                }
                State::ChunkData { remaining } => {
                    // A second chunk's data in this call would make `body` two ranges: stop first.
                    if rest.is_empty() || !body.is_empty() {
                        return Ok(Step::Partial {
                            consumed: pos,
                            body,
                        });
                    }
                    let take = self.take_body(remaining, rest.len());
                    body = pos..pos + take;
                    pos += take;
                    self.state = match remaining - take as u64 {
                        0 => State::ChunkDataEnd,
                        remaining => State::ChunkData { remaining },
                    };
                }
                State::ChunkDataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = State::ChunkSize;
                    }
                    [] | [b'\r'] => {
                        return Ok(Step::Partial {
                            consumed: pos,
                            body,
                        })
                    }
                    _ => return Err(ErrorKind::Parse),
                },
                State::Trailers { seen } => {
                    let limit = MAX_HEAD_BYTES - seen;
                    let Some((line, len)) = take_line(rest, limit, ErrorKind::HeadTooLarge)? else {
                        return Ok(Step::Partial {
                            consumed: pos,
                            body,
                        });
                    };
                    pos += len;
                    if line.is_empty() {
                        self.state = State::Done;
                    } else if line.contains(&b':') {
                        self.state = State::Trailers { seen: seen + len };
                    } else {
                        return Err(ErrorKind::Parse);
                    }
                }
                State::UntilClose => {
                    let take = self.take_body(u64::MAX, rest.len());
                    body = pos..pos + take;
                    return Ok(Step::Partial {
                        consumed: pos + take,
                        body,
                    });
                }
                State::Done => {
                    return Ok(Step::Complete {
                        consumed: pos,
                        body,
                    })
                }
                State::Failed(kind) => return Err(kind),
            }
        }
    }

    /// Counts and returns how many of `available` bytes belong to a body with `remaining` to go.
    fn take_body(&mut self, remaining: u64, available: usize) -> usize {
        let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
        self.body_bytes += take as u64;
        take
    }
}

/// Parses one head at the front of `rest`; `None` while it is incomplete.
fn parse_head(rest: &[u8], head_request: bool) -> Result<Option<ResponseHead>, ErrorKind> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(rest) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if rest.len() >= MAX_HEAD_BYTES => {
            return Err(ErrorKind::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ErrorKind::TooManyHeaders),
        Err(_) => return Err(ErrorKind::Parse),
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(ErrorKind::HeadTooLarge);
    }
    let (Some(status), Some(minor_version)) = (response.code, response.version) else {
        return Err(ErrorKind::Parse);
    };

    let mut close = false;
    let mut keep_alive_token = false;
    // Some(last coding is chunked) once a Transfer-Encoding field is seen.
    let mut te_chunked: Option<bool> = None;
    let mut content_length: Option<Result<u64, ()>> = None;
    for header in response.headers.iter() {
        let elements = || header.value.split(|&b| b == b',').map(<[u8]>::trim_ascii);
        if header.name.eq_ignore_ascii_case("connection") {
            for token in elements() {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = elements().rfind(|c| !c.is_empty());
            let chunked = last.map(|c| c.eq_ignore_ascii_case(b"chunked"));
            te_chunked = chunked.or(te_chunked).or(Some(false));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            // Repeated fields and `n, n` lists are accepted when every value agrees (RFC 9110 §8.6).
            for value in elements() {
                let parsed = parse_content_length(value);
                content_length = match content_length {
                    Some(Ok(seen)) if parsed != Ok(seen) => Some(Err(())),
                    Some(Err(())) => Some(Err(())),
                    _ => Some(parsed),
                };
            }
        }
    }

    let no_body = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let body = match (te_chunked, content_length) {
        _ if no_body => BodyKind::None,
        // RFC 9112 lets Transfer-Encoding win, but a server sending both is broken (or smuggling).
        (Some(_), Some(_)) => return Err(ErrorKind::BadFraming),
        (Some(true), None) => BodyKind::Chunked,
        (Some(false), None) => BodyKind::UntilClose,
        (None, Some(Ok(n))) => BodyKind::Length(n),
        (None, Some(Err(()))) => return Err(ErrorKind::BadFraming),
        (None, None) => BodyKind::UntilClose,
    };
    let persistent = match minor_version {
        1 => !close,
        _ => keep_alive_token && !close,
    };
    let keep_alive = persistent && status != 101 && body != BodyKind::UntilClose;
    Ok(Some(ResponseHead {
        status,
        keep_alive,
        body,
        head_len,
    }))
}

fn parse_content_length(value: &[u8]) -> Result<u64, ()> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(());
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(())
    })
}

/// Finds one CRLF-terminated line at the front of `rest`, looking at most `limit` bytes ahead.
/// Returns the line without its CRLF and the bytes it spans, or `None` while it is incomplete.
fn take_line(
    rest: &[u8],
    limit: usize,
    too_long: ErrorKind,
) -> Result<Option<(&[u8], usize)>, ErrorKind> {
    let window = &rest[..rest.len().min(limit)];
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) => match window[..lf].split_last() {
            Some((b'\r', line)) => Ok(Some((line, lf + 1))),
            _ => Err(ErrorKind::Parse),
        },
        None if !rest.is_empty() && rest.len() >= limit => Err(too_long),
        None => Ok(None),
    }
}

/// `1*HEXDIG [BWS ";" extensions]`; extensions are skipped but must not hold control bytes.
fn parse_chunk_size(line: &[u8]) -> Result<u64, ErrorKind> {
    let mut size = 0u64;
    let mut digits = 0;
    for &b in line {
        let Some(d) = char::from(b).to_digit(16) else {
            break;
        };
        size = size << 4 | u64::from(d);
        digits += 1;
        if digits > MAX_CHUNK_SIZE_DIGITS {
            return Err(ErrorKind::Parse);
        }
    }
    if digits == 0 {
        return Err(ErrorKind::Parse);
    }
    let after = &line[digits..];
    let after = &after[after
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    match after.split_first() {
        None => Ok(size),
        Some((b';', ext)) if !ext.iter().any(|&b| b.is_ascii_control() && b != b'\t') => Ok(size),
        Some(_) => Err(ErrorKind::Parse),
    }
}

#[cfg(test)]
mod tests {
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
    fn drive(pieces: &[&[u8]], head_request: bool) -> Result<Seen, ErrorKind> {
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
    fn drive_every_split(input: &[u8], head_request: bool) -> Result<Seen, ErrorKind> {
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
        want: Result<Want, ErrorKind>,
    }

    fn case(name: &'static str, input: &[u8], want: Result<Want, ErrorKind>) -> Case {
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
        use ErrorKind::*;
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
            case("chunk size of 15 digits is fine until cut", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\nabc", Err(Reset)),
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
            case("cut in head", b"HTTP/1.1 200 OK\r\nContent-Len", Err(Reset)),
            case("cut in body", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", Err(Reset)),
            case("cut in trailers", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n", Err(Reset)),
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
        let second =
            b"HTTP/1.1 500 Oops\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx".as_slice();
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
            Err(ErrorKind::Reset),
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
        assert_eq!(dec.finish_eof(), Err(ErrorKind::Reset));

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
        assert_eq!(dec.decode(b"nonsense\r\n\r\n"), Err(ErrorKind::Parse));
        assert_eq!(
            dec.decode(b"HTTP/1.1 200 OK\r\n\r\n"),
            Err(ErrorKind::Parse)
        );
        assert_eq!(dec.finish_eof(), Err(ErrorKind::Parse));
    }

    fn encode(spec: RequestSpec<'_>) -> String {
        let mut out = Vec::new();
        encode_request(&spec, &mut out);
        String::from_utf8(out).expect("test requests are UTF-8")
    }

    fn spec<'a>(
        method: &'a str,
        headers: &'a [(String, String)],
        body: &'a [u8],
    ) -> RequestSpec<'a> {
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
}
