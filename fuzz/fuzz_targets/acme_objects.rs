//! ACME resources as JSON: directory, account, order, authorization, challenge and problem
//! documents, through the same serde parsing and validation the client uses, with the
//! default limits and with small ones.
//!
//! Input: `selector (1) | JSON body`; bit 7 of the selector picks the small limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_acme::Limits;
use unipi_acme::fuzzing::{ObjectParser, object, small_limits};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let parser = ObjectParser::ALL[usize::from(sel & 0x7f) % ObjectParser::ALL.len()];
    let limits = if sel & 0x80 != 0 {
        small_limits()
    } else {
        Limits::default()
    };
    object(parser, body, &limits);
});
