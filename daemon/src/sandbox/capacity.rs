//! A server with a known ceiling, for capacity-search tests, and a switch that slows the sandbox.
//!
//! `GET /capacity/work` is served by at most `concurrency` requests at once, each holding its slot
//! for `service_ms`; the rest queue (FIFO), so throughput tops out at `concurrency / service_ms`
//! and latency grows without bound past it. `POST /control/capacity` changes both at run time;
//! `POST /control/slow` adds a fixed delay to every `/capacity/work` and `/api/...` response
//! (outside the slot, so it raises latency without lowering the ceiling). It refuses to model
//! anything subtler (no service-time distribution, no queue limit).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::SandboxState;

/// Largest `concurrency`: far beyond any loopback test, well below tokio's permit limit.
pub const MAX_CONCURRENCY: usize = 1 << 20;
/// Largest `service_ms` and `extra_ms`: a minute.
pub const MAX_DELAY_MS: u64 = 60_000;

/// The capacity endpoint's shape: `concurrency` slots of `service_ms` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CapacityConfig {
    pub concurrency: usize,
    pub service_ms: u64,
}

impl Default for CapacityConfig {
    /// 8 slots of 10 ms: an 800 requests/s ceiling.
    fn default() -> Self {
        CapacityConfig {
            concurrency: 8,
            service_ms: 10,
        }
    }
}

impl CapacityConfig {
    /// What is wrong with this configuration, if anything.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(format!(
                "capacity concurrency must be between 1 and {MAX_CONCURRENCY}"
            ));
        }
        if self.service_ms > MAX_DELAY_MS {
            return Err(format!(
                "capacity service time must be at most {MAX_DELAY_MS} ms"
            ));
        }
        Ok(())
    }
}

pub(super) struct Capacity {
    slots: Semaphore,
    /// Slots to retire as they come back: a decrease takes idle slots at once and the busy ones as
    /// they finish, so the new limit also binds requests already queued.
    retiring: AtomicUsize,
    service_ms: AtomicU64,
    /// The configured concurrency; the lock serializes reconfiguration (never taken per request).
    concurrency: Mutex<usize>,
    /// Added to every `/capacity/work` and `/api/...` response; 0 for none.
    extra_ms: AtomicU64,
}

impl Capacity {
    /// `config` must have passed `CapacityConfig::check`.
    pub(super) fn new(config: CapacityConfig) -> Self {
        Capacity {
            slots: Semaphore::new(config.concurrency),
            retiring: AtomicUsize::new(0),
            service_ms: AtomicU64::new(config.service_ms),
            concurrency: Mutex::new(config.concurrency),
            extra_ms: AtomicU64::new(0),
        }
    }

    fn config(&self) -> CapacityConfig {
        CapacityConfig {
            concurrency: *self
                .concurrency
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            service_ms: self.service_ms.load(Ordering::Relaxed),
        }
    }

    fn reconfigure(
        &self,
        concurrency: Option<usize>,
        service_ms: Option<u64>,
    ) -> Result<(), String> {
        let mut current = self
            .concurrency
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let wanted = CapacityConfig {
            concurrency: concurrency.unwrap_or(*current),
            service_ms: service_ms.unwrap_or(self.service_ms.load(Ordering::Relaxed)),
        };
        wanted.check()?;
        self.service_ms.store(wanted.service_ms, Ordering::Relaxed);
        if wanted.concurrency > *current {
            // Cancel pending retirements first; add real slots only for the rest.
            let grow = wanted.concurrency - *current;
            let cancelled = take_up_to(&self.retiring, grow);
            self.slots.add_permits(grow - cancelled);
        } else {
            let shrink = *current - wanted.concurrency;
            let idle = self.slots.forget_permits(shrink);
            self.retiring.fetch_add(shrink - idle, Ordering::Relaxed);
        }
        *current = wanted.concurrency;
        Ok(())
    }

    /// Waits for a free slot (FIFO). `None` cannot happen: the semaphore is never closed.
    async fn acquire(&self) -> Option<Slot<'_>> {
        let permit = self.slots.acquire().await.ok()?;
        Some(Slot {
            capacity: self,
            permit: Some(permit),
        })
    }

    async fn serve(&self) {
        // Dropped on cancellation too (a client that gave up), so a slot is never lost.
        let _slot = self.acquire().await;
        let service_ms = self.service_ms.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(service_ms)).await;
    }
}

