//! The connection kinds a shard runs: HTTP/1.1 keep-alive connections, HTTP/2 connections
//! shared by several users (`h2`) and WebSocket users,
//! the socket opening and deadlines they share, and the response inspection (checks,
//! captures) of HTTP steps.
//!
//! Connections see their shard only through `shard::state`; they never pace, stop or ship
//! stats themselves.

pub mod deadline;
pub mod h2;
pub mod http1;
pub mod inspect;
pub mod socket;
pub mod ws;
pub mod ws_steps;

/// A response to one request, before it is recorded: its status, when the request went out,
/// when the response ended.
pub(crate) struct Answer {
    pub status: u16,
    pub sent: u64,
    pub done: u64,
}

/// Wall-clock milliseconds, for templates that print the time.
pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
