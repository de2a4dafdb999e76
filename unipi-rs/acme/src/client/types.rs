//! What the driver passes to the [`Client`](super::Client) and gets back from it.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::cert::CertInfo;
use crate::challenge::{Challenge, ChallengeKind};
use crate::error::Error;
use crate::headers::Headers;
use crate::limits::Limits;
use crate::url::Url;

/// The driver's clocks, passed to every [`Client::poll`](super::Client::poll).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Monotonic seconds (any origin); [`Action::WaitUntil`] and every `retry_at` use it.
    pub monotonic: u64,
    /// Unix seconds (wall clock), for HTTP dates in `Retry-After`, the validity of the
    /// TLS-ALPN-01 certificate and the check that the issued certificate has not expired.
    pub unix: u64,
}

/// Settings of one issuance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The ACME directory URL (e.g. [`LETS_ENCRYPT_PRODUCTION`](crate::LETS_ENCRYPT_PRODUCTION)).
    pub directory: String,
    /// The names to certify: `--hostname` first, then any extra names. Each becomes an
    /// identifier of the order and a dNSName of the certificate; the first is also its CN.
    pub names: Vec<String>,
    /// Contact e-mail addresses for the account (`--email`); may be empty.
    pub contacts: Vec<String>,
    /// Challenge types to answer, in order of preference (default: HTTP-01, then
    /// TLS-ALPN-01). The first one the server offers for a name is used.
    pub challenges: Vec<ChallengeKind>,
    /// Resource limits and retry bounds.
    pub limits: Limits,
    /// Sent as `User-Agent` (RFC 8555 §6.1 requires one).
    pub user_agent: String,
}

impl Config {
    /// Settings for `hostname` at `directory`, with the defaults for the rest.
    pub fn new(directory: &str, hostname: &str) -> Config {
        Config {
            directory: String::from(directory),
            names: alloc::vec![String::from(hostname)],
            contacts: Vec::new(),
            challenges: alloc::vec![ChallengeKind::Http01, ChallengeKind::TlsAlpn01],
            limits: Limits::default(),
            user_agent: String::from(concat!("unipi-acme/", env!("CARGO_PKG_VERSION"))),
        }
    }
}

/// HTTP methods the client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET` (the directory).
    Get,
    /// `HEAD` (a fresh nonce).
    Head,
    /// `POST` (everything else, signed).
    Post,
}

impl Method {
    /// The method token.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
        }
    }
}

/// A request for the driver to send over HTTPS. The driver adds `Host`
/// ([`Url::host_header`]), `Content-Length` and its connection handling, and verifies the
/// server certificate against its trust anchors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The URL (always `https://`).
    pub url: Url,
    /// Further header fields (`User-Agent`, `Content-Type`, `Accept`).
    pub headers: Vec<(&'static str, String)>,
    /// The body (a JWS for POST, empty otherwise).
    pub body: Vec<u8>,
}

/// The driver's report of a complete HTTP response: status, header fields (names in any
/// case) and body (de-chunked). Bodies longer than [`Client::max_body_len`](super::Client::max_body_len) are refused,
/// so the driver may stop reading one byte beyond that.
#[derive(Clone, Copy, Debug)]
pub struct HttpResponse<'a> {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: &'a Headers<'a>,
    /// The body.
    pub body: &'a [u8],
}

/// What the driver must do next; returned by [`Client::poll`](super::Client::poll).
#[derive(Debug)]
pub enum Action {
    /// Send this request, then report the answer with [`Client::response`](super::Client::response) or the failure
    /// with [`Client::transport_error`](super::Client::transport_error).
    Request(HttpRequest),
    /// Install this challenge answer, then call [`Client::published`](super::Client::published) (or
    /// [`Client::publish_failed`](super::Client::publish_failed)).
    Publish(Challenge),
    /// Remove this challenge answer (published earlier), then call
    /// [`Client::unpublished`](super::Client::unpublished).
    Unpublish(Challenge),
    /// Nothing to do before the monotonic time given (seconds); poll again then. Polling
    /// earlier is harmless.
    WaitUntil(u64),
    /// The client waits for the driver's answer to the last `Request`, `Publish` or
    /// `Unpublish`; poll again after giving it.
    Pending,
    /// The issuance is over, successfully or not. Returned once; no challenge answer is
    /// left published.
    Done(Result<Issued, Error>),
}

