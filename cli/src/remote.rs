//! The commands that talk to a `loadd` daemon: `submit`, `tail`, `status`, `list`, `stop`, `report`.
//!
//! The daemon is `--daemon URL`, else `$LOADD_URL`, else `http://127.0.0.1:7070`; the bearer
//! token is `$LOADD_TOKEN`, else the token file loadd generated in the local state directory
//! (`$XDG_STATE_HOME/loadd/token` or `~/.local/state/loadd/token`). `submit` validates the
//! scenario locally and sends it with its files (`bundle`); `tail` follows the run live (`tail`).
//! Exit codes (as `loadctl run`): 0 ok; 1 thresholds failed; 2 refused (bad scenario, auth,
//! allowlist, limits, unknown run); 3 no result (the run was aborted or failed, or the daemon
//! cannot be reached); 4 an `abort_on_fail` threshold stopped the run.
//! It refuses to retry a refused request: only a dropped event stream is resumed.

mod bundle;
mod fleet;
mod tail;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use engine::units::format_us;
use serde_json::Value;

use crate::args::{DaemonArgs, ListArgs, StatusArgs, StopArgs, SubmitArgs, TailArgs};
use crate::exit;

use self::bundle::Bundle;
use self::tail::tail_run;

const DEFAULT_DAEMON: &str = "http://127.0.0.1:7070";

/// `$XDG_STATE_HOME/loadd`, else `$HOME/.local/state/loadd` (loadd's default too).
fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("loadd");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/state/loadd"),
        None => PathBuf::from("loadd-state"),
    }
}

/// A failed exchange, already mapped to what the user sees and the exit code.
#[derive(Debug)]
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn report(self) -> u8 {
        eprintln!("{}", self.message);
        self.code
    }
}

struct Reply {
    status: u16,
    body: String,
}

struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    fn new(args: &DaemonArgs) -> Self {
        let base = args
            .url
            .clone()
            .or_else(|| std::env::var("LOADD_URL").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| DEFAULT_DAEMON.into())
            .trim_end_matches('/')
            .to_string();
        let token = std::env::var("LOADD_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| std::fs::read_to_string(default_state_dir().join("token")).ok())
            .map(|t| t.trim().to_string());
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build();
        Self {
            base,
            token,
            agent: ureq::Agent::new_with_config(config),
        }
    }

    fn unreachable(&self, e: &ureq::Error) -> Failure {
        Failure {
            message: format!("error: cannot reach loadd at {}: {e}", self.base),
            code: exit::NO_RESULT,
        }
    }

    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    fn get(&self, path: &str) -> Result<Reply, Failure> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| self.unreachable(&e))?;
        Ok(Reply { status, body })
    }

    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Reply, Failure> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .content_type(content_type);
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        let mut resp = req.send(body).map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| self.unreachable(&e))?;
        Ok(Reply { status, body })
    }
}

/// A non-2xx reply as one line per problem (`details` of an invalid scenario included).
fn refused(reply: &Reply) -> Failure {
    let v: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    let mut message = format!(
        "error: loadd answered {}: {}",
        reply.status,
        v["error"].as_str().unwrap_or(reply.body.trim())
    );
    if let Some(details) = v["details"].as_array() {
        message = details
            .iter()
            .filter_map(Value::as_str)
            .map(|d| format!("error: {d}"))
            .collect::<Vec<_>>()
            .join("\n");
    }
    let code = if reply.status >= 500 {
        exit::NO_RESULT
    } else {
        exit::USAGE
    };
    Failure { message, code }
}

fn ok_json(reply: Reply) -> Result<Value, Failure> {
    if !(200..300).contains(&reply.status) {
        return Err(refused(&reply));
    }
    serde_json::from_str(&reply.body).map_err(|e| Failure {
        message: format!("error: loadd sent a reply that is not JSON: {e}"),
        code: exit::NO_RESULT,
    })
}

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

/// Keeps unreserved characters; everything else as %XX (file names in a query string).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_names() {
        assert_eq!(percent_encode("a b&c.toml"), "a%20b%26c.toml");
    }

    #[test]
    fn refusals_list_details() {
        let f = refused(&Reply {
            status: 400,
            body:
                r#"{"error":"invalid scenario","details":["x.toml:1:2: bad","x.toml:3:4: worse"]}"#
                    .into(),
        });
        assert_eq!(
            f.message,
            "error: x.toml:1:2: bad\nerror: x.toml:3:4: worse"
        );
        assert_eq!(f.code, exit::USAGE);
        let f = refused(&Reply {
            status: 403,
            body: r#"{"error":"not allowed"}"#.into(),
        });
        assert_eq!(f.message, "error: loadd answered 403: not allowed");
    }
}
