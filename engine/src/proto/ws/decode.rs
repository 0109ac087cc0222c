//! Server frames in, messages out. A frame is decoded once it is whole in the caller's input (the
//! caller's buffer holds at most `max_frame_bytes` plus a header); an unfragmented message is then
//! reported as a slice of that input, and only fragments are copied, into one reassembly buffer
//! that keeps its capacity from message to message up to `KEEP_BYTES` (a larger message's room,
//! at most `max_message_bytes`, is given back on the next call).

use super::frame::Opcode;
use super::{
    close_code_allowed, MessageKind, WsError, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_MESSAGE_BYTES,
    KEEP_BYTES,
};

/// Sizes past which a stream is refused with `FrameTooLarge` / `MessageTooLarge`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of one frame.
    pub max_frame_bytes: usize,
    /// Largest payload of one message, all its fragments together.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Something the server sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole data message; text payloads are valid UTF-8. The slice is in the caller's input for
    /// an unfragmented message, in the decoder's reassembly buffer for a fragmented one.
    Message {
        kind: MessageKind,
        payload: &'a [u8],
        /// permessage-deflate: the payload is compressed (inflate it; text is validated as
        /// UTF-8 only once inflated). Never set unless `allow_compressed` was.
        compressed: bool,
    },
    /// Answer with a pong carrying the same payload (at most 125 bytes).
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// The server is closing; `code` is `None` when the frame carried no status. Nothing may follow.
    Close {
        code: Option<u16>,
        reason: &'a str,
    },
}

/// What one call to `decode` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Every whole frame in the input is consumed (fragments go to the reassembly buffer): drop
    /// `consumed` bytes and read more. `next_frame_len` is the size, header included, of the frame
    /// that starts at `consumed` once its header has arrived, so the caller can make room for it.
    Partial {
        consumed: usize,
        next_frame_len: Option<usize>,
    },
    /// `event` ends at `consumed`: handle it, drop those bytes, and call again with the rest.
    Event { consumed: usize, event: Event<'a> },
}

/// Where the decoder is between frames. Frames are only ever taken whole, so no state lives
/// inside one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// A fragmented text message is being reassembled; its first `utf8_checked` bytes are known
    /// to be valid (the rest is at most an incomplete character).
    FragmentedText {
        utf8_checked: usize,
    },
    FragmentedBinary,
    /// The close frame was received.
    Closed,
    /// Sticky: every later call reports the same failure.
    Failed(WsError),
}

/// A frame header (RFC 6455 §5.2) already checked against the limits.
struct Header {
    fin: bool,
    /// RSV1: a compressed message's first frame (permessage-deflate).
    rsv1: bool,
    opcode: Opcode,
    header_len: usize,
    payload_len: usize,
}

/// What `advance` found: an event borrowing the input, a message in the reassembly buffer, or
/// nothing yet.
enum Found<'a> {
    Event(Event<'a>),
    Assembled(MessageKind),
    Partial(Option<usize>),
}

/// Decodes the frames a server sends to a client into events; one decoder per connection.
#[derive(Debug)]
pub struct MessageDecoder {
    state: State,
    limits: Limits,
    assembly: Vec<u8>,
    /// permessage-deflate was agreed: RSV1 marks compressed messages.
    compressed_ok: bool,
    /// The message being reassembled is compressed.
    assembling_compressed: bool,
}

impl Default for MessageDecoder {
    fn default() -> Self {
        MessageDecoder::new(Limits::default())
    }
}

impl MessageDecoder {
    pub fn new(limits: Limits) -> Self {
        MessageDecoder {
            state: State::Open,
            limits,
            assembly: Vec::new(),
            compressed_ok: false,
            assembling_compressed: false,
        }
    }

    /// Prepares for a new connection, keeping the reassembly buffer's capacity. No extension
    /// is in force until `allow_compressed`.
    pub fn reset(&mut self) {
        self.state = State::Open;
        self.assembly.clear();
        self.compressed_ok = false;
        self.assembling_compressed = false;
    }

    /// The limits for the next connection (the engine's are configured per run).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// permessage-deflate was agreed in the handshake: a data message's first frame may have
    /// RSV1 set, and its event then says `compressed`.
    pub fn allow_compressed(&mut self, on: bool) {
        self.compressed_ok = on;
    }

