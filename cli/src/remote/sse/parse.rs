//! Server-Sent Events read line by line, within bounds: a daemon (or anything that answers in
//! its place) cannot make loadctl hold an endless line or an endless event. The largest real
//! event is an interval with every step's histograms, well under a megabyte.

use std::fmt;
use std::io::{self, BufRead, Read as _};

/// Longest line, and longest event (its `data:` lines joined), that is read.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// One event: its `event:` name, its `data:` lines joined, and its `id:` if it had one.
#[derive(Debug, PartialEq)]
pub struct Event {
    pub name: String,
    pub data: String,
    pub id: Option<u64>,
}

/// Why the stream could not be read on.
#[derive(Debug)]
pub enum LineError {
    /// The connection failed or dropped.
    Io(io::Error),
    /// A line, or an event, is over `MAX_LINE_BYTES`.
    TooLong,
    /// A line is not UTF-8 (the format says it is).
    NotText,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Io(e) => write!(f, "{e}"),
            LineError::TooLong => write!(f, "an event is over {MAX_LINE_BYTES} bytes"),
            LineError::NotText => write!(f, "a line is not UTF-8 text"),
        }
    }
}

/// The next line (without its `\n` or `\r\n`), or `None` at the end of the stream. `buf` is the
/// caller's, reused from line to line.
pub fn read_line<'b>(
    reader: &mut impl BufRead,
    buf: &'b mut Vec<u8>,
) -> Result<Option<&'b str>, LineError> {
    buf.clear();
    let limit = MAX_LINE_BYTES as u64 + 1;
    let n = reader
        .by_ref()
        .take(limit)
        .read_until(b'\n', buf)
        .map_err(LineError::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if n as u64 == limit {
        return Err(LineError::TooLong);
    }
    std::str::from_utf8(buf)
        .map(Some)
        .map_err(|_| LineError::NotText)
}

/// The event being read, line by line.
#[derive(Default)]
pub struct Parser {
    name: String,
    data: String,
    id: Option<u64>,
}

impl Parser {
    /// Takes one line; the blank line that ends a named event yields it. Comments (`:`) and
    /// unknown fields are skipped, and an event without a name is dropped.
    pub fn line(&mut self, line: &str) -> Result<Option<Event>, LineError> {
        if line.is_empty() {
            let event = (!self.name.is_empty()).then(|| Event {
                name: std::mem::take(&mut self.name),
                data: std::mem::take(&mut self.data),
                id: self.id,
            });
            self.data.clear();
            self.id = None;
            return Ok(event);
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = value.to_string(),
            "id" => self.id = value.parse().ok(),
            "data" => {
                if self.data.len() + value.len() + 1 > MAX_LINE_BYTES {
                    return Err(LineError::TooLong);
                }
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<Event> {
        let mut parser = Parser::default();
        let mut reader = text.as_bytes();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(line) = read_line(&mut reader, &mut buf).unwrap() {
            out.extend(parser.line(line).unwrap());
        }
        out
    }

    #[test]
    fn events_are_named_with_joined_data_and_their_id() {
        let got = events(
            ": keep-alive\n\nevent: run\ndata: {}\n\nid: 3\nevent: interval\ndata: a\ndata:b\n\n",
        );
        assert_eq!(
            got,
            [
                Event {
                    name: "run".into(),
                    data: "{}".into(),
                    id: None
                },
                Event {
                    name: "interval".into(),
                    data: "a\nb".into(),
                    id: Some(3)
                },
            ]
        );
    }

    #[test]
    fn an_unnamed_event_is_dropped_and_forgotten() {
        let got = events("id: 7\ndata: x\n\nevent: ended\ndata: y\n\n");
        assert_eq!(
            got,
            [Event {
                name: "ended".into(),
                data: "y".into(),
                id: None
            }]
        );
    }

    #[test]
    fn crlf_lines_read_like_lf_ones() {
        assert_eq!(events("event: a\r\ndata: x\r\n\r\n")[0].data, "x");
    }

    #[test]
    fn an_endless_line_or_event_is_refused_at_the_bound() {
        // A line with no end: read up to the bound, then refused.
        let endless = std::io::repeat(b'x');
        let mut reader = std::io::BufReader::new(endless);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut reader, &mut buf),
            Err(LineError::TooLong)
        ));
        assert!(buf.capacity() <= 2 * MAX_LINE_BYTES, "{}", buf.capacity());
        // Many short data lines that add up past the bound.
        let mut parser = Parser::default();
        let line = format!("data: {}", "y".repeat(1 << 20));
        let refused = (0..32).find_map(|_| parser.line(&line).err());
        assert!(matches!(refused, Some(LineError::TooLong)));
        // Just under the bound is read.
        let mut ok = Parser::default();
        assert!(ok
            .line(&format!("data: {}", "z".repeat(MAX_LINE_BYTES - 1)))
            .is_ok());
    }
}
