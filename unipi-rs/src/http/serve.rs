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
use super::request::{Method, Request, host_without_port, valid_host};
use super::response::{Content, Response, Value};
use super::{HttpConfig, Role, date, path};
use crate::site::{Body, ETag, Entry, Site};

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
        return Response::error(400);
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
            ..
        }) => serve_file(cx, req, key, body, etag, *last_modified),
        Some(Entry::Redirect { target }) => Response::redirect(301, target.clone()),
        None => match (!dir)
            .then(|| directory_redirect(site, key, t.query))
            .flatten()
        {
            Some(r) => r,
            None => not_found(cx, site),
        },
    };
    Served::respond(response)
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

fn not_found<'c>(cx: &Context<'c>, site: &Site) -> Response<'c> {
    if let Some(url) = &cx.cfg.default_url {
        return Response::redirect(302, url.clone());
    }
    if let Some(Entry::File { body, .. }) = site.get("404.html") {
        return Response::new(404)
            .field("Content-Type", Value::Str(cx.cfg.content_type("404.html")))
            .content(Content::File {
                body: body.clone(),
                start: 0,
                end: body.len(),
            });
    }
    Response::text(404, Cow::Borrowed("404 Not Found\n"))
}

fn serve_file<'c>(
    cx: &Context<'c>,
    req: &Request<'_>,
    key: &str,
    body: &Body,
    etag: &ETag,
    last_modified: u64,
) -> Response<'c> {
    let now = cx.unix;
    // Never claim a modification in the future (RFC 9110 §8.8.2.1), unless
    // the wall clock is obviously unset.
    let lm = if now >= 1_000_000_000 {
        last_modified.min(now)
    } else {
        last_modified
    };
    let opaque = etag.opaque();

    // RFC 9110 §13.2.2, steps 1-4.
    let precondition_failed = if req.has("if-match") {
        !conditional::etag_list_matches(req.values("if-match"), opaque, Compare::Strong)
    } else if let Some(v) = req.single("if-unmodified-since") {
        date::parse(v, now).is_some_and(|t| lm as i64 > t)
    } else {
        false
    };
    if precondition_failed {
        return Response::text(412, "412 Precondition Failed\n");
    }
    let not_modified = if req.has("if-none-match") {
        conditional::etag_list_matches(req.values("if-none-match"), opaque, Compare::Weak)
    } else if let Some(v) = req.single("if-modified-since") {
        date::parse(v, now).is_some_and(|t| lm as i64 <= t)
    } else {
        false
    };
    if not_modified {
        return Response::new(304)
            .field("ETag", Value::ETag(*etag))
            .field("Last-Modified", Value::Date(lm));
    }

    // Step 5: Range, for GET only, subject to If-Range.
    let len = body.len() as u64;
    let mut range = RangeOutcome::Full;
    if req.method == Method::Get
        && let Some(r) = req.single("range")
    {
        let if_range_ok = match req.values("if-range").next() {
            None => true,
            Some(_) => req
                .single("if-range")
                .is_some_and(|v| conditional::if_range_matches(v, opaque, lm, now)),
        };
        if if_range_ok {
            range = conditional::evaluate_range(r, len);
        }
    }
    let (status, start, end) = match range {
        RangeOutcome::Full => (200, 0, len),
        RangeOutcome::Partial { start, end } => (206, start, end + 1),
        RangeOutcome::Unsatisfiable => {
            return Response::new(416).field("Content-Range", Value::Unsatisfied { len });
        }
    };
    let mut r = Response::new(status).field("Content-Type", Value::Str(cx.cfg.content_type(key)));
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
    r.field("ETag", Value::ETag(*etag))
        .field("Last-Modified", Value::Date(lm))
        .field("Accept-Ranges", Value::Str("bytes"))
        .content(Content::File {
            body: body.clone(),
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
