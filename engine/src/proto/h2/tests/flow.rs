//! Flow control both ways: a request body larger than the server's windows waits for
//! WINDOW_UPDATE; received data is handed back by WINDOW_UPDATE; window breaches are errors.

use super::*;
use crate::proto::h2::frame::setting;
use crate::proto::h2::{code, H2Error, DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW};

/// The DATA frames in `out`: (stream, length, end_stream).
fn data_frames(out: &[u8]) -> Vec<(u32, usize, bool)> {
    frames(out)
        .into_iter()
        .filter(|f| f.0 == kind::DATA)
        .map(|f| (f.2, f.3.len(), f.1 & flag::END_STREAM != 0))
        .collect()
}

fn window_update(stream: u32, n: u32) -> Vec<u8> {
    raw(kind::WINDOW_UPDATE, 0, stream, &n.to_be_bytes())
}

#[test]
fn a_body_larger_than_the_window_waits_for_window_updates() {
    let body: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let (mut conn, mut out) = open(Settings::default(), &[]);
    let s = conn
        .start_request(&post(), &body, &mut out)
        .expect("a slot");
    let sent = data_frames(&out);
    // Only the initial 65,535-byte windows' worth went out, in frames of at most 16 KiB.
    assert_eq!(
        sent.iter().map(|d| d.1).sum::<usize>(),
        DEFAULT_WINDOW as usize
    );
    assert!(sent
        .iter()
        .all(|d| d.1 <= DEFAULT_MAX_FRAME_SIZE as usize && !d.2));
    assert!(!conn.wants_to_send());

    // Stream credit alone does not help while the connection window is shut.
    let mut received: Vec<u8> = frames(&out)
        .into_iter()
        .filter(|f| f.0 == kind::DATA)
        .flat_map(|f| f.3)
        .collect();
    out.clear();
    feed(&mut conn, &[&window_update(1, 1 << 20)], &mut out);
    assert!(!conn.wants_to_send());
    feed(&mut conn, &[&window_update(0, 50_000)], &mut out);
    assert!(conn.wants_to_send());
    conn.send_data(&mut out, |stream| {
        assert_eq!(stream, s);
        &body
    });
    assert_eq!(data_frames(&out).iter().map(|d| d.1).sum::<usize>(), 50_000);
    received.extend(
        frames(&out)
            .into_iter()
            .filter(|f| f.0 == kind::DATA)
            .flat_map(|f| f.3),
    );
    out.clear();

    // The rest, in one go; the last frame ends the stream.
    feed(&mut conn, &[&window_update(0, 1 << 20)], &mut out);
    conn.send_data(&mut out, |_| &body);
    let last = data_frames(&out);
    assert_eq!(last.last().map(|d| d.2), Some(true));
    received.extend(
        frames(&out)
            .into_iter()
            .filter(|f| f.0 == kind::DATA)
            .flat_map(|f| f.3),
    );
    assert_eq!(received, body);
    assert!(!conn.wants_to_send());
}

#[test]
fn a_larger_peer_frame_size_makes_larger_frames() {
    let body = vec![7u8; 100_000];
    let (mut conn, mut out) = open(
        Settings::default(),
        &[
            (setting::MAX_FRAME_SIZE, 1 << 20),
            (setting::INITIAL_WINDOW_SIZE, 1 << 20),
        ],
    );
    feed(&mut conn, &[&window_update(0, 1 << 20)], &mut out);
    out.clear();
    assert!(conn.start_request(&post(), &body, &mut out).is_ok());
    assert_eq!(data_frames(&out), [(1, 100_000, true)]);
}

#[test]
fn a_shrunk_initial_window_can_go_negative_and_blocks_sending() {
    let body = vec![1u8; 40_000];
    let (mut conn, mut out) = open(Settings::default(), &[]);
    assert!(conn.start_request(&post(), &body, &mut out).is_ok());
    assert_eq!(data_frames(&out).iter().map(|d| d.1).sum::<usize>(), 40_000);
    let big = vec![1u8; 100_000];
    assert!(conn.start_request(&post(), &big, &mut out).is_ok());
    out.clear();
    // Stream 3 got the 25,535 the connection window had left, so 40,000 of its own remain; a
    // new initial window of 10,000 (55,535 less) leaves it at -15,535.
    feed(
        &mut conn,
        &[&settings(&[(setting::INITIAL_WINDOW_SIZE, 10_000)])],
        &mut out,
    );
    feed(&mut conn, &[&window_update(0, 1 << 20)], &mut out);
    assert!(!conn.wants_to_send());
    feed(&mut conn, &[&window_update(3, 20_000)], &mut out);
    out.clear();
    conn.send_data(&mut out, |_| &big);
    assert_eq!(data_frames(&out).iter().map(|d| d.1).sum::<usize>(), 4_465);
}

