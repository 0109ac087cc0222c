//! `loadd`'s flags (clap derive), for every command: help text is each field's doc comment, and
//! unit-bearing values (`50k`, `10m`) go through the engine's one unit parser. It refuses to act
//! on a flag: `crate::run` and the commands do that.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use engine::units;

#[derive(Debug, Parser)]
#[command(name = "loadd", version, about = "loadd: the load daemon")]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the built-in loopback HTTP/1.1 target (for demos and tests) until SIGINT or SIGTERM.
    Sandbox(SandboxArgs),
    /// Serve the control API (runs, live events, reports) until SIGINT or SIGTERM.
    Serve(ServeArgs),
}

/// Flags of `loadd sandbox`.
#[derive(Debug, ClapArgs)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free one (printed on start).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Tokio worker threads.
    #[arg(long, default_value = "1")]
    pub workers: NonZeroUsize,
    /// Requests `/capacity/work` serves at once (the rest queue).
    #[arg(long, default_value = "8")]
    pub capacity_concurrency: usize,
    /// Milliseconds each `/capacity/work` request holds its slot.
    #[arg(long, default_value = "10")]
    pub capacity_service_ms: u64,
}

/// Flags of `loadd serve`.
#[derive(Debug, ClapArgs)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; any other needs an explicit token).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Where runs and the token live (default `$XDG_STATE_HOME/loadd` or `~/.local/state/loadd`).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Read the bearer token from this file instead of `STATE_DIR/token` (`LOADD_TOKEN` wins).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Also allow targets in this address block or with this exact host name (repeatable);
    /// loopback is always allowed.
    #[arg(long = "allow")]
    pub allow: Vec<String>,
    /// Most connections one scenario may open.
    #[arg(long, default_value = "10000")]
    pub max_connections: u32,
    /// Highest arrival rate a scenario may ask for, e.g. 50k (default: no limit).
    #[arg(long, value_parser = rate)]
    pub max_rate: Option<f64>,
    /// Longest run a scenario may ask for, e.g. 10m (default: no limit).
    #[arg(long, value_parser = duration)]
    pub max_duration: Option<Duration>,
    /// Largest scenario body accepted, in bytes.
    #[arg(long, default_value = "1048576")]
    pub max_body_bytes: usize,
    /// Close an API connection that sends no complete request head within this long, e.g. 10s
    /// (also a kept-alive connection idle that long between requests).
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub header_timeout: Duration,
    /// Most API connections open at once; past it a new connection is closed at once.
    #[arg(long, default_value = "1024")]
    pub max_api_connections: usize,
}

fn rate(s: &str) -> Result<f64, String> {
    units::parse_scaled(s).map_err(|e| e.to_string())
}

fn duration(s: &str) -> Result<Duration, String> {
    units::parse_duration(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn args_are_well_formed() {
        Args::command().debug_assert();
    }
}
