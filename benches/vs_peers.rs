//! loadctl against its peers on one nginx, measured in the same run: full speed against wrk and
//! oha (64 connections), a fixed 10,000 requests/s against h2load and oha (100 connections),
//! full speed over 10,000 connections against wrk, HTTP/2 (h2c, 4 connections × 16 streams) at
//! full speed and at 10,000/s against h2load, and loadctl's own shard scaling (1 shard on CPU 1
//! vs 2 shards on CPUs 0,1). nginx runs one worker pinned to CPU 0; every client runs
//! pinned to CPU 1 (the 2-shard run to CPUs 0,1); tools alternate within each round and the table
//! shows medians over rounds.
//!
//! For each run: requests nginx counted (stub_status delta), requests/s as the tool reports it,
//! CPU time (user + sys, from `/usr/bin/time`), CPU µs per request counted by nginx, peak RSS, and
//! for loadctl its corrected and uncorrected p50. It reports, next to the targets; it
//! never asserts a speed. A peer that is not installed (oha) is skipped with a note.
//!
//! Run with `scripts/bench.sh` (installs wrk, h2load, oha, nginx; builds release). `--quick`:
//! one round of 3 s per run, to check that it works.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use testbed::{Nginx, NginxConfig};

const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;
const FULL_SPEED_CONNECTIONS: u32 = 64;
const FIXED_RATE_CONNECTIONS: u32 = 100;
const FIXED_RATE_PER_S: u32 = 10_000;
const MANY_CONNECTIONS: u32 = 10_000;
/// HTTP/2 runs: connections × concurrent streams (the 4 × 16).
const H2_CONNECTIONS: u32 = 4;
const H2_STREAMS: u32 = 16;
/// Files a client needs beyond its sockets (stdio, epoll/io_uring, eventfds, its own binary).
const CLIENT_SPARE_FDS: u64 = 200;
/// A run that has not ended this long after its duration is hung: it is killed and reported.
const RUN_GRACE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    FullSpeed,
    FixedRate,
    ManyConnections,
    H2FullSpeed,
    H2FixedRate,
    OneShard,
    TwoShards,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::FullSpeed => "full speed, 64 conns",
            Scenario::FixedRate => "10k/s, 100 conns",
            Scenario::ManyConnections => "full speed, 10k conns",
            Scenario::H2FullSpeed => "h2c full speed, 4 conns × 16 streams",
            Scenario::H2FixedRate => "h2c 10k/s, 4 conns × 16 streams",
            Scenario::OneShard => "full speed, 1 shard (CPU 1)",
            Scenario::TwoShards => "full speed, 2 shards (CPUs 0,1)",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Wrk,
    H2load,
    Oha,
    Loadctl,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Wrk => "wrk",
            Tool::H2load => "h2load",
            Tool::Oha => "oha",
            Tool::Loadctl => "loadctl",
        }
    }
}

