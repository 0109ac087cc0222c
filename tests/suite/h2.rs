//! loadctl over HTTP/2 (h2c, prior knowledge): `--http2 --streams N` and `[target] http = "2"`
//! against nginx (counts checked against its `stub_status`; its GOAWAY after 1000 requests per
//! connection crossed several times) and against an independent Python `h2` server (a
//! MAX_CONCURRENT_STREAMS of 1 below our streams, bodies past the flow-control windows, uploads,
//! a stream that never answers), journeys with captures and checks over h2, HTTP/2 over TLS
//! (ALPN `h2`) against nginx, and the located refusals of what is not supported.

use serde_json::Value;
use testbed::{
    run_file, run_loadctl_timeout, scenario_file, serial, step, H2Peer, Nginx, NginxConfig,
    NginxTls, Pki,
};

/// `None` is loadctl's default driver (auto: io_uring where it builds).
const DRIVERS: [Option<&str>; 2] = [None, Some("legacy")];

fn count(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not an unsigned integer in {v}"))
}

/// Step `name` of `r` made `requests` requests without an error and failed `checks_failed`
/// checks.
fn assert_step(r: &Value, name: &str, requests: u64, checks_failed: u64) {
    let s = step(r, name);
    assert_eq!(s["requests"], requests, "{name}: {s}");
    assert_eq!(s["errors_total"], 0, "{name}: {s}");
    assert_eq!(s["checks_failed"], checks_failed, "{name}: {s}");
}

