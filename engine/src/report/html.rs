//! The HTML report: one self-contained page (inline CSS, inline SVG, no script) that someone
//! who has never seen loadd can read: the verdict first, then the figures, the charts over
//! time, the latency distribution, per-step figures, and how the run was made.
//!
//! It refuses to load anything: no external stylesheet, font, script or image, so the page
//! reads the same offline, attached to a ticket, or years later.

use std::fmt::Write as _;

use super::charts;
use super::markup::escape;
use super::step_columns::{self as col, Column};
use super::{
    error_rate, format_utc, generator_limits, group, latency_basis_sentence, p95_us, trim, verdict,
    Outcome,
};
use crate::metrics::histogram::LatencySummary;
use crate::results::Results;
use crate::units::format_us;

/// What the caller knows beyond the result (e.g. the daemon's run id and state).
#[derive(Default)]
pub struct Page {
    /// Replaces "Load test report" as the page's heading.
    pub heading: Option<String>,
    /// A line under the heading.
    pub note: Option<String>,
}

pub(crate) const STYLE: &str = "\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1b1b;margin:0;background:#fafafa}\
main{max-width:1040px;margin:0 auto;padding:24px 28px 48px;background:#fff}\
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid #e3e3e3;padding-bottom:4px}\
.sub{color:#555;margin:0 0 16px}\
.verdict{padding:14px 18px;border-radius:6px;font-size:18px;margin:16px 0;border:1px solid}\
.verdict.pass{background:#e8f6ee;border-color:#2e8b57}.verdict.fail{background:#fdecea;border-color:#c0392b}\
.verdict.info{background:#eef3fa;border-color:#4a78b5}\
.warn{background:#fff6e0;border:1px solid #d99a00;border-radius:6px;padding:12px 18px;margin:16px 0}\
.warn h3{margin:0 0 6px;font-size:16px}.warn ul{margin:4px 0 0 18px;padding:0}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}\
.card{border:1px solid #e3e3e3;border-radius:6px;padding:10px 12px}\
.card .v{font-size:21px;font-weight:600}.card .k{color:#555;font-size:13px}\
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}\
th,td{border-bottom:1px solid #e6e6e6;padding:4px 10px;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3;font-weight:600}\
.ok{color:#1e7d45;font-weight:600}.bad{color:#b42318;font-weight:600}\
figure{margin:18px 0}figcaption{margin-bottom:4px;color:#333}\
svg.chart{width:100%;height:auto;max-width:760px;display:block}\
svg .grid{stroke:#ececec}svg .axis{stroke:#777}svg .tick{font-size:11px;fill:#555}svg .label{font-size:12px;fill:#333}\
.legend{list-style:none;padding:0;margin:2px 0 0 70px;display:flex;flex-wrap:wrap;gap:14px;font-size:13px}\
.swatch{display:inline-block;width:18px;height:0;border-top:3px solid;margin-right:6px;vertical-align:middle}\
.swatch.dashed{border-top-style:dashed}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px}dt{color:#555}dd{margin:0;overflow-wrap:anywhere}\
.muted{color:#666;font-size:13px}code{background:#f3f3f3;padding:0 3px;border-radius:3px}\
@media print{body{background:#fff}main{padding:0}}";

/// The whole page.
pub fn render(r: &Results, page: &Page) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let heading = page.heading.as_deref().unwrap_or("Load test report");
    let _ = write!(
        o,
        "<!doctype html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <meta name=\"generator\" content=\"loadd {version}\">\n\
         <title>{title} — {target}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n",
        version = escape(&r.environment.loadd_version),
        title = escape(heading),
        target = escape(&r.target),
    );
    let started = format_utc(r.environment.started_unix_ms);
    let _ = writeln!(
        o,
        "<p class=\"sub\">Target <code>{}</code>{}{} · ran {:.1} s</p>",
        escape(&r.target),
        if started.is_empty() {
            String::new()
        } else {
            format!(" · started {started}")
        },
        page.note
            .as_deref()
            .map(|n| format!(" · {}", escape(n)))
            .unwrap_or_default(),
        r.elapsed_s
    );
    verdict_box(&mut o, r);
    warning_box(&mut o, r);
    summary(&mut o, r);
    thresholds(&mut o, r);
    charts::over_time(&mut o, r);
    charts::distribution(&mut o, r);
    steps(&mut o, r);
    errors(&mut o, r);
    configuration(&mut o, r);
    glossary(&mut o, r);
    let _ = writeln!(
        o,
        "<p class=\"muted\">Written by loadd {} from a result of schema <code>{}</code>.</p>\n</main>\n</body>\n</html>",
        escape(&r.environment.loadd_version),
        escape(&r.schema)
    );
    o
}

