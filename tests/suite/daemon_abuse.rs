//! `loadd serve` under abuse keeps serving and keeps its results intact: fifty API clients
//! hammering it and event-stream readers that stall for seconds during a run (which still ends
//! on time, its result matching what the target saw); submissions over the body limit (413) or
//! malformed (a 4xx with a message); bytes that are not HTTP, oversized heads and hundreds of
//! connections that never finish their request. After each, the next valid run goes through.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::{wire_exchange, Daemon, Sandbox};

const API_CLIENTS: usize = 50;
const SLOW_READERS: usize = 4;
const RUN_SECONDS: u64 = 3;
/// The body limit the abused daemon runs with (the default is 1 MiB): small, so going over is cheap.
const BODY_LIMIT: usize = 64 << 10;

fn closed_scenario(sandbox: &Sandbox, seconds: u64) -> String {
    format!(
        "[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nconnections = 4\nduration = \"{seconds}s\"\n",
        sandbox.url("/")
    )
}

/// `POST /v1/runs` with a TOML body: the new run's id.
fn submit(daemon: &Daemon, toml: &str) -> String {
    let (status, body) = daemon.call("POST", "/v1/runs", toml.as_bytes());
    assert_eq!(status, 201, "submit: {body}");
    let created: Value = serde_json::from_str(&body).expect("submit answers JSON");
    created["id"].as_str().expect("an id").to_string()
}

/// An event-stream reader that sends its request and then reads nothing until told to.
/// HTTP/1.0, so the stream is close-delimited (no chunk framing to undo).
struct StalledReader(TcpStream);

impl StalledReader {
    fn open(daemon: &Daemon, id: &str) -> StalledReader {
        let mut stream = TcpStream::connect(daemon.addr()).expect("connect to loadd");
        let request = format!(
            "GET /v1/runs/{id}/events HTTP/1.0\r\nHost: loadd\r\nAuthorization: Bearer {}\r\n\r\n",
            daemon.token()
        );
        stream.write_all(request.as_bytes()).expect("send");
        StalledReader(stream)
    }

    /// Reads the whole stream, which must end (bounded) after the run's last event.
    fn read_to_end(mut self) -> String {
        self.0
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut text = String::new();
        self.0
            .read_to_string(&mut text)
            .expect("the event stream ends after the run's last event");
        text
    }
}

