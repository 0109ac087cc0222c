//! Which target addresses a run may send to: the operator's `--allow` rules (address blocks or
//! exact host names, each optionally scoped to one port), loopback unless `--deny-loopback`, and
//! a built-in deny list that no rule overrides.
//!
//! Every address is canonicalised before it is judged (an IPv4-mapped IPv6 address is the IPv4
//! address it maps), so `--allow ::/0` cannot admit `[::ffff:169.254.169.254]`. The deny list
//! holds what is never a load target: unspecified (`0.0.0.0/8`, `::`), link-local and cloud
//! metadata (`169.254.0.0/16`, `fe80::/10`, `fd00:ec2::254`), multicast and broadcast. It
//! refuses to trust a name: a host rule admits that exact host, and its addresses still pass
//! the deny list and the daemon's own API address check.

use std::net::{IpAddr, SocketAddr};

/// One `--allow` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AllowRule {
    pub what: AllowWhat,
    /// Only this target port (`10.1.2.0/24:443`); `None`: any port.
    pub port: Option<u16>,
}

/// What an `--allow` entry admits.
#[derive(Clone, Debug, PartialEq)]
pub enum AllowWhat {
    /// An address block: `10.0.0.0/8`, `192.0.2.7` (a /32), `::1/128` (canonical form).
    Net { addr: IpAddr, prefix: u8 },
    /// An exact host name from the target URL, e.g. `staging.example.com`.
    Host(String),
}

/// Blocks no rule can admit, with why (canonical IPv4 or IPv6).
const DENIED: &[(&str, u8, &str)] = &[
    ("0.0.0.0", 8, "an unspecified (\"this network\") address"),
    ("169.254.0.0", 16, "link-local (cloud metadata lives here)"),
    ("224.0.0.0", 4, "multicast"),
    ("255.255.255.255", 32, "the broadcast address"),
    ("::", 128, "the unspecified address"),
    ("fe80::", 10, "link-local"),
    ("ff00::", 8, "multicast"),
    ("fd00:ec2::254", 128, "a cloud metadata address"),
];

/// The address an IPv4-mapped IPv6 address stands for; any other address as it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why `ip` (canonical) is on the built-in deny list, if it is.
pub fn denied(ip: IpAddr) -> Option<&'static str> {
    let ip = canonical(ip);
    DENIED.iter().find_map(|(net, prefix, why)| {
        let net: IpAddr = net.parse().ok()?;
        in_block(net, *prefix, ip).then_some(*why)
    })
}

impl AllowRule {
    /// `BLOCK`, `BLOCK:PORT`, `[V6BLOCK]:PORT`, `HOST` or `HOST:PORT`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty --allow entry".into());
        }
        let (body, port) = split_port(text)?;
        let (addr, prefix) = match body.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (body, None),
        };
        let what = match addr.parse::<IpAddr>() {
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
                canonical_block(ip, prefix)
            }
            Err(_) if prefix.is_none() => AllowWhat::Host(addr.to_ascii_lowercase()),
            Err(_) => return Err(format!("--allow {text}: not an address block")),
        };
        Ok(Self { what, port })
    }

    /// Whether this rule admits a (canonical) address and port.
    pub fn allows_addr(&self, addr: SocketAddr) -> bool {
        let AllowWhat::Net { addr: net, prefix } = self.what else {
            return false;
        };
        self.port.is_none_or(|p| p == addr.port()) && in_block(net, prefix, canonical(addr.ip()))
    }

    /// Whether this rule admits the target's host name on `port`.
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        matches!(&self.what, AllowWhat::Host(h) if h == host) && self.port.is_none_or(|p| p == port)
    }
}

/// `[v6]:port`, `v4:port`, `host:port` (one colon) or no port at all.
fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("--allow {text}: port must be 1..=65535"))
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("--allow {text}: `[` without `]`"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((inside, Some(port(p)?))),
            None if after.is_empty() => Ok((inside, None)),
            None => Err(format!("--allow {text}: expected `:PORT` after `]`")),
        };
    }
    match text.matches(':').count() {
        1 => {
            let (body, p) = text.split_once(':').unwrap_or((text, ""));
            Ok((body, Some(port(p)?)))
        }
        _ => Ok((text, None)),
    }
}

