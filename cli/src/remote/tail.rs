//! `loadctl tail` (and `submit` without `--detach`): follows a run's Server-Sent Events (read
//! by `sse`, which resumes a dropped stream so no interval is missed), then prints the summary
//! with its threshold verdicts and returns `loadctl run`'s exit code.
//!
//! On a terminal it redraws a compact table in place once per interval (elapsed, rate against
//! the requested rate, corrected p50/p90/p99/p99.9/max, errors by kind, connections, schedule
//! lag, one line per journey step); piped, it prints plain lines (one per interval, plus one per
//! step when the journey has several). Rendering is pure (`table`, `plain`) so it is unit-tested.

use std::io::{IsTerminal, Write};

use engine::units::format_us;
use serde_json::Value;

use super::client::{Client, Failure};
use super::sse::{self, Event, Reconnects, StreamError};
use crate::exit;

/// How a tail ended.
enum Ending {
    Finished(Value),
    Ended(Value),
}

/// What the tail knows about the run and the screen.
pub(super) struct View {
    /// Redraw in place (a terminal) or print lines (piped).
    pub(super) live: bool,
    /// Journey step names, from the stream's opening `run` event.
    pub(super) steps: Vec<String>,
    /// Lines of the table last drawn, to move back over.
    pub(super) drawn: usize,
}

impl View {
    pub(super) fn interval(&mut self, s: &Value) {
        let mut out = std::io::stdout().lock();
        if self.live {
            let lines = table(s, &self.steps);
            if self.drawn > 0 {
                let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn);
            }
            for l in &lines {
                let _ = writeln!(out, "{l}");
            }
            self.drawn = lines.len();
        } else {
            for l in plain(s, &self.steps) {
                let _ = writeln!(out, "{l}");
            }
        }
        let _ = out.flush();
    }
}

pub(super) fn tail_run(client: &Client, id: &str) -> Result<u8, Failure> {
    let mut view = View {
        live: std::io::stdout().is_terminal(),
        steps: Vec::new(),
        drawn: 0,
    };
    let ending = sse::follow(client, id, Reconnects::Announced, |event| {
        Ok(on_event(&event, &mut view))
    })
    .map_err(|e| match e {
        StreamError::Lost => Failure {
            message: format!("error: lost the event stream of run {id}"),
            code: exit::NO_RESULT,
        },
        StreamError::Failed(f) => f,
    })?;
    let mut out = std::io::stdout().lock();
    if view.drawn > 0 {
        // The table stays on screen; the summary starts below it.
        let _ = writeln!(out);
    }
    match ending {
        Ending::Finished(result) => {
            // The same verdict and exit code as `loadctl run`, so `submit` works as a CI gate.
            match serde_json::from_value::<engine::Results>(result.clone()) {
                Ok(r) => {
                    let _ = writeln!(out, "{}", engine::report::text::render(&r));
                    Ok(exit::of_results(&r))
                }
                Err(_) => {
                    let text = serde_json::to_string_pretty(&result).unwrap_or_default();
                    let _ = writeln!(out, "{text}");
                    Ok(if !result["aborted_by"].is_null() {
                        exit::ABORTED
                    } else if result["thresholds_failed"].as_bool() == Some(true) {
                        exit::FAILED
                    } else {
                        exit::OK
                    })
                }
            }
        }
        Ending::Ended(v) => {
            let _ = out.flush();
            eprintln!(
                "run {id} {}{}",
                v["state"].as_str().unwrap_or("ended"),
                v["error"]
                    .as_str()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            Ok(exit::NO_RESULT)
        }
    }
}

/// Shows one event; `Some` at the run's end.
fn on_event(event: &Event, view: &mut View) -> Option<Ending> {
    let value: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    match event.name.as_str() {
        "run" => {
            view.steps = value["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
        }
        "interval" => view.interval(&value),
        "finished" => return Some(Ending::Finished(value)),
        "ended" => return Some(Ending::Ended(value)),
        _ => {}
    }
    None
}

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

fn us(v: &Value, k: &str) -> String {
    format_us(v[k].as_u64().unwrap_or(0))
}

/// The step's name, or its position when the stream did not name it.
fn step_name(names: &[String], i: usize) -> String {
    names
        .get(i)
        .cloned()
        .unwrap_or_else(|| format!("#{}", i + 1))
}

/// Piped: the line `loadctl run` prints each second, then one line per step of a journey.
fn plain(s: &Value, names: &[String]) -> Vec<String> {
    let mut lines = vec![format!(
        "[{:>4}s] {:>9.0} req/s  p99 {:>9}  errors {:>6}  conns {}",
        num(s, "t_s"),
        num(s, "rate_per_s"),
        us(s, "latency_p99_us"),
        num(s, "errors"),
        num(s, "active_connections")
    )];
    lines.extend(step_lines(s, names, false));
    lines
}

/// One line per step of a journey (none for a single request): aligned into columns for the
/// terminal table, or `step NAME: …` for plain output.
fn step_lines(s: &Value, names: &[String], aligned: bool) -> Vec<String> {
    let steps = s["steps"].as_array().map_or(&[][..], Vec::as_slice);
    if steps.len() <= 1 {
        return Vec::new();
    }
    let width = (0..steps.len())
        .map(|i| step_name(names, i).chars().count())
        .max()
        .unwrap_or(0);
    let (name_w, req_w, us_w) = if aligned { (width, 7, 9) } else { (0, 0, 0) };
    steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let name = step_name(names, i);
            let lead = if aligned {
                format!("  {name:<name_w$}  ")
            } else {
                format!("        step {name}: ")
            };
            format!(
                "{lead}{:>req_w$} req  p50 {:>us_w$}  p99 {:>us_w$}  errors {}  checks failed {}",
                num(st, "requests"),
                us(st, "latency_p50_us"),
                us(st, "latency_p99_us"),
                num(st, "errors"),
                num(st, "checks_failed")
            )
        })
        .collect()
}

