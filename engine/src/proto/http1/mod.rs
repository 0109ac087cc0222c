//! HTTP/1.1 client codec, sans-io: `encode_request` turns a request into bytes once, up front, and
//! `ResponseDecoder` turns response bytes into a status, framing and body byte ranges.
//!
//! The decoder never buffers, copies or allocates: the head is parsed in place with httparse, body
//! bytes are consumed as they arrive and reported as ranges of the caller's input. It knows nothing
//! of sockets, timers, status classes or the engine's error counters: it fails with its own
//! `DecodeError` (the caller maps it to whatever it counts), and every limit is a named constant
//! mapped to a `DecodeError`.

use core::ops::Range;

/// Largest response head (and, separately, largest trailer section) accepted → `HeadTooLarge`.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields in one response head → `TooManyHeaders`.
pub const MAX_HEADERS: usize = 64;
/// Longest chunk-size line, extensions and CRLF included → `Parse`.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Why a response could not be decoded. Fieldless and `Copy`, so a failure costs nothing on the
/// hot path and stays sticky in the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not valid HTTP/1.1: bad status line, bad header, bad chunk framing.
    #[error("the response is not valid HTTP/1.1")]
    Parse,
    /// The head (or the trailer section) is larger than `MAX_HEAD_BYTES`.
    #[error("the response head is larger than the limit")]
    HeadTooLarge,
    /// More header fields than `MAX_HEADERS`.
    #[error("the response has more header fields than the limit")]
    TooManyHeaders,
    /// The body is framed inconsistently (Content-Length and chunked both, or a bad length).
    #[error("the response body is framed inconsistently")]
    BadFraming,
    /// The connection ended before the response head was complete (or before it began).
    #[error("the connection ended before the response head was complete")]
    Truncated,
    /// The connection ended cleanly inside the body: fewer bytes than Content-Length, or a
    /// chunked body (or its trailers) not finished.
    #[error("the connection ended in the middle of the response body")]
    Incomplete,
}

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
    /// The head sets a cookie: a client with a cookie jar keeps it.
    pub set_cookie: bool,
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
    /// stays one contiguous range, and an informational (1xx) head is consumed alone, so that the
    /// final head is always at the front of the input it is parsed from: a caller keeping it copies
    /// `input[..head_len]` of the call after which `head()` appears.
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
    Failed(DecodeError),
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
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, DecodeError> {
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
    /// was already complete); `Err(Incomplete)` inside a delimited body; otherwise
    /// `Err(Truncated)`, also when nothing was received — callers tell an idle close from a cut
    /// response with `in_progress()`.
    pub fn finish_eof(&mut self) -> Result<(), DecodeError> {
        let cut = match self.state {
            State::UntilClose => {
                self.state = State::Done;
                return Ok(());
            }
            State::Done => return Ok(()),
            State::Failed(kind) => return Err(kind),
            State::Head => DecodeError::Truncated,
            State::Length { .. }
            | State::ChunkSize
            | State::ChunkData { .. }
            | State::ChunkDataEnd
            | State::Trailers { .. } => DecodeError::Incomplete,
        };
        self.state = State::Failed(cut);
        Err(cut)
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

    /// Every transition of the decoder, in one `match` over its state (so it reads as the state
    /// machine it is, at the cost of a long function).
    fn step(&mut self, input: &[u8]) -> Result<Step, DecodeError> {
        let mut pos = 0;
        let mut body = 0..0;
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            match self.state {
                State::Head => {
                    let Some(head) = parse_head(rest, self.head_request)? else {
                        return partial(pos, body);
                    };
                    pos += head.head_len;
                    if (100..200).contains(&head.status) && head.status != 101 {
                        // Informational (100 Continue, 103 Early Hints): the final head follows.
                        // Stop here, so that it starts at the front of the caller's next input.
                        return partial(pos, body);
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
                        return partial(pos, body);
                    }
                    self.state = State::Done;
                }
                State::ChunkSize => {
                    let Some((line, len)) = take_line(rest, MAX_CHUNK_LINE, DecodeError::Parse)?
                    else {
                        return partial(pos, body);
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
                        return partial(pos, body);
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
                        return partial(pos, body);
                    }
                    _ => return Err(DecodeError::Parse),
                },
                State::Trailers { seen } => {
                    let limit = MAX_HEAD_BYTES - seen;
                    let Some((line, len)) = take_line(rest, limit, DecodeError::HeadTooLarge)?
                    else {
                        return partial(pos, body);
                    };
                    pos += len;
                    if line.is_empty() {
                        self.state = State::Done;
                    } else if line.contains(&b':') {
                        self.state = State::Trailers { seen: seen + len };
                    } else {
                        return Err(DecodeError::Parse);
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

/// Not complete yet, after `consumed` bytes with `body` among them.
fn partial(consumed: usize, body: Range<usize>) -> Result<Step, DecodeError> {
    Ok(Step::Partial { consumed, body })
}

/// Parses one head at the front of `rest`; `None` while it is incomplete.
fn parse_head(rest: &[u8], head_request: bool) -> Result<Option<ResponseHead>, DecodeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(rest) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if rest.len() >= MAX_HEAD_BYTES => {
            return Err(DecodeError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(DecodeError::TooManyHeaders),
        Err(_) => return Err(DecodeError::Parse),
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(DecodeError::HeadTooLarge);
    }
    let (Some(status), Some(minor_version)) = (response.code, response.version) else {
        return Err(DecodeError::Parse);
    };

    let mut close = false;
    let mut keep_alive_token = false;
    // Some(last coding is chunked) once a Transfer-Encoding field is seen.
    let mut te_chunked: Option<bool> = None;
    let mut content_length: Option<Result<u64, ()>> = None;
    let mut set_cookie = false;
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
        } else if header.name.eq_ignore_ascii_case("set-cookie") {
            set_cookie = true;
        }
    }

    let no_body = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let body = match (te_chunked, content_length) {
        _ if no_body => BodyKind::None,
        // RFC 9112 lets Transfer-Encoding win, but a server sending both is broken (or smuggling).
        (Some(_), Some(_)) => return Err(DecodeError::BadFraming),
        (Some(true), None) => BodyKind::Chunked,
        (Some(false), None) => BodyKind::UntilClose,
        (None, Some(Ok(n))) => BodyKind::Length(n),
        (None, Some(Err(()))) => return Err(DecodeError::BadFraming),
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
        set_cookie,
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
    too_long: DecodeError,
) -> Result<Option<(&[u8], usize)>, DecodeError> {
    let window = &rest[..rest.len().min(limit)];
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) => match window[..lf].split_last() {
            Some((b'\r', line)) => Ok(Some((line, lf + 1))),
            _ => Err(DecodeError::Parse),
        },
        None if !rest.is_empty() && rest.len() >= limit => Err(too_long),
        None => Ok(None),
    }
}

/// `1*HEXDIG [BWS ";" extensions]`; extensions are skipped but must not hold control bytes.
fn parse_chunk_size(line: &[u8]) -> Result<u64, DecodeError> {
    let mut size = 0u64;
    let mut digits = 0;
    for &b in line {
        let Some(d) = char::from(b).to_digit(16) else {
            break;
        };
        size = size << 4 | u64::from(d);
        digits += 1;
        if digits > MAX_CHUNK_SIZE_DIGITS {
            return Err(DecodeError::Parse);
        }
    }
    if digits == 0 {
        return Err(DecodeError::Parse);
    }
    let after = &line[digits..];
    let after = &after[after
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    match after.split_first() {
        None => Ok(size),
        Some((b';', ext)) if !ext.iter().any(|&b| b.is_ascii_control() && b != b'\t') => Ok(size),
        Some(_) => Err(DecodeError::Parse),
    }
}

#[cfg(test)]
mod tests;
