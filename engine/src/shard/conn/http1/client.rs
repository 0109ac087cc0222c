//! What a real client does around one step's exchange, over HTTP/1.1 or a lane of HTTP/2: the
//! user's cookies added to the request and kept from each response, redirects followed (each hop
//! counted, the step's latency covering the whole chain), and a compressed body decoded before
//! its checks and captures read it.

use super::Conn;
use crate::client::cookies::{sets_cookie, Jar};
use crate::client::decode::{content_encoding, decode, DecodeBodyError};
use crate::client::redirect::{is_redirect, next_request};
use crate::metrics::ErrorKind;
use crate::plan::journey::{StepPlan, MAX_INSPECTED_BODY};
use crate::shard::conn::inspect::{inspect, Response};
use crate::shard::state::ShardState;

/// A decode buffer grown past this (a large body) is shrunk back to it after use.
const DECODED_KEEP: usize = MAX_INSPECTED_BODY;

impl Conn {
    /// Adds the jar's cookies to the request just encoded (a new copy is then encoded next time).
    pub(super) fn add_cookies(&mut self) {
        self.jar_added = false;
        let Some(jar) = &self.jar else {
            return;
        };
        let before = self.request.len();
        jar.add_to(&mut self.request, &mut self.scratch);
        if self.request.len() != before {
            self.jar_added = true;
            self.encoded = None;
        }
    }

    /// Keeps the cookies the response just read sets (the jar is made on the first one).
    fn keep_cookies(&mut self, shard: &ShardState) {
        let journey = &shard.group.journey;
        if !journey.cookies || self.head.is_empty() {
            return;
        }
        if self.jar.is_none() {
            if !sets_cookie(&self.head) {
                return;
            }
            let Some(origin) = &journey.origin else {
                return;
            };
            self.jar = Jar::new(origin.as_str()).map(Box::new);
        }
        if let Some(jar) = &mut self.jar {
            jar.store_from(&self.head, &self.request);
        }
    }

    /// Step `i`'s exchange, following up to `follow_redirects` hops, then recorded:
    /// `(status, latency, done)`, or `None` after a counted failure.
    pub(super) async fn step_exchange(
        &mut self,
        shard: &ShardState,
        id: usize,
        i: usize,
        step: &StepPlan,
        intended: Option<u64>,
        sent_hint: Option<u64>,
    ) -> Option<(u16, u64, u64)> {
        let mut chain_sent = None;
        let mut hops = 0;
        loop {
            // Only the first hop has a schedule; later ones go out as soon as the last is read.
            let (hop_intended, hint) = if hops == 0 {
                (intended, sent_hint)
            } else {
                (None, None)
            };
            let answer = self
                .exchange(shard, id, i, step, hop_intended, hint)
                .await?;
            let sent = *chain_sent.get_or_insert(answer.sent);
            self.keep_cookies(shard);
            if hops < step.follow_redirects && is_redirect(answer.status) {
                let Some(origin) = &shard.group.journey.origin else {
                    shard.step(i).record_error(ErrorKind::Redirect);
                    return None;
                };
                let next = next_request(
                    answer.status,
                    &self.head,
                    &mut self.request,
                    origin,
                    self.jar_added,
                    &mut self.scratch,
                );
                if next.is_err() {
                    shard.step(i).record_error(ErrorKind::Redirect);
                    return None;
                }
                hops += 1;
                shard.step(i).redirects += 1;
                self.encoded = None;
                self.add_cookies();
                continue;
            }
            let latency = shard.step(i).record_response_expecting(
                answer.status,
                &step.expect_status,
                intended,
                sent,
                answer.done,
            );
            return Some((answer.status, latency, answer.done));
        }
    }

    /// Runs step `i`'s checks and captures on the response, decoding its body first when the
    /// step asked for compression. `false` when the iteration cannot go on (already counted).
    pub(super) fn inspect_response(
        &mut self,
        shard: &ShardState,
        i: usize,
        step: &StepPlan,
        status: u16,
        latency_ns: u64,
    ) -> bool {
        let encoding = if step.decompress && step.needs_body {
            content_encoding(&self.head)
        } else {
            Ok(None)
        };
        let encoding = match encoding {
            Ok(None) => {
                let seen = Response {
                    status,
                    head: &self.head,
                    body: &self.body,
                    latency_ns,
                };
                return inspect(step, &seen, &mut self.vars, &mut shard.step(i));
            }
            Ok(Some(e)) => e,
            Err(_) => {
                shard.step(i).record_error(ErrorKind::Decompress);
                return false;
            }
        };
        let mut decoded = shard.decode_buffer();
        // HTTP/2 keeps at most MAX_INSPECTED_BODY of a body; HTTP/1.1 refuses a longer one.
        let truncated = self.h2.is_some() && self.body.len() >= MAX_INSPECTED_BODY;
        let limit = shard.plan().limits.max_body;
        let passed = match decode(encoding, &self.body, truncated, limit, &mut decoded) {
            Ok(()) => {
                shard.step(i).bytes_decoded += decoded.len() as u64;
                let seen = Response {
                    status,
                    head: &self.head,
                    body: &decoded,
                    latency_ns,
                };
                inspect(step, &seen, &mut self.vars, &mut shard.step(i))
            }
            Err(e) => {
                shard.step(i).record_error(match e {
                    DecodeBodyError::TooLarge => ErrorKind::BodyTooLarge,
                    DecodeBodyError::Corrupt => ErrorKind::Decompress,
                });
                false
            }
        };
        decoded.clear();
        if decoded.capacity() > DECODED_KEEP {
            decoded.shrink_to(DECODED_KEEP);
        }
        passed
    }
}
