//! What a shard measures, and the messages it sends to the collector.
//!
//! A shard records every request into its step's [`Stats`] bucket (a [`StatsSet`] holds one per
//! journey step, plus iteration figures) for the current one-second interval, then ships the
//! whole set and continues with a recycled empty one. A request is recorded once, in its step;
//! run totals are merged from the steps when rendering. Counters are fixed arrays indexed by
//! [`ErrorKind`], status class and [`CheckKind`]: nothing on the hot path allocates.

use crate::metrics::histogram::{new_histogram, record_ns, LatencyHistogram};
use crate::metrics::ErrorKind;

/// What a step's check looks at; indexes the per-kind failure counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    Status,
    BodyContains,
    Json,
    Header,
    LatencyUnder,
    /// Negative checks, counted apart: a leak is not a missing field.
    BodyNotContains,
    JsonAbsent,
}

impl CheckKind {
    pub const ALL: [CheckKind; 7] = [
        CheckKind::Status,
        CheckKind::BodyContains,
        CheckKind::Json,
        CheckKind::Header,
        CheckKind::LatencyUnder,
        CheckKind::BodyNotContains,
        CheckKind::JsonAbsent,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Status => "status",
            CheckKind::BodyContains => "body_contains",
            CheckKind::Json => "json",
            CheckKind::Header => "header",
            CheckKind::LatencyUnder => "latency_under",
            CheckKind::BodyNotContains => "body_not_contains",
            CheckKind::JsonAbsent => "json_absent",
        }
    }
}

/// Requests are "late" when sent more than this after their intended time.
pub const LATE_NS: u64 = 2_000_000;

