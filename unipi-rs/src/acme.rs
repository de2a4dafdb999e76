//! Certificates that provision and renew themselves: drives the sans-IO
//! ACME client ([`unipi_acme::Client`]) over [`Dial`]ed HTTPS connections
//! and puts what it issues into the [`CertStore`] the HTTPS port serves
//! from — new handshakes get the new certificate, established connections
//! keep theirs, so neither issuance nor renewal costs an outage.
//!
//! - At boot the certificate of the `tls_cert` region (if any) is served at
//!   once. If it covers every name and is not due for renewal, the first
//!   issuance waits until it is due; otherwise it starts right away.
//!   Without one, HTTPS handshakes fail until a certificate exists.
//! - Challenges: HTTP-01 answers are published in [`Http01`] (served on
//!   any port, before the redirect to HTTPS); TLS-ALPN-01 validation
//!   certificates in the [`CertStore`] (for handshakes offering
//!   `acme-tls/1` only).
//! - Renewal at two thirds of the lifetime (`--acme-renew-after` for a
//!   fixed delay); after a failure, `Backoff`: 5 min doubling to a day,
//!   never before the server's `Retry-After`. The certificate being served
//!   stays meanwhile; the log says what failed and when the next try is.
//! - A warning once a day when the served certificate has less than 30
//!   days left, whatever its source (the in-unikernel form of the
//!   operators' `openssl x509 -checkend 2592000`).
//!
//! Each request is one TCP+TLS connection (`Connection: close`); ACME
//! needs a dozen per issuance, at most once a day.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use log::{info, warn};
use rustls::ClientConfig;
use smoltcp::iface::SocketHandle;
use smoltcp::time::{Duration, Instant};
use unipi_acme::{
    AccountKey, Action, Backoff, CertificateKey, Challenge, ChallengeKind, Client, HttpRequest,
    HttpResponse, KeyAlgorithm, Method, Now,
};
use unipi_httpwire::{ResponseEvent, ResponseLimits, ResponseReader};

use crate::config::Config;
use crate::http::Http01;
use crate::net::Net;
use crate::platform::Platform;
use crate::tls::certs::certified_key_der;
use crate::tls::{CertStore, LoopClock, Served, client_config, web_pki_client_config};
use crate::transport::{Dial, DialStatus, Security, Target};

/// One request (connect, TLS, answer) may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Warn when the served certificate has less than this left.
const EXPIRY_WARNING: u64 = 30 * 24 * 3600;
/// TCP buffers of the client socket.
const RX_BUFFER: usize = 16 * 1024;
const TX_BUFFER: usize = 8 * 1024;
/// Client steps per event-loop iteration.
const STEPS_PER_POLL: usize = 32;

/// What the manager is doing.
enum State {
    /// The next issuance starts at `at`.
    Waiting { at: Instant },
    /// An issuance runs.
    Running(Box<Issuance>),
}

struct Issuance {
    client: Client,
    exchange: Option<Exchange>,
    /// The client asked to be polled again at this time.
    wait_until: Option<Instant>,
}

/// One HTTPS request and its response.
struct Exchange {
    dial: Dial,
    request: Vec<u8>,
    sent: usize,
    reader: ResponseReader,
    body: Vec<u8>,
    max_body: usize,
    started: Instant,
}

/// How an [`Exchange`] ended.
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// See the module documentation.
pub struct CertManager {
    config: unipi_acme::Config,
    account_seed: Option<Vec<u8>>,
    cert_seed: Option<Vec<u8>>,
    renew_after: Option<u64>,
    tls: Arc<ClientConfig>,
    certs: Arc<CertStore>,
    http01: Http01,
    socket: Option<SocketHandle>,
    state: State,
    /// Unix time the first issuance is due when the certificate of the
    /// regions can be kept until then.
    first_due: Option<u64>,
    backoff: Backoff,
}

