//! What the operator allows of a planned run: the tokens, the target (through `allowlist`) and
//! the limits that need the plan (connections, peak rate, duration; the ones readable from the
//! spec alone are checked before planning, in `spec_limits`).
//!
//! Checked after a scenario is planned and before anything is queued, so a refused run never
//! opens a socket. It refuses to trust a target just because of its name: addresses are checked
//! as the plan resolved them.

use std::net::SocketAddr;
use std::time::Duration;

use engine::Plan;

use super::allowlist::{self, AllowRule};

/// The operator's limits on one scenario.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: u32,
    pub max_rate_per_s: Option<f64>,
    pub max_duration: Option<Duration>,
    pub max_body_bytes: usize,
    /// Most shards a scenario may ask for (`threads`, `cpus`).
    pub max_threads: usize,
    /// Most steps over every scenario and task of a file.
    pub max_steps: usize,
    /// Most bytes of request bodies and upload payloads a plan may hold.
    pub max_payload_bytes: u64,
}

impl Limits {
    /// The part checked on the spec before planning.
    pub fn spec(&self) -> super::spec_limits::SpecLimits {
        super::spec_limits::SpecLimits {
            max_threads: self.max_threads,
            max_steps: self.max_steps,
            max_payload_bytes: self.max_payload_bytes,
            max_duration: self.max_duration,
        }
    }
}

/// A client's own token (`loadd token add NAME`), kept only as its SHA-256.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedToken {
    pub name: String,
    pub sha256_hex: String,
}

/// Everything a submission is checked against.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The daemon's own token (its caller is named `default`).
    pub token: String,
    /// Per-client tokens.
    pub named: Vec<NamedToken>,
    pub allow: Vec<AllowRule>,
    /// Loopback only where an `--allow` rule names it (`--deny-loopback`).
    pub deny_loopback: bool,
    /// The API's own listen address, never a target (`None` until it is bound, in tests).
    pub own_api: Option<SocketAddr>,
    pub limits: Limits,
}

/// Why a planned run is refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// The target is not on the allowlist (403).
    Target(String),
    /// Over an operator limit (400).
    Limit(String),
}

impl Policy {
    /// Constant-time comparison against the configured token.
    pub fn token_matches(&self, presented: &str) -> bool {
        same_bytes(self.token.as_bytes(), presented.as_bytes())
    }

    /// The name of the token presented: `default` for the daemon's own, a client's name for
    /// one of `loadd token add`; `None` when it is neither.
    pub fn token_name(&self, presented: &str) -> Option<&str> {
        if self.token_matches(presented) {
            return Some("default");
        }
        if self.named.is_empty() {
            return None;
        }
        let digest = engine::results::Environment::sha256_hex(presented.as_bytes());
        // Every entry is compared, so the time taken does not say which one matched.
        self.named.iter().fold(None, |found, t| {
            if same_bytes(t.sha256_hex.as_bytes(), digest.as_bytes()) {
                Some(t.name.as_str())
            } else {
                found
            }
        })
    }

    pub fn check(&self, plan: &Plan) -> Result<(), Refusal> {
        self.check_target(plan)?;
        self.check_limits(plan)
    }

    /// Every resolved address must pass the deny list and the own-API check, and be admitted
    /// by loopback (unless `--deny-loopback`), an address rule or a host rule.
    fn check_target(&self, plan: &Plan) -> Result<(), Refusal> {
        let url = &plan.target.url;
        if plan.target.addrs.is_empty() {
            return Err(Refusal::Target(format!(
                "target {url} has no address to check against the allowlist"
            )));
        }
        let host = host_of(url);
        for addr in &plan.target.addrs {
            let ip = allowlist::canonical(addr.ip());
            if let Some(why) = allowlist::denied(ip) {
                return Err(Refusal::Target(format!(
                    "target {url} resolves to {ip}, {why}: never a load target, whatever --allow says"
                )));
            }
            if self
                .own_api
                .is_some_and(|own| allowlist::is_own_api(*addr, own))
            {
                return Err(Refusal::Target(format!(
                    "target {url} is this daemon's own API ({addr}): never a load target"
                )));
            }
            let by_loopback = !self.deny_loopback && allowlist::is_loopback(ip);
            let by_rule = self.allow.iter().any(|r| {
                r.allows_addr(*addr)
                    || host
                        .as_deref()
                        .is_some_and(|h| r.allows_host(h, addr.port()))
            });
            if !(by_loopback || by_rule) {
                let hint = if self.deny_loopback {
                    "nothing unless the operator adds --allow HOST_OR_CIDR[:PORT]"
                } else {
                    "loopback only unless the operator adds --allow HOST_OR_CIDR[:PORT]"
                };
                return Err(Refusal::Target(format!(
                    "target {url} resolves to {addr}, which is not on this daemon's allowlist ({hint})"
                )));
            }
        }
        Ok(())
    }

