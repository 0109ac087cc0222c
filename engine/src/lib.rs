//! loadd's engine: everything from a scenario file to merged results.
//!
//! The data flows one way: `ScenarioSpec` (file as written) → `Plan` (validated, resolved) →
//! `ShardPlan` (one shard's share) → `ShardInterval`/`ShardFinal` → `Results` → `RunEvent`.
//! Protocol code (`proto`) is sans-io; connection code (`conn`) drives it over monoio sockets.

pub mod error_kind;
pub mod proto;

pub use error_kind::ErrorKind;
