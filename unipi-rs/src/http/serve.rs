//! Serving: from a [`Request`] and the current [`Site`] to a [`Response`],
//! the same for every framing (HTTP/1.1 today, HTTP/2 beside it).
//!
//! Nothing here knows about connections, bodies on the wire or
//! keep-alive; the framing layer has validated the request's framing and
//! `Host` before it asks. See the [module documentation](super) for the
//! behaviour.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use subtle::ConstantTimeEq;

use super::conditional::{self, Compare, RangeOutcome};
use super::negotiate::{AcceptEncoding, Offer, choose};
use super::request::{Method, Request, host_without_port, valid_host};
use super::response::{Content, Response, Value};
use super::{HttpConfig, Role, date, path};
use crate::config::Compression;
use crate::site::{Body, Coding, ETag, Encodings, Entry, Site};

/// Reusable buffers, so that serving a request allocates nothing once they
/// have grown.
#[derive(Default)]
pub struct Scratch {
    decoded: Vec<u8>,
    key: String,
}

/// What the serving code decided.
#[derive(Debug)]
// The response lives on the stack for one call; boxing it would cost an
// allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum Reply<'a> {
    /// Send this response.
    Respond(Response<'a>),
    /// The webhook was called: pull the site, then answer with
    /// [`hook_response`].
    Hook,
    /// The metrics were asked for: answer with [`metrics_response`].
    Metrics,
}

/// The decision, and how the access log names the request.
#[derive(Debug)]
pub struct Served<'a> {
    /// The decision.
    pub reply: Reply<'a>,
    /// The request named the (secret) webhook path: the access log shows
    /// `<hook>` instead of the path.
    pub secret_path: bool,
}

impl<'a> Served<'a> {
    fn respond(response: Response<'a>) -> Served<'a> {
        Served {
            reply: Reply::Respond(response),
            secret_path: false,
        }
    }
}

/// Everything serving needs besides the request.
pub struct Context<'c> {
    /// The server's settings.
    pub cfg: &'c HttpConfig,
    /// What the port serves.
    pub role: Role,
    /// The current site (`None`: not fetched yet).
    pub site: Option<&'c Site>,
    /// Wall clock, unix seconds.
    pub unix: u64,
}

/// The methods a site path allows (`Allow` of a `405`, answer to `OPTIONS`).
const SITE_METHODS: &str = "GET, HEAD, OPTIONS";
/// The methods the webhook path allows.
const HOOK_METHODS: &str = "GET, POST";

/// Decides the response to `req`.
pub fn serve<'c>(cx: &Context<'c>, req: &Request<'_>, scratch: &mut Scratch) -> Served<'c> {
    if req.method == Method::Unknown {
        // RFC 9110 §9.1: a method the server does not recognise.
        return Served::respond(Response::error(501));
    }
    if let Some(token) = req.target.strip_prefix(super::HTTP01_PREFIX)
        && matches!(req.method, Method::Get | Method::Head)
        && let Some(answer) = cx.cfg.http01.answer(token)
    {
        // ACME HTTP-01 (RFC 8555 §8.3): answered on any port, before the
        // redirect to HTTPS.
        return Served::respond(
            Response::new(200)
                .field("Content-Type", Value::Str("application/octet-stream"))
                .content(Content::Text(Cow::Owned(answer))),
        );
    }
    if req.target == "*" {
        // Asterisk-form: only OPTIONS, about the server as a whole.
        return Served::respond(match req.method {
            Method::Options => options(SITE_METHODS),
            _ => Response::error(400),
        });
    }
    match cx.role {
        Role::Redirect => Served::respond(redirect_to_https(cx, req)),
        Role::Site { .. } => serve_site(cx, req, scratch),
        Role::Metrics => serve_metrics(req),
    }
}

/// The methods the metrics path allows.
const METRICS_METHODS: &str = "GET, HEAD";

/// The metrics port: `/metrics` (any query) and nothing else.
fn serve_metrics(req: &Request<'_>) -> Served<'static> {
    let path = req.target.split(['?', '#']).next().unwrap_or("");
    if path != "/metrics" {
        return Served::respond(Response::text(404, "404 Not Found: try /metrics\n"));
    }
    match req.method {
        Method::Get | Method::Head => Served {
            reply: Reply::Metrics,
            secret_path: false,
        },
        _ => Served::respond(method_not_allowed(METRICS_METHODS)),
    }
}

/// The answer to a metrics request: the exposition in Prometheus' text
/// format, version 0.0.4.
pub fn metrics_response(exposition: String) -> Response<'static> {
    Response::new(200)
        .field(
            "Content-Type",
            Value::Str("text/plain; version=0.0.4; charset=utf-8"),
        )
        .content(Content::Text(exposition.into()))
}