impl CertManager {
    /// A manager for the ACME settings of `cfg`, or `None` when ACME is
    /// off. It serves through `certs` and `http01`.
    pub fn new<P: Platform>(
        cfg: &Config,
        p: &P,
        clock: Arc<LoopClock>,
        certs: Arc<CertStore>,
        http01: Http01,
    ) -> Result<Option<CertManager>, String> {
        let a = &cfg.acme;
        if !a.enabled {
            return Ok(None);
        }
        let Some(hostname) = &cfg.hostname else {
            return Err(String::from(
                "--tls needs --hostname: the name the certificate is for",
            ));
        };
        let directory = match (&a.directory, a.production) {
            (Some(d), _) => d.clone(),
            (None, true) => String::from(unipi_acme::LETS_ENCRYPT_PRODUCTION),
            (None, false) => String::from(unipi_acme::LETS_ENCRYPT_STAGING),
        };
        let mut config = unipi_acme::Config::new(&directory, hostname);
        config.names.extend(a.extra_names.iter().cloned());
        config.contacts = a.emails.clone();
        if a.tls_alpn {
            config.challenges = vec![ChallengeKind::TlsAlpn01, ChallengeKind::Http01];
        }
        let tls = match p.region(&a.ca_region) {
            Some(pem) => {
                info!(
                    "acme: trusting the CA certificates of the '{}' region for {directory}",
                    a.ca_region
                );
                client_config(pem, clock)
                    .map_err(|e| format!("--acme-ca '{}': {e}", a.ca_region))?
            }
            None => web_pki_client_config(clock).map_err(|e| format!("TLS client: {e}"))?,
        };
        info!(
            "acme: certificates for {} from {directory}",
            config.names.join(", ")
        );
        // A certificate in the regions that covers every name and is not
        // due yet defers the first issuance: reboots do not re-issue (and
        // run into the CA's duplicate-certificate limits).
        let due = certs
            .served()
            .filter(|s| s.covers(&config.names))
            .map(|s| match a.renew_after {
                Some(after) => s.not_before.saturating_add(after),
                None => s.renew_at(),
            });
        if let Some(due) = due {
            info!(
                "acme: the certificate of the regions covers {}; renewal {}",
                config.names.join(", "),
                crate::http::date::Display(due)
            );
        }
        let mut backoff = Backoff::default();
        backoff.first = a.retry_first;
        Ok(Some(CertManager {
            config,
            account_seed: a.account_seed.clone(),
            cert_seed: a.cert_seed.clone(),
            renew_after: a.renew_after,
            tls,
            certs,
            http01,
            socket: None,
            state: State::Waiting { at: Instant::ZERO },
            first_due: due,
            backoff,
        }))
    }

