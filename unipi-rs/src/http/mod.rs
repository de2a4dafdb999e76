//! The HTTP server (sans-IO).
//!
//! Serving ([`serve`]: from a [`request::Request`] and the site to a
//! [`response::Response`]) is separate from the framing that carries it:
//! [`h1`] reads HTTP/1.1 requests off a byte stream and writes the
//! responses back. One [`Connection`] per TCP (or TLS) connection. It never touches a socket
//! or a clock: the caller moves plaintext bytes in and out and passes the
//! time in (`smoltcp::time::Instant` for monotonic time, unix seconds for the
//! `Date` header). TLS, if any, is the caller's business: it decrypts into
//! [`Connection::receive`] and encrypts from [`Connection::output`].
//!
//! # Driving protocol
//!
//! For every connection, whenever its socket is readable or writable, or a
//! hook completes, or its deadline passes:
//!
//! 1. **Input.** Offer received bytes with [`Connection::receive`]; it takes
//!    what fits into its bounded input buffer and returns how many it took.
//!    Keep the rest in the socket (back-pressure) and offer it again after
//!    step 2.
//! 2. **Process.** Call [`Connection::poll`] until it returns `None`, with
//!    the current site (`None` while the site is not available yet). It
//!    parses buffered requests and queues their responses, in request order.
//!    [`Event::HookRequested`] means the webhook was called: start a pull
//!    and later call [`Connection::complete_hook`], then `poll` again. While
//!    a hook is pending, later (pipelined) requests on that connection wait.
//! 3. **Output.** While [`Connection::output`] is non-empty, send (or
//!    encrypt) a prefix of it and report that with [`Connection::consume`].
//!    `output` returns one contiguous chunk (header bytes, then a slice of
//!    the shared file body, …); [`Connection::copy_output`] gathers across
//!    chunks into a caller buffer (e.g. to fill whole TLS records). Call
//!    `poll` again after consuming: a full output queue pauses parsing.
//! 4. **Close.** When [`Connection::wants_close`] is true, close the
//!    transport (TLS close_notify, then TCP FIN) and drop the connection.
//!    If the transport fails first, call [`Connection::abort`].
//! 5. **Time.** Sleep at most until [`Connection::deadline`]; when it has
//!    passed, call [`Connection::on_timeout`] and go to step 3.
//!
//! ```
//! use std::sync::Arc;
//! use smoltcp::time::Instant;
//! use unipi::http::{Connection, Event, HttpConfig, Role};
//! use unipi::site::{Body, SiteBuilder, SiteLimits, SiteMeta, git_blob_id};
//!
//! let mut b = SiteBuilder::new(SiteLimits::default());
//! b.add_file("index.html", Body::Static(b"<h1>hi</h1>"), git_blob_id(b"<h1>hi</h1>"), 0, false)
//!     .unwrap();
//! let site = b.finish(SiteMeta::default()).unwrap();
//!
//! let now = Instant::from_secs(1);
//! let unix_time = 1_700_000_000;
//! let mut conn = Connection::new(Arc::new(HttpConfig::default()), Role::Site { secure: true }, now);
//!
//! let mut pending_input: &[u8] = b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n";
//! let mut sent = Vec::new();
//! loop {
//!     let taken = conn.receive(pending_input, now);          // 1. input
//!     pending_input = &pending_input[taken..];
//!     while let Some(event) = conn.poll(Some(&site), now, unix_time) {  // 2. process
//!         match event {
//!             Event::HookRequested => { /* start a git pull, later complete_hook() */ }
//!             Event::MetricsRequested => { /* only on Role::Metrics: complete_metrics() */ }
//!         }
//!     }
//!     let mut progressed = taken > 0;
//!     while !conn.output().is_empty() {                      // 3. output
//!         let chunk = conn.output();
//!         let n = chunk.len().min(1000); // whatever the socket accepts
//!         sent.extend_from_slice(&chunk[..n]);
//!         conn.consume(n);
//!         progressed = true;
//!     }
//!     if conn.wants_close() || !progressed {                 // 4. close / wait
//!         break;
//!     }
//! }
//! let text = String::from_utf8(sent).unwrap();
//! assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(text.ends_with("<h1>hi</h1>"));
//! assert!(conn.deadline().is_some()); // idle keep-alive timeout
//! ```
//!
//! # Behaviour
//!
//! - Roles: [`Role::Site`] serves the site; [`Role::Redirect`] (the plain
//!   HTTP port) answers every request with `301` to
//!   `https://<hostname or Host>[:https_port unless 443]<target>`;
//!   [`Role::Metrics`] (`--metrics-port`) answers `GET /metrics` with what
//!   the owner passes to [`Connection::complete_metrics`] after
//!   [`Event::MetricsRequested`], and everything else with `404` (`405`
//!   for other methods on `/metrics`).
//! - Methods: `GET`, `HEAD` and `OPTIONS` (`OPTIONS *` included: `200`
//!   with `Allow`); other methods we know get `405` with `Allow: GET, HEAD,
//!   OPTIONS`, methods we do not know `501` (RFC 9110 §9.1).
//!   The webhook path accepts `GET` and `POST` (`405` with `Allow: GET,
//!   POST` otherwise) and is matched in constant time against the
//!   percent-decoded path (before `?`/`;`). The access log shows it as
//!   `<hook>` so the secret does not end up in logs.
//! - Request bodies are read only for the webhook (its signature covers
//!   them): `Content-Length` and `chunked` (decoded strictly by
//!   `unipi-httpwire`), bounded by [`HttpLimits::max_body_bytes`] (`413` +
//!   close when exceeded). Any other request with a body is answered at
//!   once and the connection closed, without waiting for the body. Both
//!   framings at once, `chunked` anywhere but last, or `Transfer-Encoding`
//!   in HTTP/1.0 are `400` + close; a coding before a final `chunked`
//!   (`gzip, chunked`) is `501` + close: we decode none. `Expect:
//!   100-continue` gets an interim `100 Continue` when there is a body;
//!   other expectations get `417`.
//! - Paths: see [`path`]. A path naming a directory without the trailing
//!   slash (`<path>/index.html` exists) gets `301` to `<path>/` plus the
//!   query, so relative links in the page resolve correctly. (Unipi served
//!   the page directly; its relative links then pointed one level up.)
//! - Not found: `302` to `--default` when configured, else the site's own
//!   `404.html` with status `404`, else a short `text/plain` `404`. No site
//!   yet: `503` with `Retry-After: 5`.
//! - Validators and ranges: see [`conditional`]. `If-Match` /
//!   `If-Unmodified-Since` give `412`, `If-None-Match` (weak comparison,
//!   takes precedence) / `If-Modified-Since` give `304`. Ranges apply to
//!   `GET` only.
//! - Compression: see [`negotiate`] and `site/compress.rs`. A file with a
//!   compressible type (see [`mime`]) or with compressed representations
//!   is negotiated on `Accept-Encoding`: the chosen representation (gzip,
//!   br or the bytes as they are) comes with `Content-Encoding` and its own
//!   strong `ETag`, validators and ranges apply to it (an `If-Range` date
//!   never matches a file that has compressed representations: they share
//!   Last-Modified, which is then no strong validator), and every response
//!   about the file (also `304`, `412`, `416` and identity responses)
//!   carries `Vary: Accept-Encoding`. When `Accept-Encoding` refuses every
//!   representation the file has (`identity;q=0` and nothing else
//!   acceptable), the answer is `406`. Other files go out as they are,
//!   whatever the request says. `--compression=off` turns all of it off.
//! - Errors in the request framing (`400`, `408`, `413`, `414`, `417`,
//!   `431`, `501`, `505`) are sent with `Connection: close` and the connection
//!   closes after them. Other errors (`404`, `405`, a `400` for a malformed
//!   path, `412`, `416`) keep the connection.
//! - Keep-alive is the default for HTTP/1.1; `Connection: close` is
//!   honoured; HTTP/1.0 closes unless it asks for `keep-alive`. Pipelined
//!   requests are answered strictly in order.
//! - Timeouts ([`HttpTimeouts`]): the header block must be complete within
//!   `header` of its first byte (else `408` + close); an idle keep-alive
//!   connection closes silently after `idle`; a body must arrive within
//!   `body` (else `408` + close); output that makes no progress for `send`
//!   drops the connection.
//! - One access record per response ([`crate::observe::access`]) once its
//!   last byte has been consumed, or the connection was aborted; the
//!   owner takes them with [`Connection::take_access`].

