//! What the operator allows: the bearer token, the target allowlist and the limits on a scenario.
//!
//! Checked after a scenario is planned and before anything is queued, so a refused run never
//! opens a socket. It refuses to trust a target just because of its name: addresses are checked
//! as the plan resolved them, and a hostname rule matches only that exact host.

use std::net::IpAddr;
use std::time::Duration;

use engine::Plan;

/// One `--allow` entry.
#[derive(Clone, Debug, PartialEq)]
pub enum AllowRule {
    /// An address block: `10.0.0.0/8`, `192.0.2.7` (a /32), `::1/128`.
    Net { addr: IpAddr, prefix: u8 },
    /// An exact host name from the target URL, e.g. `staging.example.com`.
    Host(String),
}

impl AllowRule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty --allow entry".into());
        }
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        match addr.parse::<IpAddr>() {
            Ok(ip) => {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix {
                    None => max,
                    Some(p) => p
                        .parse::<u8>()
                        .ok()
                        .filter(|p| *p <= max)
                        .ok_or_else(|| format!("--allow {text}: prefix must be 0..={max}"))?,
                };
                Ok(Self::Net { addr: ip, prefix })
            }
            Err(_) if prefix.is_none() => Ok(Self::Host(text.to_ascii_lowercase())),
            Err(_) => Err(format!("--allow {text}: not an address block")),
        }
    }

    fn allows_addr(&self, ip: IpAddr) -> bool {
        let Self::Net { addr, prefix } = self else {
            return false;
        };
        match (addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => same_prefix(&a.octets(), &b.octets(), *prefix),
            (IpAddr::V6(a), IpAddr::V6(b)) => same_prefix(&a.octets(), &b.octets(), *prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = prefix % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        (a[full] & mask) == (b[full] & mask)
    }
}

/// The operator's limits on one scenario.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: u32,
    pub max_rate_per_s: Option<f64>,
    pub max_duration: Option<Duration>,
    pub max_body_bytes: usize,
}

/// Everything a submission is checked against.
#[derive(Clone, Debug)]
pub struct Policy {
    pub token: String,
    pub allow: Vec<AllowRule>,
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
        let (a, b) = (self.token.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    pub fn check(&self, plan: &Plan) -> Result<(), Refusal> {
        self.check_target(plan)?;
        self.check_limits(plan)
    }

    fn check_target(&self, plan: &Plan) -> Result<(), Refusal> {
        let host = host_of(&plan.target.url);
        if self
            .allow
            .iter()
            .any(|r| matches!(r, AllowRule::Host(h) if Some(h) == host.as_ref()))
        {
            return Ok(());
        }
        for addr in &plan.target.addrs {
            let ip = addr.ip();
            if !ip.is_loopback() && !self.allow.iter().any(|r| r.allows_addr(ip)) {
                return Err(Refusal::Target(format!(
                    "target {} resolves to {ip}, which is not on this daemon's allowlist (loopback only unless the operator adds --allow HOST_OR_CIDR)",
                    plan.target.url
                )));
            }
        }
        if plan.target.addrs.is_empty() {
            return Err(Refusal::Target(format!(
                "target {} has no address to check against the allowlist",
                plan.target.url
            )));
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
        if let (Some(max), Some(rate)) = (l.max_rate_per_s, plan.requested_rate_per_s()) {
            if rate > max {
                return Err(Refusal::Limit(format!(
                    "a rate of {rate}/s is over this daemon's limit of {max}/s"
                )));
            }
        }
        if let Some(max) = l.max_duration {
            match plan.planned_end() {
                Some(d) if d > max => {
                    return Err(Refusal::Limit(format!(
                        "a duration of {:?} is over this daemon's limit of {max:?}",
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
    fn rules_parse_and_match() {
        let r = AllowRule::parse("10.0.0.0/8").unwrap();
        assert!(r.allows_addr("10.255.255.1".parse().unwrap()));
        assert!(!r.allows_addr("11.0.0.1".parse().unwrap()));
        let r = AllowRule::parse("192.0.2.7").unwrap();
        assert!(r.allows_addr("192.0.2.7".parse().unwrap()));
        assert!(!r.allows_addr("192.0.2.8".parse().unwrap()));
        let r = AllowRule::parse("172.16.0.0/12").unwrap();
        assert!(r.allows_addr("172.31.1.1".parse().unwrap()));
        assert!(!r.allows_addr("172.32.1.1".parse().unwrap()));
        assert!(AllowRule::parse("::1/129").is_err());
        assert!(AllowRule::parse("host/3").is_err());
        assert_eq!(
            AllowRule::parse("Example.COM").unwrap(),
            AllowRule::Host("example.com".into())
        );
    }

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
            allow: vec![],
            limits: Limits {
                max_connections: 1,
                max_rate_per_s: None,
                max_duration: None,
                max_body_bytes: 1,
            },
        };
        assert!(p.token_matches("abc"));
        assert!(!p.token_matches("abd"));
        assert!(!p.token_matches("ab"));
    }
}
