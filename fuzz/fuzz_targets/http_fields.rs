//! HTTP field values: dates (`If-Modified-Since`), entity-tag lists, `If-Range` and `Range`.
//! (Request bodies are decoded by unipi-httpwire: its own target is `httpwire_body`.)
//!
//! Input: `selector (1) | seed (4) | value`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi::http::conditional::{
    Compare, RangeOutcome, etag_list_matches, evaluate_range, if_range_matches,
};
use unipi::http::date;
use unipi_fuzz::take_u32;

const NOW: u64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (seed, value) = take_u32(rest);
    match sel % 3 {
        0 => {
            if let Some(t) = date::parse(value, NOW) {
                // A date we accept formats back to something we accept as the same time.
                if let Ok(u) = u64::try_from(t) {
                    if u < 253_402_300_800 {
                        let f = date::format(u);
                        assert_eq!(
                            date::parse(&f, NOW),
                            Some(t),
                            "{:?}",
                            core::str::from_utf8(&f)
                        );
                    }
                }
            }
            let _ = date::parse(value, u64::from(seed));
        }
        1 => {
            let lines: Vec<&[u8]> = value.split(|b| *b == b'\n').collect();
            for cmp in [Compare::Strong, Compare::Weak] {
                let _ = etag_list_matches(lines.iter().copied(), "0123abcd", cmp);
            }
            let _ = if_range_matches(value, "0123abcd", 1_600_000_000, NOW);
        }
        _ => {
            for len in [0u64, 1, u64::from(seed), u64::MAX] {
                match evaluate_range(value, len) {
                    RangeOutcome::Partial { start, end } => {
                        assert!(start <= end && end < len, "{start}-{end} of {len}");
                    }
                    RangeOutcome::Full | RangeOutcome::Unsatisfiable => {}
                }
            }
        }
    }
});
