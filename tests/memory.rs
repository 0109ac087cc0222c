//! An idle keep-alive connection costs the generator little heap: its read buffer is pooled by
//! the shard and lent only while a response is awaited, and its task carries no room for a TLS
//! handshake. Heap peaks (dhat) of a many-connection and a few-connection run of the same trickle
//! are compared, so per-connection cost is what remains. `scripts/bench_conns.sh` measures the
//! same thing as RSS with 19,000 connections.

use engine::plan::Plan;
use engine::scenario::{self, Source};
use testbed::Nginx;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Issue #7's budget of user-space memory per idle keep-alive connection.
const BUDGET_BYTES: f64 = 4096.0;

/// Peak heap bytes so far, after a 2 s run of 100 requests/s over `connections`.
fn peak_after_run(url: &str, connections: u64) -> u64 {
    let text = format!(
        "[target]\nurl = \"{url}\"\n[load]\nconnections = {connections}\nrate = 100\nduration = \"2s\"\n[engine]\nthreads = 1\n"
    );
    let source = Source::in_memory("memory.toml", text, scenario::Files::Disk);
    let spec = scenario::parse(&source).expect("valid spec");
    let plan = Plan::from_spec(&spec, &source).expect("valid plan");
    let finished = engine::start(&plan)
        .expect("run starts")
        .wait()
        .expect("run finishes");
    let results = &finished.results;
    assert!(results.requests >= 150, "{} requests", results.requests);
    assert_eq!(results.errors_total, 0, "{:?}", results.errors);
    dhat::HeapStats::get().max_bytes as u64
}

#[test]
fn idle_keep_alive_connections_cost_under_4_kib_of_heap_each() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let nginx = Nginx::start().expect("nginx starts");
    let url = nginx.url("/");
    // The peak is global and only grows: the small run first, then the large one on top of it.
    let few = peak_after_run(&url, 50);
    let many = peak_after_run(&url, 1_050);
    let per_connection = many.saturating_sub(few) as f64 / 1_000.0;
    eprintln!("heap peak {few} B with 50 connections, {many} B with 1050: {per_connection:.0} B per connection");
    assert!(
        per_connection <= BUDGET_BYTES,
        "{per_connection:.0} bytes of heap per idle connection (budget {BUDGET_BYTES})"
    );
    // And every one of them was open at once: nginx saw them all.
    let status = nginx.stub_status().expect("stub_status");
    assert!(status.accepts >= 1_100, "{status:?}");
}
