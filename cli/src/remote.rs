//! The commands that talk to a `loadd` daemon: `submit`, `tail`, `status`, `list`, `stop`, `report`.
//!
//! The daemon is `--daemon URL`, else `$LOADD_URL`, else `http://127.0.0.1:7070`; the bearer
//! token is `$LOADD_TOKEN`, else the token file loadd generated in the local state directory
//! (`$XDG_STATE_HOME/loadd/token` or `~/.local/state/loadd/token`), both found by `client`.
//! `submit` validates the scenario locally and sends it with its files (`bundle`); `tail` follows
//! the run live (`tail`, reading the event stream through `sse`).
//! Exit codes (as `loadctl run`): 0 ok; 1 thresholds failed; 2 refused (bad scenario, auth,
//! allowlist, limits, unknown run); 3 no result (the run was aborted or failed, or the daemon
//! cannot be reached); 4 an `abort_on_fail` threshold stopped the run.
//! It refuses to retry a refused request: only a dropped event stream is resumed.

mod bundle;
mod client;
mod fleet;
pub mod sse;
mod tail;

use std::io::Write;

use engine::units::format_us;

use crate::args::{DaemonArgs, ListArgs, StatusArgs, StopArgs, SubmitArgs, TailArgs};
use crate::exit;

use self::bundle::Bundle;
use self::client::{ok_json, percent_encode, refused, Client, Failure};
use self::tail::tail_run;

fn finish(result: Result<u8, Failure>) -> u8 {
    result.unwrap_or_else(Failure::report)
}

pub fn submit(args: &SubmitArgs) -> u8 {
    finish(submit_inner(args))
}

fn submit_inner(args: &SubmitArgs) -> Result<u8, Failure> {
    if !args.daemons.is_empty() {
        return fleet::submit(args);
    }
    // Validated here first: a scenario that does not plan never reaches the daemon.
    let bundle = Bundle::collect(
        &args.file,
        args.duration.as_deref(),
        args.base_url.as_deref(),
        &args.tasks,
    )?;
    let client = Client::new(&args.daemon);
    let mut path = format!("/v1/runs?queue={}", !args.no_queue);
    if let Some(d) = &args.duration {
        path.push_str(&format!("&duration={}", percent_encode(d)));
    }
    if let Some(s) = args.rate_scale {
        path.push_str(&format!("&rate_scale={s}"));
    }
    if let Some(b) = &args.base_url {
        path.push_str(&format!("&base_url={}", percent_encode(b)));
    }
    path.push_str(&tasks_query(&args.tasks));
    let (content_type, body) = bundle.encode();
    let v = ok_json(client.post(&path, &content_type, &body)?)?;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    if args.detach {
        println!("{id}");
        return Ok(exit::OK);
    }
    eprintln!(
        "submitted run {id} ({}) to {}",
        v["state"].as_str().unwrap_or("?"),
        client.base
    );
    tail_run(&client, &id)
}

/// `--task a --task b` as `&tasks=a,b` (nothing without `--task`).
fn tasks_query(tasks: &[String]) -> String {
    if tasks.is_empty() {
        return String::new();
    }
    format!("&tasks={}", percent_encode(&tasks.join(",")))
}

pub fn tail(args: &TailArgs) -> u8 {
    finish(tail_run(&Client::new(&args.daemon), &args.id))
}

pub fn status(args: &StatusArgs) -> u8 {
    finish(status_inner(args))
}

fn status_inner(args: &StatusArgs) -> Result<u8, Failure> {
    let client = Client::new(&args.daemon);
    let run = match &args.id {
        Some(id) => ok_json(client.get(&format!("/v1/runs/{id}"))?)?,
        None => {
            let list = ok_json(client.get("/v1/runs")?)?;
            match list["runs"].as_array().and_then(|r| r.first()) {
                Some(newest) => newest.clone(),
                None => {
                    println!("no runs");
                    return Ok(exit::OK);
                }
            }
        }
    };
    println!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
    Ok(exit::OK)
}

pub fn list(args: &ListArgs) -> u8 {
    finish(list_inner(args))
}

fn list_inner(args: &ListArgs) -> Result<u8, Failure> {
    let client = Client::new(&args.daemon);
    let v = ok_json(client.get("/v1/runs")?)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<21} {:<9} {:>10} {:>9}  target",
        "id", "state", "requests", "p99"
    );
    for r in v["runs"].as_array().into_iter().flatten() {
        let requests = r["summary"]["requests"]
            .as_u64()
            .map_or("-".into(), |n| n.to_string());
        let p99 = r["summary"]["latency_us"]["p99"]
            .as_u64()
            .map_or("-".into(), format_us);
        let _ = writeln!(
            out,
            "{:<21} {:<9} {:>10} {:>9}  {}",
            r["id"].as_str().unwrap_or("?"),
            r["state"].as_str().unwrap_or("?"),
            requests,
            p99,
            r["target"].as_str().unwrap_or("")
        );
    }
    Ok(exit::OK)
}

pub fn stop(args: &StopArgs) -> u8 {
    finish(stop_inner(args))
}

fn stop_inner(args: &StopArgs) -> Result<u8, Failure> {
    let client = Client::new(&args.daemon);
    let v = ok_json(client.post(&format!("/v1/runs/{}/stop", args.id), "text/plain", b"")?)?;
    eprintln!(
        "run {}: stop requested ({})",
        args.id,
        v["state"].as_str().unwrap_or("?")
    );
    Ok(exit::OK)
}

/// A run's report from loadd as text (`format`: json, html, md, csv, steps-csv, hlog), or the
/// exit code after saying why not (`loadctl report ID`, `loadctl compare`).
pub fn fetch_report(daemon: &DaemonArgs, id: &str, format: &str) -> Result<String, u8> {
    let client = Client::new(daemon);
    let path = format!(
        "/v1/runs/{}/report?format={}",
        percent_encode(id),
        percent_encode(format)
    );
    let reply = client.get(&path).map_err(Failure::report)?;
    if !(200..300).contains(&reply.status) {
        return Err(refused(&reply).report());
    }
    Ok(reply.body)
}
