//! Comparing two runs: whole-run figures side by side with their change, per step and overall,
//! and a regression verdict that accounts for run-to-run noise.
//!
//! The noise comes from the runs themselves: each second of a run is one sample of its p50,
//! p99, throughput and error rate. A metric's change is the change of the per-second medians
//! (means for error rates), and its confidence interval is bootstrapped ([`bootstrap`]). A
//! metric regressed only when the whole interval lies beyond the tolerance, so noise that
//! happens to move a whole-run percentile is not called a regression. `docs/reports.md` has
//! the method and its limits. It refuses to judge from fewer than [`MIN_SECONDS`] seconds.

mod bootstrap;
mod render;
mod series;

use serde::Serialize;

use self::series::{overall_tests, test, Series};
use super::{error_rate, p95_us};
use crate::results::{IntervalSummary, Results};

pub use render::{html, markdown, text};

pub const SCHEMA: &str = "loadd.compare.v1";
/// Fewer seconds than this on either side: no verdict for that metric.
pub const MIN_SECONDS: usize = 3;
/// Below this many seconds the verdict stands but the report says the estimate is rough.
const ROUGH_SECONDS: usize = 10;

/// How strict the verdict is.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Relative change tolerated in latency and throughput, e.g. 0.10 for 10%.
    pub tolerance: f64,
    /// Absolute rise tolerated in the error rate, e.g. 0.001 for 0.1 percentage point.
    pub error_tolerance: f64,
    /// Confidence of the interval, e.g. 0.95.
    pub confidence: f64,
    /// Bootstrap resamples.
    pub resamples: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tolerance: 0.10,
            error_tolerance: 0.001,
            confidence: 0.95,
            resamples: 2000,
        }
    }
}

/// A run to compare and what to call it (its file name or run id).
pub struct Labeled<'a> {
    pub label: &'a str,
    pub results: &'a Results,
}

/// What identifies a compared run.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub label: String,
    pub target: String,
    /// e.g. "open 1000 req/s, 64 connections" or "closed, 8 connections".
    pub load: String,
    pub elapsed_s: f64,
    pub requests: u64,
    /// Seconds with responses: the samples the verdict uses.
    pub seconds: usize,
    pub started_unix_ms: u64,
    pub scenario_sha256: Option<String>,
    pub trustworthy: bool,
}

/// Which way is worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Worse {
    Higher,
    Lower,
}

/// One whole-run figure of both runs.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub name: String,
    /// "us", "per_s", "fraction" or "count".
    pub unit: String,
    pub baseline: f64,
    pub candidate: f64,
    /// Relative change (candidate ÷ baseline − 1); absolute for fractions; absent when the
    /// baseline is zero.
    pub change: Option<f64>,
    pub worse: Worse,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepFigures {
    pub step: String,
    pub figures: Vec<Figure>,
}

/// The verdict on one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Worse beyond the tolerance, with the confidence asked for.
    Regression,
    /// Better beyond the tolerance.
    Improvement,
    /// Within the tolerance, with the confidence asked for.
    Unchanged,
    /// The interval straddles the tolerance: more or longer runs would tell.
    Inconclusive,
    /// Too few seconds to estimate the noise.
    Insufficient,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::Improvement => "improvement",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Insufficient => "too few seconds",
        }
    }
}

/// A noise-aware test of one metric's per-second figures.
#[derive(Clone, Debug, Serialize)]
pub struct Test {
    /// "overall" or the step's name.
    pub scope: String,
    /// "p50", "p99", "throughput", "error rate".
    pub metric: String,
    /// "us", "per_s" or "fraction".
    pub unit: String,
    /// Median (mean for error rates) of the per-second figures.
    pub baseline: f64,
    pub candidate: f64,
    /// Relative for latency and throughput, absolute for error rates.
    pub change: f64,
    pub change_low: f64,
    pub change_high: f64,
    pub relative: bool,
    pub worse: Worse,
    pub samples_baseline: usize,
    pub samples_candidate: usize,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub schema: String,
    pub baseline: RunInfo,
    pub candidate: RunInfo,
    pub tolerance: f64,
    pub error_tolerance: f64,
    pub confidence: f64,
    pub method: String,
    pub overall: Vec<Figure>,
    pub steps: Vec<StepFigures>,
    pub tests: Vec<Test>,
    pub regression: bool,
    /// One sentence: what changed, or that nothing did.
    pub summary: String,
    pub warnings: Vec<String>,
}

fn load(r: &Results) -> String {
    let m = &r.model;
    match (m.kind.as_str(), m.rate_per_s) {
        ("open", Some(rate)) => format!(
            "open {} req/s, {} connections",
            super::trim(rate),
            m.connections
        ),
        _ => format!("closed, {} connections", m.connections),
    }
}

