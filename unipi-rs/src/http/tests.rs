//! Connection-level tests: requests in, responses out.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::time::{Duration, Instant};

use super::*;
use crate::site::{Body, Site, SiteBuilder, SiteLimits, SiteMeta, git_blob_id};

const UNIX: u64 = 1_700_000_000; // Tue, 14 Nov 2023 22:13:20 GMT
const MTIME: u64 = 1_600_000_000; // Sun, 13 Sep 2020 12:26:40 GMT
const MTIME_STR: &str = "Sun, 13 Sep 2020 12:26:40 GMT";

static BIG: [u8; 100_000] = [b'b'; 100_000];

fn add(b: &mut SiteBuilder, path: &str, data: &'static [u8]) {
    b.add_file(path, Body::Static(data), git_blob_id(data), MTIME, false)
        .unwrap();
}

fn test_site(with_404: bool) -> Site {
    let mut b = SiteBuilder::new(SiteLimits::default());
    add(&mut b, "index.html", b"<h1>home</h1>");
    add(&mut b, "css/site.css", b"body{color:red}");
    add(&mut b, "docs/index.html", b"<h1>docs</h1>");
    add(&mut b, "docs/page.html", b"<p>page</p>");
    add(&mut b, "data.bin", b"\x00\x01\x02");
    add(&mut b, "empty.txt", b"");
    add(&mut b, "0123456789.txt", b"0123456789");
    add(&mut b, "big.txt", &BIG);
    add(&mut b, "ä b.html", b"umlaut");
    add(&mut b, "feed", b"<rss/>");
    b.add_file(
        "future.txt",
        Body::Static(b"f"),
        git_blob_id(b"f"),
        UNIX + 1000,
        false,
    )
    .unwrap();
    b.add_redirect("old.html", "new.html").unwrap();
    if with_404 {
        add(&mut b, "404.html", b"<h1>gone</h1>");
    }
    b.finish(SiteMeta {
        source: "test".into(),
        commit: None,
        last_modified: Some(MTIME),
    })
    .unwrap()
}

fn etag_of(data: &[u8]) -> String {
    crate::site::ETag::from_blob_id(&git_blob_id(data))
        .as_str()
        .to_string()
}

#[derive(Debug, Clone)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
    fn text(&self) -> &str {
        core::str::from_utf8(&self.body).unwrap()
    }
}

/// Splits output into responses. A response whose `Content-Length` bytes
/// are not followed by another response (or the end) is taken as bodiless
/// (HEAD); `heads` forces that. Panics on malformed framing.
fn parse_all(mut out: &[u8], heads: &[bool]) -> Vec<Resp> {
    let mut v = Vec::new();
    let mut idx = 0;
    while !out.is_empty() {
        let (r, rest) = parse_one(out, heads.get(idx).copied()).unwrap_or_else(|| {
            let shown = &out[..out.len().min(300)];
            panic!("bad framing: {:?}", String::from_utf8_lossy(shown))
        });
        if r.status >= 200 {
            idx += 1;
        }
        v.push(r);
        out = rest;
    }
    v
}

