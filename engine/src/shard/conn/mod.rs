//! The connection kinds a shard runs: HTTP/1.1 keep-alive connections and WebSocket users,
//! and the response inspection (checks, captures) they share.

pub mod http1;
pub mod inspect;
pub mod ws;