/// Seconds that saw responses, within the planned duration: an empty second has no latency to
/// sample, and the drain after the planned end (a few stragglers) is no second of load.
fn seconds(r: &Results) -> impl Iterator<Item = &IntervalSummary> {
    let end = r.model.duration_s.map_or(f64::INFINITY, |d| d + 1e-6);
    r.intervals
        .iter()
        .filter(move |i| i.requests > 0 && i.t_s <= end)
}

fn info(l: &Labeled) -> RunInfo {
    let r = l.results;
    RunInfo {
        label: l.label.to_string(),
        target: r.target.clone(),
        load: load(r),
        elapsed_s: r.elapsed_s,
        requests: r.requests,
        seconds: seconds(r).count(),
        started_unix_ms: r.environment.started_unix_ms,
        scenario_sha256: r.environment.scenario_sha256.clone(),
        trustworthy: r.trustworthy,
    }
}

fn figure(name: &str, unit: &str, baseline: f64, candidate: f64, worse: Worse) -> Figure {
    let change = if unit == "fraction" {
        Some(candidate - baseline)
    } else if baseline > 0.0 {
        Some(candidate / baseline - 1.0)
    } else {
        None
    };
    Figure {
        name: name.into(),
        unit: unit.into(),
        baseline,
        candidate,
        change,
        worse,
    }
}

fn latency_figures(
    b: &crate::metrics::histogram::LatencySummary,
    c: &crate::metrics::histogram::LatencySummary,
    p95: Option<(u64, u64)>,
) -> Vec<Figure> {
    let mut f = vec![figure(
        "p50",
        "us",
        b.p50 as f64,
        c.p50 as f64,
        Worse::Higher,
    )];
    f.push(figure(
        "p90",
        "us",
        b.p90 as f64,
        c.p90 as f64,
        Worse::Higher,
    ));
    if let Some((b95, c95)) = p95 {
        f.push(figure("p95", "us", b95 as f64, c95 as f64, Worse::Higher));
    }
    f.push(figure(
        "p99",
        "us",
        b.p99 as f64,
        c.p99 as f64,
        Worse::Higher,
    ));
    f.push(figure(
        "p99.9",
        "us",
        b.p99_9 as f64,
        c.p99_9 as f64,
        Worse::Higher,
    ));
    f.push(figure(
        "max",
        "us",
        b.max as f64,
        c.max as f64,
        Worse::Higher,
    ));
    f
}

/// The whole run's figures side by side.
fn overall_figures(b: &Results, c: &Results) -> Vec<Figure> {
    let mut overall = vec![
        figure(
            "throughput",
            "per_s",
            b.rate_per_s,
            c.rate_per_s,
            Worse::Lower,
        ),
        figure(
            "requests",
            "count",
            b.requests as f64,
            c.requests as f64,
            Worse::Lower,
        ),
        figure(
            "error rate",
            "fraction",
            error_rate(b),
            error_rate(c),
            Worse::Higher,
        ),
    ];
    let p95 = p95_us(b).zip(p95_us(c));
    overall.extend(latency_figures(&b.latency_us, &c.latency_us, p95));
    if b.latency_basis == "intended" && c.latency_basis == "intended" {
        overall.push(figure(
            "uncorrected p99",
            "us",
            b.service_time_us.p99 as f64,
            c.service_time_us.p99 as f64,
            Worse::Higher,
        ));
    }
    overall
}

/// Each step of both runs (matched by name): its figures, and its tests added to `tests`.
fn step_comparisons(
    b: &Results,
    c: &Results,
    opts: &Options,
    tests: &mut Vec<Test>,
) -> Vec<StepFigures> {
    // Steps are matched by name; with one step the overall figures already say it all.
    let mut steps = Vec::new();
    if b.steps.len() > 1 || c.steps.len() > 1 {
        for (bi, bs) in b.steps.iter().enumerate() {
            let Some((ci, cs)) = c.steps.iter().enumerate().find(|(_, s)| s.name == bs.name) else {
                continue;
            };
            let mut figures = vec![
                figure(
                    "throughput",
                    "per_s",
                    bs.rate_per_s,
                    cs.rate_per_s,
                    Worse::Lower,
                ),
                figure(
                    "errors",
                    "count",
                    bs.errors_total as f64,
                    cs.errors_total as f64,
                    Worse::Higher,
                ),
            ];
            figures.extend(latency_figures(
                &bs.latency_us,
                &cs.latency_us,
                Some((bs.latency_p95_us, cs.latency_p95_us)),
            ));
            steps.push(StepFigures {
                step: bs.name.clone(),
                figures,
            });
            let step_series = |r: &Results, i: usize, p99: bool| -> Vec<f64> {
                seconds(r)
                    .filter_map(|iv| iv.steps.get(i))
                    .filter(|s| s.requests > 0)
                    .map(|s| {
                        if p99 {
                            s.latency_p99_us as f64
                        } else {
                            s.latency_p50_us as f64
                        }
                    })
                    .collect()
            };
            for (metric, p99) in [("p50", false), ("p99", true)] {
                tests.push(test(
                    Series {
                        scope: &bs.name,
                        metric,
                        unit: "us",
                        worse: Worse::Higher,
                        baseline: step_series(b, bi, p99),
                        candidate: step_series(c, ci, p99),
                    },
                    opts,
                ));
            }
        }
    }
    steps
}

