//! What the driver publishes so that the CA can validate a name: the HTTP-01 answer
//! (RFC 8555 §8.3) or the TLS-ALPN-01 certificate (RFC 8737).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::name::DnsName;

/// The path prefix of HTTP-01 answers on the plain-HTTP port.
pub const HTTP01_PATH_PREFIX: &str = "/.well-known/acme-challenge/";
/// The ALPN protocol id of TLS-ALPN-01 validation connections (RFC 8737 §6.2).
pub const ACME_TLS_ALPN_PROTOCOL: &[u8] = b"acme-tls/1";

/// The challenge types this client answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// `http-01`: a file on port 80.
    Http01,
    /// `tls-alpn-01`: a special certificate on port 443 for connections negotiating
    /// `acme-tls/1`.
    TlsAlpn01,
}

impl ChallengeKind {
    /// The ACME `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        }
    }

    /// The kind for an ACME `type` string, if this client answers it.
    pub fn from_type(t: &str) -> Option<ChallengeKind> {
        match t {
            "http-01" => Some(ChallengeKind::Http01),
            "tls-alpn-01" => Some(ChallengeKind::TlsAlpn01),
            _ => None,
        }
    }
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A challenge answer the driver installs ([`Action::Publish`](crate::Action::Publish))
/// and later removes ([`Action::Unpublish`](crate::Action::Unpublish)).
#[derive(Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Answer `GET http://<name>/.well-known/acme-challenge/<token>` on the plain-HTTP port
    /// with status 200 and the key authorization as body (any content type; RFC 8555 §8.3
    /// suggests `application/octet-stream`). Redirects to HTTPS are allowed by the CA but
    /// not needed.
    Http01 {
        /// The name being validated.
        name: DnsName,
        /// The token (base64url, checked).
        token: String,
        /// The body to serve: `token.thumbprint`.
        key_authorization: String,
    },
    /// For TLS connections on the HTTPS port that offer ALPN `acme-tls/1` with SNI `name`,
    /// negotiate `acme-tls/1`, present `certificate` with `private_key`, and close after
    /// the handshake (RFC 8737 §3). Other connections are served as usual.
    TlsAlpn01 {
        /// The name being validated (the SNI to match).
        name: DnsName,
        /// The self-signed validation certificate (DER).
        certificate: Vec<u8>,
        /// Its private key (PKCS#8 v1 DER, the certificate key), ready for rustls.
        private_key: Vec<u8>,
    },
}

impl Challenge {
    /// Its type.
    pub fn kind(&self) -> ChallengeKind {
        match self {
            Challenge::Http01 { .. } => ChallengeKind::Http01,
            Challenge::TlsAlpn01 { .. } => ChallengeKind::TlsAlpn01,
        }
    }

    /// The name being validated.
    pub fn name(&self) -> &DnsName {
        match self {
            Challenge::Http01 { name, .. } | Challenge::TlsAlpn01 { name, .. } => name,
        }
    }

    /// For HTTP-01: the body to answer a request for `path` with, if `path` (the request
    /// target, without query) is this challenge's. `None` for anything else.
    pub fn http01_answer(&self, path: &str) -> Option<&str> {
        match self {
            Challenge::Http01 {
                token,
                key_authorization,
                ..
            } => path
                .strip_prefix(HTTP01_PATH_PREFIX)
                .filter(|t| *t == token)
                .map(|_| key_authorization.as_str()),
            Challenge::TlsAlpn01 { .. } => None,
        }
    }
}

impl fmt::Debug for Challenge {
    /// Leaves out the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Challenge::Http01 {
                name,
                token,
                key_authorization,
            } => f
                .debug_struct("Http01")
                .field("name", name)
                .field("token", token)
                .field("key_authorization", key_authorization)
                .finish(),
            Challenge::TlsAlpn01 {
                name, certificate, ..
            } => f
                .debug_struct("TlsAlpn01")
                .field("name", name)
                .field("certificate_len", &certificate.len())
                .finish_non_exhaustive(),
        }
    }
}

/// True when `token` is a usable challenge token: 1 to `max_len` base64url characters
/// (RFC 8555 §8.3), so it is safe in a URL path and a file name.
pub fn valid_token(token: &str, max_len: usize) -> bool {
    !token.is_empty()
        && token.len() <= max_len
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http01_answer_matches_only_its_path() {
        let c = Challenge::Http01 {
            name: DnsName::new("a.example").unwrap(),
            token: "abc_-1".into(),
            key_authorization: "abc_-1.thumb".into(),
        };
        assert_eq!(
            c.http01_answer("/.well-known/acme-challenge/abc_-1"),
            Some("abc_-1.thumb")
        );
        assert_eq!(c.http01_answer("/.well-known/acme-challenge/abc"), None);
        assert_eq!(
            c.http01_answer("/.well-known/acme-challenge/abc_-1/x"),
            None
        );
        assert_eq!(c.http01_answer("/abc_-1"), None);
        assert_eq!(c.kind(), ChallengeKind::Http01);
    }

    #[test]
    fn tokens() {
        assert!(valid_token(
            "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
            256
        ));
        assert!(!valid_token("", 256));
        assert!(!valid_token("../etc", 256));
        assert!(!valid_token("a/b", 256));
        assert!(!valid_token("a=", 256));
        assert!(!valid_token("aaaa", 3));
    }

    #[test]
    fn kinds() {
        assert_eq!(
            ChallengeKind::from_type("tls-alpn-01"),
            Some(ChallengeKind::TlsAlpn01)
        );
        assert_eq!(ChallengeKind::from_type("dns-01"), None);
        assert_eq!(ChallengeKind::Http01.to_string(), "http-01");
    }

    #[test]
    fn debug_hides_the_key() {
        let c = Challenge::TlsAlpn01 {
            name: DnsName::new("a.example").unwrap(),
            certificate: alloc::vec![1, 2, 3],
            private_key: alloc::vec![0x42; 10],
        };
        let s = alloc::format!("{c:?}");
        assert!(s.contains("certificate_len: 3"));
        assert!(!s.contains("66"));
    }
    use alloc::string::ToString;
}
