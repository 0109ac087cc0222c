//! The connection kinds a shard runs: HTTP/1.1 keep-alive connections and WebSocket users,
//! the socket opening and deadlines they share, and the response inspection (checks,
//! captures) of HTTP steps.
//!
//! Connections see their shard only through `shard::state`; they never pace, stop or ship
//! stats themselves.

pub mod deadline;
pub mod http1;
pub mod inspect;
pub mod socket;
pub mod ws;
