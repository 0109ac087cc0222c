//! Reports end to end: a real run against the sandbox writes a self-contained HTML report that
//! headless Chromium renders with its charts and without console errors, an `.hlog` that
//! HdrHistogram's own interval-log reader reads back with the run's count, and results that
//! `loadctl report` re-renders; `loadctl compare` tells two runs of one endpoint (exit 0) from
//! a slowed endpoint (exit 1); loadd serves the same reports for its runs.
//!
//! Runs are 3 s at 200 req/s; Chromium and every child process are killed past their bound.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde_json::Value;
use testbed::{run_bounded, run_loadctl_timeout, Daemon, Sandbox};

const CHROMIUM: &str = "/usr/bin/chromium";
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const CHART_IDS: [&str; 6] = [
    "chart-rate",
    "chart-latency",
    "chart-errors",
    "chart-connections",
    "chart-lag",
    "chart-percentiles",
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `loadctl run URL` at 200 req/s for 3 s with `extra` flags; its JSON result saved to `json`.
fn run(url: &str, json: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "run", url, "-R", "200", "-c", "10", "-d", "3s", "-q", "--output", "json",
    ];
    args.extend_from_slice(extra);
    let out = run_loadctl_timeout(&args, RUN_TIMEOUT);
    assert!(
        out.status.success(),
        "loadctl {args:?}: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    std::fs::write(json, &out.stdout).expect("save the result");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

/// Every interval of an `.hlog`, decoded with HdrHistogram's reader.
fn read_hlog(log: &str) -> Vec<(Duration, Histogram<u64>)> {
    let mut base_time = false;
    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(log.as_bytes()) {
        match entry.unwrap_or_else(|e| panic!("hlog does not parse: {e:?}\n{log}")) {
            LogEntry::BaseTime(_) => base_time = true,
            LogEntry::StartTime(_) => {}
            LogEntry::Interval(i) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(i.encoded_histogram())
                    .expect("base64 histogram");
                let h: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut bytes.as_slice())
                    .expect("V2 histogram");
                // Interval_Max is in ms, the histogram in µs.
                let max_ms = h.max() as f64 / 1000.0;
                assert!(
                    (i.max() - max_ms).abs() < 0.002,
                    "max {} vs {max_ms}",
                    i.max()
                );
                intervals.push((i.start_timestamp(), h));
            }
        }
    }
    assert!(base_time, "no #[BaseTime] in\n{log}");
    intervals
}

/// Chromium's rendered DOM of `page` and what it logged.
fn render_in_chromium(page: &Path, profile: &Path) -> (String, String) {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: the HTML report is checked in headless Chromium. \
         scripts/test.sh installs it (apt-get install chromium)"
    );
    let out = run_bounded(
        Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("file://{}", page.display())),
        Duration::from_secs(90),
    );
    assert!(
        out.status.success(),
        "chromium: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_run_writes_an_html_report_chromium_renders_and_an_hlog_hdrhistogram_reads() {
    let _load = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let html = tmp.path().join("x.html");
    let hlog = tmp.path().join("x.hlog");
    let json = tmp.path().join("x.json");
    let r = run(
        &sandbox.url("/delay/1"),
        &json,
        &[
            "--report",
            html.to_str().expect("utf-8 path"),
            "--hlog",
            hlog.to_str().expect("utf-8 path"),
        ],
    );
    let requests = r["requests"].as_u64().expect("requests");
    assert!(requests >= 500, "{r}");
    assert!(
        r["environment"]["kernel"]
            .as_str()
            .is_some_and(|k| !k.is_empty()),
        "{r}"
    );
    assert!(!r["latency_distribution"]
        .as_array()
        .expect("distribution")
        .is_empty());

    // Self-contained: nothing to fetch, from anywhere.
    let page = std::fs::read_to_string(&html).expect("html report");
    for loads in [
        "<script", "<link", "src=", "href=", "url(", "@import", "<iframe", "<img",
    ] {
        assert!(!page.contains(loads), "the report loads something: {loads}");
    }
    let (dom, log) = render_in_chromium(&html, &tmp.path().join("chromium"));
    for id in CHART_IDS {
        assert!(
            dom.contains(&format!("data-chart=\"{id}\"")),
            "{id} missing from the rendered DOM"
        );
    }
    assert!(dom.matches("<svg").count() >= CHART_IDS.len(), "{dom}");
    assert!(dom.contains("<polyline"), "charts have no lines");
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "console output: {console:?}");

    // The interval log: one histogram a second plus the drain, adding up to the run's count.
    let intervals = read_hlog(&std::fs::read_to_string(&hlog).expect("hlog"));
    assert!(intervals.len() >= 3, "{} intervals", intervals.len());
    let total: u64 = intervals.iter().map(|(_, h)| h.len()).sum();
    assert_eq!(total, r["latency_us"]["count"].as_u64().expect("count"));
    assert_eq!(intervals[0].0, Duration::ZERO);
    assert_eq!(intervals[1].0, Duration::from_secs(1));
    // /delay/1: every latency is at least a millisecond.
    assert!(intervals
        .iter()
        .all(|(_, h)| h.is_empty() || h.min() >= 1000));

    // The saved result renders again locally, in every format.
    let report = |format: &str| {
        run_loadctl_timeout(
            [
                "report",
                json.to_str().expect("utf-8 path"),
                "--format",
                format,
            ],
            RUN_TIMEOUT,
        )
    };
    let md = report("md");
    assert!(md.status.success(), "{}", text(&md.stderr));
    assert!(text(&md.stdout).contains(&format!("| Requests | {} |", group(requests))));
    let csv = text(&report("csv").stdout);
    assert!(csv.starts_with("interval,t_s,requests,"), "{csv}");
    assert_eq!(
        csv.lines().count(),
        r["intervals"].as_array().expect("intervals").len() + 1
    );
    assert!(text(&report("steps-csv").stdout).contains("GET /delay/1"));
    assert!(text(&report("html").stdout).contains("data-chart=\"chart-percentiles\""));
    let hlog_of_file = report("hlog");
    assert_eq!(
        hlog_of_file.status.code(),
        Some(2),
        "{}",
        text(&hlog_of_file.stderr)
    );
}

fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn compare(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["compare"];
    all.extend_from_slice(args);
    let out = run_loadctl_timeout(&all, RUN_TIMEOUT);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn compare_tells_noise_from_a_slower_endpoint() {
    let _load = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| tmp.path().join(name);
    let s = |p: &PathBuf| p.to_str().expect("utf-8 path").to_string();
    let (base, same, slow) = (path("base.json"), path("same.json"), path("slow.json"));
    run(&sandbox.url("/delay/1"), &base, &[]);
    run(&sandbox.url("/delay/1"), &same, &[]);
    run(&sandbox.url("/delay/20"), &slow, &[]);

    // Three seconds a run on a shared two-core machine: a wide tolerance for noise, still far
    // below the ~10x of /delay/20.
    let (code, out, err) = compare(&[&s(&base), &s(&same), "--tolerance", "25%"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("No significant regression"), "{out}");

    let (code, out, err) = compare(&[
        &s(&base),
        &s(&slow),
        "--tolerance",
        "25%",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let c: Value = serde_json::from_str(&out).expect("comparison JSON");
    assert_eq!(c["schema"], "loadd.compare.v1");
    assert_eq!(c["regression"], true, "{c}");
    let p50 = c["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .find(|t| t["scope"] == "overall" && t["metric"] == "p50")
        .expect("overall p50 test");
    assert_eq!(p50["verdict"], "regression", "{p50}");
    assert!(p50["change_low"].as_f64().unwrap_or(0.0) > 1.0, "{p50}");

    // Markdown for a pull request says so too.
    let (code, md, _) = compare(&[&s(&base), &s(&slow), "--format", "md"]);
    assert_eq!(code, Some(1));
    assert!(md.starts_with("### ❌ loadd compare: REGRESSION"), "{md}");

    // Bad input: exit 2, one line.
    let (code, _, err) = compare(&[&s(&base), &s(&path("missing.json"))]);
    assert_eq!(code, Some(2), "{err}");
    std::fs::write(path("not.json"), "{\"hello\": 1}").expect("write");
    let (code, _, err) = compare(&[&s(&base), &s(&path("not.json"))]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not a loadd result"), "{err}");
    let (code, _, _) = compare(&[&s(&base), &s(&same), "--tolerance", "lots"]);
    assert_eq!(code, Some(2));
}

#[test]
fn loadd_serves_the_same_reports_and_an_hlog() {
    let _load = testbed::serial();
    let sandbox = Sandbox::start().expect("sandbox");
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&tmp.path().join("state"), &[]).expect("loadd serve");
    let scenario = tmp.path().join("delay.toml");
    std::fs::write(
        &scenario,
        format!(
            "[target]\nurl = \"{}\"\n[load]\nmodel = \"open\"\nrate = 200\nconnections = 10\nduration = \"3s\"\n",
            sandbox.url("/delay/1")
        ),
    )
    .expect("scenario");
    let scenario = scenario.to_str().expect("utf-8 path");
    let submit = daemon.loadctl(&["submit", scenario], RUN_TIMEOUT);
    assert!(submit.success(), "{}", submit.stderr);
    let listed = daemon.loadctl(&["list"], RUN_TIMEOUT);
    let id = listed
        .stdout
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
        .expect("a run id");

    let report = |format: &str| daemon.loadctl(&["report", &id, "--format", format], RUN_TIMEOUT);
    let json: Value = serde_json::from_str(&report("json").stdout).expect("result JSON");
    let count = json["latency_us"]["count"].as_u64().expect("count");
    // The daemon fingerprints the scenario it ran.
    let sha = json["environment"]["scenario_sha256"]
        .as_str()
        .expect("sha");
    assert_eq!(sha.len(), 64, "{sha}");

    let hlog = report("hlog");
    assert!(hlog.success(), "{}", hlog.stderr);
    let intervals = read_hlog(&hlog.stdout);
    let total: u64 = intervals.iter().map(|(_, h)| h.len()).sum();
    assert_eq!(total, count);

    let html = report("html").stdout;
    for id in CHART_IDS {
        assert!(html.contains(&format!("data-chart=\"{id}\"")), "{id}");
    }
    assert!(html.contains("state finished"));
    let md = report("md").stdout;
    assert!(md.starts_with("### ℹ️ loadd: No thresholds"), "{md}");
    assert!(report("steps-csv").stdout.starts_with("step,requests,"));

    // A run id compares like a file.
    let saved = tmp.path().join("saved.json");
    std::fs::write(&saved, &report("json").stdout).expect("save");
    let same = daemon.loadctl(
        &["compare", &id, saved.to_str().expect("utf-8 path")],
        RUN_TIMEOUT,
    );
    assert_eq!(same.code, Some(0), "{}", same.stdout);
    assert!(same.stdout.contains("+0.0%"), "{}", same.stdout);
}
