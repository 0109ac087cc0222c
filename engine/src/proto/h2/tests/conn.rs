//! `Connection` against a scripted server: heads, bodies, trailers, CONTINUATION, every split
//! point of a response, resets, GOAWAY, SETTINGS, and malformed input.

use super::*;
use crate::proto::h2::frame::{setting, SETTING_LEN};
use crate::proto::h2::{code, ConnectionState, H2Error, StartError, DEFAULT_WINDOW};

fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_preface_comes_first_with_push_off_and_the_window_grown() {
    let mut out = Vec::new();
    let settings_ = Settings::default();
    let _conn = Connection::new(settings_, &mut out);
    assert!(out.starts_with(PREFACE));
    let f = frames(&out);
    assert_eq!(f[0].0, kind::SETTINGS);
    let entries: Vec<(u16, u32)> = super::super::frame::settings(&f[0].3).collect();
    assert!(entries.contains(&(setting::ENABLE_PUSH, 0)));
    assert!(entries.contains(&(setting::INITIAL_WINDOW_SIZE, settings_.stream_window)));
    assert_eq!(f[0].3.len() % SETTING_LEN, 0);
    assert_eq!(f[1].0, kind::WINDOW_UPDATE);
    assert_eq!(
        u32::from_be_bytes([f[1].3[0], f[1].3[1], f[1].3[2], f[1].3[3]]),
        settings_.connection_window - DEFAULT_WINDOW
    );
}

#[test]
fn server_settings_are_acknowledged_and_must_come_first() {
    let mut out = Vec::new();
    let mut conn = Connection::new(Settings::default(), &mut out);
    out.clear();
    let s = settings(&[(setting::MAX_CONCURRENT_STREAMS, 7)]);
    assert_eq!(conn.receive(&s, &mut out), Ok(s.len()));
    assert_eq!(frames(&out), [(kind::SETTINGS, flag::ACK, 0, vec![])]);
    assert_eq!(conn.max_streams(), 7);

    let mut conn = Connection::new(Settings::default(), &mut out);
    let ping = raw(kind::PING, 0, 0, b"12345678");
    assert_eq!(conn.receive(&ping, &mut out), Err(H2Error::Protocol));
    assert_eq!(conn.state(), ConnectionState::Closed);
}

#[test]
fn the_request_head_is_lowercase_without_connection_fields() {
    let (mut conn, mut out) = open(Settings::default(), &[]);
    let headers = vec![
        ("Host".to_string(), "ignored".to_string()),
        ("Connection".to_string(), "keep-alive".to_string()),
        ("X-Token".to_string(), "abc".to_string()),
    ];
    let req = Request {
        headers: Fields::Pairs(&headers),
        ..post()
    };
    assert_eq!(conn.start_request(&req, b"body", &mut out), Ok(id(1)));
    let f = frames(&out);
    assert_eq!(
        (f[0].0, f[0].1, f[0].2),
        (kind::HEADERS, flag::END_HEADERS, 1)
    );
    let mut dec = loona_hpack::Decoder::new();
    let list = dec.decode(&f[0].3).expect("our block decodes");
    let list: Vec<(String, String)> = list
        .into_iter()
        .map(|(n, v)| {
            (
                String::from_utf8(n).unwrap_or_default(),
                String::from_utf8(v).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        list,
        fields(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "example.test"),
            (":path", "/"),
            ("x-token", "abc"),
            ("content-length", "4"),
        ])
    );
    assert_eq!(f[1], (kind::DATA, flag::END_STREAM, 1, b"body".to_vec()));
}

/// A response using most of the codec: a 1xx head, a head in HEADERS + CONTINUATIONs, padded
/// DATA, a PING, an unknown frame, DATA, trailers.
fn rich_response(server: &mut Server) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend(server.headers(1, &[(":status", "103"), ("link", "</a>")], false));
    let block = server.block(&[
        (":status", "200"),
        ("content-type", "text/plain"),
        ("content-length", "11"),
        ("x-long", &"v".repeat(40)),
    ]);
    let (a, rest) = block.split_at(5);
    let (b, c) = rest.split_at(rest.len() / 2);
    bytes.extend(raw(kind::HEADERS, 0, 1, a));
    bytes.extend(raw(kind::CONTINUATION, 0, 1, b));
    bytes.extend(raw(kind::CONTINUATION, flag::END_HEADERS, 1, c));
    bytes.extend(raw(kind::DATA, flag::PADDED, 1, b"\x03hello\0\0\0"));
    bytes.extend(raw(kind::PING, 0, 0, b"pingpong"));
    bytes.extend(raw(0xee, 0, 1, b"unknown frames are skipped"));
    bytes.extend(data(1, b" world", false));
    bytes.extend(server.headers(1, &[("grpc-status", "0")], true));
    bytes
}

