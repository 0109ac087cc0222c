//! WebSocket client codec (RFC 6455), sans-io: the opening handshake, masked client frames out, and
//! server frames in, reassembled into messages.
//!
//! It owns the byte-level protocol only. It refuses sockets, timers and policy: it never writes a
//! pong or a close by itself (events tell the caller what the peer sent and `WsError::close_code`
//! what to answer when failing), negotiates no extension but permessage-deflate when the caller
//! offers it (a server that picks another, or one not offered, is refused),
//! and never grows past its limits. Unfragmented messages are reported as slices of the caller's
//! input; only fragmented ones are copied, into one reassembly buffer that is reused.
//!
//! - `handshake`: `Key`, `encode_handshake`, `check_handshake_response`.
//! - `frame`: `encode_message`, `encode_ping`/`encode_pong`/`encode_close`, `encode_frame`, masking.
//! - `decode`: `MessageDecoder` (frames → `Event`s), `Limits`.
//! - `deflate`: permessage-deflate (RFC 7692), the offer, the agreement, inflating.

mod decode;
pub mod deflate;
mod frame;
mod handshake;
#[cfg(test)]
mod tests;

pub use decode::{Decoded, Event, Limits, MessageDecoder};
pub use frame::{
    apply_mask, encode_close, encode_frame, encode_message, encode_ping, encode_pong, Opcode,
    MAX_CLOSE_REASON_BYTES,
};
pub use handshake::{
    accept_key, check_handshake_response, check_handshake_response_with, encode_handshake,
    validate_handshake_header, validate_subprotocol, Handshake, Key,
};

/// Largest payload of a control frame (ping, pong, close), RFC 6455 §5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// Default `Limits::max_frame_bytes`: one frame's payload, which the caller buffers whole.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;
/// Default `Limits::max_message_bytes`: one message's payload, all fragments together.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;
/// A buffer grown past this for one large frame or message is shrunk back to it once that is
/// consumed, so a socket holds a large buffer only while it reads a large message.
pub const KEEP_BYTES: usize = 64 << 10;

/// What a data message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text; the decoder has validated it.
    Text,
    Binary,
}

/// Why a handshake or a frame stream was refused. `kind_name` groups the variants into the stable
/// classes the engine counts; the variant itself says precisely what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("the handshake response is not valid HTTP/1.1")]
    HandshakeParse,
    #[error("the handshake response head is larger than the limit")]
    HandshakeTooLarge,
    #[error("the server answered the upgrade with status {0} instead of 101")]
    HandshakeStatus(u16),
    #[error("the handshake response lacks `Upgrade: websocket`")]
    HandshakeUpgrade,
    #[error("the handshake response lacks `Connection: upgrade`")]
    HandshakeConnection,
    #[error("the handshake response's Sec-WebSocket-Accept is missing or does not match the key")]
    HandshakeAccept,
    #[error("the server selected a subprotocol that was not offered")]
    HandshakeSubprotocol,
    #[error("the server selected an extension, but none was offered")]
    HandshakeExtension,
    #[error("a frame has reserved bits set (no extension was negotiated)")]
    ReservedBits,
    #[error("a frame has the unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    #[error("the server sent a masked frame")]
    MaskedFrame,
    #[error("a frame's 64-bit length has its most significant bit set")]
    BadLength,
    #[error("a control frame is longer than 125 bytes")]
    ControlTooLong,
    #[error("a control frame is fragmented")]
    ControlFragmented,
    #[error("a continuation frame arrived with no fragmented message to continue")]
    UnexpectedContinuation,
    #[error("a new data frame arrived before the fragmented message was finished")]
    UnfinishedMessage,
    #[error("a close frame has a one-byte payload")]
    CloseTooShort,
    #[error("a close frame carries the invalid status code {0}")]
    CloseCode(u16),
    #[error("a frame arrived after the close frame")]
    FrameAfterClose,
    #[error("a text message or close reason is not valid UTF-8")]
    InvalidUtf8,
    #[error("a frame is larger than the frame limit")]
    FrameTooLarge,
    #[error("a message is larger than the message limit")]
    MessageTooLarge,
}

impl WsError {
    /// Stable snake_case class: `ws_handshake`, `ws_handshake_status`, `ws_protocol`, `ws_utf8` or
    /// `ws_too_large`.
    pub fn kind_name(&self) -> &'static str {
        use WsError::*;
        match self {
            HandshakeParse | HandshakeTooLarge | HandshakeUpgrade | HandshakeConnection
            | HandshakeAccept | HandshakeSubprotocol | HandshakeExtension => "ws_handshake",
            HandshakeStatus(_) => "ws_handshake_status",
            ReservedBits
            | UnknownOpcode(_)
            | MaskedFrame
            | BadLength
            | ControlTooLong
            | ControlFragmented
            | UnexpectedContinuation
            | UnfinishedMessage
            | CloseTooShort
            | CloseCode(_)
            | FrameAfterClose => "ws_protocol",
            InvalidUtf8 => "ws_utf8",
            FrameTooLarge | MessageTooLarge => "ws_too_large",
        }
    }

    /// The status code a client sends in its close frame when it fails the connection for this
    /// reason (RFC 6455 §7.4.1); `None` for handshake failures (there is no WebSocket yet).
    pub fn close_code(&self) -> Option<u16> {
        match self.kind_name() {
            "ws_handshake" | "ws_handshake_status" => None,
            "ws_utf8" => Some(1007),
            "ws_too_large" => Some(1009),
            _ => Some(1002),
        }
    }
}

/// Whether a peer may send `code` in a close frame: 1000–1003 and 1007–1014 (RFC 6455 §7.4.1 and
/// the IANA registry), 3000–4999 (libraries and applications). 1005, 1006 and 1015 are never sent.
pub fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
