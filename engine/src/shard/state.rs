//! What a connection task may see of its shard: `ShardState`, one scenario's share (its plan,
//! clock, permits, feeder rows, deadline slots and stats), over the `ShardShared` all of a shard's
//! scenarios have in common (origin, stats buckets, read-buffer pool, TLS config).
//!
//! Connection code (`shard::conn`) imports this module and nothing else of the shard: it asks
//! for permits, reads the clock, records into its step and reports its connection's lifecycle.
//! The state does not run anything itself: the shard loop (`shard::mod`) builds it, paces it and
//! ships its stats, and the watchdog (`shard::watchdog`) stops and interrupts it.

use std::cell::{Cell, RefCell, RefMut};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::metrics::stats::{Stats, StatsSet};
use crate::net::tls::{ClientConfig, ServerName};
use crate::plan::journey::FeedMode;
use crate::plan::{GroupPlan, LoadModel, ShardPlan};
use crate::shard::conn::deadline::Slot;
use crate::shard::dispatch::Dispatch;

pub(crate) use crate::shard::dispatch::Permit;

/// How often an inactive ramping user checks whether it is wanted.
const VU_RECHECK: Duration = Duration::from_millis(50);

/// `ShardState::until_stopping`: keeps the latest waker in the user's slot (no allocation
/// once the slots exist).
pub(crate) struct UntilStopping<'a> {
    shard: &'a ShardState,
    id: usize,
}

impl Future for UntilStopping<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shard.stopping.get() {
            return Poll::Ready(());
        }
        if let Some(slot) = self.shard.stop_wakers.borrow_mut().get_mut(self.id) {
            match slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }
}

