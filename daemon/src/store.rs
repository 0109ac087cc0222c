//! The state directory: every run's files, written as the run goes, read back at start.
//!
//! Layout: `STATE_DIR/runs/{id}/` holds `scenario.toml` (as submitted), `files/` (the files
//! that travelled with it, each named by the hex of its relative name, so no submitted name
//! ever becomes a path), `state.json` (a [`RunMeta`], replaced atomically), `intervals.ndjson` (one JSON object per interval, appended
//! and flushed to the OS each second), `latency.hlog` (HdrHistogram interval log, a line a
//! second), `result.json` and `histogram.hdr` (V2+deflate) at the end.
//! Runs hold credentials (tokens in headers, bundled files), so every directory is created 0700
//! and every file 0600 whatever the umask. The scenario, the state and the result are fsynced
//! (the file, then its directory) before they count as written: a run is reported finished only
//! once its result would survive a power cut.
//! Loading never fails on what it finds: a corrupt or partial file is reported and skipped, and a
//! run that was queued or running when loadd died comes back `aborted`. It refuses to build a path
//! from anything but an id loadd generated itself.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Queued,
    Running,
    Finished,
    Aborted,
    Failed,
}

impl RunState {
    pub const ALL: [RunState; 5] = [
        RunState::Queued,
        RunState::Running,
        RunState::Finished,
        RunState::Aborted,
        RunState::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Aborted => "aborted",
            RunState::Failed => "failed",
        }
    }

    /// True once nothing more will happen to the run.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            RunState::Finished | RunState::Aborted | RunState::Failed
        )
    }
}

/// What `state.json` holds, and what a listing shows about a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunMeta {
    pub id: String,
    pub state: RunState,
    pub created_unix_ms: u64,
    /// The target URL, as the plan normalized it.
    pub target: String,
    /// A graceful stop was asked for (the results are kept).
    #[serde(default)]
    pub stop_requested: bool,
    /// Why the run failed or was aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Journey step names, in order: what `steps[i]` of an interval refers to.
    #[serde(default)]
    pub steps: Vec<String>,
    /// Mean requested arrival rate (open model only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_rate_per_s: Option<f64>,
}

/// A run as found on disk.
#[derive(Debug)]
pub struct StoredRun {
    pub meta: RunMeta,
    pub intervals: Vec<serde_json::Value>,
    pub result: Option<serde_json::Value>,
    pub histogram_v2: Option<Vec<u8>>,
}

/// The runs directory.
#[derive(Clone, Debug)]
pub struct Store {
    runs_dir: PathBuf,
}

const SCENARIO: &str = "scenario.toml";
const FILES: &str = "files";
const STATE: &str = "state.json";
const INTERVALS: &str = "intervals.ndjson";
const RESULT: &str = "result.json";
const HISTOGRAM: &str = "histogram.hdr";
const HLOG: &str = "latency.hlog";

impl Store {
    /// Opens (creating) `state_dir/runs`.
    pub fn open(state_dir: &Path) -> io::Result<Self> {
        let runs_dir = state_dir.join("runs");
        private_dir(&runs_dir)?;
        Ok(Self { runs_dir })
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.runs_dir.join(id)
    }

    /// Deletes a run's directory (`id` is one loadd generated: it comes from the registry).
    pub fn remove(&self, id: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.dir(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => sync_dir(&self.runs_dir),
        }
    }

    /// Writes a new run's scenario, its files and its state.
    pub fn create(
        &self,
        meta: &RunMeta,
        scenario: &str,
        files: &BTreeMap<String, Vec<u8>>,
    ) -> io::Result<()> {
        let dir = self.dir(&meta.id);
        private_dir(&dir)?;
        write_synced(&dir.join(SCENARIO), scenario.as_bytes())?;
        if !files.is_empty() {
            let files_dir = dir.join(FILES);
            private_dir(&files_dir)?;
            for (name, bytes) in files {
                write_synced(&files_dir.join(hex::encode(name.as_bytes())), bytes)?;
            }
            sync_dir(&files_dir)?;
        }
        self.write_state(meta)?;
        // The run's own entry in `runs/`.
        sync_dir(&self.runs_dir)
    }