fn rich_expected() -> Vec<Seen> {
    vec![
        Seen::Head(
            1,
            200,
            fields(&[
                ("content-type", "text/plain"),
                ("content-length", "11"),
                ("x-long", &"v".repeat(40)),
            ]),
        ),
        Seen::Data(1, b"hello".to_vec()),
        Seen::Data(1, b" world".to_vec()),
        Seen::Trailers(1, fields(&[("grpc-status", "0")])),
        Seen::End(1),
    ]
}

#[test]
fn a_response_decodes_the_same_at_every_split_point() {
    let bytes = rich_response(&mut Server::new());
    for cut in 0..=bytes.len() {
        let (mut conn, mut out) = open(Settings::default(), &[]);
        assert_eq!(conn.start_request(&GET, b"", &mut out), Ok(id(1)));
        out.clear();
        let (events, err) = feed(&mut conn, &[&bytes[..cut], &bytes[cut..]], &mut out);
        assert_eq!(err, None, "cut at {cut}");
        assert_eq!(events, rich_expected(), "cut at {cut}");
        // The PING was answered, and the slot is free again.
        assert!(
            frames(&out).contains(&(kind::PING, flag::ACK, 0, b"pingpong".to_vec())),
            "cut at {cut}"
        );
        assert_eq!(conn.open_streams(), 0);
    }
    // Byte by byte, too.
    let (mut conn, mut out) = open(Settings::default(), &[]);
    assert_eq!(conn.start_request(&GET, b"", &mut out), Ok(id(1)));
    let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(feed(&mut conn, &pieces, &mut out), (rich_expected(), None));
}

#[test]
fn a_frame_between_headers_and_continuation_is_a_connection_error() {
    let mut server = Server::new();
    let (mut conn, mut out) = open(Settings::default(), &[]);
    assert_eq!(conn.start_request(&GET, b"", &mut out), Ok(id(1)));
    assert_eq!(conn.start_request(&GET, b"", &mut out), Ok(id(3)));
    out.clear();
    let block = server.block(&[(":status", "200")]);
    let mut bytes = raw(kind::HEADERS, 0, 1, &block[..0]);
    bytes.extend(raw(kind::PING, 0, 0, b"12345678"));
    let (events, err) = feed(&mut conn, &[&bytes], &mut out);
    assert_eq!(err, Some(H2Error::Protocol));
    assert_eq!(
        events,
        [
            Seen::Failed(1, H2Error::Protocol),
            Seen::Failed(3, H2Error::Protocol)
        ]
    );
    let f = frames(&out);
    assert_eq!(
        f.last().map(|f| (f.0, f.3[4..8].to_vec())),
        Some((kind::GOAWAY, code::PROTOCOL_ERROR.to_be_bytes().to_vec()))
    );
    assert_eq!(
        conn.start_request(&GET, b"", &mut out),
        Err(StartError::Closed)
    );
}

#[test]
fn max_concurrent_streams_from_settings_gates_new_streams() {
    let mut server = Server::new();
    let (mut conn, mut out) = open(Settings::default(), &[(setting::MAX_CONCURRENT_STREAMS, 1)]);
    assert_eq!(conn.start_request(&GET, b"", &mut out), Ok(id(1)));
    assert_eq!(
        conn.start_request(&GET, b"", &mut out),
        Err(StartError::NoSlot)
    );
    assert!(!conn.can_start());
    let done = server.headers(1, &[(":status", "204")], true);
    assert_eq!(
        feed(&mut conn, &[&done], &mut out).0,
        [Seen::Head(1, 204, vec![]), Seen::End(1)]
    );
    assert_eq!(conn.start_request(&GET, b"", &mut out), Ok(id(3)));
    // The server raises the limit mid-connection.
    let more = settings(&[(setting::MAX_CONCURRENT_STREAMS, 3)]);
    feed(&mut conn, &[&more], &mut out);
    assert_eq!(conn.start_request(&GET, b"", &mut out), Ok(id(5)));
    assert_eq!(conn.start_request(&GET, b"", &mut out), Ok(id(7)));
    assert_eq!(
        conn.start_request(&GET, b"", &mut out),
        Err(StartError::NoSlot)
    );
    // Before the server's SETTINGS, one stream: its limit may be lower than anything we guess.
    let mut fresh_out = Vec::new();
    let mut fresh = Connection::new(Settings::default(), &mut fresh_out);
    assert_eq!(fresh.start_request(&GET, b"", &mut fresh_out), Ok(id(1)));
    assert_eq!(
        fresh.start_request(&GET, b"", &mut fresh_out),
        Err(StartError::NoSlot)
    );
    feed(&mut fresh, &[&settings(&[])], &mut fresh_out);
    assert_eq!(fresh.start_request(&GET, b"", &mut fresh_out), Ok(id(3)));
    // Our own table bounds it too.
    let (mut small, mut out) = open(
        Settings {
            max_streams: 2,
            ..Settings::default()
        },
        &[],
    );
    assert_eq!(small.max_streams(), 2);
    assert!(small.start_request(&GET, b"", &mut out).is_ok());
    assert!(small.start_request(&GET, b"", &mut out).is_ok());
    assert_eq!(
        small.start_request(&GET, b"", &mut out),
        Err(StartError::NoSlot)
    );
}

