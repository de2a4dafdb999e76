//! A whole HTTP/2 server connection (`unipi_h2::Connection`) fed arbitrary
//! client bytes in random pieces, with a serving layer that answers every
//! request, consumes output in random amounts and lets time pass; buffer
//! bounds are checked after every step (`unipi_h2::fuzzing::run_connection`).
//!
//! Input: `flags (1) | seed (4) | client bytes`. Flags: limit set (2 bits);
//! bit 2 prepends a valid preface and SETTINGS frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_fuzz::take_u32;
use unipi_h2::fuzzing::{limits, run_connection};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (seed, input) = take_u32(rest);
    if flags & 4 != 0 {
        let mut v = PREFACE.to_vec();
        v.extend_from_slice(input);
        run_connection(limits(flags), seed, &v);
    } else {
        run_connection(limits(flags), seed, input);
    }
});
