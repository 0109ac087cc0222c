//! A shard: one pinned thread, one monoio runtime, its own connections, schedule and stats.
//!
//! The thread pins itself first, then builds its runtime (io_uring with SINGLE_ISSUER +
//! DEFER_TASKRUN, which only this thread ever touches; plain io_uring; then epoll), then its
//! state. It opens its connections, reports ready, waits for the run's common origin, and runs.
//! It talks to the rest only over channels and never blocks on them once running: intervals go
//! out with `try_send`, and a full channel merges the interval into the next one (no data lost).
//!
//! This module is the loop (spawn, open, pace, housekeep, ship); what connections may see of a
//! shard is `state`, and when scenarios stop and requests time out is `watchdog`'s call.

pub(crate) mod conn;
pub mod dispatch;
pub(crate) mod state;
mod watchdog;

use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::metrics::stats::{ShardEvent, ShardFinal, ShardInterval, StatsSet};
use crate::net::tls::Stream;
use crate::plan::{DriverChoice, LoadModel, ShardPlan};
use crate::schedule::Schedule;
use crate::shard::dispatch::Offer;
use crate::shard::state::{ShardShared, ShardState};
use crate::shard::watchdog::Watchdog;

/// Housekeeping period: request-timeout resolution, control polling, interval shipping.
const HOUSEKEEPING: Duration = Duration::from_millis(10);
/// The pacer's tick.
const PACER_TICK: Duration = Duration::from_millis(1);
/// Arrivals due within this much of now are released on the current tick. monoio's timer has
/// 1 ms resolution, so releasing slightly early (latency then counts from the actual send)
/// beats releasing up to a tick late on every request.
const RELEASE_AHEAD_NS: u64 = 2_000_000;
const SECOND_NS: u64 = 1_000_000_000;

/// Messages from the run to a shard.
#[derive(Debug)]
pub enum Control {
    /// Start the schedule at this common origin.
    Start(Instant),
    /// Graceful stop: no new requests; in-flight ones complete (bounded by the timeout).
    Stop,
}

/// The channels a shard is wired with.
pub struct ShardLinks {
    pub events: Sender<ShardEvent>,
    /// The shard index, once its connections are open (or it failed to start).
    pub ready: Sender<usize>,
    pub control: Receiver<Control>,
    /// Emptied stats buckets coming back from the collector for reuse.
    pub recycle: Receiver<Box<StatsSet>>,
}

/// Starts a shard's thread. A panic in it is contained: the collector is told (a final
/// report naming the panic, and ready in case it was not sent yet), so the run goes on with
/// the other shards and ends with a warning instead of waiting for this one forever.
pub fn spawn(plan: ShardPlan, links: ShardLinks) -> std::io::Result<JoinHandle<()>> {
    let index = plan.index;
    let events = links.events.clone();
    let ready = links.ready.clone();
    std::thread::Builder::new()
        .name(format!("loadd-shard-{index}"))
        .spawn(move || {
            if let Err(why) = crate::panics::contain(|| run_thread(plan, links)) {
                let _ = events.send(ShardEvent::Final(ShardFinal {
                    panic: Some(why),
                    ..ShardFinal::empty(index)
                }));
                // The collector counts each shard's ready once, so a second one is harmless.
                let _ = ready.send(index);
            }
        })
}

