//! `loadctl run`'s contract as scripts see it: bad input exits 2 with exactly one line on stderr
//! and sends nothing; a good run prints one `loadd.results.v1` JSON object with every field, and
//! says which latency it reports (`sent` for the closed model, `intended` for the open one).

use std::time::Duration;

use serde_json::Value;
use testbed::{run_json, run_loadctl_timeout, serial, Sandbox};

/// Bad input must be refused before any traffic, so quickly; DNS failure may take a resolver
/// timeout or two.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The sandbox's counter may or may not count `/control/stats` itself: measure it.
fn stats_overhead(sandbox: &Sandbox) -> u64 {
    let a = sandbox.requests().expect("stats");
    let b = sandbox.requests().expect("stats");
    b - a
}

#[test]
fn bad_input_exits_2_with_one_line_and_no_traffic() {
    let sandbox = Sandbox::start().expect("start sandbox");
    let url = sandbox.url("/");
    let overhead = stats_overhead(&sandbox);
    let cases: Vec<Vec<&str>> = vec![
        vec!["ftp://x"],
        vec!["not a url"],
        vec![&url, "-c", "0", "-n", "10"],
        vec![&url, "-R", "0", "-d", "1s"],
        vec![&url, "-d", "0s"],
        vec![&url, "--bogus"],
        vec!["http://no-such-host.invalid/", "-n", "10"],
        vec![&url, "-d", "1x"],
        vec![&url, "-n", "10", "--output", "yaml"],
        vec![&url, "-n", "10", "--driver", "nonsense"],
    ];
    for case in cases {
        let before = sandbox.requests().expect("stats");
        let mut args = vec!["run"];
        args.extend_from_slice(&case);
        let output = run_loadctl_timeout(&args, REFUSAL_TIMEOUT);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "loadctl {args:?}: stderr {stderr:?}"
        );
        let lines: Vec<&str> = stderr.trim_end().lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "loadctl {args:?} must explain in one line: {stderr:?}"
        );
        assert!(
            !lines[0].trim().is_empty(),
            "loadctl {args:?}: empty stderr line"
        );
        let after = sandbox.requests().expect("stats");
        assert_eq!(
            after - before,
            overhead,
            "loadctl {args:?} sent traffic before refusing"
        );
    }
}

const ERROR_KINDS: [&str; 11] = [
    "connect",
    "reset",
    "timeout",
    "write",
    "read",
    "parse",
    "head_too_large",
    "too_many_headers",
    "bad_framing",
    "status_4xx",
    "status_5xx",
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const SUMMARY_KEYS: [&str; 10] = [
    "count", "min", "mean", "stdev", "p50", "p90", "p99", "p99_9", "p99_99", "max",
];
const INTERVAL_KEYS: [&str; 7] = [
    "t_s",
    "requests",
    "rate_per_s",
    "errors",
    "latency_p50_us",
    "latency_p99_us",
    "service_p99_us",
];

fn field<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer)
        .unwrap_or_else(|| panic!("missing {pointer} in {v}"))
}

fn uint(v: &Value, pointer: &str) -> u64 {
    field(v, pointer)
        .as_u64()
        .unwrap_or_else(|| panic!("{pointer} is not an unsigned integer in {v}"))
}

fn num(v: &Value, pointer: &str) -> f64 {
    field(v, pointer)
        .as_f64()
        .unwrap_or_else(|| panic!("{pointer} is not a number in {v}"))
}

