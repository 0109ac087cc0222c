//! `/capacity/work` and the controls that reshape and slow the sandbox.
//!
//! Timing is asserted only as lower bounds derived from the configuration: a busy machine can make
//! a request slower, never faster.

use std::time::{Duration, Instant};

use super::{connect, get};
use crate::sandbox::{CapacityConfig, Sandbox, SandboxConfig};

fn sandbox_with(concurrency: usize, service_ms: u64) -> Sandbox {
    Sandbox::start(SandboxConfig {
        capacity: CapacityConfig {
            concurrency,
            service_ms,
        },
        ..SandboxConfig::default()
    })
    .expect("sandbox starts")
}

/// Sends `n` `/capacity/work` requests at once, each on its own connection; returns how long the
/// last one took.
fn concurrent_work(sandbox: &Sandbox, n: usize) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        let requests: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| get(sandbox, "/capacity/work")))
            .collect();
        for request in requests {
            let reply = request.join().expect("request thread");
            assert_eq!(reply.status, 200);
            assert_eq!(reply.body, b"ok\n");
        }
    });
    started.elapsed()
}

/// A control request: its status, and its body as JSON when it is JSON (`Null` otherwise).
fn post(sandbox: &Sandbox, path: &str) -> (u16, serde_json::Value) {
    let reply = connect(sandbox).request("POST", path, "");
    let json = serde_json::from_slice(&reply.body).unwrap_or(serde_json::Value::Null);
    (reply.status, json)
}

#[test]
fn capacity_queues_requests_beyond_its_concurrency() {
    let sandbox = sandbox_with(2, 50);
    // 8 requests through 2 slots of 50 ms: four waves.
    assert!(concurrent_work(&sandbox, 8) >= Duration::from_millis(4 * 50));
    assert_eq!(sandbox.requests(), 8);
}

#[test]
fn capacity_is_reconfigured_at_run_time() {
    let sandbox = sandbox_with(8, 10);
    let (status, config) = post(&sandbox, "/control/capacity?concurrency=1&service_ms=40");
    assert_eq!(status, 200);
    assert_eq!(
        config,
        serde_json::json!({ "concurrency": 1, "service_ms": 40 })
    );
    assert!(concurrent_work(&sandbox, 4) >= Duration::from_millis(4 * 40));

    // Only what is given changes.
    let (_, config) = post(&sandbox, "/control/capacity?concurrency=3");
    assert_eq!(
        config,
        serde_json::json!({ "concurrency": 3, "service_ms": 40 })
    );
    assert!(concurrent_work(&sandbox, 6) >= Duration::from_millis(2 * 40));

    assert_eq!(post(&sandbox, "/control/capacity?concurrency=0").0, 400);
    assert_eq!(post(&sandbox, "/control/capacity?service_ms=60001").0, 400);
    assert_eq!(post(&sandbox, "/control/capacity?concurrency=x").0, 400);
    let (_, config) = post(&sandbox, "/control/capacity");
    assert_eq!(
        config,
        serde_json::json!({ "concurrency": 3, "service_ms": 40 })
    );
}

#[test]
fn start_refuses_a_capacity_of_zero() {
    let error = Sandbox::start(SandboxConfig {
        capacity: CapacityConfig {
            concurrency: 0,
            service_ms: 10,
        },
        ..SandboxConfig::default()
    })
    .err()
    .expect("refused");
    assert!(error.to_string().contains("concurrency"));
}

#[test]
fn slow_adds_its_delay_to_capacity_and_api_responses() {
    let sandbox = sandbox_with(8, 0);
    assert_eq!(post(&sandbox, "/control/slow?extra_ms=150").0, 204);
    let started = Instant::now();
    assert_eq!(get(&sandbox, "/capacity/work").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let started = Instant::now();
    // Refused for want of a token, but slowed all the same.
    assert_eq!(get(&sandbox, "/api/t/acme/sessions").status, 401);
    assert!(started.elapsed() >= Duration::from_millis(150));

    assert_eq!(post(&sandbox, "/control/slow?extra_ms=60001").0, 400);
    assert_eq!(post(&sandbox, "/control/slow?extra_ms=0").0, 204);
    assert_eq!(get(&sandbox, "/capacity/work").status, 200);
}
