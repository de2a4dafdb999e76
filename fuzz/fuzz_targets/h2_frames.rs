//! HTTP/2 frame semantics: records turned into well-framed client frames
//! (after a valid preface and SETTINGS), so that every input reaches frame
//! handling: stream states, flow control, SETTINGS, PING, GOAWAY,
//! RST_STREAM, CONTINUATION, priority, and requests with valid header
//! blocks (`unipi_h2::fuzzing::frames_input`, then `run_connection`).
//!
//! Input: `flags (1) | seed (4) | settings count (1) | settings (6 each) |
//! (kind flags stream len payload)*`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_fuzz::take_u32;
use unipi_h2::fuzzing::{frames_input, limits, run_connection};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (seed, records) = take_u32(rest);
    run_connection(limits(flags), seed, &frames_input(records));
});
