//! The sans-IO issuance state machine: directory → nonce → account → order → for each
//! authorization: publish a challenge answer, trigger it, poll, unpublish → finalize with a
//! CSR → poll the order → download the chain.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;

use crate::cert::{self, CertInfo};
use crate::challenge::{Challenge, ChallengeKind};
use crate::error::{Error, sanitize};
use crate::headers::{self, Headers};
use crate::jws::{self, Jwk, Signer};
use crate::key::{AccountKey, CertificateKey};
use crate::limits::Limits;
use crate::name::{DnsName, contact_url};
use crate::objects::{self, Authorization, Directory, Order, Status};
use crate::problem::{self, Problem, ProblemType};
use crate::url::Url;
use crate::x509;

/// The driver's clocks, passed to every [`Client::poll`].
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
/// case) and body (de-chunked). Bodies longer than [`Client::max_body_len`] are refused,
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

/// What the driver must do next; returned by [`Client::poll`].
#[derive(Debug)]
pub enum Action {
    /// Send this request, then report the answer with [`Client::response`] or the failure
    /// with [`Client::transport_error`].
    Request(HttpRequest),
    /// Install this challenge answer, then call [`Client::published`] (or
    /// [`Client::publish_failed`]).
    Publish(Challenge),
    /// Remove this challenge answer (published earlier), then call
    /// [`Client::unpublished`].
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

/// One request of the protocol. Indexes point into the order's authorizations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Directory,
    Nonce,
    NewAccount,
    NewOrder,
    FetchAuthz(usize),
    RespondChallenge(usize),
    PollAuthz(usize),
    PollOrder,
    Finalize,
    DownloadCert,
}

impl Op {
    /// Sending it twice does no harm: everything but finalize (a second finalize of an
    /// order in `processing` is an `orderNotReady` error).
    fn repeatable(self) -> bool {
        !matches!(self, Op::Finalize)
    }
}

/// What happens after a challenge answer is removed.
#[derive(Debug)]
enum AfterUnpublish {
    /// Go on with the authorization after this one.
    Next(usize),
    /// End with this error.
    Fail(Error),
}

#[derive(Debug)]
enum State {
    /// Return the request for this operation.
    Send(Op),
    /// The request is out; waiting for `response()` / `transport_error()`.
    AwaitResponse(Op),
    /// Send this operation at the monotonic time given.
    Sleep {
        until: u64,
        op: Op,
    },
    /// Return `Publish`.
    Publish,
    AwaitPublish,
    /// Return `Unpublish`.
    Unpublish(AfterUnpublish),
    AwaitUnpublish(AfterUnpublish),
    /// The result, until handed out.
    Finished(Option<Result<Issued, Error>>),
}

/// The challenge being answered.
#[derive(Debug)]
struct Active {
    index: usize,
    challenge: Challenge,
    url: Url,
    published: bool,
}