/// One interval's (or a whole run's) measurements.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Corrected: done − min(intended, sent).
    pub latency: LatencyHistogram,
    /// Uncorrected: done − sent.
    pub service: LatencyHistogram,
    /// max(0, sent − intended), for scheduled requests only.
    pub lag: LatencyHistogram,
    /// Responses received (any status).
    pub requests: u64,
    pub errors: [u64; ErrorKind::COUNT],
    /// Responses by status class: 1xx … 5xx (index 0 … 4).
    pub status: [u64; 5],
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Scheduled requests sent more than [`LATE_NS`] after their intended time.
    pub late: u64,
    /// Scheduled requests dropped because the queue for a free connection was full.
    pub dropped: u64,
    /// TCP connections opened.
    pub connects: u64,
    /// Bytes of compressed bodies after decoding (only bodies a check or capture read).
    pub bytes_decoded: u64,
    /// Redirect hops followed (each a request on the wire, not in `requests`: the step's
    /// response is the chain's last).
    pub redirects: u64,
    pub checks_passed: u64,
    pub checks_failed: u64,
    /// Failed checks by kind.
    pub check_failures: [u64; CheckKind::COUNT],
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Self {
            latency: new_histogram(),
            service: new_histogram(),
            lag: new_histogram(),
            requests: 0,
            errors: [0; ErrorKind::COUNT],
            status: [0; 5],
            bytes_in: 0,
            bytes_out: 0,
            late: 0,
            dropped: 0,
            connects: 0,
            bytes_decoded: 0,
            redirects: 0,
            checks_passed: 0,
            checks_failed: 0,
            check_failures: [0; CheckKind::COUNT],
        }
    }

    /// Empties the bucket for reuse, keeping its allocations.
    pub fn reset(&mut self) {
        self.latency.reset();
        self.service.reset();
        self.lag.reset();
        self.requests = 0;
        self.errors = [0; ErrorKind::COUNT];
        self.status = [0; 5];
        self.bytes_in = 0;
        self.bytes_out = 0;
        self.late = 0;
        self.dropped = 0;
        self.connects = 0;
        self.bytes_decoded = 0;
        self.redirects = 0;
        self.checks_passed = 0;
        self.checks_failed = 0;
        self.check_failures = [0; CheckKind::COUNT];
    }

    /// Adds another bucket into this one. Exact: histograms share one constructor.
    pub fn merge(&mut self, other: &Stats) {
        // Same bounds everywhere, so `add` cannot fail; saturate rather than panic regardless.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        let _ = self.lag.add(&other.lag);
        self.requests += other.requests;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.late += other.late;
        self.dropped += other.dropped;
        self.connects += other.connects;
        self.bytes_decoded += other.bytes_decoded;
        self.redirects += other.redirects;
        self.checks_passed += other.checks_passed;
        self.checks_failed += other.checks_failed;
        for (a, b) in self.check_failures.iter_mut().zip(other.check_failures) {
            *a += b;
        }
    }

    /// Records a response. `intended_ns` is `None` for unscheduled (closed-model) requests.
    /// Times are nanoseconds since the run origin. Returns the corrected latency in ns.
    #[inline]
    pub fn record_response(
        &mut self,
        status: u16,
        intended_ns: Option<u64>,
        sent_ns: u64,
        done_ns: u64,
    ) -> u64 {
        self.record_response_expecting(status, &[], intended_ns, sent_ns, done_ns)
    }

    /// [`Self::record_response`] for a step with `expect_status`: a 4xx/5xx it lists is a
    /// success of that step, not an error (its status class is still counted).
    #[inline]
    pub fn record_response_expecting(
        &mut self,
        status: u16,
        expected: &[u16],
        intended_ns: Option<u64>,
        sent_ns: u64,
        done_ns: u64,
    ) -> u64 {
        self.requests += 1;
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.status[class] += 1;
        if !expected.contains(&status) {
            if status >= 500 {
                self.errors[ErrorKind::Status5xx.index()] += 1;
            } else if status >= 400 {
                self.errors[ErrorKind::Status4xx.index()] += 1;
            }
        }
        let start_ns = intended_ns.map_or(sent_ns, |i| i.min(sent_ns));
        let latency_ns = done_ns.saturating_sub(start_ns);
        record_ns(&mut self.latency, latency_ns);
        record_ns(&mut self.service, done_ns.saturating_sub(sent_ns));
        latency_ns
    }

    /// Records a reply that has no HTTP status (a WebSocket message's, an upgrade's).
    #[inline]
    pub fn record_reply(&mut self, intended_ns: Option<u64>, sent_ns: u64, done_ns: u64) {
        self.requests += 1;
        let start_ns = intended_ns.map_or(sent_ns, |i| i.min(sent_ns));
        record_ns(&mut self.latency, done_ns.saturating_sub(start_ns));
        record_ns(&mut self.service, done_ns.saturating_sub(sent_ns));
    }

    /// Records when a scheduled request actually went out.
    #[inline]
    pub fn record_send_lag(&mut self, intended_ns: u64, sent_ns: u64) {
        let lag = sent_ns.saturating_sub(intended_ns);
        record_ns(&mut self.lag, lag);
        if lag > LATE_NS {
            self.late += 1;
        }
    }

    #[inline]
    pub fn record_error(&mut self, kind: ErrorKind) {
        self.errors[kind.index()] += 1;
    }

    /// True when nothing at all was recorded.
    pub fn is_empty(&self) -> bool {
        self.requests == 0
            && self.errors_total() == 0
            && self.lag.is_empty()
            && self.dropped == 0
            && self.connects == 0
            && self.bytes_in == 0
            && self.bytes_out == 0
            && self.redirects == 0
            && self.checks_passed + self.checks_failed == 0
    }

    #[inline]
    pub fn record_check(&mut self, kind: CheckKind, passed: bool) {
        if passed {
            self.checks_passed += 1;
        } else {
            self.checks_failed += 1;
            self.check_failures[kind as usize] += 1;
        }
    }

    /// Errors of every kind, including 4xx/5xx statuses.
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// Whole-iteration figures of one scenario.
#[derive(Clone, Debug)]
pub struct IterationStats {
    /// Iteration (journey) duration, from its intended start where it has one.
    pub duration: LatencyHistogram,
    pub count: u64,
    /// Iterations cut short by a failed request or capture.
    pub failed: u64,
    /// Iterations still running when the graceful stop ran out (not in `count`).
    pub interrupted: u64,
}

impl IterationStats {
    pub fn new() -> Self {
        Self {
            duration: new_histogram(),
            count: 0,
            failed: 0,
            interrupted: 0,
        }
    }

    pub fn reset(&mut self) {
        self.duration.reset();
        self.count = 0;
        self.failed = 0;
        self.interrupted = 0;
    }

    pub fn merge(&mut self, other: &IterationStats) {
        let _ = self.duration.add(&other.duration);
        self.count += other.count;
        self.failed += other.failed;
        self.interrupted += other.interrupted;
    }

    fn is_empty(&self) -> bool {
        self.count == 0 && self.interrupted == 0
    }
}

