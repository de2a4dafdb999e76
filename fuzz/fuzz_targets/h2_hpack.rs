//! HPACK: the decoder on a sequence of header blocks (one dynamic table,
//! table-size limits and updates, decoded-size bounds), a round trip of
//! every decoded block through the encoder, and the Huffman code.
//!
//! Input: `flags (1) | (len_lo len_hi block)* `; the whole input after the
//! flags is also decoded as one Huffman string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_h2::hpack::{self, Decoder, huffman};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let allowed = [0usize, 64, 256, 4096][usize::from(flags & 3)];
    let max_decoded = [100usize, 4096, 65_536][usize::from(flags >> 2) % 3];
    let mut dec = Decoder::new(hpack::DEFAULT_TABLE_SIZE);
    // Below 4096 the first block must start with a size update.
    dec.set_max_allowed(allowed);
    let mut input = rest;
    while let [lo, hi, tail @ ..] = input {
        let n = (usize::from(*lo) | usize::from(*hi) << 8).min(tail.len());
        let (block, next) = tail.split_at(n);
        input = next;
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        match dec.decode(block, max_decoded, |n, v| {
            fields.push((n.to_vec(), v.to_vec()))
        }) {
            Ok(size) => {
                let expected: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
                assert_eq!(size, expected);
                assert!(size <= max_decoded);
                assert!(dec.table_size() <= dec.table_max());
                assert!(dec.table_max() <= allowed.max(hpack::DEFAULT_TABLE_SIZE));
                // What was decoded encodes and decodes back to itself.
                let mut block = Vec::new();
                for (n, v) in &fields {
                    hpack::encode_literal(&mut block, n, v);
                }
                let mut again = Vec::new();
                Decoder::new(0)
                    .decode(&block, usize::MAX, |n, v| {
                        again.push((n.to_vec(), v.to_vec()))
                    })
                    .expect("encoder output decodes");
                assert_eq!(again, fields);
            }
            // The connection would end here.
            Err(_) => break,
        }
    }
    // Huffman: a valid code string is exactly the encoding of what it decodes to.
    let mut text = Vec::new();
    if huffman::decode(rest, &mut text, rest.len() * 2).is_ok() {
        let mut code = Vec::new();
        huffman::encode(&text, &mut code);
        assert_eq!(code, rest);
        assert_eq!(huffman::encoded_len(&text), rest.len());
    }
});
