//! A shard: one pinned thread, one monoio runtime, its own connections, schedule and stats.
//!
//! The thread pins itself first, then builds its runtime (io_uring with SINGLE_ISSUER +
//! DEFER_TASKRUN, which only this thread ever touches; plain io_uring; then epoll), then its
//! state. It opens its connections, reports ready, waits for the run's common origin, and runs.
//! It talks to the rest only over channels and never blocks on them once running: intervals go
//! out with `try_send`, and a full channel merges the interval into the next one (no data lost).

pub(crate) mod conn;
pub mod dispatch;

use std::cell::{Cell, RefCell, RefMut};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::metrics::stats::{ShardEvent, ShardFinal, ShardInterval, Stats, StatsSet};
use crate::plan::journey::FeedMode;
use crate::plan::{DriverChoice, GroupPlan, LoadModel, ShardPlan};
use crate::schedule::Schedule;
use crate::shard::conn::http1::{self as http1, Slot};
use crate::shard::dispatch::{Dispatch, Offer, Permit};

/// Housekeeping period: request-timeout resolution, control polling, interval shipping.
const HOUSEKEEPING: Duration = Duration::from_millis(10);
/// The pacer's tick.
const PACER_TICK: Duration = Duration::from_millis(1);
/// Arrivals due within this much of now are released on the current tick. monoio's timer has
/// 1 ms resolution, so releasing slightly early (latency then counts from the actual send)
/// beats releasing up to a tick late on every request.
const RELEASE_AHEAD_NS: u64 = 2_000_000;
const SECOND_NS: u64 = 1_000_000_000;
/// How often an inactive ramping user checks whether it is wanted.
const VU_RECHECK: Duration = Duration::from_millis(50);

/// Messages from the run to a shard.
#[derive(Debug)]
pub enum Control {
    /// Start the schedule at this common origin.
    Start(Instant),
    /// Graceful stop: no new requests; in-flight ones complete (bounded by the timeout).
    Stop,
}

/// What every scenario group of a shard shares (single-threaded: `Rc`, `Cell`, `RefCell`).
pub(crate) struct ShardShared {
    pub plan: ShardPlan,
    /// The run's common origin; set when the run starts.
    origin: Cell<Instant>,
    /// Every scenario's steps: a group records into its own range.
    pub stats: RefCell<Box<StatsSet>>,
    pub active: Cell<u32>,
    /// Read buffers of connections not waiting for a response: an idle keep-alive connection
    /// holds none, so memory follows requests in flight, not connections open.
    pub read_buffers: RefCell<Vec<Vec<u8>>>,
    /// Connects started, for source-address rotation.
    pub connects: Cell<usize>,
    /// `https://`: this shard's own client config (and session store) and the server name.
    pub tls: Option<(
        std::sync::Arc<crate::net::tls::ClientConfig>,
        crate::net::tls::ServerName<'static>,
    )>,
}

impl ShardShared {
    /// A read buffer of `size` bytes' capacity: a pooled one, or a new one while the pool is
    /// warming up.
    pub fn take_read_buffer(&self, size: usize) -> Vec<u8> {
        self.read_buffers
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(size))
    }

    /// Back to the pool, if it is empty and of the pooled size (a buffer grown for a large head
    /// is freed; one holding unread bytes stays with its connection).
    pub fn give_read_buffer(&self, buf: &mut Vec<u8>, size: usize) {
        if buf.is_empty() && buf.capacity() == size {
            self.read_buffers.borrow_mut().push(std::mem::take(buf));
        } else if buf.is_empty() && buf.capacity() > size {
            *buf = Vec::new();
        }
    }

    /// Nanoseconds since the run's origin (0 before it).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.origin.get())
            .as_nanos() as u64
    }
}

/// One scenario's share on this shard: its connections, schedule and stop state.
pub(crate) struct ShardState {
    pub shared: Rc<ShardShared>,
    pub group: GroupPlan,
    /// The scenario's start, in ns from the run's origin: its clock's zero.
    start_ns: u64,
    pub timeout_ns: u64,
    pub slots: Vec<Slot>,
    dispatch: Option<Dispatch>,
    /// Closed model: iterations left to start (u64::MAX when bounded by time only).
    budget: Cell<u64>,
    /// Closed model with iterations per user: iterations each connection's user started.
    vu_started: Vec<Cell<u64>>,
    stopping: Cell<bool>,
    /// The graceful stop ran out: iterations still running are cut short.
    interrupted: Cell<bool>,
    /// Next row of each feeder for this shard.
    feed_next: Vec<Cell<usize>>,
    /// A `unique` feeder ran out of rows here (the run stops).
    pub feeder_exhausted: Cell<bool>,
    live_conns: Cell<usize>,
}

