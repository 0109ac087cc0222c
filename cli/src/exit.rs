//! loadctl's exit codes, defined once: every command returns one of these, so `run`, `submit`,
//! `tail` and `compare` can all gate a CI job the same way. It owns no logic beyond reading a
//! finished run's verdict; it refuses to grow codes a README line does not explain.

use engine::Results;

/// Success.
pub const OK: u8 = 0;
/// A verdict failed: a threshold or a `[[teardown]]` check (`run`, `submit`, `tail`), a
/// significant regression
/// (`compare`), or even the start rate of a capacity search.
pub const FAILED: u8 = 1;
/// Usage or configuration error: one line per problem on stderr, nothing was sent.
pub const USAGE: u8 = 2;
/// The run produced no result (aborted, failed, its `[[setup]]` failed, or loadd could not be
/// reached).
pub const NO_RESULT: u8 = 3;
/// An `abort_on_fail` threshold stopped the run.
pub const ABORTED: u8 = 4;
/// A second Ctrl-C quits at once, with the shell's code for SIGINT.
pub const INTERRUPTED: i32 = 130;

/// The exit code a finished run's results call for.
pub fn of_results(results: &Results) -> u8 {
    if results.setup_failed.is_some() {
        NO_RESULT
    } else if results.aborted_by.is_some() {
        ABORTED
    } else if results.thresholds_failed || results.teardown_failed.is_some() {
        FAILED
    } else {
        OK
    }
}
