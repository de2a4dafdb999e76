//! SSH client keys: `--ssh-key` (`ed25519:<base64>`, `rsa:...`) with `unipi_ssh::parse_ssh_key`
//! and OpenSSH private key files with `unipi_ssh::parse_openssh_private_key`; accepted keys
//! must give a public key, a fingerprint, a `Debug` without the seed, and reparse from
//! their own `ed25519:` form.
//!
//! Input: `selector (1) | text`. Selector bit 0: key file (else `--ssh-key`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_ssh::{Ed25519Key, parse_openssh_private_key, parse_ssh_key};

fn check(key: &Ed25519Key) {
    let shown = format!("{key:?}");
    assert!(shown.starts_with("Ed25519Key(SHA256:"), "{shown}");
    let line = key.openssh_public();
    assert!(line.starts_with("ssh-ed25519 "));
    assert_eq!(key.public_blob().len(), 51);
    let _ = key.fingerprint().to_string();
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let result = if selector & 1 == 1 {
        parse_openssh_private_key(rest)
    } else {
        match std::str::from_utf8(rest) {
            Ok(text) => parse_ssh_key(text),
            Err(_) => return,
        }
    };
    match result {
        Ok(key) => check(&key),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty());
        }
    }
});
