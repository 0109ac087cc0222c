//! Reports from the command line: `loadctl report SOURCE` renders a saved result file (or asks
//! loadd for a run's report when SOURCE is not a file), and `loadctl run --report FILE --hlog
//! FILE` writes a run's reports as it ends.
//!
//! Files a run writes are created before the run starts, so a path that cannot be written
//! fails before any traffic is sent. The `.hlog` is written second by second, never held in
//! memory. It refuses to render a file that is not a `loadd.results.v1` result.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use engine::metrics::stats::StatsSet;
use engine::report::hlog::{corrected_latency, HlogWriter, V2DeflateSerializer};
use engine::report::{self, Format};
use engine::results::Environment;
use engine::run::RunEvent;
use engine::Results;

use crate::args::{ReportArgs, ReportFormat, RunArgs};
use crate::exit;

/// Reads a saved result; the message says what is wrong with the file.
pub fn read_results(path: &Path) -> Result<Results, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "error: {} is not a loadd result ({}): {e}",
            path.display(),
            engine::results::SCHEMA
        )
    })
}

/// Whether SOURCE names a result file rather than a loadd run id: a file that exists, or
/// something that looks like a path (so a mistyped file name is not sent to loadd as an id).
pub fn is_file(source: &str) -> bool {
    Path::new(source).is_file()
        || source.contains(std::path::MAIN_SEPARATOR)
        || source.ends_with(".json")
}

/// `loadctl report SOURCE`: a result file, or else a loadd run id.
pub fn report(args: &ReportArgs) -> u8 {
    let path = Path::new(&args.source);
    let text = if is_file(&args.source) {
        let Some(format) = args.format.document() else {
            eprintln!(
                "error: a result file holds no histograms: write an interval log with `loadctl run --hlog FILE`, or ask loadd for a run's (`loadctl report RUN_ID --format hlog`)"
            );
            return exit::USAGE;
        };
        match read_results(path) {
            Ok(r) => report::render(&r, format),
            Err(message) => {
                eprintln!("{message}");
                return exit::USAGE;
            }
        }
    } else {
        match crate::remote::fetch_report(&args.daemon, &args.source, args.format.name()) {
            Ok(body) => body,
            Err(code) => return code,
        }
    };
    match write_out(args.output.as_deref(), &text) {
        Ok(()) => exit::OK,
        Err(message) => {
            eprintln!("{message}");
            exit::NO_RESULT
        }
    }
}

/// Writes `text` to `path`, or to stdout (with a final newline) when there is none.
pub fn write_out(path: Option<&Path>, text: &str) -> Result<(), String> {
    match path {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("error: cannot write {}: {e}", p.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            let mut r = out.write_all(text.as_bytes());
            if !text.ends_with('\n') {
                r = r.and_then(|()| writeln!(out));
            }
            // A closed pipe (`| head`) is the reader's choice, not an error worth a message.
            let _ = r;
            Ok(())
        }
    }
}

/// The files `loadctl run --report/--hlog` writes, created before the run.
pub struct RunFiles {
    report: Option<(PathBuf, Format)>,
    hlog: Option<(PathBuf, File)>,
    serializer: V2DeflateSerializer,
    scenario_sha256: Option<String>,
    quiet: bool,
}

impl RunFiles {
    /// Creates (truncates) the files the flags name; exit code 2 when one cannot be.
    pub fn create(args: &RunArgs) -> Result<Self, u8> {
        let usage = |message: String| {
            eprintln!("{message}");
            exit::USAGE
        };
        let report = match &args.report {
            Some(path) => {
                let format = match args.report_format {
                    Some(ReportFormat::Hlog) => {
                        return Err(usage(
                            "error: --report-format hlog: use --hlog FILE for an interval log"
                                .into(),
                        ))
                    }
                    Some(f) => f.document(),
                    None => Format::from_path(path),
                };
                let Some(format) = format else {
                    return Err(usage(format!(
                        "error: --report {}: say the format with an extension (.html, .md, .json, .csv) or --report-format",
                        path.display()
                    )));
                };
                File::create(path)
                    .map_err(|e| usage(format!("error: cannot create {}: {e}", path.display())))?;
                Some((path.clone(), format))
            }
            None => None,
        };
        let hlog = match &args.hlog {
            Some(path) => {
                let file = File::create(path)
                    .map_err(|e| usage(format!("error: cannot create {}: {e}", path.display())))?;
                Some((path.clone(), file))
            }
            None => None,
        };
        let target = Path::new(&args.target);
        let scenario_sha256 =
            if target.extension().is_some_and(|e| e == "toml") && !args.target.contains("://") {
                std::fs::read(target)
                    .ok()
                    .map(|b| Environment::sha256_hex(&b))
            } else {
                None
            };
        Ok(Self {
            report,
            hlog,
            serializer: V2DeflateSerializer::new(),
            scenario_sha256,
            quiet: args.quiet,
        })
    }