    /// Feeds the caller's buffer, starting where the previous call's `consumed` ended. Gives the
    /// same events for any split of the byte stream. Errors are sticky.
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> Result<Decoded<'a>, WsError> {
        // A large message reassembled by the last call has been handled by now: give back its
        // room unless another is under way.
        let between = !matches!(
            self.state,
            State::FragmentedText { .. } | State::FragmentedBinary
        );
        if between && self.assembly.capacity() > KEEP_BYTES {
            self.assembly.clear();
            self.assembly.shrink_to(KEEP_BYTES);
        }
        let (consumed, found) = match self.advance(input) {
            Ok(step) => step,
            Err(e) => {
                self.state = State::Failed(e);
                return Err(e);
            }
        };
        Ok(match found {
            Found::Event(event) => Decoded::Event { consumed, event },
            Found::Assembled(kind) => Decoded::Event {
                consumed,
                event: Event::Message {
                    kind,
                    payload: &self.assembly,
                    compressed: self.assembling_compressed,
                },
            },
            Found::Partial(next_frame_len) => Decoded::Partial {
                consumed,
                next_frame_len,
            },
        })
    }

    /// True once the server's close frame has been decoded.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Bytes the decoder holds on to (its reassembly buffer's capacity), for memory accounting.
    pub fn buffered_capacity(&self) -> usize {
        self.assembly.capacity()
    }

    fn advance<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Found<'a>), WsError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                State::Failed(e) => return Err(e),
                State::Closed if !rest.is_empty() => return Err(WsError::FrameAfterClose),
                _ => {}
            }
            let Some(h) = parse_header(rest, &self.limits, self.compressed_ok)? else {
                return Ok((pos, Found::Partial(None)));
            };
            self.check_sequence(&h)?;
            let frame_len = h
                .header_len
                .checked_add(h.payload_len)
                .ok_or(WsError::FrameTooLarge)?;
            if rest.len() < frame_len {
                return Ok((pos, Found::Partial(Some(frame_len))));
            }
            let payload = &rest[h.header_len..frame_len];
            pos += frame_len;
            let event = match (h.opcode, h.fin) {
                // Compressed text is validated once inflated, by the caller.
                (Opcode::Text, true) if h.rsv1 => message(MessageKind::Text, payload, true),
                (Opcode::Text, true) => {
                    std::str::from_utf8(payload).map_err(|_| WsError::InvalidUtf8)?;
                    message(MessageKind::Text, payload, false)
                }
                (Opcode::Binary, true) => message(MessageKind::Binary, payload, h.rsv1),
                (Opcode::Text | Opcode::Binary | Opcode::Continuation, _) => {
                    if h.opcode != Opcode::Continuation {
                        self.assembling_compressed = h.rsv1;
                    }
                    match self.reassemble(h.opcode, h.fin, payload)? {
                        Some(kind) => return Ok((pos, Found::Assembled(kind))),
                        None => continue,
                    }
                }
                (Opcode::Ping, _) => Event::Ping(payload),
                (Opcode::Pong, _) => Event::Pong(payload),
                (Opcode::Close, _) => {
                    let close = parse_close(payload)?;
                    self.state = State::Closed;
                    close
                }
            };
            return Ok((pos, Found::Event(event)));
        }
    }

    /// Refuses a frame that cannot come next, as soon as its header is known.
    fn check_sequence(&self, h: &Header) -> Result<(), WsError> {
        let fragmented = matches!(
            self.state,
            State::FragmentedText { .. } | State::FragmentedBinary
        );
        match h.opcode {
            Opcode::Continuation if !fragmented => Err(WsError::UnexpectedContinuation),
            Opcode::Text | Opcode::Binary if fragmented => Err(WsError::UnfinishedMessage),
            Opcode::Continuation | Opcode::Text | Opcode::Binary => {
                let so_far = if fragmented { self.assembly.len() } else { 0 };
                if h.payload_len > self.limits.max_message_bytes - so_far {
                    return Err(WsError::MessageTooLarge);
                }
                Ok(())
            }
            Opcode::Ping | Opcode::Pong | Opcode::Close => Ok(()),
        }
    }

    /// Appends one fragment (sequence and size already checked). Returns the message kind when
    /// this fragment finished the message.
    fn reassemble(
        &mut self,
        opcode: Opcode,
        fin: bool,
        payload: &[u8],
    ) -> Result<Option<MessageKind>, WsError> {
        let kind = match (opcode, self.state) {
            (Opcode::Text, _) => {
                self.assembly.clear();
                self.state = State::FragmentedText { utf8_checked: 0 };
                MessageKind::Text
            }
            (Opcode::Binary, _) => {
                self.assembly.clear();
                self.state = State::FragmentedBinary;
                MessageKind::Binary
            }
            (_, State::FragmentedText { .. }) => MessageKind::Text,
            _ => MessageKind::Binary,
        };
        self.append(payload);
        if let (State::FragmentedText { utf8_checked }, false) =
            (self.state, self.assembling_compressed)
        {
            let utf8_checked = check_utf8(&self.assembly, utf8_checked, fin)?;
            self.state = State::FragmentedText { utf8_checked };
        }
        if !fin {
            return Ok(None);
        }
        self.state = State::Open;
        Ok(Some(kind))
    }

    /// Appends to the reassembly buffer, growing it by doubling but never past the message limit.
    fn append(&mut self, payload: &[u8]) {
        let needed = self.assembly.len() + payload.len();
        if needed > self.assembly.capacity() {
            let target = needed
                .max(self.assembly.capacity() * 2)
                .min(self.limits.max_message_bytes.max(needed));
            self.assembly.reserve_exact(target - self.assembly.len());
        }
        self.assembly.extend_from_slice(payload);
    }
}

