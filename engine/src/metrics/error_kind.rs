//! What can go wrong with one request, as a fieldless enum used to index fixed counter arrays.
//!
//! The hot path never builds strings for failures: it bumps `counters[kind as usize]`. Names are
//! stable (they appear in JSON results and on the API), so a variant is only ever appended.

use serde::Serialize;

/// One class of per-request failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connect failed (refused, unreachable) or timed out.
    Connect,
    /// The peer reset the connection, or closed it before a response head was complete.
    Reset,
    /// No complete response within the request timeout.
    Timeout,
    /// Writing the request failed.
    Write,
    /// Reading the response failed for a reason other than a reset.
    Read,
    /// The response is not valid HTTP/1.1 (bad status line, bad header, bad chunk framing).
    Parse,
    /// The response head is larger than the decoder's limit.
    HeadTooLarge,
    /// The response carries more header fields than the decoder's limit.
    TooManyHeaders,
    /// The body is framed inconsistently (e.g. Content-Length and chunked both, or a bad length).
    BadFraming,
    /// The server answered with a 4xx status.
    Status4xx,
    /// The server answered with a 5xx status.
    Status5xx,
    /// A journey step's capture found nothing to capture (the iteration stops there).
    CaptureFailed,
    /// The server's certificate was refused (unknown CA, wrong name, expired).
    TlsCertificate,
    /// The peer sent a TLS alert (e.g. a certificate the server requires).
    TlsAlert,
    /// Any other TLS handshake or record failure.
    TlsHandshake,
    /// The WebSocket upgrade was refused or its answer was wrong (status, accept key).
    WsHandshake,
    /// The server broke the WebSocket protocol (bad frame, invalid UTF-8, too large).
    WsProtocol,
    /// The server closed a live WebSocket, or its connection dropped (a drop).
    WsClosed,
    /// A template could not be rendered (a list index out of range, an overflow): the request
    /// was not sent and the iteration ends.
    Template,
    /// The server broke HTTP/2: a frame on the wrong stream, a bad SETTINGS value or frame
    /// size, a header block HPACK cannot decode, a malformed response.
    H2Protocol,
    /// The server reset the stream (RST_STREAM other than REFUSED_STREAM).
    H2StreamReset,
    /// The server closed the connection with GOAWAY and an error code, or refused a stream
    /// again after it was retried.
    H2Goaway,
    /// The server broke HTTP/2 flow control (sent past a window, grew one past 2^31-1).
    H2FlowControl,
    /// A compressed body a check or capture needed could not be decoded (corrupt, or an
    /// encoding the client does not know).
    Decompress,
    /// A body kept for checks or captures, as received or decoded, or a WebSocket frame or
    /// message, past its limit (`[engine] max_body`, `max_ws_frame`, `max_ws_message`): refused,
    /// never buffered, and the connection ended.
    BodyTooLarge,
    /// A redirect the step would follow points outside the run's target (another origin) or has
    /// no usable `Location`.
    Redirect,
    /// The server closed the connection cleanly in the middle of a response body (fewer bytes
    /// than its Content-Length, or a chunked body without its last chunk).
    Incomplete,
}

impl ErrorKind {
    /// Every kind, in index order.
    pub const ALL: [ErrorKind; 27] = [
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Write,
        ErrorKind::Read,
        ErrorKind::Parse,
        ErrorKind::HeadTooLarge,
        ErrorKind::TooManyHeaders,
        ErrorKind::BadFraming,
        ErrorKind::Status4xx,
        ErrorKind::Status5xx,
        ErrorKind::CaptureFailed,
        ErrorKind::TlsCertificate,
        ErrorKind::TlsAlert,
        ErrorKind::TlsHandshake,
        ErrorKind::WsHandshake,
        ErrorKind::WsProtocol,
        ErrorKind::WsClosed,
        ErrorKind::Template,
        ErrorKind::H2Protocol,
        ErrorKind::H2StreamReset,
        ErrorKind::H2Goaway,
        ErrorKind::H2FlowControl,
        ErrorKind::Decompress,
        ErrorKind::BodyTooLarge,
        ErrorKind::Redirect,
        ErrorKind::Incomplete,
    ];
    /// Number of kinds: the length of every per-kind counter array.
    pub const COUNT: usize = Self::ALL.len();

    /// The stable snake_case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Write => "write",
            ErrorKind::Read => "read",
            ErrorKind::Parse => "parse",
            ErrorKind::HeadTooLarge => "head_too_large",
            ErrorKind::TooManyHeaders => "too_many_headers",
            ErrorKind::BadFraming => "bad_framing",
            ErrorKind::Status4xx => "status_4xx",
            ErrorKind::Status5xx => "status_5xx",
            ErrorKind::CaptureFailed => "capture_failed",
            ErrorKind::TlsCertificate => "tls_certificate",
            ErrorKind::TlsAlert => "tls_alert",
            ErrorKind::TlsHandshake => "tls_handshake",
            ErrorKind::WsHandshake => "ws_handshake",
            ErrorKind::WsProtocol => "ws_protocol",
            ErrorKind::WsClosed => "ws_closed",
            ErrorKind::Template => "template",
            ErrorKind::H2Protocol => "h2_protocol",
            ErrorKind::H2StreamReset => "h2_stream_reset",
            ErrorKind::H2Goaway => "h2_goaway",
            ErrorKind::H2FlowControl => "h2_flow_control",
            ErrorKind::Decompress => "decompress",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Incomplete => "incomplete",
        }
    }

    /// Index into a `[u64; ErrorKind::COUNT]` counter array.
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order_and_names_are_unique() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::COUNT);
    }
}