/// Every field of `loadd.results.v1`, with its type and the sums that must hold.
fn assert_results_v1(v: &Value, target: &str) {
    assert_eq!(field(v, "/schema"), "loadd.results.v1");
    assert_eq!(field(v, "/target"), target);
    let driver = field(v, "/driver").as_str().expect("driver is a string");
    assert!(
        driver == "io_uring" || driver == "legacy",
        "driver {driver:?}"
    );
    let shards = uint(v, "/shards");
    assert!(shards >= 1);
    let cpus = field(v, "/cpus").as_array().expect("cpus is an array");
    assert!(
        !cpus.is_empty() && cpus.iter().all(Value::is_u64),
        "cpus {cpus:?}"
    );

    let kind = field(v, "/model/kind")
        .as_str()
        .expect("model.kind is a string");
    assert!(kind == "closed" || kind == "open", "model.kind {kind:?}");
    assert!(uint(v, "/model/connections") >= 1);
    for key in ["duration_s", "rate_per_s"] {
        let x = field(v, &format!("/model/{key}"));
        assert!(x.is_null() || x.is_f64() || x.is_u64(), "model.{key} {x}");
    }
    let model_requests = field(v, "/model/requests");
    assert!(
        model_requests.is_null() || model_requests.is_u64(),
        "model.requests {model_requests}"
    );

    assert!(num(v, "/elapsed_s") > 0.0);
    let requests = uint(v, "/requests");
    assert!(num(v, "/rate_per_s") >= 0.0);
    let requested = field(v, "/requested_rate_per_s");
    assert!(
        requested.is_null() || requested.is_number(),
        "requested_rate_per_s {requested}"
    );

    let errors_sum: u64 = ERROR_KINDS
        .iter()
        .map(|k| uint(v, &format!("/errors/{k}")))
        .sum();
    assert_eq!(
        uint(v, "/errors_total"),
        errors_sum,
        "errors_total vs errors {}",
        v["errors"]
    );
    let status_sum: u64 = STATUS_CLASSES
        .iter()
        .map(|k| uint(v, &format!("/status/{k}")))
        .sum();
    assert_eq!(
        status_sum, requests,
        "status classes must add up to requests: {}",
        v["status"]
    );
    assert_eq!(uint(v, "/errors/status_4xx"), uint(v, "/status/4xx"));
    assert_eq!(uint(v, "/errors/status_5xx"), uint(v, "/status/5xx"));

    uint(v, "/bytes_in");
    uint(v, "/bytes_out");
    let basis = field(v, "/latency_basis")
        .as_str()
        .expect("latency_basis is a string");
    assert!(
        basis == "intended" || basis == "sent",
        "latency_basis {basis:?}"
    );
    for summary in ["latency_us", "service_time_us", "schedule_lag_us"] {
        for key in SUMMARY_KEYS {
            num(v, &format!("/{summary}/{key}"));
        }
        let ordered: Vec<f64> = ["min", "p50", "p90", "p99", "p99_9", "p99_99", "max"]
            .iter()
            .map(|k| num(v, &format!("/{summary}/{k}")))
            .collect();
        assert!(
            ordered.windows(2).all(|w| w[0] <= w[1]),
            "{summary} not ordered: {}",
            v[summary]
        );
    }
    uint(v, "/late");
    uint(v, "/dropped");
    assert!(field(v, "/trustworthy").is_boolean());
    let warnings = field(v, "/warnings")
        .as_array()
        .expect("warnings is an array");
    assert!(
        warnings.iter().all(Value::is_string),
        "warnings {warnings:?}"
    );
    let intervals = field(v, "/intervals")
        .as_array()
        .expect("intervals is an array");
    for interval in intervals {
        for key in INTERVAL_KEYS {
            let x = interval
                .get(key)
                .unwrap_or_else(|| panic!("interval lacks {key}: {interval}"));
            assert!(x.is_number(), "interval {key} is not a number: {interval}");
        }
    }
    let t: Vec<f64> = intervals.iter().filter_map(|i| i["t_s"].as_f64()).collect();
    assert!(
        t.windows(2).all(|w| w[0] < w[1]),
        "interval times not increasing: {t:?}"
    );
}

