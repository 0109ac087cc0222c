//! `loadctl`: see `cli::run_cli`.

fn main() -> std::process::ExitCode {
    cli::run_cli(std::env::args_os())
}
