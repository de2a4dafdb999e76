//! The client's private key, from Unipi's boot-parameter forms:
//!
//! * `--ssh-key=ed25519:<base64>`: the base64 of the 32-byte Ed25519 seed (the private key
//!   proper), which is what Unipi's `awa` reads (`X509.Private_key.of_string` decodes the
//!   base64 and takes the 32 bytes as the Ed25519 private key). Padded or unpadded.
//! * `--ssh-key=rsa:<seed>`: Unipi derives an RSA key from a seed with its own RNG; that
//!   cannot be reproduced and sunset has no `no_std` RSA, so it is refused with a message
//!   saying to use ed25519.
//! * An OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`, unencrypted,
//!   ed25519), what `ssh-keygen -t ed25519 -N ''` writes, e.g. from a memory region.
//!
//! The OpenSSH format is read by hand (about a hundred lines, fuzzed): the `ssh-key` crate
//! that fits sunset's crypto versions is a release candidate and brings cipher and KDF stacks
//! for encrypted keys, which a unikernel has no passphrase for anyway.
//!
//! Secrets never reach `Debug`/`Display`/logs: [`Ed25519Key`]'s `Debug` shows only the public
//! key's fingerprint, error messages show lengths and names, never key bytes, and key
//! material is zeroed on drop (seed, decoded file contents).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use base64ct::{Base64, Base64Unpadded, Encoding};
use sunset::SignKey;
use sunset::ed25519_dalek::SigningKey;
use zeroize::{Zeroize, Zeroizing};

use crate::ParamError;
use crate::fingerprint::{Fingerprint, base64};

/// SSH name of the Ed25519 key type.
const ED25519: &str = "ssh-ed25519";
/// The magic that opens the binary OpenSSH private key format.
const OPENSSH_MAGIC: &[u8] = b"openssh-key-v1\0";
const PEM_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const PEM_END: &str = "-----END OPENSSH PRIVATE KEY-----";
/// Largest key file accepted (an ed25519 key file is about 400 bytes; RSA 4096 about 3.4 KiB).
pub const MAX_KEY_FILE_BYTES: usize = 16 * 1024;

/// An Ed25519 private key (its 32-byte seed). `Debug` shows only the public key's
/// fingerprint; the seed is zeroed on drop.
#[derive(Clone)]
pub struct Ed25519Key {
    seed: Zeroizing<[u8; 32]>,
}

impl Ed25519Key {
    /// The key with this 32-byte seed (RFC 8032 private key).
    pub fn from_seed(seed: [u8; 32]) -> Ed25519Key {
        Ed25519Key {
            seed: Zeroizing::new(seed),
        }
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        SigningKey::from_bytes(&self.seed)
            .verifying_key()
            .to_bytes()
    }

    /// The public key blob in SSH wire encoding (`string "ssh-ed25519"`, `string key`).
    pub fn public_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(4 + ED25519.len() + 4 + 32);
        put_string(&mut blob, ED25519.as_bytes());
        put_string(&mut blob, &self.public_key());
        blob
    }

    /// The public key's fingerprint, as `ssh-keygen -lf` shows it (safe to log).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_blob(&self.public_blob())
    }

    /// The public key as an `authorized_keys` line: `ssh-ed25519 <base64>` (safe to log).
    pub fn openssh_public(&self) -> String {
        let mut line = String::from(ED25519);
        line.push(' ');
        line.push_str(&base64(&self.public_blob()));
        line
    }

    /// The key in sunset's form, for one session (sunset zeroes it on drop).
    pub(crate) fn sign_key(&self) -> SignKey {
        SignKey::Ed25519(SigningKey::from_bytes(&self.seed))
    }
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519Key({})", self.fingerprint())
    }
}

