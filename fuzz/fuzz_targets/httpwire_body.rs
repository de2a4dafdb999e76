//! `unipi_httpwire::BodyDecoder`: the strict chunked decoder and `Content-Length` bodies,
//! decoded in pieces and skipped in one piece; both must stop at the same byte with the same
//! result, and the decoded content must match the count the decoder reports.
//!
//! Input: `mode (1) | seed (4) | body bytes`; mode bit 0: Content-Length (the seed's low 16
//! bits) instead of chunked; bits 1..: the content limit in KiB (0: 256 bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_fuzz::{Chunks, take_u32};
use unipi_httpwire::{BodyDecoder, BodyLimits, Framing};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (seed, input) = take_u32(rest);
    let framing = if mode & 1 == 1 {
        Framing::Length(u64::from(seed & 0xffff))
    } else {
        Framing::Chunked
    };
    let limits = BodyLimits {
        max_content_bytes: match u64::from(mode >> 1) {
            0 => 256,
            k => k << 10,
        },
        max_size_line_bytes: 64,
        max_trailer_bytes: 512,
    };
    let mut skipper = BodyDecoder::new(framing, limits);
    let skipped = skipper.skip(input);

    let mut decoder = BodyDecoder::new(framing, limits);
    let mut content = Vec::new();
    let mut used = 0usize;
    let mut result = Ok(());
    'outer: for piece in Chunks::new(seed, 40).split(input) {
        let mut piece = piece;
        while !piece.is_empty() && !decoder.is_done() {
            match decoder.decode(piece) {
                Ok(d) => {
                    assert!(d.consumed > 0 && d.consumed <= piece.len(), "no progress");
                    assert!(d.data.len() <= d.consumed);
                    content.extend_from_slice(d.data);
                    piece = &piece[d.consumed..];
                    used += d.consumed;
                }
                Err(e) => {
                    result = Err(e);
                    break 'outer;
                }
            }
        }
        if decoder.is_done() {
            break;
        }
    }
    match (skipped, result) {
        (Ok(n), Ok(())) => {
            assert_eq!(n, used, "skip and decode stop at different bytes");
            assert_eq!(skipper.is_done(), decoder.is_done());
            assert!(content.len() as u64 <= limits.max_content_bytes);
            if decoder.is_done() && framing == Framing::Chunked {
                assert_eq!(content.len() as u64, decoder.content_bytes());
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "skip and decode fail differently"),
        (a, b) => panic!("skip {a:?} but decode {b:?}"),
    }
});