impl ShardState {
    /// Nanoseconds since this scenario started (0 before it).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.shared.now_ns().saturating_sub(self.start_ns)
    }

    #[inline]
    pub fn shard_index(&self) -> usize {
        self.shared.plan.index
    }

    #[inline]
    pub fn shard_count(&self) -> usize {
        self.shared.plan.shards
    }

    /// The stats bucket of this scenario's step `i`.
    #[inline]
    pub fn step(&self, i: usize) -> RefMut<'_, Stats> {
        let at = self.group.step_base + i;
        RefMut::map(self.shared.stats.borrow_mut(), |s| {
            let last = s.steps.len() - 1;
            &mut s.steps[at.min(last)]
        })
    }

    pub fn record_iteration(&self, start_ns: u64, done_ns: u64, failed: bool) {
        self.shared.stats.borrow_mut().record_iteration(
            self.group.scenario,
            start_ns,
            done_ns,
            failed,
        );
    }

    pub fn record_interrupted(&self) {
        if let Some(j) = self
            .shared
            .stats
            .borrow_mut()
            .journeys
            .get_mut(self.group.scenario)
        {
            j.interrupted += 1;
        }
    }

    /// No new work may start (the scenario's load ended, or the run is stopping).
    #[inline]
    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Running iterations are being cut short: what fails now is not the target's doing.
    #[inline]
    pub fn interrupted(&self) -> bool {
        self.interrupted.get()
    }

    pub fn conn_opened(&self) {
        self.shared.active.set(self.shared.active.get() + 1);
    }

    pub fn conn_closed(&self) {
        self.shared
            .active
            .set(self.shared.active.get().saturating_sub(1));
    }

    /// The next thing connection `id` should do.
    pub async fn permit(&self, id: usize) -> Permit {
        // A scenario with `start_after` waits for its start (others read no clock here).
        while self.start_ns > 0 && !self.stopping.get() {
            let now = self.shared.now_ns();
            if now >= self.start_ns {
                break;
            }
            let wait = (self.start_ns - now).min(VU_RECHECK.as_nanos() as u64);
            monoio::time::sleep(Duration::from_nanos(wait)).await;
        }
        if let Some(d) = &self.dispatch {
            return d.next(id).await;
        }
        if let LoadModel::Closed { vus: Some(vus), .. } = &self.group.work {
            // Ramping users: this one runs while its number is below the current target.
            let number = (id * self.shard_count() + self.shard_index()) as f64;
            while number >= vus.value_at(self.now_ns()).floor() {
                if self.stopping.get() {
                    return Permit::Stop;
                }
                monoio::time::sleep(VU_RECHECK).await;
            }
        }
        if self.stopping.get() {
            return Permit::Stop;
        }
        if let LoadModel::Closed {
            per_vu: Some(limit),
            ..
        } = &self.group.work
        {
            let Some(started) = self.vu_started.get(id) else {
                return Permit::Stop;
            };
            if started.get() >= *limit {
                return Permit::Stop;
            }
            started.set(started.get() + 1);
        }
        match self.budget.get() {
            0 => Permit::Stop,
            u64::MAX => Permit::Go(None),
            n => {
                self.budget.set(n - 1);
                Permit::Go(None)
            }
        }
    }

    /// The row of feeder `f` the next iteration uses; `None` when a unique feeder ran out.
    pub fn next_row(&self, f: usize, rng: &mut fastrand::Rng) -> Option<usize> {
        let feeder = self.group.journey.feeders.get(f)?;
        let len = feeder.rows.len();
        let cursor = self.feed_next.get(f)?;
        let row = cursor.get();
        let shards = self.shard_count();
        match feeder.mode {
            FeedMode::Random => Some(rng.usize(..len)),
            FeedMode::Sequential => {
                cursor.set((row + shards) % len);
                Some(row % len)
            }
            FeedMode::Unique if row < len => {
                cursor.set(row + shards);
                Some(row)
            }
            FeedMode::Unique => {
                if !self.feeder_exhausted.replace(true) {
                    stop(self);
                }
                None
            }
        }
    }

    pub fn conn_finished(&self) {
        self.live_conns.set(self.live_conns.get().saturating_sub(1));
    }
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