/// A sans-IO ACME (RFC 8555) client that obtains one certificate.
///
/// # Driving protocol
///
/// Call [`poll`](Client::poll) with the current time and do what the returned [`Action`]
/// says, then report back:
///
/// | `poll(now)` returns | driver does | then calls |
/// |---|---|---|
/// | `Request(req)` | send `req` over HTTPS (adding `Host`, `Content-Length`) | [`response`](Client::response) or [`transport_error`](Client::transport_error) |
/// | `Publish(challenge)` | install the HTTP-01 answer or the TLS-ALPN-01 certificate | [`published`](Client::published) or [`publish_failed`](Client::publish_failed) |
/// | `Unpublish(challenge)` | remove it | [`unpublished`](Client::unpublished) |
/// | `WaitUntil(t)` | wait until monotonic second `t` (serve other work meanwhile) | `poll` |
/// | `Pending` | nothing: an answer above is still owed | the owed call |
/// | `Done(result)` | use the certificate, or schedule a retry ([`Backoff`](crate::Backoff)) | stop |
///
/// The client never blocks, reads no clock and does no I/O; every request is returned once.
/// Anti-replay nonces, `badNonce` retries (bounded by [`Limits::max_bad_nonce_retries`]),
/// retries of repeatable requests after transport failures or 5xx answers
/// ([`Limits::max_transient_retries`]), `Retry-After` and polling intervals are handled
/// inside. Every response is untrusted: its body is size-checked against [`Limits`]
/// before parsing, and anything unusable ends the issuance with a specific [`Error`]; a
/// published challenge answer is always unpublished before `Done`.
///
/// Signing needs *ring*'s `SystemRandom` (ECDSA nonces), as rustls does.
///
/// ```no_run
/// use unipi_acme::{AccountKey, Action, CertificateKey, Client, Config, HttpResponse, KeyAlgorithm, Now};
///
/// # fn send(req: &unipi_acme::HttpRequest) -> Result<(u16, Vec<(String, Vec<u8>)>, Vec<u8>), String> { unimplemented!() }
/// # fn install(c: &unipi_acme::Challenge) {}
/// # fn remove(c: &unipi_acme::Challenge) {}
/// # fn now() -> Now { Now::default() }
/// # fn sleep_until(t: u64) {}
/// let config = Config::new(unipi_acme::LETS_ENCRYPT_STAGING, "example.org");
/// let account = AccountKey::from_seed(b"--account-seed, 16 bytes or more").unwrap();
/// let cert_key = CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, b"--cert-seed, 16 bytes or more").unwrap();
/// let mut client = Client::new(config, account, cert_key);
/// let result = loop {
///     match client.poll(now()) {
///         Action::Request(req) => match send(&req) {
///             Ok((status, headers, body)) => {
///                 let headers: Vec<(&str, &[u8])> =
///                     headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
///                 client.response(HttpResponse { status, headers: &headers, body: &body });
///             }
///             Err(e) => client.transport_error(&e),
///         },
///         Action::Publish(challenge) => { install(&challenge); client.published(); }
///         Action::Unpublish(challenge) => { remove(&challenge); client.unpublished(); }
///         Action::WaitUntil(t) => sleep_until(t),
///         Action::Pending => unreachable!("this driver answers at once"),
///         Action::Done(result) => break result,
///     }
/// };
/// match result {
///     Ok(issued) => println!("certificate until {}, renew at {}", issued.info.not_after, issued.renew_at()),
///     Err(e) => eprintln!("ACME failed: {e}"),
/// }
/// ```
pub struct Client {
    config: Config,
    account_key: AccountKey,
    cert_key: CertificateKey,
    jwk: Option<Jwk>,
    thumbprint: String,
    names: Vec<DnsName>,
    contacts: Vec<String>,
    directory_url: Option<Url>,
    directory: Option<Directory>,
    nonce: Option<String>,
    /// The operation waiting for a fresh nonce.
    after_nonce: Option<Op>,
    kid: Option<String>,
    order_url: Option<Url>,
    order: Option<Order>,
    finalized: bool,
    /// Every authorization of the order has been walked once.
    authz_walked: bool,
    active: Option<Active>,
    state: State,
    now: Now,
    /// `badNonce` retries of the current operation.
    bad_nonces: u32,
    /// Transient retries of the current operation.
    transient: u32,
    /// Polls of the current object.
    polls: u32,
    stats: Stats,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("names", &self.names)
            .field("state", &self.state)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount<'a> {
    terms_of_service_agreed: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    contact: &'a [String],
}

#[derive(Serialize)]
struct Identifier<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct NewOrder<'a> {
    identifiers: Vec<Identifier<'a>>,
}

#[derive(Serialize)]
struct Finalize {
    csr: String,
}

const JOSE_JSON: &str = "application/jose+json";
const PEM_CHAIN: &str = "application/pem-certificate-chain";
/// At most this many alternate chain URLs are kept.
const MAX_ALTERNATES: usize = 8;

impl Client {
    /// Prepares an issuance. Nothing happens until the first [`poll`](Client::poll); an
    /// unusable configuration (names, contacts, directory URL) is reported there as
    /// `Done(Err(..))`.
    ///
    /// By registering, the client agrees to the CA's terms of service
    /// (`termsOfServiceAgreed: true`), as Unipi did; the directory's terms URL is logged.
    pub fn new(config: Config, account_key: AccountKey, cert_key: CertificateKey) -> Client {
        let mut client = Client {
            account_key,
            cert_key,
            jwk: None,
            thumbprint: String::new(),
            names: Vec::new(),
            contacts: Vec::new(),
            directory_url: None,
            directory: None,
            nonce: None,
            after_nonce: None,
            kid: None,
            order_url: None,
            order: None,
            finalized: false,
            authz_walked: false,
            active: None,
            state: State::Send(Op::Directory),
            now: Now::default(),
            bad_nonces: 0,
            transient: 0,
            polls: 0,
            stats: Stats::default(),
            config,
        };
        if let Err(e) = client.validate() {
            client.state = State::Finished(Some(Err(e)));
        }
        client
    }

