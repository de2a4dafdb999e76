//! The account key (JWS ES256) and the certificate key (ECDSA P-256), derived
//! deterministically from a seed or from random bytes the driver supplies.
//!
//! # Derivation
//!
//! A secret scalar is `HKDF-SHA256(salt = "unipi-acme key v1", IKM = seed,
//! info = label ‖ 0x00 ‖ counter)` expanded to the curve's scalar size (32 bytes for P-256,
//! 48 for P-384) and read big-endian, where the label is `account`, `certificate` or
//! `certificate-p384` (so one seed never gives related keys for two roles or curves) and
//! the counter starts at 0 and goes up only in the unlikely case (probability below 2⁻³²)
//! that the value is 0 or not below the group order. The same seed gives the same key on
//! every boot; 32 fresh random bytes give a fresh key through the very same path.
//!
//! # Why two ECC implementations
//!
//! *ring* signs (it is linked anyway for rustls) but cannot compute a public key from a
//! private scalar: its PKCS#8 loader requires the public key, and its key generator takes
//! randomness only from `SystemRandom` (its `SecureRandom` trait is sealed; its
//! deterministic test generators are deprecated and slated for removal). The RustCrypto
//! `p256` crate (arithmetic only, no precomputed tables, no ECDSA) does exactly that one
//! scalar multiplication and writes the PKCS#8 document *ring* then loads and checks:
//! about 27 KB of code (measured on x86-64, `opt-level = "s"`, fat LTO). P-384
//! certificate keys (feature `p384`) add `p384` the same way, another 17 KB.
//!
//! RSA keys are out of scope: no well-kept `no_std` RSA key generator is fast enough under
//! emulation (prime search for 2048 bits takes seconds natively), and Let's Encrypt takes
//! ECDSA for both account and certificate keys. Ed25519 is not accepted by Let's Encrypt
//! for either.

use alloc::vec::Vec;
use core::fmt;

use p256::pkcs8::EncodePrivateKey;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair as _,
};

use crate::error::Error;

/// The shortest seed accepted, in bytes (128 bits).
pub const MIN_SEED_LEN: usize = 16;

const SALT: &[u8] = b"unipi-acme key v1";
/// Attempts before giving up on finding a scalar in range (each fails with p < 2⁻³²).
const MAX_DERIVE_ATTEMPTS: u8 = 8;

/// The key algorithms this crate generates and uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA over NIST P-256 with SHA-256 (JWS `ES256`); the default.
    EcdsaP256,
    /// ECDSA over NIST P-384 with SHA-384, for certificate keys (feature `p384`).
    #[cfg(feature = "p384")]
    EcdsaP384,
}

/// What a key is for: the label of its derivation, and the signature encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Account,
    Certificate(KeyAlgorithm),
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Account => b"account",
            Role::Certificate(KeyAlgorithm::EcdsaP256) => b"certificate",
            #[cfg(feature = "p384")]
            Role::Certificate(KeyAlgorithm::EcdsaP384) => b"certificate-p384",
        }
    }

    fn signing(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            // JWS wants r ‖ s (RFC 7518 §3.4), X.509 and PKCS#10 want DER.
            Role::Account => &ECDSA_P256_SHA256_FIXED_SIGNING,
            Role::Certificate(KeyAlgorithm::EcdsaP256) => &ECDSA_P256_SHA256_ASN1_SIGNING,
            #[cfg(feature = "p384")]
            Role::Certificate(KeyAlgorithm::EcdsaP384) => {
                &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING
            }
        }
    }

    fn algorithm(self) -> KeyAlgorithm {
        match self {
            Role::Account => KeyAlgorithm::EcdsaP256,
            Role::Certificate(a) => a,
        }
    }
}

/// The HKDF output length type *ring* wants.
struct Len(usize);

