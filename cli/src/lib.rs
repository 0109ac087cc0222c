//! loadctl: argument parsing and commands. `main` only maps `run_cli`'s result to an exit code.
//!
//! Exit codes: 0 success; 1 thresholds failed (scenario language); 2 usage or configuration
//! error (nothing was sent); 3 the run could not produce a result.

pub mod args;
pub mod capacity;
pub mod command;
pub mod compare;
pub mod remote;
pub mod report;

use std::process::ExitCode;

use clap::Parser;

pub const EXIT_OK: u8 = 0;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_RUN_FAILED: u8 = 3;

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
                        EXIT_USAGE
                    } else {
                        EXIT_OK
                    },
                );
            }
            // One line, as promised: clap's first line names the problem.
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            eprintln!("{first}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    ExitCode::from(command::dispatch(cli.command))
}
