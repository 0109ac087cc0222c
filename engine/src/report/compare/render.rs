//! A comparison for people: a terminal table, Markdown for a pull request, or an HTML page
//! (self-contained, like the run report). JSON is the `Comparison` itself.

use std::fmt::Write as _;

use super::{format_change, Comparison, Figure, RunInfo, Test, Verdict};
use crate::report::html::STYLE;
use crate::report::markup::escape;
use crate::report::{format_utc, trim};
use crate::units::format_us;

fn value(unit: &str, x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    match unit {
        "us" => format_us(x.max(0.0).round() as u64),
        "per_s" => format!("{}/s", trim(x)),
        "fraction" => format!("{:.2}%", x * 100.0),
        _ => crate::report::group(x.max(0.0).round() as u64),
    }
}

fn change(f: &Figure) -> String {
    match f.change {
        Some(c) => format_change(f.unit != "fraction", c),
        None if f.candidate == f.baseline => "—".into(),
        None => "new".into(),
    }
}

fn describe(r: &RunInfo) -> String {
    let started = format_utc(r.started_unix_ms);
    format!(
        "{}: {} ({}), {:.1} s, {} requests{}{}",
        r.label,
        r.target,
        r.load,
        r.elapsed_s,
        crate::report::group(r.requests),
        if started.is_empty() {
            String::new()
        } else {
            format!(", started {started}")
        },
        if r.trustworthy {
            ""
        } else {
            " [untrustworthy]"
        }
    )
}

fn interval(t: &Test) -> String {
    format!(
        "{} … {}",
        format_change(t.relative, t.change_low),
        format_change(t.relative, t.change_high)
    )
}

/// The terminal table.
pub fn text(c: &Comparison) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Baseline   {}", describe(&c.baseline));
    let _ = writeln!(o, "Candidate  {}", describe(&c.candidate));
    let table = |o: &mut String, title: &str, figures: &[Figure]| {
        let _ = writeln!(
            o,
            "\n{title:<22}{:>12} {:>12} {:>10}",
            "baseline", "candidate", "change"
        );
        for f in figures {
            let _ = writeln!(
                o,
                "  {:<20}{:>12} {:>12} {:>10}",
                f.name,
                value(&f.unit, f.baseline),
                value(&f.unit, f.candidate),
                change(f)
            );
        }
    };
    table(&mut o, "Overall", &c.overall);
    for s in &c.steps {
        let name: String = s.step.chars().take(20).collect();
        table(&mut o, &format!("Step {name}"), &s.figures);
    }
    let _ = writeln!(
        o,
        "\nPer-second figures, {:.0}% confidence interval of the change (tolerance ±{:.0}%, errors ±{:.2} pp):",
        c.confidence * 100.0,
        c.tolerance * 100.0,
        c.error_tolerance * 100.0
    );
    for t in &c.tests {
        let scope: String = t.scope.chars().take(16).collect();
        let _ = writeln!(
            o,
            "  {:<16} {:<11}{:>10} → {:<10}{:>9}  [{}]  {}",
            scope,
            t.metric,
            value(&t.unit, t.baseline),
            value(&t.unit, t.candidate),
            format_change(t.relative, t.change),
            interval(t),
            t.verdict.name()
        );
    }
    for w in &c.warnings {
        let _ = writeln!(o, "\nNote: {w}");
    }
    let _ = writeln!(o, "\n{}", c.summary);
    o
}

/// Markdown for a pull-request comment.
pub fn markdown(c: &Comparison) -> String {
    let mut o = String::new();
    let cell = |s: &str| s.replace('|', "\\|");
    let _ = writeln!(
        o,
        "### {} loadd compare: {}\n",
        if c.regression { "❌" } else { "✅" },
        cell(&c.summary)
    );
    let _ = writeln!(o, "- Baseline: {}", cell(&describe(&c.baseline)));
    let _ = writeln!(o, "- Candidate: {}\n", cell(&describe(&c.candidate)));
    o.push_str("| | baseline | candidate | change |\n|---|---:|---:|---:|\n");
    for f in &c.overall {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            f.name,
            value(&f.unit, f.baseline),
            value(&f.unit, f.candidate),
            change(f)
        );
    }
    for s in &c.steps {
        for f in s
            .figures
            .iter()
            .filter(|f| f.name == "p50" || f.name == "p99")
        {
            let _ = writeln!(
                o,
                "| {} {} | {} | {} | {} |",
                cell(&s.step),
                f.name,
                value(&f.unit, f.baseline),
                value(&f.unit, f.candidate),
                change(f)
            );
        }
    }
    let _ = writeln!(
        o,
        "\n| Scope | Metric | per-second baseline → candidate | change | {:.0}% CI | verdict |\n|---|---|---|---:|---|---|",
        c.confidence * 100.0
    );
    for t in &c.tests {
        let _ = writeln!(
            o,
            "| {} | {} | {} → {} | {} | {} | {} |",
            cell(&t.scope),
            t.metric,
            value(&t.unit, t.baseline),
            value(&t.unit, t.candidate),
            format_change(t.relative, t.change),
            interval(t),
            if t.verdict == Verdict::Regression {
                "**REGRESSION**"
            } else {
                t.verdict.name()
            }
        );
    }
    for w in &c.warnings {
        let _ = writeln!(o, "\n> Note: {}", cell(w));
    }
    let _ = writeln!(
        o,
        "\n_Tolerance ±{:.0}% (errors ±{:.2} pp); {}._",
        c.tolerance * 100.0,
        c.error_tolerance * 100.0,
        c.method
    );
    o
}

