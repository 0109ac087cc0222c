//! A [`StatsSet`] as JSON between processes: counters as numbers, every histogram as base64
//! V2+deflate, so a set measured by one `loadd` merges exactly into another's (`loadctl submit
//! --daemons` adds the daemons' sets interval by interval).
//!
//! Counters by kind travel as maps keyed by the kind's name with only the non-zero ones, so a
//! reader that does not know a kind yet refuses it rather than miscounting. Decoding refuses
//! anything malformed with a message; it never panics on what came over the network.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::metrics::histogram::{new_histogram, LatencyHistogram, HIGHEST_US, SIGNIFICANT_DIGITS};
use crate::metrics::stats::{CheckKind, IterationStats, Stats, StatsSet};
use crate::metrics::ErrorKind;

/// Why a set could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("stats are not in the expected shape: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("a histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("a histogram does not decode: {0}")]
    Histogram(String),
    #[error("unknown {what} `{name}` (is the daemon newer than this loadctl?)")]
    UnknownKind { what: &'static str, name: String },
}

#[derive(Serialize, Deserialize)]
struct WireSet {
    steps: Vec<WireStats>,
    journeys: Vec<WireIterations>,
    #[serde(default)]
    handshake: String,
    #[serde(default)]
    resumed: u64,
    /// WebSocket counters: sent, received, reconnects, closed cleanly.
    #[serde(default)]
    ws: [u64; 4],
    /// Closes the server started, by code (`WsCounters::server_closes`).
    #[serde(default)]
    ws_server_closes: [u64; 4],
}

#[derive(Serialize, Deserialize)]
struct WireStats {
    latency: String,
    service: String,
    lag: String,
    requests: u64,
    #[serde(default)]
    errors: BTreeMap<String, u64>,
    /// 1xx … 5xx.
    status: [u64; 5],
    bytes_in: u64,
    bytes_out: u64,
    late: u64,
    dropped: u64,
    connects: u64,
    #[serde(default)]
    bytes_decoded: u64,
    #[serde(default)]
    redirects: u64,
    checks_passed: u64,
    checks_failed: u64,
    #[serde(default)]
    check_failures: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize)]
struct WireIterations {
    duration: String,
    count: u64,
    failed: u64,
    interrupted: u64,
}

/// The set as a JSON value (an empty histogram is `""`, which is most of them).
pub fn encode(set: &StatsSet) -> serde_json::Value {
    let mut ser = V2DeflateSerializer::new();
    let mut buf = Vec::new();
    let mut hist = |h: &LatencyHistogram| -> String {
        if h.is_empty() {
            return String::new();
        }
        buf.clear();
        // Serializing into a Vec cannot fail on I/O; an encoder error leaves the histogram out,
        // which the reader sees as empty rather than as a broken set.
        match ser.serialize(h, &mut buf) {
            Ok(_) => base64::engine::general_purpose::STANDARD.encode(&buf),
            Err(_) => String::new(),
        }
    };
    let wire = WireSet {
        steps: set
            .steps
            .iter()
            .map(|s| WireStats {
                latency: hist(&s.latency),
                service: hist(&s.service),
                lag: hist(&s.lag),
                requests: s.requests,
                errors: ErrorKind::ALL
                    .iter()
                    .filter(|k| s.errors[k.index()] > 0)
                    .map(|k| (k.name().to_string(), s.errors[k.index()]))
                    .collect(),
                status: s.status,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                late: s.late,
                dropped: s.dropped,
                connects: s.connects,
                bytes_decoded: s.bytes_decoded,
                redirects: s.redirects,
                checks_passed: s.checks_passed,
                checks_failed: s.checks_failed,
                check_failures: CheckKind::ALL
                    .iter()
                    .filter(|k| s.check_failures[**k as usize] > 0)
                    .map(|k| (k.name().to_string(), s.check_failures[*k as usize]))
                    .collect(),
            })
            .collect(),
        journeys: set
            .journeys
            .iter()
            .map(|j| WireIterations {
                duration: hist(&j.duration),
                count: j.count,
                failed: j.failed,
                interrupted: j.interrupted,
            })
            .collect(),
        handshake: hist(&set.handshake),
        resumed: set.resumed,
        ws: [
            set.ws.sent,
            set.ws.received,
            set.ws.reconnects,
            set.ws.closed_cleanly,
        ],
        ws_server_closes: set.ws.server_closes,
    };
    serde_json::to_value(wire).unwrap_or(serde_json::Value::Null)
}

