//! `loadctl` flags (clap derive). Help text is each field's doc comment. Unit-bearing values
//! (`10k`, `30s`) go through the engine's one unit parser, and impossible values (zero
//! connections, zero rate) are refused here, before anything else runs.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use engine::units;

#[derive(Debug, Parser)]
#[command(
    name = "loadctl",
    version,
    about = "Honest HTTP load generation: run scenarios, read coordinated-omission-corrected results"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a load in this process: `loadctl run URL` (wrk-like flags) or `loadctl run FILE.toml`.
    Run(Box<RunArgs>),
    /// Check a scenario file without sending traffic.
    Validate {
        /// The scenario file.
        file: PathBuf,
    },
    /// Send a scenario to loadd and tail it live until its result (or `--detach`).
    Submit(crate::remote::SubmitArgs),
    /// Follow a loadd run's live intervals, then print its summary.
    Tail(crate::remote::TailArgs),
    /// Show a loadd run (default: the newest).
    Status(crate::remote::StatusArgs),
    /// List loadd's runs, newest first.
    List(crate::remote::ListArgs),
    /// Stop a loadd run gracefully (in-flight requests finish; results are kept).
    Stop(crate::remote::StopArgs),
    /// Render a saved result file, or a loadd run's result, as JSON, HTML, Markdown or CSV.
    Report(crate::report::ReportArgs),
    /// Compare two results (files or loadd run ids); exit 1 on a significant regression.
    Compare(crate::compare::CompareArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Target URL (http://host:port/path) or scenario file (.toml).
    pub target: String,
    /// With a scenario file: send to this origin (scheme, host, port) instead of the file's,
    /// keeping the file's paths, e.g. to smoke-run a scenario against a local target.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Connections to keep open (split across threads).
    #[arg(short = 'c', long, value_parser = positive_count)]
    pub connections: Option<u64>,
    /// Shards (threads), one per CPU by default.
    #[arg(short = 't', long, value_parser = positive_count)]
    pub threads: Option<u64>,
    /// CPUs to pin shards to, e.g. `0,1` (one shard each).
    #[arg(long, value_delimiter = ',')]
    pub cpus: Option<Vec<u64>>,
    /// How long to run, e.g. 30s, 2m (default 10s).
    #[arg(short = 'd', long, value_parser = positive_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many requests (closed model).
    #[arg(short = 'n', long, value_parser = positive_count)]
    pub requests: Option<u64>,
    /// Open model: constant arrival rate per second, e.g. 10k. Latency counts from each
    /// request's intended start time (coordinated omission corrected).
    #[arg(short = 'R', long, value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// HTTP method.
    #[arg(short = 'm', long)]
    pub method: Option<String>,
    /// Extra header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body read from a file.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// Request timeout, e.g. 5s (default 10s).
    #[arg(long, value_parser = positive_duration)]
    pub timeout: Option<Duration>,
    /// Connect timeout (default 5s).
    #[arg(long, value_parser = positive_duration)]
    pub connect_timeout: Option<Duration>,
    /// io driver: auto (io_uring, falling back to epoll), uring, legacy (epoll).
    #[arg(long)]
    pub driver: Option<Driver>,
    /// Local addresses to connect from, rotated over connections, e.g.
    /// `10.0.0.1-10.0.0.9,10.0.0.64/28` (past one address's ~28k ports per target).
    #[arg(long, value_delimiter = ',', value_parser = local_ip)]
    pub local_ips: Option<Vec<String>>,
    /// Result format on stdout.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Smoke test: run any scenario for about 2 s, keeping its rates and the shape of its stages.
    #[arg(long)]
    pub smoke: bool,
    /// No progress lines on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// https://: accept any server certificate (printed in the summary), like curl's -k.
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// At the end, write a report here: .html, .md, .json or .csv (or say --report-format).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The --report file's format, whatever its extension.
    #[arg(long, value_enum, requires = "report")]
    pub report_format: Option<crate::report::ReportFormat>,
    /// Write the corrected latency as an HdrHistogram interval log, one histogram a second.
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Driver {
    Auto,
    Uring,
    Legacy,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Auto => "auto",
            Driver::Uring => "uring",
            Driver::Legacy => "legacy",
        }
    }
}

fn positive_count(s: &str) -> Result<u64, String> {
    match units::parse_count(s) {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match units::parse_scaled(s) {
        Ok(r) if r > 0.0 => Ok(r),
        Ok(_) => Err("must be greater than zero".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    match units::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be greater than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// One item of `--local-ips`, checked now so a typo is a usage error (exit 2).
fn local_ip(s: &str) -> Result<String, String> {
    engine::net::source::parse_local_ips(&[s]).map(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn units_and_zeroes() {
        let cli = Cli::try_parse_from([
            "loadctl",
            "run",
            "http://x/",
            "-c",
            "1k",
            "-R",
            "10k",
            "-d",
            "1m30s",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!("run")
        };
        assert_eq!(a.connections, Some(1000));
        assert_eq!(a.rate, Some(10_000.0));
        assert_eq!(a.duration, Some(Duration::from_secs(90)));
        for bad in [
            ["-c", "0"],
            ["-R", "0"],
            ["-d", "0s"],
            ["-d", "1x"],
            ["-n", "-3"],
        ] {
            assert!(
                Cli::try_parse_from(["loadctl", "run", "http://x/", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }
}