/// `(event, id, data)` of each Server-Sent Event in a stream's text (head skipped).
fn events(stream: &str) -> Vec<(String, Option<u64>, String)> {
    let body = stream.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim_start().to_string())
            };
            (
                field("event:").unwrap_or_default(),
                field("id:").and_then(|i| i.parse().ok()),
                field("data:").unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn api_crowds_and_stalled_event_readers_do_not_disturb_a_run() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Arc::new(Daemon::start(&tmp.path().join("state"), &[]).expect("loadd serve"));

    let submitted = Instant::now();
    let id = submit(&daemon, &closed_scenario(&sandbox, RUN_SECONDS));
    let readers: Vec<StalledReader> = (0..SLOW_READERS)
        .map(|_| StalledReader::open(&daemon, &id))
        .collect();
    // One more that leaves mid-run without reading a byte.
    let deserter = StalledReader::open(&daemon, &id);
    let tail = {
        let daemon = Arc::clone(&daemon);
        let id = id.clone();
        std::thread::spawn(move || daemon.loadctl(&["tail", &id], Duration::from_secs(30)))
    };

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let crowd: Vec<_> = (0..API_CLIENTS)
        .map(|c| {
            let (daemon, stop, calls, refused) = (
                Arc::clone(&daemon),
                Arc::clone(&stop),
                Arc::clone(&calls),
                Arc::clone(&refused),
            );
            let paths = [
                "/v1/runs".to_string(),
                format!("/v1/runs/{id}"),
                "/metrics".to_string(),
                "/v1/health".to_string(),
            ];
            std::thread::spawn(move || {
                let mut k = c;
                while !stop.load(Ordering::Relaxed) {
                    let path = &paths[k % paths.len()];
                    k += 1;
                    let (status, body) = daemon.call("GET", path, b"");
                    calls.fetch_add(1, Ordering::Relaxed);
                    if status != 200 {
                        let mut refused = refused.lock().unwrap_or_else(|p| p.into_inner());
                        refused.push(format!("{path}: {status} {body}"));
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    drop(deserter);
    // On time: the engine's clock ends the run, not the API's load.
    let run = daemon.wait_run(&id, Duration::from_secs(RUN_SECONDS + 5), |r| {
        r["state"] != "queued" && r["state"] != "running"
    });
    let took = submitted.elapsed();
    stop.store(true, Ordering::Relaxed);
    for client in crowd {
        client.join().expect("API client thread");
    }
    assert_eq!(run["state"], "finished", "{run}");
    assert!(
        took < Duration::from_secs(RUN_SECONDS + 3),
        "a {RUN_SECONDS} s run took {took:?} to finish"
    );
    let refused = refused.lock().unwrap_or_else(|p| p.into_inner());
    assert!(
        refused.is_empty(),
        "{} refused: {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    let calls = calls.load(Ordering::Relaxed);
    assert!(
        calls >= API_CLIENTS as u64 * 5,
        "only {calls} API calls were served"
    );

    // The result is intact: every request it counts, the target saw; nothing failed.
    let report = daemon.json(&format!("/v1/runs/{id}/report"));
    let requests = report["requests"].as_u64().expect("requests");
    assert!(requests > 0, "{report}");
    assert_eq!(report["errors_total"], 0, "{report}");
    assert_eq!(sandbox.requests().expect("sandbox stats"), requests);
    let elapsed = report["elapsed_s"].as_f64().unwrap_or(0.0);
    assert!(
        (RUN_SECONDS as f64 - 0.1..RUN_SECONDS as f64 + 0.5).contains(&elapsed),
        "elapsed_s {elapsed}"
    );

    // The stalled readers get everything, in order, ending with that same result.
    for reader in readers {
        let text = reader.read_to_end();
        let events = events(&text);
        assert_eq!(events.first().map(|e| e.0.as_str()), Some("run"), "{text}");
        let ids: Vec<u64> = events.iter().filter_map(|e| e.1).collect();
        let expected: Vec<u64> = (1..=ids.len() as u64).collect();
        assert_eq!(ids, expected, "intervals in order, none missing: {text}");
        assert!(ids.len() as u64 >= RUN_SECONDS, "{text}");
        let (last, _, data) = events.last().expect("events");
        assert_eq!(last, "finished", "{text}");
        let result: Value = serde_json::from_str(data).expect("the result is JSON");
        assert_eq!(result["requests"], requests, "{result}");
        assert_eq!(result["errors_total"], 0);
    }
    let tail = tail.join().expect("tail thread");
    assert_eq!(tail.code, Some(0), "{}", tail.stderr);
}

/// A `POST /v1/runs` head with the token and `extra` header lines.
fn submit_head(daemon: &Daemon, extra: &str) -> Vec<u8> {
    format!(
        "POST /v1/runs HTTP/1.1\r\nHost: loadd\r\nAuthorization: Bearer {}\r\n{extra}\r\n",
        daemon.token()
    )
    .into_bytes()
}

/// The JSON `error` of a refusal, which must be there and say something.
fn error_message(reply: &testbed::WireReply) -> String {
    let body = reply.text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json: Value = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("refusal body is not JSON ({e}): {}", reply.text));
    let error = json["error"].as_str().unwrap_or_default().to_string();
    assert!(!error.is_empty(), "no message: {json}");
    match json["details"].as_array() {
        Some(details) => format!("{error}: {details:?}"),
        None => error,
    }
}

#[test]
fn oversized_and_malformed_submissions_are_refused_and_the_next_run_goes_through() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let limit = BODY_LIMIT.to_string();
    let mut daemon =
        Daemon::start(&tmp.path().join("state"), &["--max-body-bytes", &limit]).expect("loadd");
    let addr = daemon.addr();
    let quiet = Duration::from_millis(500);
    let send = |parts: &[&[u8]]| wire_exchange(addr, parts, quiet).expect("exchange");

    // Over the limit, however it is framed: 413 with a message, before the whole body is read.
    let big = vec![b'#'; 4 * BODY_LIMIT];
    let with_length = submit_head(&daemon, &format!("Content-Length: {}\r\n", big.len()));
    let chunked: Vec<u8> = big
        .chunks(16 << 10)
        .flat_map(|c| {
            [
                format!("{:x}\r\n", c.len()).into_bytes(),
                c.to_vec(),
                b"\r\n".to_vec(),
            ]
        })
        .flatten()
        .chain(b"0\r\n\r\n".iter().copied())
        .collect();
    let multipart = [
        &b"--B\r\nContent-Disposition: form-data; name=\"scenario\"; filename=\"s.toml\"\r\n\r\n"[..],
        &big,
        b"\r\n--B--\r\n",
    ]
    .concat();
    for (what, head, body) in [
        ("a long body", with_length, big.clone()),
        (
            "a chunked body",
            submit_head(&daemon, "Transfer-Encoding: chunked\r\n"),
            chunked,
        ),
        (
            "a multipart bundle",
            submit_head(
                &daemon,
                &format!(
                    "Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n",
                    multipart.len()
                ),
            ),
            multipart,
        ),
    ] {
        let reply = send(&[&head, &body]);
        assert_eq!(reply.status, Some(413), "{what}: {reply:?}");
        let message = error_message(&reply);
        assert!(message.contains(&limit), "{what}: {message}");
    }

    // Malformed: a 4xx that says what is wrong.
    let body_of = |extra: &str, body: &[u8]| {
        let head = submit_head(
            &daemon,
            &format!("{extra}Content-Length: {}\r\n", body.len()),
        );
        send(&[&head, body])
    };
    for (what, extra, body, says) in [
        (
            "TOML that does not parse",
            "",
            &b"[[[target"[..],
            "invalid scenario",
        ),
        (
            "a JSON envelope",
            "Content-Type: application/json\r\n",
            br#"{"scenario": "[target]\nurl = \"http://127.0.0.1:1/\""}"#,
            "invalid scenario",
        ),
        ("bytes that are not text", "", b"\xff\xfe\x00\x01", "UTF-8"),
        (
            "multipart without a boundary",
            "Content-Type: multipart/form-data\r\n",
            b"--B\r\n",
            "boundary",
        ),
        (
            "multipart that is not",
            "Content-Type: multipart/form-data; boundary=B\r\n",
            b"no parts in here",
            "multipart",
        ),
        ("an empty body", "", b"", "invalid scenario"),
    ] {
        let reply = body_of(extra, body);
        let status = reply.status.unwrap_or(0);
        assert!((400..500).contains(&status), "{what}: {reply:?}");
        let message = error_message(&reply);
        assert!(message.contains(says), "{what}: {message}");
    }
    let (status, body) = daemon.call("POST", "/v1/runs?rate_scale=lots", b"[target]\n");
    assert_eq!(status, 400, "{body}");

    // Not HTTP, or a head no server should buffer: refused by the HTTP layer, loadd stays up.
    let reply = send(&[b"HELLO LOADD\r\n\r\n"]);
    assert_eq!(reply.status, Some(400), "{reply:?}");
    let mut flood = b"GET /v1/health HTTP/1.1\r\nHost: loadd\r\n".to_vec();
    for i in 0..500 {
        flood.extend_from_slice(format!("x-flood-{i}: {i}\r\n").as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let reply = send(&[&flood]);
    assert_eq!(reply.status, Some(431), "{reply:?}");
    let mut huge = b"GET /v1/health HTTP/1.1\r\nHost: loadd\r\nx-huge: ".to_vec();
    huge.resize(huge.len() + (1 << 20), b'a');
    huge.extend_from_slice(b"\r\n\r\n");
    let reply = send(&[&huge]);
    assert!(
        reply.status.is_some_and(|s| (400..500).contains(&s)) || reply.write_error.is_some(),
        "a 1 MiB head is refused: {reply:?}"
    );

    // Hundreds of connections that never finish their head, and one that announces a body far
    // over the limit without sending it: while they hang, the API answers at once.
    let partial = b"GET /v1/runs HTTP/1.1\r\nHost: loadd\r\nAuthor";
    let mut hanging: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect to loadd");
            s.write_all(partial).expect("send half a head");
            s
        })
        .collect();
    let mut liar = TcpStream::connect(addr).expect("connect to loadd");
    liar.write_all(&submit_head(&daemon, "Content-Length: 1000000000\r\n"))
        .expect("send head");
    hanging.push(liar);
    let asked = Instant::now();
    assert_eq!(daemon.health(), 200);
    assert_eq!(daemon.call("GET", "/v1/runs", b"").0, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "the API took {:?} to answer",
        asked.elapsed()
    );

    // Nothing was created by any of it, and the next valid run goes through, intact.
    assert_eq!(daemon.json("/v1/runs")["runs"], serde_json::json!([]));
    let file = tmp.path().join("valid.toml");
    std::fs::write(&file, closed_scenario(&sandbox, 1)).expect("write scenario");
    let out = daemon.loadctl(
        &["submit", file.to_str().expect("utf-8 path")],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let runs = daemon.json("/v1/runs");
    let id = runs["runs"][0]["id"].as_str().expect("id");
    let report = daemon.json(&format!("/v1/runs/{id}/report"));
    let requests = report["requests"].as_u64().expect("requests");
    assert!(requests > 0, "{report}");
    assert_eq!(report["errors_total"], 0, "{report}");
    assert_eq!(sandbox.requests().expect("sandbox stats"), requests);
    drop(hanging);
    assert!(daemon.is_running(), "loadd died");
}

#[test]
fn simultaneous_submissions_queue_and_each_result_is_exact() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Arc::new(Daemon::start(&tmp.path().join("state"), &[]).expect("loadd serve"));
    const RUNS: usize = 5;
    let toml = format!(
        "[target]\nurl = \"{}\"\n[load]\nmodel = \"closed\"\nconnections = 2\nduration = \"500ms\"\n",
        sandbox.url("/")
    );
    let barrier = Arc::new(std::sync::Barrier::new(RUNS));
    let submitters: Vec<_> = (0..RUNS)
        .map(|_| {
            let (daemon, toml, barrier) = (Arc::clone(&daemon), toml.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                submit(&daemon, &toml)
            })
        })
        .collect();
    let ids: Vec<String> = submitters
        .into_iter()
        .map(|s| s.join().expect("submitter"))
        .collect();
    let mut total = 0;
    let mut spans = Vec::new();
    for id in &ids {
        let run = daemon.wait_run(id, Duration::from_secs(20), |r| {
            r["state"] != "queued" && r["state"] != "running"
        });
        assert_eq!(run["state"], "finished", "{run}");
        let report = daemon.json(&format!("/v1/runs/{id}/report"));
        assert_eq!(report["errors_total"], 0, "{report}");
        let requests = report["requests"].as_u64().expect("requests");
        assert!(requests > 0, "{report}");
        total += requests;
        let started = report["environment"]["started_unix_ms"]
            .as_u64()
            .expect("started_unix_ms");
        let elapsed_ms = (report["elapsed_s"].as_f64().unwrap_or(0.0) * 1000.0) as u64;
        spans.push((started, started + elapsed_ms));
    }
    // One at a time: no two runs overlapped (1 ms of clock rounding allowed).
    spans.sort_unstable();
    for pair in spans.windows(2) {
        assert!(pair[1].0 + 1 >= pair[0].1, "runs overlapped: {spans:?}");
    }
    // Together they account for exactly what the target saw.
    assert_eq!(sandbox.requests().expect("sandbox stats"), total);
}

/// A two-scenario file whose connections are `a` and `b`.
fn two_scenarios(sandbox: &Sandbox, a: u64, b: u64) -> String {
    let url = sandbox.url("/");
    let section = |name: &str, n: u64| {
        format!(
            "[scenarios.{name}.load]\nconnections = {n}\nrequests = {n}\n\
             [[scenarios.{name}.steps]]\npath = \"/\"\n"
        )
    };
    format!(
        "[target]\nurl = \"{url}\"\n{}{}",
        section("a", a),
        section("b", b)
    )
}

#[test]
fn connection_totals_over_scenarios_cannot_wrap_under_the_limit() {
    let _serial = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&tmp.path().join("state"), &["--max-connections", "100"])
        .expect("loadd serve");
    // Two halves of 2^32: a wrapping u32 sum is 0, under any limit.
    let (status, body) = daemon.call(
        "POST",
        "/v1/runs",
        two_scenarios(&sandbox, 1 << 31, 1 << 31).as_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("connections: total over all scenarios exceeds 4294967295"),
        "{body}"
    );
    // Each under the limit, together over it: the daemon's limit is named.
    let (status, body) = daemon.call(
        "POST",
        "/v1/runs",
        two_scenarios(&sandbox, 60, 60).as_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("limit of 100"), "{body}");
    assert_eq!(daemon.json("/v1/runs")["runs"], serde_json::json!([]));
    assert_eq!(sandbox.requests().expect("sandbox stats"), 0);
}

/// Half-open sockets that never send a byte: the listener keeps answering, and after the header
/// timeout the daemon has closed every one of them.
#[test]
fn silent_connections_cannot_starve_the_listener() {
    const SILENT: usize = 2000;
    let _serial = testbed::serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut daemon = Daemon::start(
        &tmp.path().join("state"),
        &["--header-timeout", "1s", "--max-api-connections", "4096"],
    )
    .expect("loadd serve");
    let opened = Instant::now();
    // In batches: a burst past the kernel's accept queue leaves connections the daemon never
    // sees (the client thinks them open), which no server-side timeout can close.
    let silent: Vec<TcpStream> = (0..SILENT)
        .map(|i| {
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(10));
            }
            TcpStream::connect(daemon.addr()).expect("connect to loadd")
        })
        .collect();
    let asked = Instant::now();
    assert_eq!(daemon.health(), 200);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "health took {:?} behind {SILENT} silent connections",
        asked.elapsed()
    );
    // Past the header timeout each read ends: EOF (or a reset), never a wait.
    let deadline = opened + Duration::from_secs(10);
    for mut s in silent {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .expect("read timeout");
        let mut byte = [0u8; 64];
        match s.read(&mut byte) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("a silent connection stayed open past the header timeout: {e}"),
        }
    }
    assert!(daemon.is_running(), "loadd died");
}

/// Past `--max-api-connections` a new connection is closed at once; a slot frees when one ends.
#[test]
fn api_connections_past_the_cap_are_closed_at_once() {
    let _serial = testbed::serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        &tmp.path().join("state"),
        // A header timeout well past the read below: only the cap can close `extra` in time.
        &["--header-timeout", "3s", "--max-api-connections", "8"],
    )
    .expect("loadd serve");
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(daemon.addr()).expect("connect to loadd"))
        .collect();
    // Give the accept loop time to take all eight.
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(daemon.addr()).expect("connect to loadd");
    extra
        .set_read_timeout(Some(Duration::from_millis(900)))
        .expect("read timeout");
    let mut buf = [0u8; 16];
    let closed = match extra.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "a connection past the cap was kept open");
    drop(held);
    // Freed slots serve again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while daemon.health() != 200 {
        assert!(
            Instant::now() < deadline,
            "the API did not answer after slots freed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