/// A self-contained HTML page.
pub fn html(c: &Comparison) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>loadd compare — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>Comparison of two runs</h1>\n",
        escape(&c.candidate.label)
    );
    let _ = writeln!(
        o,
        "<section class=\"verdict {}\"><b>{}</b></section>",
        if c.regression { "fail" } else { "pass" },
        escape(&c.summary)
    );
    let _ = writeln!(
        o,
        "<dl><dt>Baseline</dt><dd>{}</dd><dt>Candidate</dt><dd>{}</dd></dl>",
        escape(&describe(&c.baseline)),
        escape(&describe(&c.candidate))
    );
    if !c.warnings.is_empty() {
        o.push_str("<section class=\"warn\"><h3>Read with care</h3><ul>");
        for w in &c.warnings {
            let _ = write!(o, "<li>{}</li>", escape(w));
        }
        o.push_str("</ul></section>\n");
    }
    let table = |o: &mut String, title: &str, figures: &[Figure]| {
        let _ = writeln!(
            o,
            "<h2>{}</h2>\n<table><tr><th>Figure</th><th>baseline</th><th>candidate</th><th>change</th></tr>",
            escape(title)
        );
        for f in figures {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&f.name),
                value(&f.unit, f.baseline),
                value(&f.unit, f.candidate),
                change(f)
            );
        }
        o.push_str("</table>\n");
    };
    table(&mut o, "Whole run", &c.overall);
    for s in &c.steps {
        table(&mut o, &format!("Step {}", s.step), &s.figures);
    }
    let _ = writeln!(
        o,
        "<h2>Verdicts</h2>\n<p class=\"muted\">{}. Tolerance ±{:.0}% (error rate ±{:.2} percentage points).</p>\n<table><tr><th>Scope</th><th>Metric</th><th>baseline</th><th>candidate</th><th>change</th><th>{:.0}% CI</th><th>verdict</th></tr>",
        escape(&c.method),
        c.tolerance * 100.0,
        c.error_tolerance * 100.0,
        c.confidence * 100.0
    );
    for t in &c.tests {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            escape(&t.scope),
            escape(&t.metric),
            value(&t.unit, t.baseline),
            value(&t.unit, t.candidate),
            format_change(t.relative, t.change),
            interval(t),
            match t.verdict {
                Verdict::Regression => "bad",
                Verdict::Improvement | Verdict::Unchanged => "ok",
                _ => "",
            },
            t.verdict.name()
        );
    }
    o.push_str("</table>\n</main>\n</body>\n</html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::{compare, Labeled, Options};
    use crate::report::fixture;

    #[test]
    fn renders_every_format() {
        let r = fixture::results();
        let c = compare(
            &Labeled {
                label: "a|b.json",
                results: &r,
            },
            &Labeled {
                label: "<c>.json",
                results: &r,
            },
            &Options::default(),
        );
        let t = text(&c);
        assert!(
            t.contains("Baseline   a|b.json: http://127.0.0.1:8080/<api>"),
            "{t}"
        );
        assert!(t.contains("  p99 "), "{t}");
        let md = markdown(&c);
        assert!(md.starts_with("### ✅ loadd compare: "), "{md}");
        assert!(md.contains("a\\|b.json"), "{md}");
        let page = html(&c);
        assert!(page.contains("&lt;c&gt;.json") && !page.contains("<c>"));
        assert!(!page.contains("<script") && !page.contains("href="));
    }
}