    /// When the manager needs to run again without network input.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Waiting { at } => Some(*at),
            State::Running(i) => {
                let request = i.exchange.as_ref().map(|e| e.started + REQUEST_TIMEOUT);
                [request, i.wait_until].into_iter().flatten().min()
            }
        }
    }

    /// Runs the issuance as far as the network allows.
    pub fn poll(&mut self, net: &mut Net, now: Instant, unix: u64) {
        if let State::Waiting { at } = self.state {
            if now < at {
                return;
            }
            if let Some(due) = self.first_due.take() {
                if unix < due {
                    self.state = State::Waiting {
                        at: now + Duration::from_secs(due - unix),
                    };
                    return;
                }
            }
            match self.start(net) {
                Ok(issuance) => self.state = State::Running(issuance),
                Err(e) => {
                    warn!("acme: cannot start: {e}; next try in 1 day");
                    self.state = State::Waiting {
                        at: now + Duration::from_secs(86_400),
                    };
                    return;
                }
            }
        }
        let Some(socket) = self.socket else { return };
        for _ in 0..STEPS_PER_POLL {
            let State::Running(issuance) = &mut self.state else {
                return;
            };
            if let Some(exchange) = &mut issuance.exchange {
                match exchange.step(net, now) {
                    None => return,
                    Some(result) => {
                        issuance.exchange = None;
                        net.tcp(socket).abort();
                        match result {
                            Ok(a) => {
                                let headers: Vec<(&str, &[u8])> = a
                                    .headers
                                    .iter()
                                    .map(|(n, v)| (n.as_str(), v.as_slice()))
                                    .collect();
                                issuance.client.response(HttpResponse {
                                    status: a.status,
                                    headers: &headers,
                                    body: &a.body,
                                });
                            }
                            Err(e) => issuance.client.transport_error(&e),
                        }
                    }
                }
                continue;
            }
            if let Some(t) = issuance.wait_until {
                if now < t {
                    return;
                }
                issuance.wait_until = None;
            }
            let at = Now {
                monotonic: secs(now),
                unix,
            };
            match issuance.client.poll(at) {
                Action::Request(req) => {
                    let max_body = issuance.client.max_body_len();
                    match Exchange::start(net, socket, &self.tls, &req, max_body, now) {
                        Ok(e) => issuance.exchange = Some(e),
                        Err(e) => issuance.client.transport_error(&e),
                    }
                }
                Action::Publish(challenge) => {
                    match publish(&self.certs, &self.http01, &challenge) {
                        Ok(()) => issuance.client.published(),
                        Err(e) => issuance.client.publish_failed(&e),
                    }
                }
                Action::Unpublish(challenge) => {
                    unpublish(&self.certs, &self.http01, &challenge);
                    issuance.client.unpublished();
                }
                Action::WaitUntil(t) => {
                    issuance.wait_until = Some(Instant::from_secs(t as i64));
                    return;
                }
                Action::Pending => return,
                Action::Done(result) => {
                    self.finish(result, now, unix);
                    return;
                }
            }
        }
    }

    fn start(&mut self, net: &mut Net) -> Result<Box<Issuance>, String> {
        if self.socket.is_none() {
            self.socket = Some(net.add_tcp(vec![0; RX_BUFFER], vec![0; TX_BUFFER]));
        }
        // Without --account-seed, one random account for this boot: every
        // renewal finds it again (by its key) instead of registering anew.
        if self.account_seed.is_none() {
            self.account_seed = Some(random_seed()?.to_vec());
        }
        let seed = self.account_seed.as_deref().unwrap_or_default();
        let account = AccountKey::from_seed(seed).map_err(|e| format!("account key: {e}"))?;
        let cert = match &self.cert_seed {
            Some(seed) => CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, seed),
            None => CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, &random_seed()?),
        }
        .map_err(|e| format!("certificate key: {e}"))?;
        info!(
            "acme: requesting a certificate for {}",
            self.config.names.join(", ")
        );
        Ok(Box::new(Issuance {
            client: Client::new(self.config.clone(), account, cert),
            exchange: None,
            wait_until: None,
        }))
    }

    fn finish(
        &mut self,
        result: Result<unipi_acme::Issued, unipi_acme::Error>,
        now: Instant,
        unix: u64,
    ) {
        let next = match result {
            Ok(issued) => match certified_key_der(&issued.chain, &issued.private_key) {
                Ok(key) => {
                    let info = &issued.info;
                    self.certs.set(key, Served::new(info, "ACME"));
                    self.backoff.reset();
                    let renew_unix = match self.renew_after {
                        Some(s) => unix + s,
                        None => issued.renew_at(),
                    };
                    info!(
                        "acme: serving the new certificate for {} from {}, valid until {}; renewal {}",
                        info.names.join(", "),
                        info.issuer,
                        crate::http::date::Display(info.not_after),
                        crate::http::date::Display(renew_unix)
                    );
                    Duration::from_secs(renew_unix.saturating_sub(unix))
                }
                Err(e) => {
                    warn!("acme: the issued certificate cannot be served: {e}; next try in 1 hour");
                    Duration::from_secs(3600)
                }
            },
            Err(e) => {
                let at = self.backoff.next_attempt(&e, secs(now));
                let wait = at.saturating_sub(secs(now));
                warn!("acme: {e}; keeping the certificate being served; next try in {wait} s");
                Duration::from_secs(wait)
            }
        };
        self.state = State::Waiting { at: now + next };
    }

    /// Logs a warning (once a day) when the served certificate has less
    /// than 30 days left.
    pub fn check_expiry(certs: &CertStore, warned_day: &mut u64, unix: u64) {
        let Some(served) = certs.served() else { return };
        let day = unix / 86_400;
        if served.not_after == 0 || *warned_day == day {
            return;
        }
        if served.not_after.saturating_sub(unix) < EXPIRY_WARNING {
            *warned_day = day;
            warn!(
                "certificate for {} (from {}) expires {}: {} days left",
                served.subject,
                served.source,
                crate::http::date::Display(served.not_after),
                served.not_after.saturating_sub(unix) / 86_400
            );
        }
    }
}

/// Monotonic seconds, as the ACME client counts them.
fn secs(t: Instant) -> u64 {
    t.secs().max(0) as u64
}

/// 32 bytes from the entropy source, for keys without a seed.
fn random_seed() -> Result<[u8; 32], String> {
    use ring::rand::SecureRandom;
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| String::from("no entropy for a key"))?;
    Ok(seed)
}

