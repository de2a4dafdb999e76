//! The sans-IO issuance state machine: directory → nonce → account → order → for each
//! authorization: publish a challenge answer, trigger it, poll, unpublish → finalize with a
//! CSR → poll the order → download the chain.
//!
//! - here: the [`Client`], its public driving API and the bookkeeping between requests;
//! - `exchange.rs`: each request built, and each answer read;
//! - `types.rs`: what the driver passes in and gets out ([`Action`], [`HttpRequest`],
//!   [`HttpResponse`], [`Issued`], …).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;

use crate::challenge::{Challenge, ChallengeKind};
use crate::error::{Error, sanitize};
use crate::headers::{self};
use crate::jws::Jwk;
use crate::key::{AccountKey, CertificateKey};
use crate::name::{DnsName, contact_url};
use crate::objects::{Directory, Order};
use crate::url::Url;

mod exchange;
mod types;

pub use types::{Action, Config, HttpRequest, HttpResponse, Issued, Method, Now, Phase, Stats};

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
/// Anti-replay nonces, `badNonce` retries (bounded by [`Limits::max_bad_nonce_retries`](crate::limits::Limits::max_bad_nonce_retries)),
/// retries of repeatable requests after transport failures or 5xx answers
/// ([`Limits::max_transient_retries`](crate::limits::Limits::max_transient_retries)), `Retry-After` and polling intervals are handled
/// inside. Every response is untrusted: its body is size-checked against [`Limits`](crate::limits::Limits)
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
}
