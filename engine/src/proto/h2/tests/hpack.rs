//! HPACK through our wrapper: random blocks never panic (the crate included), and what our
//! encoder writes decodes back, before and after the peer shrinks the table.

use crate::proto::h2::hpack::{BlockDecoder, HeaderList, Request, RequestEncoder};
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
        headers: &headers,
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
