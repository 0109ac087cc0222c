//! A shard: one pinned thread, one monoio runtime, its own connections, schedule and stats.
//!
//! The thread pins itself first, then builds its runtime (io_uring with SINGLE_ISSUER +
//! DEFER_TASKRUN, which only this thread ever touches; plain io_uring; then epoll), then its
//! state. It opens its connections, reports ready, waits for the run's common origin, and runs.
//! It talks to the rest only over channels and never blocks on them once running: intervals go
//! out with `try_send`, and a full channel merges the interval into the next one (no data lost).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use monoio::time::TimeDriver;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::conn::{self, Slot};
use crate::dispatch::{Dispatch, Offer, Permit};
use crate::journey::FeedMode;
use crate::plan::{DriverChoice, LoadModel, ShardPlan};
use crate::schedule::Schedule;
use crate::stats::{ShardEvent, ShardFinal, ShardInterval, StatsSet};

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

/// State shared by one shard's tasks (single-threaded: `Rc`, `Cell`, `RefCell`).
pub(crate) struct ShardState {
    pub plan: ShardPlan,
    /// The run's common origin; set when the run starts.
    origin: Cell<Instant>,
    pub timeout_ns: u64,
    pub stats: RefCell<Box<StatsSet>>,
    pub slots: Vec<Slot>,
    pub active: Cell<u32>,
    dispatch: Option<Dispatch>,
    /// Closed model: requests left to start (u64::MAX when bounded by time only).
    budget: Cell<u64>,
    stopping: Cell<bool>,
    /// Next row of each feeder for this shard.
    feed_next: Vec<Cell<usize>>,
    /// A `unique` feeder ran out of rows here (the run stops).
    pub feeder_exhausted: Cell<bool>,
    live_conns: Cell<usize>,
}