/// Subtracts up to `n` from `counter`; returns how much was subtracted.
fn take_up_to(counter: &AtomicUsize, n: usize) -> usize {
    match counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| Some(c - c.min(n))) {
        Ok(before) | Err(before) => before.min(n),
    }
}

/// A held slot: returned on drop, or retired if a decrease is still owed.
struct Slot<'a> {
    capacity: &'a Capacity,
    permit: Option<SemaphorePermit<'a>>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let retiring = &self.capacity.retiring;
        if retiring.load(Ordering::Relaxed) > 0 && take_up_to(retiring, 1) == 1 {
            permit.forget();
        }
    }
}

pub(super) async fn work(State(state): State<Arc<SandboxState>>) -> &'static str {
    state.capacity.serve().await;
    "ok\n"
}

#[derive(Deserialize)]
pub(super) struct CapacityQuery {
    concurrency: Option<usize>,
    service_ms: Option<u64>,
}

/// Changes what is given and answers the configuration now in force.
pub(super) async fn configure(
    State(state): State<Arc<SandboxState>>,
    Query(query): Query<CapacityQuery>,
) -> Response {
    match state
        .capacity
        .reconfigure(query.concurrency, query.service_ms)
    {
        Ok(()) => Json(state.capacity.config()).into_response(),
        Err(message) => (StatusCode::BAD_REQUEST, message + "\n").into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct SlowQuery {
    extra_ms: u64,
}

pub(super) async fn slow(
    State(state): State<Arc<SandboxState>>,
    Query(query): Query<SlowQuery>,
) -> Response {
    if query.extra_ms > MAX_DELAY_MS {
        let message = format!("extra_ms must be at most {MAX_DELAY_MS}\n");
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    state
        .capacity
        .extra_ms
        .store(query.extra_ms, Ordering::Relaxed);
    StatusCode::NO_CONTENT.into_response()
}

/// Middleware on the slowable routes: holds the response for `extra_ms` once it is ready.
pub(super) async fn slow_down(
    State(state): State<Arc<SandboxState>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let extra_ms = state.capacity.extra_ms.load(Ordering::Relaxed);
    if extra_ms > 0 {
        tokio::time::sleep(Duration::from_millis(extra_ms)).await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{Capacity, CapacityConfig};

    fn capacity(concurrency: usize) -> Capacity {
        Capacity::new(CapacityConfig {
            concurrency,
            service_ms: 0,
        })
    }

    #[tokio::test]
    async fn a_decrease_retires_busy_slots_as_they_come_back() {
        let capacity = capacity(3);
        let first = capacity.acquire().await;
        let second = capacity.acquire().await;
        capacity.reconfigure(Some(1), None).expect("valid");
        // The idle slot went at once; one busy slot is owed.
        assert_eq!(capacity.slots.available_permits(), 0);
        drop(first);
        assert_eq!(capacity.slots.available_permits(), 0);
        drop(second);
        assert_eq!(capacity.slots.available_permits(), 1);
    }

    #[tokio::test]
    async fn an_increase_cancels_owed_retirements_first() {
        let capacity = capacity(2);
        let first = capacity.acquire().await;
        let second = capacity.acquire().await;
        capacity.reconfigure(Some(1), None).expect("valid");
        capacity.reconfigure(Some(3), None).expect("valid");
        assert_eq!(capacity.slots.available_permits(), 1);
        drop((first, second));
        assert_eq!(capacity.slots.available_permits(), 3);
    }

    #[test]
    fn limits_are_checked() {
        let capacity = capacity(2);
        assert!(capacity.reconfigure(Some(0), None).is_err());
        assert!(capacity.reconfigure(None, Some(60_001)).is_err());
        assert_eq!(capacity.config().concurrency, 2);
        capacity.reconfigure(None, Some(5)).expect("valid");
        assert_eq!(
            capacity.config(),
            CapacityConfig {
                concurrency: 2,
                service_ms: 5
            }
        );
    }
}
