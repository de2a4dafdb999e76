//! JSON Web Signature (RFC 7515) as ACME uses it (RFC 8555 §6.2): flattened JSON
//! serialization, `ES256`, the account key as `jwk` (newAccount) or its URL as `kid`; the
//! JWK thumbprint (RFC 7638) behind key authorizations.

use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Serialize;

use crate::error::Error;
use crate::key::AccountKey;

/// base64url without padding (RFC 7515 §2).
pub fn b64u(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Decodes base64url without padding; `None` for anything else (padding, `+`, `/`,
/// whitespace, non-canonical trailing bits).
#[cfg(test)]
pub fn b64u_decode(text: &str) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(text).ok()
}

/// The public JWK of an EC key (RFC 7518 §6.2.1). Field order is the lexicographic order
/// RFC 7638 requires, so the serialization of this struct *is* the thumbprint input.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    crv: &'static str,
    kty: &'static str,
    x: String,
    y: String,
}

impl Jwk {
    /// The JWK of `key`.
    pub fn of(key: &AccountKey) -> Result<Jwk, Error> {
        let point = key.public_key();
        // Uncompressed SEC1: 0x04 ‖ x (32) ‖ y (32).
        let (x, y) = match point {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => {
                return Err(Error::Key {
                    reason: "public key is not an uncompressed P-256 point",
                });
            }
        };
        Ok(Jwk {
            crv: "P-256",
            kty: "EC",
            x: b64u(x),
            y: b64u(y),
        })
    }

    /// The JWK thumbprint (RFC 7638): base64url(SHA-256(canonical JWK)).
    pub fn thumbprint(&self) -> String {
        thumbprint_of(self)
    }
}

/// RFC 7638 §3: SHA-256 over the JSON of the required members, in lexicographic order (the
/// field order of `members`) and without whitespace (serde_json's compact form).
fn thumbprint_of<T: Serialize>(members: &T) -> String {
    let canonical = serde_json::to_vec(members).unwrap_or_default();
    b64u(ring::digest::digest(&ring::digest::SHA256, &canonical).as_ref())
}

/// How the protected header names the key.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// With the whole public key (newAccount).
    Jwk(&'a Jwk),
    /// With the account URL (every request after newAccount).
    Kid(&'a str),
}

#[derive(Serialize)]
struct Protected<'a> {
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwk: Option<&'a Jwk>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    nonce: &'a str,
    url: &'a str,
}

#[derive(Serialize)]
struct Flattened<'a> {
    protected: &'a str,
    payload: &'a str,
    signature: &'a str,
}

/// Signs `payload` for a POST to `url`. `None` as payload makes a POST-as-GET (empty
/// payload string, RFC 8555 §6.3); `Some(b"{}")` is the empty object a challenge response
/// wants.
pub fn sign(
    key: &AccountKey,
    signer: Signer<'_>,
    nonce: &str,
    url: &str,
    payload: Option<&[u8]>,
) -> Result<Vec<u8>, Error> {
    let (jwk, kid) = match signer {
        Signer::Jwk(jwk) => (Some(jwk), None),
        Signer::Kid(kid) => (None, Some(kid)),
    };
    let header = Protected {
        alg: "ES256",
        jwk,
        kid,
        nonce,
        url,
    };
    let protected = b64u(&serde_json::to_vec(&header).map_err(|_| Error::Key {
        reason: "could not serialize the JWS header",
    })?);
    let payload = payload.map(b64u).unwrap_or_default();
    let mut signing_input = String::with_capacity(protected.len() + 1 + payload.len());
    signing_input.push_str(&protected);
    signing_input.push('.');
    signing_input.push_str(&payload);
    let signature = b64u(&key.sign(signing_input.as_bytes())?);
    serde_json::to_vec(&Flattened {
        protected: &protected,
        payload: &payload,
        signature: &signature,
    })
    .map_err(|_| Error::Key {
        reason: "could not serialize the JWS",
    })
}

