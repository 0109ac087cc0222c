//! `loadctl compare BASELINE CANDIDATE`: two results (files, or loadd run ids) side by side,
//! with a regression verdict that accounts for run-to-run noise (`engine::report::compare`).
//!
//! Exit codes: 0 no significant regression; 1 a regression beyond the tolerance; 2 bad input
//! (unreadable file, not a result, unknown run, loadd unreachable, bad flag). It refuses to
//! call a regression from fewer than three seconds per run: that is exit 0 with "no verdict".

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use engine::report::compare::{self, Labeled, Options};
use engine::Results;

use crate::remote::DaemonArgs;
use crate::{EXIT_OK, EXIT_USAGE};

/// Exit code of a significant regression.
pub const EXIT_REGRESSION: u8 = 1;

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

/// A result from a file, or from loadd when `source` is not a file.
fn load(source: &str, daemon: &DaemonArgs) -> Result<Results, u8> {
    if crate::report::is_file(source) {
        return crate::report::read_results(Path::new(source)).map_err(|m| {
            eprintln!("{m}");
            EXIT_USAGE
        });
    }
    // Whatever went wrong reaching loadd, the input could not be read: exit 2.
    let body = crate::remote::fetch_report(daemon, source, "json").map_err(|_| EXIT_USAGE)?;
    serde_json::from_str(&body).map_err(|e| {
        eprintln!("error: run {source} has no result to compare ({e})");
        EXIT_USAGE
    })
}

pub fn compare(args: &CompareArgs) -> u8 {
    let (baseline, candidate) = match (
        load(&args.baseline, &args.daemon),
        load(&args.candidate, &args.daemon),
    ) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let options = Options {
        tolerance: args.tolerance,
        error_tolerance: args.error_tolerance,
        confidence: args.confidence,
        ..Options::default()
    };
    let c = compare::compare(
        &Labeled {
            label: &args.baseline,
            results: &baseline,
        },
        &Labeled {
            label: &args.candidate,
            results: &candidate,
        },
        &options,
    );
    let text = match args.format {
        CompareFormat::Text => compare::text(&c),
        CompareFormat::Md => compare::markdown(&c),
        CompareFormat::Html => compare::html(&c),
        CompareFormat::Json => serde_json::to_string_pretty(&c).unwrap_or_default(),
    };
    if let Err(m) = crate::report::write_out(args.output.as_deref(), &text) {
        eprintln!("{m}");
        return EXIT_USAGE;
    }
    if c.regression {
        EXIT_REGRESSION
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
