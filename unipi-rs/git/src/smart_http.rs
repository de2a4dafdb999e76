//! The smart HTTP transport (gitprotocol-http): `GET info/refs`, then one `POST
//! git-upload-pack` per request of the conversation, on one keep-alive connection when the
//! server allows it.
//!
//! One exchange (request and response) is in flight at a time; [`Exchange`] says where it
//! is, and each state carries exactly what is valid in it. Besides the protocol this layer
//! owns two recoveries: a request sent on a reused connection that the server closed before
//! answering is sent once more on a new one (servers drop idle keep-alive connections), and
//! redirects of the first request are followed within the same host (see
//! [`redirect_target`]). HTTP framing is `unipi_httpwire`'s.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use unipi_httpwire::{
    BodyLimits, Request, ResponseEvent, ResponseLimits, ResponseReader, basic_authorization,
};

use crate::credentials::redact_credentials;
use crate::error::{Error, sanitize};
use crate::fetch::{FetchOptions, Outcome, ProtocolChoice};
use crate::protocol::ProtocolVersion;
use crate::session::{Reaction, Session};
use crate::url::{Scheme, Url};

const ADVERTISEMENT_TYPE: &str = "application/x-git-upload-pack-advertisement";
const RESULT_TYPE: &str = "application/x-git-upload-pack-result";
const REQUEST_TYPE: &str = "application/x-git-upload-pack-request";
const INFO_REFS: &str = "/info/refs?service=git-upload-pack";

/// Which of the two requests of the smart protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestKind {
    /// `GET …/info/refs?service=git-upload-pack`: the advertisement.
    InfoRefs,
    /// `POST …/git-upload-pack`: a command of the conversation.
    UploadPack,
}

/// A serialised request, kept until its response is complete (it may have to be resent).
#[derive(Clone)]
struct HttpRequest {
    kind: RequestKind,
    /// The request target, for error messages.
    target: String,
    /// Whether it carries the `Authorization` field.
    authorized: bool,
    bytes: Vec<u8>,
}

impl fmt::Debug for HttpRequest {
    /// Without the bytes: they may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("kind", &self.kind)
            .field("target", &self.target)
            .field("authorized", &self.authorized)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// HTTP Basic credentials and the origin they are sent to.
struct Auth {
    /// The remote they were given for, with them (it prints them as `user:***`).
    url: Url,
    /// The `Authorization` field value: a secret.
    header: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").field("url", &self.url).finish()
    }
}

/// Whether the connection a request went out on had carried an exchange before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnectionUse {
    /// A new connection: if it closes before the response, the fetch fails.
    Fresh,
    /// A kept-alive connection: if it closes before any response byte, the server had
    /// dropped it while idle and the request is sent again on a new connection.
    Reused,
}

/// Where the exchange in flight is.
#[derive(Debug)]
enum Exchange {
    /// The request is out (or going out); no byte of the response yet.
    Awaiting {
        request: HttpRequest,
        connection: ConnectionUse,
    },
    /// The response is arriving; its protocol answer is not complete yet.
    Receiving {
        request: HttpRequest,
        response: ResponseReader,
    },
    /// The protocol answer is complete; the rest of the body is read to its end, then
    /// `next` is sent.
    Draining {
        request: HttpRequest,
        response: ResponseReader,
        next: HttpRequest,
    },
    /// Nothing in flight (after the last answer).
    Idle,
}

/// What the fetch has to do after the transport handled an input.
#[derive(Debug)]
pub(crate) enum HttpAction {
    /// Nothing: wait for more bytes.
    Continue,
    /// Send `bytes`; on a new connection (closing the current one) if `new_connection`.
    Send {
        bytes: Vec<u8>,
        new_connection: bool,
    },
    /// The fetch is over.
    Finish(Outcome),
    /// The incremental fetch failed (`why`); start over with a full one.
    StartOverFull { why: Error },
}