    fn validate(&mut self) -> Result<(), Error> {
        let limits = &self.config.limits;
        if self.config.names.is_empty() {
            return Err(Error::NoNames);
        }
        if self.config.names.len() > limits.max_names {
            return Err(Error::TooManyNames {
                count: self.config.names.len(),
                limit: limits.max_names,
            });
        }
        for n in &self.config.names {
            let name = DnsName::new(n)?;
            if !self.names.contains(&name) {
                self.names.push(name);
            }
        }
        self.contacts = self
            .config
            .contacts
            .iter()
            .map(|c| contact_url(c))
            .collect::<Result<_, _>>()?;
        self.directory_url = Some(Url::parse(&self.config.directory, limits.max_url_len)?);
        if self.config.challenges.is_empty() {
            self.config.challenges = alloc::vec![ChallengeKind::Http01, ChallengeKind::TlsAlpn01];
        }
        let jwk = Jwk::of(&self.account_key)?;
        self.thumbprint = jwk.thumbprint();
        self.jwk = Some(jwk);
        Ok(())
    }

    /// Where the issuance is.
    pub fn phase(&self) -> Phase {
        match &self.state {
            State::Send(op) | State::AwaitResponse(op) | State::Sleep { op, .. } => {
                self.phase_of(*op)
            }
            State::Publish
            | State::AwaitPublish
            | State::Unpublish(_)
            | State::AwaitUnpublish(_) => Phase::Challenge,
            State::Finished(_) => Phase::Done,
        }
    }