/// `200` with `Allow` and no content.
fn options(allow: &'static str) -> Response<'static> {
    Response::new(200).field("Allow", Value::Str(allow))
}

/// The answer to a webhook request once its pull has finished.
pub fn hook_response(outcome: super::HookOutcome) -> Response<'static> {
    use super::HookOutcome;
    match outcome {
        HookOutcome::Updated { commit } => Response::text(200, alloc::format!("pulled {commit}")),
        HookOutcome::Unchanged => Response::text(200, "pulled, no changes"),
        HookOutcome::Failed { reason } => Response::text(500, reason),
    }
}

/// The plain-HTTP port: everything goes to the HTTPS site.
fn redirect_to_https<'c>(cx: &Context<'c>, req: &Request<'_>) -> Response<'c> {
    let Some(t) = path::split_target(req.target) else {
        // A CONNECT's authority-form target has no path to redirect to.
        return match req.method {
            Method::Unsupported => method_not_allowed(SITE_METHODS),
            _ => Response::error(400),
        };
    };
    let host = match (&cx.cfg.hostname, t.authority, req.host) {
        (Some(h), _, _) => Some(h.as_str()),
        (None, Some(a), _) => host_without_port(a).filter(|h| valid_host(h.as_bytes())),
        (None, None, Some(h)) => host_without_port(h),
        (None, None, None) => None,
    };
    let Some(host) = host else {
        return Response::error(400);
    };
    let mut loc = String::with_capacity(16 + host.len() + t.path_and_query.len());
    loc.push_str("https://");
    loc.push_str(host);
    if cx.cfg.https_port != 443 {
        let _ = write!(loc, ":{}", cx.cfg.https_port);
    }
    if !t.path_and_query.starts_with('/') {
        loc.push('/');
    }
    path::push_uri_safe(t.path_and_query, &mut loc);
    Response::redirect(301, loc)
}

/// Equality with a secret in time that depends on the secret's length
/// only (and on the length of what was given, which its sender knows).
pub fn equals_secret(given: &[u8], secret: &[u8]) -> bool {
    let mut eq = (given.len() as u64).ct_eq(&(secret.len() as u64));
    for (i, s) in secret.iter().enumerate() {
        eq &= given.get(i).copied().unwrap_or(0).ct_eq(s);
    }
    eq.into()
}

fn method_not_allowed(allow: &'static str) -> Response<'static> {
    Response::text(405, "405 Method Not Allowed\n").field("Allow", Value::Str(allow))
}

fn serve_site<'c>(cx: &Context<'c>, req: &Request<'_>, scratch: &mut Scratch) -> Served<'c> {
    if req.method == Method::Unsupported {
        // Before the target: a CONNECT's authority-form target is no path.
        return Served::respond(method_not_allowed(SITE_METHODS));
    }
    let Some(t) = path::split_target(req.target) else {
        return Served::respond(Response::error(400));
    };
    let Ok(decoded) = path::decode(t.path, &mut scratch.decoded) else {
        return Served::respond(Response::error(400));
    };
    if equals_secret(decoded.as_bytes(), cx.cfg.hook_path.as_bytes()) {
        let reply = match req.method {
            Method::Get | Method::Post => Reply::Hook,
            _ => Reply::Respond(method_not_allowed(HOOK_METHODS)),
        };
        return Served {
            reply,
            secret_path: true,
        };
    }
    match req.method {
        Method::Get | Method::Head => {}
        Method::Options => return Served::respond(options(SITE_METHODS)),
        _ => return Served::respond(method_not_allowed(SITE_METHODS)),
    }
    let Some(site) = cx.site else {
        return Served::respond(
            Response::text(503, "503 Service Unavailable: the site is being fetched\n")
                .field("Retry-After", Value::Str("5")),
        );
    };
    let key = &mut scratch.key;
    let Ok(dir) = path::site_key(decoded, key) else {
        return Served::respond(Response::error(400));
    };
    if dir {
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str("index.html");
    }
    let response = match site.get(key) {
        Some(Entry::File {
            body,
            etag,
            last_modified,
            encodings,
            ..
        }) => serve_file(
            cx,
            req,
            key,
            &File {
                body,
                etag,
                last_modified: *last_modified,
                encodings,
            },
        ),
        Some(Entry::Redirect { target }) => Response::redirect(301, target.clone()),
        None => match (!dir)
            .then(|| directory_redirect(site, key, t.query))
            .flatten()
        {
            Some(r) => r,
            None => not_found(cx, req, site),
        },
    };
    Served::respond(response)
}

/// A file of the site, as serving needs it.
struct File<'s> {
    body: &'s Body,
    etag: &'s ETag,
    last_modified: u64,
    encodings: &'s Encodings,
}

