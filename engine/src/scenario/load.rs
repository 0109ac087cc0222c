//! Loading a scenario: where its text came from (`Source`), where the files it names may be
//! read from (`Files`), and `load`/`parse` from text to `ScenarioSpec`.
//!
//! Parsing reports the first syntax or type error, located; it does not validate meaning
//! (`Plan::from_spec` does) and reads no file but the scenario itself.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::scenario::ScenarioSpec;

/// Where a spec came from: needed to turn spans into `file:line:col`.
#[derive(Clone, Debug)]
pub struct Source {
    /// Shown in messages: a path, or "command line".
    pub name: String,
    /// The text the spans index into (empty for specs built from flags).
    pub text: String,
    /// Directory relative paths in the file are resolved against.
    pub base_dir: PathBuf,
    /// Where files the scenario names (body files, feeders, uploads) may come from.
    pub files: Files,
    /// What `env("NAME")` reads: `None` the process environment, else only these (a daemon
    /// planning a submission reads the values loadctl sent, never its own environment).
    pub env: Option<std::collections::BTreeMap<String, String>>,
}

/// Where a scenario's files are read from.
#[derive(Clone, Debug, Default)]
pub enum Files {
    /// The local disk, relative to `base_dir` (loadctl run, validate).
    #[default]
    Disk,
    /// Only these, by the relative name the scenario uses: files that travelled with a
    /// submission, so a daemon runs exactly what was validated and never reads its own disk.
    Bundle(std::collections::BTreeMap<String, Vec<u8>>),
}

impl Source {
    pub fn command_line() -> Self {
        Self {
            name: "command line".into(),
            text: String::new(),
            base_dir: PathBuf::from("."),
            files: Files::Disk,
            env: None,
        }
    }

    /// A scenario held in memory whose files, if any, come from `files` only.
    pub fn in_memory(name: impl Into<String>, text: impl Into<String>, files: Files) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            base_dir: PathBuf::from("."),
            files,
            env: None,
        }
    }

    /// Reads a file the scenario names; the error says what was looked for.
    pub fn read_file(&self, name: &str) -> Result<Vec<u8>, String> {
        match &self.files {
            Files::Disk => {
                let path = self.base_dir.join(name);
                std::fs::read(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
            }
            Files::Bundle(files) => files.get(name).cloned().ok_or_else(|| {
                format!("`{name}` was not sent with the scenario (submit it alongside the file)")
            }),
        }
    }

    /// `name:line:col` for a byte span; just `name` when the span points nowhere.
    pub fn locate(&self, span: &Range<usize>) -> String {
        crate::scenario::span::locate(&self.name, &self.text, span)
    }
}

/// A scenario file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Syntax { location: String, message: String },
}

/// Reads and parses a scenario file.
pub fn load(path: &Path) -> Result<(ScenarioSpec, Source), LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let source = Source {
        name: path.display().to_string(),
        text,
        base_dir: path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        files: Files::Disk,
        env: None,
    };
    let spec = parse(&source)?;
    Ok((spec, source))
}

/// Parses scenario text already in memory.
pub fn parse(source: &Source) -> Result<ScenarioSpec, LoadError> {
    toml::from_str(&source.text).map_err(|e| {
        let location = match e.span() {
            Some(span) => source.locate(&span),
            None => source.name.clone(),
        };
        LoadError::Syntax {
            location,
            message: e.message().trim().to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::CountSpec;

    fn src(text: &str) -> Source {
        Source::in_memory("t.toml", text, Files::Disk)
    }

    #[test]
    fn minimal_file_parses() {
        let spec = parse(&src(
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nrate = \"1k\"\nduration = \"10s\"\n",
        ))
        .unwrap();
        assert_eq!(spec.target.url.get_ref(), "http://127.0.0.1:1/");
        assert_eq!(
            spec.load.rate.unwrap().into_inner(),
            CountSpec::Text("1k".into())
        );
    }

    #[test]
    fn unknown_key_is_located() {
        let err = parse(&src(
            "[target]\nurl = \"http://x/\"\n[load]\nconections = 5\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("t.toml:4:1:"), "{err}");
        assert!(err.contains("conections"), "{err}");
    }
}