/// V2 cookies: the deflate wrapper, and the histogram inside it.
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9304 | 0x10;
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;

/// Refuses a histogram whose header asks for more than the engine's one shape could hold,
/// before hdrhistogram allocates what it says: its decoder sizes its buffer from the payload
/// length in the stream and its counts from the stated bounds, so a rogue daemon (or anyone
/// in the middle) could make a reader allocate gigabytes per histogram.
fn check_header(bytes: &[u8], most_payload: usize) -> Result<(), WireError> {
    use std::io::Read as _;
    let bad = |why: &str| Err(WireError::Histogram(why.into()));
    let word = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let long = |b: &[u8], at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    if word(bytes, 0) != Some(V2_DEFLATE_COOKIE) {
        return bad("not a V2+deflate histogram");
    }
    let mut inner = [0u8; 40];
    let compressed = bytes.get(8..).unwrap_or_default();
    if flate2::read::ZlibDecoder::new(compressed)
        .read_exact(&mut inner)
        .is_err()
    {
        return bad("its compressed header does not inflate");
    }
    let (Some(cookie), Some(payload), Some(digits), Some(lowest), Some(highest)) = (
        word(&inner, 0),
        word(&inner, 4),
        word(&inner, 12),
        long(&inner, 16),
        long(&inner, 24),
    ) else {
        return bad("its header is short");
    };
    if cookie != V2_COOKIE {
        return bad("not a V2 histogram inside its deflate wrapper");
    }
    if lowest < 1 || highest > HIGHEST_US || digits > u32::from(SIGNIFICANT_DIGITS) {
        return bad("its bounds are outside the engine's (1 µs to 1 h, 3 digits)");
    }
    if payload as usize > most_payload {
        return bad("its payload is larger than any histogram of the engine's shape");
    }
    Ok(())
}