pub mod conditional;
pub mod date;
pub mod h1;
pub mod h2;
pub mod hook;
pub mod mime;
pub mod negotiate;
pub mod path;
pub mod request;
pub mod response;
pub mod serve;

#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};

pub use h1::Connection;

use crate::config::{Compression, Config};

/// The `Server` header value.
pub const SERVER: &str = "unipi-rs";

/// Hard upper bound for [`HttpLimits::max_headers`] (the parser's header
/// array lives on the stack).
pub const MAX_HEADERS: usize = 128;

/// What a connection serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Serve the site. `secure` says the transport is TLS; only then is
    /// `Strict-Transport-Security` sent.
    Site {
        /// The connection is protected by TLS.
        secure: bool,
    },
    /// Redirect every request to the HTTPS site (the plain-HTTP port).
    Redirect,
    /// Serve the metrics exposition at `/metrics` (`--metrics-port`).
    Metrics,
}

/// Something the caller must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The webhook was requested: pull the site, then call
    /// [`Connection::complete_hook`]. Until then this connection answers
    /// no further requests.
    HookRequested,
    /// `GET /metrics` on a [`Role::Metrics`] connection: call
    /// [`Connection::complete_metrics`] with the exposition. Until then
    /// this connection answers no further requests.
    MetricsRequested,
}

