//! Renders what the API serves besides JSON: a run's reports (delegated to the engine's
//! renderers in `engine::report`: HTML with charts, Markdown, per-interval and per-step CSV)
//! and the Prometheus text exposition.
//!
//! Stored JSON is read back as the engine's types; what no longer has that shape (a result
//! written by another version, intervals of a run killed mid-write) is still served, as a
//! generic table or pretty JSON, never as an error.

use std::fmt::Write as _;

use engine::report::{self as engine_report, markup::escape, step_columns, Format};
use engine::results::IntervalSummary;
use engine::Results;
use serde_json::Value;

use crate::store::{RunMeta, RunState};

/// A stored result as the engine's `Results`, when it has that shape.
pub fn typed(result: Option<&Value>) -> Option<Results> {
    result.and_then(|r| serde_json::from_value(r.clone()).ok())
}

/// The per-interval time series: the engine's CSV when every stored interval has the engine's
/// shape, a generic wide table otherwise.
pub fn render_csv(intervals: &[Value]) -> String {
    let typed: Result<Vec<IntervalSummary>, _> = intervals
        .iter()
        .map(|v| serde_json::from_value(v.clone()))
        .collect();
    match typed {
        Ok(t) => engine_report::csv::intervals(&t),
        Err(_) => render_csv_generic(intervals),
    }
}

