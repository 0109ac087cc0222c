//! Where `env("NAME")` reads from while a plan is built, and what it read.
//!
//! `loadctl run` reads its own environment. `loadctl submit` plans locally first, sends the
//! values that plan read, and the daemon plans with those only: a scenario sees the submitter's
//! shell, never the daemon's environment (which may hold the daemon's own secrets).
//! A thread-local scope, because templates are compiled deep inside planning and the
//! environment is a property of the whole planning call, not of any one template.

use std::cell::RefCell;
use std::collections::BTreeMap;

/// The variables a plan may read: the process environment, or only these.
pub type EnvVars = Option<BTreeMap<String, String>>;

struct Scope {
    given: EnvVars,
    read: BTreeMap<String, String>,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Runs `f` with `env()` reading from `given`, and returns what it read that was set.
pub fn scoped<T>(given: EnvVars, f: impl FnOnce() -> T) -> (T, BTreeMap<String, String>) {
    let outer = SCOPE.with(|s| {
        s.borrow_mut().replace(Scope {
            given,
            read: BTreeMap::new(),
        })
    });
    let out = f();
    let read = SCOPE
        .with(|s| std::mem::replace(&mut *s.borrow_mut(), outer))
        .map(|s| s.read)
        .unwrap_or_default();
    (out, read)
}

/// `NAME`'s value, recorded when set.
pub(super) fn lookup(name: &str) -> Option<String> {
    SCOPE.with(|s| {
        let mut s = s.borrow_mut();
        let Some(scope) = s.as_mut() else {
            return std::env::var(name).ok();
        };
        let value = match &scope.given {
            Some(given) => given.get(name).cloned(),
            None => std::env::var(name).ok(),
        }?;
        scope.read.insert(name.to_string(), value.clone());
        Some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_values_replace_the_process_environment_and_reads_are_recorded() {
        let given = BTreeMap::from([("LOADD_T_A".to_string(), "1".to_string())]);
        // PATH is set in every test process; a given scope must not see it.
        let ((a, path), read) = scoped(Some(given), || (lookup("LOADD_T_A"), lookup("PATH")));
        assert_eq!(a.as_deref(), Some("1"));
        assert_eq!(path, None);
        assert_eq!(read.keys().collect::<Vec<_>>(), ["LOADD_T_A"]);
        let (path, read) = scoped(None, || lookup("PATH"));
        assert!(path.is_some());
        assert!(read.contains_key("PATH"));
    }
}