/// What a connection is doing, as the server sees it when connections or
/// memory run short and it must choose whom to close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Connected, but no request has begun yet.
    Waiting,
    /// Between requests with nothing to send (keep-alive), since `since`.
    Idle {
        /// When the connection became idle.
        since: Instant,
    },
    /// A request (its head, or a webhook body) is arriving, since `since`.
    Receiving {
        /// When its first byte arrived.
        since: Instant,
    },
    /// Responses are queued.
    Sending,
    /// Waiting for a webhook pull.
    AwaitingHook,
    /// Closing: nothing more will be read.
    Closing,
}

/// One transport connection's HTTP, whatever its framing: HTTP/1.1
/// ([`h1::Connection`]) or HTTP/2 ([`h2::Connection`]). The server drives
/// both the same way (see the module documentation's driving protocol).
pub trait Session {
    /// Offers received plaintext; returns how many bytes were taken.
    fn receive(&mut self, data: &[u8], now: Instant) -> usize;
    /// Processes buffered input and queues responses; call until `None`.
    fn poll(
        &mut self,
        site: Option<&crate::site::Site>,
        now: Instant,
        unix_time: u64,
    ) -> Option<Event>;
    /// The next contiguous bytes to send.
    fn output(&self) -> &[u8];
    /// Copies pending output into `buf` without consuming it.
    fn copy_output(&self, buf: &mut [u8]) -> usize;
    /// Marks `n` bytes of output as sent.
    fn consume(&mut self, n: usize);
    /// The transport should be closed now.
    fn wants_close(&self) -> bool;
    /// A webhook request waits for [`Session::complete_hook`].
    fn awaiting_hook(&self) -> bool;
    /// The transport is gone.
    fn abort(&mut self, now: Instant);
    /// When [`Session::on_timeout`] must be called next.
    fn deadline(&self) -> Option<Instant>;
    /// Applies the timeouts that expired.
    fn on_timeout(&mut self, now: Instant);
    /// Answers the oldest webhook request waiting for its pull.
    fn complete_hook(&mut self, outcome: HookOutcome, now: Instant, unix_time: u64);
    /// What the connection is doing.
    fn activity(&self) -> Activity;
    /// Gives back the memory of idle buffers.
    fn trim(&mut self);
    /// Sets the client's address the access records name.
    fn set_peer(&mut self, peer: Option<smoltcp::wire::IpAddress>);
    /// Hands the records of the responses finished (or cut short) since
    /// the last call to `sink`, oldest first.
    fn take_access(&mut self, sink: &mut dyn crate::observe::access::AccessSink);
    /// Answers a metrics request ([`Event::MetricsRequested`]) with the
    /// exposition.
    fn complete_metrics(&mut self, exposition: String, now: Instant, unix_time: u64);
}

