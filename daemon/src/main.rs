//! `loadd`: the load daemon. Parses arguments, calls the library, maps the result to an exit code
//! (0 ok, 2 usage or start-up error such as an address already in use).

use std::process::ExitCode;

use clap::Parser;

/// A start-up error (clap exits 2 on a usage error the same way).
const EXIT_START_FAILED: u8 = 2;

fn main() -> ExitCode {
    match daemon::run(daemon::args::Args::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadd: {error:#}");
            ExitCode::from(EXIT_START_FAILED)
        }
    }
}