    fn check_limits(&self, plan: &Plan) -> Result<(), Refusal> {
        let l = &self.limits;
        if plan.connections() > l.max_connections {
            return Err(Refusal::Limit(format!(
                "{} connections is over this daemon's limit of {}",
                plan.connections(),
                l.max_connections
            )));
        }
        if let (Some(max), Some(rate)) = (l.max_rate_per_s, peak_rate_per_s(plan)) {
            if rate > max {
                return Err(Refusal::Limit(format!(
                    "a peak rate of {rate}/s is over this daemon's limit of {max}/s (--max-rate)"
                )));
            }
        }
        if let Some(max) = l.max_duration {
            match plan.planned_end() {
                Some(d) if d > max => {
                    return Err(Refusal::Limit(format!(
                    "a duration of {:?} is over this daemon's limit of {max:?} (--max-duration)",
                    d
                )))
                }
                None => {
                    return Err(Refusal::Limit(format!(
                        "this daemon limits runs to {max:?}: give the scenario a duration"
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The highest arrival rate any instant of the run may ask for: the sum of each open
/// scenario's peak (scenarios may overlap, so this is an upper bound, never the mean). `None`
/// when no scenario is open: closed-model and WebSocket runs are held to the rate limit while
/// they run (see `runner`).
pub fn peak_rate_per_s(plan: &Plan) -> Option<f64> {
    let peaks = plan.scenarios.iter().filter_map(|s| match &s.model {
        engine::plan::LoadModel::Open { schedule, .. } => Some(schedule.peak_rate_per_s()),
        engine::plan::LoadModel::Closed { .. } => None,
    });
    peaks
        .reduce(|a, b| a + b)
        .map(|r| (r * 1000.0).round() / 1000.0)
}

/// Constant-time equality (for equal lengths).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The host of a target URL: lowercase, an IPv6 address without brackets; `None` if the URL
/// has none (it then matches no host rule and is judged by its addresses alone).
fn host_of(url: &str) -> Option<String> {
    match url::Url::parse(url).ok()?.host()? {
        url::Host::Domain(d) => Some(d.to_ascii_lowercase()),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_extracted() {
        assert_eq!(host_of("http://a.b:80/x").as_deref(), Some("a.b"));
        assert_eq!(host_of("http://[::1]:8080/").as_deref(), Some("::1"));
        assert_eq!(host_of("http://u@H/").as_deref(), Some("h"));
        assert_eq!(host_of("not a url"), None);
    }

    #[test]
    fn token_compare() {
        let p = Policy {
            token: "abc".into(),
            named: vec![NamedToken {
                name: "ci".into(),
                sha256_hex: engine::results::Environment::sha256_hex(b"ci-secret"),
            }],
            allow: vec![],
            deny_loopback: false,
            own_api: None,
            limits: Limits {
                max_connections: 1,
                max_rate_per_s: None,
                max_duration: None,
                max_body_bytes: 1,
                max_threads: 1,
                max_steps: 1,
                max_payload_bytes: 1,
            },
        };
        assert!(p.token_matches("abc"));
        assert!(!p.token_matches("abd"));
        assert!(!p.token_matches("ab"));
        assert_eq!(p.token_name("abc"), Some("default"));
        assert_eq!(p.token_name("ci-secret"), Some("ci"));
        assert_eq!(p.token_name("ci-secreT"), None);
    }
}
