//! loadctl against its peers on one nginx, measured in the same run: full speed against wrk
//! (64 connections) and a fixed 10,000 requests/s against h2load (100 connections × 100/s).
//! nginx runs one worker pinned to CPU 0; every client runs pinned to CPU 1; tools alternate
//! within each round and the table shows medians over rounds.
//!
//! For each run: requests nginx counted (stub_status delta), requests/s as the tool reports it,
//! CPU time (user + sys, from `/usr/bin/time`), CPU µs per request counted by nginx, peak RSS, and
//! for loadctl its corrected and uncorrected p50. It reports; it never asserts a speed.
//!
//! Run with `scripts/bench.sh` (installs wrk, h2load, nginx; builds release). `--quick`: one
//! round of 3 s per run, to check that it works.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use testbed::{Nginx, NginxConfig};

const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;
const FULL_SPEED_CONNECTIONS: u32 = 64;
const FIXED_RATE_CONNECTIONS: u32 = 100;
const FIXED_RATE_PER_S: u32 = 10_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    FullSpeed,
    FixedRate,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::FullSpeed => "full speed, 64 conns",
            Scenario::FixedRate => "10k/s, 100 conns",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Wrk,
    H2load,
    Loadctl,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Wrk => "wrk",
            Tool::H2load => "h2load",
            Tool::Loadctl => "loadctl",
        }
    }
}

/// What one tool's run cost and achieved.
#[derive(Clone, Debug)]
struct Sample {
    scenario: Scenario,
    tool: Tool,
    /// Requests nginx counted during the run: the one count every tool agrees on.
    served: u64,
    rate_per_s: f64,
    cpu_s: f64,
    max_rss_kib: u64,
    corrected_p50_us: Option<f64>,
    uncorrected_p50_us: Option<f64>,
}

