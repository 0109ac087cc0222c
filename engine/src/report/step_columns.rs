//! The columns of the per-step tables, defined once: each column's name (with its unit), its
//! headers for people, and how its value is read from a `StepResult` (the whole-run step table
//! of the text, Markdown and HTML reports and the steps CSV) or from a `StepInterval` (the
//! `step_<i>_<field>` columns of the per-second CSV, the engine's and the daemon's).
//!
//! A renderer picks which columns it shows and formats each [`Figure`] its own way; it refuses
//! to read a step's figures any other way, so the tables cannot drift apart.

use super::{group, trim};
use crate::results::{StepInterval, StepResult};
use crate::units::format_us;

/// What a cell of a step table holds, by kind, so each renderer formats it its own way.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Figure {
    /// Requests, errors, checks.
    Count(u64),
    /// Per second.
    Rate(f64),
    /// Microseconds.
    Us(u64),
}

impl Figure {
    /// The plain number, as CSV holds it (integer microseconds for latencies).
    pub fn raw(self) -> String {
        match self {
            Figure::Count(n) | Figure::Us(n) => n.to_string(),
            Figure::Rate(x) => x.to_string(),
        }
    }

    /// For people: counts grouped by thousands, rates without trailing noise, latencies with
    /// their unit.
    pub fn readable(self) -> String {
        match self {
            Figure::Count(n) => group(n),
            Figure::Rate(x) => trim(x),
            Figure::Us(n) => format_us(n),
        }
    }

    pub fn is_zero(self) -> bool {
        match self {
            Figure::Count(n) | Figure::Us(n) => n == 0,
            Figure::Rate(x) => x == 0.0,
        }
    }
}

/// One column of the whole-run step table.
#[derive(Clone, Copy)]
pub struct Column {
    /// The machine name, with its unit: the steps CSV's header (`latency_p95_us`).
    pub key: &'static str,
    /// The header people read (`p95`).
    pub label: &'static str,
    /// The header where space is short (Markdown).
    pub short: &'static str,
    /// A nonzero value is a problem (errors, failed checks): the HTML marks it.
    pub alarm: bool,
    pub value: fn(&StepResult) -> Figure,
}

const fn column(
    key: &'static str,
    label: &'static str,
    value: fn(&StepResult) -> Figure,
) -> Column {
    Column {
        key,
        label,
        short: label,
        alarm: false,
        value,
    }
}

pub const REQUESTS: Column = column("requests", "requests", |s| Figure::Count(s.requests));
pub const RATE: Column = column("rate_per_s", "req/s", |s| Figure::Rate(s.rate_per_s));
pub const ERRORS: Column = Column {
    alarm: true,
    ..column("errors", "errors", |s| Figure::Count(s.errors_total))
};
pub const CHECKS_PASSED: Column = column("checks_passed", "checks passed", |s| {
    Figure::Count(s.checks_passed)
});
pub const CHECKS_FAILED: Column = Column {
    short: "checks ✗",
    alarm: true,
    ..column("checks_failed", "checks failed", |s| {
        Figure::Count(s.checks_failed)
    })
};
pub const P50: Column = column("latency_p50_us", "p50", |s| Figure::Us(s.latency_us.p50));
pub const P90: Column = column("latency_p90_us", "p90", |s| Figure::Us(s.latency_us.p90));
pub const P95: Column = column("latency_p95_us", "p95", |s| Figure::Us(s.latency_p95_us));
pub const P99: Column = column("latency_p99_us", "p99", |s| Figure::Us(s.latency_us.p99));
pub const P999: Column = column("latency_p999_us", "p99.9", |s| {
    Figure::Us(s.latency_us.p99_9)
});
pub const MAX: Column = column("latency_max_us", "max", |s| Figure::Us(s.latency_us.max));
pub const SERVICE_P50: Column = column("service_p50_us", "uncorrected p50", |s| {
    Figure::Us(s.service_time_us.p50)
});
pub const SERVICE_P99: Column = column("service_p99_us", "uncorrected p99", |s| {
    Figure::Us(s.service_time_us.p99)
});

/// Every column, in the steps CSV's order.
pub const ALL: [Column; 13] = [
    REQUESTS,
    RATE,
    ERRORS,
    CHECKS_PASSED,
    CHECKS_FAILED,
    P50,
    P90,
    P95,
    P99,
    P999,
    MAX,
    SERVICE_P50,
    SERVICE_P99,
];

/// One of a step's figures for one second (`IntervalSummary.steps`): the per-second CSV's
/// `step_<i>_<key>` columns, and the key of the stored interval JSON it is read back from.
#[derive(Clone, Copy)]
pub struct IntervalColumn {
    pub key: &'static str,
    pub value: fn(&StepInterval) -> u64,
}

/// Every per-second step figure, in the CSV's order.
pub const INTERVAL: [IntervalColumn; 5] = [
    IntervalColumn {
        key: "requests",
        value: |s| s.requests,
    },
    IntervalColumn {
        key: "errors",
        value: |s| s.errors,
    },
    IntervalColumn {
        key: "checks_failed",
        value: |s| s.checks_failed,
    },
    IntervalColumn {
        key: "latency_p50_us",
        value: |s| s.latency_p50_us,
    },
    IntervalColumn {
        key: "latency_p99_us",
        value: |s| s.latency_p99_us,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn keys_are_unique_and_carry_their_unit() {
        let mut keys: Vec<&str> = ALL.iter().map(|c| c.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), ALL.len());
        let r = fixture::results();
        for c in ALL {
            if matches!((c.value)(&r.steps[0]), Figure::Us(_)) {
                assert!(c.key.ends_with("_us"), "{}", c.key);
            }
        }
        assert_eq!(
            (P95.value)(&r.steps[0]),
            Figure::Us(r.steps[0].latency_p95_us)
        );
        assert_eq!(Figure::Count(1234).readable(), "1,234");
        assert_eq!(Figure::Rate(12.5).raw(), "12.5");
    }
}
