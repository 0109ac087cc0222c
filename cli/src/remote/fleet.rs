//! `loadctl submit --daemons A,B,C FILE`: one run split across several `loadd` daemons that
//! start together and are read as one.
//!
//! The scenario is validated here, split with `engine::run::split` (each daemon gets its share of the
//! load, and a disjoint slice of every `unique` feeder's rows), and each share is validated
//! again before anything is sent. Every daemon is given the same `start_at` (now + 2 s) and asked
//! for its full measurements; their event streams are followed concurrently (`follow`) and
//! merged exactly by interval index (`engine::run::fleet`) into one live tail, printed as `loadctl tail`
//! prints one run, and one result built and judged as one machine's would be, followed by a
//! per-daemon breakdown. `--result FILE` writes it as JSON with that breakdown under `fleet`.
//!
//! It refuses `[capacity]`, queueing (a queued share would miss the common start), and daemons
//! that do not stream their measurements. Ctrl-C stops every share gracefully; the merge goes on.

mod follow;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::plan::LoadModel;
use engine::run::fleet::{self as merge, DaemonRun, Merger, ShapeMap};
use engine::run::split::{self, Overrides, Share};
use engine::scenario::{self, Files, Source};
use engine::units::format_us;
use engine::Plan;
use serde_json::{json, Value};

use self::follow::Msg;
use super::bundle::Bundle;
use super::client::{ok_json, percent_encode, Client, Failure};
use super::tail::View;
use crate::args::{DaemonArgs, SubmitArgs};
use crate::exit;

/// How far ahead the common start is set: time to submit and plan on every daemon.
const START_DELAY: Duration = Duration::from_secs(2);

fn usage(message: String) -> Failure {
    Failure {
        message,
        code: exit::USAGE,
    }
}

/// One daemon's share, ready to send.
struct Part {
    url: String,
    /// What the share runs, for the submission line.
    summary: String,
    bundle: Bundle,
    /// `--task`: the daemon keeps only these tasks, as the plans here did.
    tasks: Vec<String>,
    map: ShapeMap,
}

pub(super) fn submit(args: &SubmitArgs) -> Result<u8, Failure> {
    let urls: Vec<String> = args
        .daemons
        .iter()
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if let Some(dup) = urls
        .iter()
        .enumerate()
        .find(|(i, u)| urls[..*i].contains(u))
    {
        return Err(usage(format!("error: --daemons lists {} twice", dup.1)));
    }
    if urls.is_empty() {
        return Err(usage("error: --daemons needs at least one URL".into()));
    }
    if args.no_queue {
        eprintln!("loadctl: --daemons never queues (a queued share would miss the common start)");
    }
    let (whole, parts) = prepare(args, &urls)?;
    let clients: Vec<Client> = parts
        .iter()
        .map(|p| {
            Client::new(&DaemonArgs {
                url: Some(p.url.clone()),
            })
        })
        .collect();
    let start_at = unix_ms() + START_DELAY.as_millis() as u64;
    let ids = submit_all(&parts, &clients, start_at)?;
    for (p, id) in parts.iter().zip(&ids) {
        eprintln!("submitted run {id} to {} ({})", p.url, p.summary);
    }
    if args.detach {
        for (p, id) in parts.iter().zip(&ids) {
            println!("{} {id}", p.url);
        }
        return Ok(exit::OK);
    }
    eprintln!(
        "{} daemons start together at Unix ms {start_at} (in {} ms by this machine's clock)",
        parts.len(),
        start_at.saturating_sub(unix_ms())
    );
    stop_all_on_interrupt(&urls_of(&parts), &ids);
    tail_all(
        &whole,
        parts,
        clients,
        ids,
        start_at,
        args.result.as_deref(),
    )
}