/// Reads a set back. Its histograms land in the engine's one histogram shape, so the result
/// merges with any other set (a histogram out of that range is refused).
pub fn decode(value: &serde_json::Value) -> Result<StatsSet, WireError> {
    let wire = WireSet::deserialize(value)?;
    let mut de = Deserializer::new();
    // Each count is at most a 9-byte LEB128 varint, one per bucket of the engine's shape.
    let most_payload = new_histogram().distinct_values().saturating_mul(9);
    let mut hist = |text: &str| -> Result<LatencyHistogram, WireError> {
        let mut h = new_histogram();
        if text.is_empty() {
            return Ok(h);
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
        check_header(&bytes, most_payload)?;
        let read: LatencyHistogram = de
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| WireError::Histogram(format!("{e:?}")))?;
        h.add(&read)
            .map_err(|e| WireError::Histogram(format!("{e:?}")))?;
        Ok(h)
    };
    let mut steps = Vec::with_capacity(wire.steps.len());
    for w in &wire.steps {
        let mut s = Stats::new();
        s.latency = hist(&w.latency)?;
        s.service = hist(&w.service)?;
        s.lag = hist(&w.lag)?;
        s.requests = w.requests;
        for (name, n) in &w.errors {
            let kind = ErrorKind::ALL
                .iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| WireError::UnknownKind {
                    what: "error kind",
                    name: name.clone(),
                })?;
            s.errors[kind.index()] = *n;
        }
        s.status = w.status;
        s.bytes_in = w.bytes_in;
        s.bytes_out = w.bytes_out;
        s.late = w.late;
        s.dropped = w.dropped;
        s.connects = w.connects;
        s.bytes_decoded = w.bytes_decoded;
        s.redirects = w.redirects;
        s.checks_passed = w.checks_passed;
        s.checks_failed = w.checks_failed;
        for (name, n) in &w.check_failures {
            let kind = CheckKind::ALL
                .iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| WireError::UnknownKind {
                    what: "check kind",
                    name: name.clone(),
                })?;
            s.check_failures[*kind as usize] = *n;
        }
        steps.push(s);
    }
    let mut journeys = Vec::with_capacity(wire.journeys.len());
    for w in &wire.journeys {
        let mut j = IterationStats::new();
        j.duration = hist(&w.duration)?;
        j.count = w.count;
        j.failed = w.failed;
        j.interrupted = w.interrupted;
        journeys.push(j);
    }
    Ok(StatsSet {
        steps,
        journeys,
        handshake: hist(&wire.handshake)?,
        resumed: wire.resumed,
        ws: crate::metrics::stats::WsCounters {
            sent: wire.ws[0],
            received: wire.ws[1],
            reconnects: wire.ws[2],
            closed_cleanly: wire.ws[3],
            server_closes: wire.ws_server_closes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StatsSet {
        let mut set = StatsSet::new(2, 1);
        for i in 0..500u64 {
            set.steps[0].record_response(200, Some(0), i * 1_000, i * 3_000 + 50_000);
            set.steps[0].record_send_lag(0, i * 1_000);
        }
        set.steps[1].record_response(503, None, 0, 7_000_000);
        set.steps[1].record_error(ErrorKind::Timeout);
        set.steps[1].record_check(CheckKind::Json, false);
        set.record_iteration(0, 0, 9_000_000, true);
        set.record_handshake(400_000, true);
        set.steps[0].bytes_in = 12_345;
        set
    }

    /// A histogram re-encoded with its inner header patched at `at` to `value` (big-endian).
    fn forged(at: usize, value: &[u8]) -> serde_json::Value {
        use std::io::{Read, Write};
        let mut json = encode(&sample());
        let text = json["steps"][0]["latency"].as_str().unwrap().to_string();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        let mut inner = Vec::new();
        flate2::read::ZlibDecoder::new(&bytes[8..])
            .read_to_end(&mut inner)
            .unwrap();
        inner[at..at + value.len()].copy_from_slice(value);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&inner).unwrap();
        let packed = z.finish().unwrap();
        let mut out = bytes[..4].to_vec();
        out.extend_from_slice(&(packed.len() as u32).to_be_bytes());
        out.extend_from_slice(&packed);
        json["steps"][0]["latency"] = base64::engine::general_purpose::STANDARD.encode(out).into();
        json
    }

    #[test]
    fn a_histogram_asking_for_gigabytes_is_refused_before_it_is_allocated() {
        // The untouched forgery decodes: the re-encoding itself is faithful.
        assert!(decode(&forged(4, &[])).is_ok());
        let huge_payload = decode(&forged(4, &u32::MAX.to_be_bytes())).unwrap_err();
        assert!(
            huge_payload.to_string().contains("payload"),
            "{huge_payload}"
        );
        let huge_range = decode(&forged(24, &u64::MAX.to_be_bytes())).unwrap_err();
        assert!(huge_range.to_string().contains("bounds"), "{huge_range}");
        let digits = decode(&forged(12, &5u32.to_be_bytes())).unwrap_err();
        assert!(digits.to_string().contains("bounds"), "{digits}");
        let mut not_v2 = encode(&sample());
        not_v2["steps"][0]["latency"] = "AAAAAAAA".into();
        assert!(decode(&not_v2).is_err());
    }

    #[test]
    fn round_trips_every_field() {
        let set = sample();
        let json = encode(&set);
        let back = decode(&json).unwrap();
        for (a, b) in set.steps.iter().zip(&back.steps) {
            assert_eq!(a.latency, b.latency);
            assert_eq!(a.service, b.service);
            assert_eq!(a.lag, b.lag);
            assert_eq!(a.requests, b.requests);
            assert_eq!(a.errors, b.errors);
            assert_eq!(a.status, b.status);
            assert_eq!(
                (a.bytes_in, a.late, a.checks_failed, a.check_failures),
                (b.bytes_in, b.late, b.checks_failed, b.check_failures)
            );
        }
        assert_eq!(back.journeys[0].count, 1);
        assert_eq!(back.journeys[0].duration, set.journeys[0].duration);
        assert_eq!(back.handshake, set.handshake);
        assert_eq!(back.resumed, 1);
        // Exactness: merging two decoded sets equals merging the originals.
        let mut twice = sample();
        twice.merge(&set);
        let mut decoded_twice = decode(&json).unwrap();
        decoded_twice.merge(&back);
        assert_eq!(twice.total().latency, decoded_twice.total().latency);
    }

    #[test]
    fn refuses_what_is_malformed() {
        let json = encode(&sample());
        let mut bad = json.clone();
        bad["steps"][0]["latency"] = "not base64!".into();
        assert!(matches!(decode(&bad), Err(WireError::Base64(_))));
        let mut bad = json.clone();
        bad["steps"][0]["latency"] = "AAAA".into();
        assert!(matches!(decode(&bad), Err(WireError::Histogram(_))));
        let mut bad = json.clone();
        bad["steps"][1]["errors"]["gremlins"] = 1.into();
        assert!(decode(&bad).unwrap_err().to_string().contains("gremlins"));
        assert!(matches!(
            decode(&serde_json::json!({"steps": 3})),
            Err(WireError::Shape(_))
        ));
    }
}
