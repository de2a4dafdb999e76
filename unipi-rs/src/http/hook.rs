//! Webhook authentication: the signatures and tokens forges send.
//!
//! Without a secret (`--hook-secret`), the secret webhook path alone
//! authorises a pull, as in Unipi. With one, a request to the path must also
//! carry one of:
//!
//! | forge | field | value |
//! |---|---|---|
//! | GitHub | `X-Hub-Signature-256` | `sha256=` + hex HMAC-SHA256 of the body |
//! | Gitea | `X-Gitea-Signature` | hex HMAC-SHA256 of the body |
//! | Forgejo | `X-Forgejo-Signature` | hex HMAC-SHA256 of the body |
//! | GitLab | `X-Gitlab-Token` | the secret itself |
//!
//! No credential is `401`; credentials that do not verify are `403`. MACs
//! are checked by ring's constant-time `hmac::verify`, tokens by
//! [`super::serve::equals_secret`].

use ring::hmac;

use super::request::Request;
use super::serve::equals_secret;

/// The webhook secret. Its `Debug` output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(alloc::vec::Vec<u8>);

impl Secret {
    /// Wraps the secret's bytes.
    pub fn new(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Longest `X-Gitlab-Token` value kept.
const MAX_TOKEN: usize = 256;

/// What a request offered to prove it comes from the forge, copied out of
/// its header block (which is gone by the time the body has arrived).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// MACs from the signature fields (`None`: field present but not a
    /// well-formed hex SHA-256 MAC).
    macs: heapless::Vec<Option<[u8; 32]>, 3>,
    /// The GitLab token (`None`: present but over [`MAX_TOKEN`] bytes).
    token: Option<Option<heapless::Vec<u8, MAX_TOKEN>>>,
}

/// How a webhook request fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pull.
    Accepted,
    /// No credential at all: `401`.
    Missing,
    /// A credential that does not verify: `403`.
    Wrong,
}

impl Credentials {
    /// The credentials among the request's fields.
    pub fn of(req: &Request<'_>) -> Credentials {
        let mut c = Credentials::default();
        for v in req.values("x-hub-signature-256") {
            let mac = v.trim_ascii().strip_prefix(b"sha256=").and_then(hex32);
            let _ = c.macs.push(mac);
        }
        for name in ["x-gitea-signature", "x-forgejo-signature"] {
            for v in req.values(name) {
                let _ = c.macs.push(hex32(v.trim_ascii()));
            }
        }
        if let Some(v) = req.values("x-gitlab-token").next() {
            c.token = Some(heapless::Vec::from_slice(v.trim_ascii()).ok());
        }
        c
    }

    /// True when the request carried any credential field.
    pub fn present(&self) -> bool {
        !self.macs.is_empty() || self.token.is_some()
    }

    /// Checks the credentials against `secret` for a request with `body`.
    pub fn verify(&self, secret: &[u8], body: &[u8]) -> Verdict {
        if !self.present() {
            return Verdict::Missing;
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let mac_ok = self
            .macs
            .iter()
            .flatten()
            .any(|mac| hmac::verify(&key, body, mac).is_ok());
        let token_ok = matches!(&self.token, Some(Some(t)) if equals_secret(t, secret));
        if mac_ok || token_ok {
            Verdict::Accepted
        } else {
            Verdict::Wrong
        }
    }
}

/// 64 hex digits (either case) to 32 bytes.
fn hex32(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *o = (hi << 4 | lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::Method;
    use alloc::string::String;
    use core::fmt::Write as _;

    fn hex(b: &[u8]) -> String {
        let mut s = String::new();
        for x in b {
            let _ = write!(s, "{x:02x}");
        }
        s
    }

    fn creds(fields: &[(&'static str, &[u8])]) -> Credentials {
        let headers: alloc::vec::Vec<httparse::Header<'_>> = fields
            .iter()
            .map(|(n, v)| httparse::Header { name: n, value: v })
            .collect();
        Credentials::of(&Request {
            method_token: "POST",
            method: Method::Post,
            target: "/hook",
            host: None,
            fields: &headers,
        })
    }

    #[test]
    fn forges() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let mac = hex(hmac::sign(&key, body).as_ref());
        // GitHub's documented example value for this secret and body.
        assert_eq!(
            mac,
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let github = alloc::format!("sha256={mac}");
        let c = creds(&[("X-Hub-Signature-256", github.as_bytes())]);
        assert_eq!(c.verify(secret, body), Verdict::Accepted);
        assert_eq!(c.verify(secret, b"Hello, World?"), Verdict::Wrong);
        let upper = mac.to_uppercase();
        let c = creds(&[("X-Gitea-Signature", upper.as_bytes())]);
        assert_eq!(c.verify(secret, body), Verdict::Accepted);
        let c = creds(&[("X-Forgejo-Signature", mac.as_bytes())]);
        assert_eq!(c.verify(secret, body), Verdict::Accepted);
        let c = creds(&[("X-Gitlab-Token", secret)]);
        assert_eq!(c.verify(secret, body), Verdict::Accepted);
        let c = creds(&[("X-Gitlab-Token", b"nope")]);
        assert_eq!(c.verify(secret, body), Verdict::Wrong);
        assert_eq!(creds(&[]).verify(secret, body), Verdict::Missing);
        let c = creds(&[("X-Hub-Signature-256", b"sha1=abc")]);
        assert_eq!(c.verify(secret, body), Verdict::Wrong);
        let long = [b'a'; 300];
        let c = creds(&[("X-Gitlab-Token", &long)]);
        assert_eq!(c.verify(&long, body), Verdict::Wrong);
    }
}