impl Sample {
    fn cpu_us_per_request(&self) -> f64 {
        self.cpu_s * 1e6 / self.served.max(1) as f64
    }
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; only `--quick` matters here.
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, duration_s) = if quick { (1, 3) } else { (3, 10) };
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if cpus < 2 {
        bail!(
            "vs_peers pins nginx to CPU {SERVER_CPU} and clients to CPU {CLIENT_CPU}: needs 2 CPUs"
        );
    }
    let loadctl = testbed::bin("loadctl");
    for tool in ["wrk", "h2load", "taskset", "/usr/bin/time"] {
        which(tool).with_context(|| {
            format!("{tool} not found: run scripts/bench.sh, which installs it")
        })?;
    }
    // A large keepalive_requests keeps reconnects (which every tool pays differently) out of a
    // measurement of the request path; nginx's default of 1000 would add one per 1000 requests.
    let nginx = Nginx::start_with(NginxConfig {
        worker_processes: 1,
        keepalive_requests: 100_000,
        access_log: false,
        pin_cpu: Some(SERVER_CPU),
    })?;
    let url = nginx.url("/");
    println!(
        "vs_peers: nginx (1 worker, CPU {SERVER_CPU}) at {url}; clients on CPU {CLIENT_CPU}; \
         {rounds} round(s) of {duration_s} s per run"
    );

    let d = duration_s.to_string();
    let ds = format!("{duration_s}s");
    let full_c = FULL_SPEED_CONNECTIONS.to_string();
    let fixed_c = FIXED_RATE_CONNECTIONS.to_string();
    // h2load's --rps is per client connection: 100 connections × 100/s = 10,000/s.
    let per_conn_rps = (FIXED_RATE_PER_S / FIXED_RATE_CONNECTIONS).to_string();
    let fixed_rate = FIXED_RATE_PER_S.to_string();
    let loadctl_s = loadctl.to_string_lossy().into_owned();
    let client_cpu = CLIENT_CPU.to_string();

    // loadctl, pinned like the peers, with the scenario's own flags after the common ones.
    let loadctl_run = |own: &[&str]| -> Vec<String> {
        let common = [
            &loadctl_s,
            "run",
            &url,
            "-t",
            "1",
            "--cpus",
            &client_cpu,
            "-d",
            &ds,
        ];
        common
            .iter()
            .chain(own)
            .chain(&["--output", "json"])
            .map(|s| s.to_string())
            .collect()
    };
    let full_speed_loadctl = loadctl_run(&["-c", &full_c]);
    let fixed_rate_loadctl = loadctl_run(&["-c", &fixed_c, "-R", &fixed_rate]);

    let mut samples = Vec::new();
    for round in 1..=rounds {
        let runs: [(Scenario, Tool, Vec<&str>); 4] = [
            (
                Scenario::FullSpeed,
                Tool::Wrk,
                vec!["wrk", "-t1", "-c", &full_c, "-d", &ds, &url],
            ),
            (
                Scenario::FullSpeed,
                Tool::Loadctl,
                full_speed_loadctl.iter().map(String::as_str).collect(),
            ),
            (
                Scenario::FixedRate,
                Tool::H2load,
                vec![
                    "h2load",
                    "--h1",
                    "-c",
                    &fixed_c,
                    "--rps",
                    &per_conn_rps,
                    "-D",
                    &d,
                    &url,
                ],
            ),
            (
                Scenario::FixedRate,
                Tool::Loadctl,
                fixed_rate_loadctl.iter().map(String::as_str).collect(),
            ),
        ];
        for (scenario, tool, argv) in runs {
            let sample = measure(&nginx, scenario, tool, &argv).with_context(|| {
                format!("round {round}: {} ({})", tool.label(), scenario.label())
            })?;
            eprintln!(
                "round {round}: {:<8} {:<22} {:>9} req {:>10.1} req/s {:>7.2} µs CPU/req",
                tool.label(),
                scenario.label(),
                sample.served,
                sample.rate_per_s,
                sample.cpu_us_per_request()
            );
            samples.push(sample);
            // Let TIME_WAIT sockets and the server settle between tools.
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    render(&samples);
    Ok(())
}

/// Runs `argv` pinned to the client CPU under `/usr/bin/time` and reads what it cost.
fn measure(nginx: &Nginx, scenario: Scenario, tool: Tool, argv: &[&str]) -> Result<Sample> {
    let time_file = tempfile::NamedTempFile::new()?;
    let before = nginx.requests()?;
    let output = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(time_file.path())
        .arg("taskset")
        .arg("-c")
        .arg(CLIENT_CPU.to_string())
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawn {argv:?}"))?;
    let served = nginx.requests()? - before;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "{argv:?} exited with {}\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let (cpu_s, max_rss_kib) = parse_time(time_file.path())?;
    let mut sample = Sample {
        scenario,
        tool,
        served,
        rate_per_s: 0.0,
        cpu_s,
        max_rss_kib,
        corrected_p50_us: None,
        uncorrected_p50_us: None,
    };
    match tool {
        Tool::Wrk => sample.rate_per_s = wrk_rate(&stdout)?,
        Tool::H2load => sample.rate_per_s = h2load_rate(&stdout)?,
        Tool::Loadctl => {
            let v: serde_json::Value = serde_json::from_str(stdout.trim())
                .with_context(|| format!("loadctl printed no JSON: {stdout}"))?;
            let number = |p: &str| {
                v.pointer(p)
                    .and_then(serde_json::Value::as_f64)
                    .with_context(|| format!("{p} in {v}"))
            };
            sample.rate_per_s = number("/rate_per_s")?;
            sample.corrected_p50_us = Some(number("/latency_us/p50")?);
            sample.uncorrected_p50_us = Some(number("/service_time_us/p50")?);
        }
    }
    Ok(sample)
}

/// `/usr/bin/time -f '%U %S %M'` → (user + sys seconds, max RSS KiB). The last line holds the
/// numbers (a non-zero exit adds a line before it).
fn parse_time(path: &Path) -> Result<(f64, u64)> {
    let text = std::fs::read_to_string(path)?;
    let line = text.lines().last().context("empty /usr/bin/time output")?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [user, sys, rss] = fields[..] else {
        bail!("unexpected /usr/bin/time output {text:?}");
    };
    let cpu_s = user.parse::<f64>()? + sys.parse::<f64>()?;
    Ok((cpu_s, rss.parse()?))
}

/// `Requests/sec:  15068.99`
fn wrk_rate(stdout: &str) -> Result<f64> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk output: {stdout}"))
}

