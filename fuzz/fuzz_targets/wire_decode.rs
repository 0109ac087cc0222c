//! Fuzzes `metrics::wire::decode`, what a fleet's loadctl reads from each daemon: arbitrary
//! JSON, and arbitrary bytes as a histogram inside a well-formed set. First byte: bit 0 set =
//! the rest is a histogram. Nothing may panic, and no input may allocate past libFuzzer's
//! malloc limit (a histogram's header naming a huge payload or range was such an input).
#![no_main]

use base64::Engine as _;
use engine::metrics::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let value = if control & 1 == 0 {
        match serde_json::from_slice::<serde_json::Value>(rest) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else {
        let histogram = base64::engine::general_purpose::STANDARD.encode(rest);
        serde_json::json!({
            "steps": [{
                "latency": histogram, "service": "", "lag": "", "requests": 1,
                "status": [0, 1, 0, 0, 0], "bytes_in": 0, "bytes_out": 0, "late": 0,
            }],
            "journeys": [],
        })
    };
    if let Ok(set) = wire::decode(&value) {
        // What decodes merges with the engine's own sets and encodes again.
        let mut again = set.empty_like();
        again.merge(&set);
        let _ = wire::encode(&again);
    }
});