    /// Replaces `state.json` atomically (write, then rename).
    pub fn write_state(&self, meta: &RunMeta) -> io::Result<()> {
        write_atomic(&self.dir(&meta.id).join(STATE), &serde_json::to_vec(meta)?)
    }

    /// Opens the run's interval log for appending.
    pub fn interval_log(&self, id: &str) -> io::Result<IntervalLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.dir(id).join(INTERVALS))?;
        Ok(IntervalLog { file })
    }

    /// Creates the run's HdrHistogram interval log (one corrected-latency histogram a second).
    pub fn hlog(&self, id: &str) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(self.dir(id).join(HLOG))
    }

    /// The run's interval log as written so far; `None` when it has none.
    pub fn read_hlog(&self, id: &str) -> io::Result<Option<String>> {
        match fs::read_to_string(self.dir(id).join(HLOG)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the final result and histogram, each on disk (fsynced) when this returns.
    pub fn write_result(
        &self,
        id: &str,
        result: &serde_json::Value,
        histogram_v2: Option<&[u8]>,
    ) -> io::Result<()> {
        let dir = self.dir(id);
        write_atomic(&dir.join(RESULT), &serde_json::to_vec(result)?)?;
        if let Some(h) = histogram_v2 {
            write_atomic(&dir.join(HISTOGRAM), h)?;
        }
        Ok(())
    }

    /// Reads every run back. A run left queued or running is marked aborted (and saved so).
    /// Problems are returned as messages beside the runs, never as an error.
    pub fn load_all(&self) -> (Vec<StoredRun>, Vec<String>) {
        let mut runs = Vec::new();
        let mut problems = Vec::new();
        let entries = match fs::read_dir(&self.runs_dir) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("{}: {e}", self.runs_dir.display()));
                return (runs, problems);
            }
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            match self.load_one(&dir, &mut problems) {
                Ok(run) => runs.push(run),
                Err(why) => problems.push(format!("{}: skipped: {why}", dir.display())),
            }
        }
        runs.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
        (runs, problems)
    }

    fn load_one(&self, dir: &Path, problems: &mut Vec<String>) -> Result<StoredRun, String> {
        let state_path = dir.join(STATE);
        let bytes = fs::read(&state_path).map_err(|e| format!("{STATE}: {e}"))?;
        let mut meta: RunMeta =
            serde_json::from_slice(&bytes).map_err(|e| format!("{STATE}: {e}"))?;
        // The directory name is the id: never trust a path from inside a file.
        if dir.file_name().and_then(|n| n.to_str()) != Some(meta.id.as_str()) {
            return Err(format!(
                "{STATE}: id {:?} does not match its directory",
                meta.id
            ));
        }
        let intervals = read_intervals(&dir.join(INTERVALS), problems);
        let result = match fs::read(dir.join(RESULT)) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(format!("{}: {RESULT}: {e}", dir.display()));
                    None
                }
            },
            Err(_) => None,
        };
        let histogram_v2 = fs::read(dir.join(HISTOGRAM)).ok();
        if !meta.state.is_over() {
            meta.state = RunState::Aborted;
            meta.error = Some("loadd stopped before the run ended".into());
            if let Err(e) = self.write_state(&meta) {
                problems.push(format!("{}: {STATE}: {e}", dir.display()));
            }
        } else if meta.state == RunState::Finished && result.is_none() {
            meta.state = RunState::Aborted;
            meta.error = Some("the result file is missing or unreadable".into());
        }
        Ok(StoredRun {
            meta,
            intervals,
            result,
            histogram_v2,
        })
    }
}

/// Interval lines; a torn or corrupt line (kill -9 mid-write) ends the log there.
fn read_intervals(path: &Path, problems: &mut Vec<String>) -> Vec<serde_json::Value> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let parsed = line
            .map_err(|e| e.to_string())
            .and_then(|l| serde_json::from_str(&l).map_err(|e| e.to_string()));
        match parsed {
            Ok(v) => out.push(v),
            Err(e) => {
                problems.push(format!(
                    "{}:{}: {e}; later lines skipped",
                    path.display(),
                    n + 1
                ));
                break;
            }
        }
    }
    out
}

