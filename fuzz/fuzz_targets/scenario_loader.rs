//! Fuzzes loading a scenario: arbitrary text through `scenario::parse` and, when that succeeds,
//! `Plan::from_spec`, rendering every error as a user would see it. Nothing may panic.
//!
//! `Plan::from_spec` resolves the target host with the system resolver, and a fuzzer must not do
//! DNS: a named host is replaced by 127.0.0.1 before planning (IP literals resolve without a
//! lookup), keeping the rest of the URL and every other check. URL-parsing errors are still
//! reached, since the URL is only rewritten when it parses.
#![no_main]

use engine::scenario::{self, Files, ScenarioSpec, Source};
use engine::Plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source::in_memory("fuzz.toml", text, Files::Bundle(Default::default()));
    let mut spec = match scenario::parse(&source) {
        Ok(spec) => spec,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if !keep_off_dns(&mut spec) {
        return;
    }
    match Plan::from_spec(&spec, &source) {
        Ok(plan) => {
            let _ = plan.shards();
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
});

/// Makes the target host an IP literal; false if the URL still names a host to look up.
fn keep_off_dns(spec: &mut ScenarioSpec) -> bool {
    let url = &spec.target.url;
    let Ok(mut parsed) = url::Url::parse(url.get_ref().trim()) else {
        return true; // from_spec refuses it before resolving
    };
    match parsed.host() {
        Some(url::Host::Domain(_)) => {
            if parsed.set_host(Some("127.0.0.1")).is_err() {
                return false;
            }
            spec.target.url = toml::Spanned::new(url.span(), parsed.to_string());
            true
        }
        _ => true,
    }
}