#[test]
fn received_data_is_handed_back_by_window_update() {
    let settings_ = Settings {
        stream_window: DEFAULT_WINDOW,
        connection_window: DEFAULT_WINDOW,
        ..Settings::default()
    };
    let mut server = Server::new();
    let (mut conn, mut out) = open(settings_, &[]);
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    out.clear();
    // 300 KiB, far past both 64 KiB windows: only possible because credit comes back.
    let mut bytes = server.headers(1, &[(":status", "200")], false);
    let chunk = vec![9u8; 16_384];
    for _ in 0..18 {
        bytes.extend(data(1, &chunk, false));
    }
    bytes.extend(data(1, b"", true));
    let pieces: Vec<&[u8]> = bytes.chunks(7000).collect();
    let (events, err) = feed(&mut conn, &pieces, &mut out);
    assert_eq!(err, None);
    let total: usize = events
        .iter()
        .map(|e| if let Seen::Data(_, d) = e { d.len() } else { 0 })
        .sum();
    assert_eq!(total, 18 * 16_384);
    assert_eq!(events.last(), Some(&Seen::End(1)));
    let mut credit = [0u64; 2];
    for f in frames(&out)
        .into_iter()
        .filter(|f| f.0 == kind::WINDOW_UPDATE)
    {
        let n = u32::from_be_bytes([f.3[0], f.3[1], f.3[2], f.3[3]]);
        credit[usize::from(f.2 != 0)] += u64::from(n);
    }
    // What we handed back plus what is left of the window covers everything sent.
    assert!(
        credit[0] + u64::from(DEFAULT_WINDOW) >= 18 * 16_384,
        "{credit:?}"
    );
    assert!(
        credit[1] + u64::from(DEFAULT_WINDOW) >= 17 * 16_384,
        "{credit:?}"
    );
}

#[test]
fn data_past_the_stream_window_resets_the_stream() {
    let settings_ = Settings {
        max_frame_size: 100_000,
        stream_window: DEFAULT_WINDOW,
        ..Settings::default()
    };
    let mut server = Server::new();
    let (mut conn, mut out) = open(settings_, &[]);
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    out.clear();
    let mut bytes = server.headers(1, &[(":status", "200")], false);
    bytes.extend(data(1, &vec![0u8; 70_000], false));
    let (events, err) = feed(&mut conn, &[&bytes], &mut out);
    assert_eq!(err, None);
    assert_eq!(
        events,
        [
            Seen::Head(1, 200, vec![]),
            Seen::Failed(1, H2Error::FlowControl)
        ]
    );
    assert!(frames(&out).contains(&(
        kind::RST_STREAM,
        0,
        1,
        code::FLOW_CONTROL_ERROR.to_be_bytes().to_vec()
    )));
}

#[test]
fn data_past_the_connection_window_is_a_connection_error() {
    let settings_ = Settings {
        max_frame_size: 100_000,
        connection_window: DEFAULT_WINDOW,
        ..Settings::default()
    };
    let mut server = Server::new();
    let (mut conn, mut out) = open(settings_, &[]);
    assert!(conn.start_request(&GET, b"", &mut out).is_ok());
    let mut bytes = server.headers(1, &[(":status", "200")], false);
    bytes.extend(data(1, &vec![0u8; 70_000], false));
    assert_eq!(
        feed(&mut conn, &[&bytes], &mut out).1,
        Some(H2Error::FlowControl)
    );
}

#[test]
fn an_early_response_stops_the_body_with_cancel() {
    let body = vec![0u8; 200_000];
    let mut server = Server::new();
    let (mut conn, mut out) = open(Settings::default(), &[]);
    assert!(conn.start_request(&post(), &body, &mut out).is_ok());
    out.clear();
    let bytes = server.headers(1, &[(":status", "413")], true);
    assert_eq!(
        feed(&mut conn, &[&bytes], &mut out).0,
        [Seen::Head(1, 413, vec![]), Seen::End(1)]
    );
    assert_eq!(
        frames(&out),
        [(kind::RST_STREAM, 0, 1, code::CANCEL.to_be_bytes().to_vec())]
    );
    assert!(!conn.wants_to_send());
}