/// A directory only its owner may enter (0700 whatever the umask; an existing one is tightened).
fn private_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
}

/// Writes a new 0600 file and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Fsyncs a directory, so the names created or renamed in it are on disk too.
fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new content, never a
/// torn one: a synced temporary file, renamed over, then the directory synced.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    write_synced(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// A run's `intervals.ndjson`, open for appending.
pub struct IntervalLog {
    file: File,
}

impl IntervalLog {
    /// Appends one line and hands it to the OS, so it survives the process being killed.
    pub fn append(&mut self, interval: &serde_json::Value) -> io::Result<()> {
        let mut line = serde_json::to_vec(interval)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, state: RunState) -> RunMeta {
        RunMeta {
            id: id.into(),
            state,
            created_unix_ms: 1,
            target: "http://127.0.0.1:1/".into(),
            stop_requested: false,
            error: None,
            steps: Vec::new(),
            requested_rate_per_s: None,
        }
    }

    #[test]
    fn round_trip_and_recovery() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        store
            .create(
                &meta("a", RunState::Finished),
                "[target]\n",
                &BTreeMap::new(),
            )
            .unwrap();
        store
            .write_result("a", &serde_json::json!({"requests": 3}), Some(b"hist"))
            .unwrap();
        store
            .create(
                &meta("b", RunState::Running),
                "[target]\n",
                &BTreeMap::from([("x/y.bin".to_string(), b"12".to_vec())]),
            )
            .unwrap();
        let mut log = store.interval_log("b").unwrap();
        log.append(&serde_json::json!({"t_s": 1.0})).unwrap();
        log.append(&serde_json::json!({"t_s": 2.0})).unwrap();
        // A torn last line, as after kill -9.
        fs::OpenOptions::new()
            .append(true)
            .open(tmp.path().join("runs/b/intervals.ndjson"))
            .unwrap()
            .write_all(b"{\"t_s\": 3")
            .unwrap();
        // Garbage that must be skipped, not fatal.
        fs::create_dir_all(tmp.path().join("runs/c")).unwrap();
        fs::write(tmp.path().join("runs/c/state.json"), "{not json").unwrap();
        fs::create_dir_all(tmp.path().join("runs/d")).unwrap();

        let (runs, problems) = store.load_all();
        assert_eq!(runs.len(), 2, "{problems:?}");
        assert_eq!(runs[0].meta.state, RunState::Finished);
        assert_eq!(runs[0].result, Some(serde_json::json!({"requests": 3})));
        assert_eq!(runs[0].histogram_v2.as_deref(), Some(&b"hist"[..]));
        assert_eq!(runs[1].meta.state, RunState::Aborted);
        assert_eq!(runs[1].intervals.len(), 2);
        let stored = tmp
            .path()
            .join("runs/b/files")
            .join(hex::encode(b"x/y.bin"));
        assert_eq!(fs::read(stored).unwrap(), b"12");
        assert_eq!(problems.len(), 3, "{problems:?}");
        // The abort was saved.
        let (again, _) = store.load_all();
        assert_eq!(again[1].meta.state, RunState::Aborted);
    }

    #[test]
    fn state_is_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let files = BTreeMap::from([("k.pem".to_string(), b"secret".to_vec())]);
        store
            .create(&meta("a", RunState::Finished), "[target]\n", &files)
            .unwrap();
        store
            .write_result("a", &serde_json::json!({}), Some(b"h"))
            .unwrap();
        store.interval_log("a").unwrap();
        store.hlog("a").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let run = tmp.path().join("runs/a");
        for d in [tmp.path().join("runs"), run.clone(), run.join("files")] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        for entry in fs::read_dir(&run)
            .unwrap()
            .chain(fs::read_dir(run.join("files")).unwrap())
        {
            let p = entry.unwrap().path();
            if p.is_file() {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
    }
}
