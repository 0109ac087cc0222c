//! placeholder, written by the test-harness helper
