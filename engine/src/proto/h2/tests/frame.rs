//! Frame codec cases: each one a byte string, our max frame size, and the frame or error.

use crate::proto::h2::frame::{self, decode_frame, flag, kind, Decoded, Frame};
use crate::proto::h2::{H2Error, DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN};

fn raw(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_frame(ty, flags, stream, payload, &mut out);
    out
}

fn one(bytes: &[u8]) -> Result<Frame<'_>, H2Error> {
    match decode_frame(bytes, DEFAULT_MAX_FRAME_SIZE)? {
        Decoded::Complete { frame, len } => {
            assert_eq!(len, bytes.len());
            Ok(frame)
        }
        Decoded::Partial { .. } => panic!("partial: {bytes:?}"),
    }
}

#[test]
fn every_frame_type_decodes_or_fails_as_the_rfc_says() {
    let cases: Vec<(&str, Vec<u8>, Result<Frame<'static>, H2Error>)> = vec![
        (
            "data",
            raw(kind::DATA, flag::END_STREAM, 1, b"abc"),
            Ok(Frame::Data {
                stream: 1,
                end_stream: true,
                data: b"abc",
                data_offset: 9,
                flow_len: 3,
            }),
        ),
        (
            "padded data",
            raw(kind::DATA, flag::PADDED, 3, b"\x02abc\0\0"),
            Ok(Frame::Data {
                stream: 3,
                end_stream: false,
                data: b"abc",
                data_offset: 10,
                flow_len: 6,
            }),
        ),
        (
            "padding too long",
            raw(kind::DATA, flag::PADDED, 1, b"\x05abc"),
            Err(H2Error::Protocol),
        ),
        (
            "padded, empty",
            raw(kind::DATA, flag::PADDED, 1, b""),
            Err(H2Error::FrameSize),
        ),
        (
            "data on stream 0",
            raw(kind::DATA, 0, 0, b"x"),
            Err(H2Error::Protocol),
        ),
        (
            "headers with priority and padding",
            raw(
                kind::HEADERS,
                flag::PADDED | flag::PRIORITY | flag::END_HEADERS,
                1,
                b"\x01\0\0\0\x03\x10\x88\0",
            ),
            Ok(Frame::Headers {
                stream: 1,
                end_stream: false,
                end_headers: true,
                block: b"\x88",
            }),
        ),
        (
            "headers, priority cut",
            raw(kind::HEADERS, flag::PRIORITY, 1, b"\0\0"),
            Err(H2Error::Protocol),
        ),
        (
            "headers on stream 0",
            raw(kind::HEADERS, 0, 0, b""),
            Err(H2Error::Protocol),
        ),
        (
            "priority",
            raw(kind::PRIORITY, 0, 5, b"\0\0\0\x01\x10"),
            Ok(Frame::Priority { stream: 5 }),
        ),
        (
            "priority, short",
            raw(kind::PRIORITY, 0, 5, b"\0\0"),
            Err(H2Error::FrameSize),
        ),
        (
            "rst",
            raw(kind::RST_STREAM, 0, 1, b"\0\0\0\x08"),
            Ok(Frame::RstStream { stream: 1, code: 8 }),
        ),
        (
            "rst, long",
            raw(kind::RST_STREAM, 0, 1, b"\0\0\0\x08\0"),
            Err(H2Error::FrameSize),
        ),
        (
            "rst on stream 0",
            raw(kind::RST_STREAM, 0, 0, b"\0\0\0\x08"),
            Err(H2Error::Protocol),
        ),
        (
            "settings",
            raw(kind::SETTINGS, 0, 0, b"\0\x03\0\0\0\x01"),
            Ok(Frame::Settings {
                ack: false,
                payload: b"\0\x03\0\0\0\x01",
            }),
        ),
        (
            "settings ack",
            raw(kind::SETTINGS, flag::ACK, 0, b""),
            Ok(Frame::Settings {
                ack: true,
                payload: b"",
            }),
        ),
        (
            "settings ack with payload",
            raw(kind::SETTINGS, flag::ACK, 0, b"\0\x03\0\0\0\x01"),
            Err(H2Error::FrameSize),
        ),
        (
            "settings, ragged",
            raw(kind::SETTINGS, 0, 0, b"\0\x03\0"),
            Err(H2Error::FrameSize),
        ),
        (
            "settings on a stream",
            raw(kind::SETTINGS, 0, 1, b""),
            Err(H2Error::Protocol),
        ),
        (
            "push promise",
            raw(kind::PUSH_PROMISE, flag::END_HEADERS, 1, b"\0\0\0\x02\x82"),
            Ok(Frame::PushPromise {
                stream: 1,
                promised: 2,
            }),
        ),
        (
            "push promise, short",
            raw(kind::PUSH_PROMISE, 0, 1, b"\0\0"),
            Err(H2Error::FrameSize),
        ),
        (
            "ping",
            raw(kind::PING, flag::ACK, 0, b"12345678"),
            Ok(Frame::Ping {
                ack: true,
                payload: *b"12345678",
            }),
        ),
        (
            "ping, short",
            raw(kind::PING, 0, 0, b"1234"),
            Err(H2Error::FrameSize),
        ),
        (
            "ping on a stream",
            raw(kind::PING, 0, 1, b"12345678"),
            Err(H2Error::Protocol),
        ),
        (
            "goaway",
            raw(kind::GOAWAY, 0, 0, b"\x80\0\0\x07\0\0\0\x02why"),
            Ok(Frame::GoAway {
                last_stream_id: 7,
                code: 2,
                debug: b"why",
            }),
        ),
        (
            "goaway, short",
            raw(kind::GOAWAY, 0, 0, b"\0\0\0\x07"),
            Err(H2Error::FrameSize),
        ),
        (
            "goaway on a stream",
            raw(kind::GOAWAY, 0, 1, b"\0\0\0\x07\0\0\0\0"),
            Err(H2Error::Protocol),
        ),
        (
            "window update, reserved bit ignored",
            raw(kind::WINDOW_UPDATE, 0, 3, b"\x80\0\x01\0"),
            Ok(Frame::WindowUpdate {
                stream: 3,
                increment: 256,
            }),
        ),
        (
            "window update, long",
            raw(kind::WINDOW_UPDATE, 0, 0, b"\0\0\x01\0\0"),
            Err(H2Error::FrameSize),
        ),
        (
            "continuation",
            raw(kind::CONTINUATION, flag::END_HEADERS, 1, b"\x82"),
            Ok(Frame::Continuation {
                stream: 1,
                end_headers: true,
                block: b"\x82",
            }),
        ),
        (
            "continuation on stream 0",
            raw(kind::CONTINUATION, 0, 0, b""),
            Err(H2Error::Protocol),
        ),
        (
            "unknown type",
            raw(0xfa, 0xff, 9, b"ignored"),
            Ok(Frame::Unknown {
                kind: 0xfa,
                stream: 9,
            }),
        ),
    ];
    for (name, bytes, want) in &cases {
        assert_eq!(&one(bytes), want, "{name}");
    }
}

