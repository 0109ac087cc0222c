//! loadctl against a real nginx: every count is checked against what nginx itself saw
//! (`stub_status`), for keep-alive, chunked bodies, server-side closes, HEAD, 204, 304, 4xx, 5xx,
//! large bodies and the open model — once with the default driver and once with `--driver legacy`.
//!
//! The first test checks the harness itself over raw sockets, so it runs without loadctl.

use serde_json::Value;
use testbed::{raw_request, run_json, serial, Nginx, NginxConfig, NGINX_INDEX_BODY};

/// `None` is loadctl's default driver (auto: io_uring where it builds).
const DRIVERS: [Option<&str>; 2] = [None, Some("legacy")];
const MIB: u64 = 1 << 20;
/// Far enough ahead that every file is older: nginx answers 304.
const FAR_FUTURE: &str = "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT";

/// `loadctl run URL ARGS --output json [--driver D]`, checked to have run on driver `D`.
fn run(url: &str, args: &[&str], driver: Option<&str>) -> Value {
    let mut argv = vec!["run", url];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--output", "json"]);
    if let Some(driver) = driver {
        argv.extend_from_slice(&["--driver", driver]);
    }
    let v = run_json(&argv);
    let ran = v["driver"].as_str().unwrap_or_default();
    match driver {
        Some("legacy") => assert_eq!(ran, "legacy", "--driver legacy ran on {ran:?}"),
        _ => assert!(
            ran == "io_uring" || ran == "legacy",
            "unknown driver {ran:?} in {v}"
        ),
    }
    v
}

fn count(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not an unsigned integer in {v}"))
}

fn number(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is not a number in {v}"))
}

fn label(driver: Option<&str>) -> &str {
    driver.unwrap_or("default")
}

#[test]
fn harness_serves_what_the_tests_expect() {
    let nginx = Nginx::start().expect("start nginx");
    let addr = nginx.addr();

    let index = raw_request(addr, "GET", "/", &[], b"").expect("GET /");
    assert_eq!(index.status, 200);
    assert_eq!(index.body_text(), NGINX_INDEX_BODY);

    let chunked = raw_request(addr, "GET", "/chunked", &[], b"").expect("GET /chunked");
    assert_eq!(chunked.status, 200);
    assert!(
        chunked.is_chunked(),
        "/chunked is not chunked: {:?}",
        chunked.headers
    );
    assert!(chunked.header("content-length").is_none());
    assert!(
        chunked.body_text().contains("from ssi"),
        "{}",
        chunked.body_text()
    );
    assert!(
        chunked.body.ends_with(b"0\r\n\r\n"),
        "no last chunk: {:?}",
        chunked.body_text()
    );

    let (name, value) = FAR_FUTURE.split_once(": ").expect("header");
    let cached = raw_request(addr, "GET", "/cacheable.txt", &[(name, value)], b"").expect("304");
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());

    let big = raw_request(addr, "GET", "/big", &[], b"").expect("GET /big");
    assert_eq!(big.status, 200);
    assert_eq!(big.body.len() as u64, MIB);

    let head = raw_request(addr, "HEAD", "/", &[], b"").expect("HEAD /");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(head.header("content-length").is_some());

    for (path, status) in [("/empty", 204), ("/notfound", 404), ("/err", 500)] {
        let response = raw_request(addr, "GET", path, &[], b"").expect(path);
        assert_eq!(response.status, status, "{path}");
    }
    // /close's keep-alive is off even though the request did not ask for a close.
    let close = raw_http_keepalive_probe(addr, "/close");
    assert!(
        close.to_ascii_lowercase().contains("connection: close"),
        "{close}"
    );
    let keep = raw_http_keepalive_probe(addr, "/");
    assert!(
        keep.to_ascii_lowercase().contains("connection: keep-alive"),
        "{keep}"
    );

    // Ten requests above, each on its own connection; the harness's own probes are subtracted.
    let stats = nginx.stub_status().expect("stub_status");
    assert_eq!(stats.requests, 10, "{stats:?}");
    assert_eq!(stats.accepts, 10, "{stats:?}");
    assert_eq!(nginx.requests().expect("requests"), 10);
}

