//! Codec-level tests: round trips, every split point, each protocol violation, a differential
//! against tungstenite on random frame streams, and a real tungstenite server on loopback.

use std::io::{Cursor, Read, Write};

use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::Message;

use super::*;

/// An event, owned, so a test can keep it after the input is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Message(MessageKind, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

fn own(event: Event<'_>) -> Seen {
    match event {
        Event::Message { kind, payload, .. } => Seen::Message(kind, payload.to_vec()),
        Event::Ping(p) => Seen::Ping(p.to_vec()),
        Event::Pong(p) => Seen::Pong(p.to_vec()),
        Event::Close { code, reason } => Seen::Close(code, reason.to_string()),
    }
}

/// What a stream decodes to: the events, the failure if any, and bytes left undecoded (0 after a
/// failure, whose timing depends on the split).
type Outcome = (Vec<Seen>, Option<WsError>, usize);

/// Feeds `pieces` with a connection's buffer discipline: append a piece, decode until `Partial`,
/// drop what was consumed. Checks `next_frame_len` against what is left.
fn drive(pieces: &[&[u8]], limits: Limits) -> Outcome {
    let mut dec = MessageDecoder::new(limits);
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let (consumed, event) = match dec.decode(&buf) {
                Err(e) => return (seen, Some(e), 0),
                Ok(Decoded::Event { consumed, event }) => (consumed, Some(own(event))),
                Ok(Decoded::Partial {
                    consumed,
                    next_frame_len,
                }) => {
                    let left = buf.len() - consumed;
                    assert!(
                        next_frame_len.is_none_or(|n| n > left),
                        "{next_frame_len:?} {left}"
                    );
                    (consumed, None)
                }
            };
            assert!(consumed <= buf.len());
            buf.drain(..consumed);
            match event {
                Some(e) => seen.push(e),
                None => break,
            }
        }
        assert!(dec.buffered_capacity() <= limits.max_message_bytes);
    }
    (seen, None, buf.len())
}

/// Decodes `input` whole, in two and three pieces at every split, and byte by byte; all must agree.
fn drive_every_split(input: &[u8], limits: Limits) -> Outcome {
    let whole = drive(&[input], limits);
    for at in 0..=input.len() {
        let (a, rest) = input.split_at(at);
        assert_eq!(drive(&[a, rest], limits), whole, "split at {at}");
        let (b, c) = rest.split_at(rest.len() / 2);
        assert_eq!(
            drive(&[a, b, c], limits),
            whole,
            "split at {at} and half the rest"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(drive(&bytes, limits), whole, "byte by byte");
    whole
}

/// A server frame (unmasked).
fn server(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(fin, opcode, payload, None, &mut out);
    out
}

/// Rewrites masked client frames as the unmasked frames a server would send, so the client-side
/// decoder can read what the encoder wrote.
fn unmask_stream(mut input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while !input.is_empty() {
        assert_eq!(input[1] & 0x80, 0x80, "every client frame is masked");
        let (len, at) = match input[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([input[2], input[3]])), 4),
            127 => (
                u64::from_be_bytes(input[2..10].try_into().expect("8")) as usize,
                10,
            ),
            n => (usize::from(n), 2),
        };
        let mask: [u8; 4] = input[at..at + 4].try_into().expect("4");
        let mut payload = input[at + 4..at + 4 + len].to_vec();
        apply_mask(&mut payload, mask);
        let opcode = Opcode::from_bits(input[0] & 0x0f).expect("known opcode");
        encode_frame(input[0] & 0x80 != 0, opcode, &payload, None, &mut out);
        input = &input[at + 4 + len..];
    }
    out
}