/// How a webhook-triggered pull ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    /// A new commit is now served: `200 pulled <commit>`.
    Updated {
        /// The new commit id (hex).
        commit: String,
    },
    /// Nothing changed: `200 pulled, no changes`.
    Unchanged,
    /// The pull failed; the old site is kept: `500 <reason>`.
    Failed {
        /// What went wrong (sent as the response body).
        reason: String,
    },
}

/// Size limits for requests (all inputs are untrusted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest request line, CRLF included; longer gives `414` when the
    /// target is what is too long, `400` otherwise.
    pub max_request_line: usize,
    /// Longest header block (request line, fields, empty line); longer gives
    /// `431`. This is also the size of the per-connection input buffer.
    pub max_header_bytes: usize,
    /// Most header fields; more gives `431`. Capped at [`MAX_HEADERS`].
    pub max_headers: usize,
    /// Largest request body that is read (and discarded); larger gives `413`.
    pub max_body_bytes: u64,
    /// Most responses queued but not yet sent; further pipelined requests
    /// wait in the input buffer until output drains.
    pub max_queued_responses: usize,
}

impl Default for HttpLimits {
    /// 8 KiB request line, 16 KiB header block, 64 fields, 1 MiB body,
    /// 8 queued responses.
    fn default() -> Self {
        HttpLimits {
            max_request_line: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
            max_queued_responses: 8,
        }
    }
}

impl HttpLimits {
    /// Input buffer size (at least 256 bytes).
    pub(crate) fn input_capacity(&self) -> usize {
        self.max_header_bytes.max(256)
    }
}

/// Timeouts of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// From the first byte of a request until its header block is complete.
    pub header: Duration,
    /// An idle keep-alive connection closes after this.
    pub idle: Duration,
    /// From the end of the header block until the end of the body.
    pub body: Duration,
    /// Queued output that makes no progress for this long drops the
    /// connection.
    pub send: Duration,
}

impl Default for HttpTimeouts {
    /// header 10 s, idle 30 s, body 30 s, send 60 s.
    fn default() -> Self {
        HttpTimeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            body: Duration::from_secs(30),
            send: Duration::from_secs(60),
        }
    }
}

/// The ACME HTTP-01 answers (RFC 8555 §8.3) currently published, shared
/// between the certificate manager (which publishes them) and every
/// connection (which serves `/.well-known/acme-challenge/<token>`).
#[derive(Clone, Default)]
pub struct Http01(alloc::sync::Arc<spin::Mutex<Vec<(String, String)>>>);

/// Where HTTP-01 tokens are asked for.
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

impl Http01 {
    /// Serves `key_authorization` for `token` until [`Http01::unpublish`].
    pub fn publish(&self, token: &str, key_authorization: &str) {
        let mut list = self.0.lock();
        list.retain(|(t, _)| t != token);
        list.push((String::from(token), String::from(key_authorization)));
    }

