//! `loadctl compare BASELINE CANDIDATE`: two results (files, or loadd run ids) side by side,
//! with a regression verdict that accounts for run-to-run noise (`engine::report::compare`).
//!
//! Exit codes: 0 no significant regression; 1 a regression beyond the tolerance; 2 bad input
//! (unreadable file, not a result, unknown run, loadd unreachable, bad flag). It refuses to
//! call a regression from fewer than three seconds per run: that is exit 0 with "no verdict".

use std::path::Path;

use engine::report::compare::{self, Labeled, Options};
use engine::Results;

use crate::args::{CompareArgs, CompareFormat, DaemonArgs};
use crate::exit;

/// A result from a file, or from loadd when `source` is not a file.
fn load(source: &str, daemon: &DaemonArgs) -> Result<Results, u8> {
    if crate::report::is_file(source) {
        return crate::report::read_results(Path::new(source)).map_err(|m| {
            eprintln!("{m}");
            exit::USAGE
        });
    }
    // Whatever went wrong reaching loadd, the input could not be read: exit 2.
    let body = crate::remote::fetch_report(daemon, source, "json").map_err(|_| exit::USAGE)?;
    serde_json::from_str(&body).map_err(|e| {
        eprintln!("error: run {source} has no result to compare ({e})");
        exit::USAGE
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
        return exit::USAGE;
    }
    if c.regression {
        exit::FAILED
    } else {
        exit::OK
    }
}