#[test]
fn goaway_refuses_streams_above_its_last_id_and_lets_the_rest_finish() {
    let mut server = Server::new();
    let (mut conn, mut out) = open(Settings::default(), &[]);
    for n in [1, 3, 5] {
        assert_eq!(conn.start_request(&GET, b"", &mut out), Ok(id(n)));
    }
    let goaway = raw(kind::GOAWAY, 0, 0, b"\0\0\0\x03\0\0\0\0");
    assert_eq!(
        feed(&mut conn, &[&goaway], &mut out).0,
        [Seen::GoAway(3, 0), Seen::Refused(5)]
    );
    assert_eq!(
        conn.state(),
        ConnectionState::Draining { last_stream_id: 3 }
    );
    assert_eq!(
        conn.start_request(&GET, b"", &mut out),
        Err(StartError::GoingAway)
    );
    assert!(!conn.is_finished());
    let mut rest = server.headers(1, &[(":status", "200")], true);
    rest.extend(server.headers(3, &[(":status", "200")], true));
    let (events, err) = feed(&mut conn, &[&rest], &mut out);
    assert_eq!(err, None);
    assert_eq!(
        events,
        [
            Seen::Head(1, 200, vec![]),
            Seen::End(1),
            Seen::Head(3, 200, vec![]),
            Seen::End(3)
        ]
    );
    assert!(conn.is_finished());
}

#[test]
fn rst_stream_resets_or_refuses_one_stream() {
    let (mut conn, mut out) = open(Settings::default(), &[]);
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    let mut bytes = raw(kind::RST_STREAM, 0, 1, &code::INTERNAL_ERROR.to_be_bytes());
    bytes.extend(raw(
        kind::RST_STREAM,
        0,
        3,
        &code::REFUSED_STREAM.to_be_bytes(),
    ));
    // A late frame for a reset stream is dropped, not an error.
    bytes.extend(data(1, b"late", true));
    let (events, err) = feed(&mut conn, &[&bytes], &mut out);
    assert_eq!(err, None);
    assert_eq!(
        events,
        [Seen::Reset(1, code::INTERNAL_ERROR), Seen::Refused(3)]
    );
    assert_eq!(conn.open_streams(), 0);
    // RST_STREAM on a stream we never opened is a connection error.
    let idle = raw(kind::RST_STREAM, 0, 9, &code::CANCEL.to_be_bytes());
    assert_eq!(
        feed(&mut conn, &[&idle], &mut out).1,
        Some(H2Error::Protocol)
    );
}

#[test]
fn trailers_must_end_the_stream() {
    let mut server = Server::new();
    let (mut conn, mut out) = open(Settings::default(), &[]);
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    out.clear();
    let mut bytes = server.headers(1, &[(":status", "200")], false);
    bytes.extend(server.headers(1, &[("x-trailer", "1")], false));
    let (events, err) = feed(&mut conn, &[&bytes], &mut out);
    assert_eq!(err, None);
    assert_eq!(
        events,
        [
            Seen::Head(1, 200, vec![]),
            Seen::Failed(1, H2Error::Protocol)
        ]
    );
    assert_eq!(
        frames(&out),
        [(
            kind::RST_STREAM,
            0,
            1,
            code::PROTOCOL_ERROR.to_be_bytes().to_vec()
        )]
    );
}