impl Default for IterationStats {
    fn default() -> Self {
        Self::new()
    }
}

/// One bucket per journey step of every scenario (a scenario's steps are contiguous), plus
/// whole-iteration figures per scenario.
#[derive(Clone, Debug)]
pub struct StatsSet {
    pub steps: Vec<Stats>,
    /// Per scenario, in the plan's order.
    pub journeys: Vec<IterationStats>,
    /// TLS handshakes (connection-level, so once per set, not per step): their duration.
    pub handshake: LatencyHistogram,
    /// TLS handshakes that resumed a session.
    pub resumed: u64,
    /// WebSocket message counts (connection-level).
    pub ws: WsCounters,
}

/// What WebSocket connections counted besides round trips.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WsCounters {
    pub sent: u64,
    /// Every data message received (replies, broadcasts from others, pushes).
    pub received: u64,
    /// Connections opened again after a drop.
    pub reconnects: u64,
    /// Closing handshakes completed at the end of the run.
    pub closed_cleanly: u64,
    /// Closes the server started, by code: 1000, 1001, 1008 (policy: a lagged member), other
    /// (none included).
    pub server_closes: [u64; 4],
}

impl WsCounters {
    fn merge(&mut self, o: &WsCounters) {
        self.sent += o.sent;
        self.received += o.received;
        self.reconnects += o.reconnects;
        self.closed_cleanly += o.closed_cleanly;
        for (a, b) in self.server_closes.iter_mut().zip(o.server_closes) {
            *a += b;
        }
    }

    /// A close frame the server sent first, with its code.
    pub fn record_server_close(&mut self, code: Option<u16>) {
        let i = match code {
            Some(1000) => 0,
            Some(1001) => 1,
            Some(1008) => 2,
            _ => 3,
        };
        self.server_closes[i] += 1;
    }
}

/// The names `WsCounters::server_closes` is reported under.
pub const SERVER_CLOSE_NAMES: [&str; 4] = ["1000", "1001", "1008", "other"];

impl StatsSet {
    pub fn new(steps: usize, scenarios: usize) -> Self {
        Self {
            steps: (0..steps.max(1)).map(|_| Stats::new()).collect(),
            journeys: (0..scenarios.max(1))
                .map(|_| IterationStats::new())
                .collect(),
            handshake: new_histogram(),
            resumed: 0,
            ws: WsCounters::default(),
        }
    }

    /// An empty set of the same shape.
    pub fn empty_like(&self) -> Self {
        Self::new(self.steps.len(), self.journeys.len())
    }

    pub fn reset(&mut self) {
        self.steps.iter_mut().for_each(Stats::reset);
        self.journeys.iter_mut().for_each(IterationStats::reset);
        self.handshake.reset();
        self.resumed = 0;
        self.ws = WsCounters::default();
    }

    /// Adds another set of the same plan into this one.
    pub fn merge(&mut self, other: &StatsSet) {
        for (a, b) in self.steps.iter_mut().zip(&other.steps) {
            a.merge(b);
        }
        for (a, b) in self.journeys.iter_mut().zip(&other.journeys) {
            a.merge(b);
        }
        let _ = self.handshake.add(&other.handshake);
        self.resumed += other.resumed;
        self.ws.merge(&other.ws);
    }

