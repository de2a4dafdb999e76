//! Host-key fingerprints: the `SHA256:<base64>` form `ssh-keygen -lf` prints, and
//! `--ssh-authenticator` parsing.

use alloc::string::String;
use alloc::vec;
use core::fmt;

use base64ct::{Base64, Base64Unpadded, Encoding};
use sha2::{Digest, Sha256};
use sunset::PubKey;
use sunset::sshwire;

use crate::ParamError;

/// The SHA-256 of a public key blob (the SSH wire encoding: algorithm name, then the key),
/// shown as `SHA256:` and the unpadded base64 of the hash, exactly as `ssh-keygen -lf`
/// prints it. Public information: safe to log.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a public key blob in SSH wire encoding.
    pub fn of_blob(blob: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(blob).into())
    }

    /// The fingerprint of a key as sunset decoded it from the wire. `None` if sunset cannot
    /// encode the key again (which it always can for keys it decoded).
    pub(crate) fn of_pubkey(key: &PubKey<'_>) -> Option<Fingerprint> {
        let len = sshwire::length_enc(key).ok()? as usize;
        let mut blob = vec![0u8; len];
        let n = sshwire::write_ssh(&mut blob, key).ok()?;
        Some(Fingerprint::of_blob(blob.get(..n)?))
    }

    /// The raw 32-byte SHA-256 hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps a raw 32-byte SHA-256 hash.
    pub fn from_bytes(hash: [u8; 32]) -> Fingerprint {
        Fingerprint(hash)
    }
}

impl fmt::Display for Fingerprint {
    /// `SHA256:` followed by 43 characters of unpadded base64.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 44];
        match Base64Unpadded::encode(&self.0, &mut buf) {
            Ok(s) => write!(f, "SHA256:{s}"),
            Err(_) => f.write_str("SHA256:?"),
        }
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses `--ssh-authenticator`: `SHA256:<base64>` as `ssh-keygen -lf` prints it (unpadded
/// base64 of the SHA-256 of the host key blob; a trailing `=` is tolerated).
///
/// Only the SHA-256 form is accepted: `MD5:` fingerprints and Unipi's other authenticator
/// forms (a bare base64 public key, `ed25519:<hash>`) are refused with a message saying what
/// to pass instead.
pub fn parse_authenticator(text: &str) -> Result<Fingerprint, ParamError> {
    let Some((kind, encoded)) = text.split_once(':') else {
        return Err(ParamError::AuthenticatorFormat);
    };
    if kind != "SHA256" {
        return Err(if kind.eq_ignore_ascii_case("md5") {
            ParamError::AuthenticatorMd5
        } else {
            ParamError::AuthenticatorFormat
        });
    }
    let mut hash = [0u8; 32];
    let decoded = if encoded.ends_with('=') {
        Base64::decode(encoded, &mut hash).map(|d| d.len())
    } else {
        Base64Unpadded::decode(encoded, &mut hash).map(|d| d.len())
    };
    match decoded {
        Ok(32) => Ok(Fingerprint(hash)),
        Ok(len) => Err(ParamError::AuthenticatorLength { len }),
        Err(_) if encoded.len() > 44 => Err(ParamError::AuthenticatorLength {
            len: encoded.len() * 3 / 4,
        }),
        Err(_) => Err(ParamError::AuthenticatorBase64),
    }
}

/// Formats `bytes` as padded base64, as OpenSSH public-key lines have it.
pub(crate) fn base64(bytes: &[u8]) -> String {
    Base64::encode_string(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn display_round_trips_through_the_parser() {
        let fp = Fingerprint::of_blob(b"anything");
        let text = fp.to_string();
        assert!(text.starts_with("SHA256:"));
        assert_eq!(text.len(), 7 + 43);
        assert_eq!(parse_authenticator(&text).unwrap(), fp);
        // Padded form is accepted too.
        let padded = alloc::format!("{text}=");
        assert_eq!(parse_authenticator(&padded).unwrap(), fp);
    }

    #[test]
    fn wrong_forms_are_refused_with_a_reason() {
        assert_eq!(
            parse_authenticator("MD5:12:34"),
            Err(ParamError::AuthenticatorMd5)
        );
        assert_eq!(
            parse_authenticator("AAAAC3NzaC1lZDI1NTE5"),
            Err(ParamError::AuthenticatorFormat)
        );
        assert_eq!(
            parse_authenticator("sha1:abcd"),
            Err(ParamError::AuthenticatorFormat)
        );
        assert_eq!(
            parse_authenticator("SHA256:!!!!"),
            Err(ParamError::AuthenticatorBase64)
        );
        assert_eq!(
            parse_authenticator("SHA256:AAAA"),
            Err(ParamError::AuthenticatorLength { len: 3 })
        );
        assert!(matches!(
            parse_authenticator(&alloc::format!("SHA256:{}", "A".repeat(80))),
            Err(ParamError::AuthenticatorLength { .. })
        ));
        assert_eq!(
            parse_authenticator(""),
            Err(ParamError::AuthenticatorFormat)
        );
    }
}