#[test]
fn every_length_class_round_trips_through_masking() {
    let mut rng = fastrand::Rng::with_seed(11);
    for len in [0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70001] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        for (kind, max_frame) in [(MessageKind::Binary, 0), (MessageKind::Binary, 1000)] {
            let mut out = Vec::new();
            encode_message(kind, &payload, max_frame, &mut rng, &mut out);
            if len >= 64 {
                assert!(
                    !out.windows(64).any(|w| w == &payload[..64]),
                    "the payload is masked"
                );
            }
            let decoded = drive(&[&unmask_stream(&out)], Limits::default());
            assert_eq!(
                decoded,
                (vec![Seen::Message(kind, payload.clone())], None, 0),
                "length {len}"
            );
        }
    }
}

#[test]
fn a_stream_decodes_identically_at_every_split() {
    let mut input = Vec::new();
    input.extend(server(true, Opcode::Text, "héllo".as_bytes()));
    input.extend(server(true, Opcode::Binary, &[0, 1, 2]));
    input.extend(server(true, Opcode::Text, b""));
    // "añb€" fragmented inside both multi-byte characters, a ping and a pong between fragments.
    let text = "añb€".as_bytes();
    input.extend(server(false, Opcode::Text, &text[..2]));
    input.extend(server(true, Opcode::Ping, b"p1"));
    input.extend(server(false, Opcode::Continuation, &text[2..5]));
    input.extend(server(true, Opcode::Pong, b""));
    input.extend(server(true, Opcode::Continuation, &text[5..]));
    input.extend(server(false, Opcode::Binary, &[9; 130]));
    input.extend(server(false, Opcode::Continuation, b""));
    input.extend(server(true, Opcode::Continuation, &[8; 3]));
    input.extend(server(true, Opcode::Close, b"\x03\xe8bye"));
    let outcome = drive_every_split(&input, Limits::default());
    let mut binary = vec![9; 130];
    binary.extend([8; 3]);
    assert_eq!(
        outcome,
        (
            vec![
                Seen::Message(MessageKind::Text, "héllo".into()),
                Seen::Message(MessageKind::Binary, vec![0, 1, 2]),
                Seen::Message(MessageKind::Text, vec![]),
                Seen::Ping(b"p1".to_vec()),
                Seen::Pong(vec![]),
                Seen::Message(MessageKind::Text, text.to_vec()),
                Seen::Message(MessageKind::Binary, binary),
                Seen::Close(Some(1000), "bye".into()),
            ],
            None,
            0
        )
    );
}

#[test]
fn unfragmented_messages_are_slices_of_the_input_and_partial_consumes_fragments() {
    let mut dec = MessageDecoder::default();
    let input = [
        server(true, Opcode::Binary, b"abc"),
        server(true, Opcode::Ping, b""),
    ]
    .concat();
    match dec.decode(&input) {
        Ok(Decoded::Event {
            consumed: 5,
            event: Event::Message { payload, .. },
        }) => {
            assert_eq!(payload.as_ptr(), input[2..].as_ptr(), "no copy");
        }
        other => panic!("{other:?}"),
    }
    let frag = server(false, Opcode::Text, b"ab");
    let next = server(true, Opcode::Continuation, b"cd");
    let input = [&frag[..], &next[..3]].concat();
    assert_eq!(
        dec.decode(&input),
        Ok(Decoded::Partial {
            consumed: 4,
            next_frame_len: Some(4)
        }),
        "the fragment is taken, the cut frame announces its size"
    );
    assert_eq!(
        dec.decode(&next),
        Ok(Decoded::Event {
            consumed: 4,
            event: Event::Message {
                kind: MessageKind::Text,
                payload: b"abcd",
                compressed: false,
            }
        })
    );
    assert_eq!(
        dec.decode(&[]),
        Ok(Decoded::Partial {
            consumed: 0,
            next_frame_len: None
        })
    );
}