/// Compares `candidate` against `baseline`.
pub fn compare(baseline: &Labeled, candidate: &Labeled, opts: &Options) -> Comparison {
    let (b, c) = (baseline.results, candidate.results);
    let overall = overall_figures(b, c);
    let mut tests = overall_tests(b, c, opts);
    let steps = step_comparisons(b, c, opts, &mut tests);
    let regression = tests.iter().any(|t| t.verdict == Verdict::Regression);
    let summary = summarize(&tests, opts);
    Comparison {
        schema: SCHEMA.into(),
        baseline: info(baseline),
        candidate: info(candidate),
        tolerance: opts.tolerance,
        error_tolerance: opts.error_tolerance,
        confidence: opts.confidence,
        method: format!(
            "per-second medians (means for error rates), bootstrap {:.0}% confidence interval of the change ({} resamples); a regression is an interval wholly beyond the tolerance",
            opts.confidence * 100.0,
            opts.resamples
        ),
        overall,
        steps,
        warnings: warnings(b, c, baseline, candidate),
        tests,
        regression,
        summary,
    }
}

/// A test's change for people: `+12.3%` or `+0.50 pp`.
pub fn format_change(t_relative: bool, x: f64) -> String {
    if !x.is_finite() {
        return if x > 0.0 { "+∞".into() } else { "n/a".into() };
    }
    if t_relative {
        format!("{:+.1}%", x * 100.0)
    } else {
        format!("{:+.2} pp", x * 100.0)
    }
}

fn summarize(tests: &[Test], opts: &Options) -> String {
    let pct = |t: &Test| {
        format!(
            "{} {} {} ({:.0}% CI {} … {})",
            t.scope,
            t.metric,
            format_change(t.relative, t.change),
            opts.confidence * 100.0,
            format_change(t.relative, t.change_low),
            format_change(t.relative, t.change_high)
        )
    };
    let of = |v: Verdict| tests.iter().filter(move |t| t.verdict == v);
    let regressions: Vec<String> = of(Verdict::Regression).map(pct).collect();
    if !regressions.is_empty() {
        return format!(
            "REGRESSION beyond the {:.0}% tolerance: {}",
            opts.tolerance * 100.0,
            regressions.join("; ")
        );
    }
    if tests.iter().all(|t| t.verdict == Verdict::Insufficient) {
        return format!("No verdict: each run needs at least {MIN_SECONDS} seconds with responses");
    }
    let improvements: Vec<String> = of(Verdict::Improvement).map(pct).collect();
    let inconclusive = of(Verdict::Inconclusive).count();
    let mut s = "No significant regression".to_string();
    if !improvements.is_empty() {
        s.push_str(&format!("; improved: {}", improvements.join("; ")));
    }
    if inconclusive > 0 {
        s.push_str(&format!(
            "; {inconclusive} metric(s) inconclusive (the noise is wider than the tolerance: longer or repeated runs would tell)"
        ));
    }
    s
}

