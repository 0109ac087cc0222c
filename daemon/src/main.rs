//! `loadd`: the load daemon. Parses arguments, calls the library, maps the result to an exit code
//! (0 ok, 2 usage or start-up error such as an address already in use).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use daemon::sandbox::{self, CapacityConfig, SandboxConfig};

#[derive(Parser)]
#[command(name = "loadd", version, about = "loadd: the load daemon")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the built-in loopback HTTP/1.1 target (for demos and tests) until SIGINT or SIGTERM.
    Sandbox {
        /// Address to listen on; port 0 picks a free one (printed on start).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Tokio worker threads.
        #[arg(long, default_value = "1")]
        workers: NonZeroUsize,
        /// Requests `/capacity/work` serves at once (the rest queue).
        #[arg(long, default_value = "8")]
        capacity_concurrency: usize,
        /// Milliseconds each `/capacity/work` request holds its slot.
        #[arg(long, default_value = "10")]
        capacity_service_ms: u64,
    },
    /// Serve the control API (runs, live events, reports) until SIGINT or SIGTERM.
    Serve(daemon::api::ServeArgs),
}

fn main() -> ExitCode {
    let result = match Args::parse().command {
        Command::Sandbox {
            listen,
            workers,
            capacity_concurrency,
            capacity_service_ms,
        } => sandbox::serve_forever(SandboxConfig {
            listen,
            workers: workers.get(),
            capacity: CapacityConfig {
                concurrency: capacity_concurrency,
                service_ms: capacity_service_ms,
            },
        }),
        Command::Serve(args) => daemon::api::serve_forever(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadd: {error:#}");
            ExitCode::from(2)
        }
    }
}