fn parse_one(out: &[u8], head: Option<bool>) -> Option<(Resp, &[u8])> {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = core::str::from_utf8(&out[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line.strip_prefix("HTTP/1.1 ")?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    if rest.as_bytes().get(3) != Some(&b' ') {
        return None;
    }
    let mut headers = Vec::new();
    for l in lines {
        let (n, val) = l.split_once(": ")?;
        if n.is_empty() || n.contains(' ') {
            return None;
        }
        headers.push((n.to_string(), val.to_string()));
    }
    let mut r = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    let after = &out[end + 4..];
    if status < 200 || status == 304 {
        if r.has("content-length") && status < 200 {
            return None;
        }
        return Some((r, after));
    }
    let cl: usize = r.header("content-length")?.parse().ok()?;
    let bodyless = |a: &[u8]| a.is_empty() || a.starts_with(b"HTTP/1.1 ");
    let take_body = match head {
        Some(true) => false,
        Some(false) => true,
        None => {
            let fits = after.len() >= cl && bodyless(&after[cl..]);
            if fits {
                true
            } else if bodyless(after) {
                false
            } else {
                return None;
            }
        }
    };
    if take_body {
        if after.len() < cl {
            return None;
        }
        r.body = after[..cl].to_vec();
        Some((r, &after[cl..]))
    } else {
        Some((r, after))
    }
}

/// Drives one connection like an event loop would.
struct H {
    conn: Connection,
    site: Option<Site>,
    now: Instant,
    unix: u64,
    events: Vec<Event>,
    out: Vec<u8>,
}

impl H {
    fn new(role: Role, cfg: HttpConfig, site: Option<Site>) -> H {
        let now = Instant::from_secs(1000);
        H {
            conn: Connection::new(Arc::new(cfg), role, now),
            site,
            now,
            unix: UNIX,
            events: Vec::new(),
            out: Vec::new(),
        }
    }
    fn site() -> H {
        H::new(
            Role::Site { secure: true },
            HttpConfig::default(),
            Some(test_site(false)),
        )
    }
    fn with(cfg: HttpConfig) -> H {
        H::new(Role::Site { secure: true }, cfg, Some(test_site(false)))
    }

    /// Feeds all of `input` (respecting back-pressure), processing and
    /// draining output in `step`-sized pieces.
    fn feed_with(&mut self, mut input: &[u8], step: usize) {
        loop {
            let n = self.conn.receive(input, self.now);
            input = &input[n..];
            while let Some(e) = self.conn.poll(self.site.as_ref(), self.now, self.unix) {
                self.events.push(e);
            }
            let mut drained = false;
            loop {
                let chunk = self.conn.output();
                if chunk.is_empty() {
                    break;
                }
                let k = chunk.len().min(step);
                self.out.extend_from_slice(&chunk[..k]);
                self.conn.consume(k);
                drained = true;
            }
            if !drained && (n == 0 || input.is_empty()) {
                break;
            }
        }
    }
    fn feed(&mut self, input: &[u8]) {
        self.feed_with(input, usize::MAX);
    }
    fn take(&mut self) -> Vec<Resp> {
        let out = core::mem::take(&mut self.out);
        parse_all(&out, &[])
    }
    fn take_heads(&mut self, heads: &[bool]) -> Vec<Resp> {
        let out = core::mem::take(&mut self.out);
        parse_all(&out, heads)
    }
    fn one(&mut self, req: &str) -> Resp {
        self.feed(req.as_bytes());
        let mut r = self.take();
        assert_eq!(r.len(), 1, "{req:?} -> {r:?}");
        r.pop().unwrap()
    }
    fn head(&mut self, req: &str) -> Resp {
        self.feed(req.as_bytes());
        let mut r = self.take_heads(&[true]);
        assert_eq!(r.len(), 1, "{req:?} -> {r:?}");
        r.pop().unwrap()
    }
    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        self.unix += secs;
    }
    fn timeout(&mut self) {
        self.conn.on_timeout(self.now);
        self.feed(b"");
    }
}

fn get(path: &str) -> String {
    alloc::format!("GET {path} HTTP/1.1\r\nHost: example.org\r\n\r\n")
}

fn get_with(path: &str, extra: &str) -> String {
    alloc::format!("GET {path} HTTP/1.1\r\nHost: example.org\r\n{extra}\r\n")
}

#[test]
fn get_index_headers() {
    let mut h = H::site();
    let r = h.one(&get("/"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "<h1>home</h1>");
    assert_eq!(r.header("date"), Some("Tue, 14 Nov 2023 22:13:20 GMT"));
    assert_eq!(r.header("server"), Some("unipi-rs"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(r.header("etag"), Some(etag_of(b"<h1>home</h1>").as_str()));
    assert_eq!(r.header("last-modified"), Some(MTIME_STR));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(!r.has("connection"));
    assert!(!r.has("strict-transport-security"));
    assert!(!h.conn.wants_close());
    // The first line is byte-exact.
    h.feed(get("/index.html").as_bytes());
    assert!(h.out.starts_with(b"HTTP/1.1 200 OK\r\nDate: "));
}

#[test]
fn head_has_same_headers_without_body() {
    let mut h = H::site();
    let g = h.one(&get("/css/site.css"));
    let r = h.head("HEAD /css/site.css HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.headers, g.headers);
    // HEAD of a 404 has no body either, and the connection stays usable.
    let r = h.head("HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 404);
    assert_eq!(h.one(&get("/")).status, 200);
}

#[test]
fn content_types() {
    let mut cfg = HttpConfig::default();
    cfg.add_mime_type("/feed", "application/rss+xml");
    cfg.add_mime_type("/docs/index.html", "text/plain");
    cfg.set_default_mime_type("application/x-unknown");
    let mut h = H::with(cfg);
    let ct = |h: &mut H, p: &str| h.one(&get(p)).header("content-type").unwrap().to_string();
    assert_eq!(ct(&mut h, "/css/site.css"), "text/css; charset=utf-8");
    assert_eq!(ct(&mut h, "/feed"), "application/rss+xml; charset=utf-8");
    assert_eq!(ct(&mut h, "/data.bin"), "application/x-unknown");
    assert_eq!(ct(&mut h, "/empty.txt"), "text/plain; charset=utf-8");
    // Effective path: the directory index decides, and overrides apply to it.
    assert_eq!(ct(&mut h, "/"), "text/html; charset=utf-8");
    assert_eq!(ct(&mut h, "/docs/"), "text/plain; charset=utf-8");
    let mut h = H::site();
    assert_eq!(ct(&mut h, "/data.bin"), "application/octet-stream");
}

#[test]
fn directories() {
    let mut h = H::site();
    let r = h.one(&get("/docs/"));
    assert_eq!((r.status, r.text()), (200, "<h1>docs</h1>"));
    let r = h.one(&get("/docs/page.html"));
    assert_eq!((r.status, r.text()), (200, "<p>page</p>"));
    let r = h.one(&get("/docs"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs/"));
    assert_eq!(r.header("content-length"), Some("0"));
    let r = h.one(&get("/docs?a=1&b=%20"));
    assert_eq!(r.header("location"), Some("/docs/?a=1&b=%20"));
    // Never a protocol-relative Location.
    let r = h.one(&get("//docs"));
    assert_eq!(r.header("location"), Some("/docs/"));
    assert_eq!(h.one(&get("//docs//page.html")).status, 200);
    assert_eq!(h.one(&get("/css/")).status, 404);
    assert_eq!(h.one(&get("/index.html/")).status, 404);
}

#[test]
fn symlink_redirect() {
    let mut h = H::site();
    let r = h.one(&get("/old.html"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("new.html"));
}

#[test]
fn not_found_variants() {
    let mut h = H::site();
    let r = h.one(&get("/missing"));
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(!h.conn.wants_close());

    let mut h = H::new(
        Role::Site { secure: false },
        HttpConfig::default(),
        Some(test_site(true)),
    );
    let r = h.one(&get("/missing"));
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "<h1>gone</h1>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(!r.has("etag"));

    let cfg = HttpConfig {
        default_url: Some("https://muen.sk/".into()),
        ..HttpConfig::default()
    };
    let mut h = H::with(cfg);
    let r = h.one(&get("/missing"));
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://muen.sk/"));
    assert_eq!(h.one(&get("/")).status, 200);
}

#[test]
fn no_site_yet() {
    let mut h = H::new(Role::Site { secure: true }, HttpConfig::default(), None);
    let r = h.one(&get("/"));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(!h.conn.wants_close());
    h.site = Some(test_site(false));
    assert_eq!(h.one(&get("/")).status, 200);
}

#[test]
fn path_rules() {
    let mut h = H::site();
    for (path, status) in [
        ("/%7e", 400),
        ("/%7E", 400),
        ("/%41", 400),
        ("/%zz", 400),
        ("/%4", 400),
        ("/%00", 400),
        ("/%FF", 400),
        ("/a/../index.html", 400),
        ("/./index.html", 400),
        ("/..", 400),
        ("/%C3%A4%20b.html", 200),
        ("/ä%20b.html", 200),
        ("/index.html?x=1", 200),
        ("/index.html;jsessionid=1", 200),
        ("/index.html?%zz", 200),
        ("http://example.org/index.html", 200),
        ("HTTPS://example.org", 200),
        ("*", 400),
        ("index.html", 400),
    ] {
        let r = h.one(&get(path));
        assert_eq!(r.status, status, "{path}");
        // A bad path does not break the connection.
        assert!(!h.conn.wants_close(), "{path}");
    }
}

#[test]
fn methods() {
    let mut h = H::site();
    for m in ["POST", "PUT", "DELETE", "PATCH", "TRACE"] {
        let r = h.one(&alloc::format!("{m} / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    }
    // Known but not allowed, before the (authority-form) target is looked at.
    let r = h.one("CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n");
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, HEAD, OPTIONS"))
    );
    // Unknown methods: 501 (RFC 9110 §9.1), on both roles.
    for m in ["BREW", "get", "PROPFIND"] {
        let r = h.one(&alloc::format!("{m} / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(r.status, 501, "{m}");
    }
    let mut redirect = H::new(Role::Redirect, HttpConfig::default(), None);
    assert_eq!(
        redirect.one("BREW / HTTP/1.1\r\nHost: x\r\n\r\n").status,
        501
    );
    // OPTIONS, for a path and for the server as a whole.
    for target in ["/", "*", "/docs/page.html"] {
        let r = h.one(&alloc::format!(
            "OPTIONS {target} HTTP/1.1\r\nHost: x\r\n\r\n"
        ));
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
        assert_eq!(r.header("content-length"), Some("0"));
    }
    assert_eq!(h.one("GET * HTTP/1.1\r\nHost: x\r\n\r\n").status, 400);
    assert!(!h.conn.wants_close());
    let r = redirect.one("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn conditionals() {
    let mut h = H::site();
    let tag = etag_of(b"<h1>home</h1>");
    let st = |h: &mut H, extra: &str| h.one(&get_with("/", extra)).status;
    let r = h.one(&get_with("/", &alloc::format!("If-None-Match: {tag}\r\n")));
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(tag.as_str()));
    assert_eq!(r.header("last-modified"), Some(MTIME_STR));
    assert!(r.has("date"));
    assert!(!r.has("content-length"));
    assert_eq!(
        st(&mut h, &alloc::format!("If-None-Match: W/{tag}\r\n")),
        304
    );
    assert_eq!(
        st(&mut h, &alloc::format!("If-None-Match: \"a\" , {tag}\r\n")),
        304
    );
    assert_eq!(
        st(&mut h, "If-None-Match: \"a\"\r\nIf-None-Match: *\r\n"),
        304
    );
    assert_eq!(st(&mut h, "If-None-Match: \"a\", \"b\"\r\n"), 200);
    // Unipi-style unquoted commit hash does not match.
    assert_eq!(
        st(
            &mut h,
            &alloc::format!("If-None-Match: {}\r\n", &tag[1..41])
        ),
        200
    );
    assert_eq!(
        st(
            &mut h,
            &alloc::format!("If-Modified-Since: {MTIME_STR}\r\n")
        ),
        304
    );
    assert_eq!(
        st(
            &mut h,
            "If-Modified-Since: Sun, 13 Sep 2020 12:26:39 GMT\r\n"
        ),
        200
    );
    assert_eq!(
        st(
            &mut h,
            "If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
        ),
        304
    );
    assert_eq!(
        st(
            &mut h,
            "If-Modified-Since: Sunday, 13-Sep-20 12:26:40 GMT\r\n"
        ),
        304
    );
    assert_eq!(
        st(&mut h, "If-Modified-Since: Sun Sep 13 12:26:40 2020\r\n"),
        304
    );
    assert_eq!(st(&mut h, "If-Modified-Since: yesterday\r\n"), 200);
    // If-None-Match takes precedence over If-Modified-Since.
    assert_eq!(
        st(
            &mut h,
            &alloc::format!("If-None-Match: \"x\"\r\nIf-Modified-Since: {MTIME_STR}\r\n")
        ),
        200
    );
    // If-Match / If-Unmodified-Since.
    assert_eq!(st(&mut h, "If-Match: \"x\"\r\n"), 412);
    assert_eq!(st(&mut h, &alloc::format!("If-Match: W/{tag}\r\n")), 412);
    assert_eq!(st(&mut h, &alloc::format!("If-Match: {tag}\r\n")), 200);
    assert_eq!(st(&mut h, "If-Match: *\r\n"), 200);
    assert_eq!(
        st(
            &mut h,
            "If-Unmodified-Since: Sun, 13 Sep 2020 12:26:39 GMT\r\n"
        ),
        412
    );
    assert_eq!(
        st(
            &mut h,
            &alloc::format!("If-Unmodified-Since: {MTIME_STR}\r\n")
        ),
        200
    );
    // HEAD gets 304 too.
    let r = h.head(&alloc::format!(
        "HEAD / HTTP/1.1\r\nHost: x\r\nIf-None-Match: {tag}\r\n\r\n"
    ));
    assert_eq!(r.status, 304);
    assert!(!h.conn.wants_close());
}

#[test]
fn last_modified_never_in_future() {
    let mut h = H::site();
    let r = h.one(&get("/future.txt"));
    assert_eq!(r.header("last-modified"), r.header("date"));
}

#[test]
fn ranges() {
    let mut h = H::site();
    let rg = |h: &mut H, extra: &str| h.one(&get_with("/0123456789.txt", extra));
    let r = rg(&mut h, "Range: bytes=2-4\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.text(), "234");
    assert_eq!(r.header("content-range"), Some("bytes 2-4/10"));
    assert_eq!(r.header("content-length"), Some("3"));
    assert!(r.has("etag"));
    assert_eq!(rg(&mut h, "Range: bytes=-3\r\n").text(), "789");
    assert_eq!(rg(&mut h, "Range: bytes=7-\r\n").text(), "789");
    assert_eq!(rg(&mut h, "Range: bytes=7-100\r\n").text(), "789");
    let r = rg(&mut h, "Range: bytes=10-\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */10"));
    assert!(!h.conn.wants_close());
    let r = rg(&mut h, "Range: bytes=0-1,3-4\r\n");
    assert_eq!((r.status, r.text()), (200, "0123456789"));
    let r = rg(&mut h, "Range: pages=1\r\n");
    assert_eq!(r.status, 200);
    // If-Range.
    let tag = etag_of(b"0123456789");
    let r = rg(
        &mut h,
        &alloc::format!("Range: bytes=0-0\r\nIf-Range: {tag}\r\n"),
    );
    assert_eq!((r.status, r.text()), (206, "0"));
    let r = rg(&mut h, "Range: bytes=0-0\r\nIf-Range: \"old\"\r\n");
    assert_eq!(r.status, 200);
    let r = rg(
        &mut h,
        &alloc::format!("Range: bytes=0-0\r\nIf-Range: W/{tag}\r\n"),
    );
    assert_eq!(r.status, 200);
    let r = rg(
        &mut h,
        &alloc::format!("Range: bytes=0-0\r\nIf-Range: {MTIME_STR}\r\n"),
    );
    assert_eq!(r.status, 206);
    let r = rg(
        &mut h,
        "Range: bytes=0-0\r\nIf-Range: Sun, 13 Sep 2020 12:26:41 GMT\r\n",
    );
    assert_eq!(r.status, 200);
    // Two Range headers: ignored.
    assert_eq!(
        rg(&mut h, "Range: bytes=0-0\r\nRange: bytes=1-1\r\n").status,
        200
    );
    // HEAD ignores Range.
    let r = h.head("HEAD /0123456789.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10"));
    // Empty file: any range is unsatisfiable.
    let r = h.one(&get_with("/empty.txt", "Range: bytes=0-\r\n"));
    assert_eq!(r.status, 416);
    // A range of a big file is a slice of the shared body.
    let r = h.one(&get_with("/big.txt", "Range: bytes=99990-\r\n"));
    assert_eq!((r.status, r.body.len()), (206, 10));
}

#[test]
fn redirect_role() {
    let mut h = H::new(Role::Redirect, HttpConfig::default(), None);
    let r = h.one("GET /a/b?c=d HTTP/1.1\r\nHost: example.org:8080\r\n\r\n");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("https://example.org:4433/a/b?c=d")
    );
    assert!(!r.has("strict-transport-security"));
    assert!(!r.has("x-content-type-options"));
    // Any method; the hook path too.
    let r = h.one("POST /hook HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.header("location"), Some("https://[::1]:4433/hook"));
    let r = h.one("GET http://other.org/x HTTP/1.1\r\nHost: example.org\r\n\r\n");
    assert_eq!(r.header("location"), Some("https://other.org:4433/x"));
    let r = h.one("GET /ä HTTP/1.1\r\nHost: example.org\r\n\r\n");
    assert_eq!(
        r.header("location"),
        Some("https://example.org:4433/%C3%A4")
    );
    // No host at all.
    let r = h.one("GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 400);
    let mut h = H::new(Role::Redirect, HttpConfig::default(), None);
    for bad in ["a b", "a/b", "a:b:c", "[::1", ""] {
        let r = h.one(&alloc::format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n"));
        assert_eq!(r.status, 400, "{bad:?}");
        h = H::new(Role::Redirect, HttpConfig::default(), None);
    }
    // Configured hostname and port 443.
    let cfg = HttpConfig {
        hostname: Some("muen.sk".into()),
        https_port: 443,
        ..HttpConfig::default()
    };
    let mut h = H::new(Role::Redirect, cfg.clone(), None);
    let r = h.one("GET /x?y HTTP/1.1\r\nHost: evil.org\r\n\r\n");
    assert_eq!(r.header("location"), Some("https://muen.sk/x?y"));
    let r = h.one("GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.header("location"), Some("https://muen.sk/"));
    assert!(h.conn.wants_close());
    let mut h = H::new(Role::Redirect, cfg, None);
    let r = h.one("GET //evil.org/x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.header("location"), Some("https://muen.sk//evil.org/x"));
}

#[test]
fn hsts_only_on_tls_site() {
    let cfg = HttpConfig {
        hsts_max_age: Some(31_536_000),
        ..HttpConfig::default()
    };
    let mut h = H::with(cfg.clone());
    for p in ["/", "/missing", "/docs"] {
        let r = h.one(&get(p));
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{p}"
        );
    }
    let mut h = H::new(
        Role::Site { secure: false },
        cfg.clone(),
        Some(test_site(false)),
    );
    assert!(!h.one(&get("/")).has("strict-transport-security"));
    let mut h = H::new(Role::Redirect, cfg, None);
    assert!(!h.one(&get("/")).has("strict-transport-security"));
}

fn assert_closed_with(h: &mut H, req: &[u8], status: u16) {
    let shown = String::from_utf8_lossy(&req[..req.len().min(80)]).into_owned();
    h.feed(req);
    let r = h.take();
    assert_eq!(r.len(), 1, "{shown:?}");
    assert_eq!(r[0].status, status, "{shown:?}");
    assert_eq!(r[0].header("connection"), Some("close"));
    assert!(h.conn.wants_close());
    // Nothing more is answered.
    h.feed(get("/").as_bytes());
    assert!(h.out.is_empty());
}

#[test]
fn limits() {
    let long_target = alloc::format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    assert_closed_with(&mut H::site(), long_target.as_bytes(), 414);
    // Long target without the rest of the line yet.
    let partial = alloc::format!("GET /{}", "a".repeat(9000));
    assert_closed_with(&mut H::site(), partial.as_bytes(), 414);
    let long_method = alloc::format!("{} / HTTP/1.1\r\n\r\n", "G".repeat(9000));
    assert_closed_with(&mut H::site(), long_method.as_bytes(), 400);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..65 {
        many.push_str(&alloc::format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_closed_with(&mut H::site(), many.as_bytes(), 431);
    let big = alloc::format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "y".repeat(17000)
    );
    assert_closed_with(&mut H::site(), big.as_bytes(), 431);
    // Exactly at the limits is fine.
    let mut cfg = HttpConfig::default();
    cfg.limits.max_headers = 3;
    let mut h = H::with(cfg.clone());
    assert_eq!(
        h.one("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n")
            .status,
        200
    );
    let mut h = H::with(cfg);
    assert_closed_with(
        &mut h,
        b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        431,
    );
    let mut cfg = HttpConfig::default();
    cfg.limits.max_request_line = 30;
    let mut h = H::with(cfg);
    assert_eq!(
        h.one("GET /docs/page.html HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        200
    );
    assert_closed_with(
        &mut h,
        b"GET /docs/page.htmlxx HTTP/1.1\r\nHost: x\r\n\r\n",
        414,
    );
}

#[test]
fn malformed_requests() {
    for req in [
        &b"GET / HTTP/1.1\r\nHost x\r\n\r\n"[..],
        b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n bad fold\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / FOO\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        // A bare LF anywhere in the head (RFC 9112 §2.2): a smuggling shape.
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\nContent-Length: 41\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\r\nHost: x\n\r\n",
        b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert_closed_with(&mut H::site(), req, 400);
    }
    assert_closed_with(&mut H::site(), b"GET / HTTP/2.0\r\n\r\n", 505);
    // Transfer codings we do not decode before the final chunked: 501.
    for te in ["gzip, chunked", "deflate,chunked", "identity, chunked"] {
        let req =
            alloc::format!("POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_closed_with(&mut H::site(), req.as_bytes(), 501);
    }
    assert_closed_with(&mut H::site(), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
    // Identical repeated Content-Length values are accepted.
    let mut h = H::site();
    let r = h.one("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 0\r\n\r\n");
    assert_eq!(r.status, 200);
    // Leading empty lines are ignored.
    let r = h.one("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    // HTTP/1.x with x above 1 is served as HTTP/1.1 (RFC 9110 §2.5).
    let r = h.one("GET / HTTP/1.2\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.text()), (200, "<h1>home</h1>"));
    assert!(!h.conn.wants_close());
}

#[test]
fn keep_alive_and_close() {
    let mut h = H::site();
    let r = h.one("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(h.conn.wants_close());

    let mut h = H::site();
    let r = h.one("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(h.conn.wants_close());

    // HTTP/1.0 closes by default, needs no Host.
    let mut h = H::site();
    let r = h.one("GET / HTTP/1.0\r\n\r\n");
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(h.conn.wants_close());

    // HTTP/1.0 keep-alive on request.
    let mut h = H::site();
    let r = h.one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    assert!(!h.conn.wants_close());
    assert_eq!(
        h.one("GET /docs/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .status,
        200
    );

    // Output not drained yet: not closing yet.
    let mut h = H::site();
    h.conn.receive(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        h.now,
    );
    assert!(h.conn.poll(h.site.as_ref(), h.now, h.unix).is_none());
    assert!(!h.conn.wants_close());
    while !h.conn.output().is_empty() {
        assert!(!h.conn.wants_close());
        let n = h.conn.output().len();
        h.conn.consume(n);
    }
    assert!(h.conn.wants_close());
    assert_eq!(h.conn.deadline(), None);
}

#[test]
fn pipelining_in_order() {
    let mut reqs = String::new();
    reqs.push_str(&get("/"));
    reqs.push_str("HEAD /css/site.css HTTP/1.1\r\nHost: x\r\n\r\n");
    reqs.push_str(&get("/missing"));
    reqs.push_str(&get("/docs"));
    reqs.push_str(&get("/big.txt"));
    reqs.push_str("OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n");
    for i in 0..20 {
        reqs.push_str(&get(if i % 2 == 0 {
            "/docs/page.html"
        } else {
            "/css/site.css"
        }));
    }
    reqs.push_str("GET /0123456789.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    reqs.push_str(&get("/never"));
    for step in [1, 7, 1000, usize::MAX] {
        let mut h = H::site();
        h.feed_with(reqs.as_bytes(), step);
        let mut heads = vec![false; 27];
        heads[1] = true;
        let r = h.take_heads(&heads);
        let statuses: Vec<u16> = r.iter().map(|r| r.status).collect();
        let mut expected = vec![200, 200, 404, 301, 200, 200];
        expected.extend([200; 20]);
        expected.push(200);
        assert_eq!(statuses, expected, "step {step}");
        assert_eq!(r[0].text(), "<h1>home</h1>");
        assert!(r[1].body.is_empty());
        assert_eq!(r[4].body.len(), BIG.len());
        assert_eq!(r[6].text(), "<p>page</p>");
        assert_eq!(r[7].text(), "body{color:red}");
        assert_eq!(r[26].text(), "0123456789");
        assert!(h.conn.wants_close());
    }
}

#[test]
fn back_pressure() {
    let mut cfg = HttpConfig::default();
    cfg.limits.max_header_bytes = 1024;
    cfg.limits.max_queued_responses = 2;
    let mut h = H::with(cfg);
    let one = get("/docs/page.html");
    let many = one.repeat(100);
    // The buffer takes at most its capacity.
    let n = h.conn.receive(many.as_bytes(), h.now);
    assert_eq!(n, 1024);
    // Without draining output, only two responses are produced.
    while h.conn.poll(h.site.as_ref(), h.now, h.unix).is_some() {}
    // Only the bytes of the parsed requests were freed.
    assert_eq!(h.conn.receive(&many.as_bytes()[n..], h.now), 2 * one.len());
    assert_eq!(h.conn.receive(&many.as_bytes()[n..], h.now), 0);
    let mut buf = vec![0u8; 100_000];
    let len = h.conn.copy_output(&mut buf);
    assert_eq!(parse_all(&buf[..len], &[]).len(), 2);
    // Driving it fully answers everything.
    let mut h = H::with(HttpConfig {
        limits: HttpLimits {
            max_header_bytes: 1024,
            max_queued_responses: 2,
            ..HttpLimits::default()
        },
        ..HttpConfig::default()
    });
    h.feed(many.as_bytes());
    assert_eq!(h.take().len(), 100);
}

#[test]
fn bodies_are_never_waited_for() {
    // A body on any request but the webhook: the answer comes at once and
    // the connection closes instead of reading (and discarding) the body.
    for req in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 500000\r\n\r\n",
    ] {
        assert_closed_with(&mut H::site(), req, 405);
    }
    let mut h = H::site();
    h.feed(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz");
    let r = h.take();
    assert_eq!(
        (r[0].status, r[0].header("connection")),
        (200, Some("close"))
    );
    assert!(h.conn.wants_close());
}

#[test]
fn hook_bodies_are_bounded() {
    assert_closed_with(
        &mut H::site(),
        b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n",
        413,
    );
    let mut h = H::site();
    h.feed(b"POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let chunk = alloc::format!("{:x}\r\n", 2 * 1024 * 1024);
    assert_closed_with(&mut h, chunk.as_bytes(), 413);
    // Broken chunked framing.
    let mut h = H::site();
    h.feed(b"POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_closed_with(&mut h, b"zz\r\n", 400);
    // A chunked hook body, then a pipelined request.
    let mut h = H::site();
    h.feed(
        b"POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(h.events, vec![Event::HookRequested]);
    h.conn.complete_hook(HookOutcome::Unchanged, h.now, h.unix);
    h.feed(b"");
    let r = h.take();
    assert_eq!(
        r.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![200, 200]
    );
}

#[test]
fn expect_continue() {
    let mut h = H::site();
    h.feed(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(h.out, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(h.events.is_empty());
    h.out.clear();
    h.feed(b"{ok}");
    assert_eq!(h.events, vec![Event::HookRequested]);
    h.conn.complete_hook(HookOutcome::Unchanged, h.now, h.unix);
    h.feed(b"");
    let r = h.take();
    assert_eq!((r[0].status, r[0].text()), (200, "pulled, no changes"));
    // No body: no interim response.
    let r = h.one("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(r.status, 200);
    // Unknown expectation.
    assert_closed_with(
        &mut H::site(),
        b"GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n",
        417,
    );
}

#[test]
fn hook_flow() {
    let mut h = H::site();
    h.feed(b"GET /hook?data={abc} HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.events, vec![Event::HookRequested]);
    assert!(h.conn.awaiting_hook());
    assert!(h.out.is_empty());
    // Pipelined requests wait for the hook.
    h.feed(get("/").as_bytes());
    assert!(h.out.is_empty());
    assert_eq!(h.conn.poll(h.site.as_ref(), h.now, h.unix), None);
    assert_eq!(h.conn.deadline(), None);
    h.conn.complete_hook(
        HookOutcome::Updated {
            commit: "3b18e512dba79e4c8300dd08aeb37f8e728b8dad".into(),
        },
        h.now,
        h.unix,
    );
    h.feed(b"");
    let r = h.take();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].status, 200);
    assert_eq!(
        r[0].text(),
        "pulled 3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
    );
    assert_eq!(
        r[0].header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(r[1].text(), "<h1>home</h1>");
    assert!(!h.conn.awaiting_hook());

    // POST with a body; failure.
    h.events.clear();
    h.feed(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(h.events, vec![Event::HookRequested]);
    h.conn.complete_hook(
        HookOutcome::Failed {
            reason: "fetch failed: connection refused".into(),
        },
        h.now,
        h.unix,
    );
    h.feed(b"");
    let r = h.take();
    assert_eq!(
        (r[0].status, r[0].text()),
        (500, "fetch failed: connection refused")
    );

    // Wrong methods, near misses.
    let r = h.head("HEAD /hook HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, POST")));
    assert_eq!(h.one("PUT /hook HTTP/1.1\r\nHost: x\r\n\r\n").status, 405);
    assert_eq!(h.one(&get("/hook/")).status, 404);
    assert_eq!(h.one(&get("/hoo")).status, 404);
    assert_eq!(h.one(&get("/hookx")).status, 404);
    assert_eq!(h.one(&get("/Hook")).status, 404);
    assert_eq!(h.one(&get("/hoo%6B")).status, 400);
    assert_eq!(h.events.len(), 1);

    // Works without a site, and with a custom path; stray completion ignored.
    let cfg = HttpConfig {
        hook_path: "/s3cr3t/pull".into(),
        ..HttpConfig::default()
    };
    let mut h = H::new(Role::Site { secure: true }, cfg, None);
    h.conn.complete_hook(HookOutcome::Unchanged, h.now, h.unix);
    assert_eq!(h.conn.output(), b"");
    assert_eq!(h.one(&get("/hook")).status, 503);
    h.feed(b"GET /s3cr3t//pull HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(h.events.is_empty());
    assert_eq!(h.take()[0].status, 503);
    h.feed(b"GET /s3cr3t/pull HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(h.events, vec![Event::HookRequested]);
    h.conn.complete_hook(HookOutcome::Unchanged, h.now, h.unix);
    h.feed(b"");
    let r = h.take();
    assert_eq!(r[0].header("connection"), Some("close"));
    assert!(h.conn.wants_close());
}

#[test]
fn header_timeout() {
    let mut h = H::site();
    let idle = h.conn.deadline().unwrap();
    assert_eq!(idle, h.now + Duration::from_secs(30));
    h.feed(b"GET / HTTP/1.1\r\nHo");
    assert_eq!(h.conn.deadline(), Some(h.now + Duration::from_secs(10)));
    h.advance(5);
    h.feed(b"st: x\r\n");
    // Trickling bytes do not extend the header deadline.
    assert_eq!(h.conn.deadline(), Some(h.now + Duration::from_secs(5)));
    h.advance(4);
    h.timeout();
    assert!(h.out.is_empty(), "early on_timeout is harmless");
    h.advance(1);
    h.timeout();
    let r = h.take();
    assert_eq!(r[0].status, 408);
    assert_eq!(r[0].header("connection"), Some("close"));
    assert_eq!(r[0].header("date"), Some("Tue, 14 Nov 2023 22:13:30 GMT"));
    assert!(h.conn.wants_close());
}

#[test]
fn no_header_timeout_while_output_is_full() {
    let mut cfg = HttpConfig::default();
    cfg.limits.max_queued_responses = 1;
    let mut h = H::with(cfg);
    let two = alloc::format!("{}{}", get("/big.txt"), get("/"));
    h.conn.receive(two.as_bytes(), h.now);
    let _ = h.conn.poll(h.site.as_ref(), h.now, h.unix);
    // The second request waits for the first response to drain; only the
    // send timeout applies meanwhile.
    assert_eq!(h.conn.deadline(), Some(h.now + Duration::from_secs(60)));
    h.advance(30);
    let chunk = h.conn.output().to_vec();
    h.out.extend_from_slice(&chunk);
    h.conn.consume(chunk.len());
    h.conn.on_timeout(h.now);
    assert!(!h.conn.wants_close());
    h.feed(b"");
    let r = h.take();
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].status, r[1].status), (200, 200));
}

#[test]
fn idle_timeout() {
    let mut h = H::site();
    assert_eq!(h.one(&get("/")).status, 200);
    h.advance(29);
    assert_eq!(h.conn.deadline(), Some(h.now + Duration::from_secs(1)));
    h.timeout();
    assert!(!h.conn.wants_close());
    h.advance(1);
    h.timeout();
    assert!(h.conn.wants_close());
    assert!(h.out.is_empty(), "an idle connection closes silently");
    // A new request resets the idle timer.
    let mut h = H::site();
    h.advance(20);
    assert_eq!(h.one(&get("/")).status, 200);
    h.advance(20);
    h.timeout();
    assert!(!h.conn.wants_close());
}

#[test]
fn body_timeout() {
    let mut h = H::site();
    h.feed(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n123");
    assert_eq!(h.conn.deadline(), Some(h.now + Duration::from_secs(30)));
    h.advance(30);
    h.timeout();
    let r = h.take();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 408);
    assert!(h.conn.wants_close());
    assert!(
        h.events.is_empty(),
        "no pull for an incomplete webhook request"
    );
}

#[test]
fn send_timeout() {
    let mut h = H::site();
    h.conn.receive(get("/big.txt").as_bytes(), h.now);
    let _ = h.conn.poll(h.site.as_ref(), h.now, h.unix);
    let first = h.conn.output().len();
    h.conn.consume(first);
    h.advance(59);
    h.conn.on_timeout(h.now);
    assert!(!h.conn.wants_close());
    // Progress (reported without a time) counts as activity at the next
    // observation.
    h.conn.consume(100);
    h.advance(59);
    h.conn.on_timeout(h.now);
    assert!(!h.conn.wants_close());
    h.advance(60);
    h.conn.on_timeout(h.now);
    assert!(h.conn.wants_close());
    assert!(h.conn.output().is_empty());
}

#[test]
fn bodies_are_shared_not_copied() {
    let mut h = H::site();
    h.conn.receive(get("/big.txt").as_bytes(), h.now);
    let _ = h.conn.poll(h.site.as_ref(), h.now, h.unix);
    let head = h.conn.output().len();
    h.conn.consume(head);
    let body = h.conn.output();
    assert_eq!(body.as_ptr(), BIG.as_ptr());
    assert_eq!(body.len(), BIG.len());
    // Replacing the site does not disturb a response in flight.
    let mut b = SiteBuilder::new(SiteLimits::default());
    b.add_file(
        "big.txt",
        Body::from(vec![b'x'; 5]),
        git_blob_id(b"xxxxx"),
        0,
        false,
    )
    .unwrap();
    let shared_site = b.finish(SiteMeta::default()).unwrap();
    let mut h = H::new(
        Role::Site { secure: true },
        HttpConfig::default(),
        Some(shared_site),
    );
    h.conn.receive(get("/big.txt").as_bytes(), h.now);
    let _ = h.conn.poll(h.site.as_ref(), h.now, h.unix);
    h.site = None; // the old snapshot is dropped
    let mut buf = [0u8; 1000];
    let n = h.conn.copy_output(&mut buf);
    assert!(buf[..n].ends_with(b"\r\n\r\nxxxxx"));
}

#[test]
fn abort_drops_everything() {
    let mut h = H::site();
    h.conn.receive(get("/big.txt").as_bytes(), h.now);
    let _ = h.conn.poll(h.site.as_ref(), h.now, h.unix);
    h.conn.abort(h.now);
    assert!(h.conn.wants_close());
    assert!(h.conn.output().is_empty());
    assert_eq!(h.conn.receive(b"GET", h.now), 3);
    assert_eq!(h.conn.deadline(), None);
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Thousands of random and mutated requests in random chunk sizes: no
/// panic, and the output always splits into well-formed responses.
#[test]
fn robustness_random_requests() {
    let corpus: Vec<Vec<u8>> = [
        get("/"),
        get("/docs"),
        get("/docs/page.html?x=%20"),
        get_with("/0123456789.txt", "Range: bytes=2-4\r\n"),
        get_with("/", "If-None-Match: W/\"x\", *\r\n"),
        get_with("/", "If-Modified-Since: Sun, 13 Sep 2020 12:26:40 GMT\r\n"),
        String::from("POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"),
        String::from(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        ),
        String::from("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        String::from(
            "POST /hook HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
        ),
        String::from("HEAD /docs/ HTTP/1.1\r\nHost: x\r\n\r\n"),
        String::from("GET /%C3%A4%20b.html HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"),
        String::from("GET http://h/big.txt HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"),
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let site = test_site(true);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut statuses = [0usize; 6]; // by class: 1xx..5xx
    for round in 0..10_000 {
        let role = match rng.below(3) {
            0 => Role::Redirect,
            _ => Role::Site {
                secure: rng.below(2) == 0,
            },
        };
        let mut cfg = HttpConfig::default();
        if rng.below(4) == 0 {
            cfg.limits.max_header_bytes = 64 + rng.below(512);
            cfg.limits.max_request_line = 16 + rng.below(256);
            cfg.limits.max_headers = 1 + rng.below(8);
            cfg.limits.max_body_bytes = rng.below(16) as u64;
            cfg.limits.max_queued_responses = 1 + rng.below(3);
        }
        let mut conn = Connection::new(Arc::new(cfg), role, Instant::from_secs(0));
        // Build the input: a few requests, mutated.
        let mut input = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let mut r = corpus[rng.below(corpus.len())].clone();
            let mutations = if rng.below(2) == 0 {
                0
            } else {
                1 + rng.below(3)
            };
            for _ in 0..mutations {
                if r.is_empty() {
                    break;
                }
                let i = rng.below(r.len());
                match rng.below(5) {
                    0 => r[i] = rng.next() as u8,
                    1 => {
                        r.remove(i);
                    }
                    2 => r.insert(i, b"\r\n: %/?;\0\x80 HTTP/1.1"[rng.below(18)]),
                    3 => {
                        let j = rng.below(r.len());
                        let (a, b) = (i.min(j), i.max(j));
                        let piece = r[a..b].to_vec();
                        r.splice(b..b, piece);
                    }
                    _ => r.truncate(i),
                }
            }
            input.extend_from_slice(&r);
        }
        let mut out = Vec::new();
        let mut now = Instant::from_secs(0);
        let mut rest: &[u8] = &input;
        for _ in 0..10_000 {
            let chunk = 1 + rng.below(40);
            let n = conn.receive(&rest[..chunk.min(rest.len())], now);
            rest = &rest[n..];
            while let Some(Event::HookRequested) = conn.poll(Some(&site), now, UNIX) {
                let outcome = match rng.below(3) {
                    0 => HookOutcome::Unchanged,
                    1 => HookOutcome::Updated {
                        commit: "abc".into(),
                    },
                    _ => HookOutcome::Failed {
                        reason: "no".into(),
                    },
                };
                conn.complete_hook(outcome, now, UNIX);
            }
            let _ = conn.deadline();
            if rng.below(8) == 0 {
                // Gathering agrees with the contiguous view.
                let mut buf = [0u8; 64];
                let n = conn.copy_output(&mut buf);
                let first = conn.output();
                let m = n.min(first.len());
                assert_eq!(&buf[..m], &first[..m]);
            }
            let out_chunk = conn.output();
            let k = out_chunk.len().min(1 + rng.below(300));
            out.extend_from_slice(&out_chunk[..k]);
            conn.consume(k);
            if rng.below(50) == 0 {
                now += Duration::from_secs(rng.below(40) as u64);
                conn.on_timeout(now);
            }
            if conn.wants_close() {
                break;
            }
            if rest.is_empty() && conn.output().is_empty() {
                // Let timeouts end it.
                now += Duration::from_secs(31);
                conn.on_timeout(now);
                let _ = conn.poll(Some(&site), now, UNIX);
                if conn.output().is_empty() && !conn.wants_close() {
                    // Idle or waiting for more input: done.
                    break;
                }
            }
        }
        // Drain what is left.
        loop {
            let c = conn.output();
            if c.is_empty() {
                break;
            }
            out.extend_from_slice(c);
            let n = c.len();
            conn.consume(n);
        }
        // Framing must be valid (responses to HEAD are detected by shape).
        let mut rest_out: &[u8] = &out;
        while !rest_out.is_empty() {
            match parse_one(rest_out, None) {
                Some((r, after)) => {
                    statuses[usize::from(r.status / 100).min(5)] += 1;
                    rest_out = after;
                }
                None => panic!(
                    "round {round}: bad framing {:?}\ninput {:?}",
                    String::from_utf8_lossy(&rest_out[..rest_out.len().min(300)]),
                    String::from_utf8_lossy(&input)
                ),
            }
        }
    }
    // The mutations must leave plenty of valid traffic, not just errors.
    assert!(statuses[1] > 0, "{statuses:?}");
    assert!(statuses[2] > 2000, "{statuses:?}");
    assert!(statuses[3] > 500, "{statuses:?}");
    assert!(statuses[4] > 2000, "{statuses:?}");
    assert!(statuses[5] > 50, "{statuses:?}");
}

/// Real-client interop: a blocking loopback harness drives `Connection`
/// (plain HTTP) and `curl` talks to it. Skipped when curl is missing.
/// Serves `site` over real TCP on 127.0.0.1 (one connection at a time, as
/// an event loop would drive it) while `client` runs with the port.
fn with_server(site: Site, cfg: HttpConfig, client: impl FnOnce(u16)) {
    extern crate std;
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let site = Arc::new(site);
    let cfg = Arc::new(cfg);
    let clock = std::time::Instant::now();
    let now = move || Instant::from_millis(clock.elapsed().as_millis() as i64);

    let serve = move |mut stream: TcpStream| {
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        let mut conn = Connection::new(cfg.clone(), Role::Site { secure: false }, now());
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        let mut eof = false;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(10) {
            match stream.read(&mut buf) {
                Ok(0) => eof = true,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
            loop {
                let k = conn.receive(&pending, now());
                pending.drain(..k);
                while let Some(Event::HookRequested) = conn.poll(Some(&site), now(), UNIX) {
                    conn.complete_hook(HookOutcome::Unchanged, now(), UNIX);
                }
                let mut wrote = false;
                while !conn.output().is_empty() {
                    match stream.write(conn.output()) {
                        Ok(n) => {
                            conn.consume(n);
                            wrote = true;
                        }
                        Err(_) => return,
                    }
                }
                if k == 0 && !wrote {
                    break;
                }
            }
            if conn.wants_close() || (eof && pending.is_empty()) {
                return;
            }
            if conn.deadline().is_some_and(|d| now() >= d) {
                conn.on_timeout(now());
            }
        }
    };
    let server = std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((s, _)) => serve(s),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    });
    client(port);
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
}

/// Runs the real curl; `None` when it is not installed.
fn curl(args: &[&str]) -> Option<Vec<u8>> {
    extern crate std;
    let out = std::process::Command::new("curl")
        .args(["-s", "--http1.1", "--max-time", "10"])
        .args(args)
        .output()
        .ok()?;
    Some(out.stdout)
}

#[test]
fn curl_interop() {
    if curl(&["--version"]).is_none() {
        extern crate std;
        std::eprintln!("skipping: curl not available");
        return;
    }
    with_server(test_site(false), HttpConfig::default(), |port| {
        let url = |p: &str| alloc::format!("http://127.0.0.1:{port}{p}");
        let curl = |args: &[&str]| String::from_utf8_lossy(&curl(args).unwrap()).into_owned();

        // Two URLs over one reused connection.
        let out = curl(&[
            "-w",
            "[%{http_code} %{num_connects}]",
            &url("/"),
            &url("/css/site.css"),
        ]);
        assert_eq!(out, "<h1>home</h1>[200 1]body{color:red}[200 0]");
        // Range, HEAD, conditional, redirect following, 404.
        assert_eq!(curl(&["-r", "2-4", &url("/0123456789.txt")]), "234");
        let head = curl(&["-I", &url("/docs/page.html")]);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Length: 11\r\n"), "{head}");
        let tag = etag_of(b"<h1>home</h1>");
        let inm = alloc::format!("If-None-Match: {tag}");
        assert_eq!(
            curl(&[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                &inm,
                &url("/")
            ]),
            "304"
        );
        assert_eq!(curl(&["-L", &url("/docs")]), "<h1>docs</h1>");
        assert_eq!(
            curl(&["-o", "/dev/null", "-w", "%{http_code}", &url("/nope")]),
            "404"
        );
        // Webhook: small form POST, large body with Expect, chunked upload.
        assert_eq!(curl(&["-d", "{}", &url("/hook")]), "pulled, no changes");
        let big = "x".repeat(5000);
        assert_eq!(
            curl(&[
                "-H",
                "Expect: 100-continue",
                "--data-binary",
                &big,
                &url("/hook")
            ]),
            "pulled, no changes"
        );
        assert_eq!(
            curl(&[
                "-H",
                "Transfer-Encoding: chunked",
                "-d",
                "abc",
                &url("/hook")
            ]),
            "pulled, no changes"
        );
        // A 100 KB body arrives intact.
        assert_eq!(curl(&[&url("/big.txt")]).len(), BIG.len());
    });
}

// ------------------------------------------------------------ compression

mod compression {
    use super::*;
    use crate::config::Compression;
    use crate::site::compress::{Compressor, Settings};
    use crate::site::{Coding, ETag, Entry, gzip};

    /// Text that gzip shrinks to about a quarter.
    fn text(n: usize, seed: u32) -> Vec<u8> {
        let words = [
            "<p>",
            "muen ",
            "subject ",
            "channel ",
            "</p>\n",
            "unikernel ",
        ];
        let mut v = Vec::new();
        let mut i = seed;
        while v.len() < n {
            i = i.wrapping_mul(1_103_515_245).wrapping_add(12345);
            v.extend_from_slice(words[(i >> 16) as usize % words.len()].as_bytes());
        }
        v.truncate(n);
        v
    }

    /// `gzip -9 -n` (the real tool), for committed `.gz` files.
    fn gzip_tool(data: &[u8]) -> Vec<u8> {
        extern crate std;
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("gzip")
            .args(["-c", "-9", "-n"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gzip (Debian package gzip) is needed for these tests");
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let start = gzip::parse_header(gz).unwrap();
        miniz_oxide::inflate::decompress_to_vec(&gz[start..gz.len() - 8]).unwrap()
    }

    fn add(b: &mut SiteBuilder, path: &str, data: Vec<u8>) {
        let id = git_blob_id(&data);
        b.add_file(path, Body::from(data), id, MTIME, false)
            .unwrap();
    }

    /// The files, before compression.
    fn plain_site() -> Site {
        let mut b = SiteBuilder::new(SiteLimits::default());
        add(&mut b, "index.html", text(3000, 1));
        add(&mut b, "style.css", text(2000, 2));
        add(&mut b, "style.css.gz", gzip_tool(&text(2000, 2)));
        add(&mut b, "app.js", text(4000, 3));
        add(&mut b, "app.js.br", vec![0x1b; 100]); // smaller than its gzip
        add(&mut b, "logo.png", text(2000, 4)); // compressible bytes, not by type
        add(&mut b, "tiny.css", text(100, 5));
        add(&mut b, "404.html", text(1000, 6));
        b.finish(SiteMeta {
            source: "test".into(),
            commit: None,
            last_modified: Some(MTIME),
        })
        .unwrap()
    }

    /// The site after a whole compression pass, as the event loop swaps it in.
    fn site() -> Site {
        let settings = Settings {
            mode: Compression::On,
            max_made_bytes: usize::MAX,
        };
        let cfg = HttpConfig::default();
        let mut c = Compressor::new(
            Arc::new(plain_site()),
            settings,
            &|p| cfg.compressible(p),
            Instant::ZERO,
        )
        .unwrap();
        loop {
            if let Some(done) = c.step(Instant::ZERO) {
                return done.site;
            }
        }
    }

    fn h() -> H {
        H::new(
            Role::Site { secure: true },
            HttpConfig::default(),
            Some(site()),
        )
    }

    fn identity(path: &str) -> Vec<u8> {
        match plain_site().get(path) {
            Some(Entry::File { body, .. }) => body.as_bytes().to_vec(),
            other => panic!("{other:?}"),
        }
    }

    fn rep(path: &str, coding: Coding) -> (Vec<u8>, String) {
        match site().get(path) {
            Some(Entry::File { encodings, .. }) => {
                let e = encodings.get(coding).unwrap();
                (e.body.as_bytes().to_vec(), e.etag.as_str().to_string())
            }
            other => panic!("{other:?}"),
        }
    }

    const GZ: &str = "Accept-Encoding: gzip, deflate\r\n";

    #[test]
    fn gzip_when_asked() {
        let mut h = h();
        let r = h.one(&get_with("/", GZ));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(gunzip(&r.body), identity("index.html"));
        assert!(r.body.len() < 3000 / 2);
        // Its own strong ETag: the blob id of the gzip bytes.
        let tag = ETag::from_blob_id(&git_blob_id(&r.body));
        assert_eq!(r.header("etag"), Some(tag.as_str()));
        assert_ne!(
            r.header("etag"),
            Some(etag_of(&identity("index.html")).as_str())
        );
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        // The same request again: the same bytes and tag.
        let again = h.one(&get_with("/index.html", "Accept-Encoding: GZIP\r\n"));
        assert_eq!(again.header("etag"), r.header("etag"));
        assert_eq!(again.body, r.body);
    }

    #[test]
    fn identity_responses_vary_too() {
        let mut h = h();
        for extra in [
            "",
            "Accept-Encoding: identity\r\n",
            "Accept-Encoding: \r\n",
            "Accept-Encoding: gzip;q=0\r\n",
            "Accept-Encoding: compress\r\n",
        ] {
            let r = h.one(&get_with("/", extra));
            assert_eq!(r.status, 200, "{extra:?}");
            assert!(!r.has("content-encoding"), "{extra:?}");
            assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{extra:?}");
            assert_eq!(r.body, identity("index.html"), "{extra:?}");
            assert_eq!(
                r.header("etag"),
                Some(etag_of(&identity("index.html")).as_str())
            );
        }
        // Compressible type, too small to compress: negotiated all the same.
        let r = h.one(&get_with("/tiny.css", GZ));
        assert!(!r.has("content-encoding"));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        // Not compressible by type: no negotiation, no Vary.
        let r = h.one(&get_with("/logo.png", GZ));
        assert!(!r.has("content-encoding"));
        assert!(!r.has("vary"));
        assert_eq!(r.body, identity("logo.png"));
    }

    #[test]
    fn nothing_acceptable_is_406() {
        let mut h = h();
        let refuse = "Accept-Encoding: identity;q=0, gzip;q=0\r\n";
        let r = h.one(&get_with("/", refuse));
        assert_eq!(r.status, 406);
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert!(!h.conn.wants_close());
        assert_eq!(
            h.one(&get_with("/", "Accept-Encoding: *;q=0\r\n")).status,
            406
        );
        // Refusing identity alone is fine when gzip exists.
        let r = h.one(&get_with("/", "Accept-Encoding: identity;q=0, gzip\r\n"));
        assert_eq!(
            (r.status, r.header("content-encoding")),
            (200, Some("gzip"))
        );
        // ...and 406 for a compressible file without gzip.
        let r = h.one(&get_with("/tiny.css", "Accept-Encoding: identity;q=0\r\n"));
        assert_eq!(r.status, 406);
        // A file that is not negotiated ignores the header.
        let r = h.one(&get_with("/logo.png", refuse));
        assert_eq!(r.status, 200);
        // The 404 page is sent as it is instead.
        let r = h.one(&get_with("/missing", refuse));
        assert_eq!((r.status, r.body.clone()), (404, identity("404.html")));
    }

    #[test]
    fn committed_files_are_used() {
        let mut h = h();
        // style.css.gz from the real gzip: served as is, with its own tag.
        let r = h.one(&get_with("/style.css", GZ));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        let committed = gzip_tool(&text(2000, 2));
        assert_eq!(r.body, committed);
        assert_eq!(r.header("etag"), Some(etag_of(&committed).as_str()));
        assert_eq!(gunzip(&r.body), identity("style.css"));
        // ...and still reachable under its own name, not encoded.
        let r = h.one(&get_with("/style.css.gz", GZ));
        assert_eq!(r.header("content-type"), Some("application/gzip"));
        assert!(!r.has("content-encoding"));
        assert!(!r.has("vary"));
        assert_eq!(r.body, committed);
        // app.js.br is smaller than app.js's gzip: br wins when both are acceptable.
        let r = h.one(&get_with(
            "/app.js",
            "Accept-Encoding: gzip, deflate, br, zstd\r\n",
        ));
        assert_eq!(r.header("content-encoding"), Some("br"));
        assert_eq!(r.body, vec![0x1b; 100]);
        assert_eq!(r.header("etag"), Some(rep("app.js", Coding::Br).1.as_str()));
        let r = h.one(&get_with("/app.js", "Accept-Encoding: br;q=0.5, gzip\r\n"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(gunzip(&r.body), identity("app.js"));
    }

    #[test]
    fn conditionals_use_the_representation_sent() {
        let mut h = h();
        let (gz, gz_tag) = rep("index.html", Coding::Gzip);
        let id_tag = etag_of(&identity("index.html"));
        // The gzip tag matches only when gzip would be sent.
        let r = h.one(&get_with(
            "/",
            &alloc::format!("{GZ}If-None-Match: {gz_tag}\r\n"),
        ));
        assert_eq!(r.status, 304);
        assert_eq!(r.header("etag"), Some(gz_tag.as_str()));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert!(!r.has("content-encoding"));
        let r = h.one(&get_with(
            "/",
            &alloc::format!("If-None-Match: {gz_tag}\r\n"),
        ));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, identity("index.html"));
        let r = h.one(&get_with(
            "/",
            &alloc::format!("{GZ}If-None-Match: {id_tag}\r\n"),
        ));
        assert_eq!((r.status, r.body), (200, gz.clone()));
        let r = h.one(&get_with(
            "/",
            &alloc::format!("If-None-Match: {id_tag}\r\n"),
        ));
        assert_eq!(r.status, 304);
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        // If-Match: strong comparison with the tag of what would be sent.
        let r = h.one(&get_with(
            "/",
            &alloc::format!("{GZ}If-Match: {id_tag}\r\n"),
        ));
        assert_eq!(r.status, 412);
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        let r = h.one(&get_with(
            "/",
            &alloc::format!("{GZ}If-Match: {gz_tag}\r\n"),
        ));
        assert_eq!(r.status, 200);
        // HEAD: the same headers as GET, no body.
        let g = h.one(&get_with("/", GZ));
        let r = h.head(&alloc::format!("HEAD / HTTP/1.1\r\nHost: x\r\n{GZ}\r\n"));
        assert!(r.body.is_empty());
        assert_eq!(r.headers, g.headers);
        let r = h.head(&alloc::format!(
            "HEAD / HTTP/1.1\r\nHost: x\r\n{GZ}If-None-Match: {gz_tag}\r\n\r\n"
        ));
        assert_eq!((r.status, r.header("vary")), (304, Some("Accept-Encoding")));
    }

    #[test]
    fn ranges_of_the_gzip_representation() {
        let mut h = h();
        let (gz, gz_tag) = rep("index.html", Coding::Gzip);
        let n = gz.len();
        let r = h.one(&get_with(
            "/",
            &alloc::format!("{GZ}Range: bytes=10-19\r\n"),
        ));
        assert_eq!(r.status, 206);
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(
            r.header("content-range"),
            Some(alloc::format!("bytes 10-19/{n}").as_str())
        );
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.body, &gz[10..20]);
        // Beyond the gzip length (but inside the identity length): 416.
        let r = h.one(&get_with(
            "/",
            &alloc::format!("{GZ}Range: bytes={}-\r\n", n + 5),
        ));
        assert_eq!(r.status, 416);
        assert_eq!(
            r.header("content-range"),
            Some(alloc::format!("bytes */{n}").as_str())
        );
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        // The same range without gzip is a range of the identity bytes.
        let r = h.one(&get_with(
            "/",
            &alloc::format!("Range: bytes={}-\r\n", n + 5),
        ));
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &identity("index.html")[n + 5..]);
        // If-Range with the gzip tag: partial; with the identity tag: all of gzip.
        let r = h.one(&get_with(
            "/",
            &alloc::format!("{GZ}Range: bytes=-8\r\nIf-Range: {gz_tag}\r\n"),
        ));
        assert_eq!((r.status, r.body), (206, gz[n - 8..].to_vec()));
        let id_tag = etag_of(&identity("index.html"));
        let r = h.one(&get_with(
            "/",
            &alloc::format!("{GZ}Range: bytes=-8\r\nIf-Range: {id_tag}\r\n"),
        ));
        assert_eq!((r.status, r.body), (200, gz.clone()));
        // If-Range with a date: no strong validator for a file with several
        // representations.
        for extra in ["", GZ] {
            let r = h.one(&get_with(
                "/",
                &alloc::format!("{extra}Range: bytes=0-9\r\nIf-Range: {MTIME_STR}\r\n"),
            ));
            assert_eq!(r.status, 200, "{extra:?}");
        }
        // All pieces together are the gzip member.
        let mut joined = Vec::new();
        for start in (0..n).step_by(100) {
            let r = h.one(&get_with(
                "/",
                &alloc::format!("{GZ}Range: bytes={start}-{}\r\n", start + 99),
            ));
            joined.extend_from_slice(&r.body);
        }
        assert_eq!(joined, gz);
    }

    #[test]
    fn error_page_is_compressed_too() {
        let mut h = h();
        let r = h.one(&get_with("/missing", GZ));
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(gunzip(&r.body), identity("404.html"));
    }

    #[test]
    fn off_switch() {
        let cfg = HttpConfig {
            compression: Compression::Off,
            ..HttpConfig::default()
        };
        // Even a site that has representations is served as it is.
        let mut h = H::new(Role::Site { secure: true }, cfg, Some(site()));
        for path in ["/", "/style.css", "/app.js", "/missing"] {
            let r = h.one(&get_with(
                path,
                "Accept-Encoding: gzip, br\r\nRange: bytes=0-\r\n",
            ));
            assert!(!r.has("content-encoding"), "{path}");
            assert!(!r.has("vary"), "{path}");
        }
        let r = h.one(&get_with("/", "Accept-Encoding: identity;q=0\r\n"));
        assert_eq!((r.status, r.body), (200, identity("index.html")));
        // And no compressor is started.
        let settings = Settings {
            mode: Compression::Off,
            max_made_bytes: usize::MAX,
        };
        assert!(
            Compressor::new(Arc::new(plain_site()), settings, &|_| true, Instant::ZERO).is_none()
        );
    }

    #[test]
    fn every_representation_decompresses_to_the_file() {
        let mut h = h();
        let site = site();
        for (path, entry) in site.iter() {
            let Entry::File {
                body, encodings, ..
            } = entry
            else {
                continue;
            };
            if let Some(gz) = encodings.get(Coding::Gzip) {
                assert_eq!(gunzip(gz.body.as_bytes()), body.as_bytes(), "{path}");
                let r = h.one(&get_with(
                    &alloc::format!("/{path}"),
                    "Accept-Encoding: gzip\r\n",
                ));
                assert_eq!(r.body, gz.body.as_bytes(), "{path}");
            }
        }
    }

    #[test]
    fn curl_decompresses() {
        if curl(&["--version"]).is_none() {
            extern crate std;
            std::eprintln!("skipping: curl not available");
            return;
        }
        with_server(site(), HttpConfig::default(), |port| {
            let url = |p: &str| alloc::format!("http://127.0.0.1:{port}{p}");
            // (app.js.br is not real Brotli: curl would fail to decode it.)
            for (path, file) in [("/", "index.html"), ("/style.css", "style.css")] {
                // --compressed: curl asks for gzip (and br if built with it), decodes.
                assert_eq!(
                    curl(&["--compressed", &url(path)]).unwrap(),
                    identity(file),
                    "{path}"
                );
                let head = curl(&[
                    "--compressed",
                    "-s",
                    "-D",
                    "-",
                    "-o",
                    "/dev/null",
                    &url(path),
                ])
                .unwrap();
                let head = String::from_utf8(head).unwrap();
                assert!(head.contains("Vary: Accept-Encoding\r\n"), "{head}");
                assert!(head.contains("Content-Encoding: "), "{head}");
            }
            // Raw gzip and br bytes.
            let raw = curl(&["-H", "Accept-Encoding: gzip", &url("/")]).unwrap();
            assert_eq!(raw, rep("index.html", Coding::Gzip).0);
            let raw = curl(&["-H", "Accept-Encoding: br", &url("/app.js")]).unwrap();
            assert_eq!(raw, vec![0x1b; 100]);
            let code = curl(&[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "Accept-Encoding: identity;q=0, gzip;q=0",
                &url("/"),
            ])
            .unwrap();
            assert_eq!(code, b"406");
        });
    }
}

/// A connection that has not begun a request is `Waiting` (the server
/// ranks it like a handshake in progress), one served and quiet is `Idle`.
#[test]
fn waiting_until_the_first_request_then_idle() {
    let mut h = H::site();
    assert_eq!(h.conn.activity(), Activity::Waiting);
    h.feed(b"GE");
    assert!(matches!(h.conn.activity(), Activity::Receiving { .. }));
    h.feed(b"T / HTTP/1.1\r\nHost: example.org\r\n\r\n");
    assert_eq!(h.take().len(), 1);
    assert!(matches!(h.conn.activity(), Activity::Idle { .. }));
}