    /// Stops serving `token`.
    pub fn unpublish(&self, token: &str) {
        self.0.lock().retain(|(t, _)| t != token);
    }

    /// The answer for `token`, if published.
    pub fn answer(&self, token: &str) -> Option<String> {
        let list = self.0.lock();
        list.iter()
            .find(|(t, _)| t == token)
            .map(|(_, a)| a.clone())
    }
}

impl core::fmt::Debug for Http01 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Http01({} published)", self.0.lock().len())
    }
}

impl PartialEq for Http01 {
    fn eq(&self, other: &Self) -> bool {
        alloc::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Http01 {}

/// Everything a [`Connection`] needs to know, shared by all connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Host for HTTPS redirects; `None`: use the request's `Host`.
    pub hostname: Option<String>,
    /// HTTPS port used in redirects (omitted when 443).
    pub https_port: u16,
    /// The secret webhook path (starts with `/`, compared after
    /// percent-decoding).
    pub hook_path: String,
    /// When set, a webhook request must also carry a signature or token
    /// made with this secret (see [`hook`]).
    pub hook_secret: Option<hook::Secret>,
    /// `302` target for paths that do not exist.
    pub default_url: Option<String>,
    /// `Strict-Transport-Security: max-age=…` on TLS site connections.
    pub hsts_max_age: Option<u32>,
    /// Request size limits.
    pub limits: HttpLimits,
    /// Connection timeouts.
    pub timeouts: HttpTimeouts,
    /// ACME HTTP-01 answers to serve.
    pub http01: Http01,
    /// Content-coding negotiation (`--compression`; `Off`: every file as it
    /// is, no `Vary`).
    pub compression: Compression,
    mime_overrides: Vec<(String, String)>,
    default_mime_type: String,
}

impl Default for HttpConfig {
    /// No hostname, HTTPS port 4433, hook `/hook`, no default URL, no HSTS,
    /// default limits and timeouts, `application/octet-stream` fallback.
    fn default() -> Self {
        HttpConfig {
            hostname: None,
            https_port: 4433,
            hook_path: String::from("/hook"),
            hook_secret: None,
            default_url: None,
            hsts_max_age: None,
            limits: HttpLimits::default(),
            timeouts: HttpTimeouts::default(),
            http01: Http01::default(),
            compression: Compression::On,
            mime_overrides: Vec::new(),
            default_mime_type: String::from("application/octet-stream"),
        }
    }
}

impl HttpConfig {
    /// The HTTP settings of the boot parameters.
    pub fn from_config(c: &Config) -> Self {
        let mut h = HttpConfig {
            hostname: c.hostname.clone(),
            https_port: c.https_port,
            hook_path: c.hook.clone(),
            hook_secret: c
                .hook_secret
                .as_deref()
                .map(|s| hook::Secret::new(s.as_bytes())),
            default_url: c.default_url.clone(),
            hsts_max_age: c.hsts,
            compression: c.compression,
            ..HttpConfig::default()
        };
        h.limits.max_header_bytes = c.max_header_bytes;
        h.limits.max_body_bytes = c.hook_max_body;
        h.limits.max_request_line = h.limits.max_request_line.min(c.max_header_bytes);
        h.timeouts.header = Duration::from_secs(u64::from(c.header_timeout));
        h.timeouts.idle = Duration::from_secs(u64::from(c.idle_timeout));
        h.timeouts.send = Duration::from_secs(u64::from(c.send_timeout));
        h.set_default_mime_type(&c.default_mime_type);
        for (path, ty) in &c.mime_types {
            h.add_mime_type(path, ty);
        }
        h
    }

    /// Sets the type for files no rule matches (`; charset=utf-8` is added
    /// for text types without parameters).
    pub fn set_default_mime_type(&mut self, ty: &str) {
        self.default_mime_type = mime::with_charset(ty);
    }