fn run_thread(plan: ShardPlan, links: ShardLinks) {
    // Pin before building anything, so the runtime's memory is first touched on its CPU.
    let cpu = plan
        .cpu
        .filter(|&id| core_affinity::set_for_current(core_affinity::CoreId { id }));
    let entries = ring_entries(plan.connections());
    let index = plan.index;
    let events = links.events.clone();
    let mut failure = String::new();

    if plan.driver != DriverChoice::Legacy {
        let mut tuned = io_uring::IoUring::builder();
        tuned
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(entries * 4);
        let built = RuntimeBuilder::<TimeDriver<IoUringDriver>>::new()
            .with_entries(entries)
            .uring_builder(tuned)
            .build()
            .map(|rt| (rt, "io_uring"))
            .or_else(|e| {
                failure = format!("io_uring with DEFER_TASKRUN: {e}");
                RuntimeBuilder::<TimeDriver<IoUringDriver>>::new()
                    .with_entries(entries)
                    .build()
                    .map(|rt| (rt, "io_uring (default flags)"))
            });
        match built {
            Ok((mut rt, driver)) => {
                rt.block_on(shard_main(plan, links, driver, cpu));
                return;
            }
            Err(e) => {
                failure = format!("{failure}; io_uring: {e}");
                if plan.driver == DriverChoice::Uring {
                    send_failure(&events, index, cpu, failure);
                    let _ = links.ready.send(index);
                    return;
                }
            }
        }
    }
    match RuntimeBuilder::<TimeDriver<LegacyDriver>>::new()
        .with_entries(entries)
        .build()
    {
        Ok(mut rt) => rt.block_on(shard_main(plan, links, "legacy", cpu)),
        Err(e) => {
            send_failure(&events, index, cpu, format!("{failure}; epoll: {e}"));
            let _ = links.ready.send(index);
        }
    }
}

fn send_failure(events: &Sender<ShardEvent>, shard: usize, cpu: Option<usize>, why: String) {
    let _ = events.send(ShardEvent::Final(ShardFinal {
        cpu,
        failure: Some(why.trim_start_matches("; ").to_string()),
        ..ShardFinal::empty(shard)
    }));
}

/// Submission-queue size: room for a read and a write per connection, plus slack.
fn ring_entries(connections: u32) -> u32 {
    (connections.saturating_mul(2) + 64)
        .next_power_of_two()
        .clamp(256, 32_768)
}

async fn shard_main(
    mut plan: ShardPlan,
    links: ShardLinks,
    driver: &'static str,
    cpu: Option<usize>,
) {
    let groups = std::mem::take(&mut plan.groups);
    // The plan already built this config once, so it cannot fail here for a reason of its own.
    let tls = plan.tls.as_ref().and_then(|t| {
        crate::net::tls::client_config(&t.options)
            .ok()
            .map(|cfg| (cfg, t.server_name.clone()))
    });
    let shared = Rc::new(ShardShared::new(plan, tls));
    let states: Vec<Rc<ShardState>> = groups
        .into_iter()
        .map(|group| Rc::new(ShardState::new(&shared, group)))
        .collect();
    let streams = open_up_front(&states).await;
    #[cfg(feature = "fault-injection")]
    crate::faults::shard_before_ready(shared.plan.index);
    let _ = links.ready.send(shared.plan.index);
    // Nothing else runs on this thread yet, so blocking here is harmless.
    let origin = match links.control.recv() {
        Ok(Control::Start(origin)) => Some(origin),
        Ok(Control::Stop) | Err(_) => None,
    };
    let Some(origin) = origin else {
        finish(&shared, &states, &links, driver, cpu);
        return;
    };
    // Every shard measures from the same origin, and nothing is sent before it (a send
    // before the origin would be timestamped 0 and shorten its latency).
    shared.origin.set(origin);
    let until_origin = origin.saturating_duration_since(Instant::now());
    if !until_origin.is_zero() {
        monoio::time::sleep(until_origin).await;
    }

    let conns = start(&states, streams);
    let last_index = housekeep(&shared, &states, &links).await;
    for c in conns {
        c.await;
    }
    // The last, partial second is an interval too, so intervals add up to the totals.
    let rest = take_rest(&shared);
    if !rest.is_empty() {
        let _ = links.events.send(ShardEvent::Interval(ShardInterval {
            shard: shared.plan.index,
            index: last_index,
            stats: rest,
            active_connections: 0,
        }));
    }
    finish(&shared, &states, &links, driver, cpu);
}

