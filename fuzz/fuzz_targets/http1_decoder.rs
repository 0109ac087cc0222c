//! Fuzzes `ResponseDecoder` with the caller's buffer discipline, comparing a split feed against a
//! whole one. The first byte picks the split pattern and whether the request was HEAD.
#![no_main]

use engine::proto::http1::{DecodeError, ResponseDecoder, Step};
use libfuzzer_sys::fuzz_target;

/// How many responses of a pipelined stream are decoded at most.
const MAX_RESPONSES: usize = 8;

/// What one response ended as: status and body bytes, or the failure.
type Outcome = Result<(u16, u64), DecodeError>;

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let head_request = control & 0x80 != 0;
    let whole = run(stream, &[stream.len()], head_request);
    // Low 6 bits: piece size (0 → single bytes); bit 6: sizes vary around it.
    let base = usize::from(control & 0x3f).max(1);
    let sizes: Vec<usize> = if control & 0x40 == 0 {
        vec![base]
    } else {
        (1..=7).map(|k| base * k % 13 + 1).collect()
    };
    let split = run(stream, &sizes, head_request);
    assert_eq!(whole, split, "outcome depends on how the stream was split");
});

/// Feeds `stream` in pieces of the cycling `sizes` like a connection would, decoding pipelined
/// responses one after another, and ends with EOF.
fn run(stream: &[u8], sizes: &[usize], head_request: bool) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut dec = ResponseDecoder::new();
    dec.reset(head_request);
    let mut buf = Vec::new();
    let mut body_seen = 0u64;
    let mut pieces = sizes.iter().cycle();
    let mut fed = 0;
    while fed < stream.len() && outcomes.len() < MAX_RESPONSES {
        let size = pieces.next().copied().unwrap_or(1).max(1);
        let end = (fed + size).min(stream.len());
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        loop {
            let (consumed, body, complete) = match dec.decode(&buf) {
                Ok(Step::Partial { consumed, body }) => (consumed, body, false),
                Ok(Step::Complete { consumed, body }) => (consumed, body, true),
                Err(kind) => {
                    outcomes.push(Err(kind));
                    return outcomes;
                }
            };
            assert!(consumed <= buf.len(), "consumed past the input");
            assert!(
                body.start <= body.end && body.end <= consumed,
                "body range outside the consumed input"
            );
            body_seen += (body.end - body.start) as u64;
            assert_eq!(body_seen, dec.body_bytes());
            buf.drain(..consumed);
            if complete {
                let head = dec.head().expect("a complete response has a head");
                outcomes.push(Ok((head.status, body_seen)));
                if !head.keep_alive || outcomes.len() == MAX_RESPONSES {
                    return outcomes;
                }
                dec.reset(head_request);
                body_seen = 0;
                continue;
            }
            if consumed == 0 || buf.is_empty() {
                break;
            }
        }
    }
    if dec.in_progress() || fed < stream.len() {
        outcomes.push(match dec.finish_eof() {
            Ok(()) => Ok((dec.head().map_or(0, |h| h.status), body_seen)),
            Err(kind) => Err(kind),
        });
    }
    outcomes
}
