//! What a run measures: the one histogram constructor, the error kinds that index fixed counter
//! arrays, the per-shard stats and the messages shards send, and their JSON wire format.
//! It knows nothing of plans, sockets or reports.

pub mod error_kind;
pub mod histogram;
pub mod stats;
pub mod wire;

pub use error_kind::ErrorKind;
