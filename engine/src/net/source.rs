//! Source-address rotation (k6's `--local-ips`): each connection binds to one of several local
//! addresses before it connects, so a box is not limited to one address's ~28k ephemeral ports
//! towards one target. `IP_BIND_ADDRESS_NO_PORT` defers the port choice to `connect()`, where the
//! kernel only needs the whole 4-tuple to be unique, instead of reserving a port at `bind()`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use monoio::net::TcpStream;
use socket2::{Domain, Socket, Type};

/// More addresses than this in one list is a typo (a /8), not a load box.
pub const MAX_LOCAL_IPS: usize = 65_536;

/// Parses `10.0.0.1`, `10.0.0.1-10.0.0.9` (inclusive) or `10.0.0.0/29` (every address of the
/// block) and IPv6 single addresses, in order, without duplicates.
pub fn parse_local_ips<S: AsRef<str>>(items: &[S]) -> Result<Vec<IpAddr>, String> {
    let mut out: Vec<IpAddr> = Vec::new();
    for item in items {
        let item = item.as_ref().trim();
        let expanded = expand(item)?;
        if out.len() + expanded.len() > MAX_LOCAL_IPS {
            return Err(format!("more than {MAX_LOCAL_IPS} local addresses"));
        }
        for ip in expanded {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    Ok(out)
}

fn expand(item: &str) -> Result<Vec<IpAddr>, String> {
    let v4 = |s: &str| {
        s.trim()
            .parse::<Ipv4Addr>()
            .map_err(|_| format!("{s:?} is not an IPv4 address"))
    };
    let range = |first: u32, last: u32| -> Result<Vec<IpAddr>, String> {
        if last < first {
            return Err(format!("{item:?}: the range ends before it starts"));
        }
        if (last - first) as usize >= MAX_LOCAL_IPS {
            return Err(format!("{item:?}: more than {MAX_LOCAL_IPS} addresses"));
        }
        Ok((first..=last)
            .map(|n| IpAddr::V4(Ipv4Addr::from(n)))
            .collect())
    };
    if let Some((a, b)) = item.split_once('-') {
        return range(u32::from(v4(a)?), u32::from(v4(b)?));
    }
    if let Some((a, bits)) = item.split_once('/') {
        let bits: u32 = bits
            .parse()
            .ok()
            .filter(|b| *b <= 32)
            .ok_or_else(|| format!("{item:?}: the prefix length must be 0 to 32"))?;
        let base = u32::from(v4(a)?);
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        let first = base & mask;
        return range(first, first | !mask);
    }
    item.parse::<IpAddr>()
        .map(|ip| vec![ip])
        .map_err(|_| format!("{item:?} is not an IP address, a range a-b or a block a/n"))
}

/// Connects to `to` from `from` (any free port). The connect runs in the background (a
/// non-blocking socket) and is awaited as write readiness, so the shard never blocks.
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    if from.is_ipv4() {
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::IpBindAddressNoPort,
            &true,
        )?;
    }
    socket.bind(&SocketAddr::new(from, 0).into())?;
    match socket.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(socket.into())?;
    stream.writable(false).await?;
    // A refused connect is also "writable": only a peer address says it is established.
    stream.peer_addr()?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(items: &[&str]) -> Result<Vec<String>, String> {
        parse_local_ips(items).map(|v| v.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn addresses_ranges_and_blocks_expand_in_order() {
        assert_eq!(
            ips(&["127.0.0.2-127.0.0.4", "127.0.0.8/31", "127.0.0.3", "::1"]).unwrap(),
            [
                "127.0.0.2",
                "127.0.0.3",
                "127.0.0.4",
                "127.0.0.8",
                "127.0.0.9",
                "::1"
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert!(ips(&["127.0.0.300"]).unwrap_err().contains("127.0.0.300"));
        assert!(ips(&["127.0.0.9-127.0.0.2"])
            .unwrap_err()
            .contains("ends before"));
        assert!(ips(&["10.0.0.0/33"]).unwrap_err().contains("prefix"));
        assert!(ips(&["10.0.0.0/8"]).unwrap_err().contains("more than"));
    }
}
