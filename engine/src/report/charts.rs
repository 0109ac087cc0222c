//! The HTML report's charts: which series each chart plots, over time (throughput, latency,
//! errors, connections, schedule lag) and by percentile, each with the caption that says how
//! to read it. Drawing is `svg`'s.
//!
//! It plots only what the result holds: a run without whole seconds or without a distribution
//! gets a sentence saying so, not an empty or invented chart.

use std::fmt::Write as _;

use super::svg::{self, Axis, Chart, Kind, Scale, Series, PALETTE};
use super::trim;
use crate::results::{IntervalSummary, Results};
use crate::units::format_us;

fn seconds(v: f64) -> String {
    format!("{}s", trim(v))
}

fn plain(v: f64) -> String {
    trim(v)
}

fn us(v: f64) -> String {
    format_us(v.max(0.0).round() as u64)
}

/// Log scale when the values span more than ~1.5 decades; linear otherwise.
fn scale_for(values: impl Iterator<Item = f64>) -> Scale {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi > 0.0 && hi / lo > 30.0 {
        Scale::Log
    } else {
        Scale::Linear
    }
}

fn series(name: &str, color: &'static str, points: Vec<(f64, f64)>, dashed: bool) -> Series {
    Series {
        name: name.into(),
        color,
        points,
        dashed,
    }
}

pub(super) fn over_time(o: &mut String, r: &Results) {
    o.push_str("<h2>Over time</h2>\n");
    if r.intervals.is_empty() {
        o.push_str(
            "<p>The run recorded no whole second, so there is nothing to chart over time.</p>\n",
        );
        return;
    }
    o.push_str(&rate_chart(r));
    o.push_str(&latency_chart(r));
    o.push_str(&errors_chart(r));
    o.push_str(&connections_chart(r));
    if r.latency_basis == "intended" {
        o.push_str(&lag_chart(r));
    }
}

fn time_axis() -> Axis {
    Axis::new("seconds since start", Scale::Linear, seconds)
}

/// One point per second: `(t_s, f(interval))`.
fn at(iv: &[IntervalSummary], f: impl Fn(&IntervalSummary) -> f64) -> Vec<(f64, f64)> {
    iv.iter().map(|i| (i.t_s, f(i))).collect()
}

/// Responses per second, against what the schedule asked for.
fn rate_chart(r: &Results) -> String {
    let iv = &r.intervals;
    let mut rate = vec![series(
        "responses/s",
        PALETTE[0],
        at(iv, |i| i.rate_per_s),
        false,
    )];
    let requested: Vec<(f64, f64)> = iv
        .iter()
        .filter_map(|i| i.requested_per_s.map(|q| (i.t_s, q)))
        .collect();
    if !requested.is_empty() {
        rate.push(series(
            "requested/s (schedule)",
            PALETTE[6],
            requested,
            true,
        ));
    }
    let caption = if r.requested_rate_per_s.is_some() {
        "Responses per second against what the schedule asked for. A gap means the target (or the generator) could not keep up."
    } else {
        "Responses per second. In a closed model the rate is whatever the target sustained."
    };
    svg::render(
        &Chart {
            id: "chart-rate",
            title: "Throughput".into(),
            x: time_axis(),
            y: Axis::new("requests per second", Scale::Linear, plain).integer(),
            series: rate,
            kind: Kind::Lines,
        },
        caption,
    )
}

