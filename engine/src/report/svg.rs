//! Inline SVG charts for the HTML report: line charts and stacked bars on linear or log axes.
//!
//! Generated here so the report is one file that opens anywhere, offline, with no script: every
//! point carries a `<title>` (the browser's own tooltip) while a chart has few enough points.
//! It refuses to guess at data: non-finite values are skipped, and zeros on a log axis are
//! left out rather than drawn at a made-up floor.

use std::fmt::Write as _;

use super::markup::escape;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 42.0;
/// Above this many points per series, no per-point tooltips (they would bloat the page).
const TOOLTIP_POINTS: usize = 400;

/// Colours readable on white and by most colour-blind readers (Okabe–Ito).
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];

#[derive(Clone, Copy, PartialEq)]
pub enum Scale {
    Linear,
    Log,
}

pub struct Axis {
    pub label: String,
    pub scale: Scale,
    /// Renders a raw axis value as a tick label.
    pub format: fn(f64) -> String,
    /// Tick positions to use instead of computed ones (raw values).
    pub ticks: Option<Vec<f64>>,
    /// Counts: ticks on whole numbers only.
    pub integer: bool,
    /// The top of a linear value axis is at least this (all-zero data still gets a scale).
    pub min_top: f64,
}

impl Axis {
    pub fn new(label: &str, scale: Scale, format: fn(f64) -> String) -> Self {
        Self {
            label: label.into(),
            scale,
            format,
            ticks: None,
            integer: false,
            min_top: 1.0,
        }
    }

    /// Ticks on whole numbers only (counts, rates).
    pub fn integer(mut self) -> Self {
        self.integer = true;
        self
    }

    pub fn min_top(mut self, top: f64) -> Self {
        self.min_top = top;
        self
    }
}

pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Lines,
    /// One bar per distinct x, series stacked in order (x is a time in whole seconds).
    StackedBars,
}

pub struct Chart {
    /// The element id (`chart-…`), also the anchor a reader can link to.
    pub id: &'static str,
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub kind: Kind,
}

/// Maps raw values onto a pixel range on a linear or log scale.
struct Map {
    scale: Scale,
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Map {
    fn at(&self, v: f64) -> f64 {
        let (v, lo, hi) = match self.scale {
            Scale::Linear => (v, self.lo, self.hi),
            Scale::Log => (v.max(self.lo).log10(), self.lo.log10(), self.hi.log10()),
        };
        let span = if hi > lo { hi - lo } else { 1.0 };
        self.from + (v - lo) / span * (self.to - self.from)
    }
}

/// A round upper bound (1, 2, 2.5, 5 × 10^k) at or above `max`.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= max * 0.999_999)
        .unwrap_or(10.0 * magnitude)
}

/// Range and ticks of an axis over the values it must show.
/// `nice_top`: round the top up (value axes) rather than end at the largest value (time axes).
fn range(
    axis: &Axis,
    values: impl Iterator<Item = f64>,
    from_zero: bool,
    nice_top: bool,
) -> (f64, f64, Vec<f64>) {
    let values: Vec<f64> = values
        .filter(|v| v.is_finite() && (axis.scale == Scale::Linear || *v > 0.0))
        .collect();
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    match axis.scale {
        Scale::Linear => {
            let lo = if from_zero || !min.is_finite() {
                0.0
            } else {
                min
            };
            let hi = if max.is_finite() && max > lo {
                if nice_top {
                    nice_ceiling(max.max(axis.min_top))
                } else {
                    max
                }
            } else {
                lo + axis.min_top
            };
            let ticks = axis.ticks.clone().unwrap_or_else(|| {
                let step = nice_ceiling((hi - lo) / 5.0);
                let step = if axis.integer { step.max(1.0) } else { step };
                (0..=10)
                    .map(|i| lo + step * f64::from(i))
                    .take_while(|t| *t <= hi * 1.000_001)
                    .collect()
            });
            (lo, hi, ticks)
        }
        Scale::Log => {
            let (lo, hi) = if min.is_finite() {
                (
                    10f64.powf(min.log10().floor()),
                    10f64
                        .powf(max.log10().ceil())
                        .max(10f64.powf(min.log10().floor() + 1.0)),
                )
            } else {
                (1.0, 10.0)
            };
            let ticks = axis.ticks.clone().unwrap_or_else(|| {
                let decades = (hi / lo).log10().round() as i32;
                let mut t = Vec::new();
                for d in 0..=decades {
                    let base = lo * 10f64.powi(d);
                    t.push(base);
                    // Few decades: 2 and 5 as well, so the axis is readable.
                    if decades <= 2 && d < decades {
                        t.push(base * 2.0);
                        t.push(base * 5.0);
                    }
                }
                t
            });
            (lo, hi, ticks)
        }
    }
}