/// On a terminal: the compact table, redrawn each second.
fn table(s: &Value, names: &[String]) -> Vec<String> {
    let requested = s["requested_per_s"].as_f64();
    let rate = match requested {
        Some(r) => format!("{:.0} req/s of {:.0} requested", num(s, "rate_per_s"), r),
        None => format!("{:.0} req/s (closed model)", num(s, "rate_per_s")),
    };
    let basis = if requested.is_some() {
        "corrected"
    } else {
        "service time"
    };
    let kinds: Vec<String> = s["errors_by_kind"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let errors = match num(s, "errors") as u64 {
        0 => "none".to_string(),
        n if kinds.is_empty() => n.to_string(),
        n => format!("{n}: {}", kinds.join(", ")),
    };
    let mut lines = vec![
        format!(
            "elapsed {:>5}s   rate {rate}   conns {}   schedule lag p99 {}",
            num(s, "t_s"),
            num(s, "active_connections"),
            us(s, "lag_p99_us")
        ),
        format!(
            "latency ({basis})  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            us(s, "latency_p50_us"),
            us(s, "latency_p90_us"),
            us(s, "latency_p99_us"),
            us(s, "latency_p999_us"),
            us(s, "latency_max_us")
        ),
        format!("errors  {errors}"),
    ];
    lines.extend(step_lines(s, names, true));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn interval() -> Value {
        json!({
            "t_s": 3.0, "rate_per_s": 4990.0, "requested_per_s": 5000.0, "errors": 3,
            "errors_by_kind": {"timeout": 2, "status_5xx": 1},
            "latency_p50_us": 900, "latency_p90_us": 1500, "latency_p99_us": 2500,
            "latency_p999_us": 4000, "latency_max_us": 9000, "lag_p99_us": 120,
            "active_connections": 12,
            "steps": [
                {"requests": 10, "errors": 0, "checks_failed": 0, "latency_p50_us": 800, "latency_p99_us": 2000},
                {"requests": 9, "errors": 3, "checks_failed": 1, "latency_p50_us": 1000, "latency_p99_us": 3000}
            ]
        })
    }

    #[test]
    fn table_shows_every_figure_and_each_step() {
        let t = table(&interval(), &["login".into(), "read".into()]);
        assert_eq!(t.len(), 5, "{t:#?}");
        assert!(
            t[0].contains("4990 req/s of 5000 requested") && t[0].contains("conns 12"),
            "{}",
            t[0]
        );
        assert!(t[0].contains("schedule lag p99 120µs"), "{}", t[0]);
        assert!(
            t[1].contains("(corrected)")
                && t[1].contains("p99.9 4.00ms")
                && t[1].contains("max 9.00ms"),
            "{}",
            t[1]
        );
        assert_eq!(t[2], "errors  3: status_5xx 1, timeout 2");
        assert!(
            t[3].starts_with("  login") && t[4].contains("checks failed 1"),
            "{t:#?}"
        );
    }

    #[test]
    fn plain_lines_keep_the_run_format_and_add_steps() {
        let p = plain(&interval(), &[]);
        assert_eq!(p.len(), 3);
        assert!(p[0].contains(" req/s  p99 "), "{}", p[0]);
        assert!(p[2].contains("step #2: 9 req"), "{}", p[2]);
        let mut one = interval();
        one["steps"] = json!([]);
        assert_eq!(plain(&one, &[]).len(), 1);
        assert_eq!(table(&one, &[]).len(), 3);
    }
}
