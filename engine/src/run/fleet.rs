//! Merging several daemons' runs of one split scenario (`split`) into one run: intervals by
//! index (the collector's own `Aligner`), the totals, and a `Results` assembled as one
//! machine's run is (`assemble`), so the merged summary reads, and judges thresholds, exactly
//! as one machine's would.
//!
//! Exact: every figure comes from added counters and added histograms (`metrics::wire` on the
//! way in), never from averaging percentiles. A daemon that ran only some scenarios (a zero
//! share of a closed scenario) is mapped onto the whole run's steps by scenario name. It
//! refuses to talk to daemons: fetching their events is the caller's.

use super::assemble::{assemble, Measured};
use crate::metrics::stats::StatsSet;
use crate::plan::Plan;
use crate::results::collector::{Aligner, RunInterval};
use crate::results::{IntervalSummary, Results};

/// Where a share's steps and scenarios sit in the whole run.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeMap {
    steps: Vec<usize>,
    journeys: Vec<usize>,
}

impl ShapeMap {
    /// Maps `share`'s scenarios onto `whole`'s by name.
    pub fn between(whole: &Plan, share: &Plan) -> Result<Self, String> {
        let mut steps = Vec::new();
        let mut journeys = Vec::new();
        for sc in &share.scenarios {
            let (k, full) = whole
                .scenarios
                .iter()
                .enumerate()
                .find(|(_, f)| f.name == sc.name)
                .ok_or_else(|| format!("scenario `{}` is not in the whole run", sc.name))?;
            if full.journey.steps.len() != sc.journey.steps.len() {
                return Err(format!("scenario `{}` has other steps", sc.name));
            }
            steps.extend(full.step_range());
            journeys.push(k);
        }
        Ok(Self { steps, journeys })
    }

    /// Adds a share's set into a set shaped like the whole run.
    pub fn merge(&self, into: &mut StatsSet, part: &StatsSet) -> Result<(), String> {
        if part.steps.len() != self.steps.len() || part.journeys.len() != self.journeys.len() {
            return Err(format!(
                "loadd sent measurements for {} steps and {} scenarios where its share has {} and {}",
                part.steps.len(),
                part.journeys.len(),
                self.steps.len(),
                self.journeys.len()
            ));
        }
        for (s, &at) in part.steps.iter().zip(&self.steps) {
            if let Some(slot) = into.steps.get_mut(at) {
                slot.merge(s);
            }
        }
        for (j, &at) in part.journeys.iter().zip(&self.journeys) {
            if let Some(slot) = into.journeys.get_mut(at) {
                slot.merge(j);
            }
        }
        // Same constructor on both sides: `add` cannot fail; saturate rather than panic anyway.
        let _ = into.handshake.add(&part.handshake);
        into.resumed += part.resumed;
        Ok(())
    }
}

/// Merges intervals by index as daemons report them, and their totals.
pub struct Merger {
    maps: Vec<ShapeMap>,
    aligner: Aligner,
    totals: Box<StatsSet>,
    /// Every merged interval so far, in order.
    pub intervals: Vec<IntervalSummary>,
}

impl Merger {
    /// `maps[d]` places daemon `d`'s share in `whole`.
    pub fn new(whole: &Plan, maps: Vec<ShapeMap>) -> Self {
        let (steps, scenarios) = (whole.steps().count(), whole.scenarios.len());
        // Open model: what the whole schedule asked for each second, as one machine's
        // collector says; the daemons' own figures would not add up in the second a share
        // starts (each counts arrivals from its own offset).
        let schedules = if whole.is_open() {
            whole.schedules()
        } else {
            Vec::new()
        };
        Self {
            aligner: Aligner::new(maps.len(), steps, scenarios, schedules),
            maps,
            totals: Box::new(StatsSet::new(steps, scenarios)),
            intervals: Vec::new(),
        }
    }

    /// Takes daemon `d`'s interval `index`; returns the merged intervals that became complete.
    pub fn interval(
        &mut self,
        d: usize,
        index: u64,
        summary: &IntervalSummary,
        stats: &StatsSet,
    ) -> Result<Vec<IntervalSummary>, String> {
        let map = self.maps.get(d).ok_or("no such daemon")?;
        let slot = self.aligner.slot(index);
        map.merge(&mut slot.stats, stats)?;
        slot.active += summary.active_connections;
        self.aligner.seen(d, index);
        Ok(self.ready())
    }

