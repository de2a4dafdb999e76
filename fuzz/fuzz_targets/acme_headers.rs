//! Response header handling: `Replay-Nonce`, `Location` (joined to a base URL),
//! `Retry-After` (delta-seconds and HTTP dates), `Link` relations, `Content-Type`; and over
//! every value: URL parsing and joining, DNS name and contact validation.
//!
//! Input: `now (4, little-endian Unix seconds) | lines "name: value"` (at most 16 fields).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_acme::fuzzing::{header_fields, small_limits, split_fields};
use unipi_fuzz::take_u32;

fuzz_target!(|data: &[u8]| {
    let (now, rest) = take_u32(data);
    let fields = split_fields(rest);
    let fields: Vec<(&str, &[u8])> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    header_fields(&fields, u64::from(now), &unipi_acme::Limits::default());
    header_fields(&fields, u64::from(now), &small_limits());
});