/// One tool in one scenario: what runs, pinned where. The same list runs every round.
struct Run {
    scenario: Scenario,
    tool: Tool,
    /// `taskset -c` CPU list for the tool.
    cpus: String,
    argv: Vec<String>,
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

/// A ratio line: `ours` ÷ `theirs` CPU per request, paired by round.
struct Comparison {
    label: &'static str,
    ours: (Scenario, Tool),
    theirs: (Scenario, Tool),
    /// The ceiling on the CPU-per-request ratio, if it sets one.
    target_max: Option<f64>,
}

const COMPARISONS: [Comparison; 8] = [
    Comparison {
        label: "loadctl/wrk",
        ours: (Scenario::FullSpeed, Tool::Loadctl),
        theirs: (Scenario::FullSpeed, Tool::Wrk),
        target_max: Some(0.90),
    },
    Comparison {
        label: "loadctl/oha",
        ours: (Scenario::FullSpeed, Tool::Loadctl),
        theirs: (Scenario::FullSpeed, Tool::Oha),
        target_max: None,
    },
    Comparison {
        label: "loadctl/h2load",
        ours: (Scenario::FixedRate, Tool::Loadctl),
        theirs: (Scenario::FixedRate, Tool::H2load),
        target_max: Some(0.65),
    },
    Comparison {
        label: "loadctl/oha",
        ours: (Scenario::FixedRate, Tool::Loadctl),
        theirs: (Scenario::FixedRate, Tool::Oha),
        target_max: None,
    },
    Comparison {
        label: "loadctl/wrk",
        ours: (Scenario::ManyConnections, Tool::Loadctl),
        theirs: (Scenario::ManyConnections, Tool::Wrk),
        target_max: Some(0.85),
    },
    Comparison {
        label: "loadctl/h2load",
        ours: (Scenario::H2FullSpeed, Tool::Loadctl),
        theirs: (Scenario::H2FullSpeed, Tool::H2load),
        target_max: Some(1.0),
    },
    Comparison {
        label: "loadctl/h2load",
        ours: (Scenario::H2FixedRate, Tool::Loadctl),
        theirs: (Scenario::H2FixedRate, Tool::H2load),
        target_max: Some(1.0),
    },
    Comparison {
        label: "2 shards/1 shard",
        ours: (Scenario::TwoShards, Tool::Loadctl),
        theirs: (Scenario::OneShard, Tool::Loadctl),
        target_max: None,
    },
];

/// The ceiling on loadctl's corrected p50 minus its service-time p50 at 10k/s.
const P50_GAP_TARGET_US: f64 = 50.0;

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
    for tool in ["wrk", "h2load", "taskset", "/usr/bin/time"] {
        which(tool).with_context(|| {
            format!("{tool} not found: run scripts/bench.sh, which installs it")
        })?;
    }
    let mut notes = Vec::new();
    let oha = which("oha").is_ok();
    if !oha {
        notes.push("oha: skipped, not in PATH (scripts/bench.sh installs it with `cargo install oha --locked`; see its output for why that failed)".to_string());
    }
    // Children inherit the soft limit: wrk needs one file per connection and does not raise it.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).context("raise RLIMIT_NOFILE")?;
    let many = nofile >= u64::from(MANY_CONNECTIONS) + CLIENT_SPARE_FDS;
    if !many {
        notes.push(format!(
            "10k conns: skipped, the open-file limit is {nofile} (needs {}): raise the hard limit",
            u64::from(MANY_CONNECTIONS) + CLIENT_SPARE_FDS
        ));
    }

    // A large keepalive_requests keeps reconnects (which every tool pays differently) out of a
    // measurement of the request path; nginx's default of 1000 would add one per 1000 requests.
    // Its worker_connections (16000) already covers the 10k-connection run.
    let nginx = Nginx::start_with(NginxConfig {
        worker_processes: 1,
        keepalive_requests: 100_000,
        access_log: false,
        pin_cpu: Some(SERVER_CPU),
        h2c: true,
        ..NginxConfig::default()
    })?;
    let url = nginx.url("/");
    let h2c_url = nginx.h2c_url("/");
    println!(
        "vs_peers: nginx (1 worker, CPU {SERVER_CPU}) at {url}; clients on CPU {CLIENT_CPU}; \
         {rounds} round(s) of {duration_s} s per run"
    );

    let mut plan = plan_runs(&url, duration_s, oha, many);
    plan.extend(h2_runs(&h2c_url, duration_s));
    let mut samples = Vec::new();
    for round in 1..=rounds {
        for run in &plan {
            let sample =
                measure(&nginx, run, Duration::from_secs(duration_s)).with_context(|| {
                    format!(
                        "round {round}: {} ({})",
                        run.tool.label(),
                        run.scenario.label()
                    )
                })?;
            eprintln!(
                "round {round}: {:<8} {:<32} {:>9} req {:>10.1} req/s {:>7.2} µs CPU/req",
                run.tool.label(),
                run.scenario.label(),
                sample.served,
                sample.rate_per_s,
                sample.cpu_us_per_request()
            );
            samples.push(sample);
            // Let the server close the last run's connections and settle between tools.
            let settle_ms = if run.scenario == Scenario::ManyConnections {
                2000
            } else {
                500
            };
            std::thread::sleep(Duration::from_millis(settle_ms));
        }
    }
    render(&plan, &samples, &notes);
    Ok(())
}

