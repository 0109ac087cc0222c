//! Request deadlines without a timer per request: each connection has a `Slot` the shard's
//! watchdog checks on its housekeeping tick, and `Expiring` runs an operation until it completes
//! or its slot expires.
//!
//! It only measures and wakes: what an expiry means (a timeout, an interrupted run) is the
//! connection's call, and dropping the cancelled operation is what cancels its io_uring request.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Per-connection deadline, checked by the shard's watchdog (no timer per request).
#[derive(Default)]
pub struct Slot {
    deadline_ns: Cell<u64>,
    expired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Slot {
    pub fn arm(&self, deadline_ns: u64) {
        self.expired.set(false);
        self.deadline_ns.set(deadline_ns);
    }

    pub fn disarm(&self) {
        self.deadline_ns.set(0);
        self.expired.set(false);
    }

    /// Expires the slot now, whatever its deadline: stops what waits on it.
    pub fn expire(&self) {
        self.expired.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Called by the watchdog: expires the slot if its deadline has passed.
    pub fn check(&self, now_ns: u64) {
        let d = self.deadline_ns.get();
        if d != 0 && now_ns >= d && !self.expired.get() {
            self.expired.set(true);
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

/// Runs `fut` until it completes or the slot expires (then `None`; the future is dropped,
/// which cancels its io_uring operation).
pub struct Expiring<'a, F> {
    pub fut: Pin<&'a mut F>,
    pub slot: &'a Slot,
}

impl<F: Future> Future for Expiring<'_, F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if self.slot.expired.get() {
            return Poll::Ready(None);
        }
        let mut w = self.slot.waker.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
