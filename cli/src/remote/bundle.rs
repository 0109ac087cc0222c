//! What `loadctl submit` sends: the scenario, validated here first, and every file it reads,
//! as one `multipart/form-data` body (a `scenario` part, then one `file` part per file whose
//! `filename` is the relative name the scenario uses). So a remote daemon runs exactly what was
//! validated locally, and never reads its own disk for it.
//!
//! It refuses to send anything that does not plan locally (exit 2, the messages of
//! `loadctl validate`), file names that cannot travel in a part header, and any file outside
//! the scenario's folder (an absolute path, a `..`, or a link leading out): a scenario from
//! someone else must not be able to ship `~/.ssh/id_rsa` to a daemon (exit 2, one located line).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path};

use engine::scenario::{self, unspanned, ScenarioSpec, Source};
use engine::Plan;

use super::client::Failure;
use crate::exit;

/// A scenario and its files, ready to send.
pub struct Bundle {
    /// The file name shown in the daemon's error locations.
    pub name: String,
    pub text: String,
    /// (relative name as the scenario writes it, bytes), in name order.
    pub files: Vec<(String, Vec<u8>)>,
    /// The environment variables the scenario's `env()` read here, with their values: the
    /// daemon plans with these and never with its own environment.
    pub env: BTreeMap<String, String>,
}

fn usage(message: String) -> Failure {
    Failure {
        message,
        code: exit::USAGE,
    }
}

