//! Fuzzes the HPACK path: arbitrary header blocks through `BlockDecoder` (one table across
//! several blocks, as on a connection), and a request built from the input through
//! `RequestEncoder` and back through an independent decode. First byte: low 4 bits how many
//! blocks the rest is cut into, bit 4 the blocks are trailers, bit 5 a small header list limit.
#![no_main]

use engine::proto::h2::hpack::{BlockDecoder, Fields, HeaderList, Request, RequestEncoder};
use engine::proto::h2::H2Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let blocks = usize::from(control & 0x0f) + 1;
    let trailers = control & 0x10 != 0;
    let limit = if control & 0x20 != 0 { 256 } else { 64 * 1024 };
    let mut dec = BlockDecoder::new(4096, limit);
    let mut list = HeaderList::default();
    let piece = rest.len() / blocks + 1;
    for block in rest.chunks(piece) {
        list.clear();
        match dec.decode(block, trailers, &mut list) {
            Err(e) => {
                assert_eq!(e, H2Error::Compression);
                break;
            }
            Ok(b) => {
                assert_eq!(b.fields, 0..list.len());
                let size: usize = list
                    .iter(b.fields.clone())
                    .map(|(n, v)| n.len() + v.len() + 32)
                    .sum();
                assert!(size <= limit as usize, "fields kept past the limit");
                if trailers {
                    assert_eq!(b.status, None);
                }
                if b.refused.is_none() && !trailers {
                    assert!(b.status.is_some_and(|s| (100..=999).contains(&s)));
                }
            }
        }
    }

    // The encoder: names and values from the input, lowercased on the way out.
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split('\n');
    let path = parts.next().unwrap_or("/");
    let headers: Vec<(String, String)> = parts
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| !n.is_empty())
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .take(16)
        .collect();
    let req = Request {
        method: "POST",
        scheme: "https",
        authority: "fuzz.test",
        path,
        headers: Fields::Pairs(&headers),
    };
    let mut enc = RequestEncoder::default();
    let mut check = loona_hpack::Decoder::new();
    for round in 0..2 {
        if round == 1 {
            enc.set_peer_table_size(u32::from(control) * 16);
        }
        let mut block = Vec::new();
        enc.encode(&req, rest.len(), &mut block);
        let decoded = check.decode(&block).expect("our own block decodes");
        assert_eq!(decoded[0], (b":method".to_vec(), b"POST".to_vec()));
        assert_eq!(decoded[3], (b":path".to_vec(), path.as_bytes().to_vec()));
        assert!(decoded[4..]
            .iter()
            .all(|(n, _)| !n.iter().any(u8::is_ascii_uppercase)));
    }
});
