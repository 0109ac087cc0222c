//! Who is calling: the bearer-token check every `/v1` route but health sits behind, the limit on
//! failed attempts per client address, and the audit line the daemon writes for each
//! submission, stop and refusal (`loadd: audit: …` on stderr: who, from where, what).
//!
//! A client address that fails [`MAX_FAILURES`] times within [`FAILURE_WINDOW`] is answered 429
//! until the window ends, even with the right token, so a token cannot be guessed at line
//! rate. The table of addresses is bounded; it refuses to grow with the number of clients an
//! attacker can make up.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// Failed attempts from one address within [`FAILURE_WINDOW`] before it is refused with 429.
pub const MAX_FAILURES: u32 = 10;
/// How long failures are remembered (from an address's first failure).
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Most addresses remembered at once; past it the oldest windows are forgotten.
const MAX_TRACKED: usize = 4096;

/// Who made a request: the token's name (`default` for the daemon's own token) and the peer.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub peer: Option<SocketAddr>,
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.peer {
            Some(p) => write!(f, "{} from {p}", self.name),
            None => write!(f, "{} from an unknown address", self.name),
        }
    }
}

/// One audit line on stderr (the daemon's log), e.g. `loadd: audit: default from 10.0.0.7:51234: submit …`.
pub fn audit(caller: &Caller, what: std::fmt::Arguments<'_>) {
    eprintln!("loadd: audit: {caller}: {what}");
}

/// Failed attempts per client address.
#[derive(Debug, Default)]
pub struct Failures {
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Failures {
    /// Whether `ip` is over the limit now.
    pub fn is_limited(&self, ip: IpAddr, now: Instant) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&ip).is_some_and(|(since, n)| {
            *n >= MAX_FAILURES && now.duration_since(*since) < FAILURE_WINDOW
        })
    }

    /// Counts one failure from `ip`; returns how many it has in its window.
    pub fn record(&self, ip: IpAddr, now: Instant) -> u32 {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_TRACKED && !seen.contains_key(&ip) {
            seen.retain(|_, (since, _)| now.duration_since(*since) < FAILURE_WINDOW);
            if seen.len() >= MAX_TRACKED {
                // Still full of live windows: forget the oldest one.
                if let Some(oldest) = seen.iter().min_by_key(|(_, (s, _))| *s).map(|(k, _)| *k) {
                    seen.remove(&oldest);
                }
            }
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1
    }
}

/// The middleware: a known token passes (its caller travels with the request); a wrong or
/// missing one is 401 and counted; an address over the limit is 429.
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let now = Instant::now();
    if let Some(p) = peer {
        if state.failures.is_limited(p.ip(), now) {
            return ApiError::TooManyRequests(format!(
                "too many failed attempts from {}; wait up to {}s",
                p.ip(),
                FAILURE_WINDOW.as_secs()
            ))
            .into_response();
        }
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let name = presented.and_then(|t| state.policy.token_name(t));
    match name {
        Some(name) => {
            request.extensions_mut().insert(Caller {
                name: name.to_string(),
                peer,
            });
            next.run(request).await
        }
        None => {
            let caller = Caller {
                name: "unauthenticated".into(),
                peer,
            };
            let n = peer.map_or(0, |p| state.failures.record(p.ip(), now));
            // Every failure up to the limit, then one line per hundred, so a flood cannot
            // flood the log too.
            if n <= MAX_FAILURES || n % 100 == 0 {
                audit(
                    &caller,
                    format_args!(
                        "refused: {} bearer token on {} {} ({n} failures in this window)",
                        if presented.is_some() { "wrong" } else { "no" },
                        request.method(),
                        request.uri().path()
                    ),
                );
            }
            ApiError::Unauthorized.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_limited_within_its_window_only() {
        let f = Failures::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 1..=MAX_FAILURES {
            assert!(!f.is_limited(ip, t0));
            assert_eq!(f.record(ip, t0), i);
        }
        assert!(f.is_limited(ip, t0));
        assert!(!f.is_limited(other, t0));
        let later = t0 + FAILURE_WINDOW;
        assert!(!f.is_limited(ip, later));
        assert_eq!(f.record(ip, later), 1);
    }

    #[test]
    fn the_table_stays_bounded() {
        let f = Failures::default();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            f.record(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(f.seen.lock().unwrap().len() <= MAX_TRACKED);
    }
}
