//! The readable summary `loadctl` prints: target and engine, requests and iterations, status
//! and errors, WebSocket and TLS figures, the latency table, the per-step table (its columns
//! from `step_columns`), checks, thresholds and warnings.
//!
//! Plain text in fixed-width columns for a terminal; it refuses colour and anything a pipe or a
//! log file would garble.

use std::fmt::Write as _;

use super::step_columns::{self as col, Column, Figure};
use crate::metrics::histogram::LatencySummary;
use crate::results::Results;
use crate::units::format_us;

/// The per-step table's columns and their widths.
const STEP_COLUMNS: [(Column, usize); 8] = [
    (col::REQUESTS, 8),
    (col::RATE, 8),
    (col::ERRORS, 8),
    (col::CHECKS_FAILED, 7),
    (col::P50, 8),
    (col::P90, 8),
    (col::P99, 8),
    (col::MAX, 8),
];

/// The readable summary table.
pub fn render(r: &Results) -> String {
    let mut o = String::new();
    if let Some(why) = &r.setup_failed {
        let _ = writeln!(o, "SETUP FAILED: {why}\n");
        phases(&mut o, r);
        return o;
    }
    run(&mut o, r);
    outcomes(&mut o, r);
    latency(&mut o, r);
    if r.steps.len() > 1 {
        steps(&mut o, r);
    }
    phases(&mut o, r);
    verdicts(&mut o, r);
    o
}

/// `[[setup]]` and `[[teardown]]` steps, apart from the load's figures.
fn phases(o: &mut String, r: &Results) {
    if r.setup.is_empty() && r.teardown.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\nSetup and teardown (not in the load's figures)\n  {:<10}{:<30}{:>9}{:>8}{:>8}{:>10}{:>10}",
        "phase", "step", "requests", "failed", "checks", "mean", "max"
    );
    for s in r.setup.iter().chain(&r.teardown) {
        let _ = writeln!(
            o,
            "  {:<10}{:<30}{:>9}{:>8}{:>8}{:>8.1}ms{:>8.1}ms",
            s.phase,
            s.name,
            s.requests,
            s.failed,
            format!("{}/{}", s.checks_passed, s.checks_passed + s.checks_failed),
            s.latency_ms_mean,
            s.latency_ms_max
        );
    }
    if let Some(why) = &r.teardown_failed {
        let _ = writeln!(o, "  ✗ FAIL {why}");
    } else if !r.teardown.is_empty() {
        let _ = writeln!(o, "  ✓ pass teardown checks");
    }
}