/// A block in canonical form: `::ffff:10.0.0.0/104` is `10.0.0.0/8`.
fn canonical_block(ip: IpAddr, prefix: u8) -> AllowWhat {
    match ip {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => AllowWhat::Net {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            },
            None => AllowWhat::Net { addr: ip, prefix },
        },
        _ => AllowWhat::Net { addr: ip, prefix },
    }
}

fn in_block(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => same_prefix(&a.octets(), &b.octets(), prefix),
        (IpAddr::V6(a), IpAddr::V6(b)) => same_prefix(&a.octets(), &b.octets(), prefix),
        _ => false,
    }
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8).min(a.len());
    if a[..full] != b[..full] {
        return false;
    }
    let rest = prefix % 8;
    rest == 0 || full >= a.len() || {
        let mask = 0xffu8 << (8 - rest);
        (a[full] & mask) == (b[full] & mask)
    }
}

/// Whether `target` is the daemon's own API (`listen`): the same port on the same address, or
/// on loopback when the API listens on every address.
pub fn is_own_api(target: SocketAddr, listen: SocketAddr) -> bool {
    let ip = canonical(target.ip());
    target.port() == listen.port()
        && (ip == canonical(listen.ip())
            || (listen.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified())))
}

/// Loopback, canonical (`::ffff:127.0.0.1` counts).
pub fn is_loopback(ip: IpAddr) -> bool {
    canonical(ip).is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rules_parse_and_match() {
        let r = AllowRule::parse("10.0.0.0/8").unwrap();
        assert!(r.allows_addr(sa("10.255.255.1:80")));
        assert!(!r.allows_addr(sa("11.0.0.1:80")));
        let r = AllowRule::parse("192.0.2.7").unwrap();
        assert!(r.allows_addr(sa("192.0.2.7:1")));
        assert!(!r.allows_addr(sa("192.0.2.8:1")));
        let r = AllowRule::parse("172.16.0.0/12").unwrap();
        assert!(r.allows_addr(sa("172.31.1.1:1")));
        assert!(!r.allows_addr(sa("172.32.1.1:1")));
        assert!(AllowRule::parse("::1/129").is_err());
        assert!(AllowRule::parse("host/3").is_err());
        assert_eq!(
            AllowRule::parse("Example.COM").unwrap().what,
            AllowWhat::Host("example.com".into())
        );
    }

    #[test]
    fn ports_scope_rules() {
        let r = AllowRule::parse("10.1.2.0/24:443").unwrap();
        assert!(r.allows_addr(sa("10.1.2.9:443")));
        assert!(!r.allows_addr(sa("10.1.2.9:80")));
        let r = AllowRule::parse("[2001:db8::/32]:8443").unwrap();
        assert!(r.allows_addr(sa("[2001:db8::1]:8443")));
        assert!(!r.allows_addr(sa("[2001:db8::1]:443")));
        let r = AllowRule::parse("2001:db8::/32").unwrap();
        assert_eq!(r.port, None);
        let r = AllowRule::parse("api.example.com:443").unwrap();
        assert!(r.allows_host("api.example.com", 443));
        assert!(!r.allows_host("api.example.com", 80));
        for bad in ["10.0.0.1:0", "10.0.0.1:99999", "[::1", "[::1]x"] {
            assert!(AllowRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mapped_addresses_are_judged_as_ipv4() {
        let any_v6 = AllowRule::parse("::/0").unwrap();
        assert!(!any_v6.allows_addr(sa("[::ffff:10.0.0.1]:80")));
        assert!(any_v6.allows_addr(sa("[2001:db8::1]:80")));
        let mapped = AllowRule::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.allows_addr(sa("10.9.9.9:80")));
        assert!(mapped.allows_addr(sa("[::ffff:10.9.9.9]:80")));
    }

    #[test]
    fn the_deny_list_holds_in_every_form() {
        for ip in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
            "fe80::1",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "fd00:ec2::254",
        ] {
            assert!(denied(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "2001:db8::1", "::1"] {
            assert_eq!(denied(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn the_own_api_is_recognised() {
        assert!(is_own_api(sa("127.0.0.1:7070"), sa("127.0.0.1:7070")));
        assert!(is_own_api(
            sa("[::ffff:127.0.0.1]:7070"),
            sa("127.0.0.1:7070")
        ));
        assert!(is_own_api(sa("127.0.0.2:7070"), sa("0.0.0.0:7070")));
        assert!(!is_own_api(sa("127.0.0.1:7071"), sa("127.0.0.1:7070")));
    }
}
