//! Response bodies decoded from their `Content-Encoding` (gzip, deflate, br, zstd) for the checks
//! and captures that read them, with a hard limit on the decoded size.
//!
//! Only bodies a step inspects are decoded (the bytes on the wire are counted either way). The
//! decoders come from crates (flate2, brotli-decompressor, ruzstd) and read through `take`, so a
//! decompression bomb stops at the limit instead of growing memory. A body cut at the inspected
//! limit is decoded as far as it goes: its tail is missing, not corrupt.

use std::io::Read;

use crate::proto::http1::MAX_HEADERS;

/// A content coding the client can undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    /// RFC 9110's "deflate" is zlib-wrapped; some servers send it raw, which is accepted too.
    Deflate,
    Br,
    Zstd,
}

/// What the `Accept-Encoding` of a `compressed = true` step offers.
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// Why a body could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeBodyError {
    /// Corrupt, or a coding (or a stack of codings) the client does not know.
    Corrupt,
    /// Decoded past the caller's limit (`[engine] max_body`).
    TooLarge,
}

/// The coding a `Content-Encoding` value names: `Ok(None)` for none or `identity`.
pub fn parse_encoding(value: &[u8]) -> Result<Option<Encoding>, DecodeBodyError> {
    let text = std::str::from_utf8(value).map_err(|_| DecodeBodyError::Corrupt)?;
    let mut codings = text
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"));
    let Some(first) = codings.next() else {
        return Ok(None);
    };
    // Stacked codings ("gzip, br") are legal but no server this tool meets sends them.
    if codings.next().is_some() {
        return Err(DecodeBodyError::Corrupt);
    }
    let coding = match first.to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => Encoding::Gzip,
        "deflate" => Encoding::Deflate,
        "br" => Encoding::Br,
        "zstd" => Encoding::Zstd,
        _ => return Err(DecodeBodyError::Corrupt),
    };
    Ok(Some(coding))
}

/// The coding a response head's `Content-Encoding` names (`Ok(None)` without one).
pub fn content_encoding(head: &[u8]) -> Result<Option<Encoding>, DecodeBodyError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    if response.parse(head).is_err() {
        return Ok(None);
    }
    match response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-encoding"))
    {
        Some(h) => parse_encoding(h.value),
        None => Ok(None),
    }
}

/// Decodes `input` into `out` (cleared first), refusing more than `limit` decoded bytes.
/// `truncated`: the input was cut at the inspected limit, so an early end of the stream is
/// expected and what decoded so far is kept.
pub fn decode(
    encoding: Encoding,
    input: &[u8],
    truncated: bool,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeBodyError> {
    out.clear();
    let read = match encoding {
        Encoding::Gzip => read_limited(flate2::read::MultiGzDecoder::new(input), limit, out),
        Encoding::Deflate => {
            let zlib = read_limited(flate2::read::ZlibDecoder::new(input), limit, out);
            if zlib.is_err() && out.is_empty() {
                read_limited(flate2::read::DeflateDecoder::new(input), limit, out)
            } else {
                zlib
            }
        }
        Encoding::Br => read_limited(
            brotli_decompressor::Decompressor::new(input, 4096),
            limit,
            out,
        ),
        Encoding::Zstd => match ruzstd::decoding::StreamingDecoder::new(input) {
            Ok(d) => read_limited(d, limit, out),
            Err(_) => Err(std::io::ErrorKind::InvalidData.into()),
        },
    };
    if out.len() > limit {
        out.clear();
        return Err(DecodeBodyError::TooLarge);
    }
    match read {
        Ok(()) => Ok(()),
        Err(_) if truncated => Ok(()),
        Err(_) => Err(DecodeBodyError::Corrupt),
    }
}

/// Reads at most one byte past the limit: enough to tell that the limit was passed.
fn read_limited(r: impl Read, limit: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    r.take(limit as u64 + 1).read_to_end(out).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn names_are_read_like_servers_write_them() {
        assert_eq!(parse_encoding(b"gzip"), Ok(Some(Encoding::Gzip)));
        assert_eq!(parse_encoding(b" BR "), Ok(Some(Encoding::Br)));
        assert_eq!(parse_encoding(b"identity"), Ok(None));
        assert_eq!(parse_encoding(b""), Ok(None));
        assert_eq!(parse_encoding(b"gzip, br"), Err(DecodeBodyError::Corrupt));
        assert_eq!(parse_encoding(b"compress"), Err(DecodeBodyError::Corrupt));
    }

    /// The default `[engine] max_body`.
    const LIMIT: usize = 1 << 20;

    #[test]
    fn every_coding_round_trips() {
        let text = b"{\"token\":\"abc\"} ".repeat(200);
        let mut out = Vec::new();
        decode(Encoding::Gzip, &gzip(&text), false, LIMIT, &mut out).unwrap();
        assert_eq!(out, text);

        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        decode(
            Encoding::Deflate,
            &z.finish().unwrap(),
            false,
            LIMIT,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, text);

        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&text).unwrap();
        decode(
            Encoding::Deflate,
            &raw.finish().unwrap(),
            false,
            LIMIT,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, text);

        let zstd = ruzstd::encoding::compress_to_vec(
            &text[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        decode(Encoding::Zstd, &zstd, false, LIMIT, &mut out).unwrap();
        assert_eq!(out, text);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; LIMIT + 4096]);
        assert!(bomb.len() < 64 * 1024, "a bomb is small on the wire");
        let mut out = Vec::new();
        assert_eq!(
            decode(Encoding::Gzip, &bomb, false, LIMIT, &mut out),
            Err(DecodeBodyError::TooLarge)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn corrupt_is_an_error_unless_the_body_was_cut() {
        // Text that does not compress to one tiny block, so half the stream holds output.
        let mut rng = fastrand::Rng::with_seed(7);
        let text: Vec<u8> = (0..200_000).map(|_| rng.alphanumeric() as u8).collect();
        let whole = gzip(&text);
        let cut = &whole[..whole.len() / 2];
        let mut out = Vec::new();
        assert_eq!(
            decode(Encoding::Gzip, cut, false, LIMIT, &mut out),
            Err(DecodeBodyError::Corrupt)
        );
        decode(Encoding::Gzip, cut, true, LIMIT, &mut out).unwrap();
        assert!(
            out.len() > 50_000 && text.starts_with(&out),
            "{}",
            out.len()
        );
        assert_eq!(
            decode(Encoding::Br, b"not brotli at all", false, LIMIT, &mut out),
            Err(DecodeBodyError::Corrupt)
        );
    }
}