/// Validates the scenario, splits it and validates every share.
fn prepare(args: &SubmitArgs, urls: &[String]) -> Result<(Plan, Vec<Part>), Failure> {
    if let Some(s) = args.rate_scale {
        if !(s.is_finite() && s > 0.0) {
            return Err(usage(
                "error: --rate-scale must be a number greater than zero".into(),
            ));
        }
    }
    let bundle = Bundle::collect(
        &args.file,
        args.duration.as_deref(),
        args.base_url.as_deref(),
        &args.tasks,
    )?;
    let text = split::apply_overrides(
        &bundle.text,
        &Overrides {
            duration: args.duration.as_deref(),
            rate_scale: args.rate_scale,
            base_url: args.base_url.as_deref(),
        },
    )
    .map_err(|e| usage(format!("error: {e}")))?;
    let files: BTreeMap<String, Vec<u8>> = bundle.files.iter().cloned().collect();
    let whole = plan_of(&bundle.name, &text, &files, &args.tasks)
        .map_err(|e| usage(format!("error: {e}")))?;
    // Each daemon would run setup of its own, and teardown would count one share only.
    if !whole.phases.is_empty() {
        return Err(usage(
            "error: [[setup]] and [[teardown]] do not run across daemons yet: submit the file to one daemon".into(),
        ));
    }
    if whole.thresholds.iter().any(|t| t.abort_after_ns.is_some()) {
        eprintln!("loadctl: abort_on_fail is not applied across daemons: thresholds are judged on the merged result at the end");
    }
    let n = urls.len();
    let mut shares = Vec::with_capacity(n);
    for (i, url) in urls.iter().enumerate() {
        match split::split(&text, &whole, i, n).map_err(|e| usage(format!("error: {e}")))? {
            Some(share) => shares.push((url.clone(), share)),
            None => {
                eprintln!("loadctl: {url} gets no share: the load is too small to split {n} ways")
            }
        }
    }
    let unique = split::unique_feeder_files(&text).map_err(|e| usage(format!("error: {e}")))?;
    let taking = shares.len();
    let mut parts = Vec::with_capacity(taking);
    for (j, (url, share)) in shares.into_iter().enumerate() {
        let mut own = files.clone();
        for name in &unique {
            if let Some(bytes) = files.get(name) {
                let rows = split::split_rows(name, bytes, j, taking)
                    .map_err(|e| usage(format!("error: {e}")))?;
                own.insert(name.clone(), rows);
            }
        }
        let plan = plan_of(&bundle.name, &share.text, &own, &args.tasks).map_err(|e| {
            usage(format!(
                "error: the share for {url} does not plan (please report this): {e}"
            ))
        })?;
        let map = ShapeMap::between(&whole, &plan).map_err(|e| usage(format!("error: {e}")))?;
        parts.push(Part {
            url,
            summary: describe(&share, &plan),
            bundle: Bundle {
                name: bundle.name.clone(),
                text: share.text,
                files: own.into_iter().collect(),
                env: bundle.env.clone(),
            },
            tasks: args.tasks.clone(),
            map,
        });
    }
    Ok((whole, parts))
}

fn plan_of(
    name: &str,
    text: &str,
    files: &BTreeMap<String, Vec<u8>>,
    tasks: &[String],
) -> Result<Plan, String> {
    let source = Source::in_memory(name, text, Files::Bundle(files.clone()));
    let spec = scenario::parse(&source).map_err(|e| e.to_string())?;
    let mut plan = Plan::from_spec(&spec, &source).map_err(|e| e.to_string())?;
    if !tasks.is_empty() {
        plan.select_tasks(tasks)?;
    }
    if plan.capacity.is_some() {
        return Err(split::SplitError::Capacity.to_string());
    }
    Ok(plan)
}