/// The smart HTTP side of a fetch.
#[derive(Debug)]
pub(crate) struct SmartHttp {
    /// The remote, updated by redirects (without credentials).
    url: Url,
    auth: Option<Auth>,
    agent: String,
    ask_v2: bool,
    response_limits: ResponseLimits,
    max_redirects: u32,
    redirects: u32,
    exchange: Exchange,
}

impl SmartHttp {
    /// The transport for `url`; returns it with the first request (`GET info/refs`) to send.
    pub fn start(
        url: Url,
        agent: String,
        opts: &FetchOptions,
    ) -> Result<(SmartHttp, Vec<u8>), Error> {
        let limits = &opts.limits;
        let credentials = opts
            .credentials
            .clone()
            .or_else(|| url.credentials().cloned());
        let url = url.with_credentials(None);
        let auth = match credentials {
            Some(c) => {
                let header = basic_authorization(c.user(), c.secret()).map_err(|_| {
                    Error::InvalidCredentials {
                        reason: "not usable for HTTP Basic authentication",
                    }
                })?;
                let auth = Auth {
                    url: url.clone().with_credentials(Some(c)),
                    header,
                };
                if url.scheme() == Scheme::Http {
                    log::warn!("git: credentials for {} are sent without TLS", auth.url);
                }
                Some(auth)
            }
            None => None,
        };
        let mut http = SmartHttp {
            url,
            auth,
            agent,
            ask_v2: opts.protocol != ProtocolChoice::V0,
            response_limits: ResponseLimits {
                max_head_bytes: limits.max_http_header_bytes,
                body: BodyLimits {
                    max_content_bytes: limits.max_received_bytes,
                    ..BodyLimits::default()
                },
                ..ResponseLimits::default()
            },
            max_redirects: limits.max_redirects,
            redirects: 0,
            exchange: Exchange::Idle,
        };
        let request = http.info_refs_request()?;
        let bytes = request.bytes.clone();
        http.exchange = Exchange::Awaiting {
            request,
            connection: ConnectionUse::Fresh,
        };
        Ok((http, bytes))
    }

    /// The remote after redirects.
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn repo_base(&self) -> &str {
        match self.url.path() {
            "/" => "",
            p => p,
        }
    }

    fn info_refs_request(&self) -> Result<HttpRequest, Error> {
        let target = alloc::format!("{}{}", self.repo_base(), INFO_REFS);
        let mut headers: Vec<(&str, &str)> = alloc::vec![
            ("User-Agent", self.agent.as_str()),
            ("Accept", "*/*"),
            ("Pragma", "no-cache"),
        ];
        if self.ask_v2 {
            headers.push(("Git-Protocol", "version=2"));
        }
        self.request(RequestKind::InfoRefs, "GET", target, &headers, None)
    }

    fn upload_pack_request(&self, body: &[u8], v2: bool) -> Result<HttpRequest, Error> {
        let target = alloc::format!("{}/git-upload-pack", self.repo_base());
        let mut headers: Vec<(&str, &str)> = alloc::vec![
            ("User-Agent", self.agent.as_str()),
            ("Content-Type", REQUEST_TYPE),
            ("Accept", RESULT_TYPE),
        ];
        if v2 {
            headers.push(("Git-Protocol", "version=2"));
        }
        self.request(
            RequestKind::UploadPack,
            "POST",
            target,
            &headers,
            Some(body),
        )
    }

