//! Problem documents (RFC 7807) with ACME's error types (RFC 8555 §6.7).
//!
//! A problem arrives as the body of an error response (`application/problem+json`) and
//! inside failed challenges, authorizations and orders. Everything in it is text the server
//! chose: it is sanitised (control characters replaced, length cut) before it is kept.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::Deserialize;

use crate::error::sanitize;

/// Maximum number of subproblems kept from one problem document.
pub const MAX_SUBPROBLEMS: usize = 8;

const ACME_PREFIX: &str = "urn:ietf:params:acme:error:";

/// The `type` of a problem: ACME's registered error types, or another URI.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemType {
    /// The request specified an account that does not exist.
    AccountDoesNotExist,
    /// The CSR is unacceptable (e.g. due to a short key).
    BadCsr,
    /// The client sent an unacceptable anti-replay nonce; retried transparently.
    BadNonce,
    /// The JWS was signed by a public key the server does not support.
    BadPublicKey,
    /// The JWS was signed with an algorithm the server does not support.
    BadSignatureAlgorithm,
    /// Certification Authority Authorization (CAA) records forbid the CA from issuing.
    Caa,
    /// Specific error conditions are in the subproblems.
    Compound,
    /// The server could not connect to the validation target.
    Connection,
    /// There was a problem with a DNS query during identifier validation.
    Dns,
    /// The request must include a value for the `externalAccountBinding` field.
    ExternalAccountRequired,
    /// The response received did not match the challenge's requirements.
    IncorrectResponse,
    /// A contact URL for an account was invalid.
    InvalidContact,
    /// The request message was malformed.
    Malformed,
    /// The request attempted to finalize an order that is not ready.
    OrderNotReady,
    /// The request exceeds a rate limit.
    RateLimited,
    /// The server will not issue certificates for the identifier.
    RejectedIdentifier,
    /// The server experienced an internal error.
    ServerInternal,
    /// The server received a TLS error during validation.
    Tls,
    /// The client lacks sufficient authorization.
    Unauthorized,
    /// A contact URL for an account used an unsupported protocol scheme.
    UnsupportedContact,
    /// An identifier is of an unsupported type.
    UnsupportedIdentifier,
    /// Visit the `instance` URL and take the actions specified there.
    UserActionRequired,
    /// Any other type (sanitised), e.g. an `about:blank` or a CA-specific URI.
    Other(String),
}

impl ProblemType {
    /// Maps a `type` URI to its variant.
    pub fn from_uri(uri: &str) -> ProblemType {
        let Some(short) = uri.strip_prefix(ACME_PREFIX) else {
            return ProblemType::Other(sanitize(uri.as_bytes()));
        };
        match short {
            "accountDoesNotExist" => ProblemType::AccountDoesNotExist,
            "badCSR" => ProblemType::BadCsr,
            "badNonce" => ProblemType::BadNonce,
            "badPublicKey" => ProblemType::BadPublicKey,
            "badSignatureAlgorithm" => ProblemType::BadSignatureAlgorithm,
            "caa" => ProblemType::Caa,
            "compound" => ProblemType::Compound,
            "connection" => ProblemType::Connection,
            "dns" => ProblemType::Dns,
            "externalAccountRequired" => ProblemType::ExternalAccountRequired,
            "incorrectResponse" => ProblemType::IncorrectResponse,
            "invalidContact" => ProblemType::InvalidContact,
            "malformed" => ProblemType::Malformed,
            "orderNotReady" => ProblemType::OrderNotReady,
            "rateLimited" => ProblemType::RateLimited,
            "rejectedIdentifier" => ProblemType::RejectedIdentifier,
            "serverInternal" => ProblemType::ServerInternal,
            "tls" => ProblemType::Tls,
            "unauthorized" => ProblemType::Unauthorized,
            "unsupportedContact" => ProblemType::UnsupportedContact,
            "unsupportedIdentifier" => ProblemType::UnsupportedIdentifier,
            "userActionRequired" => ProblemType::UserActionRequired,
            _ => ProblemType::Other(sanitize(uri.as_bytes())),
        }
    }

    /// The short name (`badNonce`, `rateLimited`, ...) or the whole URI for other types.
    pub fn name(&self) -> &str {
        match self {
            ProblemType::AccountDoesNotExist => "accountDoesNotExist",
            ProblemType::BadCsr => "badCSR",
            ProblemType::BadNonce => "badNonce",
            ProblemType::BadPublicKey => "badPublicKey",
            ProblemType::BadSignatureAlgorithm => "badSignatureAlgorithm",
            ProblemType::Caa => "caa",
            ProblemType::Compound => "compound",
            ProblemType::Connection => "connection",
            ProblemType::Dns => "dns",
            ProblemType::ExternalAccountRequired => "externalAccountRequired",
            ProblemType::IncorrectResponse => "incorrectResponse",
            ProblemType::InvalidContact => "invalidContact",
            ProblemType::Malformed => "malformed",
            ProblemType::OrderNotReady => "orderNotReady",
            ProblemType::RateLimited => "rateLimited",
            ProblemType::RejectedIdentifier => "rejectedIdentifier",
            ProblemType::ServerInternal => "serverInternal",
            ProblemType::Tls => "tls",
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::UnsupportedContact => "unsupportedContact",
            ProblemType::UnsupportedIdentifier => "unsupportedIdentifier",
            ProblemType::UserActionRequired => "userActionRequired",
            ProblemType::Other(uri) => uri,
        }
    }
}