/// Each second's percentiles (and the uncorrected p99 in an open model).
fn latency_chart(r: &Results) -> String {
    let iv = &r.intervals;
    let open = r.latency_basis == "intended";
    let mut latency = vec![
        series(
            "p50",
            PALETTE[2],
            at(iv, |i| i.latency_p50_us as f64),
            false,
        ),
        series(
            "p90",
            PALETTE[0],
            at(iv, |i| i.latency_p90_us as f64),
            false,
        ),
        series(
            "p99",
            PALETTE[1],
            at(iv, |i| i.latency_p99_us as f64),
            false,
        ),
        series(
            "max",
            PALETTE[6],
            at(iv, |i| i.latency_max_us as f64),
            false,
        ),
    ];
    if open {
        latency.push(series(
            "p99 uncorrected",
            PALETTE[3],
            at(iv, |i| i.service_p99_us as f64),
            true,
        ));
    }
    let scale = scale_for(latency.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    svg::render(
        &Chart {
            id: "chart-latency",
            title: if open {
                "Latency over time (corrected)".into()
            } else {
                "Latency over time".into()
            },
            x: time_axis(),
            y: Axis::new(
                if scale == Scale::Log {
                    "latency (log scale)"
                } else {
                    "latency"
                },
                scale,
                us,
            )
            .integer()
            .min_top(10.0),
            series: latency,
            kind: Kind::Lines,
        },
        "Each point is one second's percentile. p99 means 1 request in 100 that second was slower.",
    )
}

/// Errors per second, stacked by kind.
fn errors_chart(r: &Results) -> String {
    let iv = &r.intervals;
    let mut kinds: Vec<&String> = iv.iter().flat_map(|i| i.errors_by_kind.keys()).collect();
    kinds.sort();
    kinds.dedup();
    let mut errors: Vec<Series> = kinds
        .iter()
        .enumerate()
        .map(|(n, kind)| {
            series(
                kind,
                PALETTE[(n + 1) % PALETTE.len()],
                at(iv, |i| {
                    i.errors_by_kind
                        .get(kind.as_str())
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(0.0)
                }),
                false,
            )
        })
        .collect();
    if errors.is_empty() {
        // Zeros, so the chart still spans the run.
        errors.push(series("errors", PALETTE[1], at(iv, |_| 0.0), false));
    }
    let errors_caption = if kinds.is_empty() {
        "No errors occurred."
    } else {
        "Errors per second, stacked by kind."
    };
    svg::render(
        &Chart {
            id: "chart-errors",
            title: "Errors by kind".into(),
            x: time_axis(),
            y: Axis::new("errors per second", Scale::Linear, plain).integer(),
            series: errors,
            kind: Kind::StackedBars,
        },
        errors_caption,
    )
}

fn connections_chart(r: &Results) -> String {
    let iv = &r.intervals;
    svg::render(
        &Chart {
            id: "chart-connections",
            title: "Open connections".into(),
            x: time_axis(),
            y: Axis::new("connections", Scale::Linear, plain).integer(),
            series: vec![series(
                "open connections",
                PALETTE[0],
                at(iv, |i| f64::from(i.active_connections)),
                false,
            )],
            kind: Kind::Lines,
        },
        "Connections open at the end of each second.",
    )
}

/// Schedule lag: the generator's health (open model).
fn lag_chart(r: &Results) -> String {
    let iv = &r.intervals;
    let lag = vec![series(
        "schedule lag p99",
        PALETTE[1],
        at(iv, |i| i.lag_p99_us as f64),
        false,
    )];
    let scale = scale_for(lag.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    svg::render(
        &Chart {
            id: "chart-lag",
            title: "Schedule lag (generator health)".into(),
            x: time_axis(),
            y: Axis::new("lag p99", scale, us).integer().min_top(10.0),
            series: lag,
            kind: Kind::Lines,
        },
        "How late requests left compared with their intended time. Low and flat means the generator kept its schedule; lag is included in the corrected latency.",
    )
}

/// `x = 1/(1−p)` as the percentile it stands for: 10 → `90%`, 1000 → `99.9%`.
fn percentile_label(x: f64) -> String {
    if x <= 1.0 {
        return "0%".into();
    }
    let p = 100.0 - 100.0 / x;
    let decimals = (x.log10().round() as i32 - 2).max(0) as usize;
    format!("{p:.decimals$}%")
}

pub(super) fn distribution(o: &mut String, r: &Results) {
    o.push_str("<h2>Latency distribution</h2>\n");
    let d = &r.latency_distribution;
    if d.is_empty() {
        o.push_str("<p>This result holds no latency distribution (no responses, or a result written by an older loadd).</p>\n");
        return;
    }
    let count = r.latency_us.count.max(1) as f64;
    let x_of = |p: f64| {
        if p >= 100.0 {
            count.max(10.0)
        } else {
            100.0 / (100.0 - p)
        }
    };
    let open = r.latency_basis == "intended";
    let mut lines = vec![series(
        if open { "corrected" } else { "latency" },
        PALETTE[1],
        d.iter()
            .map(|p| (x_of(p.percentile), p.corrected_us as f64))
            .collect(),
        false,
    )];
    if open {
        lines.push(series(
            "uncorrected (service time)",
            PALETTE[0],
            d.iter()
                .map(|p| (x_of(p.percentile), p.uncorrected_us as f64))
                .collect(),
            true,
        ));
    }
    let scale = scale_for(lines.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut x = Axis::new("percentile", Scale::Log, percentile_label);
    x.ticks = Some((0..8).map(|k| 10f64.powi(k)).collect());
    o.push_str(&svg::render(
        &Chart {
            id: "chart-percentiles",
            title: "Latency by percentile".into(),
            x,
            y: Axis::new("latency", scale, us).integer().min_top(10.0),
            series: lines,
            kind: Kind::Lines,
        },
        if open {
            "Each point: that share of requests was at or below this latency (the last point is the maximum). Where the two lines part, requests waited before they could be sent: the corrected line is what users would have seen."
        } else {
            "Each point: that share of requests was at or below this latency (the last point is the maximum)."
        },
    ));
    o.push_str("<table id=\"percentiles\"><tr><th>Percentile</th>");
    o.push_str(if open {
        "<th>corrected</th><th>uncorrected</th></tr>\n"
    } else {
        "<th>latency</th></tr>\n"
    });
    for p in d
        .iter()
        .filter(|p| [50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 99.999, 100.0].contains(&p.percentile))
    {
        let name = if p.percentile >= 100.0 {
            "max".to_string()
        } else {
            format!("p{}", p.percentile)
        };
        let _ = write!(
            o,
            "<tr><td>{name}</td><td>{}</td>",
            format_us(p.corrected_us)
        );
        if open {
            let _ = write!(o, "<td>{}</td>", format_us(p.uncorrected_us));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(100_000.0), "99.999%");
    }
}
