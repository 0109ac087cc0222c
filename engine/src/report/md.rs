//! The Markdown report, sized for a pull-request comment: the verdict, a key-figures table,
//! per-step figures, thresholds and any warning. GitHub-flavoured tables, no HTML or images.
//!
//! It refuses to dump everything: the time series and the distribution belong to the HTML
//! report and the CSV.

use std::fmt::Write as _;

use super::step_columns::{self as col, Column};
use super::{
    error_rate, generator_limits, group, latency_basis_sentence, p95_us, trim, verdict, Outcome,
};
use crate::results::Results;
use crate::units::format_us;

/// Text safe inside a table cell: pipes escaped, newlines flattened.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The Markdown step table's columns.
const STEP_COLUMNS: [Column; 9] = [
    col::REQUESTS,
    col::RATE,
    col::ERRORS,
    col::CHECKS_FAILED,
    col::P50,
    col::P95,
    col::P99,
    col::P999,
    col::MAX,
];

fn steps(o: &mut String, r: &Results) {
    o.push_str("| Step |");
    for c in STEP_COLUMNS {
        let _ = write!(o, " {} |", c.short);
    }
    o.push_str("\n|---|");
    o.push_str(&"---:|".repeat(STEP_COLUMNS.len()));
    o.push('\n');
    for s in &r.steps {
        let _ = write!(o, "| {} |", cell(&s.name));
        for c in STEP_COLUMNS {
            let _ = write!(o, " {} |", (c.value)(s).readable());
        }
        o.push('\n');
    }
    o.push('\n');
}

/// Requests, throughput, errors, latency and checks, as a two-column table.
fn key_figures(o: &mut String, r: &Results) {
    o.push_str("| | |\n|---|---:|\n");
    let _ = writeln!(o, "| Requests | {} |", group(r.requests));
    let _ = writeln!(
        o,
        "| Throughput | {} req/s{} |",
        trim(r.rate_per_s),
        r.requested_rate_per_s
            .map(|q| format!(" (requested {})", trim(q)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "| Errors | {} ({:.2}%) |",
        group(r.errors_total),
        100.0 * error_rate(r)
    );
    let l = &r.latency_us;
    let open = r.latency_basis == "intended";
    let name = if open {
        "Latency (corrected)"
    } else {
        "Latency"
    };
    let _ = writeln!(o, "| {name} p50 | {} |", format_us(l.p50));
    if let Some(p95) = p95_us(r) {
        let _ = writeln!(o, "| {name} p95 | {} |", format_us(p95));
    }
    let _ = writeln!(o, "| {name} p99 | {} |", format_us(l.p99));
    let _ = writeln!(o, "| {name} p99.9 | {} |", format_us(l.p99_9));
    let _ = writeln!(o, "| {name} max | {} |", format_us(l.max));
    if open {
        let _ = writeln!(
            o,
            "| Uncorrected p99 | {} |",
            format_us(r.service_time_us.p99)
        );
        let _ = writeln!(
            o,
            "| Schedule lag p99 | {} |",
            format_us(r.schedule_lag_us.p99)
        );
    }
    let checks = r.checks_passed + r.checks_failed;
    if checks > 0 {
        let _ = writeln!(
            o,
            "| Checks passed | {:.2}% of {} |",
            100.0 * r.checks_passed as f64 / checks as f64,
            group(checks)
        );
    }
    o.push('\n');
}

pub fn render(r: &Results) -> String {
    let mut o = String::new();
    let v = verdict(r);
    let mark = match v.outcome {
        Outcome::Passed => "✅",
        Outcome::Failed | Outcome::Aborted => "❌",
        Outcome::NoThresholds => "ℹ️",
    };
    let _ = writeln!(o, "### {mark} loadd: {}\n", cell(&v.headline));
    let model = match (r.model.kind.as_str(), r.model.rate_per_s) {
        ("open", Some(rate)) => format!("open model, {} req/s", trim(rate)),
        _ => "closed model".into(),
    };
    let _ = writeln!(
        o,
        "`{}` · {model} · {} connections · {:.1} s{}\n",
        r.target.replace('`', "'"),
        r.model.connections,
        r.elapsed_s,
        r.environment
            .scenario_sha256
            .as_deref()
            .map(|h| format!(" · scenario `{}`", &h[..h.len().min(12)]))
            .unwrap_or_default()
    );
    let notes = generator_limits(r);
    if !notes.is_empty() {
        let _ = writeln!(
            o,
            "> **{}** {}",
            if r.trustworthy {
                "Note:"
            } else {
                "⚠️ Warning:"
            },
            cell(&notes[0])
        );
        for n in &notes[1..] {
            let _ = writeln!(o, "> - {}", cell(n));
        }
        o.push('\n');
    }

    key_figures(&mut o, r);

    if r.steps.len() > 1 {
        steps(&mut o, r);
    }

    if !r.thresholds.is_empty() {
        o.push_str("| | Threshold | Measured |\n|---|---|---:|\n");
        for t in &r.thresholds {
            let _ = writeln!(
                o,
                "| {} | `{}` | {} |",
                if t.passed { "✅" } else { "❌" },
                cell(&t.threshold).replace('`', "'"),
                cell(&t.render_actual())
            );
        }
        o.push('\n');
    }
    let _ = writeln!(o, "_{}_", latency_basis_sentence(r));
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn markdown_for_a_pull_request() {
        let r = fixture::results();
        let md = render(&r);
        assert!(
            md.starts_with("### ❌ loadd: FAIL: 1 of 2 thresholds failed\n"),
            "{md}"
        );
        assert!(md.contains("| Requests | 600 |"), "{md}");
        assert!(md.contains("| ❌ | `error_rate < 0.1%` | 1.00% |"), "{md}");
        assert!(md.contains("| read \"items\" | 300 |"), "{md}");
        // Every table row has as many cells as its header.
        let step_rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| login")).collect();
        assert_eq!(step_rows.len(), 1);
        assert_eq!(step_rows[0].matches(" | ").count(), 9, "{md}");
        assert!(cell("a|b\nc") == "a\\|b c");
    }
}