fn warnings(b: &Results, c: &Results, bl: &Labeled, cl: &Labeled) -> Vec<String> {
    let mut w = Vec::new();
    for (r, l) in [(b, bl), (c, cl)] {
        if !r.trustworthy {
            w.push(format!(
                "{}: the load generator limited this run; its latencies are lower bounds ({})",
                l.label,
                r.warnings.join(" ")
            ));
        }
    }
    if b.target != c.target {
        w.push(format!("the targets differ: {} and {}", b.target, c.target));
    }
    if let (Some(x), Some(y)) = (
        &b.environment.scenario_sha256,
        &c.environment.scenario_sha256,
    ) {
        if x != y {
            w.push("the runs used different scenario files (SHA-256 differs)".into());
        }
    }
    if load(b) != load(c) {
        w.push(format!(
            "the load differs ({} and {}): latency depends on load, so compare like with like",
            load(b),
            load(c)
        ));
    }
    if b.latency_basis != c.latency_basis {
        w.push("one run measured corrected latency (open model) and the other service time (closed model)".into());
    }
    let (nb, nc) = (seconds(b).count(), seconds(c).count());
    if nb.min(nc) < ROUGH_SECONDS {
        w.push(format!(
            "only {nb} and {nc} seconds to sample: the noise estimate is rough; runs of 30 s or more give a dependable verdict"
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::series::judge;
    use super::*;
    use crate::report::fixture;

    fn scaled(r: &Results, latency: f64, seconds: u64) -> Results {
        let mut r = r.clone();
        let template = r.intervals.clone();
        r.intervals = (0..seconds)
            .map(|k| {
                let mut i = template[0].clone();
                i.t_s = (k + 1) as f64;
                // A little noise that differs by second.
                let wobble = 1.0 + ((k * 7919) % 11) as f64 / 200.0;
                let s = |v: u64| (v as f64 * latency * wobble) as u64;
                i.latency_p50_us = s(i.latency_p50_us);
                i.latency_p99_us = s(i.latency_p99_us);
                for st in &mut i.steps {
                    st.latency_p50_us = s(st.latency_p50_us);
                    st.latency_p99_us = s(st.latency_p99_us);
                }
                i
            })
            .collect();
        r.latency_us.p99 = (r.latency_us.p99 as f64 * latency) as u64;
        r
    }

    fn run(b: &Results, c: &Results) -> Comparison {
        compare(
            &Labeled {
                label: "base.json",
                results: b,
            },
            &Labeled {
                label: "cand.json",
                results: c,
            },
            &Options::default(),
        )
    }

    #[test]
    fn same_runs_do_not_regress() {
        let r = scaled(&fixture::results(), 1.0, 20);
        let cmp = run(&r, &r);
        assert!(!cmp.regression, "{}", cmp.summary);
        assert!(
            cmp.tests.iter().all(|t| t.verdict == Verdict::Unchanged),
            "{:#?}",
            cmp.tests
        );
        assert!(cmp.summary.starts_with("No significant regression"));
        // Per step too: two steps, p50 and p99 each.
        assert_eq!(cmp.tests.len(), 4 + 4);
        assert_eq!(cmp.steps.len(), 2);
    }

    #[test]
    fn slower_runs_regress_and_faster_ones_improve() {
        let base = scaled(&fixture::results(), 1.0, 20);
        let slow = scaled(&fixture::results(), 1.5, 20);
        let cmp = run(&base, &slow);
        assert!(cmp.regression);
        let p99 = cmp
            .tests
            .iter()
            .find(|t| t.scope == "overall" && t.metric == "p99")
            .unwrap();
        assert_eq!(p99.verdict, Verdict::Regression);
        assert!(p99.change_low > 0.3 && p99.change_high < 0.7, "{p99:?}");
        assert!(cmp.summary.starts_with("REGRESSION"), "{}", cmp.summary);
        let back = run(&slow, &base);
        assert!(!back.regression);
        assert!(back.tests.iter().any(|t| t.verdict == Verdict::Improvement));
    }

    #[test]
    fn a_small_change_within_tolerance_is_not_a_regression() {
        let base = scaled(&fixture::results(), 1.0, 30);
        let bit = scaled(&fixture::results(), 1.04, 30);
        let cmp = run(&base, &bit);
        assert!(!cmp.regression, "{}", cmp.summary);
    }

    #[test]
    fn too_few_seconds_give_no_verdict() {
        let base = scaled(&fixture::results(), 1.0, 2);
        let slow = scaled(&fixture::results(), 3.0, 2);
        let cmp = run(&base, &slow);
        assert!(!cmp.regression);
        assert!(cmp.tests.iter().all(|t| t.verdict == Verdict::Insufficient));
        assert!(cmp.summary.starts_with("No verdict"), "{}", cmp.summary);
        assert!(cmp
            .warnings
            .iter()
            .any(|w| w.contains("only 2 and 2 seconds")));
    }

    #[test]
    fn errors_are_judged_in_percentage_points() {
        let base = scaled(&fixture::results(), 1.0, 20);
        let mut bad = base.clone();
        for i in &mut bad.intervals {
            i.errors += 20;
        }
        let cmp = run(&base, &bad);
        let e = cmp.tests.iter().find(|t| t.metric == "error rate").unwrap();
        assert_eq!(e.verdict, Verdict::Regression, "{e:?}");
        assert!(!e.relative);
        assert_eq!(format_change(false, 0.0123), "+1.23 pp");
        assert_eq!(format_change(true, -0.5), "-50.0%");
    }

    #[test]
    fn judging_an_interval() {
        assert_eq!(judge(0.2, 0.4, 0.1, Worse::Higher), Verdict::Regression);
        assert_eq!(judge(0.05, 0.4, 0.1, Worse::Higher), Verdict::Inconclusive);
        assert_eq!(judge(-0.05, 0.05, 0.1, Worse::Higher), Verdict::Unchanged);
        assert_eq!(judge(-0.4, -0.2, 0.1, Worse::Higher), Verdict::Improvement);
        // Throughput: lower is worse.
        assert_eq!(judge(-0.4, -0.2, 0.1, Worse::Lower), Verdict::Regression);
    }
}
