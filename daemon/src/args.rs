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
    /// Manage per-client tokens (read by `loadd serve` at start; audit lines name the client).
    Token(TokenArgs),
}

/// Flags of `loadd token`.
#[derive(Debug, ClapArgs)]
pub struct TokenArgs {
    /// The state directory `loadd serve` uses (default as for `loadd serve`).
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub action: TokenAction,
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token for client NAME and print it once (only its SHA-256 is stored).
    Add { name: String },
    /// Remove client NAME's token.
    Remove { name: String },
    /// List the clients that have a token.
    List,
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
    /// Also allow targets in this address block or with this exact host name, optionally on one
    /// port only: `10.0.0.0/8`, `10.1.2.0/24:443`, `[2001:db8::/32]:443`, `api.example.com`
    /// (repeatable). Loopback is allowed unless --deny-loopback; link-local (cloud metadata),
    /// unspecified, multicast, broadcast and this daemon's own API never are.
    #[arg(long = "allow")]
    pub allow: Vec<String>,
    /// Loopback targets only where an --allow rule names them (e.g. `--allow 127.0.0.1:8080`).
    #[arg(long)]
    pub deny_loopback: bool,
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
    /// Most shards a scenario may ask for (`[engine] threads` or `cpus`; default: the CPUs this
    /// process may use).
    #[arg(long)]
    pub max_threads: Option<usize>,
    /// Most steps a scenario file may have, over every scenario and task (each step holds a
    /// latency histogram per shard).
    #[arg(long, default_value = "256")]
    pub max_steps: usize,
    /// Most bytes of request bodies and generated upload payloads a scenario may make the daemon
    /// hold, summed over steps, e.g. 256MiB.
    #[arg(long, value_parser = bytes, default_value = "256MiB")]
    pub max_payload_bytes: u64,
    /// Most runs waiting to start; past it a submission is refused with 429.
    #[arg(long, default_value = "16")]
    pub max_queued: usize,
    /// Keep only the newest N runs that are over (older ones are deleted, results and all);
    /// default: keep every run.
    #[arg(long)]
    pub keep_runs: Option<NonZeroUsize>,
    /// Most live event streams (`/v1/runs/{id}/events`) open at once; past it 429.
    #[arg(long, default_value = "64")]
    pub max_subscribers: usize,
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

fn bytes(s: &str) -> Result<u64, String> {
    units::parse_bytes(s).map_err(|e| e.to_string())
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
