//! loadd's library side: the built-in sandbox target (and, later, the control API).

pub mod sandbox;
