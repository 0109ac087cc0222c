//! `loadctl run FILE` for a file with `[capacity]`: the search, level by level, then the verdict.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use engine::plan::capacity::CapacityPlan;
use engine::plan::Plan;
use engine::report::capacity::render_html;
use engine::run::capacity::{self, CapacityResult, Level};

use crate::args::{Output, RunArgs};
use crate::exit;

pub fn run(plan: &Plan, mut cap: CapacityPlan, args: &RunArgs) -> u8 {
    if args.smoke {
        cap.smoke();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if on_signal.swap(true, Ordering::SeqCst) {
            std::process::exit(exit::INTERRUPTED);
        }
        eprintln!("stopping the search after this level (Ctrl-C again to quit now)");
    });
    let progress = !args.quiet && std::io::stderr().is_terminal();
    if progress {
        eprintln!(
            "capacity search on {}: {}/s up to {}/s, ×{} then bisect, {} per level",
            plan.target.url,
            cap.start_rate,
            cap.max_rate,
            cap.factor,
            engine::units::format_duration(cap.hold)
        );
        eprintln!("{}", Level::header().trim_start_matches('\n'));
    }
    let result = capacity::search(
        plan,
        &cap,
        |level| {
            if progress {
                eprintln!("{}", level.row());
            }
        },
        &stop,
    );
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let mut out = std::io::stdout().lock();
    let written = match args.output {
        Output::Json => serde_json::to_writer(&mut out, &result).map_err(std::io::Error::from),
        Output::Text => out.write_all(result.render_text().as_bytes()),
    };
    let _ = written.and_then(|()| writeln!(out));
    // --report: the knee chart as HTML, or the result as JSON for any other extension.
    if let Some(path) = &args.report {
        let html = path.extension().is_some_and(|e| e == "html" || e == "htm");
        let body = if html {
            render_html(&result)
        } else {
            serde_json::to_string_pretty(&result).unwrap_or_default()
        };
        if let Err(e) = std::fs::write(path, body) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return exit::NO_RESULT;
        }
    }
    exit_code(&result)
}

/// 0: a sustainable rate was found; 1: even the start rate failed; 3: inconclusive (the
/// generator could not offer a level, or the search was stopped).
pub fn exit_code(r: &CapacityResult) -> u8 {
    match (
        r.sustainable_rate_per_s,
        r.first_failing_rate_per_s,
        &r.generator_limited,
    ) {
        (_, _, Some(_)) => exit::NO_RESULT,
        (Some(_), Some(_), None) => exit::OK,
        (Some(_), None, None) if r.reached_max_rate => exit::OK,
        (None, Some(_), None) => exit::FAILED,
        _ => exit::NO_RESULT,
    }
}