/// The representation chosen for a request.
struct Selected<'s> {
    /// The coding (`Identity`: the file's own bytes).
    coding: Coding,
    body: &'s Body,
    etag: &'s ETag,
    /// The choice depended on `Accept-Encoding`: `Vary: Accept-Encoding` on
    /// every response about this file (200, 206, 304, 412, 416, 406).
    vary: bool,
}

/// Picks the representation of `file` (at site path `key`) for `req`;
/// `None` when none is acceptable (`406`). A file is negotiated when it has
/// compressed representations or its type is compressible (and
/// `--compression` is not `off`); other files always go out as they are.
fn select<'s>(
    cfg: &HttpConfig,
    req: &Request<'_>,
    key: &str,
    file: &File<'s>,
) -> Option<Selected<'s>> {
    let identity = Selected {
        coding: Coding::Identity,
        body: file.body,
        etag: file.etag,
        vary: false,
    };
    if cfg.compression == Compression::Off || file.encodings.is_empty() && !cfg.compressible(key) {
        return Some(identity);
    }
    let mut offers: heapless::Vec<Offer, 3> = heapless::Vec::new();
    for coding in [Coding::Identity, Coding::Gzip, Coding::Br] {
        let len = match file.encodings.get(coding) {
            Some(e) => e.body.len(),
            None if coding == Coding::Identity => file.body.len(),
            None => continue,
        };
        let _ = offers.push(Offer {
            coding,
            len: len as u64,
        });
    }
    let accept = AcceptEncoding::parse(req.values("accept-encoding"));
    let coding = choose(&accept, &offers)?;
    Some(match file.encodings.get(coding) {
        Some(e) => Selected {
            coding,
            body: &e.body,
            etag: &e.etag,
            vary: true,
        },
        None => Selected {
            vary: true,
            ..identity
        },
    })
}

/// Adds `Vary: Accept-Encoding` when the response depended on it.
fn vary<'c>(r: Response<'c>, on: bool) -> Response<'c> {
    if on {
        r.field("Vary", Value::Str("Accept-Encoding"))
    } else {
        r
    }
}

/// Adds `Content-Encoding` for a compressed representation.
fn encoding<'c>(r: Response<'c>, coding: Coding) -> Response<'c> {
    match coding {
        Coding::Identity => r,
        c => r.field("Content-Encoding", Value::Str(c.token())),
    }
}

/// `<key>/index.html` exists: `301` to `<key>/` (plus the query), so that
/// relative links in the page resolve.
fn directory_redirect(
    site: &Site,
    key: &mut String,
    query: Option<&str>,
) -> Option<Response<'static>> {
    let len = key.len();
    key.push_str("/index.html");
    let is_dir = site.get(key).is_some();
    key.truncate(len);
    if !is_dir {
        return None;
    }
    let mut loc = String::with_capacity(key.len() + 2);
    path::push_encoded_path(key, &mut loc);
    loc.push('/');
    if let Some(q) = query {
        loc.push('?');
        path::push_uri_safe(q, &mut loc);
    }
    Some(Response::redirect(301, loc))
}

fn not_found<'c>(cx: &Context<'c>, req: &Request<'_>, site: &Site) -> Response<'c> {
    if let Some(url) = &cx.cfg.default_url {
        return Response::redirect(302, url.clone());
    }
    const PAGE: &str = "404.html";
    if let Some(Entry::File {
        body,
        etag,
        encodings,
        ..
    }) = site.get(PAGE)
    {
        let file = File {
            body,
            etag,
            last_modified: 0,
            encodings,
        };
        // An error page goes out as it is when no coding is acceptable.
        let s = select(cx.cfg, req, PAGE, &file).unwrap_or(Selected {
            coding: Coding::Identity,
            body,
            etag,
            vary: true,
        });
        let r = Response::new(404).field("Content-Type", Value::Str(cx.cfg.content_type(PAGE)));
        return vary(encoding(r, s.coding), s.vary).content(Content::File {
            body: s.body.clone(),
            start: 0,
            end: s.body.len(),
        });
    }
    Response::text(404, Cow::Borrowed("404 Not Found\n"))
}

