//! Coordinated omission: a target that stalls during a fixed-rate run must show in the corrected
//! latency (from the intended start) and not in the service time (from the actual send).
//!
//! Why these numbers: at 1000/s over 5 connections for 10 s (~10,000 requests), a 1 s stall holds
//! at most the 5 requests in flight (0.05% of samples: service time stays low at p99), while the
//! ~1000 arrivals scheduled during the stall wait for a connection with corrected latencies spread
//! over 0–1 s (~10% of samples: corrected p99 lands near 0.9 s).

use std::time::Duration;

use serde_json::Value;
use testbed::{LoadctlRun, Sandbox};

fn us(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is not a number in {v}"))
}

fn stall_shows_in_corrected_latency_only(driver: &str) {
    let _load = testbed::serial();
    let sandbox = Sandbox::start().expect("start sandbox");
    let url = sandbox.url("/");
    // The timeout is well above the stall: stalled requests are slow, not failed.
    let run = LoadctlRun::start([
        "run",
        &url,
        "-R",
        "1000",
        "-c",
        "5",
        "-d",
        "10s",
        "--timeout",
        "5s",
        "--driver",
        driver,
        "--output",
        "json",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    sandbox.stall(1000).expect("stall the sandbox");
    let v = run.json(Duration::from_secs(60));

    let corrected_p99 = us(&v, "/latency_us/p99");
    let service_p99 = us(&v, "/service_time_us/p99");
    let lag_max = us(&v, "/schedule_lag_us/max");
    let late = v["late"].as_u64().expect("late");
    let context = format!(
        "[{driver}] corrected p99 {corrected_p99} µs, service p99 {service_p99} µs, lag max \
         {lag_max} µs, late {late}, dropped {}, errors {}",
        v["dropped"], v["errors"]
    );
    assert_eq!(v["latency_basis"], "intended", "{context}");
    assert_eq!(v["errors_total"], 0, "{context}");
    assert!(
        corrected_p99 >= 500_000.0,
        "the stall is missing from corrected p99: {context}"
    );
    assert!(
        service_p99 < 100_000.0,
        "the stall leaked into service time p99: {context}"
    );
    assert!(
        late > 0,
        "requests sent after their intended time must be counted late: {context}"
    );
    assert!(
        lag_max >= 500_000.0,
        "the run must report its schedule lag: {context}"
    );
}

#[test]
fn stall_shows_in_corrected_latency_only_default_driver() {
    stall_shows_in_corrected_latency_only("auto");
}

#[test]
fn stall_shows_in_corrected_latency_only_legacy_driver() {
    stall_shows_in_corrected_latency_only("legacy");
}