    /// Serves the file at `path` (site path; a leading `/` is ignored) with
    /// type `ty` (charset added as for the default type). A later call for
    /// the same path wins.
    pub fn add_mime_type(&mut self, path: &str, ty: &str) {
        let path = path.trim_start_matches('/');
        let ty = mime::with_charset(ty);
        match self.mime_overrides.iter_mut().find(|(p, _)| p == path) {
            Some(e) => e.1 = ty,
            None => self.mime_overrides.push((String::from(path), ty)),
        }
    }

    /// The `Content-Type` for the file at site path `key` (the *effective*
    /// path, e.g. `docs/index.html` for `/docs/`): an exact override, else
    /// the built-in table, else the default type.
    pub fn content_type(&self, key: &str) -> &str {
        if let Some((_, ty)) = self.mime_overrides.iter().find(|(p, _)| p == key) {
            return ty;
        }
        mime::by_extension(key).unwrap_or(&self.default_mime_type)
    }

    /// Whether the file at site path `key` has a compressible content type
    /// (the flag of the built-in table, or [`mime::is_compressible_type`]
    /// for an override or the default type). Such files are gzipped after
    /// each fetch and always negotiated (`Vary: Accept-Encoding`).
    pub fn compressible(&self, key: &str) -> bool {
        if let Some((_, ty)) = self.mime_overrides.iter().find(|(p, _)| p == key) {
            return mime::is_compressible_type(ty);
        }
        match mime::lookup(key) {
            Some(m) => m.compressible,
            None => mime::is_compressible_type(&self.default_mime_type),
        }
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn from_boot_parameters() {
        let (c, e) = Config::parse(
            "--hostname=muen.sk --https-port=443 --hook=/s3cr3t --default=https://x/ \
             --hsts=600 --mime-type=/feed:application/rss+xml --default-mime-type=text/plain \
             --header-timeout=3 --idle-timeout=4 --max-header-bytes=2048",
        );
        assert!(e.is_empty(), "{e:?}");
        let h = HttpConfig::from_config(&c);
        assert_eq!(h.hostname.as_deref(), Some("muen.sk"));
        assert_eq!(h.https_port, 443);
        assert_eq!(h.hook_path, "/s3cr3t");
        assert_eq!(h.default_url.as_deref(), Some("https://x/"));
        assert_eq!(h.hsts_max_age, Some(600));
        assert_eq!(h.content_type("feed"), "application/rss+xml; charset=utf-8");
        assert_eq!(h.content_type("README"), "text/plain; charset=utf-8");
        assert_eq!(h.content_type("a.png"), "image/png");
        assert_eq!(h.timeouts.header, Duration::from_secs(3));
        assert_eq!(h.timeouts.idle, Duration::from_secs(4));
        assert_eq!(h.limits.max_header_bytes, 2048);
        assert_eq!(h.limits.max_request_line, 2048);
    }

    #[test]
    fn compressible_paths() {
        let mut h = HttpConfig::default();
        assert!(h.compressible("a/b.css"));
        assert!(!h.compressible("a.png"));
        assert!(!h.compressible("README"));
        h.add_mime_type("feed", "application/rss+xml");
        h.add_mime_type("x.css", "image/png");
        assert!(h.compressible("feed"));
        assert!(!h.compressible("x.css"));
        h.set_default_mime_type("text/plain");
        assert!(h.compressible("README"));
        let (c, _) = Config::parse("--compression=static");
        assert_eq!(HttpConfig::from_config(&c).compression, Compression::Static);
    }

    #[test]
    fn overrides() {
        let mut h = HttpConfig::default();
        assert_eq!(h.content_type("x"), "application/octet-stream");
        h.add_mime_type("/index.html", "text/plain");
        h.add_mime_type("index.html", "application/xhtml+xml");
        assert_eq!(h.content_type("index.html"), "application/xhtml+xml");
        assert_eq!(h.content_type("a/index.html"), "text/html; charset=utf-8");
    }
}
