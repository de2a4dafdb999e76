//! pkt-line framing and side-band demultiplexing: one-shot decoding against chunked
//! `PktReader` decoding, with a re-encoding check.
//!
//! Input: `max line length selector (1) | seed (4) | stream`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_fuzz::take_u32;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (seed, stream) = take_u32(rest);
    let max_len = match sel % 4 {
        0 => 65520,
        1 => 4,
        2 => 100,
        _ => 70_000, // above the protocol maximum: capped
    };
    unipi_git::fuzzing::pkt_lines(stream, max_len, seed);
});
