//! HTTP/2 client codec (RFC 9113), sans-io like the HTTP/1.1 codec: `frame` turns bytes into
//! frames and frames into bytes, `hpack` wraps the HPACK crate for request and response header
//! blocks, and `Connection` is the client's state machine: requests in, frames out; frames in,
//! events out.
//!
//! It never touches a socket, a timer or a runtime: the caller writes what lands in its out
//! buffer, feeds what it read to `Connection::receive`, and maps `H2Error` to its own error kinds.
//! It refuses server push (we send `SETTINGS_ENABLE_PUSH = 0`), does not send PRIORITY and ignores
//! the priority fields it receives. Every limit is a named constant mapped to an `H2Error`.

mod connection;
pub mod frame;
pub mod hpack;
mod receive;
mod stream;

#[cfg(test)]
mod tests;

pub use connection::{Connection, ConnectionState, Event, StartError};
pub use hpack::{Fields, HeaderList, Request};
pub use stream::StreamId;

/// What a client sends first, before its SETTINGS (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Every frame starts with a 9-byte header (RFC 9113 §4.1).
pub const FRAME_HEADER_LEN: usize = 9;
/// The frame size every peer accepts, and the smallest SETTINGS_MAX_FRAME_SIZE allowed.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// The largest SETTINGS_MAX_FRAME_SIZE allowed; a larger value → `Protocol`.
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
/// Initial flow-control window of the connection and of every stream (RFC 9113 §6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;
/// Largest flow-control window; a WINDOW_UPDATE or SETTINGS past it → `FlowControl`.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;
/// HPACK dynamic table size both ends start with (RFC 9113 §6.5.2).
pub const DEFAULT_HEADER_TABLE_SIZE: u32 = 4096;
/// Largest encoded header block (HEADERS plus its CONTINUATIONs) we reassemble → `HeaderListTooLarge`.
/// Past it the HPACK state could not be kept in step, so it is a connection error.
pub const MAX_HEADER_BLOCK_BYTES: usize = 256 * 1024;
/// Highest stream id a client may open (ids are 31-bit and odd).
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// Error codes of RFC 9113 §7, as sent in RST_STREAM and GOAWAY.
pub mod code {
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const INTERNAL_ERROR: u32 = 0x2;
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub const SETTINGS_TIMEOUT: u32 = 0x4;
    pub const STREAM_CLOSED: u32 = 0x5;
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const CONNECT_ERROR: u32 = 0xa;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
    pub const INADEQUATE_SECURITY: u32 = 0xc;
    pub const HTTP_1_1_REQUIRED: u32 = 0xd;
}

/// Why a connection or a stream failed. Fieldless and `Copy`, so it maps straight to the engine's
/// error kinds (named in each variant's doc) and stays sticky in a closed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum H2Error {
    /// The peer broke RFC 9113: a frame on the wrong stream, a bad SETTINGS value, a malformed
    /// response, a push promise we refused. `h2_protocol`.
    #[error("the server broke the HTTP/2 protocol")]
    Protocol,
    /// A frame longer than our SETTINGS_MAX_FRAME_SIZE, or of the wrong length for its type.
    /// `h2_frame_size`.
    #[error("the server sent an HTTP/2 frame of a bad size")]
    FrameSize,
    /// The peer sent past a flow-control window or grew one past 2^31-1. `h2_flow_control`.
    #[error("the server broke HTTP/2 flow control")]
    FlowControl,
    /// A header block HPACK could not decode. `h2_protocol`.
    #[error("the server sent a header block HPACK cannot decode")]
    Compression,
    /// A header list past our SETTINGS_MAX_HEADER_LIST_SIZE, or a block past
    /// `MAX_HEADER_BLOCK_BYTES`. `head_too_large`.
    #[error("the server sent a header list larger than the limit")]
    HeaderListTooLarge,
    /// The server reset the stream (RST_STREAM other than REFUSED_STREAM). `h2_stream_reset`.
    #[error("the server reset the stream")]
    StreamReset,
    /// The server closed the connection with GOAWAY and an error code, or refused the stream
    /// (REFUSED_STREAM, or an id above GOAWAY's last stream id: safe to retry). `h2_goaway`.
    #[error("the server sent GOAWAY")]
    GoAway,
    /// The connection ended before the response was complete. `read`.
    #[error("the connection ended before the response was complete")]
    Truncated,
}

impl H2Error {
    /// The RFC 9113 error code we send in GOAWAY or RST_STREAM for this failure.
    pub fn code(self) -> u32 {
        match self {
            H2Error::Protocol => code::PROTOCOL_ERROR,
            H2Error::FrameSize => code::FRAME_SIZE_ERROR,
            H2Error::FlowControl => code::FLOW_CONTROL_ERROR,
            H2Error::Compression => code::COMPRESSION_ERROR,
            H2Error::HeaderListTooLarge => code::ENHANCE_YOUR_CALM,
            H2Error::StreamReset | H2Error::GoAway | H2Error::Truncated => code::CANCEL,
        }
    }
}

/// What we announce in our SETTINGS and enforce on what we receive. Built once per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Most streams we open at once, whatever the server allows: the size of the stream table.
    pub max_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: each stream's receive window (at least `DEFAULT_WINDOW`, so
    /// a server that sends before it sees our SETTINGS stays within it).
    pub stream_window: u32,
    /// The connection's receive window; grown from `DEFAULT_WINDOW` by a WINDOW_UPDATE at start.
    pub connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE: longest frame payload accepted → `FrameSize`.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: RFC size (name + value + 32 per field) → `HeaderListTooLarge`.
    pub max_header_list_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the server may make us keep.
    pub header_table_size: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_streams: 100,
            stream_window: 1 << 20,
            connection_window: 1 << 24,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 64 * 1024,
            header_table_size: DEFAULT_HEADER_TABLE_SIZE,
        }
    }
}

impl Settings {
    /// The same settings with every value brought within what RFC 9113 and this codec allow.
    pub fn clamped(self) -> Settings {
        Settings {
            max_streams: self.max_streams.clamp(1, 1 << 16),
            stream_window: self.stream_window.clamp(DEFAULT_WINDOW, MAX_WINDOW),
            connection_window: self.connection_window.clamp(DEFAULT_WINDOW, MAX_WINDOW),
            max_frame_size: self
                .max_frame_size
                .clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE),
            max_header_list_size: self.max_header_list_size.max(1024),
            header_table_size: self.header_table_size.min(1 << 16),
        }
    }
}
