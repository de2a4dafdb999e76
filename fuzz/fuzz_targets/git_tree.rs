//! Tree and commit parsing: the tree iterator and commit parser over raw bytes, then the
//! snapshot walk over a set of objects cut from the input (see
//! `unipi_git::fuzzing::tree` for the format): path rules, modes, nesting and limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut limits = unipi_git::fuzzing::small_limits();
    limits.max_path_depth = 8;
    limits.max_files = 512;
    limits.max_path_len = 200;
    let _ = unipi_git::fuzzing::tree(data, &limits);
});