fn run(url: &str, args: &[&str], driver: Option<&str>) -> Value {
    let mut argv = vec!["run", url, "--http2"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--output", "json"]);
    if let Some(driver) = driver {
        argv.extend_from_slice(&["--driver", driver]);
    }
    testbed::run_json(&argv)
}

fn h2_nginx() -> Nginx {
    Nginx::start_with(NginxConfig {
        h2c: true,
        ..NginxConfig::default()
    })
    .expect("start nginx with an h2c listener")
}

fn peer(max_streams: u32) -> Option<H2Peer> {
    if !H2Peer::available() {
        eprintln!("skipped: python3 cannot import h2 (scripts/test.sh installs it)");
        return None;
    }
    Some(H2Peer::start(max_streams).expect("start the h2 peer"))
}

#[test]
fn streams_share_connections_and_nginx_counts_every_request() {
    let _load = serial();
    for driver in DRIVERS {
        let d = driver.unwrap_or("default");
        let nginx = h2_nginx();
        // 16 requests in flight on 2 connections; nginx ends each connection with GOAWAY
        // after 1000 requests (keepalive_requests), so the run reconnects at least 4 times.
        let v = run(
            &nginx.h2c_url("/"),
            &["-c", "2", "--streams", "8", "-n", "5000"],
            driver,
        );
        let stats = nginx.stub_status().expect("stub_status");
        assert_eq!(count(&v, "/requests"), 5000, "[{d}] {v}");
        assert_eq!(v["model"]["connections"], 2, "[{d}]");
        assert_eq!(v["model"]["h2_streams"], 8, "[{d}]");
        assert_eq!(v["http_version"], serde_json::json!({ "2": 5000 }), "[{d}]");
        assert_eq!(count(&v, "/status/2xx"), 5000, "[{d}] {}", v["status"]);
        assert_eq!(count(&v, "/errors_total"), 0, "[{d}] {}", v["errors"]);
        assert_eq!(stats.requests, 5000, "[{d}] nginx saw {stats:?}");
        // One connection per 1000 requests, not one per stream (that would be 16 up front).
        assert!(
            (5..=10).contains(&stats.accepts),
            "[{d}] streams did not share connections: {stats:?}"
        );
        assert!(count(&v, "/bytes_in") >= 5000 * testbed::NGINX_INDEX_BODY.len() as u64);
    }
}

#[test]
fn the_open_model_over_h2_sends_what_the_schedule_asks() {
    let _load = serial();
    let nginx = h2_nginx();
    let v = run(
        &nginx.h2c_url("/"),
        &["-c", "2", "--streams", "4", "-R", "400", "-d", "2s"],
        None,
    );
    let sent = count(&v, "/requests");
    assert!(
        (700..=820).contains(&sent),
        "400/s for 2 s sent {sent}: {v}"
    );
    assert_eq!(count(&v, "/errors_total"), 0, "{}", v["errors"]);
    assert_eq!(v["model"]["kind"], "open");
    assert_eq!(nginx.requests().expect("requests"), sent);
}

#[test]
fn a_server_allowing_one_stream_makes_the_others_wait_without_errors() {
    let Some(peer) = peer(1) else { return };
    let _load = serial();
    // 1.5 MB bodies: past our 1 MiB stream window, and 30 of them past our 16 MiB connection
    // window, so the run lives on the WINDOW_UPDATEs we send.
    let url = format!("http://{}/size/1500000", peer.addr());
    let v = run(&url, &["-c", "1", "--streams", "4", "-n", "30"], None);
    assert_eq!(count(&v, "/requests"), 30, "{v}");
    assert_eq!(count(&v, "/status/2xx"), 30, "{}", v["status"]);
    assert_eq!(count(&v, "/errors_total"), 0, "{}", v["errors"]);
    assert!(count(&v, "/bytes_in") >= 30 * 1_500_000, "{v}");
}

#[test]
fn a_journey_captures_and_checks_over_h2() {
    let Some(peer) = peer(100) else { return };
    let _load = serial();
    // The upload is larger than the server's 64 KiB windows: it waits for its WINDOW_UPDATEs.
    let body = "y".repeat(70_000);
    let file = scenario_file(
        "h2",
        "journey.toml",
        &format!(
            r#"[target]
url = "http://{addr}"
http = "2"
streams = 4
[load]
connections = 1
requests = 40
[[steps]]
name = "upload"
method = "POST"
path = "/upload"
body = "{body}"
capture = {{ seen = {{ regex = "received (\\d+)" }}, header_seen = {{ header = "x-received" }} }}
check = {{ status = [200], header = ["x-request-count"] }}
[[steps]]
name = "download"
path = "/size/{{{{seen}}}}"
check = {{ status = [200], body_contains = "yyy" }}
[[steps]]
name = "echo"
path = "/size/{{{{header_seen}}}}"
check = {{ status = [200], body_contains = "xxxxxxxx", body_not_contains = "y" }}
[[steps]]
name = "scheme"
path = "/scheme"
check = {{ body_contains = "http", body_not_contains = "https" }}
"#,
            addr = peer.addr()
        ),
    );
    let (code, r, stderr) = run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(r["iterations"], 40, "{r}");
    assert_step(&r, "upload", 40, 0);
    // What the server got is what was captured: /size/70000 worked with either capture.
    // The body is 'x's: body_contains "yyy" fails every time — the checks really read it.
    assert_step(&r, "download", 40, 40);
    assert_step(&r, "echo", 40, 0);
    // h2c sends `:scheme: http`.
    assert_step(&r, "scheme", 40, 0);
    assert!(count(&r, "/bytes_in") >= 80 * 70_000, "{r}");
}

#[test]
fn a_stream_that_never_answers_times_out_while_the_connection_goes_on() {
    let Some(peer) = peer(100) else { return };
    let _load = serial();
    let file = scenario_file(
        "h2",
        "stall.toml",
        &format!(
            r#"[target]
url = "http://{addr}"
http = "2"
streams = 2
[load]
connections = 1
requests = 20
[[steps]]
name = "fast"
path = "/size/10"
[[steps]]
name = "stall"
path = "/stall"
timeout = "100ms"
"#,
            addr = peer.addr()
        ),
    );
    let (code, r, stderr) = run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_step(&r, "fast", 20, 0);
    let stall = step(&r, "stall");
    assert_eq!(stall["errors"]["timeout"], 20, "{stall}");
}

#[test]
fn what_h2_does_not_support_is_refused_at_its_line() {
    // (file name, [target] body after its url line, line of the error, what it says)
    let cases = [
        (
            "ws.toml",
            "url = \"ws://127.0.0.1:1/ws\"\nhttp = \"2\"",
            3,
            "not WebSockets",
        ),
        (
            "alone.toml",
            "url = \"http://127.0.0.1:1\"\nstreams = 4",
            3,
            "http = \"2\"",
        ),
        (
            "too_many.toml",
            "url = \"http://127.0.0.1:1\"\nhttp = \"2\"\nstreams = 5000",
            4,
            "1024",
        ),
        (
            "version.toml",
            "url = \"http://127.0.0.1:1\"\nhttp = \"3\"",
            3,
            "\"1.1\" or \"2\"",
        ),
        (
            "auto.toml",
            "url = \"https://127.0.0.1:1\"\nhttp = \"auto\"",
            3,
            "not supported yet",
        ),
    ];
    for (name, target, line, needle) in cases {
        let file = scenario_file("h2", name, &format!("[target]\n{target}\n"));
        testbed::assert_located(&file, &[(line, needle)]);
    }

    // A flag mistake is one line and exit 2, before any traffic.
    let out = run_loadctl_timeout(
        ["run", "http://127.0.0.1:1/", "--streams", "4"],
        std::time::Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--http2"), "{err}");
}

#[test]
fn resets_and_broken_frames_are_counted_while_the_run_goes_on() {
    let Some(peer) = peer(100) else { return };
    let _load = serial();
    let reset = run(
        &format!("http://{}/reset", peer.addr()),
        &["-c", "1", "--streams", "4", "-n", "40"],
        None,
    );
    assert_eq!(
        count(&reset, "/errors/h2_stream_reset"),
        40,
        "{}",
        reset["errors"]
    );
    assert_eq!(count(&reset, "/errors_total"), 40, "{}", reset["errors"]);
    // A DATA frame on stream 0 ends the connection: each request fails on its own connection
    // and the next one reconnects.
    let broken = run(
        &format!("http://{}/garbage", peer.addr()),
        &["-c", "1", "-n", "20"],
        None,
    );
    assert_eq!(
        count(&broken, "/errors/h2_protocol"),
        20,
        "{}",
        broken["errors"]
    );
    assert_eq!(count(&broken, "/errors_total"), 20, "{}", broken["errors"]);
}

#[test]
fn a_10_mib_upload_waits_for_the_servers_small_windows() {
    let Some(peer) = peer(100) else { return };
    let _load = serial();
    // Python h2's windows are the RFC's 64 KiB: 10 MiB go out as its WINDOW_UPDATEs allow.
    let dir = tempfile::tempdir().expect("temp dir");
    let body = dir.path().join("body.bin");
    std::fs::write(&body, vec![b'z'; 10 << 20]).expect("write body");
    let file = scenario_file(
        "h2",
        "upload.toml",
        &format!(
            r#"[target]
url = "http://{addr}"
http = "2"
streams = 2
[load]
connections = 1
requests = 4
[[steps]]
name = "upload"
method = "POST"
path = "/upload"
body_file = "{body}"
check = {{ body_contains = "received 10485760" }}
"#,
            addr = peer.addr(),
            body = body.display()
        ),
    );
    let (code, r, stderr) = run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    // Its check passes only if the server counted every byte.
    assert_step(&r, "upload", 4, 0);
    assert!(count(&r, "/bytes_out") >= 4 * (10 << 20), "{r}");
}

fn tls_nginx(pki: &Pki, http2: bool) -> Nginx {
    let mut tls = NginxTls::new(&pki.server_cert, &pki.server_key);
    tls.http2 = http2;
    Nginx::start_tls(NginxConfig::default(), tls).expect("start nginx with TLS")
}

#[test]
fn https_speaks_h2_by_alpn_and_a_server_without_h2_is_never_sent_http1() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    for driver in DRIVERS {
        let d = driver.unwrap_or("default");
        let nginx = tls_nginx(&pki, true);
        // Past nginx's 1000 requests per connection: GOAWAY and reconnects over TLS too.
        let v = run(
            &nginx.https_url("/"),
            &["-k", "-c", "2", "--streams", "8", "-n", "3000"],
            driver,
        );
        let stats = nginx.stub_status().expect("stub_status");
        assert_eq!(count(&v, "/requests"), 3000, "[{d}] {v}");
        assert_eq!(count(&v, "/errors_total"), 0, "[{d}] {}", v["errors"]);
        assert_eq!(stats.requests, 3000, "[{d}] {stats:?}");
        assert!((3..=8).contains(&stats.accepts), "[{d}] {stats:?}");
        assert_eq!(v["http_version"], serde_json::json!({ "2": 3000 }), "[{d}]");
        assert!(count(&v, "/tls/handshakes") >= 3, "[{d}] {}", v["tls"]);
    }
    // The same run against a listener without http2: we offer only h2, nginx ends each
    // handshake with a no_application_protocol alert, and nothing is sent as HTTP/1.1.
    let nginx = tls_nginx(&pki, false);
    let v = run(
        &nginx.https_url("/"),
        &["-k", "-c", "1", "-n", "20", "--timeout", "2s"],
        None,
    );
    let alerts = count(&v, "/errors/tls_alert");
    assert!(alerts >= 20, "{}", v["errors"]);
    assert_eq!(count(&v, "/errors_total"), alerts, "{}", v["errors"]);
    assert_eq!(count(&v, "/requests"), 0, "{v}");
    assert_eq!(nginx.requests().expect("requests"), 0);
}

#[test]
fn a_journey_over_tls_h2_checks_what_nginx_sends() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    let nginx = tls_nginx(&pki, true);
    let file = scenario_file(
        "h2",
        "tls_journey.toml",
        &format!(
            r#"[target]
url = "{url}"
http = "2"
streams = 4
[tls]
ca_file = "{ca}"
[load]
connections = 1
requests = 50
[[steps]]
name = "index"
path = "/"
capture = {{ server = {{ header = "server" }} }}
check = {{ status = [200], body_contains = "nginx" }}
[[steps]]
name = "missing"
path = "/notfound"
expect_status = [404]
"#,
            url = nginx.https_url(""),
            ca = pki.ca.display()
        ),
    );
    let (code, r, stderr) = run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_step(&r, "index", 50, 0);
    assert_step(&r, "missing", 50, 0);
    assert_eq!(nginx.requests().expect("requests"), 100);
}

