//! loadd's engine: everything from a scenario file to merged results.
//!
//! The data flows one way: `ScenarioSpec` (file as written) → `Plan` (validated, resolved) →
//! `ShardPlan` (one shard's share) → `ShardInterval`/`ShardFinal` → `Results` → `RunEvent`.
//! Protocol code (`proto`) is sans-io; connection code (`conn`) drives it over monoio sockets.

pub mod capacity;
pub mod collector;
mod conn;
mod conn_ws;
pub mod dispatch;
pub mod error_kind;
pub mod histogram;
pub mod inspect;
pub mod journey;
pub mod plan;
pub mod proto;
pub mod report;
pub mod results;
pub mod run;
pub mod schedule;
mod shard;
pub mod source;
pub mod spec;
pub mod split;
pub mod stats;
pub mod template;
pub mod threshold;
pub mod tls;
pub mod units;
pub mod wire;

pub use error_kind::ErrorKind;
pub use plan::Plan;
pub use results::Results;
pub use run::{start, RunEvent, RunHandle};
