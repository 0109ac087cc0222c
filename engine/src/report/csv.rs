//! CSV for spreadsheets and plotting tools: the per-second time series (one row per interval)
//! and the per-step summary (one row per step). Latencies are integer microseconds; columns
//! are named with their unit.
//!
//! The interval series keeps a fixed column set (plus `errors_<kind>` for each kind that
//! occurred, and `step_<i>_<field>` per journey step) so a header can be relied on.

use super::step_columns;
use crate::metrics::ErrorKind;
use crate::results::{IntervalSummary, Results};

const INTERVAL_FIELDS: [&str; 14] = [
    "interval",
    "t_s",
    "requests",
    "rate_per_s",
    "requested_per_s",
    "errors",
    "latency_p50_us",
    "latency_p90_us",
    "latency_p99_us",
    "latency_p999_us",
    "latency_max_us",
    "service_p99_us",
    "lag_p99_us",
    "active_connections",
];

fn finish(w: csv::Writer<Vec<u8>>) -> String {
    // Writing to a Vec cannot fail, and every field is UTF-8.
    w.into_inner()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// One row per second: `interval` (1-based), the run's figures for that second, errors by
/// kind, then each journey step's figures (`step_0_…` in the order of `Results.steps`).
pub fn intervals(intervals: &[IntervalSummary]) -> String {
    let kinds: Vec<&str> = ErrorKind::ALL
        .iter()
        .map(|k| k.name())
        .filter(|k| intervals.iter().any(|i| i.errors_by_kind.contains_key(*k)))
        .collect();
    let steps = intervals.iter().map(|i| i.steps.len()).max().unwrap_or(0);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = INTERVAL_FIELDS.iter().map(|f| f.to_string()).collect();
    header.extend(kinds.iter().map(|k| format!("errors_{k}")));
    for i in 0..steps {
        header.extend(
            step_columns::INTERVAL
                .iter()
                .map(|c| format!("step_{i}_{}", c.key)),
        );
    }
    let _ = w.write_record(&header);
    for (n, iv) in intervals.iter().enumerate() {
        let mut row: Vec<String> = vec![
            (n + 1).to_string(),
            iv.t_s.to_string(),
            iv.requests.to_string(),
            iv.rate_per_s.to_string(),
            iv.requested_per_s
                .map(|r| r.to_string())
                .unwrap_or_default(),
            iv.errors.to_string(),
            iv.latency_p50_us.to_string(),
            iv.latency_p90_us.to_string(),
            iv.latency_p99_us.to_string(),
            iv.latency_p999_us.to_string(),
            iv.latency_max_us.to_string(),
            iv.service_p99_us.to_string(),
            iv.lag_p99_us.to_string(),
            iv.active_connections.to_string(),
        ];
        row.extend(kinds.iter().map(|k| {
            iv.errors_by_kind
                .get(*k)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
                .to_string()
        }));
        for i in 0..steps {
            let step = iv.steps.get(i);
            row.extend(
                step_columns::INTERVAL
                    .iter()
                    .map(|c| step.map(|s| (c.value)(s).to_string()).unwrap_or_default()),
            );
        }
        let _ = w.write_record(&row);
    }
    finish(w)
}

/// One row per journey step, with the run's whole-run figures: every step column.
pub fn steps(r: &Results) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = std::iter::once("step").chain(step_columns::ALL.iter().map(|c| c.key));
    let _ = w.write_record(header);
    for s in &r.steps {
        let figures = step_columns::ALL.iter().map(|c| (c.value)(s).raw());
        let _ = w.write_record(std::iter::once(s.name.clone()).chain(figures));
    }
    finish(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn parse(text: &str) -> (csv::StringRecord, Vec<csv::StringRecord>) {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header = r.headers().unwrap().clone();
        let rows = r.records().map(Result::unwrap).collect();
        (header, rows)
    }

    #[test]
    fn interval_series_round_trips() {
        let r = fixture::results();
        let text = intervals(&r.intervals);
        let (header, rows) = parse(&text);
        assert!(text.starts_with("interval,t_s,requests,"), "{text}");
        assert_eq!(rows.len(), 3);
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        assert_eq!(&rows[0][col("requests")], "200");
        assert_eq!(&rows[1][col("errors_timeout")], "1");
        assert_eq!(&rows[2][col("errors_status_5xx")], "1");
        assert_eq!(&rows[0][col("step_1_requests")], "100");
        assert_eq!(&rows[0][col("requested_per_s")], "200");
        assert_eq!(
            rows[0][col("latency_p99_us")].parse::<u64>().unwrap(),
            r.intervals[0].latency_p99_us
        );
        assert_eq!(intervals(&[]).lines().count(), 1);
    }

    #[test]
    fn steps_quote_names() {
        let r = fixture::results();
        let (header, rows) = parse(&steps(&r));
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[1][0], "read \"items\"");
        assert_eq!(&header[8], "latency_p95_us");
        assert_eq!(
            rows[0][8].parse::<u64>().unwrap(),
            r.steps[0].latency_p95_us
        );
    }
}