#[test]
fn malformed_responses_fail_their_stream_and_the_connection_goes_on() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("no status", &[("content-type", "x")]),
        (
            "uppercase name",
            &[(":status", "200"), ("Content-Type", "x")],
        ),
        (
            "connection field",
            &[(":status", "200"), ("connection", "close")],
        ),
        ("pseudo after regular", &[("a", "b"), (":status", "200")]),
        ("unknown pseudo", &[(":status", "200"), (":path", "/")]),
        ("two statuses", &[(":status", "200"), (":status", "200")]),
        ("bad status", &[(":status", "2000")]),
        ("status 101", &[(":status", "101")]),
        (
            "bad content-length",
            &[(":status", "200"), ("content-length", "-1")],
        ),
    ];
    for (name, list) in cases {
        let mut server = Server::new();
        let (mut conn, mut out) = open(Settings::default(), &[]);
        assert!(conn.start_request(&GET, b"", &mut out).is_ok());
        let bytes = server.headers(1, list, false);
        let (events, err) = feed(&mut conn, &[&bytes], &mut out);
        assert_eq!(
            (events, err),
            (vec![Seen::Failed(1, H2Error::Protocol)], None),
            "{name}"
        );
        assert!(conn.start_request(&GET, b"", &mut out).is_ok(), "{name}");
    }
}

#[test]
fn a_body_not_matching_content_length_fails_its_stream() {
    let mut server = Server::new();
    let (mut conn, mut out) = open(Settings::default(), &[]);
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    let mut bytes = server.headers(1, &[(":status", "200"), ("content-length", "10")], false);
    bytes.extend(data(1, b"short", true));
    let (events, _) = feed(&mut conn, &[&bytes], &mut out);
    assert_eq!(events.last(), Some(&Seen::Failed(1, H2Error::Protocol)));
    // HEAD: content-length describes a body that is not sent.
    let req = Request {
        method: "HEAD",
        ..GET
    };
    assert_eq!(conn.start_request(&req, b"", &mut out), Ok(id(3)));
    let bytes = server.headers(3, &[(":status", "200"), ("content-length", "10")], true);
    assert_eq!(
        feed(&mut conn, &[&bytes], &mut out).0.last(),
        Some(&Seen::End(3))
    );
}

#[test]
fn a_header_list_past_our_limit_fails_the_stream_but_keeps_hpack_in_step() {
    let mut server = Server::new();
    let settings_ = Settings {
        max_header_list_size: 1024,
        ..Settings::default()
    };
    let (mut conn, mut out) = open(settings_, &[]);
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    let big = "x".repeat(2000);
    // Indexed into the server's dynamic table: our decoder must index it too.
    let mut bytes = server.headers(
        1,
        &[(":status", "200"), ("x-ok", "kept"), ("x-big", &big)],
        true,
    );
    bytes.extend(server.headers(3, &[(":status", "200"), ("x-ok", "kept")], true));
    let (events, err) = feed(&mut conn, &[&bytes], &mut out);
    assert_eq!(err, None);
    assert_eq!(
        events,
        [
            Seen::Failed(1, H2Error::HeaderListTooLarge),
            Seen::Head(3, 200, fields(&[("x-ok", "kept")])),
            Seen::End(3)
        ]
    );
}