impl PartialEq for Ed25519Key {
    /// Compares the secret seeds in constant time.
    fn eq(&self, other: &Self) -> bool {
        self.seed
            .iter()
            .zip(other.seed.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for Ed25519Key {}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Parses `--ssh-key`: `ed25519:<base64 of the 32-byte seed>` (padded or not). `rsa:<seed>`
/// is refused ([`ParamError::RsaUnsupported`]), as is anything else.
pub fn parse_ssh_key(param: &str) -> Result<Ed25519Key, ParamError> {
    let Some((kind, data)) = param.split_once(':') else {
        return Err(ParamError::KeyFormat);
    };
    if kind.eq_ignore_ascii_case("rsa") {
        return Err(ParamError::RsaUnsupported);
    }
    if !kind.eq_ignore_ascii_case("ed25519") {
        return Err(ParamError::KeyFormat);
    }
    // Room for a 64-byte (seed ‖ public) input, to report its length.
    let mut buf = Zeroizing::new([0u8; 66]);
    if data.len() > 88 {
        return Err(ParamError::SeedLength {
            len: data.len() * 3 / 4,
        });
    }
    let len = if data.ends_with('=') {
        Base64::decode(data, &mut buf[..]).map(|d| d.len())
    } else {
        Base64Unpadded::decode(data, &mut buf[..]).map(|d| d.len())
    }
    .map_err(|_| ParamError::KeyBase64)?;
    if len != 32 {
        return Err(ParamError::SeedLength { len });
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&buf[..32]);
    let key = Ed25519Key::from_seed(seed);
    seed.zeroize();
    Ok(key)
}

/// Parses an OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted
/// and of type ed25519, as `ssh-keygen -t ed25519 -N ''` writes it. Trailing zero bytes (the
/// padding of a memory region) are ignored.
pub fn parse_openssh_private_key(file: &[u8]) -> Result<Ed25519Key, ParamError> {
    let end = file.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let file = file.get(..end).unwrap_or_default();
    if file.len() > MAX_KEY_FILE_BYTES {
        return Err(ParamError::KeyFileTooLarge {
            limit: MAX_KEY_FILE_BYTES,
        });
    }
    let text = core::str::from_utf8(file).map_err(|_| ParamError::NotOpenSshKey)?;
    let Some(start) = text.find(PEM_BEGIN) else {
        return Err(
            if text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----") {
                ParamError::PemNotOpenSsh
            } else {
                ParamError::NotOpenSshKey
            },
        );
    };
    let body = &text[start + PEM_BEGIN.len()..];
    let Some(stop) = body.find(PEM_END) else {
        return Err(ParamError::KeyFileCorrupt("no END line"));
    };
    let mut b64 = Zeroizing::new(Vec::with_capacity(stop));
    b64.extend(body[..stop].bytes().filter(|b| !b.is_ascii_whitespace()));
    let mut raw = Zeroizing::new(vec![0u8; b64.len() / 4 * 3 + 3]);
    let len = Base64::decode(&b64[..], &mut raw[..])
        .map_err(|_| ParamError::KeyFileCorrupt("bad base64"))?
        .len();
    parse_openssh_binary(raw.get(..len).unwrap_or_default())
}

/// A reader for SSH wire fields in a buffer, failing with a key-file error.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParamError> {
        if self.0.len() < n {
            return Err(ParamError::KeyFileCorrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, ParamError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<&'a [u8], ParamError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// The decoded `openssh-key-v1` structure (PROTOCOL.key in OpenSSH's sources).
fn parse_openssh_binary(raw: &[u8]) -> Result<Ed25519Key, ParamError> {
    let mut r = Reader(raw);
    if r.take(OPENSSH_MAGIC.len())? != OPENSSH_MAGIC {
        return Err(ParamError::KeyFileCorrupt("not openssh-key-v1"));
    }
    let cipher = r.string()?;
    let kdf = r.string()?;
    let _kdf_options = r.string()?;
    if cipher != b"none" || kdf != b"none" {
        return Err(ParamError::EncryptedKey);
    }
    if r.u32()? != 1 {
        return Err(ParamError::KeyFileCorrupt("not exactly one key"));
    }
    let public_blob = r.string()?;
    let mut private = Reader(r.string()?);
    let check1 = private.u32()?;
    let check2 = private.u32()?;
    if check1 != check2 {
        return Err(ParamError::KeyFileCorrupt("check numbers differ"));
    }
    let kind = private.string()?;
    if kind != ED25519.as_bytes() {
        return Err(ParamError::UnsupportedKeyType {
            found: crate::error::sanitize(kind, 32),
        });
    }
    let public = private.string()?;
    let secret = private.string()?;
    // `secret` is seed ‖ public key.
    if public.len() != 32 || secret.len() != 64 || secret[32..] != *public {
        return Err(ParamError::KeyFileCorrupt("malformed ed25519 key"));
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&secret[..32]);
    let key = Ed25519Key::from_seed(seed);
    seed.zeroize();
    if key.public_key() != *public || key.public_blob() != public_blob {
        return Err(ParamError::KeyFileCorrupt(
            "public key does not match the private key",
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    /// RFC 8032 test 1: secret key and the public key it gives.
    const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn seed_param() -> String {
        format!("ed25519:{}", Base64::encode_string(&hex(RFC8032_SEED)))
    }

    #[test]
    fn unipi_ed25519_param_is_the_seed() {
        let key = parse_ssh_key(&seed_param()).unwrap();
        assert_eq!(key.public_key().to_vec(), hex(RFC8032_PUBLIC));
        // Unpadded and upper-case type work as well.
        let unpadded = seed_param()
            .trim_end_matches('=')
            .replace("ed25519", "ED25519");
        assert_eq!(parse_ssh_key(&unpadded).unwrap(), key);
    }

    #[test]
    fn bad_params_are_refused_without_showing_the_key() {
        assert_eq!(parse_ssh_key("rsa:abcdef"), Err(ParamError::RsaUnsupported));
        assert_eq!(parse_ssh_key("dsa:abcdef"), Err(ParamError::KeyFormat));
        assert_eq!(parse_ssh_key("abcdef"), Err(ParamError::KeyFormat));
        assert_eq!(parse_ssh_key("ed25519:!!"), Err(ParamError::KeyBase64));
        let short = format!("ed25519:{}", Base64::encode_string(&[7u8; 31]));
        assert_eq!(
            parse_ssh_key(&short),
            Err(ParamError::SeedLength { len: 31 })
        );
        let long = format!("ed25519:{}", Base64::encode_string(&[7u8; 64]));
        let e = parse_ssh_key(&long).unwrap_err();
        assert_eq!(e, ParamError::SeedLength { len: 64 });
        assert!(!e.to_string().contains("BwcH"), "{e}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let key = parse_ssh_key(&seed_param()).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.starts_with("Ed25519Key(SHA256:"), "{shown}");
        let seed_b64 = Base64::encode_string(&hex(RFC8032_SEED));
        assert!(!shown.contains(&seed_b64[..8]));
        assert!(!shown.contains("9d61"));
    }

    /// A key file built the way OpenSSH lays it out (PROTOCOL.key), for the parser's error
    /// paths; the integration tests read real `ssh-keygen` output.
    fn key_file(cipher: &str, kind: &str, tamper: bool) -> String {
        let key = parse_ssh_key(&seed_param()).unwrap();
        let mut private = Vec::new();
        private.extend_from_slice(&[1, 2, 3, 4, 1, 2, 3, 4]);
        put_string(&mut private, kind.as_bytes());
        put_string(&mut private, &key.public_key());
        let mut secret = hex(RFC8032_SEED);
        secret.extend_from_slice(&key.public_key());
        if tamper {
            secret[0] ^= 1;
        }
        put_string(&mut private, &secret);
        put_string(&mut private, b"comment");
        let mut i = 1;
        while private.len() % 8 != 0 {
            private.push(i);
            i += 1;
        }
        let mut raw = OPENSSH_MAGIC.to_vec();
        put_string(&mut raw, cipher.as_bytes());
        put_string(&mut raw, if cipher == "none" { b"none" } else { b"bcrypt" });
        put_string(&mut raw, b"");
        raw.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut raw, &key.public_blob());
        put_string(&mut raw, &private);
        let b64 = Base64::encode_string(&raw);
        let mut text = String::from(PEM_BEGIN);
        text.push('\n');
        for chunk in b64.as_bytes().chunks(70) {
            text.push_str(core::str::from_utf8(chunk).unwrap());
            text.push('\n');
        }
        text.push_str(PEM_END);
        text.push('\n');
        text
    }

    #[test]
    fn openssh_file_round_trip_and_errors() {
        let good = key_file("none", ED25519, false);
        let key = parse_openssh_private_key(good.as_bytes()).unwrap();
        assert_eq!(key, parse_ssh_key(&seed_param()).unwrap());
        // Zero padding of a memory region is fine.
        let mut padded = good.clone().into_bytes();
        padded.resize(4096, 0);
        assert_eq!(parse_openssh_private_key(&padded).unwrap(), key);

        assert_eq!(
            parse_openssh_private_key(key_file("aes256-ctr", ED25519, false).as_bytes()),
            Err(ParamError::EncryptedKey)
        );
        assert!(matches!(
            parse_openssh_private_key(key_file("none", "ssh-rsa", false).as_bytes()),
            Err(ParamError::UnsupportedKeyType { found }) if found == "ssh-rsa"
        ));
        assert!(matches!(
            parse_openssh_private_key(key_file("none", ED25519, true).as_bytes()),
            Err(ParamError::KeyFileCorrupt(_))
        ));
        assert_eq!(
            parse_openssh_private_key(
                b"-----BEGIN PRIVATE KEY-----\nMC4=\n-----END PRIVATE KEY-----\n"
            ),
            Err(ParamError::PemNotOpenSsh)
        );
        assert_eq!(
            parse_openssh_private_key(b"hello"),
            Err(ParamError::NotOpenSshKey)
        );
        let truncated = &good[..good.len() / 2];
        assert!(parse_openssh_private_key(truncated.as_bytes()).is_err());
        let big = " ".repeat(MAX_KEY_FILE_BYTES + 1);
        assert_eq!(
            parse_openssh_private_key(big.as_bytes()),
            Err(ParamError::KeyFileTooLarge {
                limit: MAX_KEY_FILE_BYTES
            })
        );
    }

    #[test]
    fn public_forms() {
        let key = parse_ssh_key(&seed_param()).unwrap();
        let line = key.openssh_public();
        assert!(
            line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
            "{line}"
        );
        assert_eq!(key.fingerprint().to_string().len(), 50);
    }
}