fn serve_file<'c>(cx: &Context<'c>, req: &Request<'_>, key: &str, file: &File<'_>) -> Response<'c> {
    let now = cx.unix;
    // Never claim a modification in the future (RFC 9110 §8.8.2.1), unless
    // the wall clock is obviously unset.
    let lm = if now >= 1_000_000_000 {
        file.last_modified.min(now)
    } else {
        file.last_modified
    };
    // Validators and ranges below are those of the representation that
    // would be sent (RFC 9110 §8.8.3, §13.1, §14).
    let Some(rep) = select(cx.cfg, req, key, file) else {
        return vary(
            Response::text(
                406,
                "406 Not Acceptable: Accept-Encoding refuses every coding this file has\n",
            ),
            true,
        );
    };
    let opaque = rep.etag.opaque();

    // RFC 9110 §13.2.2, steps 1-4.
    let precondition_failed = if req.has("if-match") {
        !conditional::etag_list_matches(req.values("if-match"), opaque, Compare::Strong)
    } else if let Some(v) = req.single("if-unmodified-since") {
        date::parse(v, now).is_some_and(|t| lm as i64 > t)
    } else {
        false
    };
    if precondition_failed {
        return vary(Response::text(412, "412 Precondition Failed\n"), rep.vary);
    }
    let not_modified = if req.has("if-none-match") {
        conditional::etag_list_matches(req.values("if-none-match"), opaque, Compare::Weak)
    } else if let Some(v) = req.single("if-modified-since") {
        date::parse(v, now).is_some_and(|t| lm as i64 <= t)
    } else {
        false
    };
    if not_modified {
        let r = Response::new(304)
            .field("ETag", Value::ETag(*rep.etag))
            .field("Last-Modified", Value::Date(lm));
        return vary(r, rep.vary);
    }

    // Step 5: Range, for GET only, subject to If-Range.
    let len = rep.body.len() as u64;
    let mut range = RangeOutcome::Full;
    if req.method == Method::Get
        && let Some(r) = req.single("range")
    {
        // When a file has several representations they share Last-Modified,
        // so it is no strong validator and an If-Range date never matches
        // (RFC 9110 §13.1.5, §8.8.2.2): a client that holds part of the
        // identity bytes must not get a range of the gzip bytes.
        let if_range_ok = match req.values("if-range").next() {
            None => true,
            Some(_) => req.single("if-range").is_some_and(|v| {
                (file.encodings.is_empty() || conditional::is_entity_tag(v))
                    && conditional::if_range_matches(v, opaque, lm, now)
            }),
        };
        if if_range_ok {
            range = conditional::evaluate_range(r, len);
        }
    }
    let (status, start, end) = match range {
        RangeOutcome::Full => (200, 0, len),
        RangeOutcome::Partial { start, end } => (206, start, end + 1),
        RangeOutcome::Unsatisfiable => {
            let r = Response::new(416).field("Content-Range", Value::Unsatisfied { len });
            return vary(r, rep.vary);
        }
    };
    let mut r = Response::new(status).field("Content-Type", Value::Str(cx.cfg.content_type(key)));
    r = encoding(r, rep.coding);
    if status == 206 {
        r = r.field(
            "Content-Range",
            Value::Range {
                first: start,
                last: end - 1,
                len,
            },
        );
    }
    let r = r
        .field("ETag", Value::ETag(*rep.etag))
        .field("Last-Modified", Value::Date(lm))
        .field("Accept-Ranges", Value::Str("bytes"));
    vary(r, rep.vary).content(Content::File {
        body: rep.body.clone(),
        start: start as usize,
        end: end as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(equals_secret(b"/hook", b"/hook"));
        assert!(!equals_secret(b"/hoo", b"/hook"));
        assert!(!equals_secret(b"/hookx", b"/hook"));
        assert!(!equals_secret(b"/hooK", b"/hook"));
        assert!(!equals_secret(b"", b"/hook"));
        assert!(equals_secret(b"", b""));
    }
}
