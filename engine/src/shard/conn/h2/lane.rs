//! One lane's request over the shared connection: wait for a free stream (that wait counts in
//! the latency, as the issue of a real client would), send, wait for the response, record.
//!
//! The request arrives encoded for HTTP/1.1, exactly as `http1::Conn` renders it for every
//! template, default and body; it is read back with httparse (no allocation) and sent as an
//! HTTP/2 head and DATA. A stream the server refused (REFUSED_STREAM, GOAWAY) was never
//! processed and is sent again, like a stale keep-alive connection under HTTP/1.1.

use std::future::poll_fn;
use std::pin::pin;
use std::task::{Context, Poll};

use super::{wake, H2Conn, Outcome};
use crate::metrics::ErrorKind;
use crate::plan::journey::StepPlan;
use crate::proto::h2::{Fields, Request, StartError};
use crate::proto::http1::MAX_HEADERS;
use crate::shard::conn::deadline::Expiring;
use crate::shard::conn::Answer;
use crate::shard::state::ShardState;

/// Sends of one request the server refused before it is counted as `h2_goaway`.
const REFUSED_TRIES: usize = 3;

/// What the lane's `http1::Conn` lends for one exchange: its rendered request, and the
/// buffers the response's head and body (for checks and captures) come back in.
pub(crate) struct Buffers<'a> {
    pub request: &'a mut Vec<u8>,
    pub head: &'a mut Vec<u8>,
    pub body: &'a mut Vec<u8>,
}

/// One request of step `index` on lane `lane`, not yet recorded, or `None` after a counted
/// failure. `sent_hint` as for HTTP/1.1: a clock reading taken just before.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn exchange(
    h2: &H2Conn,
    lane: usize,
    shard: &ShardState,
    id: usize,
    index: usize,
    step: &StepPlan,
    intended: Option<u64>,
    sent_hint: Option<u64>,
    mut bufs: Buffers<'_>,
) -> Option<Answer> {
    let sent = sent_hint.unwrap_or_else(|| shard.now_ns());
    if let Some(i) = intended {
        shard.step(0).record_send_lag(i, sent);
    }
    let slot = shard.slot(id);
    slot.arm(sent + step.timeout_ns.unwrap_or(shard.timeout_ns));
    let mut outcome = Err(ErrorKind::H2Goaway);
    for _ in 0..REFUSED_TRIES {
        h2.lend(lane, step, shard.group.journey.cookies, bufs.request);
        let seen = h2.inner.borrow().connect_failures;
        let start = pin!(poll_fn(|cx| h2.poll_start(lane, seen, cx)));
        let got = match (Expiring { fut: start, slot }).await {
            None => Err(ErrorKind::Timeout),
            Some(Err(kind)) => Err(kind),
            Some(Ok(())) => {
                let response = pin!(poll_fn(|cx| h2.poll_outcome(lane, cx)));
                match (Expiring {
                    fut: response,
                    slot,
                })
                .await
                {
                    Some(o) => Ok(o),
                    None => {
                        h2.cancel(lane);
                        Err(ErrorKind::Timeout)
                    }
                }
            }
        };
        h2.give_back(lane, &mut bufs);
        outcome = match got {
            Ok(Outcome::Refused) => continue,
            Ok(Outcome::Done(status)) => Ok(status),
            Ok(Outcome::Failed(kind)) | Err(kind) => Err(kind),
        };
        break;
    }
    slot.disarm();
    match outcome {
        Ok(status) => Some(Answer {
            status,
            sent,
            done: shard.now_ns(),
        }),
        Err(kind) => {
            if !shard.interrupted() {
                shard.step(index).record_error(kind);
            }
            None
        }
    }
}

impl H2Conn {
    /// The lane's request moves in (swapped, not copied) for the exchange.
    fn lend(&self, lane: usize, step: &StepPlan, cookies: bool, request: &mut Vec<u8>) {
        let mut inner = self.inner.borrow_mut();
        let l = &mut inner.lanes[lane];
        std::mem::swap(&mut l.request, request);
        l.outcome = None;
        l.status = 0;
        l.needs_head = step.keeps_head();
        l.cookies = cookies;
        l.needs_body = step.needs_body;
        l.head.clear();
        l.body.clear();
    }

    /// The request goes back to the lane, with the response's head and body.
    fn give_back(&self, lane: usize, bufs: &mut Buffers<'_>) {
        let mut inner = self.inner.borrow_mut();
        let l = &mut inner.lanes[lane];
        std::mem::swap(&mut l.request, bufs.request);
        std::mem::swap(&mut l.head, bufs.head);
        std::mem::swap(&mut l.body, bufs.body);
    }

    /// Opens the lane's stream once the connection has a free one.
    fn poll_start(
        &self,
        lane: usize,
        seen: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ErrorKind>> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        if inner.connect_failures != seen {
            return Poll::Ready(Err(inner.connect_error));
        }
        let wait = |waiting: &mut Vec<std::task::Waker>| {
            if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                waiting.push(cx.waker().clone());
            }
        };
        let Some(conn) = inner.conn.as_mut().filter(|c| c.can_start()) else {
            wait(&mut inner.waiting);
            // Disconnected or draining: the driver (re)connects when a lane waits.
            wake(&mut inner.driver);
            return Poll::Pending;
        };
        let l = &mut inner.lanes[lane];
        let mut headers = [httparse::EMPTY_HEADER; 2 * MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(at)) = parsed.parse(&l.request) else {
            return Poll::Ready(Err(ErrorKind::Template));
        };
        let authority = parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("host"))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .unwrap_or_default();
        let req = Request {
            method: parsed.method.unwrap_or("GET"),
            scheme: self.scheme,
            authority,
            path: parsed.path.unwrap_or("/"),
            headers: Fields::Parsed(&*parsed.headers),
        };
        match conn.start_request(&req, &l.request[at..], &mut inner.out) {
            Ok(stream) => {
                l.stream = Some(stream);
                l.body_at = at;
                wake(&mut inner.writer);
                Poll::Ready(Ok(()))
            }
            Err(StartError::NoSlot) => {
                wait(&mut inner.waiting);
                Poll::Pending
            }
            Err(StartError::GoingAway | StartError::Closed | StartError::IdsExhausted) => {
                wait(&mut inner.waiting);
                wake(&mut inner.driver);
                Poll::Pending
            }
        }
    }

    /// The lane's outcome, once the driver has it.
    fn poll_outcome(&self, lane: usize, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut inner = self.inner.borrow_mut();
        let l = &mut inner.lanes[lane];
        if let Some(o) = l.outcome.take() {
            return Poll::Ready(o);
        }
        if !l.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            l.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Gives up on the lane's stream (a timeout): RST_STREAM, and the slot is free.
    fn cancel(&self, lane: usize) {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let Some(stream) = inner.lanes[lane].stream.take() else {
            return;
        };
        if let Some(conn) = inner.conn.as_mut() {
            conn.cancel(stream, &mut inner.out);
            wake(&mut inner.writer);
            super::wake_all(&mut inner.waiting);
        }
    }
}