#[test]
fn each_violation_gives_its_error_at_every_split() {
    use WsError::*;
    let ok = server(true, Opcode::Text, b"ok");
    let big = |n: usize| server(true, Opcode::Binary, &vec![0; n]);
    let limits = Limits {
        max_frame_bytes: 300,
        max_message_bytes: 500,
    };
    let cases: Vec<(&str, Vec<u8>, WsError)> = vec![
        ("rsv1", vec![0xc1, 0x00], ReservedBits),
        ("rsv3", vec![0x92, 0x00], ReservedBits),
        ("opcode 3", vec![0x83, 0x00], UnknownOpcode(3)),
        ("opcode 0xb", vec![0x8b, 0x00], UnknownOpcode(0xb)),
        ("masked", vec![0x81, 0x82, 1, 2, 3, 4, 0, 0], MaskedFrame),
        (
            "64-bit length msb",
            [&[0x82, 127, 0x80][..], &[0; 7]].concat(),
            BadLength,
        ),
        (
            "ping of 126",
            server(true, Opcode::Ping, &[0; 126]),
            ControlTooLong,
        ),
        ("fragmented ping", vec![0x09, 0x00], ControlFragmented),
        ("fragmented close", vec![0x08, 0x00], ControlFragmented),
        (
            "continuation first",
            server(true, Opcode::Continuation, b"x"),
            UnexpectedContinuation,
        ),
        (
            "text inside fragments",
            [
                server(false, Opcode::Text, b"a"),
                server(true, Opcode::Text, b"b"),
            ]
            .concat(),
            UnfinishedMessage,
        ),
        (
            "binary inside fragments",
            [
                server(false, Opcode::Binary, b"a"),
                server(true, Opcode::Binary, b"b"),
            ]
            .concat(),
            UnfinishedMessage,
        ),
        (
            "continuation after the end",
            [
                server(false, Opcode::Text, b"a"),
                server(true, Opcode::Continuation, b"b"),
                server(true, Opcode::Continuation, b"c"),
            ]
            .concat(),
            UnexpectedContinuation,
        ),
        (
            "close of one byte",
            server(true, Opcode::Close, b"\x03"),
            CloseTooShort,
        ),
        (
            "close code 1005",
            server(true, Opcode::Close, b"\x03\xed"),
            CloseCode(1005),
        ),
        (
            "close code 999",
            server(true, Opcode::Close, b"\x03\xe7"),
            CloseCode(999),
        ),
        (
            "close code 1004",
            server(true, Opcode::Close, b"\x03\xec"),
            CloseCode(1004),
        ),
        (
            "close code 2999",
            server(true, Opcode::Close, b"\x0b\xb7"),
            CloseCode(2999),
        ),
        (
            "close code 5000",
            server(true, Opcode::Close, b"\x13\x88"),
            CloseCode(5000),
        ),
        (
            "close reason not utf-8",
            server(true, Opcode::Close, b"\x03\xe8\xff"),
            InvalidUtf8,
        ),
        (
            "frame after close",
            [server(true, Opcode::Close, b""), ok.clone()].concat(),
            FrameAfterClose,
        ),
        (
            "text not utf-8",
            server(true, Opcode::Text, b"a\xffb"),
            InvalidUtf8,
        ),
        (
            "text cut inside a character",
            server(true, Opcode::Text, "€".as_bytes().split_at(2).0),
            InvalidUtf8,
        ),
        (
            "fragments end inside a character",
            [
                server(false, Opcode::Text, b"a\xe2\x82"),
                server(true, Opcode::Continuation, b""),
            ]
            .concat(),
            InvalidUtf8,
        ),
        (
            "surrogate in a later fragment",
            [
                server(false, Opcode::Text, b"a"),
                server(false, Opcode::Continuation, b"\xed\xa0\x80"),
            ]
            .concat(),
            InvalidUtf8,
        ),
        ("frame over the limit", big(301), FrameTooLarge),
        (
            "frame over the limit, 64-bit length",
            [&[0x82, 127][..], &(1u64 << 40).to_be_bytes()[..]].concat(),
            FrameTooLarge,
        ),
        (
            "fragments over the message limit",
            [
                server(false, Opcode::Binary, &[0; 300]),
                server(false, Opcode::Continuation, &[0; 200]),
                server(true, Opcode::Continuation, &[0; 1]),
            ]
            .concat(),
            MessageTooLarge,
        ),
    ];
    for (name, input, want) in cases {
        let stream = [&ok[..], &input[..]].concat();
        let (seen, err, _) = drive_every_split(&stream, limits);
        assert_eq!(err, Some(want), "{name}");
        assert_eq!(
            seen.first(),
            Some(&Seen::Message(MessageKind::Text, b"ok".to_vec())),
            "{name}"
        );
        assert!(err.is_some_and(|e| e.close_code().is_some()), "{name}");
    }
    // The violation is reported from the header alone, before the payload arrives.
    let mut dec = MessageDecoder::new(limits);
    assert_eq!(dec.decode(&big(400)[..4]), Err(FrameTooLarge));
    assert_eq!(dec.decode(&ok), Err(FrameTooLarge), "errors are sticky");
    let mut dec = MessageDecoder::default();
    assert_eq!(dec.decode(&[0x81, 0xfe]), Err(MaskedFrame));
}

