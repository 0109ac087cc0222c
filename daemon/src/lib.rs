//! loadd's library side: the control API (`api`, `runner`, `store`) and the built-in sandbox target.

pub mod api;
pub mod runner;
pub mod sandbox;
pub mod store;
