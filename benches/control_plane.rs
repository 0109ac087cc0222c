//! What the control plane costs during a run: `loadd serve` runs an open-model scenario
//! (5,000 requests/s for 10 s against the built-in sandbox) with a `loadctl tail` attached, and
//! this samples the CPU time of every thread of the loadd process from
//! `/proc/PID/task/*/schedstat` (ns; `stat`'s utime + stime as a fallback) over the steady
//! middle of the run. Threads named `loadd-shard-N` generate the load; everything else (the API
//! runtime, the runner, the collector) is the control plane, reported as % of one core, with
//! the shards' share beside it for scale. It reports; it never asserts a speed.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench --bench control_plane`
//! (`-- --rate 10k --seconds 20` to change the load; `--metrics` also scrapes `/metrics` each
//! second, as Prometheus would).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use testbed::{Captured, Daemon, Sandbox, ServeOptions};

/// Seconds at the start (connections, warm-up) and the end (drain) left out of the window.
const SKIP_START_S: u64 = 2;
const SKIP_END_S: u64 = 1;

struct Options {
    rate: String,
    seconds: u64,
    metrics: bool,
}

fn options() -> Result<Options> {
    let mut o = Options {
        rate: "5k".into(),
        seconds: 10,
        metrics: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rate" => o.rate = args.next().context("--rate needs a value")?,
            "--seconds" => {
                o.seconds = args.next().context("--seconds needs a value")?.parse()?;
            }
            "--metrics" => o.metrics = true,
            // `cargo bench` passes `--bench`; ignore what is not ours.
            _ => {}
        }
    }
    if o.seconds < SKIP_START_S + SKIP_END_S + 2 {
        bail!(
            "--seconds must be at least {}",
            SKIP_START_S + SKIP_END_S + 2
        );
    }
    Ok(o)
}

/// `loadd serve` on a free port with a temporary state directory, its stderr discarded.
fn serve(state: &Path) -> Result<Daemon> {
    let options = ServeOptions {
        quiet: true,
        ..ServeOptions::default()
    };
    Daemon::start_with(state, options)
}

/// An authorized request; an error if the exchange failed.
fn call(daemon: &Daemon, method: &str, path: &str, body: &[u8]) -> Result<(u16, String)> {
    match daemon.call(method, path, body) {
        (0, error) => bail!("{method} {path}: {error}"),
        answer => Ok(answer),
    }
}

fn run_status(daemon: &Daemon, id: &str) -> Result<serde_json::Value> {
    let (status, body) = call(daemon, "GET", &format!("/v1/runs/{id}"), b"")?;
    if status != 200 {
        bail!("GET /v1/runs/{id}: {status} {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

/// CPU time (ns) of each live thread of `pid`, keyed by (tid, name).
fn thread_cpu(pid: u32) -> Result<BTreeMap<(u32, String), u64>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let dir = entry?.path();
        let Some(tid) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        let ns = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .or_else(|| stat_ns(&dir));
        if let Some(ns) = ns {
            out.insert((tid, name.trim().to_string()), ns);
        }
    }
    Ok(out)
}

/// utime + stime from `stat`, in ns (assuming the usual 100 ticks per second).
fn stat_ns(dir: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // Fields after the `)` that ends the name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000)
}

fn main() -> Result<()> {
    let o = options()?;
    let sandbox = Sandbox::start()?;
    let tmp = tempfile::tempdir()?;
    let daemon = serve(&tmp.path().join("state"))?;
    let scenario = format!(
        "[target]\nurl = \"{}\"\n[load]\nmodel = \"open\"\nrate = \"{}\"\nduration = \"{}s\"\nconnections = 64\n",
        sandbox.url("/"),
        o.rate,
        o.seconds
    );
    let (status, body) = call(
        &daemon,
        "POST",
        "/v1/runs?name=control_plane.toml",
        scenario.as_bytes(),
    )?;
    if status != 201 {
        bail!("submit: {status} {body}");
    }
    let id = serde_json::from_str::<serde_json::Value>(&body)?["id"]
        .as_str()
        .context("no id")?
        .to_string();
    let tail = Captured::spawn(
        Command::new(testbed::bin("loadctl"))
            .args(["tail", &id])
            .env("LOADD_URL", daemon.url())
            .env("LOADD_TOKEN", daemon.token()),
    );

    // Wait for the run's first interval, then skip the warm-up.
    let deadline = Instant::now() + Duration::from_secs(30);
    while run_status(&daemon, &id)?["intervals"].as_u64().unwrap_or(0) < 1 {
        if Instant::now() > deadline {
            bail!("the run produced no interval within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(SKIP_START_S - 1));
    let window = Duration::from_secs(o.seconds - SKIP_START_S - SKIP_END_S);
    let pid = daemon.pid();
    let before = thread_cpu(pid)?;
    let started = Instant::now();
    let mut scrapes = 0;
    while started.elapsed() < window {
        if o.metrics {
            let (s, _) = call(&daemon, "GET", "/metrics", b"")?;
            scrapes += u64::from(s == 200);
        }
        let left = window.saturating_sub(started.elapsed());
        std::thread::sleep(left.min(Duration::from_secs(1)));
    }
    let after = thread_cpu(pid)?;
    let elapsed_s = started.elapsed().as_secs_f64();

    let (mut shards_ns, mut control_ns) = (0u64, 0u64);
    let mut control: BTreeMap<String, u64> = BTreeMap::new();
    for ((tid, name), ns) in &after {
        let spent = ns.saturating_sub(before.get(&(*tid, name.clone())).copied().unwrap_or(0));
        if name.starts_with("loadd-shard-") {
            shards_ns += spent;
        } else {
            control_ns += spent;
            *control.entry(name.clone()).or_default() += spent;
        }
    }
    let pct = |ns: u64| ns as f64 / 1e9 / elapsed_s * 100.0;

    // Let the run end and the tail print its summary.
    let tail = tail.wait(Duration::from_secs(o.seconds + 30));
    let tail_status = tail.status;
    let tail_text = String::from_utf8_lossy(&tail.stdout);
    let (_, report) = call(&daemon, "GET", &format!("/v1/runs/{id}/report"), b"")?;
    let report: serde_json::Value = serde_json::from_str(&report)?;

    println!("loadd control-plane CPU during a run (open model, {} req/s requested, {} s; window {elapsed_s:.1} s)", o.rate, o.seconds);
    println!(
        "  achieved {:.0} req/s, {} requests, p99 {} µs (corrected); tail printed {} interval lines, exit {:?}{}",
        report["rate_per_s"].as_f64().unwrap_or(0.0),
        report["requests"],
        report["latency_us"]["p99"],
        tail_text.lines().filter(|l| l.contains(" req/s ")).count(),
        tail_status.code(),
        if o.metrics { format!("; /metrics scraped {scrapes}×") } else { String::new() }
    );
    println!(
        "  shards (loadd-shard-*): {:>6.2}% of one core",
        pct(shards_ns)
    );
    println!(
        "  control plane (rest):   {:>6.2}% of one core",
        pct(control_ns)
    );
    for (name, ns) in &control {
        println!("    {name:<16} {:>6.2}%", pct(*ns));
    }
    println!("  reproduce: cargo build --release --workspace --bins && cargo bench --bench control_plane");
    Ok(())
}
