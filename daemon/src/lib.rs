//! loadd's library side: its flags (`args`), the control API (`api`, `runner`, `store`) and the
//! built-in sandbox target. `run` is what the `loadd` binary calls once its flags are parsed.

pub mod api;
pub mod args;
pub mod cap;
pub mod runner;
pub mod sandbox;
pub mod store;
pub mod tokens;

use args::{Command, SandboxArgs, TokenAction, TokenArgs};
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
        Command::Token(args) => token_command(args),
    }
}

fn token_command(TokenArgs { state_dir, action }: TokenArgs) -> anyhow::Result<()> {
    let state_dir = state_dir.unwrap_or_else(api::default_state_dir);
    match action {
        TokenAction::Add { name } => {
            let token = tokens::add(&state_dir, &name)?;
            println!("{token}");
            eprintln!("loadd: token for `{name}` made; it is shown only now (restart loadd serve to accept it)");
        }
        TokenAction::Remove { name } => {
            tokens::remove(&state_dir, &name)?;
            eprintln!("loadd: token for `{name}` removed (restart loadd serve to refuse it)");
        }
        TokenAction::List => {
            for t in tokens::load(&state_dir)? {
                println!("{}", t.name);
            }
        }
    }
    Ok(())
}