/// A finished run's result in a document format (Markdown, HTML, steps CSV); a run without a
/// result gets a short note (HTML: its intervals) instead.
pub fn render_document(
    format: Format,
    meta: &RunMeta,
    intervals: &[Value],
    result: Option<&Value>,
) -> String {
    let heading = format!("loadd run {}", meta.id);
    let note = format!(
        "state {}{}",
        meta.state.name(),
        meta.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    match (typed(result), format) {
        (Some(r), Format::Html) => engine_report::html::render(
            &r,
            &engine_report::html::Page {
                heading: Some(heading),
                note: Some(note),
            },
        ),
        (Some(r), f) => engine_report::render(&r, f),
        (None, Format::Html) => render_html_without_result(meta, intervals, result),
        (None, Format::Markdown) => format!(
            "### {heading}\n\nNo result to report ({note}): {} interval(s) were recorded.\n",
            intervals.len()
        ),
        (None, _) => String::new(),
    }
}

/// Per-interval time series, wide, from whatever the stored intervals hold: a header from the
/// first interval's scalar fields, then `step_<i>_<field>` for each journey step (the engine's
/// per-second step columns).
fn render_csv_generic(intervals: &[Value]) -> String {
    let first = intervals.first().and_then(Value::as_object);
    let columns: Vec<String> = first
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_object() && !v.is_array())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let steps = intervals
        .iter()
        .filter_map(|iv| iv.get("steps").and_then(Value::as_array))
        .map(Vec::len)
        .max()
        .unwrap_or(0);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["interval".to_string()];
    header.extend(columns.iter().cloned());
    for i in 0..steps {
        header.extend(
            step_columns::INTERVAL
                .iter()
                .map(|c| format!("step_{i}_{}", c.key)),
        );
    }
    let _ = w.write_record(&header);
    for (n, iv) in intervals.iter().enumerate() {
        let mut row = vec![(n + 1).to_string()];
        row.extend(columns.iter().map(|c| field(iv.get(c))));
        for i in 0..steps {
            let step = iv.get("steps").and_then(|s| s.get(i));
            row.extend(
                step_columns::INTERVAL
                    .iter()
                    .map(|c| field(step.and_then(|s| s.get(c.key)))),
            );
        }
        let _ = w.write_record(&row);
    }
    // Writing to a Vec cannot fail, and every field is UTF-8.
    w.into_inner()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A stored JSON value as a CSV field: strings as they are, nothing for null or absent.
fn field(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// A run without a (readable) result: its facts, whatever result JSON there is, and the
/// intervals recorded.
fn render_html_without_result(
    meta: &RunMeta,
    intervals: &[Value],
    result: Option<&Value>,
) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>loadd run {id}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f4f4f4;padding:1em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style>\
         </head><body>\n<h1>loadd run {id}</h1>\n<p>State: <b>{state}</b> &middot; target {target}</p>\n",
        id = escape(&meta.id),
        state = meta.state.name(),
        target = escape(&meta.target),
    );
    if let Some(e) = &meta.error {
        let _ = writeln!(o, "<p>Note: {}</p>", escape(e));
    }
    match result {
        Some(r) => {
            let _ = writeln!(
                o,
                "<h2>Summary</h2>\n<pre>{}</pre>",
                escape(&serde_json::to_string_pretty(r).unwrap_or_default())
            );
        }
        None => {
            let _ = writeln!(
                o,
                "<p>No final result: the figures below are the intervals recorded.</p>"
            );
        }
    }
    let csv = render_csv(intervals);
    let _ = writeln!(o, "<h2>Intervals</h2>\n<table>");
    for (n, line) in csv.lines().enumerate() {
        let cell = if n == 0 { "th" } else { "td" };
        o.push_str("<tr>");
        for field in line.split(',') {
            let _ = write!(o, "<{cell}>{}</{cell}>", escape(field));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n</body></html>\n");
    o
}

/// What `/metrics` needs about the registry, copied out under the lock.
pub struct MetricsSnapshot {
    pub runs_by_state: Vec<(RunState, u64)>,
    /// The running run, if any.
    pub current: Option<CurrentRun>,
}

/// The running run as `/metrics` shows it.
pub struct CurrentRun {
    pub id: String,
    /// Its last interval, if one arrived.
    pub last: Option<Value>,
    /// Journey step names (label `step`).
    pub steps: Vec<String>,
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition format 0.0.4.
pub fn render_metrics(s: &MetricsSnapshot) -> String {
    let mut o = String::new();
    o.push_str("# HELP loadd_runs Runs known to this daemon, by state.\n# TYPE loadd_runs gauge\n");
    for (state, n) in &s.runs_by_state {
        let _ = writeln!(o, "loadd_runs{{state=\"{}\"}} {n}", state.name());
    }
    let Some(CurrentRun { id, last, steps }) = &s.current else {
        return o;
    };
    let id = label(id);
    let num = |k: &str| last.as_ref().and_then(|v| v.get(k)).and_then(Value::as_f64);
    let gauges = [
        (
            "loadd_run_rate_per_s",
            "Responses per second in the last interval.",
            "rate_per_s",
        ),
        ("loadd_run_errors", "Errors in the last interval.", "errors"),
        (
            "loadd_run_active_connections",
            "Open connections in the last interval.",
            "active_connections",
        ),
    ];
    for (name, help, key) in gauges {
        if let Some(v) = num(key) {
            let _ = write!(
                o,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{run=\"{id}\"}} {v}\n"
            );
        }
    }
    if let Some(kinds) = last
        .as_ref()
        .and_then(|v| v.get("errors_by_kind"))
        .and_then(Value::as_object)
        .filter(|k| !k.is_empty())
    {
        o.push_str("# HELP loadd_run_errors_by_kind Errors in the last interval, by kind.\n# TYPE loadd_run_errors_by_kind gauge\n");
        for (kind, n) in kinds {
            let _ = writeln!(
                o,
                "loadd_run_errors_by_kind{{run=\"{id}\",kind=\"{}\"}} {n}",
                label(kind)
            );
        }
    }
    render_step_metrics(&mut o, &id, steps, last.as_ref());
    let quantiles = [
        ("0.5", "latency_p50_us"),
        ("0.9", "latency_p90_us"),
        ("0.99", "latency_p99_us"),
        ("0.999", "latency_p999_us"),
        ("1", "latency_max_us"),
    ];
    let present: Vec<_> = quantiles
        .iter()
        .filter_map(|(q, k)| num(k).map(|v| (q, v)))
        .collect();
    if !present.is_empty() {
        o.push_str("# HELP loadd_run_latency_us Corrected latency quantiles of the last interval, microseconds.\n# TYPE loadd_run_latency_us gauge\n");
        for (q, v) in present {
            let _ = writeln!(
                o,
                "loadd_run_latency_us{{run=\"{id}\",quantile=\"{q}\"}} {v}"
            );
        }
    }
    o
}

/// Per-step series of the last interval: `step="name"` beside `run`.
fn render_step_metrics(o: &mut String, id: &str, names: &[String], last: Option<&Value>) {
    let Some(steps) = last.and_then(|v| v.get("steps")).and_then(Value::as_array) else {
        return;
    };
    if steps.is_empty() {
        return;
    }
    let name = |i: usize| label(names.get(i).map_or("", String::as_str));
    let series = [
        (
            "loadd_run_step_requests",
            "Requests of each journey step in the last interval.",
            "requests",
        ),
        (
            "loadd_run_step_errors",
            "Errors of each journey step in the last interval.",
            "errors",
        ),
        (
            "loadd_run_step_checks_failed",
            "Failed checks of each journey step in the last interval.",
            "checks_failed",
        ),
    ];
    for (metric, help, key) in series {
        let _ = write!(o, "# HELP {metric} {help}\n# TYPE {metric} gauge\n");
        for (i, s) in steps.iter().enumerate() {
            if let Some(v) = s.get(key).and_then(Value::as_f64) {
                let _ = writeln!(o, "{metric}{{run=\"{id}\",step=\"{}\"}} {v}", name(i));
            }
        }
    }
    o.push_str("# HELP loadd_run_step_latency_us Corrected latency quantiles of each journey step in the last interval, microseconds.\n# TYPE loadd_run_step_latency_us gauge\n");
    for (i, s) in steps.iter().enumerate() {
        for (q, key) in [("0.5", "latency_p50_us"), ("0.99", "latency_p99_us")] {
            if let Some(v) = s.get(key).and_then(Value::as_f64) {
                let _ = writeln!(
                    o,
                    "loadd_run_step_latency_us{{run=\"{id}\",step=\"{}\",quantile=\"{q}\"}} {v}",
                    name(i)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_follows_the_first_interval() {
        let ivs = [
            json!({"t_s": 1.0, "requests": 10, "other": [1], "name": "a,b"}),
            json!({"t_s": 2.0, "requests": 12, "name": "c"}),
        ];
        let csv = render_csv(&ivs);
        assert_eq!(
            csv,
            "interval,name,requests,t_s\n1,\"a,b\",10,1.0\n2,c,12,2.0\n"
        );
        assert!(render_csv(&[]).starts_with("interval,t_s,requests,"));
        let steps = [json!({"t_s": 1.0, "steps": [
            {"requests": 3, "errors": 0, "checks_failed": 0, "latency_p50_us": 5, "latency_p99_us": 9},
            {"requests": 2, "errors": 1, "checks_failed": 1, "latency_p50_us": 6, "latency_p99_us": 8}
        ]})];
        assert_eq!(
            render_csv(&steps),
            "interval,t_s,step_0_requests,step_0_errors,step_0_checks_failed,step_0_latency_p50_us,step_0_latency_p99_us,\
             step_1_requests,step_1_errors,step_1_checks_failed,step_1_latency_p50_us,step_1_latency_p99_us\n\
             1,1.0,3,0,0,5,9,2,1,1,6,8\n"
        );
    }

    fn meta(state: RunState) -> RunMeta {
        RunMeta {
            id: "x".into(),
            state,
            created_unix_ms: 0,
            target: "http://h/<script>".into(),
            stop_requested: false,
            error: None,
            steps: Vec::new(),
            requested_rate_per_s: None,
        }
    }

    #[test]
    fn html_escapes() {
        let page = render_document(
            Format::Html,
            &meta(RunState::Aborted),
            &[json!({"t_s": 1.0})],
            None,
        );
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
        let md = render_document(Format::Markdown, &meta(RunState::Aborted), &[], None);
        assert!(md.contains("No result to report (state aborted)"), "{md}");
    }

    #[test]
    fn results_render_through_the_engine() {
        use engine::metrics::stats::StatsSet;
        use engine::results::{ModelSummary, RunFacts};
        let mut set = StatsSet::new(1, 1);
        set.steps[0].record_response(200, None, 0, 1_500_000);
        let interval = IntervalSummary::of(1, &set, 1, None);
        let results = Results::build(
            &set,
            vec![interval.clone()],
            RunFacts {
                target: "http://127.0.0.1:1/".into(),
                driver: "legacy".into(),
                cpus: vec![],
                model: ModelSummary {
                    kind: "closed".into(),
                    connections: 1,
                    duration_s: Some(1.0),
                    requests: None,
                    rate_per_s: None,
                    h2_streams: None,
                    ramp_s: None,
                },
                open: false,
                elapsed_s: 1.0,
                rate_basis_s: 1.0,
                warnings: vec![],
                shards: 1,
                step_names: vec!["GET /".into()],
                requested_rate_per_s: None,
                scenarios: Vec::new(),
                tls: None,
                websocket: false,
            },
        );
        let stored = serde_json::to_value(&results).unwrap();
        let intervals = [serde_json::to_value(&interval).unwrap()];
        let page = render_document(
            Format::Html,
            &meta(RunState::Finished),
            &intervals,
            Some(&stored),
        );
        assert!(page.contains("<h1>loadd run x</h1>") && page.contains("state finished"));
        assert!(page.contains("data-chart=\"chart-percentiles\""));
        let md = render_document(
            Format::Markdown,
            &meta(RunState::Finished),
            &[],
            Some(&stored),
        );
        assert!(md.contains("| Requests | 1 |"), "{md}");
        let csv = render_csv(&intervals);
        assert!(csv.starts_with("interval,t_s,requests,"), "{csv}");
        assert_eq!(csv.lines().count(), 2, "{csv}");
    }

    #[test]
    fn metrics_text() {
        let s = MetricsSnapshot {
            runs_by_state: vec![(RunState::Finished, 2)],
            current: Some(CurrentRun {
                id: "r1".into(),
                last: Some(json!({
                    "rate_per_s": 100.0,
                    "latency_p99_us": 900,
                    "errors_by_kind": {"timeout": 2},
                    "steps": [
                        {"requests": 7, "errors": 1, "checks_failed": 0, "latency_p50_us": 10, "latency_p99_us": 20},
                        {"requests": 5, "errors": 0, "checks_failed": 1, "latency_p50_us": 30, "latency_p99_us": 40}
                    ]
                })),
                steps: vec!["log \"in\"".into(), "read".into()],
            }),
        };
        let t = render_metrics(&s);
        assert!(
            t.contains("loadd_run_step_requests{run=\"r1\",step=\"log \\\"in\\\"\"} 7\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "loadd_run_step_latency_us{run=\"r1\",step=\"read\",quantile=\"0.99\"} 40\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("loadd_run_errors_by_kind{run=\"r1\",kind=\"timeout\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("loadd_runs{state=\"finished\"} 2\n"), "{t}");
        assert!(t.contains("loadd_run_rate_per_s{run=\"r1\"} 100\n"), "{t}");
        assert!(
            t.contains("loadd_run_latency_us{run=\"r1\",quantile=\"0.99\"} 900\n"),
            "{t}"
        );
    }
}
