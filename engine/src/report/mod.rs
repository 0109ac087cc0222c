//! Reports people read, rendered from a run's [`Results`]: the text summary `loadctl` prints,
//! one self-contained HTML page with inline SVG charts, Markdown for pull-request comments, CSV
//! series, HdrHistogram interval logs (`.hlog`), and the comparison of two runs ([`compare`]).
//! The per-step table's columns are defined once, in [`step_columns`].
//!
//! Renderers are pure functions from `Results` (and, for `.hlog`, the histograms the caller
//! passes) to text: they never run anything, read files or touch the network, and a page they
//! write loads nothing from anywhere. They refuse to invent figures a result does not hold:
//! what is missing (an older result without a latency distribution) is shown as missing.

pub mod capacity;
mod charts;
pub mod compare;
pub mod csv;
pub mod hlog;
pub mod html;
pub mod markup;
pub mod md;
pub mod step_columns;
mod svg;
pub mod text;

use std::path::Path;

use crate::results::Results;
use crate::units::format_us;

/// What a report is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The result itself (schema `loadd.results.v1`).
    Json,
    Html,
    Markdown,
    /// The per-second time series, one row per interval.
    Csv,
    /// One row per journey step.
    StepsCsv,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Json,
        Format::Html,
        Format::Markdown,
        Format::Csv,
        Format::StepsCsv,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Html => "html",
            Format::Markdown => "md",
            Format::Csv => "csv",
            Format::StepsCsv => "steps-csv",
        }
    }

    /// `json`, `html`, `md` (or `markdown`), `csv`, `steps-csv`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "markdown" => Some(Format::Markdown),
            n => Self::ALL.into_iter().find(|f| f.name() == n),
        }
    }

    /// By file extension: `.json`, `.html`/`.htm`, `.md`/`.markdown`, `.csv`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "htm" => Some(Format::Html),
            "csv" => Some(Format::Csv),
            e => Self::from_name(e).filter(|f| *f != Format::StepsCsv),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Html => "text/html; charset=utf-8",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Csv | Format::StepsCsv => "text/csv; charset=utf-8",
        }
    }
}

/// Renders `results` as `format`.
pub fn render(results: &Results, format: Format) -> String {
    match format {
        Format::Json => {
            let mut json = serde_json::to_string_pretty(results).unwrap_or_default();
            json.push('\n');
            json
        }
        Format::Html => html::render(results, &html::Page::default()),
        Format::Markdown => md::render(results),
        Format::Csv => csv::intervals(&results.intervals),
        Format::StepsCsv => csv::steps(results),
    }
}

/// How a run ended, for the line a report opens with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// An `abort_on_fail` threshold stopped the run.
    Aborted,
    /// No thresholds: figures, but no pass/fail.
    NoThresholds,
}

/// The answer first: outcome and one sentence.
pub struct Verdict {
    pub outcome: Outcome,
    pub headline: String,
}

pub fn verdict(r: &Results) -> Verdict {
    let failed = r.thresholds.iter().filter(|t| !t.passed).count();
    let total = r.thresholds.len();
    let (outcome, headline) = if let Some(t) = &r.aborted_by {
        (
            Outcome::Aborted,
            format!("ABORTED: threshold `{t}` failed and stopped the run early"),
        )
    } else if r.thresholds_failed {
        (
            Outcome::Failed,
            format!("FAIL: {failed} of {total} thresholds failed"),
        )
    } else if total > 0 {
        (
            Outcome::Passed,
            format!(
                "PASS: {}",
                if total == 1 {
                    "the threshold passed".to_string()
                } else {
                    format!("all {total} thresholds passed")
                }
            ),
        )
    } else {
        (
            Outcome::NoThresholds,
            "No thresholds were set: the figures below carry no pass/fail verdict".into(),
        )
    };
    Verdict { outcome, headline }
}

/// Errors ÷ attempts, as thresholds count it: transport failures have no response, so they
/// add to the attempts; 4xx/5xx responses are already counted as requests.
pub fn error_rate(r: &Results) -> f64 {
    let status = ["status_4xx", "status_5xx"]
        .iter()
        .filter_map(|k| r.errors.get(*k).and_then(serde_json::Value::as_u64))
        .sum::<u64>();
    let attempts = r.requests + r.errors_total.saturating_sub(status);
    if attempts == 0 {
        0.0
    } else {
        r.errors_total as f64 / attempts as f64
    }
}

/// Plain-language notes on where the load generator itself limited the run. Empty when it
/// kept its schedule; the first note says what that means for the figures.
pub fn generator_limits(r: &Results) -> Vec<String> {
    let mut notes = Vec::new();
    if !r.trustworthy {
        notes.push(
            "loadd could not run this test exactly as planned, so the latency figures are lower \
             bounds: the real ones may be worse. Why:"
                .to_string(),
        );
        notes.extend(r.warnings.iter().cloned());
        return notes;
    }
    if r.late > 0 {
        let sent = r.schedule_lag_us.count.max(1);
        notes.push(format!(
            "{} requests ({:.2}% of those scheduled) left more than 2 ms after their intended \
             time (schedule lag p99 {}, max {}). Their latency still counts from the intended \
             time, so nothing is hidden; this stayed under the 1% that would make the run \
             untrustworthy.",
            r.late,
            100.0 * r.late as f64 / sent as f64,
            format_us(r.schedule_lag_us.p99),
            format_us(r.schedule_lag_us.max)
        ));
    }
    notes
}

