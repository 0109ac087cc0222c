//! Frame encoding for the client side: every frame a client sends is masked with a fresh key
//! (RFC 6455 §5.3). Encoders append to the caller's buffer and allocate nothing beyond growing it.

use super::{close_code_allowed, MessageKind, WsError, MAX_CONTROL_PAYLOAD};

/// Longest close reason: a control payload holds the 2-byte code and at most 123 bytes of reason.
pub const MAX_CLOSE_REASON_BYTES: usize = MAX_CONTROL_PAYLOAD - 2;

/// A frame's opcode (RFC 6455 §5.2); other values are reserved and refused by the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

impl Opcode {
    /// The opcode for a 4-bit value, `None` if it is reserved.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented.
    pub fn is_control(self) -> bool {
        self as u8 & 0x8 != 0
    }
}

impl From<MessageKind> for Opcode {
    fn from(kind: MessageKind) -> Opcode {
        match kind {
            MessageKind::Text => Opcode::Text,
            MessageKind::Binary => Opcode::Binary,
        }
    }
}

/// Appends one frame: header, extended length in the fewest bytes, then the payload, masked with
/// `mask` when given (a client always gives one; `None` writes a server frame, for tests and
/// peers). No checks: control-frame rules are the callers' (`encode_ping` and friends check them).
pub fn encode_frame(
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    out: &mut Vec<u8>,
) {
    let len = payload.len();
    out.reserve(14 + len);
    out.push(u8::from(fin) << 7 | opcode as u8);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len <= MAX_CONTROL_PAYLOAD {
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let start = out.len();
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend_from_slice(payload);
            apply_mask(&mut out[start + 4..], key);
        }
        None => out.extend_from_slice(payload),
    }
}

/// XORs `buf` with the 4-byte `mask`, starting at mask byte 0; masking twice restores the bytes.
/// Works on 8-byte words so a large payload costs about a copy.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let [a, b, c, d] = mask;
    let word = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut words = buf.chunks_exact_mut(8);
    for chunk in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
    }
    // The tail starts at a multiple of 8, so mask byte 0 lines up with its first byte.
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Appends a data message as masked frames of at most `max_frame_payload` bytes each (0: one
/// frame), each with a fresh key from `rng`. A text message may be split inside a character:
/// receivers validate UTF-8 across fragments.
pub fn encode_message(
    kind: MessageKind,
    payload: &[u8],
    max_frame_payload: usize,
    rng: &mut fastrand::Rng,
    out: &mut Vec<u8>,
) {
    if max_frame_payload == 0 || payload.len() <= max_frame_payload {
        encode_frame(true, kind.into(), payload, Some(new_mask(rng)), out);
        return;
    }
    let frames = payload.len().div_ceil(max_frame_payload);
    out.reserve(payload.len() + frames * 14);
    let mut opcode = Opcode::from(kind);
    for (i, piece) in payload.chunks(max_frame_payload).enumerate() {
        encode_frame(i + 1 == frames, opcode, piece, Some(new_mask(rng)), out);
        opcode = Opcode::Continuation;
    }
}

/// Appends a masked ping; the payload is at most 125 bytes (`ControlTooLong` otherwise).
pub fn encode_ping(
    payload: &[u8],
    rng: &mut fastrand::Rng,
    out: &mut Vec<u8>,
) -> Result<(), WsError> {
    encode_control(Opcode::Ping, payload, rng, out)
}

/// Appends a masked pong, e.g. echoing a ping's payload (RFC 6455 §5.5.3).
pub fn encode_pong(
    payload: &[u8],
    rng: &mut fastrand::Rng,
    out: &mut Vec<u8>,
) -> Result<(), WsError> {
    encode_control(Opcode::Pong, payload, rng, out)
}

/// Appends a masked close frame: `None` sends no status, `Some((code, reason))` a code a peer may
/// send (`CloseCode` otherwise) and a reason of at most 123 bytes (`ControlTooLong` otherwise).
pub fn encode_close(
    status: Option<(u16, &str)>,
    rng: &mut fastrand::Rng,
    out: &mut Vec<u8>,
) -> Result<(), WsError> {
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    let len = match status {
        None => 0,
        Some((code, _)) if !close_code_allowed(code) => return Err(WsError::CloseCode(code)),
        Some((_, reason)) if reason.len() > MAX_CLOSE_REASON_BYTES => {
            return Err(WsError::ControlTooLong)
        }
        Some((code, reason)) => {
            payload[..2].copy_from_slice(&code.to_be_bytes());
            payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
            2 + reason.len()
        }
    };
    encode_frame(
        true,
        Opcode::Close,
        &payload[..len],
        Some(new_mask(rng)),
        out,
    );
    Ok(())
}

fn encode_control(
    opcode: Opcode,
    payload: &[u8],
    rng: &mut fastrand::Rng,
    out: &mut Vec<u8>,
) -> Result<(), WsError> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(WsError::ControlTooLong);
    }
    encode_frame(true, opcode, payload, Some(new_mask(rng)), out);
    Ok(())
}

