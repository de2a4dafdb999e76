//! Each request of the protocol built ([`Client::request`]), and each answer read
//! ([`Client::handle`]): the state changes the RFC 8555 resources call for.

use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

use crate::cert::{self};
use crate::challenge::{Challenge, ChallengeKind};
use crate::error::{Error, sanitize};
use crate::headers::{self, Headers};
use crate::jws::{self, Signer};
use crate::objects::{self, Authorization, Order, Status};
use crate::problem::{self, Problem, ProblemType};
use crate::url::Url;
use crate::x509;

use super::{
    Active, AfterUnpublish, Client, Finalize, HttpRequest, HttpResponse, Identifier, Issued,
    JOSE_JSON, MAX_ALTERNATES, Method, NewAccount, NewOrder, Op, PEM_CHAIN, Phase, State,
};

impl Client {
    /// Builds the request for `op`; `None` when a nonce is needed first.
    pub(super) fn request(&mut self, op: Op) -> Result<Option<HttpRequest>, Error> {
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
    pub(super) fn handle(&mut self, op: Op, resp: HttpResponse<'_>) -> Result<(), Error> {
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

    pub(super) fn next_authorization(&mut self, i: usize) {
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