    /// What follows the run's events and writes as they come.
    pub fn recorder(&mut self) -> Recorder<'_> {
        let (hlog_path, hlog_out) = match &mut self.hlog {
            Some((p, out)) => (Some(p.clone()), Some(out)),
            None => (None, None),
        };
        Recorder {
            files: RecorderFiles {
                report: self.report.clone(),
                scenario_sha256: self.scenario_sha256.clone(),
                quiet: self.quiet,
                hlog_path,
            },
            pending: hlog_out.map(|out| (out, &mut self.serializer)),
            hlog: None,
            failure: None,
        }
    }
}

struct RecorderFiles {
    report: Option<(PathBuf, Format)>,
    scenario_sha256: Option<String>,
    quiet: bool,
    hlog_path: Option<PathBuf>,
}

/// Follows a run: starts the `.hlog` when the run starts, appends each second, and writes the
/// report at the end.
pub struct Recorder<'a> {
    files: RecorderFiles,
    /// The `.hlog` before the run starts (its base time is the start).
    pending: Option<(&'a mut File, &'a mut V2DeflateSerializer)>,
    hlog: Option<HlogWriter<'a, File>>,
    /// The first write error; reported at the end, the run goes on.
    failure: Option<String>,
}

impl Recorder<'_> {
    fn fail(&mut self, e: std::io::Error) {
        if self.failure.is_none() {
            let path = self.files.hlog_path.as_deref().unwrap_or(Path::new(""));
            self.failure = Some(format!("error: cannot write {}: {e}", path.display()));
        }
        self.hlog = None;
    }

    pub fn observe(&mut self, event: &RunEvent) {
        match event {
            RunEvent::Started { .. } => {
                if let Some((out, serializer)) = self.pending.take() {
                    let comment = format!("loadd {} corrected latency", env!("CARGO_PKG_VERSION"));
                    match HlogWriter::begin(out, serializer, SystemTime::now(), &comment) {
                        Ok(w) => self.hlog = Some(w),
                        Err(e) => self.fail(e),
                    }
                }
            }
            RunEvent::Interval(iv) => {
                if let Some(w) = &mut self.hlog {
                    let start = Duration::from_secs_f64((iv.summary.t_s - 1.0).max(0.0));
                    let written =
                        w.interval(start, Duration::from_secs(1), &corrected_latency(&iv.stats));
                    if let Err(e) = written {
                        self.fail(e);
                    }
                }
            }
            RunEvent::Finished(_) => {}
        }
    }

    /// Notes the scenario's fingerprint in `results`, completes the `.hlog` and writes the
    /// report. Exit code 3 when a file could not be written.
    pub fn finish(mut self, results: &mut Results, totals: &StatsSet) -> Result<(), u8> {
        if results.environment.scenario_sha256.is_none() {
            results.environment.scenario_sha256 = self.files.scenario_sha256.take();
        }
        // Lines went straight to the file (unbuffered: a killed run keeps the seconds it had).
        if let Some(w) = self.hlog.take() {
            let end = Duration::from_secs_f64(results.elapsed_s.max(0.0));
            match w.finish(&corrected_latency(totals), end) {
                Ok(()) if !self.files.quiet => {
                    if let Some(p) = &self.files.hlog_path {
                        eprintln!("interval log written to {}", p.display());
                    }
                }
                Ok(()) => {}
                Err(e) => self.fail(e),
            }
        }
        let mut failed = self.failure.take();
        if let Some((path, format)) = &self.files.report {
            if let Err(m) = write_out(Some(path), &report::render(results, *format)) {
                failed.get_or_insert(m);
            } else if !self.files.quiet {
                eprintln!("report written to {}", path.display());
            }
        }
        match failed {
            Some(m) => {
                eprintln!("{m}");
                Err(exit::NO_RESULT)
            }
            None => Ok(()),
        }
    }
}
