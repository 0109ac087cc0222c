//! loadd's library side: its flags (`args`), the control API (`api`, `runner`, `store`) and the
//! built-in sandbox target. `run` is what the `loadd` binary calls once its flags are parsed.

pub mod api;
pub mod args;
pub mod runner;
pub mod sandbox;
pub mod store;

use args::{Command, SandboxArgs};
use sandbox::{CapacityConfig, SandboxConfig};

/// Runs a parsed command until it is signalled to stop; an error is a start-up failure (a bad
/// flag value, an address already in use, an unreadable state directory).
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Sandbox(SandboxArgs {
            listen,
            workers,
            capacity_concurrency,
            capacity_service_ms,
        }) => sandbox::serve_forever(SandboxConfig {
            listen,
            workers: workers.get(),
            capacity: CapacityConfig {
                concurrency: capacity_concurrency,
                service_ms: capacity_service_ms,
            },
        }),
        Command::Serve(args) => api::serve_forever(args),
    }
}