fn message(kind: MessageKind, payload: &[u8], compressed: bool) -> Event<'_> {
    Event::Message {
        kind,
        payload,
        compressed,
    }
}

/// Parses and checks a frame header at the front of `input`; `None` while it is incomplete. What
/// is wrong with a frame is reported from its first bytes, before the rest arrives.
fn parse_header(
    input: &[u8],
    limits: &Limits,
    compressed_ok: bool,
) -> Result<Option<Header>, WsError> {
    let Some(&b0) = input.first() else {
        return Ok(None);
    };
    let opcode = Opcode::from_bits(b0 & 0x0f).ok_or(WsError::UnknownOpcode(b0 & 0x0f))?;
    // RSV1 only on a data message's first frame, and only with permessage-deflate agreed.
    let rsv1 = b0 & 0x40 != 0;
    let rsv1_ok = compressed_ok && matches!(opcode, Opcode::Text | Opcode::Binary);
    if b0 & 0x30 != 0 || (rsv1 && !rsv1_ok) {
        return Err(WsError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    if opcode.is_control() && !fin {
        return Err(WsError::ControlFragmented);
    }
    let Some(&b1) = input.get(1) else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err(WsError::MaskedFrame);
    }
    let short_len = b1 & 0x7f;
    if opcode.is_control() && usize::from(short_len) > super::MAX_CONTROL_PAYLOAD {
        return Err(WsError::ControlTooLong);
    }
    let (payload_len, header_len) = match short_len {
        126 => {
            let Some(&[a, b]) = input.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([a, b])), 4)
        }
        127 => {
            let Some(bytes) = input.get(2..10) else {
                return Ok(None);
            };
            let mut be = [0u8; 8];
            be.copy_from_slice(bytes);
            let n = u64::from_be_bytes(be);
            if n >> 63 != 0 {
                return Err(WsError::BadLength);
            }
            (n, 10)
        }
        n => (u64::from(n), 2),
    };
    let payload_len = usize::try_from(payload_len)
        .ok()
        .filter(|&n| n <= limits.max_frame_bytes)
        .ok_or(WsError::FrameTooLarge)?;
    Ok(Some(Header {
        fin,
        rsv1,
        opcode,
        header_len,
        payload_len,
    }))
}

/// A close payload: empty, or a 2-byte status code that a peer may send and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Event<'_>, WsError> {
    let (code, reason) = match payload {
        [] => (None, ""),
        [_] => return Err(WsError::CloseTooShort),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_allowed(code) {
                return Err(WsError::CloseCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
            (Some(code), reason)
        }
    };
    Ok(Event::Close { code, reason })
}

/// Validates `bytes[from..]` as UTF-8 and returns how far it is known valid. Unless the message is
/// `complete`, an unfinished character at the end waits for the next fragment.
fn check_utf8(bytes: &[u8], from: usize, complete: bool) -> Result<usize, WsError> {
    match std::str::from_utf8(&bytes[from..]) {
        Ok(_) => Ok(bytes.len()),
        Err(e) if !complete && e.error_len().is_none() => Ok(from + e.valid_up_to()),
        Err(_) => Err(WsError::InvalidUtf8),
    }
}
