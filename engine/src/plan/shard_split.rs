//! `ShardPlan`: one shard's share of a run, and `Plan::split`, which makes them.
//!
//! Connections and iteration budgets are divided as evenly as possible; open-model schedules
//! stay whole, each shard taking its interleaved arrivals. It divides only: it starts no thread
//! and changes nothing in the `Plan`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::plan::journey::Journey;
use crate::plan::limits::Limits;
use crate::plan::model::LoadModel;
use crate::plan::placement::DriverChoice;
use crate::plan::target::TlsPlan;
use crate::plan::websocket::WsPlan;
use crate::plan::Plan;

/// One shard's share of a run. Moved into the shard's thread.
#[derive(Clone, Debug)]
pub struct ShardPlan {
    pub index: usize,
    pub shards: usize,
    pub cpu: Option<usize>,
    /// Every address the target's host resolved to (of the local addresses' family when
    /// `local_ips` is set): connections rotate over them.
    pub addrs: Vec<SocketAddr>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub driver: DriverChoice,
    pub local_ips: Vec<IpAddr>,
    pub limits: Limits,
    /// Steps and scenarios of the whole run: the shape of the shard's stats.
    pub steps: usize,
    pub scenarios: usize,
    /// Each shard builds its own client config (and session store) from this.
    pub tls: Option<TlsPlan>,
    /// HTTP/2: streams per connection. Each group's `connections` then counts virtual users,
    /// `streams` of them to a connection.
    pub h2_streams: Option<u32>,
    /// This shard's share of each scenario.
    pub groups: Vec<GroupPlan>,
}

impl ShardPlan {
    /// The address connect number `n` of this shard goes to: shards interleave, so across the
    /// run every address gets an equal share of the connections.
    pub fn target_addr(&self, n: usize) -> SocketAddr {
        let k = n.wrapping_mul(self.shards).wrapping_add(self.index);
        self.addrs[k % self.addrs.len().max(1)]
    }

    pub fn connections(&self) -> u32 {
        // Saturating: a wrapped total would slip under the fd check.
        self.groups
            .iter()
            .fold(0u32, |a, g| a.saturating_add(g.connections))
    }
}

/// One scenario's share on one shard.
#[derive(Clone, Debug)]
pub struct GroupPlan {
    pub scenario: usize,
    pub step_base: usize,
    pub connections: u32,
    pub journey: Journey,
    /// This shard's share of the load: its request budget, its queue bound.
    pub work: LoadModel,
    pub start_after: Duration,
    pub graceful_stop: Duration,
    pub websocket: Option<WsPlan>,
}

impl Plan {
    /// Splits the run across shards: each scenario's connections and iteration budget divided
    /// as evenly as possible; open-model arrivals interleaved (shard i takes arrivals i, i+n, …).
    pub fn split(&self) -> Vec<ShardPlan> {
        let n = self.shards().max(1);
        (0..n)
            .map(|i| {
                let groups = self
                    .scenarios
                    .iter()
                    .enumerate()
                    .map(|(k, s)| GroupPlan {
                        scenario: k,
                        step_base: s.step_base,
                        // HTTP/2: `streams` users share each of the scenario's connections.
                        connections: (share(u64::from(s.connections), i, n) as u32)
                            .saturating_mul(self.h2_streams.unwrap_or(1)),
                        journey: s.journey.clone(),
                        work: share_of_work(&s.model, i, n),
                        start_after: s.start_after,
                        graceful_stop: s.graceful_stop,
                        websocket: s.websocket.clone(),
                    })
                    .collect();
                ShardPlan {
                    index: i,
                    shards: n,
                    cpu: self.cpus.get(i).copied().flatten(),
                    addrs: reachable_addrs(&self.target.addrs, &self.local_ips),
                    timeout: self.timeout,
                    connect_timeout: self.connect_timeout,
                    driver: self.driver,
                    local_ips: self.local_ips.clone(),
                    steps: self.steps().count(),
                    scenarios: self.scenarios.len(),
                    tls: self.tls.clone(),
                    h2_streams: self.h2_streams,
                    limits: self.limits,
                    groups,
                }
            })
            .collect()
    }
}

/// Shard `i`'s share of `total` among `n`: remainders go to the first shards.
fn share(total: u64, i: usize, n: usize) -> u64 {
    total / n as u64 + u64::from((i as u64) < total % n as u64)
}

/// Shard `i`'s share of a scenario's load: its part of the iteration budget, its part of the
/// open model's queue (the schedule itself is whole: each shard takes every n-th arrival).
fn share_of_work(model: &LoadModel, i: usize, n: usize) -> LoadModel {
    match model {
        LoadModel::Closed {
            duration,
            requests,
            vus,
            per_vu,
        } => LoadModel::Closed {
            duration: *duration,
            requests: requests.map(|r| share(r, i, n)),
            vus: vus.clone(),
            per_vu: *per_vu,
        },
        LoadModel::Open {
            schedule,
            max_queue,
        } => LoadModel::Open {
            schedule: schedule.clone(),
            max_queue: (*max_queue / n).max(1),
        },
    }
}

/// The addresses a connection can reach from `local_ips` (same family), all of them without
/// local addresses; if none matches, all (each connect then fails and is counted).
fn reachable_addrs(addrs: &[SocketAddr], local_ips: &[IpAddr]) -> Vec<SocketAddr> {
    let Some(local) = local_ips.first() else {
        return addrs.to_vec();
    };
    let same: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| a.is_ipv4() == local.is_ipv4())
        .collect();
    if same.is_empty() {
        addrs.to_vec()
    } else {
        same
    }
}
