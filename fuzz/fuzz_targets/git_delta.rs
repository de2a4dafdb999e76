//! Delta application: a git delta (size header, copy and insert instructions) applied to a
//! base, both taken from the input.
//!
//! Input: `base length (2, LE) | base | delta`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let base_len = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let (base, delta) = data[2..].split_at(base_len);
    if let Ok(out) = unipi_git::fuzzing::delta(base, delta, 1 << 20) {
        // Every result byte came from the base or from the delta's insert data.
        assert!(out.len() <= (1 << 20));
    }
});