/// The chart as one `<figure>`: the SVG, then an HTML legend.
pub fn render(chart: &Chart, caption: &str) -> String {
    let mut o = String::new();
    let plot_right = WIDTH - RIGHT;
    let plot_bottom = HEIGHT - BOTTOM;
    let stacked = chart.kind == Kind::StackedBars;
    let xs = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let (x_lo, x_hi, x_ticks) = if stacked {
        let max = xs.fold(1.0f64, f64::max);
        range(&chart.x, [0.0, max].into_iter(), true, false)
    } else {
        range(&chart.x, xs, chart.x.scale == Scale::Linear, false)
    };
    let ys: Vec<f64> = if stacked {
        stack_totals(&chart.series)
    } else {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .collect()
    };
    let (y_lo, y_hi, y_ticks) = range(&chart.y, ys.into_iter(), true, true);
    let x = Map {
        scale: chart.x.scale,
        lo: x_lo,
        hi: x_hi,
        from: LEFT,
        to: plot_right,
    };
    let y = Map {
        scale: chart.y.scale,
        lo: y_lo,
        hi: y_hi,
        from: plot_bottom,
        to: TOP,
    };
    let title = escape(&chart.title);
    let _ = write!(
        o,
        "<figure id=\"{id}\" class=\"chart\"><figcaption><b>{title}</b> {caption}</figcaption>\n\
         <svg class=\"chart\" data-chart=\"{id}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{title}\">\n",
        id = chart.id,
        caption = escape(caption),
    );
    // Grid and tick labels (given ticks may reach past the data's range).
    let inside = |t: &&f64, lo: f64, hi: f64| **t >= lo * 0.999_999 && **t <= hi * 1.000_001;
    for t in y_ticks.iter().filter(|t| inside(t, y_lo, y_hi)) {
        let py = y.at(*t);
        let _ = writeln!(
            o,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{plot_right}\" y1=\"{py:.1}\" y2=\"{py:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            py + 4.0,
            escape(&(chart.y.format)(*t))
        );
    }
    for t in x_ticks.iter().filter(|t| inside(t, x_lo, x_hi)) {
        let px = x.at(*t);
        let _ = writeln!(
            o,
            "<line class=\"grid\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP}\" y2=\"{plot_bottom}\"/>\
             <text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            plot_bottom + 16.0,
            escape(&(chart.x.format)(*t))
        );
    }
    let _ = writeln!(
        o,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{plot_right}\" y1=\"{plot_bottom}\" y2=\"{plot_bottom}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{plot_bottom}\"/>\
         <text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text class=\"label\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        (LEFT + plot_right) / 2.0,
        HEIGHT - 6.0,
        escape(&chart.x.label),
        (TOP + plot_bottom) / 2.0,
        escape(&chart.y.label)
    );
    if stacked {
        bars(&mut o, chart, &x, &y);
    } else {
        for s in &chart.series {
            line(&mut o, chart, s, &x, &y);
        }
    }
    o.push_str("</svg>\n<ul class=\"legend\">");
    for s in &chart.series {
        let _ = write!(
            o,
            "<li><span class=\"swatch{}\" style=\"border-color:{c};background:{bg}\"></span>{}</li>",
            if s.dashed { " dashed" } else { "" },
            escape(&s.name),
            c = s.color,
            bg = if s.dashed { "transparent" } else { s.color },
        );
    }
    o.push_str("</ul></figure>\n");
    o
}

fn visible(chart: &Chart, p: (f64, f64)) -> bool {
    p.0.is_finite()
        && p.1.is_finite()
        && (chart.y.scale == Scale::Linear || p.1 > 0.0)
        && (chart.x.scale == Scale::Linear || p.0 > 0.0)
}

