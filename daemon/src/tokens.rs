//! Per-client tokens (`loadd token add|remove|list`): `STATE_DIR/tokens/NAME` holds the SHA-256
//! (hex) of NAME's token, so the state directory never holds a client's secret; the token
//! itself is printed once, when it is made. `loadd serve` reads them at start, and its audit
//! lines name the client.
//!
//! It refuses names that could be paths or be confused with the daemon's own token (`default`),
//! and it refuses to read a token shorter than [`MIN_TOKEN_BYTES`] anywhere.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use engine::results::Environment;

use crate::api::NamedToken;

/// Shortest token accepted: 32 bytes, as long as a generated one's randomness.
pub const MIN_TOKEN_BYTES: usize = 32;

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("tokens")
}

/// A client name: 1–64 of `A-Z a-z 0-9 _ - .`, not starting with a dot, not `default`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        bail!("token name {name:?}: use 1 to 64 letters, digits, `_`, `-` or `.` (not starting with `.`)");
    }
    if name == "default" {
        bail!("token name `default` is the daemon's own token; pick another");
    }
    Ok(())
}

/// A new random token (64 hex digits).
pub fn generate() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Makes NAME's token, stores its hash and returns the token (to print once).
pub fn add(state_dir: &Path, name: &str) -> Result<String> {
    check_name(name)?;
    let dir = dir(state_dir);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("create {}", dir.display()))?;
    let token = generate()?;
    let path = dir.join(name);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| {
            format!(
                "create {} (remove the old token first: loadd token remove {name})",
                path.display()
            )
        })?;
    writeln!(file, "{}", Environment::sha256_hex(token.as_bytes()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", path.display()))?;
    Ok(token)
}

/// Removes NAME's token.
pub fn remove(state_dir: &Path, name: &str) -> Result<()> {
    check_name(name)?;
    let path = dir(state_dir).join(name);
    fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))
}

/// Every stored client token, by name; a file that is not a hash is an error (a hand-edited
/// plain token would otherwise be silently useless).
pub fn load(state_dir: &Path) -> Result<Vec<NamedToken>> {
    let dir = dir(state_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("read {}", dir.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if check_name(&name).is_err() {
            continue;
        }
        let path = entry.path();
        let text = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let hash = text.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "{} does not hold a token's SHA-256 (make tokens with `loadd token add {name}`)",
                path.display()
            );
        }
        out.push(NamedToken {
            name,
            sha256_hex: hash,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_load_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let token = add(tmp.path(), "ci-runner").unwrap();
        assert!(token.len() >= MIN_TOKEN_BYTES);
        let loaded = load(tmp.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            loaded[0].sha256_hex,
            Environment::sha256_hex(token.as_bytes())
        );
        assert!(add(tmp.path(), "ci-runner").is_err(), "no silent overwrite");
        for bad in ["", "../x", "a/b", ".hidden", "default"] {
            assert!(add(tmp.path(), bad).is_err(), "{bad:?}");
        }
        remove(tmp.path(), "ci-runner").unwrap();
        assert!(load(tmp.path()).unwrap().is_empty());
    }
}
