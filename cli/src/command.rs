//! The commands: turn flags and files into a `Plan`, run it, print progress and results.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use engine::plan::Plan;
use engine::run::RunEvent;
use engine::scenario::{self, unspanned, CountSpec, ScenarioSpec, Source};
use engine::units::format_duration;
use engine::units::format_us;

use crate::args::{Command, Output, RunArgs};
use crate::exit;

/// Runs a parsed command; returns the exit code.
pub fn dispatch(command: Command) -> u8 {
    match command {
        Command::Run(args) => run(&args),
        Command::Validate { file } => match plan_from_file(&file, None) {
            Ok(_) => {
                println!("{}: ok", file.display());
                exit::OK
            }
            Err(code) => code,
        },
        Command::Submit(a) => crate::remote::submit(&a),
        Command::Tail(a) => crate::remote::tail(&a),
        Command::Status(a) => crate::remote::status(&a),
        Command::List(a) => crate::remote::list(&a),
        Command::Stop(a) => crate::remote::stop(&a),
        Command::Report(a) => crate::report::report(&a),
        Command::Compare(a) => crate::compare::compare(&a),
    }
}

fn is_scenario_file(target: &str) -> bool {
    target.ends_with(".toml") && !target.contains("://")
}

fn run(args: &RunArgs) -> u8 {
    let plan = if is_scenario_file(&args.target) {
        plan_from_file(Path::new(&args.target), Some(args))
    } else {
        let mut spec = ScenarioSpec::for_url(args.target.clone());
        apply_flags(&mut spec, args);
        plan_from(&spec, &Source::command_line())
    };
    let Ok(mut plan) = plan else {
        return exit::USAGE;
    };
    if !args.tasks.is_empty() {
        if let Err(why) = plan.select_tasks(&args.tasks) {
            eprintln!("error: {why}");
            return exit::USAGE;
        }
    }
    if let Some(cap) = plan.capacity.clone() {
        return crate::capacity::run(&plan, cap, args);
    }
    if args.smoke {
        plan.smoke(Duration::from_secs(2));
    }
    let mut files = match crate::report::RunFiles::create(args) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let mut recorder = files.recorder();
    let handle = match engine::start(&plan) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    // Ctrl-C stops gracefully and still prints results (as k6 does); a second one exits.
    let stopper = handle.stopper();
    let interrupted = std::sync::atomic::AtomicBool::new(false);
    let _ = ctrlc::set_handler(move || {
        if interrupted.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(exit::INTERRUPTED);
        }
        eprintln!("stopping: finishing in-flight requests (Ctrl-C again to quit now)");
        stopper.stop();
    });
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let mut finished = None;
    for event in handle.events().iter() {
        recorder.observe(&event);
        match event {
            RunEvent::Started {
                shards,
                connections,
                connection_cap,
            } if progress => {
                eprintln!(
                    "running {} against {} with {connections} connections (cap {connection_cap}) on {shards} shard(s)",
                    describe(&plan),
                    plan.target.url
                );
            }
            RunEvent::Interval(iv) if progress => {
                let s = &iv.summary;
                eprintln!(
                    "[{:>4}s] {:>9.0} req/s  p99 {:>9}  errors {:>6}  conns {}",
                    s.t_s,
                    s.rate_per_s,
                    format_us(s.latency_p99_us),
                    s.errors,
                    s.active_connections
                );
            }
            RunEvent::Finished(f) => finished = Some(f),
            _ => {}
        }
    }
    let Some(finished) = finished else {
        let why = handle.fault();
        let why = why.as_deref().unwrap_or("see the messages above");
        eprintln!("error: the run ended without a result: {why}");
        return exit::NO_RESULT;
    };
    let mut results = finished.results;
    let files_written = recorder.finish(&mut results, &finished.totals);
    let mut out = std::io::stdout().lock();
    let written = match args.output {
        Output::Json => serde_json::to_writer(&mut out, &results).map_err(std::io::Error::from),
        Output::Text => out.write_all(engine::report::text::render(&results).as_bytes()),
    };
    let _ = written.and_then(|()| writeln!(out));
    files_written
        .err()
        .unwrap_or_else(|| exit::of_results(&results))
}

