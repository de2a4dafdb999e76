//! `--ssh-authenticator` with `unipi_ssh::parse_authenticator`: accepted fingerprints must
//! print as `SHA256:` and 43 base64 characters and parse back to themselves.
//!
//! Input: the parameter text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_ssh::parse_authenticator;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_authenticator(text) {
        Ok(fp) => {
            let shown = fp.to_string();
            assert_eq!(shown.len(), 50, "{shown}");
            assert_eq!(parse_authenticator(&shown), Ok(fp));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
