//! HPACK (RFC 7541) for the client: `RequestEncoder` turns a request into a header block over
//! the `loona-hpack` crate's encoder (the maintained line of hpack-rs: incremental indexing, table
//! size updates), and `BlockDecoder` turns a response's header block into a checked `HeaderList`
//! with our own allocation-free `decoder` (the crate's allocates dozens of times per Huffman
//! string; see `huffman`).
//!
//! This module owns what RFC 9113 §8 says about fields on top of HPACK: lowercase names, no
//! connection-specific fields, `:status` first and alone among pseudo-fields, no pseudo-fields in
//! trailers, the header list size limit. It refuses nothing silently: a block HPACK cannot decode
//! is `Compression` (a connection error, since the table is now out of step), a malformed list is
//! reported for a stream error.

pub(crate) mod decoder;
mod huffman;
mod table;

use core::ops::Range;

use loona_hpack::Encoder;

use decoder::FieldDecoder;

use super::{H2Error, DEFAULT_HEADER_TABLE_SIZE};

/// What a request is made of, before encoding. Headers are the scenario's, checked with
/// `http1::validate_header`; names may be in any case (they are sent lowercase).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub headers: Fields<'a>,
}

/// A request's own header fields: as a scenario spells them, or as `httparse` read them back
/// from an HTTP/1.1 request the engine encoded (so every template and default applies alike).
#[derive(Clone, Copy, Debug)]
pub enum Fields<'a> {
    Pairs(&'a [(String, String)]),
    Parsed(&'a [httparse::Header<'a>]),
}

impl<'a> Fields<'a> {
    fn iter(self) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        let (pairs, parsed) = match self {
            Fields::Pairs(p) => (p, &[][..]),
            Fields::Parsed(p) => (&[][..], p),
        };
        pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .chain(parsed.iter().map(|h| (h.name, h.value)))
    }
}

/// Fields HTTP/2 forbids (RFC 9113 §8.2.2); `host` is dropped too, `:authority` carries it.
const DROPPED_REQUEST_FIELDS: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The request side of HPACK: one per connection, since the dynamic table is.
pub struct RequestEncoder {
    enc: Encoder<'static>,
    /// The dynamic table size in force; the peer's SETTINGS_HEADER_TABLE_SIZE caps it.
    table_size: usize,
    /// A size change not yet signalled: it opens the next block (RFC 7541 §4.2).
    size_update: Option<usize>,
    /// A header name lowercased, reused across headers and requests.
    lower: Vec<u8>,
}

impl Default for RequestEncoder {
    fn default() -> Self {
        RequestEncoder {
            enc: Encoder::new(),
            table_size: DEFAULT_HEADER_TABLE_SIZE as usize,
            size_update: None,
            lower: Vec::with_capacity(64),
        }
    }
}

impl RequestEncoder {
    /// The peer's SETTINGS_HEADER_TABLE_SIZE: we use at most that, and at most the default
    /// (a larger table saves little for the few fields a load test repeats).
    pub fn set_peer_table_size(&mut self, size: u32) {
        let size = (size as usize).min(DEFAULT_HEADER_TABLE_SIZE as usize);
        if size != self.table_size {
            self.table_size = size;
            self.enc.set_max_table_size(size);
            self.size_update = Some(size);
        }
    }

    /// Appends the request's header block to `out`: pseudo-fields, the user's fields lowercased
    /// (without connection-specific ones), and `content-length` when there is a body (or the
    /// method usually has one) and the user gave none.
    pub fn encode(&mut self, req: &Request<'_>, body_len: usize, out: &mut Vec<u8>) {
        if let Some(size) = self.size_update.take() {
            // Writing to a Vec cannot fail.
            let _ = loona_hpack::encoder::encode_integer_into(size, 5, 0x20, out);
        }
        let mut field = |enc: &mut Encoder<'static>, name: &[u8], value: &[u8]| {
            let _ = enc.encode_header_into((name, value), out);
        };
        field(&mut self.enc, b":method", req.method.as_bytes());
        field(&mut self.enc, b":scheme", req.scheme.as_bytes());
        field(&mut self.enc, b":authority", req.authority.as_bytes());
        field(&mut self.enc, b":path", req.path.as_bytes());
        let mut has_length = false;
        for (name, value) in req.headers.iter() {
            if DROPPED_REQUEST_FIELDS
                .iter()
                .any(|d| d.eq_ignore_ascii_case(name))
            {
                continue;
            }
            // Only `te: trailers` may be sent (RFC 9113 §8.2.2).
            if name.eq_ignore_ascii_case("te") && !value.eq_ignore_ascii_case(b"trailers") {
                continue;
            }
            has_length |= name.eq_ignore_ascii_case("content-length");
            self.lower.clear();
            self.lower
                .extend(name.bytes().map(|b| b.to_ascii_lowercase()));
            field(&mut self.enc, &self.lower, value);
        }
        let expects_body = matches!(req.method, "POST" | "PUT" | "PATCH");
        if (body_len > 0 || expects_body) && !has_length {
            let mut digits = [0u8; 20];
            field(
                &mut self.enc,
                b"content-length",
                decimal(body_len as u64, &mut digits),
            );
        }
    }
}

