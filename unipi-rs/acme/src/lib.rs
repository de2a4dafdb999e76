//! A sans-IO ACME (RFC 8555) client for `no_std` + `alloc`: it obtains a certificate from
//! Let's Encrypt (or any RFC 8555 CA) for the names a unikernel serves, answering HTTP-01
//! or TLS-ALPN-01 (RFC 8737) challenges through its driver.
//!
//! * Keys: the account key (JWS `ES256`) and the certificate key (ECDSA P-256), derived
//!   deterministically from seeds with HKDF-SHA256, or from random bytes ([`key`] module
//!   documentation; why RSA and Ed25519 are left out is there too).
//! * Protocol: directory, nonces (`badNonce` retried), account (found again by its key),
//!   order, authorizations, challenges, finalize with a PKCS#10 CSR, chain download;
//!   polling with `Retry-After`.
//! * Every response is untrusted: bodies are bounded by [`Limits`] before parsing, JSON
//!   goes through serde into checked types, problem documents become typed errors with
//!   sanitised text, and the issued chain is checked against our key and names.
//!
//! Start with [`Config::new`] and [`Client::new`], then drive [`Client::poll`] (see
//! [`Client`] for the driving protocol and an example). After issuance,
//! [`Issued::renew_at`] says when to renew and [`Backoff`] spaces out retries after a
//! failure; [`CertInfo`] reads a chain loaded at boot.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod cert;
mod challenge;
mod client;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod headers;
mod jws;
pub mod key;
mod lifecycle;
mod limits;
mod name;
mod objects;
mod problem;
mod url;
pub mod x509;

pub use cert::{CertInfo, parse_chain_pem};
pub use challenge::{
    ACME_TLS_ALPN_PROTOCOL, Challenge, ChallengeKind, HTTP01_PATH_PREFIX, valid_token,
};
pub use client::{
    Action, Client, Config, HttpRequest, HttpResponse, Issued, Method, Now, Phase, Stats,
};
pub use error::Error;
pub use headers::Headers;
pub use jws::{Jwk, b64u};
pub use key::{AccountKey, CertificateKey, KeyAlgorithm};
pub use lifecycle::Backoff;
pub use limits::Limits;
pub use name::{DnsName, contact_url};
pub use problem::{Problem, ProblemType, Subproblem};
pub use url::{LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING, Url};
