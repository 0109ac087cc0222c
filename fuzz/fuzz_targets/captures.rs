//! Fuzzes a step's checks and captures on arbitrary responses (`shard::conn::inspect`, through
//! `engine::fuzzing`): a header capture, a regex capture, JSON pointers into strings, numbers and
//! arrays, every kind of check. Input: two bytes of status, then the head up to the first blank
//! line, then the body. Nothing may panic; a header or regex capture is bytes of the response.
#![no_main]

use std::sync::OnceLock;

use engine::fuzzing::Inspector;
use libfuzzer_sys::fuzz_target;

const SCENARIO: &str = r#"
[target]
url = "http://127.0.0.1:9/"
[load]
model = "closed"
connections = 1
requests = 1
[[steps]]
name = "every source"
path = "/a"
capture = { id = { header = "X-Id" }, num = { regex = "n=(\\d+)" }, any = { regex = "[a-z]{3,}" }, token = { json = "/token" }, deep = { json = "/a/0/b" }, code = { status = true } }
check = { status = [200, 201], body_contains = "ok", body_not_contains = "error", json = { "/ok" = true }, json_exists = ["/id"], json_absent = ["/err"], header = ["etag"], latency_under = "1s" }
[[steps]]
name = "whole json"
path = "/b"
capture = { all = { json = "" }, list = { json = "/items" } }
"#;

fn inspector() -> &'static Inspector {
    static INSPECTOR: OnceLock<Inspector> = OnceLock::new();
    INSPECTOR.get_or_init(|| Inspector::new(SCENARIO).expect("the fuzz scenario plans"))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]);
    let rest = &data[2..];
    let (head, body) = match memchr::memmem::find(rest, b"\r\n\r\n") {
        Some(at) => rest.split_at(at + 4),
        None => (rest, &[][..]),
    };
    for step in inspector().inspect(status, head, body) {
        for (name, value) in &step.vars {
            if value.is_empty() {
                continue;
            }
            let source = match name.as_str() {
                "id" => head,
                "num" | "any" => body,
                _ => continue,
            };
            assert!(
                memchr::memmem::find(source, value).is_some(),
                "{name} captured bytes that are not in the response"
            );
        }
    }
});