/// The key authorization of a challenge token (RFC 8555 §8.1): `token.thumbprint`.
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    let mut s = String::with_capacity(token.len() + 1 + thumbprint.len());
    s.push_str(token);
    s.push('.');
    s.push_str(thumbprint);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    use serde_json::Value;

    fn key() -> AccountKey {
        AccountKey::from_seed(b"jws test seed, long enough").unwrap()
    }

    #[test]
    fn base64url_without_padding() {
        assert_eq!(b64u(b""), "");
        assert_eq!(b64u(b"f"), "Zg");
        assert_eq!(b64u(b"fo"), "Zm8");
        assert_eq!(b64u(b"foo"), "Zm9v");
        assert_eq!(b64u(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64u_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert!(b64u_decode("Zg==").is_none());
        assert!(b64u_decode("+/8").is_none());
        assert!(b64u_decode("Z g").is_none());
        assert!(b64u_decode("Zh").is_none(), "non-canonical trailing bits");
    }

    /// RFC 7638 §3.1's example is an RSA key; the procedure is the same for EC keys.
    #[test]
    fn thumbprint_rfc7638() {
        #[derive(Serialize)]
        struct RsaMembers {
            e: &'static str,
            kty: &'static str,
            n: &'static str,
        }
        let rfc = RsaMembers {
            e: "AQAB",
            kty: "RSA",
            n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        };
        assert_eq!(
            thumbprint_of(&rfc),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // The EC members serialize in the canonical order too.
        let jwk = Jwk {
            crv: "P-256",
            kty: "EC",
            x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU".into(),
            y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".into(),
        };
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&jwk).unwrap()).unwrap(),
            r#"{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#
        );
        assert_eq!(jwk.thumbprint().len(), 43);
    }

    #[test]
    fn jwk_matches_key() {
        let k = key();
        let jwk = Jwk::of(&k).unwrap();
        let x = b64u_decode(&jwk.x).unwrap();
        let y = b64u_decode(&jwk.y).unwrap();
        assert_eq!(&k.public_key()[1..33], &x[..]);
        assert_eq!(&k.public_key()[33..], &y[..]);
    }

    fn parts(jws: &[u8]) -> (Value, Vec<u8>, String, Vec<u8>) {
        let v: Value = serde_json::from_slice(jws).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 3);
        let protected = obj["protected"].as_str().unwrap();
        let payload = obj["payload"].as_str().unwrap();
        let sig = b64u_decode(obj["signature"].as_str().unwrap()).unwrap();
        let header: Value = serde_json::from_slice(&b64u_decode(protected).unwrap()).unwrap();
        let input = alloc::format!("{protected}.{payload}");
        (header, b64u_decode(payload).unwrap(), input, sig)
    }

    #[test]
    fn jws_with_jwk_verifies() {
        let k = key();
        let jwk = Jwk::of(&k).unwrap();
        let jws = sign(
            &k,
            Signer::Jwk(&jwk),
            "nonce-1",
            "https://ca.example/new-acct",
            Some(br#"{"termsOfServiceAgreed":true}"#),
        )
        .unwrap();
        let (header, payload, input, sig) = parts(&jws);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["nonce"], "nonce-1");
        assert_eq!(header["url"], "https://ca.example/new-acct");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert_eq!(header["jwk"]["crv"], "P-256");
        assert!(header.get("kid").is_none());
        assert_eq!(payload, br#"{"termsOfServiceAgreed":true}"#);
        assert_eq!(sig.len(), 64);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, k.public_key())
            .verify(input.as_bytes(), &sig)
            .unwrap();
        // A changed header no longer verifies.
        let mut tampered = input.into_bytes();
        tampered[3] ^= 1;
        assert!(
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, k.public_key())
                .verify(&tampered, &sig)
                .is_err()
        );
    }

    #[test]
    fn post_as_get_with_kid() {
        let k = key();
        let jws = sign(
            &k,
            Signer::Kid("https://ca.example/acct/1"),
            "n2",
            "https://ca.example/order/7",
            None,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&jws).unwrap();
        assert_eq!(v["payload"], "");
        let (header, payload, input, sig) = parts(&jws);
        assert_eq!(header["kid"], "https://ca.example/acct/1");
        assert!(header.get("jwk").is_none());
        assert!(payload.is_empty());
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, k.public_key())
            .verify(input.as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn key_authorization_format() {
        assert_eq!(key_authorization("tok", "thumb"), "tok.thumb");
    }
}