/// `n` in decimal, written into `buf` without allocating.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Decoded fields, reused for every block: names and values back to back in one buffer.
#[derive(Default, Debug)]
pub struct HeaderList {
    bytes: Vec<u8>,
    fields: Vec<(u32, u32, u32)>,
}

impl HeaderList {
    /// Forgets every field, keeping the capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.fields.clear();
    }

    /// How many fields there are; the ranges in events index them.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Field `i` as (name, value); `None` past the end.
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let &(start, name_len, value_len) = self.fields.get(i)?;
        let (start, name_end) = (start as usize, (start + name_len) as usize);
        let end = name_end + value_len as usize;
        Some((&self.bytes[start..name_end], &self.bytes[name_end..end]))
    }

    /// The fields in `range` (as an event gives it), in order.
    pub fn iter(&self, range: Range<usize>) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        range.filter_map(|i| self.get(i))
    }

    fn push(&mut self, name: &[u8], value: &[u8]) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        self.fields
            .push((start, name.len() as u32, value.len() as u32));
    }
}

/// What a decoded block said, beyond its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// `:status` of a response head; `None` for trailers.
    pub status: Option<u16>,
    /// The block's fields in the `HeaderList` (pseudo-fields left out).
    pub fields: Range<usize>,
    pub content_length: Option<u64>,
    /// Why the field list must be refused (stream error), if it must.
    pub refused: Option<H2Error>,
}

/// The response side of HPACK: one per connection.
pub struct BlockDecoder {
    dec: FieldDecoder,
    max_list_size: usize,
}

impl BlockDecoder {
    /// `table_size` and `max_list_size` are what our SETTINGS announce.
    pub fn new(table_size: u32, max_list_size: u32) -> Self {
        BlockDecoder {
            dec: FieldDecoder::new(table_size as usize),
            max_list_size: max_list_size as usize,
        }
    }

    /// Decodes one whole block (a HEADERS payload and its CONTINUATIONs) and appends its
    /// fields to `list`. `Err` only for what HPACK cannot decode; every RFC 9113 §8 violation
    /// is in `Block::refused`, and past the size limit fields are dropped but still decoded, so
    /// the dynamic table stays in step.
    pub fn decode(
        &mut self,
        block: &[u8],
        trailers: bool,
        list: &mut HeaderList,
    ) -> Result<Block, H2Error> {
        let first = list.len();
        let mut out = Block {
            status: None,
            fields: first..first,
            content_length: None,
            refused: None,
        };
        let mut size = 0usize;
        let mut regular_seen = false;
        let max = self.max_list_size;
        let refuse = |out: &mut Block, e| {
            out.refused.get_or_insert(e);
        };
        self.dec
            .decode(block, |name, value| {
                size = size.saturating_add(name.len() + value.len() + 32);
                if size > max {
                    refuse(&mut out, H2Error::HeaderListTooLarge);
                    return;
                }
                if name.first() == Some(&b':') {
                    if trailers || regular_seen || name != b":status" || out.status.is_some() {
                        refuse(&mut out, H2Error::Protocol);
                        return;
                    }
                    match parse_status(value) {
                        Some(s) => out.status = Some(s),
                        None => refuse(&mut out, H2Error::Protocol),
                    }
                    return;
                }
                regular_seen = true;
                if !field_ok(name, value) {
                    refuse(&mut out, H2Error::Protocol);
                    return;
                }
                if name == b"content-length" {
                    match (parse_u64(value), out.content_length) {
                        (Some(n), None) => out.content_length = Some(n),
                        (Some(n), Some(m)) if n == m => {}
                        _ => refuse(&mut out, H2Error::Protocol),
                    }
                }
                list.push(name, value);
            })
            .map_err(|decoder::Invalid| H2Error::Compression)?;
        if !trailers && out.status.is_none() {
            refuse(&mut out, H2Error::Protocol);
        }
        out.fields = first..list.len();
        Ok(out)
    }
}

/// Lowercase token name, not connection-specific; value without NUL, CR or LF.
fn field_ok(name: &[u8], value: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b > 0x20 && b < 0x7f && !b.is_ascii_uppercase() && b != b':')
        && !matches!(
            name,
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade"
        )
        && !value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n'))
}

fn parse_status(v: &[u8]) -> Option<u16> {
    if v.len() != 3 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let s = v.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    (100..=999).contains(&s).then_some(s)
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}