/// Target, engine, requests and iterations.
fn run(o: &mut String, r: &Results) {
    let m = &r.model;
    let model = match (m.kind.as_str(), m.rate_per_s) {
        ("open", Some(q)) if r.websocket.is_some() => match m.ramp_s.filter(|s| *s > 0.0) {
            // The requested rate builds up while the sockets start.
            Some(ramp) => format!(
                "open model per socket, {} messages/s once all have started over the {}s ramp",
                trim_float(q),
                trim_float(ramp)
            ),
            None => format!("open model per socket, {} messages/s", trim_float(q)),
        },
        ("open", Some(q)) => format!("open model, {} req/s", trim_float(q)),
        ("scenarios", _) => format!("{} scenarios", r.scenarios.len()),
        _ => "closed model".to_string(),
    };
    let streams = match m.h2_streams {
        Some(n) => format!(" × {n} HTTP/2 streams"),
        None => String::new(),
    };
    let _ = writeln!(
        o,
        "Target     {}  ({model}, {} connections{streams})",
        r.target, m.connections
    );
    let cpus: Vec<String> = r.cpus.iter().map(|c| c.to_string()).collect();
    let _ = writeln!(
        o,
        "Engine     {} shard(s) on CPU {}, driver {}",
        r.shards,
        if cpus.is_empty() {
            "(unpinned)".into()
        } else {
            cpus.join(",")
        },
        r.driver
    );
    let requested = r
        .requested_rate_per_s
        .map(|q| format!(" (requested {}/s)", trim_float(q)))
        .unwrap_or_default();
    let journey = r.steps.len() > 1;
    let _ = writeln!(
        o,
        "Requests   {} in {:.2}s: {:.1} req/s{}; {} in, {} out",
        r.requests,
        r.elapsed_s,
        r.rate_per_s,
        if journey { "" } else { &requested },
        format_bytes(r.bytes_in),
        format_bytes(r.bytes_out)
    );
    if r.redirects > 0 || r.bytes_decoded > 0 {
        let mut parts = Vec::new();
        if r.redirects > 0 {
            parts.push(format!(
                "{} redirects followed (each step's latency covers its chain)",
                r.redirects
            ));
        }
        if r.bytes_decoded > 0 {
            parts.push(format!(
                "{} decoded from compressed bodies",
                format_bytes(r.bytes_decoded)
            ));
        }
        let _ = writeln!(o, "Client     {}", parts.join("; "));
    }
    if let Some(m) = &r.ws_messages {
        let _ = writeln!(
            o,
            "WebSocket  {} messages sent, {} received (matched or not), {} sockets closed cleanly{}{}",
            m.sent,
            m.received,
            m.closed_cleanly,
            if m.reconnects > 0 {
                format!(", {} reconnects", m.reconnects)
            } else {
                String::new()
            },
            closes_by_server(&m.server_closes)
        );
    }
    if journey && r.websocket.is_none() {
        let rate = r.iterations_per_s;
        let requested = r
            .requested_rate_per_s
            .map(|q| format!(", requested {}/s", trim_float(q)))
            .unwrap_or_default();
        let interrupted = if r.iterations_interrupted > 0 {
            format!(
                ", {} interrupted by the graceful stop",
                r.iterations_interrupted
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "Iterations {} ({rate:.1}/s{requested}), {} cut short{interrupted}",
            r.iterations, r.iterations_failed
        );
    }
}

/// Status, errors, and the WebSocket and TLS figures.
fn outcomes(o: &mut String, r: &Results) {
    let status: Vec<String> = r
        .status
        .iter()
        .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if r.websocket.is_none() {
        let _ = writeln!(o, "Status     {}", or_none(&status));
    }
    let errors: Vec<String> = r
        .errors
        .iter()
        .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(o, "Errors     {}", or_none(&errors));
    if let Some(w) = &r.websocket {
        let _ = writeln!(
            o,
            "WebSocket  {} connections ({} failed, {:.2}% ok), {} reconnects, {} drops ({:.3}%), {} closed cleanly{}",
            w.connections,
            w.connect_errors,
            w.connect_success_rate * 100.0,
            w.reconnects,
            w.drops,
            w.drop_rate * 100.0,
            w.closed_cleanly,
            closes_by_server(&w.server_closes)
        );
        let _ = writeln!(
            o,
            "Messages   {} sent ({:.1}/s), {} received ({:.1}/s), {} replies: RTT p50 {}, p99 {}, max {} (from intended send times)",
            w.messages_sent,
            w.messages_sent_per_s,
            w.messages_received,
            w.messages_received_per_s,
            w.replies,
            format_us(w.rtt_us.p50),
            format_us(w.rtt_us.p99),
            format_us(w.rtt_us.max)
        );
    }
    if let Some(t) = &r.tls {
        let _ = writeln!(
            o,
            "TLS        {} handshakes ({} resumed), p50 {}, p99 {}{}",
            t.handshakes,
            t.resumed,
            format_us(t.handshake_us.p50),
            format_us(t.handshake_us.p99),
            if t.insecure_skip_verify {
                "; CERTIFICATES NOT VERIFIED (insecure_skip_verify)"
            } else {
                ""
            }
        );
    }
}

/// The latency table, and how latency was counted.
fn latency(o: &mut String, r: &Results) {
    let _ = writeln!(
        o,
        "\nLatency            min     mean      p50      p90      p99    p99.9   p99.99      max"
    );
    let basis = if r.latency_basis == "intended" {
        "corrected"
    } else {
        "latency"
    };
    row(o, basis, &r.latency_us);
    if r.latency_basis == "intended" {
        row(o, "uncorrected", &r.service_time_us);
        row(o, "schedule lag", &r.schedule_lag_us);
        let _ = writeln!(
            o,
            "\nLatency counts from each request's intended start (coordinated omission corrected). Late {}, dropped {}.",
            r.late, r.dropped
        );
    }
}

/// One row per step (with several scenarios, each one's steps under a line of its totals),
/// then the whole iteration.
fn steps(o: &mut String, r: &Results) {
    let _ = writeln!(
        o,
        "\nStep                          requests    req/s   errors  checks✗      p50      p90      p99      max"
    );
    let several = r.scenarios.len() > 1;
    for (i, st) in r.steps.iter().enumerate() {
        if let Some(sc) = r.scenarios.iter().find(|sc| several && sc.steps.start == i) {
            let start = if sc.start_after_s > 0.0 {
                format!(" from {}s", trim_float(sc.start_after_s))
            } else {
                String::new()
            };
            let name: String = format!("[{}]{start}", sc.name).chars().take(30).collect();
            // A scenario is no step: its totals, laid out as STEP_COLUMNS.
            let _ = writeln!(
                o,
                "{name:<30}{:>8} {:>8.1} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8}",
                sc.requests,
                sc.rate_per_s,
                sc.errors_total,
                sc.checks_failed,
                format_us(sc.latency_us.p50),
                format_us(sc.latency_us.p90),
                format_us(sc.latency_us.p99),
                format_us(sc.latency_us.max)
            );
        }
        let name: String = st.name.chars().take(28).collect();
        let cells: Vec<String> = STEP_COLUMNS
            .iter()
            .map(|(c, width)| cell((c.value)(st), *width))
            .collect();
        let _ = writeln!(o, "  {name:<28}{}", cells.join(" "));
    }
    if r.websocket.is_none() {
        let _ = writeln!(
            o,
            "  whole iteration{:>21}{:>44} {:>8} {:>8} {:>8}",
            r.iterations,
            format_us(r.iteration_us.p50),
            format_us(r.iteration_us.p90),
            format_us(r.iteration_us.p99),
            format_us(r.iteration_us.max)
        );
    }
}

/// A step-table cell, right-aligned: rates to one decimal, latencies with their unit.
fn cell(f: Figure, width: usize) -> String {
    match f {
        Figure::Count(n) => format!("{n:>width$}"),
        Figure::Rate(x) => format!("{x:>width$.1}"),
        Figure::Us(n) => format!("{:>width$}", format_us(n)),
    }
}

/// Checks, thresholds, an abort and the warnings.
fn verdicts(o: &mut String, r: &Results) {
    if r.checks_passed + r.checks_failed > 0 {
        let total = r.checks_passed + r.checks_failed;
        let _ = writeln!(
            o,
            "Checks     {:.2}% passed ({} of {total})",
            100.0 * r.checks_passed as f64 / total as f64,
            r.checks_passed
        );
    }
    if !r.thresholds.is_empty() {
        let _ = writeln!(o, "\nThresholds");
        for t in &r.thresholds {
            let _ = writeln!(
                o,
                "  {} {:<36} actual {}",
                if t.passed { "✓ pass" } else { "✗ FAIL" },
                t.threshold,
                t.render_actual()
            );
        }
    }
    if let Some(t) = &r.aborted_by {
        let _ = writeln!(o, "\nABORTED: threshold `{t}` failed (abort_on_fail)");
    }
    for w in &r.warnings {
        let _ = writeln!(o, "\nWARNING: {w}");
    }
}

fn row(o: &mut String, name: &str, s: &LatencySummary) {
    let _ = writeln!(
        o,
        "  {name:<13}{:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        format_us(s.min),
        format_us(s.mean as u64),
        format_us(s.p50),
        format_us(s.p90),
        format_us(s.p99),
        format_us(s.p99_9),
        format_us(s.p99_99),
        format_us(s.max)
    );
}

/// `, closed by the server: 1000 ×3, 1008 ×1`, or nothing when it closed none.
fn closes_by_server(closes: &std::collections::BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = closes
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(code, n)| format!("{code} ×{n}"))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(", closed by the server: {}", parts.join(", "))
    }
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn format_bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.2} GiB", n as f64 / 1_073_741_824.0),
    }
}

fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_render() {
        assert_eq!(format_us(850), "850µs");
        assert_eq!(format_us(12_300), "12.30ms");
        assert_eq!(format_us(1_500_000), "1.50s");
        assert_eq!(format_bytes(2048), "2.0 KiB");
    }
}
