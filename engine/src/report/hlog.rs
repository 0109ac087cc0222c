//! HdrHistogram interval logs (`.hlog`): one corrected-latency histogram per second, in the
//! standard text format that HdrHistogram's tools read (`HistogramLogProcessor`,
//! HistogramLogAnalyzer, `hdrh` for Python), written with the `hdrhistogram` crate's
//! `interval_log` writer. Histograms are V2 + deflate, base64.
//!
//! Values are microseconds (the engine's unit), so `Interval_Max` is written in milliseconds
//! (`#[MaxValueDivisor: 1000.000]`) and Java's `HistogramLogProcessor` wants
//! `-outputValueUnitRatio 1000` to print milliseconds. Interval start times count from
//! `#[BaseTime]`, the run's start. A last interval carries what completed after the last whole
//! second (the drain), so the log's counts add up to the run's total.
//!
//! It refuses to buffer a run's histograms: each is written as it arrives.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogWriter, IntervalLogWriterBuilder, IntervalLogWriterError,
};
pub use hdrhistogram::serialization::V2DeflateSerializer;

use crate::metrics::histogram::{new_histogram, LatencyHistogram};
use crate::metrics::stats::StatsSet;

/// Histogram values are µs; `Interval_Max` is shown in ms.
pub const MAX_VALUE_DIVISOR: f64 = 1000.0;

/// The column legend HdrHistogram's Java writer puts before the first interval.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

fn io_error<E: std::fmt::Debug>(e: IntervalLogWriterError<E>) -> io::Error {
    match e {
        IntervalLogWriterError::IoError(e) => e,
        IntervalLogWriterError::SerializeError(e) => {
            io::Error::other(format!("histogram serialization: {e:?}"))
        }
    }
}

/// Writes a run's interval log as it goes.
pub struct HlogWriter<'a, W: Write> {
    log: IntervalLogWriter<'a, 'a, W, V2DeflateSerializer>,
    /// Everything written so far, to compute the remainder at the end.
    written: LatencyHistogram,
    /// End of the last interval written, from the start.
    end: Duration,
}

impl<'a, W: Write> HlogWriter<'a, W> {
    /// Writes the header: comments, `StartTime` and `BaseTime` (both `started`), the legend.
    pub fn begin(
        out: &'a mut W,
        serializer: &'a mut V2DeflateSerializer,
        started: SystemTime,
        comment: &str,
    ) -> io::Result<Self> {
        let mut head = Vec::new();
        let mut no_serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment(comment)
            .add_comment("[Histogram log format version 1.3]")
            .add_comment("[values are microseconds; Interval_Max is in milliseconds]")
            .with_start_time(started)
            .with_base_time(started)
            .begin_log_with(&mut head, &mut no_serializer)?;
        head.extend_from_slice(LEGEND.as_bytes());
        out.write_all(&head)?;
        let log = IntervalLogWriterBuilder::new()
            .with_max_value_divisor(MAX_VALUE_DIVISOR)
            .begin_log_with(out, serializer)?;
        Ok(Self {
            log,
            written: new_histogram(),
            end: Duration::ZERO,
        })
    }

    /// One interval: `start` from the run's start, `length` long.
    pub fn interval(
        &mut self,
        start: Duration,
        length: Duration,
        histogram: &LatencyHistogram,
    ) -> io::Result<()> {
        self.log
            .write_histogram(histogram, start, length, None)
            .map_err(io_error)?;
        // Same constructor everywhere: the add cannot fail on bounds.
        let _ = self.written.add(histogram);
        self.end = self.end.max(start + length);
        Ok(())
    }

    /// Writes what `total` holds beyond the intervals written (responses after the last whole
    /// second) as a last interval ending at `end`, if there is any.
    pub fn finish(mut self, total: &LatencyHistogram, end: Duration) -> io::Result<()> {
        let mut rest = total.clone();
        if rest.subtract(&self.written).is_err() || rest.is_empty() {
            // The intervals already hold everything (or more: nothing sensible to add).
            return Ok(());
        }
        let start = self.end;
        let length = end.saturating_sub(start).max(Duration::from_millis(1));
        self.log
            .write_histogram(&rest, start, length, None)
            .map_err(io_error)?;
        self.end = start + length;
        Ok(())
    }
}

