//! Fuzzes the WebSocket client codec with a connection's buffer discipline: the handshake check
//! when the stream starts with a response head, then `MessageDecoder` on the frames, fed whole
//! and in pieces. Both feeds must agree, and memory must stay within the limits. The first byte
//! picks the split pattern (low 6 bits: piece size, 0 → single bytes; bit 6: sizes vary around
//! it) and bit 7 says a handshake response comes first. An input of odd length decodes as if
//! permessage-deflate was agreed (RSV1 allowed on a message's first frame; such text is not
//! UTF-8-checked until inflated, which is not the decoder's job).
#![no_main]

use engine::proto::ws::{
    check_handshake_response, Decoded, Event, Handshake, Limits, MessageDecoder, MessageKind,
    WsError,
};
use libfuzzer_sys::fuzz_target;

/// The RFC 6455 example key; seeds answer it with its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const OFFERED: [&str; 2] = ["chat", "superchat"];
/// Small limits so that inputs of a few KiB reach them.
const LIMITS: Limits = Limits {
    max_frame_bytes: 1024,
    max_message_bytes: 4096,
};
/// Largest frame header: 2 bytes, an 8-byte length (a server frame has no mask key).
const MAX_HEADER: usize = 10;

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Message(MessageKind, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

/// What a stream came to: the handshake's outcome, the events, and the failure if any.
type Outcome = (
    Option<Result<Handshake, WsError>>,
    Vec<Seen>,
    Option<WsError>,
);

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let handshake = control & 0x80 != 0;
    let compressed_ok = data.len() % 2 == 1;
    let whole = run(stream, &[stream.len()], handshake, compressed_ok);
    let base = usize::from(control & 0x3f).max(1);
    let sizes: Vec<usize> = if control & 0x40 == 0 {
        vec![base]
    } else {
        (1..=7).map(|k| base * k % 13 + 1).collect()
    };
    let split = run(stream, &sizes, handshake, compressed_ok);
    assert_eq!(whole, split, "outcome depends on how the stream was split");
});

/// Feeds `stream` in pieces of the cycling `sizes` like a connection would.
fn run(stream: &[u8], sizes: &[usize], handshake: bool, compressed_ok: bool) -> Outcome {
    let mut buf = Vec::new();
    let mut pieces = sizes.iter().cycle();
    let mut fed = 0;
    let mut feed = |buf: &mut Vec<u8>| -> bool {
        if fed == stream.len() {
            return false;
        }
        let size = pieces.next().copied().unwrap_or(1).max(1);
        let end = (fed + size).min(stream.len());
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        true
    };

    let mut head = None;
    if handshake {
        loop {
            let more = feed(&mut buf);
            match check_handshake_response(&buf, KEY, &OFFERED) {
                Ok(Handshake::Partial) if more => continue,
                Ok(
                    accepted @ Handshake::Accepted {
                        head_len,
                        subprotocol,
                    },
                ) => {
                    assert!(head_len <= buf.len());
                    assert!(subprotocol.is_none_or(|i| i < OFFERED.len()));
                    buf.drain(..head_len);
                    head = Some(Ok(accepted));
                    break;
                }
                other => return (Some(other), Vec::new(), None),
            }
        }
    }

    let mut dec = MessageDecoder::new(LIMITS);
    dec.allow_compressed(compressed_ok);
    let mut seen = Vec::new();
    loop {
        let (consumed, event) = match dec.decode(&buf) {
            Err(e) => return (head, seen, Some(e)),
            Ok(Decoded::Event { consumed, event }) => (consumed, Some(own(event, compressed_ok))),
            Ok(Decoded::Partial {
                consumed,
                next_frame_len,
            }) => {
                let left = buf.len() - consumed;
                assert!(
                    left < MAX_HEADER + LIMITS.max_frame_bytes,
                    "the caller buffers at most one frame"
                );
                assert!(next_frame_len
                    .is_none_or(|n| n > left && n <= MAX_HEADER + LIMITS.max_frame_bytes));
                (consumed, None)
            }
        };
        assert!(consumed <= buf.len(), "consumed past the input");
        assert!(
            dec.buffered_capacity() <= LIMITS.max_message_bytes,
            "reassembly past the limit"
        );
        buf.drain(..consumed);
        match event {
            Some(e) => seen.push(e),
            None if feed(&mut buf) => {}
            None => return (head, seen, None),
        }
    }
}

fn own(event: Event<'_>, compressed_ok: bool) -> Seen {
    match event {
        Event::Message {
            kind,
            payload,
            compressed,
        } => {
            assert!(payload.len() <= LIMITS.max_message_bytes);
            assert!(compressed_ok || !compressed, "RSV1 accepted without deflate");
            if kind == MessageKind::Text && !compressed {
                assert!(std::str::from_utf8(payload).is_ok(), "text is valid UTF-8");
            }
            Seen::Message(kind, payload.to_vec())
        }
        Event::Ping(p) => Seen::Ping(p.to_vec()),
        Event::Pong(p) => Seen::Pong(p.to_vec()),
        Event::Close { code, reason } => Seen::Close(code, reason.to_string()),
    }
}