/// `finished in 2.01s, 1000.00 req/s, 247.07KB/s`
fn h2load_rate(stdout: &str) -> Result<f64> {
    stdout
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.strip_suffix(" req/s"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no req/s in h2load output: {stdout}"))
}

fn which(tool: &str) -> Result<()> {
    if tool.starts_with('/') {
        return if Path::new(tool).is_file() {
            Ok(())
        } else {
            bail!("{tool} missing")
        };
    }
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        bail!("{tool} not in PATH")
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

fn of(samples: &[Sample], scenario: Scenario, tool: Tool) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|s| s.scenario == scenario && s.tool == tool)
        .collect()
}

fn median_by(samples: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(samples.iter().map(|s| f(s)).collect())
}

/// Median over rounds of loadctl ÷ peer, paired by round (the two ran back to back).
fn paired_ratio(loadd: &[&Sample], peer: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(loadd.iter().zip(peer).map(|(l, p)| f(l) / f(p)).collect())
}

fn render(samples: &[Sample]) {
    let fmt_us = |x: f64| {
        if x.is_nan() {
            "–".to_string()
        } else {
            format!("{x:.0}")
        }
    };
    println!();
    println!("| scenario | tool | nginx requests | req/s | CPU s | CPU µs/req | peak RSS KiB | corrected p50 µs | uncorrected p50 µs |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let rows = [
        (Scenario::FullSpeed, Tool::Wrk),
        (Scenario::FullSpeed, Tool::Loadctl),
        (Scenario::FixedRate, Tool::H2load),
        (Scenario::FixedRate, Tool::Loadctl),
    ];
    for (scenario, tool) in rows {
        let s = of(samples, scenario, tool);
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.2} | {:.2} | {:.0} | {} | {} |",
            scenario.label(),
            tool.label(),
            median_by(&s, |x| x.served as f64),
            median_by(&s, |x| x.rate_per_s),
            median_by(&s, |x| x.cpu_s),
            median_by(&s, Sample::cpu_us_per_request),
            median_by(&s, |x| x.max_rss_kib as f64),
            fmt_us(median_by(&s, |x| x.corrected_p50_us.unwrap_or(f64::NAN))),
            fmt_us(median_by(&s, |x| x.uncorrected_p50_us.unwrap_or(f64::NAN))),
        );
    }
    println!();
    for (scenario, peer) in [
        (Scenario::FullSpeed, Tool::Wrk),
        (Scenario::FixedRate, Tool::H2load),
    ] {
        let l = of(samples, scenario, Tool::Loadctl);
        let p = of(samples, scenario, peer);
        println!(
            "- {}: loadctl/{} CPU per request {:.2}×, req/s {:.2}× (medians of per-round ratios)",
            scenario.label(),
            peer.label(),
            paired_ratio(&l, &p, Sample::cpu_us_per_request),
            paired_ratio(&l, &p, |x| x.rate_per_s),
        );
    }
    let fixed = of(samples, Scenario::FixedRate, Tool::Loadctl);
    let gap = median_by(&fixed, |x| {
        x.corrected_p50_us.unwrap_or(f64::NAN) - x.uncorrected_p50_us.unwrap_or(f64::NAN)
    });
    println!("- 10k/s: loadctl corrected p50 − uncorrected p50 = {gap:.0} µs (median)");
}