impl ring::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// Derives the PKCS#8 v1 document of the key for `role` from `seed`.
fn derive_pkcs8(seed: &[u8], role: Role) -> Result<Vec<u8>, Error> {
    if seed.len() < MIN_SEED_LEN {
        return Err(Error::SeedTooShort {
            len: seed.len(),
            min: MIN_SEED_LEN,
        });
    }
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, SALT).extract(seed);
    let len = match role.algorithm() {
        KeyAlgorithm::EcdsaP256 => 32,
        #[cfg(feature = "p384")]
        KeyAlgorithm::EcdsaP384 => 48,
    };
    let encoding = |_| Error::Key {
        reason: "could not encode the derived key as PKCS#8",
    };
    for counter in 0..MAX_DERIVE_ATTEMPTS {
        let mut buf = zeroize::Zeroizing::new([0u8; 48]);
        let scalar = buf.get_mut(..len).ok_or(Error::Key {
            reason: "scalar size",
        })?;
        let info = [role.label(), &[0u8, counter]];
        prk.expand(&info, Len(len))
            .and_then(|okm| okm.fill(scalar))
            .map_err(|_| Error::Key {
                reason: "HKDF expansion failed",
            })?;
        // from_slice refuses 0 and values not below the group order: try the next counter.
        let doc = match role.algorithm() {
            KeyAlgorithm::EcdsaP256 => p256::SecretKey::from_slice(scalar)
                .ok()
                .map(|k| k.to_pkcs8_der().map_err(encoding)),
            #[cfg(feature = "p384")]
            KeyAlgorithm::EcdsaP384 => p384::SecretKey::from_slice(scalar)
                .ok()
                .map(|k| p384::pkcs8::EncodePrivateKey::to_pkcs8_der(&k).map_err(encoding)),
        };
        if let Some(doc) = doc {
            return Ok(doc?.as_bytes().to_vec());
        }
    }
    Err(Error::Key {
        reason: "no valid scalar found for this seed",
    })
}

/// A P-256 key pair held both as PKCS#8 (to hand out) and as a *ring* signing key.
struct KeyPair {
    pkcs8: zeroize::Zeroizing<Vec<u8>>,
    ring: EcdsaKeyPair,
}

impl KeyPair {
    fn from_pkcs8(der: &[u8], role: Role) -> Result<KeyPair, Error> {
        let ring =
            EcdsaKeyPair::from_pkcs8(role.signing(), der, &SystemRandom::new()).map_err(|e| {
                Error::Key {
                    reason: match alloc::string::ToString::to_string(&e).as_str() {
                        "WrongAlgorithm" => "not a P-256 key",
                        "InconsistentComponents" => "public and private key do not match",
                        _ => "not a PKCS#8 (v1) P-256 key",
                    },
                }
            })?;
        Ok(KeyPair {
            pkcs8: zeroize::Zeroizing::new(der.to_vec()),
            ring,
        })
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.ring
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| Error::Key {
                reason: "signing failed (no system randomness?)",
            })
    }

    /// The uncompressed SEC1 point `04 ‖ x ‖ y`.
    fn public_key(&self) -> &[u8] {
        self.ring.public_key().as_ref()
    }
}

/// The ACME account key: ECDSA P-256, signing JWS with `ES256`. Let's Encrypt finds an
/// existing account by its key, so a key derived from the same seed always yields the same
/// account.
pub struct AccountKey(KeyPair);

impl AccountKey {
    /// Derives the key from `seed` (at least [`MIN_SEED_LEN`] bytes; see the
    /// [module documentation](self) for the KDF). Pass a stored seed for a key that is the
    /// same on every boot, or 32 fresh random bytes for a new one.
    pub fn from_seed(seed: &[u8]) -> Result<AccountKey, Error> {
        let der = derive_pkcs8(seed, Role::Account)?;
        Ok(AccountKey(KeyPair::from_pkcs8(&der, Role::Account)?))
    }

    /// Loads a PKCS#8 v1 P-256 key that includes its public key (as *ring*, OpenSSL and
    /// [`pkcs8_der`](AccountKey::pkcs8_der) write it).
    pub fn from_pkcs8(der: &[u8]) -> Result<AccountKey, Error> {
        Ok(AccountKey(KeyPair::from_pkcs8(der, Role::Account)?))
    }

    /// The key as PKCS#8 v1 DER (secret: store it like a password).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.0.pkcs8
    }

    /// The public key as an uncompressed SEC1 point (65 bytes).
    pub fn public_key(&self) -> &[u8] {
        self.0.public_key()
    }

    /// Signs `message` for a JWS: ES256, `r ‖ s` (64 bytes).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.0.sign(message)
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey").finish_non_exhaustive()
    }
}

/// The key of the certificate to issue (and of the TLS-ALPN-01 validation certificate).
pub struct CertificateKey {
    algorithm: KeyAlgorithm,
    pair: KeyPair,
}

impl CertificateKey {
    /// Derives the key from `seed` (at least [`MIN_SEED_LEN`] bytes; see the
    /// [module documentation](self) for the KDF). A stored seed keeps the key across
    /// reboots and renewals; 32 fresh random bytes give a new key.
    pub fn from_seed(algorithm: KeyAlgorithm, seed: &[u8]) -> Result<CertificateKey, Error> {
        let der = derive_pkcs8(seed, Role::Certificate(algorithm))?;
        Self::from_pkcs8(algorithm, &der)
    }