/// `1234567` → `1,234,567`.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `12.5` → `12.5`, `12.0` → `12`: rates and figures without trailing noise.
pub(crate) fn trim(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Unix milliseconds as `2024-05-01 12:34:56 UTC`; empty for 0 (unknown).
pub(crate) fn format_utc(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return String::new();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// How the latency was measured, in a sentence.
pub(crate) fn latency_basis_sentence(r: &Results) -> &'static str {
    if r.latency_basis == "intended" {
        "Latency counts from each request's intended start time on the schedule, so waiting \
         caused by a slow target is included (coordinated omission corrected); \"uncorrected\" \
         counts from when the request was actually sent."
    } else {
        "Closed model: each connection sends its next request only after the previous answer, \
         so latency is service time and a slow target also slows the load (coordinated \
         omission is not corrected). Use an open model (a fixed rate) to see the latency users \
         would see."
    }
}

/// p95 of the whole run, from the distribution (absent in results written before it existed).
pub(crate) fn p95_us(r: &Results) -> Option<u64> {
    r.latency_distribution
        .iter()
        .find(|p| (p.percentile - 95.0).abs() < 1e-9)
        .map(|p| p.corrected_us)
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A real `Results`, built by the engine from recorded samples, for the renderers' tests.
    use crate::metrics::stats::StatsSet;
    use crate::metrics::ErrorKind;
    use crate::results::{IntervalSummary, ModelSummary, Results, RunFacts};

    /// Two steps, three seconds, open model; latencies grow over time and a few errors.
    pub fn results() -> Results {
        let mut total = StatsSet::new(2, 1);
        let mut intervals = Vec::new();
        for second in 1..=3u64 {
            let mut set = StatsSet::new(2, 1);
            for i in 0..200u64 {
                let step = (i % 2) as usize;
                let intended = second * 1_000_000_000 + i * 5_000_000;
                let sent = intended + if i == 100 { 3_000_000 } else { 10_000 };
                set.steps[step].record_send_lag(intended, sent);
                let done = sent + (i + 1) * 10_000 * second;
                set.steps[step].record_response(
                    if i == 7 { 503 } else { 200 },
                    Some(intended),
                    sent,
                    done,
                );
            }
            set.steps[1].record_error(ErrorKind::Timeout);
            set.journeys[0].count += 100;
            intervals.push(IntervalSummary::of(second, &set, 4, Some(200.0)));
            total.merge(&set);
        }
        let mut r = Results::build(
            &total,
            intervals,
            RunFacts {
                target: "http://127.0.0.1:8080/<api>".into(),
                driver: "io_uring".into(),
                cpus: vec![0, 1],
                model: ModelSummary {
                    kind: "open".into(),
                    connections: 4,
                    duration_s: Some(3.0),
                    requests: None,
                    rate_per_s: Some(200.0),
                    h2_streams: None,
                    ramp_s: None,
                },
                open: true,
                elapsed_s: 3.0,
                rate_basis_s: 3.0,
                warnings: vec![],
                shards: 2,
                step_names: vec!["login".into(), "read \"items\"".into()],
                requested_rate_per_s: Some(200.0),
                scenarios: Vec::new(),
                tls: None,
                websocket: false,
            },
        );
        r.thresholds = vec![
            crate::results::verdict::ThresholdResult {
                threshold: "p99 < 5ms".into(),
                passed: true,
                actual: 4000.0,
                limit: 5000.0,
                unit: "us".into(),
            },
            crate::results::verdict::ThresholdResult {
                threshold: "error_rate < 0.1%".into(),
                passed: false,
                actual: 0.01,
                limit: 0.001,
                unit: "fraction".into(),
            },
        ];
        r.thresholds_failed = true;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_name_and_extension() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_path(Path::new("a/b.HTML")), Some(Format::Html));
        assert_eq!(Format::from_path(Path::new("r.md")), Some(Format::Markdown));
        assert_eq!(Format::from_path(Path::new("r.csv")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("r.json")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("r.txt")), None);
        assert_eq!(Format::from_path(Path::new("r")), None);
    }

    #[test]
    fn verdicts_and_error_rate() {
        let mut r = fixture::results();
        let v = verdict(&r);
        assert_eq!(v.outcome, Outcome::Failed);
        assert_eq!(v.headline, "FAIL: 1 of 2 thresholds failed");
        // 3 timeouts (no response) and one 503 per second among 600 responses.
        assert_eq!(r.errors_total, 6);
        assert!((error_rate(&r) - 6.0 / 603.0).abs() < 1e-12);
        r.thresholds.clear();
        r.thresholds_failed = false;
        assert_eq!(verdict(&r).outcome, Outcome::NoThresholds);
        r.aborted_by = Some("p99 < 1ms".into());
        assert_eq!(verdict(&r).outcome, Outcome::Aborted);
    }

    #[test]
    fn generator_limits_say_why() {
        let mut r = fixture::results();
        assert!(r.trustworthy, "{:?}", r.warnings);
        // One request a second left 3 ms late: 0.5%, said but not alarming.
        let notes = generator_limits(&r);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("3 requests (0.50% "), "{notes:?}");
        r.trustworthy = false;
        r.warnings = vec!["the schedule fell behind".into()];
        let notes = generator_limits(&r);
        assert!(notes[0].contains("lower bounds"), "{notes:?}");
        assert_eq!(notes[1], "the schedule fell behind");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(group(0), "0");
        assert_eq!(group(1234), "1,234");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(trim(12.0), "12");
        assert_eq!(trim(12.345), "12.35");
        assert_eq!(format_utc(0), "");
        assert_eq!(format_utc(86_400_000 + 1500), "1970-01-02 00:00:01 UTC");
    }
}
