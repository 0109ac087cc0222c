//! The capacity search for people: a terminal table of its levels and a self-contained HTML
//! page with the knee (latency against offered rate).

use crate::run::capacity::{CapacityResult, Level};
use crate::units::format_us;

impl CapacityResult {
    /// The readable summary: one line per level, then the verdict.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let _ = writeln!(o, "Capacity search on {}", self.target);
        let _ = writeln!(o, "SLO        {}", self.slo.join(", "));
        let _ = writeln!(o, "{}", Level::header());
        for l in &self.levels {
            let _ = writeln!(o, "{}", l.row());
        }
        let _ = writeln!(o, "\n{}", self.verdict);
        o
    }
}

impl Level {
    pub fn header() -> &'static str {
        "\n  offered/s  achieved/s      p50      p99      max   errors  verdict"
    }

    pub fn row(&self) -> String {
        let verdict = match (&self.generator_limited, self.passed, self.stopped_early) {
            (Some(why), _, _) => format!("generator-limited: {why}"),
            (None, true, _) => "pass".into(),
            (None, false, true) => format!("FAIL (stopped early): {}", self.why()),
            (None, false, false) => format!("FAIL: {}", self.why()),
        };
        format!(
            "  {:>9.1} {:>11.1} {:>8} {:>8} {:>8} {:>7.2}%  {verdict}",
            self.rate_per_s,
            self.achieved_per_s,
            format_us(self.latency_p50_us),
            format_us(self.latency_p99_us),
            format_us(self.latency_max_us),
            self.error_rate * 100.0
        )
    }
}

/// A self-contained HTML page with the knee: latency against offered rate.
pub fn render_html(result: &CapacityResult) -> String {
    use std::fmt::Write as _;
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut levels: Vec<&Level> = result.levels.iter().collect();
    levels.sort_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
    let (w, h, pad) = (720.0, 360.0, 50.0);
    let max_rate = levels.iter().map(|l| l.rate_per_s).fold(1.0, f64::max);
    let max_lat = levels
        .iter()
        .map(|l| l.latency_p99_us as f64)
        .fold(1.0, f64::max);
    let x = |r: f64| pad + (w - 2.0 * pad) * r / max_rate;
    let y = |us: f64| h - pad - (h - 2.0 * pad) * us / max_lat;
    let line = |pick: &dyn Fn(&Level) -> f64| {
        levels
            .iter()
            .map(|l| format!("{:.1},{:.1}", x(l.rate_per_s), y(pick(l))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg id="knee" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="latency against offered rate">
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="#444"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="#444"/>
<text x="{cx}" y="{ty}" text-anchor="middle" font-size="12">offered rate (/s), max {max_rate}</text>
<text x="12" y="{pad}" font-size="12">p99 max {lat}</text>
<polyline fill="none" stroke="#c0392b" stroke-width="2" points="{p99}"/>
<polyline fill="none" stroke="#2e86c1" stroke-width="2" points="{p50}"/>
"##,
        b = h - pad,
        r = w - pad,
        cx = w / 2.0,
        ty = h - 12.0,
        lat = format_us(max_lat as u64),
        p99 = line(&|l: &Level| l.latency_p99_us as f64),
        p50 = line(&|l: &Level| l.latency_p50_us as f64),
    );
    for l in &levels {
        let color = if l.passed { "#27ae60" } else { "#c0392b" };
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"><title>{}/s: p99 {}</title></circle>"#,
            x(l.rate_per_s),
            y(l.latency_p99_us as f64),
            l.rate_per_s,
            format_us(l.latency_p99_us)
        );
    }
    svg.push_str("</svg>");
    let rows: String =
        result
            .levels
            .iter()
            .map(|l| {
                format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td><td>{}</td></tr>",
                l.rate_per_s,
                l.achieved_per_s,
                format_us(l.latency_p50_us),
                format_us(l.latency_p99_us),
                l.error_rate * 100.0,
                esc(&if l.passed { "pass".to_string() } else { format!("fail: {}", l.why()) })
            )
            })
            .collect();
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>loadd capacity search</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}.v{{font-size:1.3em;font-weight:bold}}</style></head>
<body><h1>Capacity search</h1><p>Target {target}. SLO: {slo}.</p><p class="v">{verdict}</p>
<h2>Latency against offered rate</h2><p>Blue p50, red p99; green points passed every SLO.</p>{svg}
<h2>Levels</h2><table><tr><th>offered/s</th><th>achieved/s</th><th>p50</th><th>p99</th><th>errors</th><th>verdict</th></tr>{rows}</table></body></html>
"#,
        target = esc(&result.target),
        slo = esc(&result.slo.join(", ")),
        verdict = esc(&result.verdict),
    )
}