#[test]
fn an_independent_tls_server_speaks_h2_and_one_without_alpn_is_refused() {
    if !H2Peer::available() {
        eprintln!("skipped: python3 cannot import h2 (scripts/test.sh installs it)");
        return;
    }
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    // Python's ssl and h2 as a second TLS peer: ALPN h2, a 1 MiB body past our stream window,
    // and `:scheme` as the server saw it.
    let peer = H2Peer::start_tls(100, &pki.server_cert, &pki.server_key, "h2").expect("peer");
    let file = scenario_file(
        "h2",
        "python_tls.toml",
        &format!(
            r#"[target]
url = "https://{addr}"
http = "2"
streams = 4
[tls]
insecure_skip_verify = true
[load]
connections = 1
requests = 20
[[steps]]
name = "big"
path = "/size/1048576"
[[steps]]
name = "scheme"
path = "/scheme"
check = {{ body_contains = "https" }}
"#,
            addr = peer.addr()
        ),
    );
    let (code, r, stderr) = run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(count(&r, "/requests"), 40, "{r}");
    assert_eq!(count(&r, "/errors_total"), 0, "{}", r["errors"]);
    assert_step(&r, "big", 20, 0);
    assert_step(&r, "scheme", 20, 0);
    assert!(count(&r, "/bytes_in") >= 20 << 20, "{r}");
    // A server that completes the handshake without agreeing to h2: never spoken to.
    let plain =
        H2Peer::start_tls(100, &pki.server_cert, &pki.server_key, "http/1.1").expect("peer");
    let url = format!("https://{}/size/10", plain.addr());
    let v = run(
        &url,
        &["-k", "-c", "1", "-n", "10", "--timeout", "2s"],
        None,
    );
    let refused = count(&v, "/errors/h2_protocol");
    assert!(refused >= 10, "{}", v["errors"]);
    assert_eq!(count(&v, "/errors_total"), refused, "{}", v["errors"]);
    assert_eq!(count(&v, "/requests"), 0, "{v}");
}