    fn request(
        &self,
        kind: RequestKind,
        method: &str,
        target: String,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpRequest, Error> {
        let mut fields = headers.to_vec();
        let auth = self.auth.as_ref().filter(|a| a.url.same_origin(&self.url));
        if let Some(auth) = auth {
            fields.push(("Authorization", &auth.header));
        }
        let mut bytes = Vec::new();
        Request {
            method,
            target: &target,
            host: &self.url.host_header(),
            headers: &fields,
            body,
        }
        .write(&mut bytes)
        .map_err(|_| Error::Usage("HTTP request parts failed validation"))?;
        Ok(HttpRequest {
            kind,
            target,
            authorized: auth.is_some(),
            bytes,
        })
    }

    /// Bytes of the response arrived; body bytes go to `session`.
    pub fn received(
        &mut self,
        mut data: &[u8],
        session: &mut Session,
    ) -> Result<HttpAction, Error> {
        loop {
            let exchange = core::mem::replace(&mut self.exchange, Exchange::Idle);
            self.exchange = match exchange {
                Exchange::Idle if data.is_empty() => return Ok(HttpAction::Continue),
                Exchange::Idle => {
                    return Err(Error::Protocol(
                        "HTTP server sent data without a request".into(),
                    ));
                }
                Exchange::Awaiting { request, .. } if !data.is_empty() => Exchange::Receiving {
                    request,
                    response: ResponseReader::new(self.response_limits),
                },
                e @ Exchange::Awaiting { .. } => {
                    self.exchange = e;
                    return Ok(HttpAction::Continue);
                }
                Exchange::Receiving {
                    request,
                    mut response,
                } => match response.feed(&mut data)? {
                    ResponseEvent::NeedMore => {
                        self.exchange = Exchange::Receiving { request, response };
                        return Ok(HttpAction::Continue);
                    }
                    ResponseEvent::Head => {
                        if let Some(action) = self.on_head(&request, &response, session)? {
                            return Ok(action);
                        }
                        Exchange::Receiving { request, response }
                    }
                    ResponseEvent::Body(body) => match session.on_bytes(body)? {
                        None => Exchange::Receiving { request, response },
                        Some(Reaction::Finish(outcome)) => return Ok(HttpAction::Finish(outcome)),
                        Some(Reaction::StartOverFull { why }) => {
                            return Ok(HttpAction::StartOverFull { why });
                        }
                        Some(Reaction::Send(body)) => {
                            let v2 = session.protocol() == Some(ProtocolVersion::V2);
                            let next = self.upload_pack_request(&body, v2)?;
                            Exchange::Draining {
                                request,
                                response,
                                next,
                            }
                        }
                    },
                    ResponseEvent::End => {
                        return Err(ended_early(&request, session));
                    }
                },
                Exchange::Draining {
                    request,
                    mut response,
                    next,
                } => match response.feed(&mut data)? {
                    ResponseEvent::NeedMore => {
                        self.exchange = Exchange::Draining {
                            request,
                            response,
                            next,
                        };
                        return Ok(HttpAction::Continue);
                    }
                    ResponseEvent::Head => {
                        return Err(Error::Usage("second response head in one exchange"));
                    }
                    ResponseEvent::Body(body) => match session.on_bytes(body)? {
                        None => Exchange::Draining {
                            request,
                            response,
                            next,
                        },
                        Some(_) => {
                            return Err(Error::Protocol(
                                "remote answered a request the client had not sent".into(),
                            ));
                        }
                    },
                    ResponseEvent::End => {
                        if !data.is_empty() {
                            return Err(Error::Http(unipi_httpwire::ResponseError::DataAfterEnd));
                        }
                        let keep_alive = response.head().is_some_and(|h| h.keep_alive());
                        return self.send_next(&request, next, keep_alive, session);
                    }
                },
            };
        }
    }

    /// The response to `request` is complete and its answer was `next`: sends it, on the same
    /// connection if it may be kept alive.
    fn send_next(
        &mut self,
        request: &HttpRequest,
        next: HttpRequest,
        keep_alive: bool,
        session: &mut Session,
    ) -> Result<HttpAction, Error> {
        if session.has_partial_packet() {
            return Err(ended_early(request, session));
        }
        let bytes = next.bytes.clone();
        self.exchange = Exchange::Awaiting {
            request: next,
            connection: if keep_alive {
                ConnectionUse::Reused
            } else {
                ConnectionUse::Fresh
            },
        };
        Ok(HttpAction::Send {
            bytes,
            new_connection: !keep_alive,
        })
    }

    /// The server closed the connection.
    pub fn peer_closed(&mut self, session: &mut Session) -> Result<HttpAction, Error> {
        let closed = Error::ConnectionClosed {
            phase: session.phase(),
        };
        match core::mem::replace(&mut self.exchange, Exchange::Idle) {
            Exchange::Awaiting {
                request,
                connection: ConnectionUse::Reused,
            } => {
                // The server dropped an idle keep-alive connection: send again on a new one.
                log::debug!("keep-alive connection closed by the server; retrying");
                let bytes = request.bytes.clone();
                self.exchange = Exchange::Awaiting {
                    request,
                    connection: ConnectionUse::Fresh,
                };
                Ok(HttpAction::Send {
                    bytes,
                    new_connection: true,
                })
            }
            Exchange::Awaiting { .. } | Exchange::Idle => Err(closed),
            Exchange::Receiving {
                request,
                mut response,
            } => match response.peer_closed() {
                Ok(()) => Err(ended_early(&request, session)),
                Err(_) => Err(closed),
            },
            Exchange::Draining {
                request,
                mut response,
                next,
            } => match response.peer_closed() {
                Ok(()) => self.send_next(&request, next, false, session),
                Err(_) => Err(closed),
            },
        }
    }

    /// Checks a response head. `Some(action)` when the rest of the response is to be
    /// ignored (a redirect was followed).
    fn on_head(
        &mut self,
        request: &HttpRequest,
        response: &ResponseReader,
        session: &mut Session,
    ) -> Result<Option<HttpAction>, Error> {
        let Some(head) = response.head() else {
            return Err(Error::Usage("no response head"));
        };
        match head.status() {
            200 => {
                let expected = match request.kind {
                    RequestKind::InfoRefs => ADVERTISEMENT_TYPE,
                    RequestKind::UploadPack => RESULT_TYPE,
                };
                let media = head.media_type().unwrap_or_default();
                if !media.eq_ignore_ascii_case(expected.as_bytes()) {
                    return Err(Error::HttpContentType {
                        got: sanitize(head.header("content-type").unwrap_or_default()),
                        expected,
                        path: sanitize(request.target.as_bytes()),
                    });
                }
                session.answer_start();
                Ok(None)
            }
            301 | 302 | 303 | 307 | 308 => {
                let location = String::from_utf8_lossy(head.header("location").unwrap_or_default());
                if request.kind != RequestKind::InfoRefs {
                    return Err(Error::RedirectRefused {
                        location: sanitize(location.as_bytes()),
                        reason: "redirects are only followed for the first request",
                    });
                }
                self.redirects += 1;
                if self.redirects > self.max_redirects {
                    return Err(Error::TooManyRedirects {
                        limit: self.max_redirects,
                    });
                }
                self.url = redirect_target(&self.url, &location)?;
                log::info!("git remote redirected to {}", self.url);
                if let Some(auth) = self.auth.as_ref().filter(|a| !a.url.same_origin(&self.url)) {
                    log::warn!(
                        "git: the credentials for {} are not sent to {}, another origin",
                        auth.url,
                        self.url
                    );
                }
                let request = self.info_refs_request()?;
                let bytes = request.bytes.clone();
                self.exchange = Exchange::Awaiting {
                    request,
                    connection: ConnectionUse::Fresh,
                };
                session.answer_start();
                Ok(Some(HttpAction::Send {
                    bytes,
                    new_connection: true,
                }))
            }
            status @ (401 | 403) if request.authorized => Err(Error::AuthenticationFailed {
                url: self
                    .auth
                    .as_ref()
                    .map(|a| a.url.to_string())
                    .unwrap_or_default(),
                status,
            }),
            status => Err(Error::HttpStatus {
                status,
                path: sanitize(request.target.as_bytes()),
            }),
        }
    }
}

/// The response to `request` ended before its protocol answer did.
fn ended_early(request: &HttpRequest, session: &Session) -> Error {
    Error::Protocol(alloc::format!(
        "HTTP response for {} ended early while {}",
        sanitize(request.target.as_bytes()),
        session.phase()
    ))
}

/// Computes where a redirect of `info/refs` leads: the same origin, or http to https on the
/// same host. The location must end with `/info/refs?service=git-upload-pack`.
pub(crate) fn redirect_target(current: &Url, location: &str) -> Result<Url, Error> {
    let refuse = |reason| Error::RedirectRefused {
        location: sanitize(redact_credentials(location).as_bytes()),
        reason,
    };
    let base = location
        .strip_suffix(INFO_REFS)
        .ok_or_else(|| refuse("location does not end with /info/refs?service=git-upload-pack"))?;
    if base.contains('#') {
        return Err(refuse("location contains a fragment"));
    }
    let (scheme, port, path) = if base.starts_with('/') {
        if base.starts_with("//") {
            return Err(refuse("network-path references are not followed"));
        }
        (current.scheme(), current.port(), String::from(base))
    } else {
        let with_path = if base.contains("://") && base.matches('/').count() < 3 {
            alloc::format!("{base}/")
        } else {
            String::from(base)
        };
        let u = Url::parse(&with_path).map_err(|_| refuse("malformed location"))?;
        if u.credentials().is_some() {
            return Err(refuse("location contains credentials"));
        }
        if !u.host().eq_ignore_ascii_case(current.host()) {
            return Err(refuse("redirect to another host"));
        }
        match (current.scheme(), u.scheme()) {
            (Scheme::Https, Scheme::Http) => return Err(refuse("https to http downgrade")),
            (a, b) if a == b && u.port() != current.port() => {
                return Err(refuse("redirect to another port"));
            }
            (Scheme::Http | Scheme::Https, Scheme::Http | Scheme::Https) => {}
            _ => return Err(refuse("unsupported scheme")),
        }
        (u.scheme(), u.port(), String::from(u.path()))
    };
    if path
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b >= 0x80)
    {
        return Err(refuse("malformed location"));
    }
    let mut path = path;
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(current.with_location(scheme, port, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn redirects() {
        let http = Url::parse("http://h/repo.git#b").unwrap();
        let https = Url::parse("https://h:8443/repo.git").unwrap();
        let q = INFO_REFS;
        let t = |u: &Url, loc: &str| redirect_target(u, &alloc::format!("{loc}{q}"));
        let u = t(&http, "https://H/new.git").unwrap();
        assert_eq!(u.to_string(), "https://h/new.git#b");
        let u = t(&http, "/moved/repo.git/").unwrap();
        assert_eq!(u.to_string(), "http://h/moved/repo.git#b");
        assert_eq!(t(&https, "https://h:8443/x").unwrap().path(), "/x");
        assert_eq!(t(&http, "https://h:8443").unwrap().path(), "/");
        for (u, loc, why) in [
            (&https, "http://h:8443/x", "https to http downgrade"),
            (&http, "http://evil/x", "redirect to another host"),
            (&https, "https://h:9999/x", "redirect to another port"),
            (&http, "git://h/x", "unsupported scheme"),
            (
                &http,
                "//evil/x",
                "network-path references are not followed",
            ),
            (&http, "https://user@h/x", "location contains credentials"),
            (&http, "https://u:zq9@h/x", "location contains credentials"),
            (&http, "/a b", "malformed location"),
            (&http, "/x#frag", "location contains a fragment"),
        ] {
            match t(u, loc) {
                Err(Error::RedirectRefused { reason, .. }) => assert_eq!(reason, why, "{loc}"),
                other => panic!("{loc}: {other:?}"),
            }
        }
        assert!(matches!(
            redirect_target(&http, "https://h/elsewhere"),
            Err(Error::RedirectRefused { .. })
        ));
        let e = redirect_target(&http, "https://u:zq9@h/x/info/refs?service=git-upload-pack")
            .unwrap_err();
        assert!(!e.to_string().contains("zq9"), "{e}");
        let e =
            redirect_target(&http, "http://evil/x/info/refs?service=git-upload-pack").unwrap_err();
        assert_eq!(
            e.to_string(),
            "HTTP redirect to 'http://evil/x/info/refs?service=git-upload-pack' refused: redirect to another host"
        );
    }
}