/// Starts a shard's thread.
pub fn spawn(plan: ShardPlan, links: ShardLinks) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("loadd-shard-{}", plan.index))
        .spawn(move || run_thread(plan, links))
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
        shard,
        rest: Box::new(StatsSet::new(1, 1)),
        driver: "none",
        cpu,
        failure: Some(why.trim_start_matches("; ").to_string()),
        feeder_exhausted: false,
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
    let shared = Rc::new(ShardShared {
        tls,
        origin: Cell::new(Instant::now()),
        stats: RefCell::new(Box::new(StatsSet::new(plan.steps, plan.scenarios))),
        active: Cell::new(0),
        read_buffers: RefCell::new(Vec::new()),
        connects: Cell::new(0),
        plan,
    });
    let states: Vec<Rc<ShardState>> = groups
        .into_iter()
        .map(|group| Rc::new(group_state(&shared, group)))
        .collect();

    // Open every connection before the origin (as wrk2 does), so setup cost is not lag.
    let mut streams: Vec<Vec<_>> = Vec::with_capacity(states.len());
    for state in &states {
        // WebSocket users connect at their own time within the ramp.
        let n = if state.group.websocket.is_some() {
            0
        } else {
            state.group.connections as usize
        };
        let connecting: Vec<_> = (0..n)
            .map(|_| {
                let s = state.clone();
                monoio::spawn(async move { http1::connect(&s).await })
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

    let mut conns = Vec::new();
    for (state, opened) in states.iter().zip(streams) {
        if state.group.websocket.is_some() {
            for id in 0..state.group.connections as usize {
                conns.push(monoio::spawn(conn::ws::run(state.clone(), id)));
            }
        }
        for (id, stream) in opened.into_iter().enumerate() {
            conns.push(monoio::spawn(http1::run(state.clone(), id, stream)));
        }
        if let LoadModel::Open { schedule, .. } = &state.group.work {
            monoio::spawn(pace(state.clone(), schedule.clone()));
        }
    }
    let last_index = housekeep(&shared, &states, &links).await;
    for c in conns {
        c.await;
    }
    // The last, partial second is an interval too, so intervals add up to the totals.
    let rest = {
        let mut stats = shared.stats.borrow_mut();
        let empty = Box::new(stats.empty_like());
        std::mem::replace(&mut *stats, empty)
    };
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

fn group_state(shared: &Rc<ShardShared>, group: GroupPlan) -> ShardState {
    let n = group.connections as usize;
    let (dispatch, budget) = match &group.work {
        LoadModel::Closed { requests, .. } => (None, requests.unwrap_or(u64::MAX)),
        LoadModel::Open { max_queue, .. } => (Some(Dispatch::new(n, *max_queue)), u64::MAX),
    };
    let per_vu = matches!(
        group.work,
        LoadModel::Closed {
            per_vu: Some(_),
            ..
        }
    );
    ShardState {
        shared: shared.clone(),
        start_ns: group.start_after.as_nanos() as u64,
        timeout_ns: shared.plan.timeout.as_nanos() as u64,
        slots: (0..n).map(|_| Slot::default()).collect(),
        dispatch,
        budget: Cell::new(budget),
        vu_started: (0..if per_vu { n } else { 0 })
            .map(|_| Cell::new(0))
            .collect(),
        stopping: Cell::new(false),
        interrupted: Cell::new(false),
        feed_next: group
            .journey
            .feeders
            .iter()
            .map(|_| Cell::new(shared.plan.index))
            .collect(),
        feeder_exhausted: Cell::new(false),
        live_conns: Cell::new(n),
        group,
    }
}

/// Releases due arrivals to the dispatcher on a shared tick.
async fn pace(state: Rc<ShardState>, schedule: Schedule) {
    let Some(dispatch) = &state.dispatch else {
        return;
    };
    // A scenario with `start_after`: nothing is due before its start (its clock reads 0).
    loop {
        let now = state.shared.now_ns();
        if now >= state.start_ns || state.stopping.get() {
            break;
        }
        let wait = (state.start_ns - now).min(10_000_000);
        monoio::time::sleep(Duration::from_nanos(wait)).await;
    }
    let mut cursor = schedule.cursor(state.shard_index(), state.shard_count());
    'run: while !state.stopping.get() {
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

/// When a group's load ends (its clock), and when its graceful stop runs out.
fn group_ends(state: &ShardState) -> (Option<u64>, Option<u64>) {
    let end = match &state.group.work {
        LoadModel::Closed { duration, .. } => duration.map(|d| d.as_nanos() as u64),
        LoadModel::Open { schedule, .. } => Some(schedule.end_ns()),
    };
    let grace = state.group.graceful_stop.as_nanos() as u64;
    (end, end.map(|e| e + grace))
}

/// Watchdog, interval shipping, control and stop conditions, until every connection is done.
/// Returns the index of the interval in progress.
async fn housekeep(shared: &ShardShared, states: &[Rc<ShardState>], links: &ShardLinks) -> u64 {
    let ends: Vec<_> = states.iter().map(|s| group_ends(s)).collect();
    // A stop from outside: when it came (run clock), so the graceful stop counts from it.
    let mut stopped_at: Option<u64> = None;
    let mut recycled: Vec<Box<StatsSet>> = Vec::new();
    let mut next_index = 1u64;
    while states.iter().any(|s| s.live_conns.get() > 0) {
        monoio::time::sleep(HOUSEKEEPING).await;
        let run_now = shared.now_ns();
        while let Ok(msg) = links.control.try_recv() {
            if let Control::Stop = msg {
                stopped_at.get_or_insert(run_now);
                states.iter().for_each(|s| stop(s));
            }
        }
        for (state, (end, grace_end)) in states.iter().zip(&ends) {
            let now = state.now_ns();
            // A closed model stops at its duration. An open one's pacer ends the load itself;
            // arrivals still queued for a connection may go out for one request timeout (they
            // were due within the load), then are dropped and counted — a stalled target does
            // not keep the run going for the whole graceful stop.
            let queue_drain_ns = if state.dispatch.is_some() {
                state
                    .timeout_ns
                    .min(state.group.graceful_stop.as_nanos() as u64)
            } else {
                0
            };
            if end.is_some_and(|t| now >= t + queue_drain_ns) {
                stop(state);
            }
            let external =
                stopped_at.map(|t| run_now >= t + state.group.graceful_stop.as_nanos() as u64);
            if grace_end.is_some_and(|t| now >= t) || external == Some(true) {
                interrupt(state);
            }
            let watchdog_now = if state.interrupted() { u64::MAX } else { now };
            for slot in &state.slots {
                slot.check(watchdog_now);
            }
        }
        while let Ok(s) = links.recycle.try_recv() {
            recycled.push(s);
        }
        if run_now >= next_index * SECOND_NS {
            let fresh = recycled
                .pop()
                .unwrap_or_else(|| Box::new(shared.stats.borrow().empty_like()));
            let full = std::mem::replace(&mut *shared.stats.borrow_mut(), fresh);
            let msg = ShardEvent::Interval(ShardInterval {
                shard: shared.plan.index,
                index: next_index,
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
            next_index += 1;
        }
    }
    next_index
}

/// The graceful stop ran out: no new work, and running iterations are cut short (their
/// in-flight requests are cancelled by the watchdog and not counted as errors).
fn interrupt(state: &ShardState) {
    stop(state);
    state.interrupted.set(true);
}

/// Graceful stop: no new requests; queued open-model arrivals are dropped and counted.
fn stop(state: &ShardState) {
    if state.stopping.replace(true) {
        return;
    }
    if let Some(d) = &state.dispatch {
        let dropped = d.clear_queue();
        state.step(0).dropped += dropped;
        d.finish();
    }
}

fn finish(
    shared: &ShardShared,
    states: &[Rc<ShardState>],
    links: &ShardLinks,
    driver: &'static str,
    cpu: Option<usize>,
) {
    let rest = {
        let mut stats = shared.stats.borrow_mut();
        let empty = Box::new(stats.empty_like());
        std::mem::replace(&mut *stats, empty)
    };
    // The final message must arrive: a blocking send, once, at the very end.
    let _ = links.events.send(ShardEvent::Final(ShardFinal {
        shard: shared.plan.index,
        rest,
        driver,
        cpu,
        failure: None,
        feeder_exhausted: states.iter().any(|s| s.feeder_exhausted.get()),
    }));
}
