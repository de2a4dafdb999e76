//! Inflate: a zlib stream through the streaming inflater in chunks, with an exact output
//! bound, checked against a one-shot decompression.
//!
//! Input: `output size (2, LE) | seed (4) | zlib stream`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_fuzz::take_u32;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let out_len = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let (seed, stream) = take_u32(&data[2..]);
    let _ = unipi_git::fuzzing::inflate(stream, out_len, seed);
});
