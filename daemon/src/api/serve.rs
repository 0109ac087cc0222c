//! `loadd serve`: resolve the state directory and the token, load stored runs, start the runner,
//! and serve the API on a one-thread tokio runtime until SIGINT or SIGTERM. On the signal it
//! stops listening, stops the current run gracefully and waits (at most [`SHUTDOWN_GRACE`]) for
//! its final result to be stored, so the run is listed as finished after a restart.
//!
//! Safe by default: loopback listen, a generated token (file mode 0600, directory 0700), the
//! loopback-only allowlist. It refuses a non-loopback listen address unless a token was given
//! explicitly (`LOADD_TOKEN` or `--token-file`), so a generated secret is never the only guard
//! on a network socket the operator did not think about.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::allowlist::AllowRule;
use super::listen::{self, Guards};
use super::policy::{Limits, Policy};
use super::{app, AppState};
use crate::args::ServeArgs;
use crate::runner::{Retention, Runs};
use crate::store::Store;
use crate::tokens::{self, MIN_TOKEN_BYTES};

/// How long a signalled `loadd serve` waits for the current run's final result.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// `$XDG_STATE_HOME/loadd`, else `$HOME/.local/state/loadd`, else `./loadd-state`.
pub fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("loadd");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/state/loadd"),
        None => PathBuf::from("loadd-state"),
    }
}

/// Returns the token and whether the operator chose it (as opposed to loadd generating it).
fn resolve_token(state_dir: &Path, token_file: Option<&Path>) -> Result<(String, bool)> {
    if let Ok(t) = std::env::var("LOADD_TOKEN") {
        let t = t.trim().to_string();
        if t.is_empty() {
            bail!("LOADD_TOKEN is set but empty");
        }
        check_length(&t, "LOADD_TOKEN")?;
        return Ok((t, true));
    }
    if let Some(path) = token_file {
        let t =
            fs::read_to_string(path).with_context(|| format!("--token-file {}", path.display()))?;
        let t = t.trim().to_string();
        if t.is_empty() {
            bail!("--token-file {} is empty", path.display());
        }
        check_length(&t, &format!("--token-file {}", path.display()))?;
        return Ok((t, true));
    }
    let path = state_dir.join("token");
    if let Ok(t) = fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            check_length(&t, &path.display().to_string())?;
            return Ok((t, false));
        }
    }
    let token = tokens::generate()?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    writeln!(file, "{token}").with_context(|| format!("write {}", path.display()))?;
    eprintln!("loadd: generated a bearer token in {}", path.display());
    Ok((token, false))
}

/// A token shorter than [`MIN_TOKEN_BYTES`] can be guessed; refused at start, saying where it
/// came from (never what it is).
fn check_length(token: &str, from: &str) -> Result<()> {
    if token.len() < MIN_TOKEN_BYTES {
        bail!(
            "{from}: the token is {} bytes; use at least {MIN_TOKEN_BYTES} (e.g. `openssl rand -hex 32`)",
            token.len()
        );
    }
    Ok(())
}

/// Runs `loadd serve` until a signal.
pub fn serve_forever(args: ServeArgs) -> Result<()> {
    let state_dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&state_dir)
        .with_context(|| format!("create state directory {}", state_dir.display()))?;
    let (token, explicit) = resolve_token(&state_dir, args.token_file.as_deref())?;
    if !args.listen.ip().is_loopback() && !explicit {
        bail!(
            "refusing to listen on {} without an explicit token: set LOADD_TOKEN or --token-file",
            args.listen
        );
    }
    let allow = args
        .allow
        .iter()
        .map(|a| AllowRule::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let named = tokens::load(&state_dir)?;
    let mut policy = Policy {
        token,
        named,
        allow,
        deny_loopback: args.deny_loopback,
        own_api: None,
        limits: Limits {
            max_connections: args.max_connections,
            max_rate_per_s: args.max_rate,
            max_duration: args.max_duration,
            max_body_bytes: args.max_body_bytes,
            max_threads: args.max_threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }),
            max_steps: args.max_steps,
            max_payload_bytes: args.max_payload_bytes,
        },
    };
    let guards = Guards {
        header_timeout: args.header_timeout,
        max_connections: args.max_api_connections.max(1),
    };
    // Raised at start, not only when a run starts: API connections need descriptors too.
    engine::run::raise_fd_limit();
    let store = Store::open(&state_dir)
        .with_context(|| format!("open {}", state_dir.join("runs").display()))?;
    let (stored, problems) = store.load_all();
    for p in &problems {
        eprintln!("loadd: warning: {p}");
    }
    let retention = Retention {
        max_queued: args.max_queued,
        keep_runs: args.keep_runs.map(std::num::NonZeroUsize::get),
    };
    let runs = Runs::start(store, stored, retention).context("start the runner thread")?;
    let registry = Arc::clone(&runs);
    // One thread for the whole control plane: it must not compete with the shards.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("build the API runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        policy.own_api = Some(addr);
        let state = AppState {
            runs,
            policy: Arc::new(policy),
            failures: Arc::default(),
            subscribers: Arc::new(tokio::sync::Semaphore::new(args.max_subscribers)),
        };
        println!("loadd listening on http://{addr}");
        let _ = std::io::stdout().flush();
        // On a signal, stop accepting connections (open ones, such as live tails, keep being
        // served while the run drains, so they receive its result) and end the run gracefully.
        tokio::select! {
            () = listen::serve(listener, app(state), guards) => return Ok(()),
            () = shutdown_signal() => {}
        }
        let waited = tokio::task::spawn_blocking(move || registry.shutdown(SHUTDOWN_GRACE))
            .await
            .context("wait for the current run")?;
        match waited {
            Some((id, true)) => {
                eprintln!("loadd: run {id} stopped and its result saved");
                // Let live tails receive the final event before the process goes.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Some((id, false)) => eprintln!(
                "loadd: run {id} did not end within {}s; it will be listed as aborted",
                SHUTDOWN_GRACE.as_secs()
            ),
            None => {}
        }
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
