//! placeholder, written by the sandbox helper