impl Bundle {
    /// Loads and validates `path` (with the overrides the daemon will apply) and reads its files
    /// relative to the file's directory.
    pub fn collect(
        path: &Path,
        duration: Option<&str>,
        base_url: Option<&str>,
        tasks: &[String],
    ) -> Result<Bundle, Failure> {
        let (mut scenario, source) =
            scenario::load(path).map_err(|e| usage(format!("error: {e}")))?;
        check_paths(&scenario, &source)?;
        let files = scenario.referenced_files();
        if let Some(d) = duration {
            scenario.load.duration = Some(unspanned(d.to_string()));
        }
        if let Some(base) = base_url {
            scenario.target.url = unspanned(scenario::rebase(scenario.target.url.get_ref(), base));
        }
        let plan = Plan::from_spec(&scenario, &source).map_err(|errors| {
            let lines: Vec<String> = errors.0.iter().map(|e| format!("error: {e}")).collect();
            usage(lines.join("\n"))
        })?;
        if !tasks.is_empty() {
            let mut plan = plan.clone();
            plan.select_tasks(tasks)
                .map_err(|why| usage(format!("error: {why}")))?;
        }
        let files = files
            .into_iter()
            .map(|name| {
                if name.contains(['"', '\\', '\r', '\n']) {
                    return Err(usage(format!(
                        "error: {}: the file name {name:?} cannot be sent to loadd (quote, backslash or line break)",
                        path.display()
                    )));
                }
                let bytes = std::fs::read(source.base_dir.join(&name)).map_err(|e| {
                    usage(format!("error: {}: cannot read `{name}`: {e}", path.display()))
                })?;
                Ok((name, bytes))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().replace(['"', '\\', '\r', '\n'], "_"))
            .unwrap_or_else(|| "scenario.toml".into());
        Ok(Bundle {
            name,
            text: source.text,
            files,
            env: plan.env_read,
        })
    }

    /// The `Content-Type` (with its boundary) and the body.
    pub fn encode(&self) -> (String, Vec<u8>) {
        let boundary = self.boundary();
        let mut body = Vec::with_capacity(
            self.text.len() + self.files.iter().map(|(_, b)| b.len() + 128).sum::<usize>() + 256,
        );
        let mut part = |name: &str, file: &str, kind: &str, bytes: &[u8]| {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: {kind}\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        };
        part(
            "scenario",
            &self.name,
            "application/toml",
            self.text.as_bytes(),
        );
        for (file, bytes) in &self.files {
            part("file", file, "application/octet-stream", bytes);
        }
        if !self.env.is_empty() {
            let json = serde_json::to_vec(&self.env).unwrap_or_default();
            part("env", "env.json", "application/json", &json);
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    }

    /// A boundary that occurs in no part.
    fn boundary(&self) -> String {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        (0u64..)
            .map(|n| {
                format!(
                    "loadctl-{:016x}",
                    seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                )
            })
            .find(|b| {
                let b = b.as_bytes();
                let contains = |hay: &[u8]| hay.windows(b.len()).any(|w| w == b);
                !contains(self.text.as_bytes())
                    && !self.files.iter().any(|(_, f)| contains(f))
                    && !self
                        .env
                        .iter()
                        .any(|(k, v)| contains(k.as_bytes()) || contains(v.as_bytes()))
            })
            .unwrap_or_else(|| "loadctl-boundary".into())
    }
}

/// Every file the scenario names, with where it names it.
fn named_files(spec: &ScenarioSpec) -> Vec<(&str, Range<usize>)> {
    let request = spec.request.body_file.iter();
    let steps = spec.all_steps().filter_map(|s| s.body_file.as_ref());
    let mut out: Vec<(&str, Range<usize>)> = request
        .chain(steps)
        .map(|f| (f.get_ref().as_str(), f.span()))
        .collect();
    out.extend(
        spec.feeders
            .values()
            .map(|f| (f.get_ref().file.as_str(), f.span())),
    );
    out
}

/// Refuses a file the scenario names outside its own folder: absolute, with a `..`, or
/// resolving (through a link) to somewhere else.
fn check_paths(spec: &ScenarioSpec, source: &Source) -> Result<(), Failure> {
    let base = std::fs::canonicalize(&source.base_dir).ok();
    for (name, span) in named_files(spec) {
        let relative = Path::new(name);
        let escapes = relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        // A link inside the folder may still lead out of it.
        let leads_out = || {
            let Some(base) = &base else { return false };
            std::fs::canonicalize(source.base_dir.join(relative))
                .is_ok_and(|real| !real.starts_with(base))
        };
        if escapes || leads_out() {
            let at = scenario::locate(&source.name, &source.text, &span);
            return Err(usage(format!(
                "error: {at}: `{name}` is outside the scenario's folder; loadctl submit sends only files in or under {}",
                source.base_dir.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_part() {
        let b = Bundle {
            name: "s.toml".into(),
            text: "[target]\n".into(),
            files: vec![("data/a.bin".into(), vec![0, 1, 2])],
            env: BTreeMap::from([("TOKEN".into(), "s3cret".into())]),
        };
        let (ct, body) = b.encode();
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"scenario\"; filename=\"s.toml\"\r\n")));
        assert!(text.contains("name=\"file\"; filename=\"data/a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\u{0}\u{1}\u{2}\r\n"));
        assert!(text.contains("name=\"env\"; filename=\"env.json\"\r\nContent-Type: application/json\r\n\r\n{\"TOKEN\":\"s3cret\"}\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }

    #[test]
    fn refuses_what_does_not_plan_and_reads_files_beside_the_scenario() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("bad.toml");
        std::fs::write(
            &bad,
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nconections = 3\n",
        )
        .unwrap();
        let f = Bundle::collect(&bad, None, None, &[]).err().unwrap();
        assert_eq!(f.code, exit::USAGE);
        assert!(f.message.contains("bad.toml:4:1:"), "{}", f.message);
        let ok = tmp.path().join("ok.toml");
        std::fs::write(&ok, "[target]\nurl = \"http://127.0.0.1:1/\"\n[request]\nmethod = \"POST\"\nbody_file = \"body.bin\"\n").unwrap();
        let f = Bundle::collect(&ok, None, None, &[]).err().unwrap();
        assert!(f.message.contains("body.bin"), "{}", f.message);
        std::fs::write(tmp.path().join("body.bin"), b"payload").unwrap();
        let b = Bundle::collect(&ok, Some("1s"), Some("http://127.0.0.1:2"), &[]).unwrap();
        assert_eq!(b.name, "ok.toml");
        assert_eq!(b.files, vec![("body.bin".to_string(), b"payload".to_vec())]);
    }
}
