//! `ScenarioSpec`: a scenario file exactly as written, with the byte span of every user value.
//!
//! Loading only checks syntax and types (serde); meaning is checked by `Plan::from_spec`, which
//! points back at these spans. The same spec is built from `loadctl run` flags (with empty spans).
//! The shape is deliberately open: later sections (journeys, several scenarios, thresholds)
//! are added beside these without changing what a minimal file means.
//!
//! `spec` holds the section types, `load` reads and parses text, `span` turns byte spans into
//! `line:col`. This module adds only `rebase`, which moves a target onto another origin.

mod load;
mod span;
mod spec;
mod ws_step;

pub use load::{load, parse, Files, LoadError, Source};
pub use span::{line_col, locate};
pub use spec::*;
pub use ws_step::{
    LatencyFromSpec, ReconnectSpec, WsCloseSpec, WsExpectSpec, WsListenSpec, WsSendSpec,
};

/// Puts `url`'s path and query on another origin: `rebase("http://a:1/x?q", "http://b:2")`
/// is `http://b:2/x?q`. A base with a path of its own keeps it as a prefix. A `ws://` target
/// rebased onto an `http://` origin keeps speaking WebSocket.
///
/// When either is not a URL, the one that is wrong is returned as it is, so that
/// `Plan::from_spec` reports it where the user can see it.
pub fn rebase(url: &str, base: &str) -> String {
    let Ok(from) = url::Url::parse(url.trim()) else {
        return url.to_string();
    };
    let Ok(mut to) = url::Url::parse(base.trim()) else {
        return base.to_string();
    };
    let path = format!("{}{}", to.path().trim_end_matches('/'), from.path());
    to.set_path(&path);
    to.set_query(from.query());
    to.set_fragment(from.fragment());
    let ws = match (from.scheme(), to.scheme()) {
        ("ws" | "wss", "http") => Some("ws"),
        ("ws" | "wss", "https") => Some("wss"),
        _ => None,
    };
    if let Some(scheme) = ws {
        // Both are special schemes, which the url crate lets one switch between.
        let _ = to.set_scheme(scheme);
    }
    to.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_keeps_path_and_query() {
        assert_eq!(
            rebase("http://a:1/x/y?q=1", "http://b:2"),
            "http://b:2/x/y?q=1"
        );
        assert_eq!(rebase("http://a:1/x", "http://b:2/"), "http://b:2/x");
        assert_eq!(rebase("http://a:1", "http://b:2"), "http://b:2/");
        assert_eq!(rebase("http://a/x", "http://b/api"), "http://b/api/x");
        assert_eq!(rebase("ws://a/ws/echo", "http://b:2"), "ws://b:2/ws/echo");
        assert_eq!(rebase("wss://a/ws", "https://b"), "wss://b/ws");
    }

    #[test]
    fn rebase_leaves_what_is_not_a_url() {
        assert_eq!(rebase("not a url", "http://b:2"), "not a url");
        assert_eq!(rebase("http://a/x", "::"), "::");
    }
}