/// A fresh masking key. fastrand is not a CSPRNG: the key only has to be unpredictable to
/// intermediaries (§10.3), and a load generator is not defending its own traffic.
fn new_mask(rng: &mut fastrand::Rng) -> [u8; 4] {
    rng.u32(..).to_ne_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unmasks a client frame the slow way, byte by byte, as a reference for `apply_mask`.
    fn unmask_bytewise(buf: &mut [u8], mask: [u8; 4]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }

    #[test]
    fn mask_matches_bytewise_for_every_length_and_is_an_involution() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40 {
            let original: Vec<u8> = (0..len as u8).collect();
            let mut fast = original.clone();
            apply_mask(&mut fast, mask);
            let mut slow = original.clone();
            unmask_bytewise(&mut slow, mask);
            assert_eq!(fast, slow, "length {len}");
            apply_mask(&mut fast, mask);
            assert_eq!(fast, original, "length {len}");
        }
    }

    #[test]
    fn header_uses_the_fewest_length_bytes() {
        // (payload length, header bytes before the mask key, second byte without the mask bit)
        for (len, header, b1) in [
            (0, 2, 0),
            (125, 2, 125),
            (126, 4, 126),
            (65535, 4, 126),
            (65536, 10, 127),
        ] {
            let mut out = Vec::new();
            encode_frame(
                true,
                Opcode::Binary,
                &vec![7u8; len],
                Some([1, 2, 3, 4]),
                &mut out,
            );
            assert_eq!(out.len(), header + 4 + len, "length {len}");
            assert_eq!(out[0], 0x82);
            assert_eq!(out[1], 0x80 | b1, "length {len}");
            let declared = match header {
                2 => u64::from(out[1] & 0x7f),
                4 => u64::from(u16::from_be_bytes([out[2], out[3]])),
                _ => u64::from_be_bytes(out[2..10].try_into().expect("8 bytes")),
            };
            assert_eq!(declared, len as u64);
            assert_eq!(&out[header..header + 4], &[1, 2, 3, 4]);
        }
    }

    #[test]
    fn messages_split_into_frames_with_fresh_masks() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut out = Vec::new();
        encode_message(MessageKind::Text, b"hello world", 4, &mut rng, &mut out);
        // 3 frames of 4, 4 and 3 bytes: text, continuation, continuation+fin.
        let firsts: Vec<u8> = [0, 10, 20].iter().map(|&i| out[i]).collect();
        assert_eq!(firsts, [0x01, 0x00, 0x80]);
        assert_eq!(out.len(), 3 * 6 + 11);
        let masks: Vec<&[u8]> = [2, 12, 22].iter().map(|&i| &out[i..i + 4]).collect();
        assert!(masks[0] != masks[1] && masks[1] != masks[2], "{masks:?}");

        out.clear();
        encode_message(MessageKind::Binary, b"", 4, &mut rng, &mut out);
        assert_eq!(
            (out[0], out[1], out.len()),
            (0x82, 0x80, 6),
            "empty: one frame"
        );
    }

    #[test]
    fn control_frames_are_checked() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut out = Vec::new();
        assert_eq!(
            encode_ping(&[0; 126], &mut rng, &mut out),
            Err(WsError::ControlTooLong)
        );
        assert_eq!(encode_pong(&[0; 125], &mut rng, &mut out), Ok(()));
        assert_eq!(
            encode_close(Some((1005, "")), &mut rng, &mut out),
            Err(WsError::CloseCode(1005))
        );
        let long = "x".repeat(MAX_CLOSE_REASON_BYTES + 1);
        assert_eq!(
            encode_close(Some((1000, &long)), &mut rng, &mut out),
            Err(WsError::ControlTooLong)
        );
        out.clear();
        assert_eq!(encode_close(None, &mut rng, &mut out), Ok(()));
        assert_eq!(out[..2], [0x88, 0x80], "no status: empty payload");
        out.clear();
        assert_eq!(
            encode_close(Some((1001, "bye")), &mut rng, &mut out),
            Ok(())
        );
        let mask: [u8; 4] = out[2..6].try_into().expect("4 bytes");
        let mut payload = out[6..].to_vec();
        apply_mask(&mut payload, mask);
        assert_eq!(
            (out[0], out[1], &payload[..]),
            (0x88, 0x85, &b"\x03\xe9bye"[..])
        );
    }
}
