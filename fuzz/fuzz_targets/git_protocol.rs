//! Protocol responses: capability / ref advertisements (v0, v1, v2), `ls-refs` answers and
//! fetch responses (v2 sections, v0 shallow/NAK, side-band pack data).
//!
//! Input: `parser selector (1) | pkt-line stream`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_git::fuzzing::{ProtocolParser, protocol};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, stream)) = data.split_first() else {
        return;
    };
    let parser = ProtocolParser::ALL[usize::from(sel) % ProtocolParser::ALL.len()];
    let _ = protocol(parser, stream);
});
