//! RFC 7541 Appendix C, every example, plus the limits.

extern crate std;

use alloc::vec::Vec;
use std::string::String;

use super::decoder::integer;
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn decode_all(d: &mut Decoder, block: &[u8]) -> Result<Vec<(String, String)>, HpackError> {
    let mut fields = Vec::new();
    d.decode(block, 1 << 20, |n, v| {
        fields.push((
            String::from_utf8(n.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        ))
    })?;
    Ok(fields)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (String::from(*n), String::from(*v)))
        .collect()
}

/// The dynamic table, newest first, and its size.
fn table(d: &Decoder) -> (Vec<(String, String)>, usize) {
    let mut v = Vec::new();
    let mut i = 0;
    while let Some((n, val)) = d.dynamic_entry(i) {
        v.push((
            String::from_utf8(n.to_vec()).unwrap(),
            String::from_utf8(val.to_vec()).unwrap(),
        ));
        i += 1;
    }
    (v, d.table_size())
}

#[test]
fn c1_integers() {
    // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix;
    // C.1.3: 42 at an octet boundary.
    for (value, n, code) in [(10, 5, "0a"), (1337, 5, "1f9a0a"), (42, 8, "2a")] {
        let mut out = Vec::new();
        encode_integer(&mut out, value, n, 0);
        assert_eq!(out, hex(code));
        let mut pos = 0;
        assert_eq!(integer(&out, &mut pos, n), Ok(value));
        assert_eq!(pos, out.len());
    }
}

#[test]
fn integer_overflow_and_truncation() {
    let mut pos = 0;
    assert_eq!(
        integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f], &mut pos, 5),
        Err(HpackError::IntegerOverflow)
    );
    let mut pos = 0;
    assert_eq!(
        integer(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut pos, 5),
        Err(HpackError::IntegerOverflow)
    );
    let mut pos = 0;
    assert_eq!(
        integer(&[0x1f, 0x80], &mut pos, 5),
        Err(HpackError::Truncated)
    );
    let mut pos = 0;
    assert_eq!(
        integer(&[0x1f, 0xe0, 0xff, 0xff, 0xff, 0x0f], &mut pos, 5),
        Ok(0xffff_ffff)
    );
}

#[test]
fn c2_field_representations() {
    // C.2.1 literal with indexing.
    let mut d = Decoder::new(4096);
    let f = decode_all(
        &mut d,
        &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    )
    .unwrap();
    assert_eq!(f, pairs(&[("custom-key", "custom-header")]));
    assert_eq!(table(&d), (pairs(&[("custom-key", "custom-header")]), 55));
    // C.2.2 literal without indexing.
    let mut d = Decoder::new(4096);
    let f = decode_all(&mut d, &hex("040c 2f73 616d 706c 652f 7061 7468")).unwrap();
    assert_eq!(f, pairs(&[(":path", "/sample/path")]));
    assert_eq!(table(&d), (Vec::new(), 0));
    // C.2.3 literal never indexed.
    let mut d = Decoder::new(4096);
    let f = decode_all(&mut d, &hex("1008 7061 7373 776f 7264 0673 6563 7265 74")).unwrap();
    assert_eq!(f, pairs(&[("password", "secret")]));
    assert_eq!(table(&d), (Vec::new(), 0));
    // C.2.4 indexed.
    let mut d = Decoder::new(4096);
    let f = decode_all(&mut d, &hex("82")).unwrap();
    assert_eq!(f, pairs(&[(":method", "GET")]));
    assert_eq!(table(&d), (Vec::new(), 0));
}

/// C.3 (plain) and C.4 (Huffman): three requests on one connection.
fn requests(blocks: [&str; 3]) {
    let mut d = Decoder::new(4096);
    let f = decode_all(&mut d, &hex(blocks[0])).unwrap();
    assert_eq!(
        f,
        pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com")
        ])
    );
    assert_eq!(table(&d), (pairs(&[(":authority", "www.example.com")]), 57));
    let f = decode_all(&mut d, &hex(blocks[1])).unwrap();
    assert_eq!(
        f,
        pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("cache-control", "no-cache")
        ])
    );
    assert_eq!(
        table(&d),
        (
            pairs(&[
                ("cache-control", "no-cache"),
                (":authority", "www.example.com")
            ]),
            110
        )
    );
    let f = decode_all(&mut d, &hex(blocks[2])).unwrap();
    assert_eq!(
        f,
        pairs(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value")
        ])
    );
    assert_eq!(
        table(&d),
        (
            pairs(&[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com")
            ]),
            164
        )
    );
}

#[test]
fn c3_requests_without_huffman() {
    requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

#[test]
fn c4_requests_with_huffman() {
    requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOC: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

/// C.5 (plain) and C.6 (Huffman): three responses, table of 256 bytes, so
/// entries are evicted.
fn responses(blocks: [&str; 3]) {
    let mut d = Decoder::new(256);
    let f = decode_all(&mut d, &hex(blocks[0])).unwrap();
    assert_eq!(
        f,
        pairs(&[
            (":status", "302"),
            ("cache-control", "private"),
            ("date", DATE1),
            ("location", LOC)
        ])
    );
    assert_eq!(
        table(&d),
        (
            pairs(&[
                ("location", LOC),
                ("date", DATE1),
                ("cache-control", "private"),
                (":status", "302")
            ]),
            222
        )
    );
    let f = decode_all(&mut d, &hex(blocks[1])).unwrap();
    assert_eq!(
        f,
        pairs(&[
            (":status", "307"),
            ("cache-control", "private"),
            ("date", DATE1),
            ("location", LOC)
        ])
    );
    assert_eq!(
        table(&d),
        (
            pairs(&[
                (":status", "307"),
                ("location", LOC),
                ("date", DATE1),
                ("cache-control", "private")
            ]),
            222
        )
    );
    let f = decode_all(&mut d, &hex(blocks[2])).unwrap();
    assert_eq!(
        f,
        pairs(&[
            (":status", "200"),
            ("cache-control", "private"),
            ("date", DATE2),
            ("location", LOC),
            ("content-encoding", "gzip"),
            ("set-cookie", COOKIE),
        ])
    );
    assert_eq!(
        table(&d),
        (
            pairs(&[
                ("set-cookie", COOKIE),
                ("content-encoding", "gzip"),
                ("date", DATE2)
            ]),
            215
        )
    );
}

#[test]
fn c5_responses_without_huffman() {
    responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31",
    ]);
}

