//! Human units for durations, counts and rates: `30s`, `250ms`, `1m30s`, `10k`, `1.5M`.
//!
//! One parser for flags and scenario files alike, so `10k` means the same everywhere. It refuses
//! anything it cannot read exactly rather than guessing (`10x`, `-5s`, empty strings).

use std::time::Duration;

/// Why a unit string was refused; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty value")]
    Empty,
    #[error("`{0}` is not a duration: use e.g. 30s, 250ms, 1m30s, 2h, 500us")]
    Duration(String),
    #[error("`{0}` is not a count: use e.g. 100, 10k, 1.5M")]
    Count(String),
}

/// Parses a duration made of one or more `<number><unit>` parts (`us`, `ms`, `s`, `m`, `h`).
/// A bare number is seconds, as in wrk.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    let bad = || UnitError::Duration(text.to_string());
    if let Ok(secs) = s.parse::<f64>() {
        return seconds_to_duration(secs).ok_or_else(bad);
    }
    let mut total_ns: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale_ns = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_ns += value * scale_ns;
    }
    seconds_to_duration(total_ns / 1e9).ok_or_else(bad)
}

fn seconds_to_duration(secs: f64) -> Option<Duration> {
    (0.0..1e12)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// Parses a non-negative number with an optional `k` (10³), `M` (10⁶) or `G` (10⁹) suffix.
/// `1.5k` is allowed; the result may be fractional (rates are).
pub fn parse_scaled(text: &str) -> Result<f64, UnitError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    let bad = || UnitError::Count(text.to_string());
    let (digits, scale) = match s.as_bytes()[s.len() - 1] {
        b'k' | b'K' => (&s[..s.len() - 1], 1e3),
        b'M' | b'm' => (&s[..s.len() - 1], 1e6),
        b'G' | b'g' => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    let value: f64 = digits.parse().map_err(|_| bad())?;
    let value = value * scale;
    if !value.is_finite() || value < 0.0 || digits.starts_with(['+', '-']) {
        return Err(bad());
    }
    Ok(value)
}

/// Parses a whole count (`100`, `10k`); fractions that do not land on a whole number are refused.
pub fn parse_count(text: &str) -> Result<u64, UnitError> {
    let value = parse_scaled(text)?;
    if value.fract() != 0.0 || value > u64::MAX as f64 {
        return Err(UnitError::Count(text.to_string()));
    }
    Ok(value as u64)
}

/// Parses a size in bytes: `512`, `50KB` (10³), `2MB` (10⁶), `64KiB` (2¹⁰), `1MiB` (2²⁰).
pub fn parse_bytes(text: &str) -> Result<u64, UnitError> {
    let s = text.trim();
    let bad = || UnitError::Count(text.to_string());
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let value: f64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" | "k" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1_048_576.0,
        "GiB" => 1_073_741_824.0,
        _ => return Err(bad()),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes < 0.0 || bytes.fract() != 0.0 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Formats a duration the way the parser reads it back (used in summaries).
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1000) {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

/// `850µs`, `12.3ms`, `1.50s`
pub fn format_us(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("30s", 30_000_000),
            ("250ms", 250_000),
            ("1m30s", 90_000_000),
            ("2h", 7_200_000_000),
            ("500us", 500),
            ("1.5s", 1_500_000),
            ("10", 10_000_000),
            (" 3s ", 3_000_000),
        ];
        for (text, us) in cases {
            assert_eq!(parse_duration(text).unwrap().as_micros(), us, "{text}");
        }
        for bad in ["", "1x", "-5s", "s", "1s2", "ms", "1..2s", "nan"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn counts_and_rates() {
        assert_eq!(parse_count("100").unwrap(), 100);
        assert_eq!(parse_count("10k").unwrap(), 10_000);
        assert_eq!(parse_count("1.5M").unwrap(), 1_500_000);
        assert_eq!(parse_scaled("2.5").unwrap(), 2.5);
        assert_eq!(parse_scaled("1.5k").unwrap(), 1500.0);
        for bad in ["", "k", "-1", "+1", "1.5", "abc", "1e400"] {
            assert!(parse_count(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("50KB").unwrap(), 50_000);
        assert_eq!(parse_bytes("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_bytes("64KiB").unwrap(), 65_536);
        assert_eq!(parse_bytes("1.5MiB").unwrap(), 1_572_864);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        for bad in ["", "KB", "5XB", "-1KB", "0.5B"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in ["30s", "250ms", "750us"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
