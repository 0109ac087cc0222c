//! Fuzzes the HTTP/2 client connection's receive path (frame decoder included) with a
//! connection's buffer discipline: fed whole and in pieces, the events, the failure and the
//! bytes the client answered with must agree, and the caller never holds more than one frame.
//! First byte: low 6 bits piece size (0 → single bytes), bit 6 sizes vary around it, bit 7 a
//! valid server SETTINGS comes first (so inputs reach the frames after it, with three streams
//! open; without it one stream is open, as before any SETTINGS).
#![no_main]

use engine::proto::h2::{
    frame, Connection, Event, Fields, H2Error, Request, Settings, DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

const GET: Request<'static> = Request {
    method: "GET",
    scheme: "http",
    authority: "fuzz.test",
    path: "/",
    headers: Fields::Pairs(&[]),
};
const BODY: &[u8] = &[7; 100_000];

/// Events with their bytes copied out, the failure, and what the client wrote (answers are
/// due per frame, so they do not depend on the split either).
type Outcome = (Vec<String>, Option<H2Error>, Vec<u8>);

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let settings_first = control & 0x80 != 0;
    let stream = rest;
    let whole = run(stream, &[stream.len().max(1)], settings_first);
    let base = usize::from(control & 0x3f).max(1);
    let sizes: Vec<usize> = if control & 0x40 == 0 {
        vec![base]
    } else {
        (1..=7).map(|k| base * k % 13 + 1).collect()
    };
    let split = run(stream, &sizes, settings_first);
    assert_eq!(whole, split, "outcome depends on how the stream was split");
});

fn run(stream: &[u8], sizes: &[usize], settings_first: bool) -> Outcome {
    let settings = Settings {
        max_streams: 4,
        ..Settings::default()
    };
    let mut out = Vec::new();
    let mut conn = Connection::new(settings, &mut out);
    if settings_first {
        let mut server = Vec::new();
        frame::encode_settings(&[], &mut server);
        assert_eq!(conn.receive(&server, &mut out), Ok(server.len()));
    }
    // Streams 1, 3 and 5 (3 with a body larger than the initial windows); before the server's
    // SETTINGS the client opens only the first.
    for body in [&[][..], BODY, b"x"] {
        if conn.can_start() {
            assert!(conn.start_request(&GET, body, &mut out).is_ok());
        }
    }
    assert!(conn.open_streams() == 3 || !settings_first);
    let mut seen = Vec::new();
    let mut buf = Vec::new();
    let mut fed = 0;
    for size in sizes.iter().cycle() {
        if fed == stream.len() {
            break;
        }
        let end = (fed + size).min(stream.len());
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        let result = conn.receive(&buf, &mut out);
        for e in conn.events() {
            seen.push(match e {
                Event::Data { stream, data } => {
                    format!("data {} {:?}", stream.0, &buf[data.clone()])
                }
                Event::Head {
                    stream,
                    status,
                    fields,
                } => {
                    let list: Vec<_> = conn.fields().iter(fields.clone()).collect();
                    format!("head {} {status} {list:?}", stream.0)
                }
                Event::Trailers { stream, fields } => {
                    let list: Vec<_> = conn.fields().iter(fields.clone()).collect();
                    format!("trailers {} {list:?}", stream.0)
                }
                other => format!("{other:?}"),
            });
        }
        match result {
            Ok(n) => {
                assert!(n <= buf.len(), "consumed past the input");
                buf.drain(..n);
                assert!(
                    buf.len() < FRAME_HEADER_LEN + DEFAULT_MAX_FRAME_SIZE as usize,
                    "the caller buffers at most one frame"
                );
            }
            Err(e) => return (seen, Some(e), out),
        }
    }
    // Sending in between would make window arithmetic depend on the split: only at the end.
    if conn.wants_to_send() {
        conn.send_data(&mut out, |_| BODY);
    }
    (seen, None, out)
}
