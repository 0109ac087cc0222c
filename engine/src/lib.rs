//! loadd's engine: everything from a scenario file to merged results.
//!
//! The data flows one way, and the folders are its stages: `scenario` (the file as written,
//! `ScenarioSpec`) → `plan` (validated, resolved, split per shard) → `shard` (the runtime, with
//! its connections over the sans-io `proto` codecs and `net`) → `metrics` (what shards measure)
//! → `results` (merged) → `report` (renderers); `run` orchestrates. See docs/architecture.md.

pub mod client;
#[cfg(feature = "fault-injection")]
pub mod faults;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod metrics;
pub mod net;
pub mod panics;
pub mod plan;
pub mod proto;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod schedule;
mod shard;
pub mod units;

pub use metrics::ErrorKind;
pub use plan::Plan;
pub use results::Results;
pub use run::{start, RunEvent, RunHandle};