#[test]
fn connection_errors_are_reported_never_panics() {
    let mut server = Server::new();
    let block = server.block(&[(":status", "200")]);
    let cases: Vec<(&str, Vec<u8>, H2Error)> = vec![
        (
            "data on an idle stream",
            data(5, b"x", false),
            H2Error::Protocol,
        ),
        (
            "headers on an even stream",
            raw(kind::HEADERS, flag::END_HEADERS, 2, &block),
            H2Error::Protocol,
        ),
        (
            "push promise",
            raw(kind::PUSH_PROMISE, flag::END_HEADERS, 1, b"\0\0\0\x02\x82"),
            H2Error::Protocol,
        ),
        (
            "stray continuation",
            raw(kind::CONTINUATION, flag::END_HEADERS, 1, b"\x88"),
            H2Error::Protocol,
        ),
        (
            "hpack garbage",
            raw(
                kind::HEADERS,
                flag::END_HEADERS,
                1,
                b"\xff\xff\xff\xff\xff\xff",
            ),
            H2Error::Compression,
        ),
        (
            "frame too large",
            {
                let mut b = Vec::new();
                super::super::frame::encode_header(20_000, kind::DATA, 0, 1, &mut b);
                b
            },
            H2Error::FrameSize,
        ),
        (
            "window overflow",
            raw(kind::WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()),
            H2Error::FlowControl,
        ),
        (
            "zero window increment",
            raw(kind::WINDOW_UPDATE, 0, 0, &0u32.to_be_bytes()),
            H2Error::Protocol,
        ),
        (
            "push enabled",
            settings(&[(setting::ENABLE_PUSH, 1)]),
            H2Error::Protocol,
        ),
        (
            "frame size setting too small",
            settings(&[(setting::MAX_FRAME_SIZE, 100)]),
            H2Error::Protocol,
        ),
        (
            "initial window too large",
            settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 31)]),
            H2Error::FlowControl,
        ),
        (
            "settings of a bad length",
            raw(kind::SETTINGS, 0, 0, b"\0\x01\0"),
            H2Error::FrameSize,
        ),
    ];
    for (name, bytes, want) in cases {
        let (mut conn, mut out) = open(Settings::default(), &[]);
        assert!(conn.start_request(&GET, b"", &mut out).is_ok());
        out.clear();
        let (events, err) = feed(&mut conn, &[&bytes], &mut out);
        assert_eq!(err, Some(want), "{name}");
        assert_eq!(events, [Seen::Failed(1, want)], "{name}");
        let goaway = frames(&out).into_iter().find(|f| f.0 == kind::GOAWAY);
        assert_eq!(
            goaway.map(|f| f.3[4..8].to_vec()),
            Some(want.code().to_be_bytes().to_vec()),
            "{name}"
        );
        // Sticky: the connection stays closed.
        assert_eq!(conn.receive(b"", &mut out), Err(want), "{name}");
    }
}

#[test]
fn random_bytes_after_settings_never_panic() {
    let mut rng = fastrand::Rng::with_seed(13);
    let mut server = Server::new();
    let head = server.headers(1, &[(":status", "200")], false);
    for _ in 0..2000 {
        let (mut conn, mut out) = open(Settings::default(), &[]);
        assert!(conn.start_request(&GET, b"body", &mut out).is_ok());
        let len = rng.usize(0..200);
        let mut bytes = if rng.bool() { head.clone() } else { Vec::new() };
        bytes.extend((0..len).map(|_| rng.u8(..)));
        let _ = feed(&mut conn, &[&bytes], &mut out);
    }
}

#[test]
fn pings_are_answered_and_ours_are_acknowledged() {
    let (mut conn, mut out) = open(Settings::default(), &[]);
    conn.ping(*b"ourping!", &mut out);
    assert_eq!(frames(&out), [(kind::PING, 0, 0, b"ourping!".to_vec())]);
    out.clear();
    let mut bytes = raw(kind::PING, 0, 0, b"theirs!!");
    bytes.extend(raw(kind::PING, flag::ACK, 0, b"ourping!"));
    assert_eq!(
        feed(&mut conn, &[&bytes], &mut out).0,
        [Seen::PingAck(*b"ourping!")]
    );
    assert_eq!(
        frames(&out),
        [(kind::PING, flag::ACK, 0, b"theirs!!".to_vec())]
    );
}

#[test]
fn a_smaller_header_table_is_signalled_in_the_next_block() {
    let (mut conn, mut out) = open(Settings::default(), &[(setting::HEADER_TABLE_SIZE, 0)]);
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    let f = frames(&out);
    assert_eq!(f[0].3[0], 0x20, "a table size update to 0 opens the block");
    let mut dec = loona_hpack::Decoder::new();
    assert!(dec.decode(&f[0].3).is_ok());
}

#[test]
fn cancel_frees_the_slot_and_resets_the_stream() {
    let (mut conn, mut out) = open(Settings::default(), &[(setting::MAX_CONCURRENT_STREAMS, 1)]);
    let s = conn.start_request(&GET, b"", &mut out).expect("a slot");
    out.clear();
    assert!(conn.cancel(s, &mut out));
    assert!(!conn.cancel(s, &mut out));
    assert_eq!(
        frames(&out),
        [(kind::RST_STREAM, 0, 1, code::CANCEL.to_be_bytes().to_vec())]
    );
    assert!(conn.can_start());
    conn.close_read();
    assert_eq!(conn.state(), ConnectionState::Closed);
}

#[test]
fn the_end_of_the_transport_fails_open_streams() {
    let (mut conn, mut out) = open(Settings::default(), &[]);
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    conn.close_read();
    assert_eq!(seen(&conn, b""), [Seen::Failed(1, H2Error::Truncated)]);
}