#[test]
fn c6_responses_with_huffman() {
    responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

#[test]
fn encoder_output_decodes() {
    let fields: [(&[u8], &[u8]); 5] = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"x-custom", b""),
        (b"etag", b"\"0123456789abcdef\""),
        (b"location", &[0xff, 0x00, 0x7f]),
        (b"", b"empty name is the caller's problem"),
    ];
    for status in [
        200u16, 204, 206, 301, 302, 304, 400, 404, 405, 416, 500, 503, 999, 100,
    ] {
        let mut block = Vec::new();
        encode_status(&mut block, status);
        for (n, v) in fields {
            encode_literal(&mut block, n, v);
        }
        let mut d = Decoder::new(4096);
        let mut got: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        d.decode(&block, 1 << 16, |n, v| got.push((n.to_vec(), v.to_vec())))
            .unwrap();
        assert_eq!(got[0].0, b":status");
        assert_eq!(got[0].1, std::format!("{status:03}").as_bytes());
        for (i, (n, v)) in fields.iter().enumerate() {
            assert_eq!((&got[i + 1].0[..], &got[i + 1].1[..]), (*n, *v));
        }
        assert_eq!(d.table_size(), 0, "the encoder never indexes");
    }
}

#[test]
fn size_update_rules() {
    // Above the advertised maximum.
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode_all(&mut d, &hex("3fe2 1f")), // 4097+... : 31 + 0x62 + (0x1f<<7) = 4097
        Err(HpackError::SizeUpdateTooLarge {
            requested: 4097,
            max: 4096
        })
    );
    // After a field.
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode_all(&mut d, &hex("8220")),
        Err(HpackError::SizeUpdateNotAtStart)
    );
    // Two updates at the start are fine; shrinking evicts.
    let mut d = Decoder::new(4096);
    decode_all(
        &mut d,
        &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    )
    .unwrap();
    assert_eq!(d.table_size(), 55);
    decode_all(&mut d, &hex("2030 82")).unwrap(); // 0, then 16
    assert_eq!((d.table_size(), d.table_max()), (0, 16));
    // Lowering our limit requires an update at the start of the next block.
    let mut d = Decoder::new(4096);
    d.set_max_allowed(100);
    assert_eq!(
        decode_all(&mut d, &hex("82")),
        Err(HpackError::SizeUpdateMissing)
    );
    let mut d = Decoder::new(4096);
    d.set_max_allowed(100);
    assert_eq!(decode_all(&mut d, &hex("3f45 82")).unwrap().len(), 1); // update to 100
    assert_eq!(d.table_max(), 100);
}

#[test]
fn invalid_index_and_truncation() {
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode_all(&mut d, &hex("80")),
        Err(HpackError::InvalidIndex { index: 0 })
    );
    assert_eq!(
        decode_all(&mut d, &hex("be")),
        Err(HpackError::InvalidIndex { index: 62 })
    );
    assert_eq!(
        decode_all(&mut d, &hex("7e")),
        Err(HpackError::InvalidIndex { index: 62 })
    );
    assert_eq!(
        decode_all(&mut d, &hex("400a 6375")),
        Err(HpackError::Truncated)
    );
    assert_eq!(decode_all(&mut d, &hex("40")), Err(HpackError::Truncated));
}

/// An HPACK bomb: one 4000-byte entry, then one-byte references to it.
/// Decoding stops at the bound, after work proportional to the bound.
#[test]
fn bomb_stops_at_the_decoded_bound() {
    let mut block = Vec::new();
    encode_integer(&mut block, 0, 6, 0x40);
    encode_string(&mut block, b"x-bomb");
    block.extend_from_slice(&[0x7f, 0xa1, 0x1e]); // raw string, length 127 + 0x21 + (0x1e << 7) = 4000
    block.resize(block.len() + 4000, b'a');
    block.resize(block.len() + 10_000, 0xbe); // index 62, 10 000 times
    let mut d = Decoder::new(4096);
    let mut n = 0;
    let r = d.decode(&block, 64 * 1024, |_, _| n += 1);
    assert_eq!(r, Err(HpackError::DecodedTooLarge { limit: 65536 }));
    // 4000 + 6 + 32 = 4038 per field: 16 fit in 64 KiB.
    assert_eq!(n, 16);
    assert!(d.table_size() <= 4096);
}

/// Literals longer than the bound are refused before they are copied.
#[test]
fn long_strings_are_refused() {
    let mut block = alloc::vec![0x00];
    encode_string(&mut block, b"name");
    encode_integer(&mut block, 5000, 7, 0);
    block.resize(block.len() + 5000, b'v');
    let mut d = Decoder::new(4096);
    assert_eq!(
        d.decode(&block, 1000, |_, _| {}),
        Err(HpackError::StringTooLong { limit: 996 })
    );
}