fn verdict_box(o: &mut String, r: &Results) {
    let v = verdict(r);
    let class = match v.outcome {
        Outcome::Passed => "pass",
        Outcome::Failed | Outcome::Aborted => "fail",
        Outcome::NoThresholds => "info",
    };
    let _ = writeln!(
        o,
        "<section class=\"verdict {class}\" id=\"verdict\"><b>{}</b></section>",
        escape(&v.headline)
    );
}

fn warning_box(o: &mut String, r: &Results) {
    let notes = generator_limits(r);
    if notes.is_empty() {
        return;
    }
    let title = if r.trustworthy {
        "Note on the load generator"
    } else {
        "Warning: the load generator limited this run"
    };
    let _ = write!(
        o,
        "<section class=\"warn\" id=\"generator-limits\"><h3>{title}</h3><p>{}</p>",
        escape(&notes[0])
    );
    if notes.len() > 1 {
        o.push_str("<ul>");
        for n in &notes[1..] {
            let _ = write!(o, "<li>{}</li>", escape(n));
        }
        o.push_str("</ul>");
    }
    o.push_str("</section>\n");
}

fn card(o: &mut String, key: &str, value: &str, hint: &str) {
    let _ = write!(
        o,
        "<div class=\"card\" title=\"{}\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>",
        escape(hint),
        escape(key),
        escape(value)
    );
}

fn summary(o: &mut String, r: &Results) {
    o.push_str("<h2>Summary</h2>\n<div class=\"cards\">");
    card(o, "Requests", &group(r.requests), "Responses received");
    let rate = match r.requested_rate_per_s {
        Some(req) => format!("{} / {} req/s", trim(r.rate_per_s), trim(req)),
        None => format!("{} req/s", trim(r.rate_per_s)),
    };
    card(
        o,
        if r.requested_rate_per_s.is_some() {
            "Throughput (achieved / requested)"
        } else {
            "Throughput"
        },
        &rate,
        "Responses per second",
    );
    card(
        o,
        "Errors",
        &format!("{} ({:.2}%)", group(r.errors_total), 100.0 * error_rate(r)),
        "Failed requests and 4xx/5xx responses",
    );
    let l = &r.latency_us;
    card(
        o,
        "Latency p50",
        &format_us(l.p50),
        "Half of requests were faster",
    );
    if let Some(p95) = p95_us(r) {
        card(
            o,
            "Latency p95",
            &format_us(p95),
            "95% of requests were faster",
        );
    }
    card(
        o,
        "Latency p99",
        &format_us(l.p99),
        "99% of requests were faster",
    );
    card(o, "Latency p99.9", &format_us(l.p99_9), "99.9% were faster");
    card(o, "Latency max", &format_us(l.max), "The slowest request");
    o.push_str("</div>\n");
    let _ = writeln!(o, "<p class=\"muted\">{}</p>", latency_basis_sentence(r));
    o.push_str(
        "<table><tr><th>Latency</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th><th>count</th></tr>\n",
    );
    let open = r.latency_basis == "intended";
    latency_row(o, if open { "corrected" } else { "latency" }, l);
    if open {
        latency_row(o, "uncorrected", &r.service_time_us);
        latency_row(o, "schedule lag", &r.schedule_lag_us);
    }
    if r.steps.len() > 1 {
        latency_row(o, "whole iteration", &r.iteration_us);
    }
    o.push_str("</table>\n");
}

fn latency_row(o: &mut String, name: &str, s: &LatencySummary) {
    let _ = writeln!(
        o,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        escape(name),
        format_us(s.min),
        format_us(s.mean as u64),
        format_us(s.p50),
        format_us(s.p90),
        format_us(s.p99),
        format_us(s.p99_9),
        format_us(s.p99_99),
        format_us(s.max),
        group(s.count)
    );
}