/// What every scenario group of a shard shares (single-threaded: `Rc`, `Cell`, `RefCell`).
pub(crate) struct ShardShared {
    pub plan: ShardPlan,
    /// The run's common origin; set when the run starts.
    pub(super) origin: Cell<Instant>,
    /// Every scenario's steps: a group records into its own range.
    pub(super) stats: RefCell<Box<StatsSet>>,
    pub(super) active: Cell<u32>,
    /// Read buffers of connections not waiting for a response: an idle keep-alive connection
    /// holds none, so memory follows requests in flight, not connections open.
    read_buffers: RefCell<Vec<Vec<u8>>>,
    /// Compressed bodies are decoded here, one at a time (decoding never awaits), so memory
    /// for decoded bodies is one buffer per shard, not one per connection.
    decoded: RefCell<Vec<u8>>,
    /// Connects started, for source-address rotation.
    connects: Cell<usize>,
    /// `https://`: this shard's own client config (and session store) and the server name.
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl ShardShared {
    pub(super) fn new(
        plan: ShardPlan,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    ) -> Self {
        ShardShared {
            tls,
            origin: Cell::new(Instant::now()),
            stats: RefCell::new(Box::new(StatsSet::new(plan.steps, plan.scenarios))),
            active: Cell::new(0),
            read_buffers: RefCell::new(Vec::new()),
            decoded: RefCell::new(Vec::new()),
            connects: Cell::new(0),
            plan,
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
    shared: Rc<ShardShared>,
    pub group: GroupPlan,
    /// The scenario's start, in ns from the run's origin: its clock's zero.
    pub(super) start_ns: u64,
    pub timeout_ns: u64,
    slots: Vec<Slot>,
    pub(super) dispatch: Option<Dispatch>,
    /// Closed model: iterations left to start (u64::MAX when bounded by time only).
    budget: Cell<u64>,
    /// Closed model with iterations per user: iterations each connection's user started.
    vu_started: Vec<Cell<u64>>,
    stopping: Cell<bool>,
    /// When `stop` came (scenario clock, ns).
    stopped_at: Cell<u64>,
    /// Users waiting for the load to stop (a `ws_listen`), by user id: woken by `stop`.
    stop_wakers: RefCell<Vec<Option<Waker>>>,
    /// The graceful stop ran out: iterations still running are cut short.
    interrupted: Cell<bool>,
    /// Next row of each feeder for this shard.
    feed_next: Vec<Cell<usize>>,
    /// A `unique` feeder ran out of rows here (the run stops).
    pub(super) feeder_exhausted: Cell<bool>,
    pub(super) live_conns: Cell<usize>,
}

impl ShardState {
    pub(super) fn new(shared: &Rc<ShardShared>, group: GroupPlan) -> Self {
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
            stopped_at: Cell::new(0),
            stop_wakers: RefCell::new(vec![None; n]),
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

    /// Nanoseconds since this scenario started (0 before it).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.shared.now_ns().saturating_sub(self.start_ns)
    }

    /// Nanoseconds since the run's origin (0 before it).
    #[inline]
    pub fn run_now_ns(&self) -> u64 {
        self.shared.now_ns()
    }

    /// The run-wide number (from 1) of this shard's connection or user `id`: shard i of n
    /// numbers its users i+1, i+1+n, … so numbers are unique across shards.
    #[inline]
    pub fn vu(&self, id: usize) -> u64 {
        (id * self.shard_count() + self.shard_index() + 1) as u64
    }

    #[inline]
    pub fn shard_index(&self) -> usize {
        self.shared.plan.index
    }

    #[inline]
    pub fn shard_count(&self) -> usize {
        self.shared.plan.shards
    }

    /// This shard's plan: target address, local addresses, connect timeout.
    #[inline]
    pub fn plan(&self) -> &ShardPlan {
        &self.shared.plan
    }

    /// `https://`: the client config and the server name.
    #[inline]
    pub fn tls(&self) -> Option<&(Arc<ClientConfig>, ServerName<'static>)> {
        self.shared.tls.as_ref()
    }

    /// Counts a connect started and returns how many came before (source-address rotation).
    #[inline]
    pub fn next_connect(&self) -> usize {
        let n = self.shared.connects.get();
        self.shared.connects.set(n.wrapping_add(1));
        n
    }

    /// The watchdog's deadline slot of connection `id`.
    #[inline]
    pub fn slot(&self, id: usize) -> &Slot {
        &self.slots[id]
    }

    pub(super) fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The stats of every scenario of the shard (handshakes, WebSocket counters).
    #[inline]
    pub fn stats(&self) -> RefMut<'_, StatsSet> {
        RefMut::map(self.shared.stats.borrow_mut(), |s| &mut **s)
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

    /// A read buffer of `size` bytes' capacity: a pooled one, or a new one while the pool is
    /// warming up.
    pub fn take_read_buffer(&self, size: usize) -> Vec<u8> {
        self.shared
            .read_buffers
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(size))
    }

    /// Back to the pool, if it is empty and of the pooled size (a buffer grown for a large head
    /// is freed; one holding unread bytes stays with its connection).
    pub fn give_read_buffer(&self, buf: &mut Vec<u8>, size: usize) {
        if buf.is_empty() && buf.capacity() == size {
            self.shared
                .read_buffers
                .borrow_mut()
                .push(std::mem::take(buf));
        } else if buf.is_empty() && buf.capacity() > size {
            *buf = Vec::new();
        }
    }

    /// The shard's buffer for decoding a body (held only while one response is inspected).
    pub fn decode_buffer(&self) -> RefMut<'_, Vec<u8>> {
        self.shared.decoded.borrow_mut()
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

    /// Resolves once the load stops (`is_stopping`): what a long wait of user `id` races.
    pub fn until_stopping(&self, id: usize) -> UntilStopping<'_> {
        UntilStopping { shard: self, id }
    }

    /// When the load stopped (scenario clock), once `is_stopping`.
    pub fn stopped_at_ns(&self) -> u64 {
        self.stopped_at.get()
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

    /// A connection task ended: the shard runs until every one has.
    pub fn conn_finished(&self) {
        self.live_conns.set(self.live_conns.get().saturating_sub(1));
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
            let number = (self.vu(id) - 1) as f64;
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
        self.take_budget(id)
    }

    /// Closed model: one iteration off the user's and the scenario's budgets, if any is left.
    fn take_budget(&self, id: usize) -> Permit {
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
                    self.stop();
                }
                None
            }
        }
    }

    /// Graceful stop: no new requests; queued open-model arrivals are dropped and counted.
    pub(super) fn stop(&self) {
        if self.stopping.replace(true) {
            return;
        }
        self.stopped_at.set(self.now_ns());
        for waker in self.stop_wakers.borrow_mut().iter_mut() {
            if let Some(w) = waker.take() {
                w.wake();
            }
        }
        if let Some(d) = &self.dispatch {
            let dropped = d.clear_queue();
            self.step(0).dropped += dropped;
            d.finish();
        }
    }

    /// The graceful stop ran out: no new work, and running iterations are cut short (their
    /// in-flight requests are cancelled by the watchdog and not counted as errors).
    pub(super) fn interrupt(&self) {
        self.stop();
        self.interrupted.set(true);
    }
}