#[test]
fn limits_are_inclusive_and_the_reassembly_buffer_is_reused() {
    let limits = Limits {
        max_frame_bytes: 300,
        max_message_bytes: 500,
    };
    let at_limit = [
        server(false, Opcode::Binary, &[1; 300]),
        server(true, Opcode::Continuation, &[2; 200]),
    ]
    .concat();
    let (seen, err, _) = drive(&[&at_limit], limits);
    assert_eq!((seen.len(), err), (1, None));

    let mut dec = MessageDecoder::new(limits);
    let mut capacities = Vec::new();
    for _ in 0..5 {
        assert!(matches!(dec.decode(&at_limit), Ok(Decoded::Event { .. })));
        capacities.push(dec.buffered_capacity());
    }
    assert!(
        capacities.iter().all(|&c| c == capacities[0] && c <= 500),
        "{capacities:?}"
    );
    dec.reset();
    assert_eq!(
        dec.buffered_capacity(),
        capacities[0],
        "reset keeps the buffer"
    );
}

/// A message reassembled past `KEEP_BYTES` gives its room back on the next call (unless another
/// is being reassembled); smaller ones keep reusing theirs.
#[test]
fn the_reassembly_buffer_shrinks_back_after_a_large_message() {
    let limits = Limits {
        max_frame_bytes: 1 << 20,
        max_message_bytes: 1 << 20,
    };
    let big = [
        server(false, Opcode::Binary, &vec![1; 300 << 10]),
        server(true, Opcode::Continuation, &vec![2; 300 << 10]),
    ]
    .concat();
    let small = [
        server(false, Opcode::Text, b"he"),
        server(true, Opcode::Continuation, b"llo"),
    ]
    .concat();
    let mut dec = MessageDecoder::new(limits);
    assert!(matches!(dec.decode(&big), Ok(Decoded::Event { .. })));
    assert!(dec.buffered_capacity() >= 600 << 10);
    // The first fragment of the next large message: the buffer is in use, kept.
    let half = &big[..big.len() / 2];
    assert!(matches!(dec.decode(half), Ok(Decoded::Partial { .. })));
    assert!(dec.buffered_capacity() >= 300 << 10);
    dec.reset();
    assert!(matches!(dec.decode(&small), Ok(Decoded::Event { .. })));
    let kept = dec.buffered_capacity();
    assert!(kept <= KEEP_BYTES, "{kept}");
    for _ in 0..3 {
        assert!(matches!(dec.decode(&small), Ok(Decoded::Event { .. })));
        assert_eq!(
            dec.buffered_capacity(),
            kept,
            "small messages reuse the buffer"
        );
    }
}

#[test]
fn errors_map_to_stable_kinds() {
    assert_eq!(
        WsError::HandshakeStatus(404).kind_name(),
        "ws_handshake_status"
    );
    assert_eq!(WsError::HandshakeAccept.kind_name(), "ws_handshake");
    assert_eq!(WsError::MaskedFrame.kind_name(), "ws_protocol");
    assert_eq!(WsError::InvalidUtf8.kind_name(), "ws_utf8");
    assert_eq!(WsError::MessageTooLarge.kind_name(), "ws_too_large");
    assert_eq!(
        [
            WsError::HandshakeAccept,
            WsError::ControlTooLong,
            WsError::InvalidUtf8,
            WsError::FrameTooLarge
        ]
        .map(|e| e.close_code()),
        [None, Some(1002), Some(1007), Some(1009)]
    );
}

