//! loadctl: argument parsing and commands. `main` only maps `run_cli`'s result to an exit code.
//!
//! Exit codes are in `exit` (0 success; 1 thresholds failed; 2 usage or configuration error,
//! nothing was sent; 3 no result; 4 an `abort_on_fail` threshold stopped the run).

pub mod args;
pub mod capacity;
pub mod command;
pub mod compare;
pub mod exit;
pub mod remote;
pub mod report;

use std::process::ExitCode;

use clap::Parser;

/// Parses arguments and runs the command.
pub fn run_cli<I, T>(argv: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match args::Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(
                e.kind(),
                K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::from(
                    if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand {
                        exit::USAGE
                    } else {
                        exit::OK
                    },
                );
            }
            // One line, as promised: clap's first paragraph names the problem (a missing
            // argument is listed on the indented lines under it), joined.
            let rendered = e.render().to_string();
            let line = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            if line.is_empty() {
                eprintln!("error: invalid arguments");
            } else {
                eprintln!("{line}");
            }
            return ExitCode::from(exit::USAGE);
        }
    };
    ExitCode::from(command::dispatch(cli.command))
}
