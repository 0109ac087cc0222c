//! The workspace's integration tests as one binary (one link of the engine instead of one per
//! file): each module drives the built `loadctl` and `loadd` against loopback servers from
//! `testbed`. Tests that generate load hold `testbed::serial()`, which now spans every module.
//!
//! It refuses tests that need their own global allocator: those measuring the heap with dhat
//! (`tests/alloc.rs`, `tests/memory.rs`, `tests/tls.rs`) stay binaries of their own, so no other
//! test's allocations can land in their figures.

mod addresses;
mod capacity;
mod cli_contract;
mod client;
mod co;
mod daemon;
mod daemon_abuse;
mod demo;
mod executors;
mod fleet;
mod h2;
mod h2_codec;
mod hardening;
mod https;
mod journeys;
mod misbehave;
mod nginx;
mod outcomes;
mod phases;
mod reports;
mod robustness;
mod scenarios;
mod schema;
mod websocket;
mod ws_journeys;