/// An in-memory byte stream for tungstenite: reads `input`, collects what it writes.
struct Memory {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Memory {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Memory {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// tungstenite's reading of the same stream, as client (`Role::Client`) or server.
fn tungstenite_reads(input: &[u8], role: Role, limits: Limits) -> (Vec<Seen>, bool) {
    let memory = Memory {
        input: Cursor::new(input.to_vec()),
        output: Vec::new(),
    };
    let config = WebSocketConfig::default()
        .max_frame_size(Some(limits.max_frame_bytes))
        .max_message_size(Some(limits.max_message_bytes));
    let mut ws = tungstenite::WebSocket::from_raw_socket(memory, role, Some(config));
    let mut seen = Vec::new();
    loop {
        let event = match ws.read() {
            Ok(Message::Text(t)) => Seen::Message(MessageKind::Text, t.as_bytes().to_vec()),
            Ok(Message::Binary(b)) => Seen::Message(MessageKind::Binary, b.to_vec()),
            Ok(Message::Ping(p)) => Seen::Ping(p.to_vec()),
            Ok(Message::Pong(p)) => Seen::Pong(p.to_vec()),
            Ok(Message::Close(c)) => Seen::Close(
                c.as_ref().map(|c| c.code.into()),
                c.map(|c| c.reason.to_string()).unwrap_or_default(),
            ),
            Ok(Message::Frame(_)) => unreachable!("never read"),
            // The end of the input, after a close or not: no protocol error.
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)
            | Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => return (seen, false),
            Err(_) => return (seen, true),
        };
        seen.push(event);
    }
}

/// A random server frame stream: valid messages of every shape, control frames between
/// fragments, and now and then one violation. Close codes avoid those tungstenite rewrites
/// instead of refusing (1014 and the reserved ranges; covered by the table test).
fn random_stream(rng: &mut fastrand::Rng) -> Vec<u8> {
    const LENS: [usize; 10] = [0, 1, 5, 125, 126, 127, 300, 65535, 65536, 70000];
    let text = |rng: &mut fastrand::Rng, n: usize| -> Vec<u8> {
        let pool = ["a", "é", "€", "𝄞", " ", "z"];
        let mut s = String::new();
        while s.len() < n {
            s.push_str(pool[rng.usize(..pool.len())]);
        }
        s.into_bytes()
    };
    let len = |rng: &mut fastrand::Rng| {
        if rng.u8(..8) == 0 {
            LENS[rng.usize(..LENS.len())]
        } else {
            rng.usize(..40)
        }
    };
    let mut out = Vec::new();
    for _ in 0..rng.usize(1..8) {
        match rng.u8(..12) {
            0..=2 => {
                let n = len(rng);
                out.extend(server(true, Opcode::Text, &text(rng, n)));
            }
            3..=4 => {
                let n = len(rng);
                out.extend(server(true, Opcode::Binary, &vec![rng.u8(..); n]));
            }
            5..=7 => {
                let (opcode, n) = (
                    if rng.bool() {
                        Opcode::Text
                    } else {
                        Opcode::Binary
                    },
                    len(rng),
                );
                let body = if opcode == Opcode::Text {
                    text(rng, n)
                } else {
                    vec![7; n]
                };
                let mut cuts: Vec<usize> = (0..rng.usize(0..4))
                    .map(|_| rng.usize(..=body.len()))
                    .collect();
                cuts.sort_unstable();
                let mut from = 0;
                let mut first = opcode;
                for cut in cuts {
                    out.extend(server(false, first, &body[from..cut]));
                    if rng.u8(..3) == 0 {
                        out.extend(server(true, Opcode::Ping, b"mid"));
                    }
                    first = Opcode::Continuation;
                    from = cut;
                }
                out.extend(server(true, first, &body[from..]));
            }
            8 => out.extend(server(true, Opcode::Ping, &vec![1; rng.usize(..=125)])),
            9 => out.extend(server(true, Opcode::Pong, &vec![2; rng.usize(..=125)])),
            10 => {
                let codes: [u16; 8] = [1000, 1001, 1003, 1007, 1011, 1013, 3000, 4999];
                let mut p = codes[rng.usize(..codes.len())].to_be_bytes().to_vec();
                let n = rng.usize(..20);
                p.extend(text(rng, n));
                out.extend(server(
                    true,
                    Opcode::Close,
                    if rng.bool() { &p } else { &[] },
                ));
            }
            _ => {
                // Whole frames only: tungstenite checks some rules after reading the payload.
                let long_ping = server(true, Opcode::Ping, &[0; 126]);
                let bad: [&[u8]; 10] = [
                    &[0xc1, 0x00],
                    &[0x83, 0x00],
                    &[0x81, 0x81, 0, 0, 0, 0, b'a'],
                    &[0x09, 0x00],
                    &[0x80, 0x01, b'a'],
                    &[0x81, 0x01, 0xff],
                    &[0x88, 0x01, 0x03],
                    &long_ping,
                    &[0x01, 0x01, b'a', 0x82, 0x00],
                    &[0x01, 0x02, 0xe2, 0x82, 0x80, 0x01, b'a'],
                ];
                out.extend_from_slice(bad[rng.usize(..bad.len())]);
            }
        }
    }
    out
}

#[test]
fn decoder_agrees_with_tungstenite_on_random_streams() {
    let mut rng = fastrand::Rng::with_seed(6455);
    let limits = Limits {
        max_frame_bytes: 70_000,
        max_message_bytes: 100_000,
    };
    let (mut errors, mut events) = (0, 0);
    for i in 0..1500 {
        let stream = random_stream(&mut rng);
        let (ours, err, left) = drive(&[&stream], limits);
        let (theirs, failed) = tungstenite_reads(&stream, Role::Client, limits);
        assert_eq!(
            (&ours, err.is_some()),
            (&theirs, failed),
            "stream {i}: {err:?}"
        );
        if err.is_none() {
            assert_eq!(left, 0, "stream {i}: whole frames only");
        }
        errors += usize::from(failed);
        events += ours.len();
        // A split in the middle decodes the same.
        let at = rng.usize(..=stream.len());
        assert_eq!(
            drive(&[&stream[..at], &stream[at..]], limits),
            (ours, err, left),
            "stream {i} split at {at}"
        );
    }
    assert!(
        errors > 100 && events > 3000,
        "the generator covers both: {errors} errors, {events} events"
    );
}

#[test]
fn encoder_output_is_read_by_tungstenite_as_sent() {
    let mut rng = fastrand::Rng::with_seed(17);
    let mut out = Vec::new();
    let mut sent = Vec::new();
    for len in [0, 3, 125, 126, 65535, 65536, 100_000] {
        let text: String = "añ€𝄞".chars().cycle().take(len).collect();
        encode_message(MessageKind::Text, text.as_bytes(), 7, &mut rng, &mut out);
        sent.push(Seen::Message(MessageKind::Text, text.into_bytes()));
        let binary: Vec<u8> = (0..len).map(|i| i as u8).collect();
        encode_message(MessageKind::Binary, &binary, 0, &mut rng, &mut out);
        sent.push(Seen::Message(MessageKind::Binary, binary));
    }
    encode_ping(b"ping", &mut rng, &mut out).expect("short");
    sent.push(Seen::Ping(b"ping".to_vec()));
    encode_pong(b"", &mut rng, &mut out).expect("short");
    sent.push(Seen::Pong(vec![]));
    encode_close(Some((4000, "done ✓")), &mut rng, &mut out).expect("valid");
    sent.push(Seen::Close(Some(4000), "done ✓".into()));
    let limits = Limits {
        max_frame_bytes: 1 << 20,
        max_message_bytes: 1 << 20,
    };
    assert_eq!(tungstenite_reads(&out, Role::Server, limits), (sent, false));
}

/// A real tungstenite server on loopback: the handshake with a subprotocol, echoes, a fragmented
/// reply with a ping inside, pings both ways, and the closing handshake.
#[test]
#[allow(clippy::result_large_err)] // tungstenite's handshake callback type, not ours
fn talks_to_a_tungstenite_server_on_loopback() {
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;
    use tungstenite::handshake::server::{Request, Response};

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let choose = |req: &Request, mut resp: Response| {
            let offered = req
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert_eq!(offered, "nope, echo.v1");
            resp.headers_mut()
                .insert("sec-websocket-protocol", "echo.v1".parse().expect("value"));
            Ok(resp)
        };
        let mut ws = tungstenite::accept_hdr(stream, choose).expect("handshake");
        let mut received = 0;
        loop {
            match ws.read() {
                Ok(Message::Text(t)) if t.as_str() == "fragment-me" => {
                    ws.write(Message::Frame(Frame::message(
                        b"frag".to_vec(),
                        OpCode::Data(Data::Text),
                        false,
                    )))
                    .expect("write");
                    ws.write(Message::Ping(b"srv".to_vec().into()))
                        .expect("write");
                    ws.write(Message::Frame(Frame::message(
                        b"mented".to_vec(),
                        OpCode::Data(Data::Continue),
                        true,
                    )))
                    .expect("write");
                    ws.flush().expect("flush");
                }
                Ok(Message::Pong(p)) => ws
                    .send(Message::text(format!(
                        "pong:{}",
                        String::from_utf8_lossy(&p)
                    )))
                    .expect("send"),
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m).expect("echo"),
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => return received,
                Err(e) => panic!("server: {e}"),
            }
            received += 1;
        }
    });

    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut rng = fastrand::Rng::with_seed(99);
    let key = Key::generate(&mut rng);
    let offered = ["nope", "echo.v1"];
    let mut out = Vec::new();
    encode_handshake(
        &addr.to_string(),
        "/ws?x=1",
        key.as_str(),
        &offered,
        &[],
        &mut out,
    );
    sock.write_all(&out).expect("write handshake");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_len = loop {
        let n = sock.read(&mut chunk).expect("read head");
        assert!(n > 0, "server closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
        match check_handshake_response(&buf, key.as_str(), &offered).expect("accepted") {
            Handshake::Accepted {
                head_len,
                subprotocol,
            } => {
                assert_eq!(subprotocol, Some(1));
                break head_len;
            }
            Handshake::Partial => {}
        }
    };
    buf.drain(..head_len);

    let mut dec = MessageDecoder::default();
    // Reads until the next event that is not a server ping (answered at once, as a client must).
    let mut next = |sock: &mut TcpStream, buf: &mut Vec<u8>, rng: &mut fastrand::Rng| -> Seen {
        loop {
            let (consumed, seen) = match dec.decode(buf).expect("valid frames") {
                Decoded::Event { consumed, event } => (consumed, Some(own(event))),
                Decoded::Partial { consumed, .. } => (consumed, None),
            };
            buf.drain(..consumed);
            match seen {
                Some(Seen::Ping(p)) => {
                    let mut pong = Vec::new();
                    encode_pong(&p, rng, &mut pong).expect("short");
                    sock.write_all(&pong).expect("pong");
                }
                Some(seen) => return seen,
                None => {
                    let n = sock.read(&mut chunk).expect("read");
                    assert!(n > 0, "server closed early");
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    };

    let big: Vec<u8> = (0..70_000).map(|i| i as u8).collect();
    let mut send = |f: &dyn Fn(&mut fastrand::Rng, &mut Vec<u8>)| {
        let mut out = Vec::new();
        f(&mut rng, &mut out);
        sock.write_all(&out).expect("write");
    };
    send(&|r, o| encode_message(MessageKind::Text, "hello, wörld".as_bytes(), 2, r, o));
    send(&|r, o| encode_message(MessageKind::Binary, &big, 0, r, o));
    send(&|r, o| encode_message(MessageKind::Text, b"", 0, r, o));
    send(&|r, o| encode_ping(b"cli", r, o).expect("short"));
    send(&|r, o| encode_message(MessageKind::Text, b"fragment-me", 0, r, o));
    let mut rng = fastrand::Rng::with_seed(100);
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(next(&mut sock, &mut buf, &mut rng));
    }
    assert_eq!(
        got,
        vec![
            Seen::Message(MessageKind::Text, "hello, wörld".into()),
            Seen::Message(MessageKind::Binary, big),
            Seen::Message(MessageKind::Text, vec![]),
            Seen::Pong(b"cli".to_vec()),
            Seen::Message(MessageKind::Text, b"fragmented".to_vec()),
            Seen::Message(MessageKind::Text, b"pong:srv".to_vec()),
        ]
    );
    let mut close = Vec::new();
    encode_close(Some((1000, "bye")), &mut rng, &mut close).expect("valid");
    sock.write_all(&close).expect("close");
    assert_eq!(
        next(&mut sock, &mut buf, &mut rng),
        Seen::Close(Some(1000), "bye".into())
    );
    assert!(dec.is_closed());
    assert_eq!(
        sock.read(&mut chunk).expect("eof"),
        0,
        "the server closes the TCP connection"
    );
    assert_eq!(
        server.join().expect("server thread"),
        7,
        "messages the server handled"
    );
}

#[test]
fn rsv1_marks_compressed_messages_only_once_deflate_is_agreed() {
    let mut first = server(false, Opcode::Text, b"\x01\x02");
    first[0] |= 0x40;
    let mut rest = server(true, Opcode::Continuation, b"\x03");
    let mut single = server(true, Opcode::Binary, b"\xff");
    single[0] |= 0x40;
    // Without the agreement RSV1 is a protocol error.
    let mut dec = MessageDecoder::default();
    assert_eq!(dec.decode(&single), Err(WsError::ReservedBits));
    // With it: a compressed binary message, and a fragmented compressed text whose bytes are
    // not UTF-8 yet (validated once inflated, by the caller).
    let mut dec = MessageDecoder::default();
    dec.allow_compressed(true);
    assert!(matches!(
        dec.decode(&single),
        Ok(Decoded::Event {
            event: Event::Message {
                kind: MessageKind::Binary,
                compressed: true,
                ..
            },
            ..
        })
    ));
    let both = [first, rest.clone()].concat();
    let mut at = 0;
    let mut seen = None;
    while seen.is_none() {
        match dec.decode(&both[at..]).expect("decodes") {
            Decoded::Partial { consumed, .. } => at += consumed,
            Decoded::Event { event, .. } => seen = Some(format!("{event:?}")),
        }
    }
    let seen = seen.unwrap_or_default();
    assert!(
        seen.contains("compressed: true") && seen.contains("[1, 2, 3]"),
        "{seen}"
    );
    // RSV1 on a continuation, or RSV2 anywhere, stays an error.
    rest[0] |= 0x40;
    let mut dec = MessageDecoder::default();
    dec.allow_compressed(true);
    let bad = [server(false, Opcode::Text, b"a"), rest].concat();
    let mut at = 0;
    let err = loop {
        match dec.decode(&bad[at..]) {
            Ok(Decoded::Partial { consumed, .. }) => at += consumed,
            Ok(Decoded::Event { consumed, .. }) => at += consumed,
            Err(e) => break e,
        }
    };
    assert_eq!(err, WsError::ReservedBits);
    let mut rsv2 = server(true, Opcode::Text, b"a");
    rsv2[0] |= 0x20;
    let mut dec = MessageDecoder::default();
    dec.allow_compressed(true);
    assert_eq!(dec.decode(&rsv2), Err(WsError::ReservedBits));
}