impl ShardState {
    /// Nanoseconds since the run's origin (0 before it).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.origin.get())
            .as_nanos() as u64
    }

    /// The next thing connection `id` should do.
    pub async fn permit(&self, id: usize) -> Permit {
        if let Some(d) = &self.dispatch {
            return d.next(id).await;
        }
        if let LoadModel::Closed { vus: Some(vus), .. } = &self.plan.work {
            // Ramping users: this one runs while its number is below the current target.
            let number = (id * self.plan.shards + self.plan.index) as f64;
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
        let feeder = self.plan.journey.feeders.get(f)?;
        let len = feeder.rows.len();
        let cursor = self.feed_next.get(f)?;
        let row = cursor.get();
        match feeder.mode {
            FeedMode::Random => Some(rng.usize(..len)),
            FeedMode::Sequential => {
                cursor.set((row + self.plan.shards) % len);
                Some(row % len)
            }
            FeedMode::Unique if row < len => {
                cursor.set(row + self.plan.shards);
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
    let entries = ring_entries(plan.connections);
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
        rest: Box::new(StatsSet::new(1)),
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

async fn shard_main(plan: ShardPlan, links: ShardLinks, driver: &'static str, cpu: Option<usize>) {
    let n = plan.connections as usize;
    let (dispatch, budget, schedule) = match &plan.work {
        LoadModel::Closed { requests, .. } => (None, requests.unwrap_or(u64::MAX), None),
        LoadModel::Open {
            schedule,
            max_queue,
        } => (
            Some(Dispatch::new(n, *max_queue)),
            u64::MAX,
            Some(schedule.clone()),
        ),
    };
    let state = Rc::new(ShardState {
        timeout_ns: plan.timeout.as_nanos() as u64,
        origin: Cell::new(Instant::now()),
        stats: RefCell::new(Box::new(StatsSet::new(plan.journey.steps.len()))),
        slots: (0..n).map(|_| Slot::default()).collect(),
        active: Cell::new(0),
        dispatch,
        budget: Cell::new(budget),
        stopping: Cell::new(false),
        feed_next: plan
            .journey
            .feeders
            .iter()
            .map(|_| Cell::new(plan.index))
            .collect(),
        feeder_exhausted: Cell::new(false),
        live_conns: Cell::new(n),
        plan,
    });

    // Open every connection before the origin (as wrk2 does), so setup cost is not lag.
    let connecting: Vec<_> = (0..n)
        .map(|_| {
            let s = state.clone();
            monoio::spawn(async move { conn::connect(&s).await })
        })
        .collect();
    let mut streams = Vec::with_capacity(n);
    for handle in connecting {
        match handle.await {
            Ok(stream) => streams.push(Some(stream)),
            Err(kind) => {
                state.stats.borrow_mut().steps[0].record_error(kind);
                streams.push(None);
            }
        }
    }
    let _ = links.ready.send(state.plan.index);
    // Nothing else runs on this thread yet, so blocking here is harmless.
    let origin = match links.control.recv() {
        Ok(Control::Start(origin)) => Some(origin),
        Ok(Control::Stop) | Err(_) => None,
    };
    let Some(origin) = origin else {
        finish(&state, &links, driver, cpu);
        return;
    };
    // Every shard measures from the same origin, and nothing is sent before it (a send
    // before the origin would be timestamped 0 and shorten its latency).
    state.origin.set(origin);
    let until_origin = origin.saturating_duration_since(Instant::now());
    if !until_origin.is_zero() {
        monoio::time::sleep(until_origin).await;
    }

    let conns: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(id, stream)| monoio::spawn(conn::run(state.clone(), id, stream)))
        .collect();
    if let Some(schedule) = schedule {
        monoio::spawn(pace(state.clone(), schedule));
    }
    let last_index = housekeep(&state, &links).await;
    for c in conns {
        c.await;
    }
    // The last, partial second is an interval too, so intervals add up to the totals.
    let steps = state.stats.borrow().steps.len();
    let rest = std::mem::replace(
        &mut *state.stats.borrow_mut(),
        Box::new(StatsSet::new(steps)),
    );
    if !rest.is_empty() {
        let _ = links.events.send(ShardEvent::Interval(ShardInterval {
            shard: state.plan.index,
            index: last_index,
            stats: rest,
            active_connections: 0,
        }));
    }
    finish(&state, &links, driver, cpu);
}

/// Releases due arrivals to the dispatcher on a shared tick.
async fn pace(state: Rc<ShardState>, schedule: Schedule) {
    let Some(dispatch) = &state.dispatch else {
        return;
    };
    let mut cursor = schedule.cursor(state.plan.index, state.plan.shards);
    'run: while !state.stopping.get() {
        let now = state.now_ns();
        let horizon = now + RELEASE_AHEAD_NS;
        let next = loop {
            match cursor.peek(&schedule) {
                Some(t) if t <= horizon => {
                    cursor.advance();
                    if dispatch.offer(t) == Offer::Dropped {
                        state.stats.borrow_mut().steps[0].dropped += 1;
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
async fn housekeep(state: &Rc<ShardState>, links: &ShardLinks) -> u64 {
    let stop_at_ns = match &state.plan.work {
        LoadModel::Closed { duration, .. } => duration.map(|d| d.as_nanos() as u64),
        LoadModel::Open { .. } => None,
    };
    // Open model: queued arrivals may drain for one timeout after the schedule ends.
    let drain_until_ns = match &state.plan.work {
        LoadModel::Open { schedule, .. } => Some(schedule.end_ns() + state.timeout_ns),
        LoadModel::Closed { .. } => None,
    };
    let mut recycled: Vec<Box<StatsSet>> = Vec::new();
    let mut next_index = 1u64;
    while state.live_conns.get() > 0 {
        monoio::time::sleep(HOUSEKEEPING).await;
        let now = state.now_ns();
        for slot in &state.slots {
            slot.check(now);
        }
        while let Ok(msg) = links.control.try_recv() {
            if let Control::Stop = msg {
                stop(state);
            }
        }
        if stop_at_ns.is_some_and(|t| now >= t) {
            stop(state);
        }
        if drain_until_ns.is_some_and(|t| now >= t) {
            stop(state);
        }
        while let Ok(s) = links.recycle.try_recv() {
            recycled.push(s);
        }
        if now >= next_index * SECOND_NS {
            let fresh = recycled
                .pop()
                .unwrap_or_else(|| Box::new(StatsSet::new(state.stats.borrow().steps.len())));
            let full = std::mem::replace(&mut *state.stats.borrow_mut(), fresh);
            let msg = ShardEvent::Interval(ShardInterval {
                shard: state.plan.index,
                index: next_index,
                stats: full,
                active_connections: state.active.get(),
            });
            match links.events.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(ShardEvent::Interval(back))) => {
                    // Collector behind: fold this interval into the next (totals stay exact).
                    state.stats.borrow_mut().merge(&back.stats);
                }
                Err(_) => {}
            }
            next_index += 1;
        }
    }
    next_index
}

/// Graceful stop: no new requests; queued open-model arrivals are dropped and counted.
fn stop(state: &ShardState) {
    if state.stopping.replace(true) {
        return;
    }
    if let Some(d) = &state.dispatch {
        let dropped = d.clear_queue();
        state.stats.borrow_mut().steps[0].dropped += dropped;
        d.finish();
    }
}

fn finish(state: &ShardState, links: &ShardLinks, driver: &'static str, cpu: Option<usize>) {
    let steps = state.stats.borrow().steps.len();
    let rest = std::mem::replace(
        &mut *state.stats.borrow_mut(),
        Box::new(StatsSet::new(steps)),
    );
    // The final message must arrive: a blocking send, once, at the very end.
    let _ = links.events.send(ShardEvent::Final(ShardFinal {
        shard: state.plan.index,
        rest,
        driver,
        cpu,
        failure: None,
        feeder_exhausted: state.feeder_exhausted.get(),
    }));
}
