//! A host that resolves to several addresses: connections rotate over all of them. The name
//! `multi.test` resolves to 127.0.0.2, .3 and .4 inside a private mount namespace whose
//! `/etc/hosts` says so (`unshare -m`, then a bind mount), so nothing outside the test sees the
//! name and every packet stays on loopback. One nginx per address, on one port, counts what it
//! got. Skipped, with a note, where a mount namespace cannot be made (not root).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use testbed::{run_bounded, serial, Nginx, NginxConfig};

const ADDRESSES: [Ipv4Addr; 3] = [
    Ipv4Addr::new(127, 0, 0, 2),
    Ipv4Addr::new(127, 0, 0, 3),
    Ipv4Addr::new(127, 0, 0, 4),
];

/// Whether `unshare -m` with a bind mount works here.
fn namespaces_work() -> bool {
    Command::new("unshare")
        .args(["-m", "sh", "-c", "mount --bind /etc/hosts /etc/hosts"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn connections_spread_over_every_address_of_the_host() {
    if !namespaces_work() {
        eprintln!("skipped: cannot make a mount namespace here (unshare -m needs root)");
        return;
    }
    let _load = serial();
    let port = testbed::free_port();
    let servers: Vec<Nginx> = ADDRESSES
        .iter()
        .map(|&ip| {
            Nginx::start_with(NginxConfig {
                bind: Some(SocketAddr::from((ip, port))),
                ..NginxConfig::default()
            })
            .expect("start nginx on its address")
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let hosts = dir.path().join("hosts");
    let lines: String = ADDRESSES
        .iter()
        .map(|ip| format!("{ip} multi.test\n"))
        .collect();
    std::fs::write(&hosts, lines).expect("write hosts");
    let loadctl = testbed::bin("loadctl");
    let script = format!(
        "mount --bind {} /etc/hosts && exec {} run http://multi.test:{port}/ -t 2 -c 6 -n 600 --output json",
        hosts.display(),
        loadctl.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &script]);
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["requests"], 600, "{v}");
    assert_eq!(v["errors_total"], 0, "{}", v["errors"]);
    let mut served = 0;
    for (ip, nginx) in ADDRESSES.iter().zip(&servers) {
        let stats = nginx.stub_status().expect("stub_status");
        // Two shards, three connections each, interleaved: two connections per address.
        assert_eq!(stats.accepts, 2, "{ip}: {stats:?}");
        assert!(stats.requests > 0, "{ip}: {stats:?}");
        served += stats.requests;
    }
    assert_eq!(served, 600);
}