fn thresholds(o: &mut String, r: &Results) {
    if r.thresholds.is_empty() {
        return;
    }
    o.push_str("<h2>Thresholds</h2>\n<table id=\"thresholds\"><tr><th>Threshold</th><th>Result</th><th>Measured</th></tr>\n");
    for t in &r.thresholds {
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(&t.threshold),
            if t.passed { "ok" } else { "bad" },
            if t.passed { "✓ pass" } else { "✗ fail" },
            escape(&t.render_actual())
        );
    }
    o.push_str("</table>\n");
}

/// The HTML step table's columns.
const STEP_COLUMNS: [Column; 10] = [
    col::REQUESTS,
    col::RATE,
    col::ERRORS,
    col::CHECKS_PASSED,
    col::CHECKS_FAILED,
    col::P50,
    col::P95,
    col::P99,
    col::P999,
    col::MAX,
];

fn steps(o: &mut String, r: &Results) {
    if r.steps.is_empty() {
        return;
    }
    o.push_str("<h2>Steps</h2>\n<table id=\"steps\"><tr><th>Step</th>");
    for c in STEP_COLUMNS {
        let _ = write!(o, "<th>{}</th>", escape(c.label));
    }
    o.push_str("</tr>\n");
    for s in &r.steps {
        let _ = write!(o, "<tr><td>{}</td>", escape(&s.name));
        for c in STEP_COLUMNS {
            let figure = (c.value)(s);
            if c.alarm {
                let class = if figure.is_zero() { "" } else { "bad" };
                let _ = write!(o, "<td class=\"{class}\">{}</td>", figure.readable());
            } else {
                let _ = write!(o, "<td>{}</td>", figure.readable());
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
    if r.steps.len() > 1 {
        let _ = writeln!(
            o,
            "<p class=\"muted\">{} journey iterations ({}/s), {} cut short by a failed request or capture.</p>",
            group(r.iterations),
            trim(r.iterations_per_s),
            group(r.iterations_failed)
        );
    }
}

fn nonzero(map: &serde_json::Map<String, serde_json::Value>) -> Vec<(&String, u64)> {
    map.iter()
        .filter_map(|(k, v)| v.as_u64().filter(|n| *n > 0).map(|n| (k, n)))
        .collect()
}

fn errors(o: &mut String, r: &Results) {
    o.push_str("<h2>Errors and responses</h2>\n");
    let status = nonzero(&r.status);
    let errors = nonzero(&r.errors);
    o.push_str("<table id=\"status\"><tr><th>Responses</th><th>count</th></tr>\n");
    for (k, n) in &status {
        let _ = writeln!(o, "<tr><td>{}</td><td>{}</td></tr>", escape(k), group(*n));
    }
    o.push_str("</table>\n");
    if errors.is_empty() {
        o.push_str("<p>No errors.</p>\n");
    } else {
        o.push_str("<table id=\"errors\"><tr><th>Error</th><th>count</th></tr>\n");
        for (k, n) in &errors {
            let _ = writeln!(o, "<tr><td>{}</td><td>{}</td></tr>", escape(k), group(*n));
        }
        o.push_str("</table>\n");
    }
    let checks = r.checks_passed + r.checks_failed;
    if checks > 0 {
        let _ = writeln!(
            o,
            "<p>Checks: {} of {} passed ({:.2}%).</p>",
            group(r.checks_passed),
            group(checks),
            100.0 * r.checks_passed as f64 / checks as f64
        );
    }
}

fn configuration(o: &mut String, r: &Results) {
    o.push_str("<h2>Configuration and environment</h2>\n<dl>");
    let mut item = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
        }
    };
    let m = &r.model;
    item("Target", r.target.clone());
    item(
        "Load model",
        match (m.kind.as_str(), m.rate_per_s) {
            ("open", Some(rate)) => format!(
                "open: requests arrive on a schedule (peak {} req/s) whether or not earlier ones were answered",
                trim(rate)
            ),
            _ => "closed: each connection sends its next request when the previous one is answered".into(),
        },
    );
    item("Connections", m.connections.to_string());
    item(
        "Planned",
        match (m.duration_s, m.requests) {
            (_, Some(n)) => format!("{} requests", group(n)),
            (Some(d), None) => format!("{} s", trim(d)),
            (None, None) => String::new(),
        },
    );
    item("Ran for", format!("{:.2} s", r.elapsed_s));
    if let Some(q) = r.requested_rate_per_s {
        item("Requested rate (mean)", format!("{} req/s", trim(q)));
    }
    item(
        "Latency measured from",
        if r.latency_basis == "intended" {
            "the intended start (corrected)".into()
        } else {
            "the send (closed model)".into()
        },
    );
    let cpus: Vec<String> = r.cpus.iter().map(usize::to_string).collect();
    item(
        "Engine",
        format!(
            "{} shard(s){}, io driver {}",
            r.shards,
            if cpus.is_empty() {
                String::new()
            } else {
                format!(" pinned to CPU {}", cpus.join(","))
            },
            r.driver
        ),
    );
    item(
        "Traffic",
        format!(
            "{} B received, {} B sent, {} connections opened",
            group(r.bytes_in),
            group(r.bytes_out),
            group(r.connects)
        ),
    );
    let e = &r.environment;
    item("loadd version", e.loadd_version.clone());
    item("Host", e.hostname.clone());
    item(
        "System",
        [e.os.as_str(), e.kernel.as_str(), e.arch.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
    );
    if e.cpus_available > 0 {
        item("CPUs available", e.cpus_available.to_string());
    }
    item("Started", format_utc(e.started_unix_ms));
    if let Some(h) = &e.scenario_sha256 {
        item("Scenario SHA-256", h.clone());
    }
    o.push_str("</dl>\n");
}

fn glossary(o: &mut String, r: &Results) {
    o.push_str("<h2>How to read this report</h2>\n<ul class=\"muted\">");
    o.push_str("<li><b>p50, p90, p99, p99.9</b>: the latency that 50%, 90%, 99%, 99.9% of requests stayed at or under. p99 = 1 request in 100 was slower.</li>");
    if r.latency_basis == "intended" {
        o.push_str("<li><b>Corrected latency</b> starts at the time the schedule intended to send the request. If the target stalls, requests queue up behind it and that wait counts, as it would for a real user. <b>Uncorrected</b> starts at the actual send and hides that wait.</li>");
        o.push_str("<li><b>Schedule lag</b> is how late the generator sent requests. It measures the generator, not the target.</li>");
    }
    o.push_str("<li><b>Errors</b> are connections or requests that failed, and responses with a 4xx or 5xx status.</li>");
    o.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn page_is_self_contained_and_complete() {
        let r = fixture::results();
        let page = render(&r, &Page::default());
        for id in [
            "chart-rate",
            "chart-latency",
            "chart-errors",
            "chart-connections",
            "chart-lag",
            "chart-percentiles",
        ] {
            assert!(page.contains(&format!("data-chart=\"{id}\"")), "{id}");
        }
        // Nothing is loaded from anywhere.
        for bad in ["<script", "<link", "src=", "href=", "url(", "@import"] {
            assert!(!page.contains(bad), "{bad}");
        }
        assert!(page.contains("FAIL: 1 of 2 thresholds failed"));
        assert!(page.contains("<h2>Summary</h2>"));
        // User text is escaped: the target and a step name with quotes.
        assert!(page.contains("http://127.0.0.1:8080/&lt;api&gt;"));
        assert!(page.contains("read &quot;items&quot;"));
        assert!(!page.contains("<api>"));
        // Both error kinds are charted (stacked bars with tooltips).
        assert!(
            page.contains("<title>timeout: 1 at 2s</title>"),
            "timeout bar"
        );
        assert!(
            page.contains("<title>status_5xx: 1 at 3s</title>"),
            "5xx bar"
        );
        // The one-second-late request is noted, as a note and not an alarm.
        assert!(page.contains("Note on the load generator"));
    }

    #[test]
    fn untrustworthy_runs_say_so_first() {
        let mut r = fixture::results();
        r.trustworthy = false;
        r.warnings = vec!["12 scheduled requests were dropped".into()];
        let page = render(
            &r,
            &Page {
                heading: Some("loadd run x".into()),
                note: Some("state finished".into()),
            },
        );
        let warn = page
            .find("Warning: the load generator limited this run")
            .unwrap();
        assert!(warn < page.find("<h2>Summary</h2>").unwrap());
        assert!(page.contains("12 scheduled requests were dropped"));
        assert!(page.contains("<h1>loadd run x</h1>") && page.contains("state finished"));
    }
}