/// The corrected latency of a set across its journey steps (one histogram per step); borrowed
/// when there is only one step.
pub fn corrected_latency(set: &StatsSet) -> Cow<'_, LatencyHistogram> {
    match set.steps.as_slice() {
        [one] => Cow::Borrowed(&one.latency),
        steps => {
            let mut h = new_histogram();
            for s in steps {
                // One constructor everywhere: adding cannot fail on bounds.
                let _ = h.add(&s.latency);
            }
            Cow::Owned(h)
        }
    }
}

/// A whole log from `(start, length, histogram)` intervals (starts from `started`).
pub fn render<'h>(
    started: SystemTime,
    intervals: impl IntoIterator<Item = (Duration, Duration, &'h LatencyHistogram)>,
) -> io::Result<String> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut w = HlogWriter::begin(&mut out, &mut serializer, started, "loadd")?;
        for (start, length, h) in intervals {
            w.interval(start, length, h)?;
        }
    }
    String::from_utf8(out).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    fn read(text: &str) -> Vec<(Duration, Duration, f64, LatencyHistogram)> {
        let mut out = Vec::new();
        let mut base = None;
        for entry in IntervalLogIterator::new(text.as_bytes()) {
            match entry.unwrap() {
                LogEntry::BaseTime(t) => base = Some(t),
                LogEntry::StartTime(_) => {}
                LogEntry::Interval(i) => {
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(i.encoded_histogram())
                        .unwrap();
                    let h: LatencyHistogram = Deserializer::new()
                        .deserialize(&mut bytes.as_slice())
                        .unwrap();
                    out.push((i.start_timestamp(), i.duration(), i.max(), h));
                }
            }
        }
        assert!(base.is_some(), "no BaseTime in\n{text}");
        out
    }

    #[test]
    fn intervals_and_the_remainder_read_back() {
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut a = new_histogram();
        let mut b = new_histogram();
        for us in 1..=1000 {
            a.record(us).unwrap();
            b.record(us * 10).unwrap();
        }
        let mut total = a.clone();
        total.add(&b).unwrap();
        total.record(123_456).unwrap(); // completed during the drain

        let mut out = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        let mut w = HlogWriter::begin(&mut out, &mut ser, started, "loadd test").unwrap();
        let s = Duration::from_secs(1);
        w.interval(Duration::ZERO, s, &a).unwrap();
        w.interval(s, s, &b).unwrap();
        w.finish(&total, Duration::from_millis(2250)).unwrap();
        let text = String::from_utf8(out).unwrap();

        assert!(text.starts_with("#loadd test\n#[Histogram log format version 1.3]\n"));
        assert!(text.contains("#[StartTime: 1700000000.000 (seconds since epoch)]\n"));
        assert!(text.contains("#[BaseTime: 1700000000.000 (seconds since epoch)]\n"));
        assert!(text.contains(LEGEND));
        let back = read(&text);
        assert_eq!(back.len(), 3, "{text}");
        assert_eq!(back[0].3, a);
        assert_eq!(back[1].0, s);
        // Max in ms: 10,000 µs.
        assert!(
            (back[1].2 - b.max() as f64 / 1000.0).abs() < 1e-9,
            "{}",
            back[1].2
        );
        assert_eq!(back[2].3.len(), 1);
        assert_eq!(back[2].0, Duration::from_secs(2));
        assert_eq!(back[2].1, Duration::from_millis(250));
        let sum: u64 = back.iter().map(|x| x.3.len()).sum();
        assert_eq!(sum, total.len());
    }

    #[test]
    fn nothing_left_means_no_last_interval() {
        let mut a = new_histogram();
        a.record(5).unwrap();
        let text = render(
            SystemTime::UNIX_EPOCH,
            [(Duration::ZERO, Duration::from_secs(1), &a)],
        )
        .unwrap();
        assert_eq!(read(&text).len(), 1);
    }
}