/// Where the issuance is, for logging and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Fetching the directory.
    Directory,
    /// Fetching a fresh nonce.
    Nonce,
    /// Registering (or finding) the account.
    Account,
    /// Creating the order.
    Order,
    /// Fetching or polling an authorization.
    Authorization,
    /// Publishing and triggering a challenge.
    Challenge,
    /// Finalizing the order with the CSR and waiting for the certificate.
    Finalize,
    /// Downloading the certificate chain.
    Certificate,
    /// Finished.
    Done,
}

impl fmt::Display for Phase {
    /// A gerund phrase: "fetching the directory", ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Directory => "fetching the directory",
            Phase::Nonce => "fetching a nonce",
            Phase::Account => "registering the account",
            Phase::Order => "creating the order",
            Phase::Authorization => "checking an authorization",
            Phase::Challenge => "answering a challenge",
            Phase::Finalize => "finalizing the order",
            Phase::Certificate => "downloading the certificate",
            Phase::Done => "finishing",
        })
    }
}

/// Counters of one issuance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests handed to the driver.
    pub requests: u32,
    /// Requests signed again after a `badNonce` problem.
    pub bad_nonce_retries: u32,
    /// Requests sent again after a transport failure or a 5xx answer.
    pub transient_retries: u32,
    /// Status polls of authorizations and orders.
    pub polls: u32,
}

/// A certificate issued by the CA, checked against the key and names: ready to serve.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The chain in DER, leaf first, as the server sent it (its default chain).
    pub chain: Vec<Vec<u8>>,
    /// The certificate key (PKCS#8 v1 DER; secret).
    pub private_key: Vec<u8>,
    /// The leaf's validity, issuer, serial and names.
    pub info: CertInfo,
    /// The account URL (`kid`).
    pub account_url: String,
    /// The order URL.
    pub order_url: String,
    /// Alternate chains the server offered (`Link: rel="alternate"`), not downloaded.
    pub alternate_chains: Vec<String>,
    /// Counters.
    pub stats: Stats,
}

impl Issued {
    /// The chain as PEM (`CERTIFICATE` sections, leaf first), as rustls and
    /// `unipi::tls::server_config` read it.
    pub fn chain_pem(&self) -> String {
        let mut out = String::new();
        for der in &self.chain {
            push_pem(&mut out, "CERTIFICATE", der);
        }
        out
    }

    /// The private key as PEM (`PRIVATE KEY`, PKCS#8; secret).
    pub fn private_key_pem(&self) -> String {
        let mut out = String::new();
        push_pem(&mut out, "PRIVATE KEY", &self.private_key);
        out
    }

    /// When to renew, Unix seconds (two thirds into the lifetime; [`CertInfo::renew_at`]).
    pub fn renew_at(&self) -> u64 {
        self.info.renew_at()
    }
}

impl fmt::Debug for Issued {
    /// Leaves out the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("chain_len", &self.chain.len())
            .field("info", &self.info)
            .field("account_url", &self.account_url)
            .field("order_url", &self.order_url)
            .field("alternate_chains", &self.alternate_chains)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// RFC 7468 text: base64 in 64-character lines between the labels. Written here because
/// the PEM crates at hand (rustls-pki-types) only read; ten lines do not justify another.
fn push_pem(out: &mut String, label: &str, der: &[u8]) {
    use base64ct::Encoding;
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let b64 = base64ct::Base64::encode_string(der);
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}