    /// Loads a PKCS#8 v1 key of `algorithm` that includes its public key.
    pub fn from_pkcs8(algorithm: KeyAlgorithm, der: &[u8]) -> Result<CertificateKey, Error> {
        Ok(CertificateKey {
            algorithm,
            pair: KeyPair::from_pkcs8(der, Role::Certificate(algorithm))?,
        })
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The key as PKCS#8 v1 DER, ready for rustls' `PrivateKeyDer::Pkcs8` (secret).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pair.pkcs8
    }

    /// The public key as an uncompressed SEC1 point (65 bytes for P-256, 97 for P-384).
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key()
    }

    /// Signs `message` for X.509 / PKCS#10: ECDSA with SHA-256 (P-256) or SHA-384 (P-384),
    /// DER `Ecdsa-Sig-Value`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.pair.sign(message)
    }
}

impl fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    const SEED: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn same_seed_same_key_roles_differ() {
        let a1 = AccountKey::from_seed(SEED).unwrap();
        let a2 = AccountKey::from_seed(SEED).unwrap();
        assert_eq!(a1.pkcs8_der(), a2.pkcs8_der());
        assert_eq!(a1.public_key(), a2.public_key());
        let c = CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, SEED).unwrap();
        assert_ne!(a1.public_key(), c.public_key());
        let other = AccountKey::from_seed(b"another seed of enough length").unwrap();
        assert_ne!(a1.public_key(), other.public_key());
        assert_eq!(a1.public_key().len(), 65);
        assert_eq!(a1.public_key()[0], 4);
    }

    #[test]
    fn derivation_is_stable() {
        // The derivation is a documented contract (keys must survive upgrades): pin the
        // public key of a known seed, computed independently from the scalar below.
        let a = AccountKey::from_seed(SEED).unwrap();
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, SALT).extract(SEED);
        let mut scalar = [0u8; 32];
        prk.expand(&[b"account", &[0, 0]], Len(32))
            .unwrap()
            .fill(&mut scalar)
            .unwrap();
        let expect = p256::SecretKey::from_slice(&scalar).unwrap();
        let point =
            p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&expect.public_key(), false);
        assert_eq!(a.public_key(), point.as_bytes());
    }

    #[test]
    fn signatures_verify() {
        let a = AccountKey::from_seed(SEED).unwrap();
        let sig = a.sign(b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, a.public_key())
            .verify(b"hello", &sig)
            .unwrap();
        let c = CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, SEED).unwrap();
        let sig = c.sign(b"hello").unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, c.public_key())
            .verify(b"hello", &sig)
            .unwrap();
    }

    #[test]
    fn pkcs8_round_trip_and_rejections() {
        let a = AccountKey::from_seed(SEED).unwrap();
        let b = AccountKey::from_pkcs8(a.pkcs8_der()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(
            AccountKey::from_seed(b"short").unwrap_err(),
            Error::SeedTooShort { len: 5, min: 16 }
        );
        assert!(matches!(
            AccountKey::from_pkcs8(b"\x30\x03\x02\x01\x00"),
            Err(Error::Key { .. })
        ));
        // A key whose public part belongs to another private key.
        let c = CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, SEED).unwrap();
        let mut mixed = a.pkcs8_der().to_vec();
        let pa = a.public_key();
        let pc = c.public_key();
        let at = mixed.windows(65).position(|w| w == pa).unwrap();
        mixed[at..at + 65].copy_from_slice(pc);
        assert_eq!(
            AccountKey::from_pkcs8(&mixed).unwrap_err(),
            Error::Key {
                reason: "public and private key do not match"
            }
        );
    }

    #[cfg(feature = "p384")]
    #[test]
    fn p384_certificate_keys() {
        use ring::signature::ECDSA_P384_SHA384_ASN1;
        let k = CertificateKey::from_seed(KeyAlgorithm::EcdsaP384, SEED).unwrap();
        let again = CertificateKey::from_seed(KeyAlgorithm::EcdsaP384, SEED).unwrap();
        assert_eq!(k.pkcs8_der(), again.pkcs8_der());
        assert_eq!(k.public_key().len(), 97);
        let sig = k.sign(b"hello").unwrap();
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, k.public_key())
            .verify(b"hello", &sig)
            .unwrap();
        // A P-384 document is not a P-256 key, and the other way round.
        assert!(CertificateKey::from_pkcs8(KeyAlgorithm::EcdsaP256, k.pkcs8_der()).is_err());
        let p256 = CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, SEED).unwrap();
        assert!(CertificateKey::from_pkcs8(KeyAlgorithm::EcdsaP384, p256.pkcs8_der()).is_err());
    }

    #[test]
    fn ring_generated_keys_load() {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        AccountKey::from_pkcs8(doc.as_ref()).unwrap();
        CertificateKey::from_pkcs8(KeyAlgorithm::EcdsaP256, doc.as_ref()).unwrap();
    }
}