impl fmt::Display for ProblemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of a problem's `subproblems` (RFC 8555 §6.7.1), sanitised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subproblem {
    /// Its type.
    pub kind: ProblemType,
    /// Its `detail` (sanitised, possibly empty).
    pub detail: String,
    /// The identifier it concerns (sanitised), if given.
    pub identifier: Option<String>,
}

/// A problem document, sanitised: safe to log as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Its type (`about:blank` when the document has none).
    pub kind: ProblemType,
    /// Its `detail` (sanitised, possibly empty).
    pub detail: String,
    /// Its `status`, if given.
    pub status: Option<u16>,
    /// At most 8 subproblems.
    pub subproblems: Vec<Subproblem>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        for sub in &self.subproblems {
            write!(f, "; {}", sub.kind)?;
            if let Some(id) = &sub.identifier {
                write!(f, " ({id})")?;
            }
            if !sub.detail.is_empty() {
                write!(f, ": {}", sub.detail)?;
            }
        }
        Ok(())
    }
}

/// The JSON form; every field is optional so that a sparse document still yields a
/// problem.
#[derive(Deserialize, Debug, Default)]
pub(crate) struct RawProblem {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    subproblems: Option<Vec<RawSubproblem>>,
}

#[derive(Deserialize, Debug)]
struct RawSubproblem {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    identifier: Option<RawIdentifier>,
}

#[derive(Deserialize, Debug)]
struct RawIdentifier {
    #[serde(default)]
    value: Option<String>,
}

impl RawProblem {
    pub(crate) fn into_problem(self) -> Problem {
        let kind_of = |k: Option<String>| match k {
            Some(uri) => ProblemType::from_uri(&uri),
            None => ProblemType::Other(String::from("about:blank")),
        };
        Problem {
            kind: kind_of(self.kind),
            detail: sanitize(self.detail.unwrap_or_default().as_bytes()),
            status: self.status,
            subproblems: self
                .subproblems
                .unwrap_or_default()
                .into_iter()
                .take(MAX_SUBPROBLEMS)
                .map(|s| Subproblem {
                    kind: kind_of(s.kind),
                    detail: sanitize(s.detail.unwrap_or_default().as_bytes()),
                    identifier: s
                        .identifier
                        .and_then(|i| i.value)
                        .map(|v| sanitize(v.as_bytes())),
                })
                .collect(),
        }
    }
}

/// Parses a problem document. `None` when the body is not a JSON object of that shape
/// (the caller then reports the HTTP status alone).
pub fn parse(body: &[u8]) -> Option<Problem> {
    serde_json::from_slice::<RawProblem>(body)
        .ok()
        .map(RawProblem::into_problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn acme_types_map_to_variants() {
        assert_eq!(
            ProblemType::from_uri("urn:ietf:params:acme:error:badNonce"),
            ProblemType::BadNonce
        );
        assert_eq!(
            ProblemType::from_uri("urn:ietf:params:acme:error:rateLimited"),
            ProblemType::RateLimited
        );
        assert_eq!(
            ProblemType::from_uri("urn:ietf:params:acme:error:badCSR").name(),
            "badCSR"
        );
        assert_eq!(
            ProblemType::from_uri("urn:ietf:params:acme:error:somethingNew"),
            ProblemType::Other("urn:ietf:params:acme:error:somethingNew".into())
        );
    }

    #[test]
    fn parses_boulder_style_problem_with_subproblems() {
        let body = br#"{
            "type": "urn:ietf:params:acme:error:compound",
            "detail": "Error creating new order :: Cannot issue for \"a.example\"",
            "status": 400,
            "subproblems": [
                {"type": "urn:ietf:params:acme:error:rejectedIdentifier",
                 "detail": "policy forbids", "identifier": {"type": "dns", "value": "a.example"}}
            ]
        }"#;
        let p = parse(body).unwrap();
        assert_eq!(p.kind, ProblemType::Compound);
        assert_eq!(p.status, Some(400));
        assert_eq!(p.subproblems.len(), 1);
        assert_eq!(p.subproblems[0].identifier.as_deref(), Some("a.example"));
        assert_eq!(
            p.to_string(),
            "compound: Error creating new order :: Cannot issue for \"a.example\"; \
             rejectedIdentifier (a.example): policy forbids"
        );
    }

    #[test]
    fn hostile_text_is_sanitised_and_bounded() {
        let mut detail = alloc::string::String::from("\u{1b}[31mred\n");
        for _ in 0..500 {
            detail.push('x');
        }
        let body = alloc::format!(
            r#"{{"type":"urn:ietf:params:acme:error:malformed","detail":{}}}"#,
            serde_json::to_string(&detail).unwrap()
        );
        let p = parse(body.as_bytes()).unwrap();
        assert!(p.detail.starts_with("?[31mred?x"));
        assert!(p.detail.chars().count() <= 201);
        assert!(!p.detail.chars().any(|c| c.is_control()));
    }

    #[test]
    fn sparse_and_malformed_documents() {
        let p = parse(b"{}").unwrap();
        assert_eq!(p.kind, ProblemType::Other("about:blank".into()));
        assert_eq!(p.to_string(), "about:blank");
        assert!(parse(b"not json").is_none());
        assert!(parse(b"[1,2]").is_none());
        assert!(parse(br#"{"type": 5}"#).is_none());
        assert!(parse(br#"{"status": 70000}"#).is_none());
        let many: alloc::vec::Vec<_> = (0..50).map(|_| r#"{"type":"x"}"#).collect();
        let body = alloc::format!(r#"{{"subproblems":[{}]}}"#, many.join(","));
        assert_eq!(
            parse(body.as_bytes()).unwrap().subproblems.len(),
            MAX_SUBPROBLEMS
        );
    }
}
