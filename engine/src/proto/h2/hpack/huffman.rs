//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B), decoded without allocating: the code table
//! is the `httlib-huffman` crate's (the RFC's 257 codes), turned at compile time into canonical
//! decoding tables (per code length: first code, count, symbols in code order).
//!
//! Why not a crate's decoder: `loona-hpack` builds a hash-map table for every string it decodes
//! (about sixty allocations each) and `httlib-huffman` allocates in its padding check; a response
//! carries a few Huffman strings, so either would allocate on every response.

use httlib_huffman::encoder::table::ENCODE_TABLE;

/// The longest code (EOS and a few rare octets) is 30 bits.
const MAX_LEN: usize = 30;
/// The end-of-string symbol: never valid inside a string.
const EOS: u16 = 256;

struct Canonical {
    /// The smallest code of each length.
    first: [u32; MAX_LEN + 1],
    /// How many codes have each length.
    count: [u32; MAX_LEN + 1],
    /// Where each length's symbols start in `symbols`.
    offset: [usize; MAX_LEN + 1],
    /// Symbols by (length, code).
    symbols: [u16; 257],
}

const TABLE: Canonical = canonical();

const fn canonical() -> Canonical {
    let mut first = [u32::MAX; MAX_LEN + 1];
    let mut count = [0u32; MAX_LEN + 1];
    let mut i = 0;
    while i < ENCODE_TABLE.len() {
        let (len, code) = ENCODE_TABLE[i];
        count[len as usize] += 1;
        if code < first[len as usize] {
            first[len as usize] = code;
        }
        i += 1;
    }
    let mut offset = [0usize; MAX_LEN + 1];
    let mut len = 1;
    while len <= MAX_LEN {
        offset[len] = offset[len - 1] + count[len - 1] as usize;
        len += 1;
    }
    // Codes of one length are consecutive (a canonical code; checked by a test), so a code's
    // place among its length's symbols is its distance from the first.
    let mut symbols = [0u16; 257];
    let mut s = 0;
    while s < ENCODE_TABLE.len() {
        let (len, code) = ENCODE_TABLE[s];
        symbols[offset[len as usize] + (code - first[len as usize]) as usize] = s as u16;
        s += 1;
    }
    Canonical {
        first,
        count,
        offset,
        symbols,
    }
}

/// The shortest code (`0`, `1`, `2`, `a`, `c`, `e`, `i`, `o`, `s`, `t`) is 5 bits.
const MIN_LEN: usize = 5;

/// Appends the decoding of `src` to `dst`. `Err` for EOS inside the string, or padding that is
/// longer than 7 bits or not the EOS code's leading ones (RFC 7541 §5.2).
///
/// Bits are taken from a 64-bit window that always holds a whole code while input remains, and
/// each symbol is found by trying lengths from the shortest: a code of length `len` is its
/// window's top `len` bits, between that length's first code and its count (canonical codes).
pub fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), ()> {
    let (mut window, mut bits, mut next) = (0u64, 0usize, 0usize);
    loop {
        while bits <= 56 && next < src.len() {
            window |= u64::from(src[next]) << (56 - bits);
            bits += 8;
            next += 1;
        }
        let mut len = MIN_LEN;
        let symbol = loop {
            if len > bits.min(MAX_LEN) {
                break None;
            }
            let d = ((window >> (64 - len)) as u32).wrapping_sub(TABLE.first[len]);
            if d < TABLE.count[len] {
                break Some(TABLE.symbols[TABLE.offset[len] + d as usize]);
            }
            len += 1;
        };
        match symbol {
            Some(EOS) => return Err(()),
            Some(symbol) => {
                dst.push(symbol as u8);
                window <<= len;
                bits -= len;
            }
            // No whole code left: what remains must be up to 7 bits of ones (EOS's prefix).
            None => {
                let ones = bits == 0 || window >> (64 - bits) == (1 << bits) - 1;
                return if next == src.len() && bits <= 7 && ones {
                    Ok(())
                } else {
                    Err(())
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_canonical_and_complete() {
        assert!((1..MIN_LEN).all(|len| TABLE.count[len] == 0));
        assert!(TABLE.count[MIN_LEN] > 0);
        let mut kraft = 0u64;
        for len in 1..=MAX_LEN {
            let codes: Vec<u32> = ENCODE_TABLE
                .iter()
                .filter(|(l, _)| usize::from(*l) == len)
                .map(|&(_, c)| c)
                .collect();
            if let (Some(lo), Some(hi)) = (codes.iter().min(), codes.iter().max()) {
                assert_eq!((hi - lo + 1) as usize, codes.len(), "length {len}");
            }
            kraft += (codes.len() as u64) << (MAX_LEN - len);
        }
        assert_eq!(
            kraft,
            1 << MAX_LEN,
            "every bit string is some code's prefix"
        );
    }

    #[test]
    fn every_octet_round_trips_through_the_crates_encoder() {
        let all: Vec<u8> = (0..=255).collect();
        for chunk in [&all[..], b"www.example.com", b"no-cache", b"", b"a"] {
            let mut encoded = Vec::new();
            httlib_huffman::encode(chunk, &mut encoded).expect("encode");
            let mut out = Vec::new();
            decode(&encoded, &mut out).expect("decodes");
            assert_eq!(out, chunk);
        }
    }

    #[test]
    fn rfc_7541_examples_and_bad_padding() {
        // C.4.1: "www.example.com".
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut out = Vec::new();
        decode(&www, &mut out).expect("decodes");
        assert_eq!(out, b"www.example.com");
        // "0", "1" and "a" with their padding of ones; padding of zeros, 8 bits of padding and EOS
        // itself are refused.
        for (bytes, text) in [(&[0x07u8], b"0"), (&[0x0f], b"1"), (&[0x1f], b"a")] {
            let mut out = Vec::new();
            decode(bytes, &mut out).expect("decodes");
            assert_eq!(out, text);
        }
        assert!(
            decode(&[0x00], &mut Vec::new()).is_err(),
            "'0' then 000 padding"
        );
        assert!(
            decode(&[0xff], &mut Vec::new()).is_err(),
            "8 bits of padding"
        );
        assert!(
            decode(&[0xff, 0xff, 0xff, 0xfc], &mut Vec::new()).is_err(),
            "EOS"
        );
    }
}