/// "default: 200 arrivals, 4 connections" — what a share runs, for the submission line.
fn describe(share: &Share, plan: &Plan) -> String {
    share
        .scenarios
        .iter()
        .zip(&plan.scenarios)
        .map(|(name, sc)| match &sc.model {
            LoadModel::Open { schedule, .. } => format!(
                "{name}: {} arrivals, {} connections",
                schedule.total(),
                sc.connections
            ),
            LoadModel::Closed { requests, .. } => format!(
                "{name}: {} users{}",
                sc.connections,
                requests
                    .map(|r| format!(", {r} iterations"))
                    .unwrap_or_default()
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn urls_of(parts: &[Part]) -> Vec<String> {
    parts.iter().map(|p| p.url.clone()).collect()
}

/// Submits every share with the common start; on any refusal, stops those already accepted.
fn submit_all(parts: &[Part], clients: &[Client], start_at: u64) -> Result<Vec<String>, Failure> {
    let replies: Vec<Result<String, Failure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .zip(clients)
            .map(|(part, client)| {
                scope.spawn(move || {
                    let path = format!(
                        "/v1/runs?queue=false&stats=true&start_at={start_at}&name={}{}",
                        percent_encode(&part.bundle.name),
                        super::tasks_query(&part.tasks)
                    );
                    let (content_type, body) = part.bundle.encode();
                    let v = ok_json(client.post(&path, &content_type, &body)?)?;
                    Ok(v["id"].as_str().unwrap_or_default().to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Failure {
                        message: "error: a submission thread panicked".into(),
                        code: exit::NO_RESULT,
                    })
                })
            })
            .collect()
    });
    if replies.iter().all(Result::is_ok) {
        return Ok(replies.into_iter().flatten().collect());
    }
    let mut first = None;
    for ((part, client), reply) in parts.iter().zip(clients).zip(replies) {
        match reply {
            Ok(id) => {
                let _ = client.post(&format!("/v1/runs/{id}/stop"), "text/plain", b"");
                eprintln!("loadctl: stopped run {id} on {}", part.url);
            }
            Err(f) if first.is_none() => {
                first = Some(Failure {
                    message: format!("{} (from {})", f.message, part.url),
                    code: f.code,
                });
            }
            Err(f) => eprintln!("{} (from {})", f.message, part.url),
        }
    }
    Err(first.unwrap_or(Failure {
        message: "error: a submission failed".into(),
        code: exit::NO_RESULT,
    }))
}

/// Ctrl-C: a graceful stop of every share (their results still arrive and merge).
fn stop_all_on_interrupt(urls: &[String], ids: &[String]) {
    let targets: Vec<(Client, String)> = urls
        .iter()
        .map(|u| {
            Client::new(&DaemonArgs {
                url: Some(u.clone()),
            })
        })
        .zip(ids.to_vec())
        .collect();
    let _ = ctrlc::set_handler(move || {
        eprintln!("\nloadctl: stopping every share…");
        for (client, id) in &targets {
            let _ = client.post(&format!("/v1/runs/{id}/stop"), "text/plain", b"");
        }
    });
}

/// Follows every run, prints the merged intervals live, then the merged result.
fn tail_all(
    whole: &Plan,
    parts: Vec<Part>,
    clients: Vec<Client>,
    ids: Vec<String>,
    start_at: u64,
    result_file: Option<&std::path::Path>,
) -> Result<u8, Failure> {
    let (tx, rx) = mpsc::channel();
    let mut followers = Vec::with_capacity(parts.len());
    for (d, (client, id)) in clients.into_iter().zip(&ids).enumerate() {
        let handle = follow::spawn(d, client, id.clone(), tx.clone()).map_err(|e| Failure {
            message: format!("error: cannot start a thread: {e}"),
            code: exit::NO_RESULT,
        })?;
        followers.push(handle);
    }
    drop(tx);
    let urls: Vec<String> = parts.iter().map(|p| p.url.clone()).collect();
    let mut merger = Merger::new(whole, parts.into_iter().map(|p| p.map).collect());
    let mut view = View {
        live: std::io::stdout().is_terminal(),
        steps: whole.steps().map(|s| s.name.clone()).collect(),
        drawn: 0,
    };
    let (finished, failures) = merge_messages(&rx, &mut merger, &mut view, &urls);
    for f in followers {
        let _ = f.join();
    }
    let mut out = std::io::stdout().lock();
    if view.drawn > 0 {
        let _ = writeln!(out);
    }
    if !failures.is_empty() {
        let _ = out.flush();
        for f in &failures {
            eprintln!("error: {f}");
        }
        eprintln!(
            "error: no merged result: every daemon's run must finish (runs: {})",
            ids.join(", ")
        );
        return Ok(exit::NO_RESULT);
    }
    let daemons: Vec<DaemonRun> = urls
        .into_iter()
        .zip(ids)
        .zip(finished)
        .filter_map(|((url, id), r)| {
            r.map(|results| DaemonRun {
                url,
                id,
                results: *results,
            })
        })
        .collect();
    let intervals = std::mem::take(&mut merger.intervals);
    let results = merge::results(whole, merger.merged_totals(), intervals, &daemons);
    let _ = writeln!(out, "{}", engine::report::text::render(&results));
    let _ = write!(out, "{}", breakdown(&daemons, start_at));
    let _ = out.flush();
    if let Some(path) = result_file {
        let mut doc = serde_json::to_value(&results).unwrap_or(Value::Null);
        if let Some(o) = doc.as_object_mut() {
            o.insert("fleet".into(), fleet_json(&daemons, start_at));
        }
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|e| Failure {
            message: format!("error: cannot write {}: {e}", path.display()),
            code: exit::NO_RESULT,
        })?;
    }
    Ok(exit::of_results(&results))
}

/// Feeds each follower's messages to the merger and shows merged intervals as they complete;
/// what each daemon finished with, and what went wrong.
fn merge_messages(
    rx: &mpsc::Receiver<(usize, Msg)>,
    merger: &mut Merger,
    view: &mut View,
    urls: &[String],
) -> (Vec<Option<Box<engine::Results>>>, Vec<String>) {
    let mut finished: Vec<Option<Box<engine::Results>>> = (0..urls.len()).map(|_| None).collect();
    let mut failures: Vec<String> = Vec::new();
    let show = |view: &mut View, ready: Vec<engine::results::IntervalSummary>| {
        for iv in ready {
            view.interval(&serde_json::to_value(&iv).unwrap_or(Value::Null));
        }
    };
    // Every follower ends with Finished or Failed, then drops its sender: the loop ends.
    for (d, msg) in rx.iter() {
        match msg {
            Msg::Interval {
                index,
                summary,
                stats,
            } => match merger.interval(d, index, &summary, &stats) {
                Ok(ready) => show(view, ready),
                Err(e) => failures.push(format!("{}: {e}", urls[d])),
            },
            Msg::Totals(stats) => {
                if let Err(e) = merger.totals(d, &stats) {
                    failures.push(format!("{}: {e}", urls[d]));
                }
            }
            Msg::Finished(results) => {
                finished[d] = Some(results);
                let ready = merger.end(d);
                show(view, ready);
            }
            Msg::Failed(why) => {
                failures.push(format!("{}: {why}", urls[d]));
                let ready = merger.end(d);
                show(view, ready);
            }
        }
    }
    (finished, failures)
}

/// Where each daemon's origin fell against the common start (by its own clock), in ms.
fn start_lag_ms(d: &DaemonRun, start_at: u64) -> i64 {
    d.results.environment.started_unix_ms as i64 - start_at as i64
}

/// The per-daemon lines printed under the merged summary.
fn breakdown(daemons: &[DaemonRun], start_at: u64) -> String {
    let mut o = format!(
        "Daemons    {} started at Unix ms {start_at}; each line: its share, and when its schedule began after that (its own clock)\n",
        daemons.len()
    );
    for d in daemons {
        let r = &d.results;
        o.push_str(&format!(
            "  {}  run {}  {} req ({:.1}/s)  errors {}  p50 {}  p99 {}  start +{} ms\n",
            d.url,
            d.id,
            r.requests,
            r.rate_per_s,
            r.errors_total,
            format_us(r.latency_us.p50),
            format_us(r.latency_us.p99),
            start_lag_ms(d, start_at)
        ));
    }
    o
}

/// The breakdown as JSON, under `fleet` in `--result`.
fn fleet_json(daemons: &[DaemonRun], start_at: u64) -> Value {
    json!({
        "start_at_unix_ms": start_at,
        "daemons": daemons.iter().map(|d| json!({
            "url": d.url,
            "run_id": d.id,
            "requests": d.results.requests,
            "rate_per_s": d.results.rate_per_s,
            "errors_total": d.results.errors_total,
            "latency_us": d.results.latency_us,
            "elapsed_s": d.results.elapsed_s,
            "started_unix_ms": d.results.environment.started_unix_ms,
            "start_lag_ms": start_lag_ms(d, start_at),
            "warnings": d.results.warnings,
        })).collect::<Vec<_>>(),
    })
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
