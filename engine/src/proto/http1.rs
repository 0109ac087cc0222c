//! placeholder, written by the proto helper