/// Opens every HTTP connection before the origin (as wrk2 does), so setup cost is not lag.
/// A failed one is counted and left to its connection task to retry.
async fn open_up_front(states: &[Rc<ShardState>]) -> Vec<Vec<Option<Stream>>> {
    let mut streams = Vec::with_capacity(states.len());
    for state in states {
        // WebSocket users connect at their own time within the ramp; a journey of WebSocket
        // steps only has no use for an HTTP connection.
        let sockets_only = state.group.journey.steps.iter().all(|s| s.ws.is_some());
        if state.group.websocket.is_some() {
            streams.push(Vec::new());
            continue;
        }
        let n = h2_connections(state);
        if sockets_only {
            // Each user still runs, with a socket of its own opened by its steps.
            streams.push((0..n).map(|_| None).collect());
            continue;
        }
        let connecting: Vec<_> = (0..n)
            .map(|_| {
                let s = state.clone();
                monoio::spawn(async move { conn::socket::connect(&s).await })
            })
            .collect();
        let mut opened = Vec::with_capacity(n);
        for handle in connecting {
            match handle.await {
                Ok(stream) => opened.push(Some(stream)),
                Err(kind) => {
                    state.step(0).record_error(kind);
                    opened.push(None);
                }
            }
        }
        streams.push(opened);
    }
    streams
}

/// Sockets a scenario's HTTP users need: one each, or under HTTP/2 one per `streams` users.
fn h2_connections(state: &ShardState) -> usize {
    let users = state.group.connections as usize;
    match state.plan().h2_streams {
        Some(streams) => users.div_ceil(streams.max(1) as usize),
        None => users,
    }
}

/// Spawns every connection task, and the pacer of each open-model scenario.
fn start(
    states: &[Rc<ShardState>],
    streams: Vec<Vec<Option<Stream>>>,
) -> Vec<monoio::task::JoinHandle<()>> {
    let mut conns = Vec::new();
    for (state, opened) in states.iter().zip(streams) {
        if state.group.websocket.is_some() {
            for id in 0..state.group.connections as usize {
                conns.push(monoio::spawn(conn::ws::run(state.clone(), id)));
            }
        }
        match state.plan().h2_streams {
            // HTTP/2: `streams` users share each connection, one stream each at a time.
            Some(streams) if state.group.websocket.is_none() => {
                let streams = streams.max(1) as usize;
                let users = state.group.connections as usize;
                for (k, stream) in opened.into_iter().enumerate() {
                    let lanes = k * streams..((k + 1) * streams).min(users);
                    let h2 = conn::h2::H2Conn::new(lanes.len(), state.tls().is_some());
                    for (lane, id) in lanes.enumerate() {
                        let user =
                            conn::http1::run(state.clone(), id, None, Some((h2.clone(), lane)));
                        conns.push(monoio::spawn(user));
                    }
                    conns.push(monoio::spawn(conn::h2::drive(state.clone(), h2, stream)));
                }
            }
            _ => {
                for (id, stream) in opened.into_iter().enumerate() {
                    conns.push(monoio::spawn(conn::http1::run(
                        state.clone(),
                        id,
                        stream,
                        None,
                    )));
                }
            }
        }
        if let LoadModel::Open { schedule, .. } = &state.group.work {
            monoio::spawn(pace(state.clone(), schedule.clone()));
        }
    }
    conns
}