#[test]
fn a_frame_longer_than_our_limit_is_refused_from_its_header_alone() {
    let mut big = Vec::new();
    frame::encode_header(
        DEFAULT_MAX_FRAME_SIZE as usize + 1,
        kind::DATA,
        0,
        1,
        &mut big,
    );
    assert_eq!(
        decode_frame(&big, DEFAULT_MAX_FRAME_SIZE),
        Err(H2Error::FrameSize)
    );
    // The same length is fine when we announced a larger SETTINGS_MAX_FRAME_SIZE.
    assert_eq!(
        decode_frame(&big, DEFAULT_MAX_FRAME_SIZE * 2),
        Ok(Decoded::Partial {
            needed: FRAME_HEADER_LEN + DEFAULT_MAX_FRAME_SIZE as usize + 1
        })
    );
}

#[test]
fn a_partial_frame_consumes_nothing_at_every_cut() {
    let bytes = raw(kind::DATA, 0, 1, b"hello world");
    for cut in 0..bytes.len() {
        let needed = if cut < FRAME_HEADER_LEN {
            FRAME_HEADER_LEN
        } else {
            bytes.len()
        };
        assert_eq!(
            decode_frame(&bytes[..cut], DEFAULT_MAX_FRAME_SIZE),
            Ok(Decoded::Partial { needed })
        );
    }
}

#[test]
fn header_blocks_are_cut_into_headers_and_continuations() {
    let block: Vec<u8> = (0..=255u8).cycle().take(40).collect();
    let mut out = Vec::new();
    frame::encode_header_block(5, &block, true, 16, &mut out);
    let mut at = 0;
    let mut got = Vec::new();
    let mut frames = Vec::new();
    while at < out.len() {
        let Ok(Decoded::Complete { frame, len }) = decode_frame(&out[at..], DEFAULT_MAX_FRAME_SIZE)
        else {
            panic!("bad frame at {at}");
        };
        match frame {
            Frame::Headers {
                block,
                end_headers,
                end_stream,
                ..
            } => {
                got.extend_from_slice(block);
                frames.push(("headers", end_headers, end_stream));
            }
            Frame::Continuation {
                block, end_headers, ..
            } => {
                got.extend_from_slice(block);
                frames.push(("continuation", end_headers, false));
            }
            other => panic!("unexpected {other:?}"),
        }
        at += len;
    }
    assert_eq!(got, block);
    assert_eq!(
        frames,
        [
            ("headers", false, true),
            ("continuation", false, false),
            ("continuation", true, false)
        ]
    );
}

#[test]
fn encoders_round_trip() {
    let mut out = Vec::new();
    frame::encode_settings(&[(3, 10), (4, 1 << 20)], &mut out);
    let Ok(Decoded::Complete {
        frame: Frame::Settings {
            payload,
            ack: false,
        },
        ..
    }) = decode_frame(&out, DEFAULT_MAX_FRAME_SIZE)
    else {
        panic!("not settings");
    };
    assert_eq!(
        frame::settings(payload).collect::<Vec<_>>(),
        [(3, 10), (4, 1 << 20)]
    );
    out.clear();
    frame::encode_goaway(9, 1, &mut out);
    assert_eq!(
        one(&out),
        Ok(Frame::GoAway {
            last_stream_id: 9,
            code: 1,
            debug: b""
        })
    );
    out.clear();
    frame::encode_window_update(0, 1000, &mut out);
    assert_eq!(
        one(&out),
        Ok(Frame::WindowUpdate {
            stream: 0,
            increment: 1000
        })
    );
}
