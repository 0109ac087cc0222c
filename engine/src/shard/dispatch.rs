//! Hands scheduled arrivals to connections inside one shard (the open model).
//!
//! One pacer task releases every arrival that is due on a shared ~1 ms tick (one wakeup per
//! tick, not one timer per connection). An arrival goes to an idle connection, else waits in a
//! bounded FIFO (its wait counts in its latency, since latency runs from the intended time),
//! else is dropped and counted. Shard-local only: `Cell`/`RefCell`, no locks, no atomics.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// What a connection is told to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// Send a request intended to start at this time (ns from origin; `None` = unscheduled).
    Go(Option<u64>),
    /// No more work: finish.
    Stop,
}

/// A connection's mailbox: where the pacer drops an arrival for an idle connection.
#[derive(Default)]
struct Mailbox {
    intended: Cell<Option<u64>>,
    waker: RefCell<Option<Waker>>,
}

/// The open-model hand-off between the pacer and a shard's connections.
pub struct Dispatch {
    queue: RefCell<VecDeque<u64>>,
    max_queue: usize,
    idle: RefCell<Vec<usize>>,
    mail: Vec<Mailbox>,
    finished: Cell<bool>,
}

/// What became of an offered arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    Handed,
    Queued,
    Dropped,
}

impl Dispatch {
    pub fn new(connections: usize, max_queue: usize) -> Self {
        Self {
            // Pre-size so the steady state never reallocates.
            queue: RefCell::new(VecDeque::with_capacity(max_queue.min(1 << 16))),
            max_queue,
            idle: RefCell::new(Vec::with_capacity(connections)),
            mail: (0..connections).map(|_| Mailbox::default()).collect(),
            finished: Cell::new(false),
        }
    }

    /// Offers one arrival intended at `intended_ns`.
    pub fn offer(&self, intended_ns: u64) -> Offer {
        if let Some(id) = self.idle.borrow_mut().pop() {
            let mb = &self.mail[id];
            mb.intended.set(Some(intended_ns));
            if let Some(w) = mb.waker.borrow_mut().take() {
                w.wake();
            }
            return Offer::Handed;
        }
        let mut q = self.queue.borrow_mut();
        if q.len() < self.max_queue {
            q.push_back(intended_ns);
            Offer::Queued
        } else {
            Offer::Dropped
        }
    }

    /// No more arrivals will be offered: idle connections are released with `Stop`.
    pub fn finish(&self) {
        self.finished.set(true);
        for id in self.idle.borrow_mut().drain(..) {
            if let Some(w) = self.mail[id].waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Drops every queued arrival (a hard stop); returns how many were dropped.
    pub fn clear_queue(&self) -> u64 {
        let mut q = self.queue.borrow_mut();
        let n = q.len() as u64;
        q.clear();
        n
    }

    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.borrow().len()
    }

    /// The next arrival for connection `id`: a queued one at once, else wait for the pacer.
    pub fn next(&self, id: usize) -> NextArrival<'_> {
        if let Some(t) = self.queue.borrow_mut().pop_front() {
            return NextArrival {
                dispatch: self,
                id,
                ready: Some(Permit::Go(Some(t))),
            };
        }
        if self.finished.get() {
            return NextArrival {
                dispatch: self,
                id,
                ready: Some(Permit::Stop),
            };
        }
        self.idle.borrow_mut().push(id);
        NextArrival {
            dispatch: self,
            id,
            ready: None,
        }
    }
}

/// Resolves when the pacer hands this connection an arrival, or when the schedule is over.
pub struct NextArrival<'a> {
    dispatch: &'a Dispatch,
    id: usize,
    ready: Option<Permit>,
}

impl Future for NextArrival<'_> {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        if let Some(p) = self.ready.take() {
            return Poll::Ready(p);
        }
        let mb = &self.dispatch.mail[self.id];
        if let Some(t) = mb.intended.take() {
            return Poll::Ready(Permit::Go(Some(t)));
        }
        if self.dispatch.finished.get() {
            return Poll::Ready(Permit::Stop);
        }
        let mut w = mb.waker.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(f).poll(&mut cx)
    }

    #[test]
    fn idle_connections_get_arrivals_then_queue_then_drop() {
        let d = Dispatch::new(2, 2);
        let mut a = d.next(0);
        assert_eq!(poll_once(&mut a), Poll::Pending);
        assert_eq!(d.offer(10), Offer::Handed);
        assert_eq!(poll_once(&mut a), Poll::Ready(Permit::Go(Some(10))));
        // No idle connection now: queue up to 2, then drop.
        assert_eq!(d.offer(20), Offer::Queued);
        assert_eq!(d.offer(30), Offer::Queued);
        assert_eq!(d.offer(40), Offer::Dropped);
        // FIFO: the oldest waits least long.
        assert_eq!(poll_once(&mut d.next(1)), Poll::Ready(Permit::Go(Some(20))));
        assert_eq!(d.queued(), 1);
        assert_eq!(d.clear_queue(), 1);
    }

    #[test]
    fn finish_releases_idle_connections() {
        let d = Dispatch::new(1, 4);
        let mut a = d.next(0);
        assert_eq!(poll_once(&mut a), Poll::Pending);
        d.finish();
        assert_eq!(poll_once(&mut a), Poll::Ready(Permit::Stop));
        assert_eq!(poll_once(&mut d.next(0)), Poll::Ready(Permit::Stop));
    }
}