fn line(o: &mut String, chart: &Chart, s: &Series, x: &Map, y: &Map) {
    let points: Vec<(f64, f64)> = s
        .points
        .iter()
        .copied()
        .filter(|p| visible(chart, *p))
        .collect();
    if points.is_empty() {
        return;
    }
    let path: Vec<String> = points
        .iter()
        .map(|(px, py)| format!("{:.1},{:.1}", x.at(*px), y.at(*py)))
        .collect();
    let _ = writeln!(
        o,
        "<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"><title>{}</title></polyline>",
        s.color,
        if s.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        },
        path.join(" "),
        escape(&s.name)
    );
    if points.len() <= TOOLTIP_POINTS {
        for (px, py) in &points {
            let _ = writeln!(
                o,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\" fill=\"{}\"><title>{}: {} at {}</title></circle>",
                x.at(*px),
                y.at(*py),
                if points.len() == 1 { 4 } else { 2 },
                s.color,
                escape(&s.name),
                escape(&(chart.y.format)(*py)),
                escape(&(chart.x.format)(*px))
            );
        }
    }
}

/// Sum of every series at each x: the height a stacked bar reaches.
fn stack_totals(series: &[Series]) -> Vec<f64> {
    let mut totals: Vec<(f64, f64)> = Vec::new();
    for s in series {
        for (px, py) in &s.points {
            match totals.iter_mut().find(|(x, _)| x == px) {
                Some(t) => t.1 += py,
                None => totals.push((*px, *py)),
            }
        }
    }
    totals.into_iter().map(|t| t.1).collect()
}

fn bars(o: &mut String, chart: &Chart, x: &Map, y: &Map) {
    let n = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let width = ((x.to - x.from) / n * 0.8).max(1.0);
    let mut base: Vec<(f64, f64)> = Vec::new();
    for s in &chart.series {
        for (px, py) in s.points.iter().copied().filter(|p| visible(chart, *p)) {
            if py <= 0.0 {
                continue;
            }
            let below = match base.iter_mut().find(|(bx, _)| *bx == px) {
                Some(b) => {
                    let v = b.1;
                    b.1 += py;
                    v
                }
                None => {
                    base.push((px, py));
                    0.0
                }
            };
            let top = y.at(below + py);
            let bottom = y.at(below);
            // Interval t covers (t−1, t]: the bar spans that second.
            let left = x.at(px - 0.5) - width / 2.0;
            let _ = writeln!(
                o,
                "<rect x=\"{left:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {} at {}</title></rect>",
                (bottom - top).max(0.5),
                s.color,
                escape(&s.name),
                escape(&(chart.y.format)(py)),
                escape(&(chart.x.format)(px))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(scale: Scale, points: Vec<(f64, f64)>) -> Chart {
        Chart {
            id: "chart-test",
            title: "T <&>".into(),
            x: Axis::new("time", Scale::Linear, |v| format!("{v}s")),
            y: Axis::new("value", scale, |v| format!("{v}")),
            series: vec![Series {
                name: "a".into(),
                color: PALETTE[0],
                points,
                dashed: false,
            }],
            kind: Kind::Lines,
        }
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(180.0), 200.0);
        assert_eq!(nice_ceiling(2000.0), 2000.0);
        assert_eq!(nice_ceiling(2100.0), 2500.0);
    }

    #[test]
    fn charts_escape_and_skip_what_they_cannot_draw() {
        let svg = render(
            &chart(Scale::Log, vec![(1.0, 0.0), (2.0, 100.0), (3.0, f64::NAN)]),
            "cap",
        );
        assert!(svg.contains("T &lt;&amp;&gt;"), "{svg}");
        assert!(!svg.contains("NaN"), "{svg}");
        // Only the one drawable point has a marker.
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        let empty = render(&chart(Scale::Linear, vec![]), "cap");
        assert!(empty.contains("<svg") && !empty.contains("<polyline"));
    }

    #[test]
    fn log_axes_span_whole_decades() {
        let axis = Axis::new("y", Scale::Log, |v| format!("{v}"));
        let (lo, hi, ticks) = range(&axis, [150.0, 42_000.0].into_iter(), false, true);
        assert_eq!((lo, hi), (100.0, 100_000.0));
        assert_eq!(ticks, vec![100.0, 1000.0, 10_000.0, 100_000.0]);
    }
}