/// Every run of one round, in order: within a scenario the peer runs first, then loadctl.
fn plan_runs(url: &str, duration_s: u64, oha: bool, many: bool) -> Vec<Run> {
    let d = duration_s.to_string();
    let ds = format!("{duration_s}s");
    let full_c = FULL_SPEED_CONNECTIONS.to_string();
    let fixed_c = FIXED_RATE_CONNECTIONS.to_string();
    let many_c = MANY_CONNECTIONS.to_string();
    // h2load's --rps is per client connection: 100 connections × 100/s = 10,000/s.
    let per_conn_rps = (FIXED_RATE_PER_S / FIXED_RATE_CONNECTIONS).to_string();
    let fixed_rate = FIXED_RATE_PER_S.to_string();
    let client = CLIENT_CPU.to_string();
    let both = format!("{SERVER_CPU},{CLIENT_CPU}");
    let loadctl = testbed::bin("loadctl").to_string_lossy().into_owned();

    let run = |scenario, tool, cpus: &str, argv: &[&str]| Run {
        scenario,
        tool,
        cpus: cpus.to_string(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
    };
    // loadctl with the scenario's own flags after the common ones.
    let loadctl_run = |scenario, cpus: &str, own: &[&str]| {
        let argv: Vec<&str> = [loadctl.as_str(), "run", url, "-d", &ds]
            .iter()
            .chain(own)
            .chain(&["--output", "json"])
            .copied()
            .collect();
        run(scenario, Tool::Loadctl, cpus, &argv)
    };
    let one_shard = ["-t", "1", "--cpus", client.as_str()];
    // oha sizes its runtime to the physical cores, not to its affinity: one thread, like the rest.
    let oha_common = [
        "oha",
        "-z",
        &ds,
        "--worker-threads",
        "1",
        "--no-tui",
        "--output-format",
        "json",
    ];

    let mut plan = vec![run(
        Scenario::FullSpeed,
        Tool::Wrk,
        &client,
        &["wrk", "-t1", "-c", &full_c, "-d", &ds, url],
    )];
    if oha {
        plan.push(run(
            Scenario::FullSpeed,
            Tool::Oha,
            &client,
            &[&oha_common[..], &["-c", &full_c, url]].concat(),
        ));
    }
    plan.push(loadctl_run(
        Scenario::FullSpeed,
        &client,
        &[&one_shard[..], &["-c", &full_c]].concat(),
    ));
    plan.push(run(
        Scenario::FixedRate,
        Tool::H2load,
        &client,
        &[
            "h2load",
            "--h1",
            "-c",
            &fixed_c,
            "--rps",
            &per_conn_rps,
            "-D",
            &d,
            url,
        ],
    ));
    if oha {
        // oha's -q is the total rate across its connections.
        plan.push(run(
            Scenario::FixedRate,
            Tool::Oha,
            &client,
            &[&oha_common[..], &["-c", &fixed_c, "-q", &fixed_rate, url]].concat(),
        ));
    }
    plan.push(loadctl_run(
        Scenario::FixedRate,
        &client,
        &[&one_shard[..], &["-c", &fixed_c, "-R", &fixed_rate]].concat(),
    ));
    if many {
        plan.push(run(
            Scenario::ManyConnections,
            Tool::Wrk,
            &client,
            &["wrk", "-t1", "-c", &many_c, "-d", &ds, url],
        ));
        plan.push(loadctl_run(
            Scenario::ManyConnections,
            &client,
            &[&one_shard[..], &["-c", &many_c]].concat(),
        ));
    }
    plan.push(loadctl_run(
        Scenario::OneShard,
        &client,
        &[&one_shard[..], &["-c", &full_c]].concat(),
    ));
    plan.push(loadctl_run(
        Scenario::TwoShards,
        &both,
        &["-t", "2", "--cpus", &both, "-c", &full_c],
    ));
    plan
}

/// h2load and loadctl over h2c, 4 connections × 16 streams, at full speed and at 10k/s.
fn h2_runs(url: &str, duration_s: u64) -> Vec<Run> {
    let d = duration_s.to_string();
    let ds = format!("{duration_s}s");
    let c = H2_CONNECTIONS.to_string();
    let m = H2_STREAMS.to_string();
    // h2load's --rps is per connection.
    let per_conn_rps = (FIXED_RATE_PER_S / H2_CONNECTIONS).to_string();
    let rate = FIXED_RATE_PER_S.to_string();
    let client = CLIENT_CPU.to_string();
    let loadctl = testbed::bin("loadctl").to_string_lossy().into_owned();
    let run = |scenario, tool, argv: &[&str]| Run {
        scenario,
        tool,
        cpus: client.clone(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
    };
    let ours = |scenario, extra: &[&str]| {
        let argv: Vec<&str> = [
            loadctl.as_str(),
            "run",
            url,
            "-d",
            &ds,
            "-t",
            "1",
            "--cpus",
            &client,
            "--http2",
            "-c",
            &c,
            "--streams",
            &m,
        ]
        .iter()
        .chain(extra)
        .chain(&["--output", "json"])
        .copied()
        .collect();
        run(scenario, Tool::Loadctl, &argv)
    };
    vec![
        run(
            Scenario::H2FullSpeed,
            Tool::H2load,
            &["h2load", "-c", &c, "-m", &m, "-D", &d, url],
        ),
        ours(Scenario::H2FullSpeed, &[]),
        run(
            Scenario::H2FixedRate,
            Tool::H2load,
            &[
                "h2load",
                "-c",
                &c,
                "-m",
                &m,
                "--rps",
                &per_conn_rps,
                "-D",
                &d,
                url,
            ],
        ),
        ours(Scenario::H2FixedRate, &["-R", &rate]),
    ]
}

/// Runs `run` pinned under `/usr/bin/time`, bounded in time, and reads what it cost.
fn measure(nginx: &Nginx, run: &Run, duration: Duration) -> Result<Sample> {
    let time_file = tempfile::NamedTempFile::new()?;
    // Output goes to files, not pipes, so a long JSON report cannot block the tool.
    let stdout_file = tempfile::NamedTempFile::new()?;
    let stderr_file = tempfile::NamedTempFile::new()?;
    let before = nginx.requests()?;
    let mut child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(time_file.path())
        .arg("taskset")
        .arg("-c")
        .arg(&run.cpus)
        .args(&run.argv)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout_file.reopen()?))
        .stderr(Stdio::from(stderr_file.reopen()?))
        // Its own process group, so a hung run is killed with all it started.
        .process_group(0)
        .spawn()
        .with_context(|| format!("spawn {:?}", run.argv))?;
    let status = wait_bounded(&mut child, duration + RUN_GRACE)
        .with_context(|| format!("{:?}", run.argv))?;
    let served = nginx.requests()? - before;
    let stdout = std::fs::read_to_string(stdout_file.path())?;
    if !status.success() {
        bail!(
            "{:?} exited with {status}\nstdout: {stdout}\nstderr: {}",
            run.argv,
            std::fs::read_to_string(stderr_file.path())?
        );
    }
    let (cpu_s, max_rss_kib) = parse_time(time_file.path())?;
    let mut sample = Sample {
        scenario: run.scenario,
        tool: run.tool,
        served,
        rate_per_s: 0.0,
        cpu_s,
        max_rss_kib,
        corrected_p50_us: None,
        uncorrected_p50_us: None,
    };
    match run.tool {
        Tool::Wrk => sample.rate_per_s = wrk_rate(&stdout)?,
        Tool::H2load => sample.rate_per_s = h2load_rate(&stdout)?,
        Tool::Oha => sample.rate_per_s = oha_rate(&stdout)?,
        Tool::Loadctl => {
            let v = parse_json("loadctl", &stdout)?;
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

/// Waits for `child`; past `limit` kills its process group and fails.
fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            // The group id is the child's pid (process_group(0)); a failed kill means it is gone.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
            bail!("still running {limit:?} after it started: killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

fn parse_json(tool: &str, stdout: &str) -> Result<serde_json::Value> {
    serde_json::from_str(stdout.trim()).with_context(|| format!("{tool} printed no JSON: {stdout}"))
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

/// `{"summary": {"requestsPerSec": 15068.99, …}, …}` (`--output-format json`).
fn oha_rate(stdout: &str) -> Result<f64> {
    let v = parse_json("oha", stdout)?;
    v.pointer("/summary/requestsPerSec")
        .and_then(serde_json::Value::as_f64)
        .with_context(|| format!("no summary.requestsPerSec in oha output: {stdout}"))
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

fn of(samples: &[Sample], (scenario, tool): (Scenario, Tool)) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|s| s.scenario == scenario && s.tool == tool)
        .collect()
}

fn median_by(samples: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(samples.iter().map(|s| f(s)).collect())
}

/// Median over rounds of ours ÷ theirs, paired by round (the two ran back to back).
fn paired_ratio(ours: &[&Sample], theirs: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(ours.iter().zip(theirs).map(|(l, p)| f(l) / f(p)).collect())
}

/// `met` / `not met` against a ceiling, for the ratio lines.
fn verdict(value: f64, ceiling: f64) -> &'static str {
    if value <= ceiling {
        "met"
    } else {
        "not met"
    }
}

fn render(plan: &[Run], samples: &[Sample], notes: &[String]) {
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
    for run in plan {
        let s = of(samples, (run.scenario, run.tool));
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.2} | {:.2} | {:.0} | {} | {} |",
            run.scenario.label(),
            run.tool.label(),
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
    for c in &COMPARISONS {
        let ours = of(samples, c.ours);
        let theirs = of(samples, c.theirs);
        if ours.is_empty() || theirs.is_empty() {
            continue;
        }
        let cpu = paired_ratio(&ours, &theirs, Sample::cpu_us_per_request);
        let target = match c.target_max {
            Some(max) => format!("target ≤ {max:.2}×: {}", verdict(cpu, max)),
            None if c.ours.0 == Scenario::TwoShards => "≈ 1.00× = linear".to_string(),
            None => "no target".to_string(),
        };
        println!(
            "- {}: {} CPU per request {cpu:.2}× ({target}), req/s {:.2}× (medians of per-round ratios)",
            c.ours.0.label(),
            c.label,
            paired_ratio(&ours, &theirs, |x| x.rate_per_s),
        );
    }
    for scenario in [Scenario::FixedRate, Scenario::H2FixedRate] {
        let fixed = of(samples, (scenario, Tool::Loadctl));
        let gap = median_by(&fixed, |x| {
            x.corrected_p50_us.unwrap_or(f64::NAN) - x.uncorrected_p50_us.unwrap_or(f64::NAN)
        });
        println!(
            "- {}: loadctl corrected p50 − uncorrected (service time) p50 = {gap:.0} µs (median; \
             target ≤ {P50_GAP_TARGET_US:.0} µs: {})",
            scenario.label(),
            verdict(gap, P50_GAP_TARGET_US)
        );
    }
    println!(
        "- note: shard scaling on a 2-core box is bounded by the box: the second shard shares \
         CPU {SERVER_CPU} with nginx's one worker, which is also the bottleneck at full speed, so \
         req/s cannot double; the CPU-per-request ratio is the figure that says whether a shard \
         costs the same per request (≈ 1.0: work scales linearly with shards until the target \
         or the cores run out)."
    );
    for note in notes {
        println!("- {note}");
    }
}