#[test]
fn closed_run_prints_results_v1_and_matches_the_server() {
    let _load = serial();
    let sandbox = Sandbox::start().expect("start sandbox");
    let overhead = stats_overhead(&sandbox);
    let target = sandbox.url("/");
    let before = sandbox.requests().expect("stats");
    let v = run_json(["run", &target, "-c", "2", "-n", "200", "--output", "json"]);
    let served = sandbox.requests().expect("stats") - before - overhead;
    assert_results_v1(&v, &target);
    assert_eq!(v["model"]["kind"], "closed");
    assert_eq!(uint(&v, "/model/connections"), 2);
    assert_eq!(uint(&v, "/model/requests"), 200);
    assert!(
        v["model"]["duration_s"].is_null() && v["model"]["rate_per_s"].is_null(),
        "{}",
        v["model"]
    );
    assert!(v["requested_rate_per_s"].is_null());
    assert_eq!(
        v["latency_basis"], "sent",
        "a closed run's latency is its service time"
    );
    assert_eq!(uint(&v, "/requests"), 200);
    assert_eq!(served, 200, "the sandbox saw {served} requests");
    assert_eq!(uint(&v, "/status/2xx"), 200);
    assert_eq!(uint(&v, "/errors_total"), 0, "{}", v["errors"]);
    assert_eq!(uint(&v, "/latency_us/count"), 200);
    assert!(uint(&v, "/bytes_in") > 0 && uint(&v, "/bytes_out") > 0);
}

#[test]
fn open_run_reports_intended_latency_and_parses_units() {
    let _load = serial();
    let sandbox = Sandbox::start().expect("start sandbox");
    let target = sandbox.url("/");
    // `1k` per second for `1500ms`.
    let v = run_json([
        "run", &target, "-R", "1k", "-c", "4", "-d", "1500ms", "--output", "json",
    ]);
    assert_results_v1(&v, &target);
    assert_eq!(v["model"]["kind"], "open");
    assert_eq!(uint(&v, "/model/connections"), 4);
    assert_eq!(num(&v, "/model/rate_per_s"), 1000.0);
    assert_eq!(num(&v, "/model/duration_s"), 1.5);
    assert!(v["model"]["requests"].is_null(), "{}", v["model"]);
    assert_eq!(num(&v, "/requested_rate_per_s"), 1000.0);
    assert_eq!(
        v["latency_basis"], "intended",
        "an open run's latency counts from the schedule"
    );
    let requests = uint(&v, "/requests");
    assert!(
        (1400..=1600).contains(&requests),
        "{requests} requests at 1k/s for 1.5 s"
    );
    assert_eq!(uint(&v, "/errors_total"), 0, "{}", v["errors"]);
    assert!(
        !v["intervals"].as_array().expect("intervals").is_empty(),
        "no interval in 1.5 s"
    );
}

#[test]
fn latency_and_elapsed_include_the_servers_delay() {
    let _load = serial();
    let sandbox = Sandbox::start().expect("start sandbox");
    // Every response takes at least 20 ms: no latency can be shorter, and 10 requests over 2
    // connections take at least 5 × 20 ms — also right at the start of a run.
    let target = sandbox.url("/delay/20");
    let closed = run_json(["run", &target, "-c", "2", "-n", "10", "--output", "json"]);
    let open = run_json([
        "run", &target, "-R", "50", "-c", "4", "-d", "1s", "--output", "json",
    ]);
    for (v, model) in [(&closed, "closed"), (&open, "open")] {
        for summary in ["latency_us", "service_time_us"] {
            let min = num(v, &format!("/{summary}/min"));
            assert!(
                min >= 20_000.0,
                "{model}: {summary}.min {min} µs < the server's 20 ms delay: {}",
                v[summary]
            );
        }
    }
    let elapsed_s = num(&closed, "/elapsed_s");
    assert!(
        elapsed_s >= 0.1,
        "closed: 10 × 20 ms over 2 connections took {elapsed_s} s?"
    );
    let rate = num(&closed, "/rate_per_s");
    assert!(
        rate <= 100.0,
        "closed: {rate}/s is faster than 2 connections × 1/20 ms allow"
    );
}
