//! The sans-io HTTP/2 codec against an independent server (Python `h2`, h2c with prior
//! knowledge), driven from a plain blocking `TcpStream`: concurrent streams past the server's
//! MAX_CONCURRENT_STREAMS, a response far past our 64 KiB windows (our WINDOW_UPDATEs), a request
//! body far past the server's (its WINDOW_UPDATEs), checked against what the server reports.
//! Skipped, with a note, only when Python cannot import `h2`.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use engine::proto::h2::{
    Connection, Event, Fields, Request, Settings, StartError, StreamId, DEFAULT_WINDOW,
};
use testbed::H2Peer;

/// Upper bound on one test's exchange with the server.
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Clone)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body_len: usize,
    body: Vec<u8>,
    done: bool,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request to make: method, path, body.
struct Job {
    method: &'static str,
    path: String,
    body: Vec<u8>,
}

/// Runs every job over one connection, `Connection` queueing on `NoSlot`, and returns the
/// responses in job order, plus the most streams that were open at once.
fn run(peer: &H2Peer, jobs: Vec<Job>) -> (Vec<Response>, usize) {
    let mut sock = TcpStream::connect(peer.addr()).expect("connect to the h2 peer");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    sock.set_nodelay(true).expect("nodelay");
    let settings = Settings {
        stream_window: DEFAULT_WINDOW,
        connection_window: DEFAULT_WINDOW,
        ..Settings::default()
    };
    let mut out = Vec::new();
    let mut conn = Connection::new(settings, &mut out);
    let mut queue: VecDeque<usize> = (0..jobs.len()).collect();
    let mut by_stream: HashMap<StreamId, usize> = HashMap::new();
    let mut responses = vec![Response::default(); jobs.len()];
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut most_open = 0;
    let started = Instant::now();
    let mut got_settings = false;

    while responses.iter().any(|r| !r.done) {
        assert!(
            started.elapsed() < DEADLINE,
            "the exchange took longer than {DEADLINE:?}"
        );
        // Start what the server's limit allows (only once its SETTINGS are in).
        while let Some(&j) = queue.front().filter(|_| got_settings) {
            let job = &jobs[j];
            let req = Request {
                method: job.method,
                scheme: "http",
                authority: "127.0.0.1",
                path: &job.path,
                headers: Fields::Pairs(&[]),
            };
            match conn.start_request(&req, &job.body, &mut out) {
                Ok(stream) => {
                    by_stream.insert(stream, j);
                    queue.pop_front();
                    most_open = most_open.max(conn.open_streams());
                }
                Err(StartError::NoSlot) => break,
                Err(e) => panic!("start_request: {e}"),
            }
        }
        if conn.wants_to_send() {
            conn.send_data(&mut out, |s| {
                by_stream.get(&s).map_or(&[][..], |&j| &jobs[j].body)
            });
        }
        if !out.is_empty() {
            sock.write_all(&out).expect("write to the h2 peer");
            out.clear();
        }
        match sock.read(&mut chunk) {
            Ok(0) => panic!("the h2 peer closed the connection"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => panic!("read from the h2 peer: {e}"),
        }
        let consumed = conn
            .receive(&buf, &mut out)
            .unwrap_or_else(|e| panic!("connection error: {e} ({:?})", conn.events()));
        for event in conn.events() {
            let slot = |s: &StreamId| {
                by_stream
                    .get(s)
                    .copied()
                    .expect("an event for a stream we opened")
            };
            match event {
                Event::Settings => got_settings = true,
                Event::Head {
                    stream,
                    status,
                    fields,
                } => {
                    let r = &mut responses[slot(stream)];
                    r.status = *status;
                    r.headers = conn
                        .fields()
                        .iter(fields.clone())
                        .map(|(n, v)| {
                            (
                                String::from_utf8_lossy(n).into_owned(),
                                String::from_utf8_lossy(v).into_owned(),
                            )
                        })
                        .collect();
                }
                Event::Data { stream, data } => {
                    let r = &mut responses[slot(stream)];
                    r.body_len += data.len();
                    if r.body.len() < 64 {
                        r.body.extend_from_slice(&buf[data.clone()]);
                    }
                }
                Event::End { stream } => responses[slot(stream)].done = true,
                other => panic!("unexpected event {other:?}"),
            }
        }
        buf.drain(..consumed);
    }
    (responses, most_open)
}

fn get(path: String) -> Job {
    Job {
        method: "GET",
        path,
        body: Vec::new(),
    }
}

#[test]
fn concurrent_streams_large_bodies_and_flow_control_against_python_h2() {
    if !H2Peer::available() {
        eprintln!(
            "note: skipping h2_codec: python3 cannot import `h2` (scripts/test.sh installs it)"
        );
        return;
    }
    let peer = H2Peer::start(4).expect("python h2 peer");
    let big_response = 300 * 1024;
    let upload: Vec<u8> = (0..200 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut jobs: Vec<Job> = (0..12)
        .map(|i| get(format!("/size/{}", i * 1000)))
        .collect();
    jobs.push(get(format!("/size/{big_response}")));
    jobs.push(Job {
        method: "POST",
        path: "/upload".into(),
        body: upload.clone(),
    });
    jobs.push(get("/missing".into()));
    let n = jobs.len();
    let (responses, most_open) = run(&peer, jobs);

    for (i, r) in responses.iter().take(12).enumerate() {
        assert_eq!(
            (r.status, r.body_len),
            (200, i * 1000),
            "GET /size/{}",
            i * 1000
        );
        assert_eq!(
            r.header("content-length"),
            Some((i * 1000).to_string().as_str())
        );
    }
    assert_eq!(
        (responses[12].status, responses[12].body_len),
        (200, big_response)
    );
    let up = &responses[13];
    assert_eq!(up.status, 200);
    assert_eq!(
        up.header("x-received"),
        Some(upload.len().to_string().as_str()),
        "the server saw the whole body"
    );
    assert_eq!(up.body, format!("received {}", upload.len()).into_bytes());
    assert_eq!(responses[14].status, 404);
    // The server's limit held, and it was used.
    assert_eq!(most_open, 4);
    // The server counted every request (the count is taken when it answers, so the last answer
    // to go out carries the total).
    let counts: Vec<usize> = responses
        .iter()
        .filter_map(|r| r.header("x-request-count").and_then(|c| c.parse().ok()))
        .collect();
    assert_eq!(counts.len(), n);
    assert_eq!(counts.iter().max(), Some(&n));
}

#[test]
fn one_stream_at_a_time_when_the_server_allows_one() {
    if !H2Peer::available() {
        eprintln!(
            "note: skipping h2_codec: python3 cannot import `h2` (scripts/test.sh installs it)"
        );
        return;
    }
    let peer = H2Peer::start(1).expect("python h2 peer");
    let jobs: Vec<Job> = (0..5)
        .map(|i| get(format!("/size/{}", 70_000 + i)))
        .collect();
    let (responses, most_open) = run(&peer, jobs);
    assert_eq!(most_open, 1);
    for (i, r) in responses.iter().enumerate() {
        assert_eq!((r.status, r.body_len), (200, 70_000 + i));
        assert_eq!(
            r.header("x-request-count"),
            Some((i + 1).to_string().as_str())
        );
    }
}
