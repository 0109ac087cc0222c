//! Renders what the API serves besides JSON: the per-interval CSV time series, a self-contained
//! HTML summary page, and the Prometheus text exposition.
//!
//! Pure functions over stored JSON: intervals and results are read by field name, so the engine
//! can add fields (per-step results) without this module changing. It refuses to fail on a field
//! it does not know: unknown shapes are shown as JSON.

use std::fmt::Write as _;

use serde_json::Value;

use crate::store::{RunMeta, RunState};

/// Per-interval time series: a header from the first interval's scalar fields, one row each.
pub fn render_csv(intervals: &[Value]) -> String {
    let columns: Vec<String> = intervals
        .first()
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_object() && !v.is_array())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut out = String::from("interval");
    for c in &columns {
        out.push(',');
        out.push_str(&csv_field(c));
    }
    out.push('\n');
    for (i, iv) in intervals.iter().enumerate() {
        let _ = write!(out, "{}", i + 1);
        for c in &columns {
            out.push(',');
            match iv.get(c) {
                Some(Value::String(s)) => out.push_str(&csv_field(s)),
                Some(Value::Null) | None => {}
                Some(v) => out.push_str(&v.to_string()),
            }
        }
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The engine's own text summary when the result still has its shape; pretty JSON otherwise.
pub fn render_summary_text(result: &Value) -> String {
    match serde_json::from_value::<engine::Results>(result.clone()) {
        Ok(r) => r.render_text(),
        Err(_) => serde_json::to_string_pretty(result).unwrap_or_default(),
    }
}

/// A small self-contained page: run facts, the summary table and the interval series.
pub fn render_html(meta: &RunMeta, intervals: &[Value], result: Option<&Value>) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>loadd run {id}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f4f4f4;padding:1em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style>\
         </head><body>\n<h1>loadd run {id}</h1>\n<p>State: <b>{state}</b> &middot; target {target}</p>\n",
        id = escape_html(&meta.id),
        state = meta.state.name(),
        target = escape_html(&meta.target),
    );
    if let Some(e) = &meta.error {
        let _ = writeln!(o, "<p>Note: {}</p>", escape_html(e));
    }
    match result {
        Some(r) => {
            let _ = writeln!(
                o,
                "<h2>Summary</h2>\n<pre>{}</pre>",
                escape_html(&render_summary_text(r))
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
            let _ = write!(o, "<{cell}>{}</{cell}>", escape_html(field));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n</body></html>\n");
    o
}

/// What `/metrics` needs about the registry, copied out under the lock.
pub struct MetricsSnapshot {
    pub runs_by_state: Vec<(RunState, u64)>,
    /// The running run's id and its last interval, if any.
    pub current: Option<(String, Option<Value>)>,
}

/// Prometheus text exposition format 0.0.4.
pub fn render_metrics(s: &MetricsSnapshot) -> String {
    let mut o = String::new();
    o.push_str("# HELP loadd_runs Runs known to this daemon, by state.\n# TYPE loadd_runs gauge\n");
    for (state, n) in &s.runs_by_state {
        let _ = writeln!(o, "loadd_runs{{state=\"{}\"}} {n}", state.name());
    }
    let Some((id, last)) = &s.current else {
        return o;
    };
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
    let quantiles = [
        ("0.5", "latency_p50_us"),
        ("0.9", "latency_p90_us"),
        ("0.99", "latency_p99_us"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_follows_the_first_interval() {
        let ivs = [
            json!({"t_s": 1.0, "requests": 10, "steps": [1], "name": "a,b"}),
            json!({"t_s": 2.0, "requests": 12, "name": "c"}),
        ];
        let csv = render_csv(&ivs);
        assert_eq!(
            csv,
            "interval,name,requests,t_s\n1,\"a,b\",10,1.0\n2,c,12,2.0\n"
        );
        assert_eq!(render_csv(&[]), "interval\n");
    }

    #[test]
    fn html_escapes() {
        let meta = RunMeta {
            id: "x".into(),
            state: RunState::Aborted,
            created_unix_ms: 0,
            target: "http://h/<script>".into(),
            stop_requested: false,
            error: None,
        };
        let page = render_html(&meta, &[json!({"t_s": 1.0})], None);
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn metrics_text() {
        let s = MetricsSnapshot {
            runs_by_state: vec![(RunState::Finished, 2)],
            current: Some((
                "r1".into(),
                Some(json!({"rate_per_s": 100.0, "latency_p99_us": 900})),
            )),
        };
        let t = render_metrics(&s);
        assert!(t.contains("loadd_runs{state=\"finished\"} 2\n"), "{t}");
        assert!(t.contains("loadd_run_rate_per_s{run=\"r1\"} 100\n"), "{t}");
        assert!(
            t.contains("loadd_run_latency_us{run=\"r1\",quantile=\"0.99\"} 900\n"),
            "{t}"
        );
    }
}