    /// A TLS handshake of `ns`, resumed or full.
    #[inline]
    pub fn record_handshake(&mut self, ns: u64, resumed: bool) {
        record_ns(&mut self.handshake, ns);
        if resumed {
            self.resumed += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.journeys.iter().all(IterationStats::is_empty)
            && self.steps.iter().all(Stats::is_empty)
            && self.handshake.is_empty()
            && self.ws == WsCounters::default()
    }

    /// The whole run's figures: every step merged (rendering only, never on the hot path).
    pub fn total(&self) -> Stats {
        self.total_of(0..self.steps.len())
    }

    /// Steps `range` merged (one scenario's steps).
    pub fn total_of(&self, range: std::ops::Range<usize>) -> Stats {
        let mut total = Stats::new();
        for s in self.steps.get(range).unwrap_or_default() {
            total.merge(s);
        }
        total
    }

    /// Every scenario's iterations merged (rendering only).
    pub fn iterations(&self) -> IterationStats {
        let mut all = IterationStats::new();
        for j in &self.journeys {
            all.merge(j);
        }
        all
    }

    #[inline]
    pub fn record_iteration(&mut self, scenario: usize, start_ns: u64, done_ns: u64, failed: bool) {
        if let Some(j) = self.journeys.get_mut(scenario) {
            j.count += 1;
            if failed {
                j.failed += 1;
            }
            record_ns(&mut j.duration, done_ns.saturating_sub(start_ns));
        }
    }
}

/// One shard's measurements for interval `index` (1-based: interval k covers (k−1 s, k s]).
#[derive(Debug)]
pub struct ShardInterval {
    pub shard: usize,
    pub index: u64,
    pub stats: Box<StatsSet>,
    pub active_connections: u32,
}

/// What a shard reports once when it ends.
#[derive(Debug)]
pub struct ShardFinal {
    pub shard: usize,
    /// Whatever was recorded since the last interval was shipped.
    pub rest: Box<StatsSet>,
    /// Which io driver this shard ran on (e.g. "io_uring", "legacy").
    pub driver: &'static str,
    /// The CPU it was pinned to, if pinning succeeded.
    pub cpu: Option<usize>,
    /// Set when the shard could not start at all (runtime build failed).
    pub failure: Option<String>,
    /// Set when the shard's thread panicked: what it said. Its figures since its last
    /// shipped interval are lost with it.
    pub panic: Option<String>,
    /// A `unique` data feeder ran out of rows, which ended the run early.
    pub feeder_exhausted: bool,
}

impl ShardFinal {
    /// The final report of a shard that ended with nothing more to give.
    pub fn empty(shard: usize) -> Self {
        Self {
            shard,
            rest: Box::new(StatsSet::new(1, 1)),
            driver: "none",
            cpu: None,
            failure: None,
            panic: None,
            feeder_exhausted: false,
        }
    }
}

/// Everything a shard sends to the collector.
#[derive(Debug)]
pub enum ShardEvent {
    Interval(ShardInterval),
    Final(ShardFinal),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expected_status_is_not_an_error() {
        let mut s = Stats::new();
        s.record_response_expecting(403, &[403, 409], None, 0, 10);
        s.record_response_expecting(409, &[403, 409], None, 0, 10);
        assert_eq!(s.errors_total(), 0);
        assert_eq!(s.status[3], 2, "still counted by class");
        // Outside the list a 4xx/5xx is the error it always was.
        s.record_response_expecting(404, &[403], None, 0, 10);
        s.record_response_expecting(503, &[403], None, 0, 10);
        assert_eq!(s.errors[ErrorKind::Status4xx.index()], 1);
        assert_eq!(s.errors[ErrorKind::Status5xx.index()], 1);
    }

    #[test]
    fn corrected_latency_counts_from_intended_time() {
        let mut s = Stats::new();
        // Intended at 0, sent at 1 s (stalled), done at 1.001 s.
        s.record_response(200, Some(0), 1_000_000_000, 1_001_000_000);
        assert!(s.latency.max() >= 1_000_000);
        assert!(s.service.max() <= 1_100);
        // Sent early (before intended): latency counts from the send.
        let mut e = Stats::new();
        e.record_response(200, Some(5_000_000), 4_000_000, 4_500_000);
        assert_eq!(e.latency.max(), e.service.max());
    }

    #[test]
    fn statuses_and_errors_are_classified() {
        let mut s = Stats::new();
        for code in [200, 204, 304, 404, 503, 101] {
            s.record_response(code, None, 0, 10);
        }
        assert_eq!(s.status, [1, 2, 1, 1, 1]);
        assert_eq!(s.errors[ErrorKind::Status4xx.index()], 1);
        assert_eq!(s.errors[ErrorKind::Status5xx.index()], 1);
        s.record_error(ErrorKind::Reset);
        assert_eq!(s.errors_total(), 3);
        let mut t = Stats::new();
        t.merge(&s);
        t.merge(&s);
        assert_eq!(t.requests, 12);
        assert_eq!(t.latency.len(), 12);
        t.reset();
        assert_eq!(t.requests, 0);
        assert!(t.latency.is_empty());
    }

    #[test]
    fn lag_and_late() {
        let mut s = Stats::new();
        s.record_send_lag(1_000, 500); // early: zero lag
        s.record_send_lag(0, LATE_NS + 1);
        assert_eq!(s.late, 1);
        assert_eq!(s.lag.len(), 2);
    }
}