    /// Daemon `d` will send no more intervals; returns those that became complete.
    pub fn end(&mut self, d: usize) -> Vec<IntervalSummary> {
        self.aligner.finish(d);
        self.ready()
    }

    /// Daemon `d`'s totals.
    pub fn totals(&mut self, d: usize, stats: &StatsSet) -> Result<(), String> {
        let map = self.maps.get(d).ok_or("no such daemon")?;
        map.merge(&mut self.totals, stats)
    }

    /// Every daemon's totals, merged.
    pub fn merged_totals(&self) -> &StatsSet {
        &self.totals
    }

    fn ready(&mut self) -> Vec<IntervalSummary> {
        let mut out: Vec<RunInterval> = Vec::new();
        self.aligner.ready(&mut out);
        let ready: Vec<IntervalSummary> = out.into_iter().map(|iv| iv.summary).collect();
        self.intervals.extend(ready.iter().cloned());
        ready
    }
}

/// One daemon's part in the merged run.
pub struct DaemonRun {
    pub url: String,
    pub id: String,
    pub results: Results,
}

/// The whole run's result from the merged totals and intervals, as `loadd` would have built it
/// on one machine; thresholds are judged here, on the merged figures.
pub fn results(
    whole: &Plan,
    totals: &StatsSet,
    intervals: Vec<IntervalSummary>,
    daemons: &[DaemonRun],
) -> Results {
    let started = daemons
        .iter()
        .map(|d| d.results.environment.started_unix_ms)
        .min()
        .unwrap_or(0);
    let ended = daemons
        .iter()
        .map(|d| d.results.environment.started_unix_ms + (d.results.elapsed_s * 1000.0) as u64)
        .max()
        .unwrap_or(started);
    let mut drivers: Vec<&str> = daemons.iter().map(|d| d.results.driver.as_str()).collect();
    drivers.sort_unstable();
    drivers.dedup();
    let warnings = daemons
        .iter()
        .flat_map(|d| {
            d.results
                .warnings
                .iter()
                .map(move |w| format!("daemon {}: {w}", d.url))
        })
        .collect();
    let measured = Measured {
        elapsed_s: ended.saturating_sub(started) as f64 / 1000.0,
        driver: drivers.join(","),
        cpus: daemons
            .iter()
            .flat_map(|d| d.results.cpus.iter().copied())
            .collect(),
        shards: daemons.iter().map(|d| d.results.shards).sum(),
        warnings,
    };
    let mut results = assemble(whole, totals, intervals, measured);
    results.environment.started_unix_ms = started;
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::collector::requested_per_s;
    use crate::results::RunFacts;
    use crate::scenario::{self, Files, Source};

    fn plan(text: &str) -> Plan {
        let source = Source::in_memory("t.toml", text, Files::Disk);
        Plan::from_spec(&scenario::parse(&source).unwrap(), &source).unwrap()
    }

    const TWO: &str = "[target]\nurl = \"http://127.0.0.1:9/\"\n[scenarios.a.load]\nvus = 2\nduration = \"1s\"\n[[scenarios.a.steps]]\npath = \"/a\"\n[[scenarios.a.steps]]\npath = \"/a2\"\n[scenarios.b.load]\nvus = 1\nduration = \"1s\"\n[[scenarios.b.steps]]\npath = \"/b\"\n";
    const ONLY_A: &str = "[target]\nurl = \"http://127.0.0.1:9/\"\n[scenarios.a.load]\nvus = 1\nduration = \"1s\"\n[[scenarios.a.steps]]\npath = \"/a\"\n[[scenarios.a.steps]]\npath = \"/a2\"\n";

    fn set_with(steps: usize, scenarios: usize, latencies_us: &[(usize, u64)]) -> StatsSet {
        let mut set = StatsSet::new(steps, scenarios);
        for &(step, us) in latencies_us {
            set.steps[step].record_response(200, Some(0), 0, us * 1000);
        }
        set
    }

    #[test]
    fn a_share_without_a_scenario_lands_on_the_right_steps() {
        let whole = plan(TWO);
        let map = ShapeMap::between(&whole, &plan(ONLY_A)).unwrap();
        assert_eq!(map.steps, [0, 1]);
        let mut into = StatsSet::new(3, 2);
        map.merge(&mut into, &set_with(2, 1, &[(1, 500)])).unwrap();
        assert_eq!(into.steps[1].requests, 1);
        assert_eq!(into.steps[2].requests, 0);
        assert!(map.merge(&mut into, &StatsSet::new(3, 2)).is_err());
    }

    #[test]
    fn intervals_merge_by_index_once_every_daemon_reported() {
        let whole = plan(ONLY_A);
        let map = ShapeMap::between(&whole, &whole).unwrap();
        let mut m = Merger::new(&whole, vec![map.clone(), map]);
        let summary = |active| IntervalSummary {
            active_connections: active,
            requested_per_s: Some(50.0),
            ..IntervalSummary::of(1, &StatsSet::new(2, 1), 0, None)
        };
        let fast: Vec<(usize, u64)> = (0..99).map(|_| (0, 1_000)).collect();
        let slow = [(0, 9_000)];
        let out = m
            .interval(0, 1, &summary(3), &set_with(2, 1, &fast))
            .unwrap();
        assert!(out.is_empty(), "daemon 1 has not reported interval 1");
        assert!(m
            .interval(0, 2, &summary(3), &set_with(2, 1, &fast))
            .unwrap()
            .is_empty());
        let out = m
            .interval(1, 1, &summary(2), &set_with(2, 1, &slow))
            .unwrap();
        assert_eq!(out.len(), 1);
        let iv = &out[0];
        assert_eq!((iv.t_s, iv.requests, iv.active_connections), (1.0, 100, 5));
        // A closed run asks for nothing per second (open runs: the whole schedule's figure).
        assert_eq!(iv.requested_per_s, None);
        // Exact: p99 of 99 × 1 ms and 1 × 9 ms is 1 ms, p99.9 is the slow one.
        assert_eq!(iv.latency_p99_us, 1_000);
        assert!((8_990..=9_010).contains(&iv.latency_p999_us), "{iv:?}");
        // Daemon 1 ends early: interval 2 no longer waits for it.
        let out = m.end(1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].requests, 99);
        assert_eq!(m.intervals.len(), 2);
    }

    #[test]
    fn requested_rate_is_the_whole_schedules() {
        let whole = plan(
            "[target]\nurl = \"http://127.0.0.1:9/\"\n[load]\nrate = 200\nduration = \"3s\"\n",
        );
        let m = Merger::new(&whole, Vec::new());
        assert_eq!(m.aligner.requested_per_s(1), Some(200.0));
        assert_eq!(m.aligner.requested_per_s(3), Some(200.0));
        assert_eq!(m.aligner.requested_per_s(4), Some(0.0));
        assert_eq!(requested_per_s(&whole.schedules(), 1), Some(200.0));
    }

    #[test]
    fn results_add_up_and_judge_thresholds_on_the_merge() {
        let text = format!("thresholds = [\"p99 < 5ms\"]\n{ONLY_A}");
        let whole = plan(&text);
        let map = ShapeMap::between(&whole, &whole).unwrap();
        let mut m = Merger::new(&whole, vec![map.clone(), map]);
        let fast: Vec<(usize, u64)> = (0..98).map(|_| (0, 1_000)).collect();
        m.totals(0, &set_with(2, 1, &fast)).unwrap();
        m.totals(1, &set_with(2, 1, &[(1, 20_000), (1, 20_000)]))
            .unwrap();
        let daemon = |url: &str, started: u64| {
            let mut results = Results::build(
                &StatsSet::new(2, 1),
                Vec::new(),
                RunFacts {
                    target: "http://127.0.0.1:9/".into(),
                    driver: "io_uring".into(),
                    cpus: vec![0],
                    model: crate::run::model_summary(&whole.scenarios[0]).0,
                    open: false,
                    elapsed_s: 1.0,
                    rate_basis_s: 1.0,
                    warnings: vec!["slow".into()],
                    shards: 1,
                    step_names: vec![],
                    requested_rate_per_s: None,
                    scenarios: vec![],
                    tls: None,
                    websocket: false,
                },
            );
            results.environment.started_unix_ms = started;
            DaemonRun {
                url: url.into(),
                id: "x".into(),
                results,
            }
        };
        let daemons = [daemon("http://a", 10_000), daemon("http://b", 10_050)];
        let r = results(&whole, m.merged_totals(), Vec::new(), &daemons);
        assert_eq!(r.requests, 100);
        assert_eq!(r.steps[1].requests, 2);
        assert_eq!(r.shards, 2);
        assert_eq!(r.elapsed_s, 1.05);
        assert_eq!(r.environment.started_unix_ms, 10_000);
        assert!(r.warnings.contains(&"daemon http://b: slow".to_string()));
        // p99 of the merge is the slow daemon's 20 ms: the threshold fails on the whole run.
        assert!(r.thresholds_failed, "{:?}", r.thresholds);
    }
}
