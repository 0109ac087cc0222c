//! The HTTP client of loadd's control API: which daemon (`--daemon`, `$LOADD_URL`, the default),
//! which token (`$LOADD_TOKEN`, loadd's token file), one request and its reply, and how a
//! refusal reads on stderr with its exit code. Event streams are read by `sse`. It refuses to
//! retry: a refused or failed request is reported once, as is.

use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use crate::args::DaemonArgs;
use crate::exit;

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
pub(super) struct Failure {
    pub(super) message: String,
    pub(super) code: u8,
}

impl Failure {
    pub(super) fn report(self) -> u8 {
        eprintln!("{}", self.message);
        self.code
    }
}

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: String,
}

pub(super) struct Client {
    pub(super) base: String,
    token: Option<String>,
    pub(super) agent: ureq::Agent,
}

impl Client {
    pub(super) fn new(args: &DaemonArgs) -> Self {
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

    pub(super) fn unreachable(&self, e: &ureq::Error) -> Failure {
        Failure {
            message: format!("error: cannot reach loadd at {}: {e}", self.base),
            code: exit::NO_RESULT,
        }
    }

    pub(super) fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    pub(super) fn get(&self, path: &str) -> Result<Reply, Failure> {
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

    pub(super) fn post(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Reply, Failure> {
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
pub(super) fn refused(reply: &Reply) -> Failure {
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

pub(super) fn ok_json(reply: Reply) -> Result<Value, Failure> {
    if !(200..300).contains(&reply.status) {
        return Err(refused(&reply));
    }
    serde_json::from_str(&reply.body).map_err(|e| Failure {
        message: format!("error: loadd sent a reply that is not JSON: {e}"),
        code: exit::NO_RESULT,
    })
}

/// What a query value keeps as is (RFC 3986's unreserved characters); the rest is `%XX`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A value for a query string (a file name, a duration, a run id).
pub(super) fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
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