    fn phase_of(&self, op: Op) -> Phase {
        match op {
            Op::Directory => Phase::Directory,
            Op::Nonce => Phase::Nonce,
            Op::NewAccount => Phase::Account,
            Op::NewOrder => Phase::Order,
            Op::FetchAuthz(_) | Op::PollAuthz(_) => Phase::Authorization,
            Op::RespondChallenge(_) => Phase::Challenge,
            Op::PollOrder if !self.finalized => Phase::Order,
            Op::PollOrder | Op::Finalize => Phase::Finalize,
            Op::DownloadCert => Phase::Certificate,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The largest response body accepted; the driver may stop reading one byte beyond.
    pub fn max_body_len(&self) -> usize {
        self.config
            .limits
            .max_json_bytes
            .max(self.config.limits.max_chain_bytes)
    }

    /// The next thing to do. `now` is the driver's current time.
    pub fn poll(&mut self, now: Now) -> Action {
        self.now = now;
        loop {
            match core::mem::replace(&mut self.state, State::Finished(None)) {
                State::Send(op) => match self.request(op) {
                    Ok(Some(req)) => {
                        self.stats.requests = self.stats.requests.saturating_add(1);
                        self.state = State::AwaitResponse(op);
                        return Action::Request(req);
                    }
                    Ok(None) => {
                        // No nonce yet: fetch one first.
                        self.after_nonce = Some(op);
                        self.state = State::Send(Op::Nonce);
                    }
                    Err(e) => self.fail(e),
                },
                s @ (State::AwaitResponse(_) | State::AwaitPublish | State::AwaitUnpublish(_)) => {
                    self.state = s;
                    return Action::Pending;
                }
                State::Sleep { until, op } => {
                    if now.monotonic >= until {
                        self.state = State::Send(op);
                    } else {
                        self.state = State::Sleep { until, op };
                        return Action::WaitUntil(until);
                    }
                }
                State::Publish => match &self.active {
                    Some(a) => {
                        let c = a.challenge.clone();
                        self.state = State::AwaitPublish;
                        return Action::Publish(c);
                    }
                    None => self.fail(Error::Usage("no challenge to publish")),
                },
                State::Unpublish(after) => match &self.active {
                    Some(a) if a.published => {
                        let c = a.challenge.clone();
                        self.state = State::AwaitUnpublish(after);
                        return Action::Unpublish(c);
                    }
                    _ => {
                        self.active = None;
                        self.after_unpublish(after);
                    }
                },
                State::Finished(Some(result)) => {
                    self.state = State::Finished(None);
                    return Action::Done(result);
                }
                State::Finished(None) => return Action::Done(Err(Error::Finished)),
            }
        }
    }

    /// Reports the response to the last [`Action::Request`].
    pub fn response(&mut self, response: HttpResponse<'_>) {
        let op = match core::mem::replace(&mut self.state, State::Finished(None)) {
            State::AwaitResponse(op) => op,
            other => {
                self.state = other;
                self.misuse("response() while no request was out");
                return;
            }
        };
        if let Some(n) = headers::replay_nonce(response.headers, self.config.limits.max_nonce_len) {
            self.nonce = Some(n);
        }
        if let Err(e) = self.handle(op, response) {
            self.fail(e);
        }
    }

    /// Reports that the last [`Action::Request`] could not be completed (DNS, TCP, TLS,
    /// timeout). Repeatable requests are retried a bounded number of times.
    pub fn transport_error(&mut self, detail: &str) {
        let op = match core::mem::replace(&mut self.state, State::Finished(None)) {
            State::AwaitResponse(op) => op,
            other => {
                self.state = other;
                self.misuse("transport_error() while no request was out");
                return;
            }
        };
        // The nonce may or may not have been consumed.
        self.nonce = None;
        let detail = sanitize(detail.as_bytes());
        if !self.retry_transient(op, None) {
            self.fail(Error::Transport {
                phase: self.phase_of(op),
                detail,
            });
        }
    }

    /// Confirms that the challenge answer of the last [`Action::Publish`] is installed.
    pub fn published(&mut self) {
        let index = match (&self.state, &mut self.active) {
            (State::AwaitPublish, Some(a)) => {
                a.published = true;
                Some(a.index)
            }
            _ => None,
        };
        match index {
            Some(i) => self.go(Op::RespondChallenge(i)),
            None => self.misuse("published() while nothing was to publish"),
        }
    }

    /// Reports that the challenge answer of the last [`Action::Publish`] could not be
    /// installed; the issuance ends with [`Error::Publish`].
    pub fn publish_failed(&mut self, detail: &str) {
        match self.state {
            State::AwaitPublish => {
                self.state = State::Finished(None);
                self.fail(Error::Publish {
                    detail: sanitize(detail.as_bytes()),
                });
            }
            _ => self.misuse("publish_failed() while nothing was to publish"),
        }
    }

    /// Confirms that the challenge answer of the last [`Action::Unpublish`] is removed.
    pub fn unpublished(&mut self) {
        match core::mem::replace(&mut self.state, State::Finished(None)) {
            State::AwaitUnpublish(after) => {
                self.active = None;
                self.after_unpublish(after);
            }
            other => {
                self.state = other;
                self.misuse("unpublished() while nothing was to unpublish");
            }
        }
    }

    // ------------------------------------------------------------ internals

    /// A call out of order ends the issuance with [`Error::Usage`] (after unpublishing),
    /// unless it is already over.
    fn misuse(&mut self, what: &'static str) {
        log::warn!("ACME client: {what}");
        if !matches!(self.state, State::Finished(_)) {
            self.fail(Error::Usage(what));
        }
    }

    /// Ends the issuance with `error`, unpublishing first if an answer is installed.
    fn fail(&mut self, error: Error) {
        match &self.active {
            Some(a) if a.published => self.state = State::Unpublish(AfterUnpublish::Fail(error)),
            _ => {
                self.active = None;
                self.state = State::Finished(Some(Err(error)));
            }
        }
    }

    fn after_unpublish(&mut self, after: AfterUnpublish) {
        match after {
            AfterUnpublish::Next(i) => self.next_authorization(i),
            AfterUnpublish::Fail(e) => self.state = State::Finished(Some(Err(e))),
        }
    }

    fn reset_counters(&mut self) {
        self.bad_nonces = 0;
        self.transient = 0;
    }

    fn go(&mut self, op: Op) {
        self.reset_counters();
        self.polls = 0;
        self.state = State::Send(op);
    }

    /// Sleeps before polling `op` again: the server's `Retry-After` or a doubling interval,
    /// clamped to [1, max_poll_interval]; fails after `max_polls`.
    fn poll_later(&mut self, op: Op, retry_after: Option<u64>) -> Result<(), Error> {
        let l = &self.config.limits;
        if self.polls >= l.max_polls {
            return Err(Error::PollLimit {
                phase: self.phase_of(op),
                limit: l.max_polls,
            });
        }
        let backoff = l.poll_interval.saturating_mul(1u64 << self.polls.min(16));
        let wait = retry_after
            .unwrap_or(backoff)
            .clamp(1, l.max_poll_interval.max(1));
        self.polls += 1;
        self.stats.polls = self.stats.polls.saturating_add(1);
        self.reset_counters();
        self.state = State::Sleep {
            until: self.now.monotonic.saturating_add(wait),
            op,
        };
        Ok(())
    }

    /// Schedules a retry of `op` after a transient failure if allowed; false when not.
    fn retry_transient(&mut self, op: Op, retry_after: Option<u64>) -> bool {
        let l = &self.config.limits;
        if !op.repeatable() || self.transient >= l.max_transient_retries {
            return false;
        }
        let wait = retry_after
            .unwrap_or(
                l.poll_interval
                    .saturating_mul(1u64 << self.transient.min(16)),
            )
            .clamp(1, l.max_poll_interval.max(1));
        self.transient += 1;
        self.stats.transient_retries = self.stats.transient_retries.saturating_add(1);
        self.state = State::Sleep {
            until: self.now.monotonic.saturating_add(wait),
            op,
        };
        true
    }

    fn dir(&self) -> Result<&Directory, Error> {
        self.directory
            .as_ref()
            .ok_or(Error::Usage("directory missing"))
    }

    fn authz_url(&self, i: usize) -> Result<&Url, Error> {
        self.order
            .as_ref()
            .and_then(|o| o.authorizations.get(i))
            .ok_or(Error::Usage("authorization index out of range"))
    }

    /// Builds the request for `op`; `None` when a nonce is needed first.
    fn request(&mut self, op: Op) -> Result<Option<HttpRequest>, Error> {
        let ua = ("User-Agent", self.config.user_agent.clone());
        let (url, payload): (Url, Option<Vec<u8>>) = match op {
            Op::Directory => {
                let url = self
                    .directory_url
                    .clone()
                    .ok_or(Error::Usage("directory URL missing"))?;
                return Ok(Some(HttpRequest {
                    method: Method::Get,
                    url,
                    headers: alloc::vec![ua],
                    body: Vec::new(),
                }));
            }
            Op::Nonce => {
                return Ok(Some(HttpRequest {
                    method: Method::Head,
                    url: self.dir()?.new_nonce.clone(),
                    headers: alloc::vec![ua],
                    body: Vec::new(),
                }));
            }
            Op::NewAccount => (
                self.dir()?.new_account.clone(),
                Some(to_json(&NewAccount {
                    terms_of_service_agreed: true,
                    contact: &self.contacts,
                })?),
            ),
            Op::NewOrder => (
                self.dir()?.new_order.clone(),
                Some(to_json(&NewOrder {
                    identifiers: self
                        .names
                        .iter()
                        .map(|n| Identifier {
                            kind: "dns",
                            value: n.as_str(),
                        })
                        .collect(),
                })?),
            ),
            Op::FetchAuthz(i) | Op::PollAuthz(i) => (self.authz_url(i)?.clone(), None),
            Op::RespondChallenge(_) => {
                let url = self
                    .active
                    .as_ref()
                    .map(|a| a.url.clone())
                    .ok_or(Error::Usage("no active challenge"))?;
                (url, Some(b"{}".to_vec()))
            }
            Op::PollOrder => (
                self.order_url
                    .clone()
                    .ok_or(Error::Usage("order URL missing"))?,
                None,
            ),
            Op::Finalize => {
                let order = self.order.as_ref().ok_or(Error::Usage("order missing"))?;
                let csr = x509::csr(&self.cert_key, &self.names)?;
                (
                    order.finalize.clone(),
                    Some(to_json(&Finalize {
                        csr: jws::b64u(&csr),
                    })?),
                )
            }
            Op::DownloadCert => (
                self.order
                    .as_ref()
                    .and_then(|o| o.certificate.clone())
                    .ok_or(Error::Usage("certificate URL missing"))?,
                None,
            ),
        };
        let Some(nonce) = self.nonce.take() else {
            return Ok(None);
        };
        let signer = match (&self.kid, &self.jwk) {
            (Some(kid), _) => Signer::Kid(kid),
            (None, Some(jwk)) => Signer::Jwk(jwk),
            (None, None) => return Err(Error::Usage("account key not set up")),
        };
        let body = jws::sign(
            &self.account_key,
            signer,
            &nonce,
            url.as_str(),
            payload.as_deref(),
        )?;
        let mut headers = alloc::vec![ua, ("Content-Type", String::from(JOSE_JSON))];
        if op == Op::DownloadCert {
            headers.push(("Accept", String::from(PEM_CHAIN)));
        }
        Ok(Some(HttpRequest {
            method: Method::Post,
            url,
            headers,
            body,
        }))
    }

    /// Handles the response to `op`.
    fn handle(&mut self, op: Op, resp: HttpResponse<'_>) -> Result<(), Error> {
        let phase = self.phase_of(op);
        let limits = &self.config.limits;
        let limit = if op == Op::DownloadCert {
            limits.max_chain_bytes
        } else {
            limits.max_json_bytes
        };
        if resp.body.len() > limit {
            return Err(Error::TooLarge { phase, limit });
        }
        let retry_after = headers::retry_after(resp.headers, self.now.unix);
        let retry_at = retry_after.map(|s| self.now.monotonic.saturating_add(s));
        if resp.status >= 400 {
            return self.handle_error(op, resp, retry_after, retry_at);
        }
        let malformed = |reason: &str| Error::Malformed {
            phase,
            reason: sanitize(reason.as_bytes()),
        };
        if !(200..300).contains(&resp.status) {
            return Err(Error::HttpStatus {
                phase,
                status: resp.status,
                retry_at,
            });
        }
        if op != Op::Nonce
            && op != Op::DownloadCert
            && let Some(ct) = headers::content_type(resp.headers)
            && ct != "application/json"
        {
            return Err(malformed(&alloc::format!(
                "expected application/json, got {ct}"
            )));
        }
        let limits = self.config.limits.clone();
        match op {
            Op::Directory => {
                let dir = objects::directory(resp.body, &limits).map_err(|r| malformed(&r))?;
                if dir.external_account_required {
                    return Err(malformed(
                        "the CA requires external account binding, which is not supported",
                    ));
                }
                if let Some(tos) = &dir.terms_of_service {
                    log::info!("ACME: agreeing to the terms of service at {tos}");
                }
                self.directory = Some(dir);
                self.go(Op::NewAccount);
            }
            Op::Nonce => {
                if self.nonce.is_none() {
                    return Err(malformed("newNonce answer without a valid Replay-Nonce"));
                }
                let next = self.after_nonce.take().unwrap_or(Op::NewAccount);
                // Keep the counters of the operation that needed the nonce.
                self.state = State::Send(next);
            }
            Op::NewAccount => {
                let url = self
                    .location(resp.headers, op)
                    .ok_or_else(|| malformed("newAccount answer without a Location"))?;
                match objects::account(resp.body).map_err(|r| malformed(&r))? {
                    Status::Valid => {}
                    Status::Deactivated => {
                        return Err(Error::AccountNotValid {
                            status: "deactivated",
                        });
                    }
                    Status::Revoked => return Err(Error::AccountNotValid { status: "revoked" }),
                    other => {
                        return Err(malformed(&alloc::format!(
                            "account in status '{}'",
                            other.as_str()
                        )));
                    }
                }
                log::info!("ACME: account {url}");
                self.kid = Some(String::from(url.as_str()));
                self.go(Op::NewOrder);
            }
            Op::NewOrder => {
                let url = self
                    .location(resp.headers, op)
                    .ok_or_else(|| malformed("newOrder answer without a Location"))?;
                let order = objects::order(resp.body, &limits).map_err(|r| malformed(&r))?;
                if order.authorizations.len() > self.names.len() {
                    return Err(malformed("order has more authorizations than names"));
                }
                self.order_url = Some(url);
                self.on_order(order, retry_after)?;
            }
            Op::PollOrder | Op::Finalize => {
                let order = objects::order(resp.body, &limits).map_err(|r| malformed(&r))?;
                if op == Op::Finalize {
                    self.finalized = true;
                    self.polls = 0;
                }
                self.on_order(order, retry_after)?;
            }
            Op::FetchAuthz(i) => {
                let authz =
                    objects::authorization(resp.body, &limits).map_err(|r| malformed(&r))?;
                self.on_authorization(i, authz)?;
            }
            Op::RespondChallenge(i) => {
                let ch = objects::challenge(resp.body, &limits).map_err(|r| malformed(&r))?;
                match ch.status {
                    Status::Invalid => {
                        return Err(self.challenge_failed(i, ch.error));
                    }
                    // Valid already: confirm on the authorization at once.
                    Status::Valid => self.go(Op::PollAuthz(i)),
                    _ => {
                        self.polls = 0;
                        self.poll_later(Op::PollAuthz(i), retry_after)?;
                    }
                }
            }
            Op::PollAuthz(i) => {
                let authz =
                    objects::authorization(resp.body, &limits).map_err(|r| malformed(&r))?;
                match authz.status {
                    Status::Valid => {
                        self.state = State::Unpublish(AfterUnpublish::Next(i + 1));
                    }
                    Status::Pending => self.poll_later(Op::PollAuthz(i), retry_after)?,
                    Status::Invalid => {
                        let kind = self.active.as_ref().map(|a| a.challenge.kind());
                        let problem = authz
                            .challenges
                            .iter()
                            .find(|c| Some(c.kind) == kind && c.error.is_some())
                            .or_else(|| authz.challenges.iter().find(|c| c.error.is_some()))
                            .and_then(|c| c.error.clone());
                        return Err(self.challenge_failed(i, problem));
                    }
                    other => {
                        return Err(Error::AuthorizationFailed {
                            name: authz.name,
                            status: other.as_str(),
                        });
                    }
                }
            }
            Op::DownloadCert => self.on_certificate(resp)?,
        }
        Ok(())
    }

    fn location(&self, headers: &Headers<'_>, op: Op) -> Option<Url> {
        let base = match op {
            Op::NewAccount => &self.dir().ok()?.new_account,
            _ => &self.dir().ok()?.new_order,
        };
        headers::location(headers, base, self.config.limits.max_url_len)
    }

    fn handle_error(
        &mut self,
        op: Op,
        resp: HttpResponse<'_>,
        retry_after: Option<u64>,
        retry_at: Option<u64>,
    ) -> Result<(), Error> {
        let phase = self.phase_of(op);
        let problem = problem::parse(resp.body);
        let kind = problem.as_ref().map(|p| &p.kind);
        if kind == Some(&ProblemType::BadNonce) {
            let limit = self.config.limits.max_bad_nonce_retries;
            if self.bad_nonces >= limit {
                return Err(Error::BadNonce { phase, limit });
            }
            self.bad_nonces += 1;
            self.stats.bad_nonce_retries = self.stats.bad_nonce_retries.saturating_add(1);
            log::debug!("ACME: badNonce while {phase}, signing again");
            // With the nonce of this answer if it carried one, else after newNonce.
            self.state = State::Send(op);
            return Ok(());
        }
        if kind == Some(&ProblemType::RateLimited) || resp.status == 429 {
            return Err(Error::RateLimited {
                phase,
                problem,
                retry_at,
            });
        }
        let server_side = resp.status >= 500 || kind == Some(&ProblemType::ServerInternal);
        if server_side && self.retry_transient(op, retry_after) {
            log::debug!("ACME: HTTP {} while {phase}, retrying", resp.status);
            return Ok(());
        }
        Err(match problem {
            Some(problem) => Error::Problem {
                phase,
                problem,
                retry_at,
            },
            None => Error::HttpStatus {
                phase,
                status: resp.status,
                retry_at,
            },
        })
    }

    fn on_order(&mut self, order: Order, retry_after: Option<u64>) -> Result<(), Error> {
        let status = order.status;
        let error = order.error.clone();
        self.order = Some(order);
        match status {
            Status::Pending if self.finalized => {
                return Err(Error::Malformed {
                    phase: Phase::Finalize,
                    reason: String::from("order went back to pending after finalize"),
                });
            }
            // Fresh order: validate its authorizations. Polled after all of them are
            // valid: the server has not caught up yet.
            Status::Pending if !self.authz_walked => self.go(Op::FetchAuthz(0)),
            Status::Pending => self.poll_later(Op::PollOrder, retry_after)?,
            Status::Ready if self.finalized => self.poll_later(Op::PollOrder, retry_after)?,
            Status::Ready => self.go(Op::Finalize),
            Status::Processing => self.poll_later(Op::PollOrder, retry_after)?,
            Status::Valid => self.go(Op::DownloadCert),
            Status::Invalid => return Err(Error::OrderFailed { problem: error }),
            other => {
                return Err(Error::Malformed {
                    phase: self.phase_of(Op::PollOrder),
                    reason: alloc::format!("order in status '{}'", other.as_str()),
                });
            }
        }
        Ok(())
    }

    fn next_authorization(&mut self, i: usize) {
        let total = self.order.as_ref().map_or(0, |o| o.authorizations.len());
        if i < total {
            self.go(Op::FetchAuthz(i));
        } else {
            self.authz_walked = true;
            // Every authorization is valid: the order should be ready.
            self.go(Op::PollOrder);
        }
    }

    fn on_authorization(&mut self, i: usize, authz: Authorization) -> Result<(), Error> {
        match authz.status {
            Status::Valid => {
                log::info!("ACME: {} already authorized", authz.name);
                self.next_authorization(i + 1);
                Ok(())
            }
            Status::Pending => self.choose_challenge(i, authz),
            Status::Invalid => Err(Error::ChallengeFailed {
                name: authz.name,
                kind: authz
                    .challenges
                    .first()
                    .map_or(ChallengeKind::Http01, |c| c.kind),
                problem: authz.challenges.iter().find_map(|c| c.error.clone()),
            }),
            other => Err(Error::AuthorizationFailed {
                name: authz.name,
                status: other.as_str(),
            }),
        }
    }

    fn choose_challenge(&mut self, i: usize, authz: Authorization) -> Result<(), Error> {
        let name = self
            .names
            .iter()
            .find(|n| n.as_str() == authz.name)
            .cloned()
            .ok_or_else(|| Error::Malformed {
                phase: Phase::Authorization,
                reason: alloc::format!("authorization for a name not ordered: {}", authz.name),
            })?;
        let chosen = self
            .config
            .challenges
            .iter()
            .find_map(|kind| authz.challenges.iter().find(|c| c.kind == *kind));
        let Some(ch) = chosen else {
            let mut offered: Vec<&str> = authz.challenges.iter().map(|c| c.kind.as_str()).collect();
            offered.extend(authz.other_types.iter().map(String::as_str));
            return Err(Error::NoUsableChallenge {
                name: authz.name,
                offered: offered.join(", "),
            });
        };
        let key_authorization = jws::key_authorization(&ch.token, &self.thumbprint);
        let challenge = match ch.kind {
            ChallengeKind::Http01 => Challenge::Http01 {
                name,
                token: ch.token.clone(),
                key_authorization,
            },
            ChallengeKind::TlsAlpn01 => Challenge::TlsAlpn01 {
                certificate: x509::tls_alpn_certificate(
                    &self.cert_key,
                    &name,
                    &key_authorization,
                    self.now.unix,
                )?,
                private_key: self.cert_key.pkcs8_der().to_vec(),
                name,
            },
        };
        log::info!("ACME: answering {} for {}", ch.kind, authz.name);
        self.active = Some(Active {
            index: i,
            challenge,
            url: ch.url.clone(),
            published: false,
        });
        self.state = State::Publish;
        Ok(())
    }

    fn challenge_failed(&self, i: usize, problem: Option<Problem>) -> Error {
        let (name, kind) = match &self.active {
            Some(a) if a.index == i => (
                String::from(a.challenge.name().as_str()),
                a.challenge.kind(),
            ),
            _ => (
                self.names
                    .get(i)
                    .map_or_else(String::new, |n| String::from(n.as_str())),
                ChallengeKind::Http01,
            ),
        };
        Error::ChallengeFailed {
            name,
            kind,
            problem,
        }
    }

    fn on_certificate(&mut self, resp: HttpResponse<'_>) -> Result<(), Error> {
        if let Some(ct) = headers::content_type(resp.headers)
            && ct != PEM_CHAIN
        {
            return Err(Error::Malformed {
                phase: Phase::Certificate,
                reason: sanitize(alloc::format!("expected {PEM_CHAIN}, got {ct}").as_bytes()),
            });
        }
        let limits = &self.config.limits;
        let chain = cert::parse_chain_pem(resp.body, limits.max_chain_certs)?;
        let info = cert::check_issued(
            &chain,
            self.cert_key.public_key(),
            &self.names,
            self.now.unix,
        )?;
        let base = self
            .order
            .as_ref()
            .and_then(|o| o.certificate.clone())
            .ok_or(Error::Usage("certificate URL missing"))?;
        let alternate_chains = headers::links(
            resp.headers,
            "alternate",
            &base,
            limits.max_url_len,
            MAX_ALTERNATES,
        )
        .into_iter()
        .map(|u| String::from(u.as_str()))
        .collect();
        log::info!(
            "ACME: certificate issued by {} valid until {} (unix)",
            info.issuer,
            info.not_after
        );
        self.state = State::Finished(Some(Ok(Issued {
            chain,
            private_key: self.cert_key.pkcs8_der().to_vec(),
            info,
            account_url: self.kid.clone().unwrap_or_default(),
            order_url: self
                .order_url
                .as_ref()
                .map_or_else(String::new, |u| String::from(u.as_str())),
            alternate_chains,
            stats: self.stats,
        })));
        Ok(())
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|_| Error::Key {
        reason: "could not serialize a request payload",
    })
}