fn publish(certs: &CertStore, http01: &Http01, challenge: &Challenge) -> Result<(), String> {
    match challenge {
        Challenge::Http01 {
            token,
            key_authorization,
            ..
        } => {
            http01.publish(token, key_authorization);
            Ok(())
        }
        Challenge::TlsAlpn01 {
            name,
            certificate,
            private_key,
            ..
        } => {
            let key = certified_key_der(core::slice::from_ref(certificate), private_key)
                .map_err(|e| e.to_string())?;
            certs.publish(name.as_str(), key);
            Ok(())
        }
    }
}

fn unpublish(certs: &CertStore, http01: &Http01, challenge: &Challenge) {
    match challenge {
        Challenge::Http01 { token, .. } => http01.unpublish(token),
        Challenge::TlsAlpn01 { name, .. } => certs.unpublish(name.as_str()),
    }
}

impl Exchange {
    fn start(
        net: &mut Net,
        socket: SocketHandle,
        tls: &Arc<ClientConfig>,
        req: &HttpRequest,
        max_body: usize,
        now: Instant,
    ) -> Result<Exchange, String> {
        let url = &req.url;
        let method = match req.method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
        };
        let mut headers: Vec<(&str, &str)> =
            req.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        headers.push(("Connection", "close"));
        let mut request = Vec::new();
        unipi_httpwire::Request {
            method,
            target: url.path_and_query(),
            host: url.host_header(),
            headers: &headers,
            body: (req.method == Method::Post).then_some(req.body.as_slice()),
        }
        .write(&mut request)
        .map_err(|e| e.to_string())?;
        let target = Target {
            host: url.host().into(),
            port: url.port(),
            security: Security::Tls(tls.clone()),
        };
        let dial = Dial::start(net, socket, target).map_err(|e| e.to_string())?;
        let limits = ResponseLimits::default();
        let reader = if req.method == Method::Head {
            ResponseReader::for_head_request(limits)
        } else {
            ResponseReader::new(limits)
        };
        Ok(Exchange {
            dial,
            request,
            sent: 0,
            reader,
            body: Vec::new(),
            max_body,
            started: now,
        })
    }

    /// `None` while the answer is incomplete.
    fn step(&mut self, net: &mut Net, now: Instant) -> Option<Result<Answer, String>> {
        if now >= self.started + REQUEST_TIMEOUT {
            return Some(Err(format!(
                "no answer from {} within 30 s",
                self.dial.host()
            )));
        }
        match self.dial.poll(net) {
            Ok(DialStatus::Pending) => return None,
            Ok(DialStatus::Open) => {}
            Err(e) => return Some(Err(e.to_string())),
        }
        let stream = self.dial.stream()?;
        while self.sent < self.request.len() {
            match stream.write(net, &self.request[self.sent..]) {
                Ok(0) => break,
                Ok(n) => self.sent += n,
                Err(e) => return Some(Err(e.to_string())),
            }
        }
        if let Err(e) = stream.exchange(net) {
            return Some(Err(e.to_string()));
        }
        let (reader, body, max_body) = (&mut self.reader, &mut self.body, self.max_body);
        let mut failure: Option<String> = None;
        stream.read(net, |bytes| {
            let mut input = bytes;
            while !input.is_empty() && failure.is_none() && !reader.is_complete() {
                match reader.feed(&mut input) {
                    Ok(ResponseEvent::Body(b)) => {
                        if body.len() + b.len() > max_body {
                            failure = Some(format!("answer larger than {max_body} bytes"));
                        } else {
                            body.extend_from_slice(b);
                        }
                    }
                    Ok(ResponseEvent::NeedMore) => break,
                    Ok(_) => {}
                    Err(e) => failure = Some(e.to_string()),
                }
            }
            bytes.len() - input.len()
        });
        if let Some(e) = failure {
            return Some(Err(e));
        }
        if !self.reader.is_complete() && stream.peer_done(net) {
            if let Err(e) = self.reader.peer_closed() {
                return Some(Err(e.to_string()));
            }
        }
        if !self.reader.is_complete() {
            return None;
        }
        let head = self.reader.head()?;
        let headers = head
            .headers()
            .filter_map(|(n, v)| Some((String::from(core::str::from_utf8(n).ok()?), v.to_vec())))
            .collect();
        Some(Ok(Answer {
            status: head.status(),
            headers,
            body: core::mem::take(&mut self.body),
        }))
    }
}