fn describe(plan: &Plan) -> String {
    let one = |s: &engine::plan::ScenarioPlan| match &s.model {
        engine::plan::LoadModel::Closed {
            duration,
            requests,
            per_vu,
            ..
        } => match (duration, requests, per_vu) {
            (_, _, Some(n)) => format!("{n} iterations per user (closed model)"),
            (_, Some(n), _) => format!("{n} iterations (closed model)"),
            (Some(d), None, None) => format!("{} (closed model)", format_duration(*d)),
            (None, None, None) => "closed model".into(),
        },
        engine::plan::LoadModel::Open { schedule, .. } => format!(
            "{} at up to {} req/s (open model)",
            format_duration(Duration::from_nanos(schedule.end_ns())),
            schedule.peak_rate_per_s()
        ),
    };
    match plan.scenarios.as_slice() {
        [s] => one(s),
        many => many
            .iter()
            .map(|s| {
                let start = if s.start_after.is_zero() {
                    String::new()
                } else {
                    format!(" from {}", format_duration(s.start_after))
                };
                format!("{}: {}{start}", s.name, one(s))
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn plan_from_file(path: &Path, flags: Option<&RunArgs>) -> Result<Plan, u8> {
    let (mut spec, source) = match scenario::load(path) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::USAGE);
        }
    };
    if let Some(args) = flags {
        apply_flags(&mut spec, args);
    }
    plan_from(&spec, &source)
}

fn plan_from(spec: &ScenarioSpec, source: &Source) -> Result<Plan, u8> {
    Plan::from_spec(spec, source).map_err(|errors| {
        for e in &errors.0 {
            eprintln!("error: {e}");
        }
        exit::USAGE
    })
}

/// Hops `-L` follows without `--max-redirs` (k6's default; curl's is 50).
const CURL_L_HOPS: u64 = 10;

/// Flags override what a file says.
fn apply_flags(spec: &mut ScenarioSpec, a: &RunArgs) {
    if let Some(base) = &a.base_url {
        spec.target.url = unspanned(scenario::rebase(spec.target.url.get_ref(), base));
    }
    if a.http2 {
        spec.target.http = Some(unspanned("2".into()));
    }
    if let Some(s) = a.streams {
        spec.target.streams = Some(unspanned(s));
    }
    if a.location {
        spec.request.follow_redirects = Some(unspanned(a.max_redirs.unwrap_or(CURL_L_HOPS)));
    }
    if a.compressed {
        spec.request.compressed = Some(unspanned(true));
    }
    if a.insecure {
        spec.tls
            .get_or_insert_with(Default::default)
            .insecure_skip_verify = true;
    }
    let websocket = ["ws://", "wss://"]
        .iter()
        .any(|s| spec.target.url.get_ref().starts_with(s));
    if websocket {
        // For a ws:// target, -R is messages per second in all and --body the message.
        let ws = spec.websocket.get_or_insert_with(Default::default);
        if let Some(r) = a.rate {
            let users = a
                .connections
                .or_else(|| spec.load.connections.as_ref().map(|c| *c.get_ref()))
                .unwrap_or(10)
                .max(1);
            ws.rate = Some(unspanned(r / users as f64));
        }
        if let Some(b) = &a.body {
            ws.message = Some(unspanned(b.clone()));
        }
    }
    let load = &mut spec.load;
    if let Some(c) = a.connections {
        load.connections = Some(unspanned(c));
    }
    if let Some(d) = a.duration {
        load.duration = Some(unspanned(format_duration(d)));
    }
    if let Some(n) = a.requests {
        load.requests = Some(unspanned(CountSpec::Int(n.min(i64::MAX as u64) as i64)));
    }
    if let Some(r) = a.rate.filter(|_| !websocket) {
        load.rate = Some(unspanned(CountSpec::Float(r)));
        load.stages = None;
        load.model = Some(unspanned("open".into()));
    }
    let req = &mut spec.request;
    if let Some(m) = &a.method {
        req.method = Some(unspanned(m.clone()));
    }
    req.headers
        .extend(a.headers.iter().map(|h| unspanned(h.clone())));
    if let Some(b) = a.body.as_ref().filter(|_| !websocket) {
        req.body = Some(unspanned(b.clone()));
        req.body_file = None;
    }
    if let Some(f) = &a.body_file {
        req.body_file = Some(unspanned(f.display().to_string()));
        req.body = None;
    }
    if let Some(t) = a.timeout {
        req.timeout = Some(unspanned(format_duration(t)));
    }
    if let Some(t) = a.connect_timeout {
        req.connect_timeout = Some(unspanned(format_duration(t)));
    }
    let eng = &mut spec.engine;
    if let Some(t) = a.threads {
        eng.threads = Some(unspanned(t));
    }
    if let Some(c) = &a.cpus {
        eng.cpus = Some(unspanned(c.clone()));
    }
    if let Some(d) = a.driver {
        eng.driver = Some(unspanned(d.name().into()));
    }
    if let Some(ips) = &a.local_ips {
        eng.local_ips = Some(unspanned(ips.clone()));
    }
}
