//! Every `loadctl` flag (clap derive), for every command: the other modules import their
//! arguments from here, never the reverse. Help text is each field's doc comment. Unit-bearing
//! values (`10k`, `30s`) go through the engine's one unit parser, and impossible values (zero
//! connections, zero rate, a 150% tolerance) are refused here, before anything else runs. It
//! refuses to act on a flag: that is the commands' job.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use engine::report::Format;
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
    Submit(SubmitArgs),
    /// Follow a loadd run's live intervals, then print its summary.
    Tail(TailArgs),
    /// Show a loadd run (default: the newest).
    Status(StatusArgs),
    /// List loadd's runs, newest first.
    List(ListArgs),
    /// Stop a loadd run gracefully (in-flight requests finish; results are kept).
    Stop(StopArgs),
    /// Render a saved result file, or a loadd run's result, as JSON, HTML, Markdown or CSV.
    Report(ReportArgs),
    /// Compare two results (files or loadd run ids); exit 1 on a significant regression.
    Compare(CompareArgs),
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
    /// HTTP/2: prior knowledge (h2c) for http://, ALPN `h2` for https://.
    #[arg(long)]
    pub http2: bool,
    /// HTTP/2: concurrent streams per connection (default 1, like h2load's -m); each stream
    /// is a user of its own, so -c 2 --streams 8 keeps 16 requests in flight.
    #[arg(long, value_parser = positive_count, requires = "http2")]
    pub streams: Option<u64>,
    /// Follow redirects (like curl's -L): up to 10 hops, or --max-redirs; a step's latency
    /// covers the whole chain, and a hop off the target's origin is refused (`redirect`).
    #[arg(short = 'L', long)]
    pub location: bool,
    /// With -L: most redirect hops per request (0 to 20).
    #[arg(long, requires = "location", value_parser = clap::value_parser!(u64).range(0..=20))]
    pub max_redirs: Option<u64>,
    /// Ask for a compressed response (like curl's --compressed): Accept-Encoding gzip,
    /// deflate, br, zstd; checks and captures read the decoded body.
    #[arg(long)]
    pub compressed: bool,
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
    /// With a scenario file of weighted [[tasks]]: run only this task (repeatable).
    #[arg(long = "task", value_name = "NAME")]
    pub tasks: Vec<String>,
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
    pub report_format: Option<ReportFormat>,
    /// Write the corrected latency as an HdrHistogram interval log, one histogram a second.
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// loadd's base URL (default: $LOADD_URL, else http://127.0.0.1:7070).
    #[arg(long = "daemon", value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// Print the run id and return instead of tailing the run.
    #[arg(long)]
    pub detach: bool,
    /// Refuse (409) instead of queueing when another run is queued or running.
    #[arg(long)]
    pub no_queue: bool,
    /// Override the scenario's duration, e.g. 30s (as `loadctl run -d`).
    #[arg(short = 'd', long)]
    pub duration: Option<String>,
    /// Multiply the scenario's arrival rates, e.g. 0.5 for half the load.
    #[arg(long)]
    pub rate_scale: Option<f64>,
    /// Send to this origin instead of the file's, keeping its paths (as `loadctl run --base-url`).
    #[arg(long)]
    pub base_url: Option<String>,
    /// With a scenario file of weighted [[tasks]]: run only this task (repeatable).
    #[arg(long = "task", value_name = "NAME")]
    pub tasks: Vec<String>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Split the load across these daemons (comma-separated URLs), started together and merged
    /// into one result (docs/fleet.md).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "URLS",
        conflicts_with = "url"
    )]
    pub daemons: Vec<String>,
    /// With --daemons: write the merged result here as JSON, with a per-daemon breakdown.
    #[arg(long, value_name = "FILE", requires = "daemons")]
    pub result: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The run id.
    pub id: String,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run id (default: the newest run).
    pub id: Option<String>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The run id.
    pub id: String,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The result as JSON (schema loadd.results.v1).
    Json,
    /// One self-contained page with charts.
    Html,
    /// Markdown, for a pull-request comment.
    Md,
    /// The per-second time series.
    Csv,
    /// One row per journey step.
    StepsCsv,
    /// HdrHistogram interval log (from loadd only: a result file holds no histograms).
    Hlog,
}

impl ReportFormat {
    /// The engine's format; `None` for `hlog`, which needs histograms.
    pub fn document(self) -> Option<Format> {
        match self {
            ReportFormat::Json => Some(Format::Json),
            ReportFormat::Html => Some(Format::Html),
            ReportFormat::Md => Some(Format::Markdown),
            ReportFormat::Csv => Some(Format::Csv),
            ReportFormat::StepsCsv => Some(Format::StepsCsv),
            ReportFormat::Hlog => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self.document() {
            Some(f) => f.name(),
            None => "hlog",
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A result file (`loadctl run --output json > result.json`), or a loadd run id.
    pub source: String,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    pub format: ReportFormat,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    Text,
    Md,
    Html,
    Json,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline: a result file (`loadctl run --output json`) or a loadd run id.
    pub baseline: String,
    /// The candidate, judged against the baseline.
    pub candidate: String,
    /// Change in latency or throughput tolerated before a regression is called (10% or 0.1).
    #[arg(long, default_value = "10%", value_parser = fraction)]
    pub tolerance: f64,
    /// Rise in error rate tolerated, in percentage points (0.1% or 0.001).
    #[arg(long, default_value = "0.1%", value_parser = fraction)]
    pub error_tolerance: f64,
    /// Confidence of the intervals behind the verdict (95% or 0.95).
    #[arg(long, default_value = "95%", value_parser = confidence)]
    pub confidence: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    pub format: CompareFormat,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
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

/// `10%` or `0.1` as a fraction in 0..=1.
fn fraction(s: &str) -> Result<f64, String> {
    let bad = || format!("`{s}`: use a percentage like 10% or a fraction like 0.1");
    let v = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => s.trim().parse::<f64>().map_err(|_| bad())?,
    };
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(bad())
    }
}

fn confidence(s: &str) -> Result<f64, String> {
    match fraction(s)? {
        c if (0.5..1.0).contains(&c) => Ok(c),
        _ => Err(format!("`{s}`: a confidence is between 50% and 99.99%")),
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

    #[test]
    fn tolerances_and_confidences() {
        assert_eq!(fraction("10%"), Ok(0.1));
        assert_eq!(fraction("0.25"), Ok(0.25));
        assert_eq!(fraction(" 5 % "), Ok(0.05));
        assert!(fraction("-1%").is_err());
        assert!(fraction("150%").is_err());
        assert!(fraction("ten").is_err());
        assert_eq!(confidence("95%"), Ok(0.95));
        assert!(confidence("100%").is_err());
        assert!(confidence("30%").is_err());
    }
}