/// Releases due arrivals to the dispatcher on a shared tick.
async fn pace(state: Rc<ShardState>, schedule: Schedule) {
    let Some(dispatch) = &state.dispatch else {
        return;
    };
    // A scenario with `start_after`: nothing is due before its start (its clock reads 0).
    loop {
        let now = state.run_now_ns();
        if now >= state.start_ns || state.is_stopping() {
            break;
        }
        let wait = (state.start_ns - now).min(10_000_000);
        monoio::time::sleep(Duration::from_nanos(wait)).await;
    }
    let mut cursor = schedule.cursor(state.shard_index(), state.shard_count());
    'run: while !state.is_stopping() {
        let now = state.now_ns();
        let horizon = now + RELEASE_AHEAD_NS;
        let next = loop {
            match cursor.peek(&schedule) {
                Some(t) if t <= horizon => {
                    cursor.advance();
                    if dispatch.offer(t) == Offer::Dropped {
                        state.step(0).dropped += 1;
                    }
                }
                Some(t) => break t,
                None => break 'run,
            }
        };
        // Sleep until the next arrival enters the release window; at least one tick, and
        // never so long that a stop goes unnoticed.
        let wait_ns = (next - horizon).clamp(PACER_TICK.as_nanos() as u64, 10_000_000);
        monoio::time::sleep(Duration::from_nanos(wait_ns)).await;
    }
    dispatch.finish();
}

/// Watchdog, interval shipping, control and stop conditions, until every connection is done.
/// Returns the index of the interval in progress.
async fn housekeep(shared: &ShardShared, states: &[Rc<ShardState>], links: &ShardLinks) -> u64 {
    let mut watchdog = Watchdog::new(states);
    let mut recycled: Vec<Box<StatsSet>> = Vec::new();
    let mut next_index = 1u64;
    while states.iter().any(|s| s.live_conns.get() > 0) {
        monoio::time::sleep(HOUSEKEEPING).await;
        let run_now = shared.now_ns();
        while let Ok(msg) = links.control.try_recv() {
            if let Control::Stop = msg {
                watchdog.stop_all(states, run_now);
            }
        }
        watchdog.check(states, run_now);
        while let Ok(s) = links.recycle.try_recv() {
            recycled.push(s);
        }
        if run_now >= next_index * SECOND_NS {
            #[cfg(feature = "fault-injection")]
            crate::faults::shard_at_interval(shared.plan.index, next_index);
            ship_interval(shared, links, recycled.pop(), next_index);
            next_index += 1;
        }
    }
    next_index
}

/// Sends interval `index`'s stats without blocking, swapping in `recycled` (an emptied set
/// back from the collector) or a new empty one.
fn ship_interval(
    shared: &ShardShared,
    links: &ShardLinks,
    recycled: Option<Box<StatsSet>>,
    index: u64,
) {
    let fresh = recycled.unwrap_or_else(|| Box::new(shared.stats.borrow().empty_like()));
    let full = std::mem::replace(&mut *shared.stats.borrow_mut(), fresh);
    let msg = ShardEvent::Interval(ShardInterval {
        shard: shared.plan.index,
        index,
        stats: full,
        active_connections: shared.active.get(),
    });
    match links.events.try_send(msg) {
        Ok(()) => {}
        Err(TrySendError::Full(ShardEvent::Interval(back))) => {
            // Collector behind: fold this interval into the next (totals stay exact).
            shared.stats.borrow_mut().merge(&back.stats);
        }
        Err(_) => {}
    }
}

/// What the stats hold now, leaving them empty.
fn take_rest(shared: &ShardShared) -> Box<StatsSet> {
    let mut stats = shared.stats.borrow_mut();
    let empty = Box::new(stats.empty_like());
    std::mem::replace(&mut *stats, empty)
}

fn finish(
    shared: &ShardShared,
    states: &[Rc<ShardState>],
    links: &ShardLinks,
    driver: &'static str,
    cpu: Option<usize>,
) {
    let rest = take_rest(shared);
    // The final message must arrive: a blocking send, once, at the very end.
    let _ = links.events.send(ShardEvent::Final(ShardFinal {
        shard: shared.plan.index,
        rest,
        driver,
        cpu,
        failure: None,
        panic: None,
        feeder_exhausted: states.iter().any(|s| s.feeder_exhausted.get()),
    }));
}
