//! HPACK through our wrapper: random blocks never panic, our decoder reads what an independent
//! encoder writes (Huffman from `httlib-huffman`) exactly as the `loona-hpack` decoder does, and
//! what our encoder writes decodes back, before and after the peer shrinks the table.

use crate::proto::h2::hpack::{BlockDecoder, Fields, HeaderList, Request, RequestEncoder};
use crate::proto::h2::H2Error;

#[test]
fn random_blocks_decode_or_fail_without_panicking() {
    let mut rng = fastrand::Rng::with_seed(7541);
    let mut list = HeaderList::default();
    for _ in 0..5000 {
        let mut dec = BlockDecoder::new(4096, 1024);
        for _ in 0..rng.usize(1..4) {
            let block: Vec<u8> = (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect();
            list.clear();
            match dec.decode(&block, rng.bool(), &mut list) {
                Ok(b) => assert_eq!(b.fields, 0..list.len()),
                Err(e) => {
                    assert_eq!(e, H2Error::Compression);
                    break;
                }
            }
        }
    }
}

#[test]
fn our_blocks_decode_back_across_a_table_shrink() {
    let headers = vec![
        ("X-A".to_string(), "1".to_string()),
        ("accept".to_string(), "*/*".to_string()),
    ];
    let req = Request {
        method: "GET",
        scheme: "https",
        authority: "a.test",
        path: "/p",
        headers: Fields::Pairs(&headers),
    };
    let mut enc = RequestEncoder::default();
    let mut dec = loona_hpack::Decoder::new();
    for size in [4096, 4096, 0, 100, 4096] {
        enc.set_peer_table_size(size);
        let mut block = Vec::new();
        enc.encode(&req, 0, &mut block);
        let got = dec.decode(&block).expect("our block decodes");
        let names: Vec<&[u8]> = got.iter().map(|(n, _)| n.as_slice()).collect();
        assert_eq!(
            names,
            [
                &b":method"[..],
                b":scheme",
                b":authority",
                b":path",
                b"x-a",
                b"accept"
            ]
        );
        assert_eq!(got[4].1, b"1");
    }
}

/// An HPACK integer with an `n`-bit prefix, `flags` in the first byte's high bits.
fn integer(value: usize, n: u8, flags: u8, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

fn string(rng: &mut fastrand::Rng, text: &[u8], out: &mut Vec<u8>) {
    if rng.bool() {
        let mut coded = Vec::new();
        httlib_huffman::encode(text, &mut coded).expect("huffman");
        integer(coded.len(), 7, 0x80, out);
        out.extend_from_slice(&coded);
    } else {
        integer(text.len(), 7, 0, out);
        out.extend_from_slice(text);
    }
}

/// A random block of every representation: indexed fields (static, dynamic, some past the
/// end), literals with indexing, without, never indexed, with literal or indexed names, and a
/// size update at the start now and then.
fn random_block(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut block = Vec::new();
    // The crate refuses a block that is only a size update; RFC 7541 does not say, and a
    // response head needs `:status` anyway, so a field always follows.
    let update = rng.u8(..) < 20;
    if update {
        integer(rng.usize(0..=4200), 5, 0x20, &mut block);
    }
    for _ in 0..rng.usize(usize::from(update)..12) {
        let text = |rng: &mut fastrand::Rng| -> Vec<u8> {
            let len = rng.usize(0..40);
            if rng.bool() {
                (0..len).map(|_| rng.u8(b'a'..=b'z')).collect()
            } else {
                (0..len).map(|_| rng.u8(..)).collect()
            }
        };
        let index = if rng.bool() {
            rng.usize(1..=61)
        } else {
            rng.usize(62..80)
        };
        match rng.u8(0..4) {
            0 => integer(index, 7, 0x80, &mut block),
            kind => {
                let (n, flags) = [(6, 0x40), (4, 0x00), (4, 0x10)][usize::from(kind - 1)];
                if rng.bool() {
                    integer(index, n, flags, &mut block);
                } else {
                    integer(0, n, flags, &mut block);
                    let name = text(rng);
                    string(rng, &name, &mut block);
                }
                let value = text(rng);
                string(rng, &value, &mut block);
            }
        }
    }
    block
}

#[test]
fn our_decoder_agrees_with_the_crates_on_every_representation() {
    use crate::proto::h2::hpack::decoder::FieldDecoder;
    let mut rng = fastrand::Rng::with_seed(9113);
    let mut agreed = (0, 0);
    for _ in 0..3000 {
        let mut ours = FieldDecoder::new(4096);
        let mut theirs = loona_hpack::Decoder::new();
        theirs.set_max_allowed_table_size(4096);
        for _ in 0..rng.usize(1..6) {
            let block = random_block(&mut rng);
            let mut got = Vec::new();
            let mine = ours.decode(&block, |n, v| got.push((n.to_vec(), v.to_vec())));
            match (mine, theirs.decode(&block)) {
                (Ok(()), Ok(want)) => {
                    assert_eq!(got, want, "block {block:02x?}");
                    agreed.0 += 1;
                }
                (Err(_), Err(_)) => {
                    agreed.1 += 1;
                    break;
                }
                (mine, theirs) => {
                    panic!("ours {mine:?}, the crate's {theirs:?} for {block:02x?}")
                }
            }
        }
    }
    // Both outcomes were exercised, many times.
    assert!(agreed.0 > 1000 && agreed.1 > 500, "{agreed:?}");
}

#[test]
fn the_dynamic_table_evicts_oldest_first_and_honours_size_updates() {
    use crate::proto::h2::hpack::decoder::FieldDecoder;
    let mut block = Vec::new();
    // Three literals with indexing of 32 + 4 bytes each into a 100-byte table: the first is
    // evicted by the third.
    integer(100, 5, 0x20, &mut block);
    for name in [b"aa", b"bb", b"cc"] {
        integer(0, 6, 0x40, &mut block);
        integer(2, 7, 0, &mut block);
        block.extend_from_slice(name);
        integer(2, 7, 0, &mut block);
        block.extend_from_slice(b"vv");
    }
    let mut dec = FieldDecoder::new(4096);
    dec.decode(&block, |_, _| {}).expect("decodes");
    let names = |dec: &mut FieldDecoder, index: usize| {
        let mut got = Vec::new();
        let mut one = Vec::new();
        integer(index, 7, 0x80, &mut one);
        dec.decode(&one, |n, _| got.push(n.to_vec())).map(|()| got)
    };
    assert_eq!(names(&mut dec, 62), Ok(vec![b"cc".to_vec()]));
    assert_eq!(names(&mut dec, 63), Ok(vec![b"bb".to_vec()]));
    assert!(names(&mut dec, 64).is_err(), "aa was evicted");
    // A size update past our SETTINGS, or after a field, is refused.
    let mut big = Vec::new();
    integer(4097, 5, 0x20, &mut big);
    assert!(dec.decode(&big, |_, _| {}).is_err());
    let mut late = Vec::new();
    integer(2, 7, 0x80, &mut late);
    integer(0, 5, 0x20, &mut late);
    assert!(FieldDecoder::new(4096).decode(&late, |_, _| {}).is_err());
    // Size 0 empties the table.
    let mut zero = Vec::new();
    integer(0, 5, 0x20, &mut zero);
    dec.decode(&zero, |_, _| {}).expect("size update");
    assert!(names(&mut dec, 62).is_err());
}