/// Sends one HTTP/1.1 request without `Connection: close` and returns the response head.
fn raw_http_keepalive_probe(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read head");
        assert_eq!(n, 1, "server closed before the end of the head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn keepalive_closed_run_matches_what_nginx_counted() {
    let _load = serial();
    for driver in DRIVERS {
        let nginx = Nginx::start().expect("start nginx");
        let v = run(&nginx.url("/"), &["-c", "4", "-n", "2000"], driver);
        let stats = nginx.stub_status().expect("stub_status");
        let d = label(driver);
        assert_eq!(count(&v, "/requests"), 2000, "[{d}] {v}");
        assert_eq!(stats.requests, 2000, "[{d}] nginx saw {stats:?}");
        assert_eq!(count(&v, "/status/2xx"), 2000, "[{d}]");
        assert_eq!(count(&v, "/errors_total"), 0, "[{d}] {}", v["errors"]);
        assert_eq!(v["model"]["kind"], "closed", "[{d}]");
        assert_eq!(v["latency_basis"], "sent", "[{d}]");
        // Four connections, reused: nginx accepted a handful, not one per request.
        assert!(
            stats.accepts <= 8,
            "[{d}] connections not reused: {stats:?}"
        );
        assert!(count(&v, "/bytes_in") >= 2000 * NGINX_INDEX_BODY.len() as u64);
        assert!(count(&v, "/bytes_out") > 0);
    }
}

#[test]
fn chunked_bodies_are_read_to_their_last_chunk() {
    let _load = serial();
    for driver in DRIVERS {
        let nginx = Nginx::start().expect("start nginx");
        let v = run(&nginx.url("/chunked"), &["-c", "2", "-n", "300"], driver);
        let d = label(driver);
        assert_eq!(count(&v, "/requests"), 300, "[{d}] {v}");
        assert_eq!(count(&v, "/status/2xx"), 300, "[{d}]");
        assert_eq!(count(&v, "/errors_total"), 0, "[{d}] {}", v["errors"]);
        assert!(count(&v, "/bytes_in") > 0, "[{d}]");
        let stats = nginx.stub_status().expect("stub_status");
        assert_eq!(stats.requests, 300, "[{d}] {stats:?}");
        // A misread chunked body would desynchronize and force reconnects.
        assert!(stats.accepts <= 4, "[{d}] {stats:?}");
    }
}

#[test]
fn server_closes_after_every_response_are_not_errors() {
    let _load = serial();
    for driver in DRIVERS {
        let nginx = Nginx::start().expect("start nginx");
        let v = run(&nginx.url("/close"), &["-c", "2", "-n", "300"], driver);
        let d = label(driver);
        assert_eq!(count(&v, "/requests"), 300, "[{d}] {v}");
        assert_eq!(count(&v, "/status/2xx"), 300, "[{d}]");
        assert_eq!(count(&v, "/errors_total"), 0, "[{d}] {}", v["errors"]);
        let stats = nginx.stub_status().expect("stub_status");
        assert_eq!(stats.requests, 300, "[{d}] {stats:?}");
        assert!(
            stats.accepts >= 300,
            "[{d}] one connection per request expected: {stats:?}"
        );
    }
}

#[test]
fn head_responses_have_no_body() {
    let _load = serial();
    for driver in DRIVERS {
        let nginx = Nginx::start().expect("start nginx");
        let v = run(
            &nginx.url("/big"),
            &["-m", "HEAD", "-c", "2", "-n", "300"],
            driver,
        );
        let d = label(driver);
        assert_eq!(count(&v, "/requests"), 300, "[{d}] {v}");
        assert_eq!(count(&v, "/status/2xx"), 300, "[{d}]");
        assert_eq!(count(&v, "/errors_total"), 0, "[{d}] {}", v["errors"]);
        // Content-Length says 1 MiB, but a HEAD response carries no body.
        assert!(
            count(&v, "/bytes_in") < 300 * 1024,
            "[{d}] read bodies after HEAD"
        );
        assert_eq!(nginx.requests().expect("requests"), 300, "[{d}]");
    }
}

/// 300 requests to `path` must all land in status class `class`; `error` names the error kind
/// they also count as (4xx/5xx), or `None` when they are successes.
fn assert_status_class(path: &str, extra: &[&str], class: &str, error: Option<&str>) {
    let _load = serial();
    for driver in DRIVERS {
        let nginx = Nginx::start().expect("start nginx");
        let mut args = vec!["-c", "2", "-n", "300"];
        args.extend_from_slice(extra);
        let v = run(&nginx.url(path), &args, driver);
        let d = label(driver);
        assert_eq!(count(&v, "/requests"), 300, "[{d}] {path}: {v}");
        assert_eq!(
            count(&v, &format!("/status/{class}")),
            300,
            "[{d}] {path}: {}",
            v["status"]
        );
        let errors = match error {
            Some(kind) => {
                assert_eq!(
                    count(&v, &format!("/errors/{kind}")),
                    300,
                    "[{d}] {path}: {}",
                    v["errors"]
                );
                300
            }
            None => 0,
        };
        assert_eq!(
            count(&v, "/errors_total"),
            errors,
            "[{d}] {path}: {}",
            v["errors"]
        );
        assert_eq!(nginx.requests().expect("requests"), 300, "[{d}] {path}");
    }
}

#[test]
fn no_content_204_is_a_success() {
    assert_status_class("/empty", &[], "2xx", None);
}

#[test]
fn not_modified_304_counts_as_3xx() {
    assert_status_class("/cacheable.txt", &["-H", FAR_FUTURE], "3xx", None);
}

#[test]
fn not_found_counts_as_4xx_and_as_errors() {
    assert_status_class("/notfound", &[], "4xx", Some("status_4xx"));
}

#[test]
fn server_errors_count_as_5xx_and_as_errors() {
    // nginx also closes the connection after a 500: the reconnects are not errors.
    assert_status_class("/err", &[], "5xx", Some("status_5xx"));
}

#[test]
fn keepalive_limit_closes_are_reconnected_without_errors() {
    let _load = serial();
    for driver in DRIVERS {
        let config = NginxConfig {
            keepalive_requests: 10,
            ..NginxConfig::default()
        };
        let nginx = Nginx::start_with(config).expect("start nginx");
        let v = run(&nginx.url("/"), &["-c", "4", "-n", "1000"], driver);
        let d = label(driver);
        assert_eq!(count(&v, "/requests"), 1000, "[{d}] {v}");
        assert_eq!(count(&v, "/status/2xx"), 1000, "[{d}]");
        assert_eq!(count(&v, "/errors_total"), 0, "[{d}] {}", v["errors"]);
        let stats = nginx.stub_status().expect("stub_status");
        assert_eq!(stats.requests, 1000, "[{d}] {stats:?}");
        assert!(
            stats.accepts >= 100,
            "[{d}] nginx closes every 10 requests: {stats:?}"
        );
    }
}

#[test]
fn large_bodies_are_read_whole() {
    let _load = serial();
    for driver in DRIVERS {
        let nginx = Nginx::start().expect("start nginx");
        let n = 100;
        let v = run(&nginx.url("/big"), &["-c", "2", "-n", "100"], driver);
        let d = label(driver);
        assert_eq!(count(&v, "/requests"), n, "[{d}] {v}");
        assert_eq!(count(&v, "/status/2xx"), n, "[{d}]");
        assert_eq!(count(&v, "/errors_total"), 0, "[{d}] {}", v["errors"]);
        assert!(
            count(&v, "/bytes_in") >= n * MIB,
            "[{d}] bytes_in {}",
            v["bytes_in"]
        );
        assert_eq!(nginx.requests().expect("requests"), n, "[{d}]");
    }
}

#[test]
fn open_model_holds_its_rate_and_matches_the_server() {
    let _load = serial();
    for driver in DRIVERS {
        let nginx = Nginx::start().expect("start nginx");
        let v = run(
            &nginx.url("/"),
            &["-R", "500", "-d", "3s", "-c", "10"],
            driver,
        );
        let served = nginx.requests().expect("requests");
        let d = label(driver);
        assert_eq!(v["model"]["kind"], "open", "[{d}] {v}");
        assert_eq!(v["latency_basis"], "intended", "[{d}]");
        assert_eq!(number(&v, "/requested_rate_per_s"), 500.0, "[{d}]");
        let rate = number(&v, "/rate_per_s");
        assert!(
            (rate - 500.0).abs() <= 5.0,
            "[{d}] rate {rate}/s is not within 1% of 500/s"
        );
        assert_eq!(count(&v, "/errors_total"), 0, "[{d}] {}", v["errors"]);
        assert_eq!(count(&v, "/dropped"), 0, "[{d}]");
        // At most one request per connection can be in flight when the run stops.
        let requests = count(&v, "/requests");
        assert!(
            requests <= served && served <= requests + 10,
            "[{d}] loadctl counted {requests}, nginx served {served}"
        );
        assert!(
            (1450..=1550).contains(&requests),
            "[{d}] {requests} requests in 3 s at 500/s"
        );
    }
}

#[test]
fn connections_rotate_over_local_ips_on_both_drivers() {
    let _serial = serial();
    let nginx = Nginx::start_with(NginxConfig {
        access_log: true,
        ..NginxConfig::default()
    })
    .expect("nginx starts");
    let url = nginx.url("/");
    for driver in DRIVERS {
        let log = nginx.dir().join("access.log");
        let before = std::fs::read_to_string(&log).unwrap_or_default().len();
        let v = run(
            &url,
            &[
                "-c",
                "6",
                "-t",
                "1",
                "-n",
                "60",
                "--local-ips",
                "127.0.0.2-127.0.0.4",
            ],
            driver,
        );
        assert_eq!(count(&v, "/requests"), 60, "{}: {v}", label(driver));
        assert_eq!(count(&v, "/errors_total"), 0, "{}: {v}", label(driver));
        let text = std::fs::read_to_string(&log).expect("access.log");
        let mut seen = std::collections::BTreeMap::<String, u64>::new();
        for line in text[before..]
            .lines()
            .filter(|l| l.contains("\"GET / HTTP/1.1\""))
        {
            let addr = line.split_whitespace().next().unwrap_or_default();
            *seen.entry(addr.to_string()).or_default() += 1;
        }
        // Six connections over three addresses: two each, and never the default 127.0.0.1.
        let addrs: Vec<&str> = seen.keys().map(String::as_str).collect();
        assert_eq!(
            addrs,
            ["127.0.0.2", "127.0.0.3", "127.0.0.4"],
            "{}: {seen:?}",
            label(driver)
        );
        assert_eq!(
            seen.values().sum::<u64>(),
            60,
            "{}: {seen:?}",
            label(driver)
        );
    }
    // A source address this box does not have is a connect error, counted, not a crash.
    let v = run(
        &url,
        &["-c", "2", "-n", "4", "--local-ips", "192.0.2.1"],
        None,
    );
    assert!(count(&v, "/errors/connect") >= 1, "{v}");
}

#[test]
fn a_malformed_local_ip_is_a_usage_error() {
    let out = testbed::run_loadctl_timeout(
        ["run", "http://127.0.0.1:9/", "--local-ips", "127.0.0.300"],
        std::time::Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.300"), "{stderr}");
}

#[test]
fn connections_the_server_closed_while_idle_before_first_use_are_reopened_not_counted() {
    let _serial = serial();
    // nginx drops a connection that sends no request within 1 s; loadctl opens its connections
    // up front, then waits 2.5 s for the scenario's start: every one of them is gone by then.
    let nginx = Nginx::start_with(NginxConfig {
        idle_timeout_s: 1,
        ..NginxConfig::default()
    })
    .expect("nginx starts");
    let file = testbed::scenario_file(
        "idle-first-use",
        "idle.toml",
        &format!(
            "[target]\nurl = \"{}\"\n[load]\nconnections = 6\nrequests = 60\nstart_after = \"2500ms\"\n[engine]\nthreads = 1\n",
            nginx.url("/")
        ),
    );
    let accepted = nginx.accepts().expect("stub_status");
    let (code, v, stderr) = testbed::run_file(&file, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(count(&v, "/requests"), 60, "{v}");
    assert_eq!(count(&v, "/errors_total"), 0, "{}", v["errors"]);
    // The six first connections were closed by nginx and six new ones carried the requests.
    let accepted = nginx.accepts().expect("stub_status") - accepted;
    assert!(accepted >= 12, "nginx accepted {accepted} connections");
}
