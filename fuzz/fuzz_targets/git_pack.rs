//! Pack parsing: a pack stream (without its SHA-1 trailer, which the harness appends) through
//! the streaming `PackReader` in chunks — entry headers, inflation, OFS/REF deltas, object
//! hashing — then the tree walk of every commit it contains.
//!
//! Input: `seed (4) | pack without trailer`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_fuzz::take_u32;

fuzz_target!(|data: &[u8]| {
    let (seed, body) = take_u32(data);
    let limits = unipi_git::fuzzing::small_limits();
    let _ = unipi_git::fuzzing::pack(body, &limits, seed);
    unipi_git::fuzzing::entry_header(body, u64::from(seed));
});
