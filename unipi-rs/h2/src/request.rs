//! Request heads: what a header block decodes to, and its validation
//! (RFC 9113 §8.2, §8.3).

use alloc::vec::Vec;

/// Start and end of a name or value in [`RequestHead`]'s buffer.
type Span = (usize, usize);

/// A validated request header block.
///
/// The pseudo-header fields are checked (RFC 9113 §8.3.1): `:method`,
/// `:scheme` and `:path` are present exactly once and before any regular
/// field, `:path` starts with `/` (or is `*` for OPTIONS), `:authority` (or
/// `host`) is present and the two agree. Regular field names are lowercase
/// tokens; values contain no NUL, CR or LF and no leading or trailing white
/// space; connection-specific fields (`connection`, `keep-alive`,
/// `proxy-connection`, `transfer-encoding`, `upgrade`) and `te` other than
/// `trailers` were refused. `cookie` fields are left as the client split
/// them (one field per crumb); join them with `"; "` if needed (RFC 9113
/// §8.2.3). All strings returned are ASCII (`:path` and `:authority` are
/// visible ASCII; the client must percent-encode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    buf: Vec<u8>,
    method: Span,
    scheme: Span,
    authority: Option<Span>,
    path: Span,
    fields: Vec<(Span, Span)>,
    content_length: Option<u64>,
    has_body: bool,
}

fn text(buf: &[u8], (s, e): Span) -> &str {
    buf.get(s..e)
        .and_then(|b| core::str::from_utf8(b).ok())
        .unwrap_or("")
}

fn bytes(buf: &[u8], (s, e): Span) -> &[u8] {
    buf.get(s..e).unwrap_or(&[])
}

impl RequestHead {
    /// A head from parts, unvalidated: for tests of the serving layer.
    pub fn new(method: &str, scheme: &str, authority: Option<&str>, path: &str) -> Self {
        let mut h = RequestHead {
            buf: Vec::new(),
            method: (0, 0),
            scheme: (0, 0),
            authority: None,
            path: (0, 0),
            fields: Vec::new(),
            content_length: None,
            has_body: false,
        };
        h.method = h.push(method.as_bytes());
        h.scheme = h.push(scheme.as_bytes());
        h.authority = authority.map(|a| h.push(a.as_bytes()));
        h.path = h.push(path.as_bytes());
        h
    }

    /// Adds a regular field (unvalidated; `name` should be lowercase):
    /// for tests of the serving layer.
    pub fn push_field(&mut self, name: &str, value: &[u8]) {
        let n = self.push(name.as_bytes());
        let v = self.push(value);
        self.fields.push((n, v));
    }

    /// Sets whether a body follows (for tests of the serving layer).
    pub fn set_has_body(&mut self, has_body: bool) {
        self.has_body = has_body;
    }

    fn push(&mut self, b: &[u8]) -> Span {
        let s = self.buf.len();
        self.buf.extend_from_slice(b);
        (s, self.buf.len())
    }

    /// `:method`, e.g. `GET` (a token, case as sent).
    pub fn method(&self) -> &str {
        text(&self.buf, self.method)
    }

    /// `:scheme`, e.g. `https`.
    pub fn scheme(&self) -> &str {
        text(&self.buf, self.scheme)
    }

    /// `:authority`, else the `host` field (they are equal when both are
    /// present). Always present for `http`/`https` requests.
    pub fn authority(&self) -> Option<&str> {
        match self.authority {
            Some(a) => Some(text(&self.buf, a)),
            None => self
                .header("host")
                .and_then(|h| core::str::from_utf8(h).ok()),
        }
    }

    /// `:path`: the request target with query, e.g. `/docs/?x=1`, or `*`.
    pub fn path(&self) -> &str {
        text(&self.buf, self.path)
    }

    /// The regular fields in the order sent: `(lowercase name, value)`.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields
            .iter()
            .map(|&(n, v)| (text(&self.buf, n), bytes(&self.buf, v)))
    }

    /// The first field named `name` (compared ignoring ASCII case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every field named `name` (compared ignoring ASCII case), in order.
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The `content-length` field, if sent (checked against the DATA that
    /// arrives: a mismatch resets the stream).
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// A body follows (the HEADERS frame did not end the stream; it may
    /// still turn out empty).
    pub fn has_body(&self) -> bool {
        self.has_body
    }

    /// Bytes of names and values held.
    pub fn held_bytes(&self) -> usize {
        self.buf.len()
    }
}

/// What a header block turned out to be.
#[derive(Debug)]
pub(crate) enum Decoded {
    Request(RequestHead),
    /// Trailers (fields discarded).
    Trailers,
    /// A well-formed CONNECT: answered `501` by the connection.
    Connect,
    /// The decoded list exceeds SETTINGS_MAX_HEADER_LIST_SIZE.
    TooLarge,
    /// Malformed (RFC 9113 §8.1.1): a stream error PROTOCOL_ERROR.
    Malformed(&'static str),
}

/// Collects and validates the fields of one header block as the decoder
/// produces them.
pub(crate) struct Collector {
    head: RequestHead,
    trailers: bool,
    size: usize,
    limit: usize,
    too_large: bool,
    error: Option<&'static str>,
    regular_seen: bool,
    seen: u8,
    host: Option<Span>,
    protocol: bool,
}

const METHOD: u8 = 1;
const SCHEME: u8 = 2;
const AUTHORITY: u8 = 4;
const PATH: u8 = 8;

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| is_tchar(b) && !b.is_ascii_uppercase())
}

fn valid_value(v: &[u8]) -> bool {
    !v.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n'))
        && !matches!(v.first(), Some(b' ' | b'\t'))
        && !matches!(v.last(), Some(b' ' | b'\t'))
}

fn visible_ascii(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(|&b| (0x21..=0x7e).contains(&b))
}

fn valid_scheme(v: &[u8]) -> bool {
    matches!(v.first(), Some(b) if b.is_ascii_alphabetic())
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |a, &b| a * 10 + u64::from(b - b'0')))
}

impl Collector {
    pub(crate) fn new(limit: usize, trailers: bool) -> Self {
        Collector {
            head: RequestHead {
                buf: Vec::new(),
                method: (0, 0),
                scheme: (0, 0),
                authority: None,
                path: (0, 0),
                fields: Vec::new(),
                content_length: None,
                has_body: false,
            },
            trailers,
            size: 0,
            limit,
            too_large: false,
            error: None,
            regular_seen: false,
            seen: 0,
            host: None,
            protocol: false,
        }
    }

    fn fail(&mut self, what: &'static str) {
        if self.error.is_none() {
            self.error = Some(what);
        }
    }

    /// One decoded field.
    pub(crate) fn field(&mut self, name: &[u8], value: &[u8]) {
        self.size = self.size.saturating_add(name.len() + value.len() + 32);
        if self.size > self.limit {
            self.too_large = true;
        }
        if self.too_large || self.error.is_some() {
            return;
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            self.pseudo(pseudo, value);
        } else {
            self.regular(name, value);
        }
    }

    fn pseudo(&mut self, name: &[u8], value: &[u8]) {
        if self.trailers {
            return self.fail("pseudo-header field in trailers");
        }
        if self.regular_seen {
            return self.fail("pseudo-header field after a regular field");
        }
        let (bit, ok) = match name {
            b"method" => (
                METHOD,
                !value.is_empty() && value.iter().all(|&b| is_tchar(b)),
            ),
            b"scheme" => (SCHEME, valid_scheme(value)),
            b"authority" => (AUTHORITY, visible_ascii(value) && !value.contains(&b'@')),
            b"path" => (PATH, visible_ascii(value)),
            b"protocol" => {
                self.protocol = true;
                return self.fail(":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL");
            }
            _ => return self.fail("unknown or response pseudo-header field"),
        };
        if self.seen & bit != 0 {
            return self.fail("duplicate pseudo-header field");
        }
        if !ok {
            return self.fail("invalid pseudo-header field value");
        }
        self.seen |= bit;
        let span = self.head.push(value);
        match bit {
            METHOD => self.head.method = span,
            SCHEME => self.head.scheme = span,
            AUTHORITY => self.head.authority = Some(span),
            _ => self.head.path = span,
        }
    }

    fn regular(&mut self, name: &[u8], value: &[u8]) {
        self.regular_seen = true;
        if !valid_name(name) {
            return self.fail("field name not a lowercase token");
        }
        if !valid_value(value) {
            return self.fail("field value with NUL, CR, LF or surrounding white space");
        }
        match name {
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => return self.fail("connection-specific field"),
            b"te" if !value.eq_ignore_ascii_case(b"trailers") => {
                return self.fail("te other than trailers");
            }
            _ => {}
        }
        if self.trailers {
            return;
        }
        if name == b"content-length" {
            match (parse_length(value), self.head.content_length) {
                (None, _) => return self.fail("invalid content-length"),
                (Some(a), Some(b)) if a != b => return self.fail("conflicting content-length"),
                (Some(a), _) => self.head.content_length = Some(a),
            }
        }
        let n = self.head.push(name);
        let v = self.head.push(value);
        if name == b"host" {
            if self.host.is_some() {
                return self.fail("more than one host field");
            }
            self.host = Some(v);
        }
        self.head.fields.push((n, v));
    }

    /// The verdict once the block is complete.
    pub(crate) fn finish(mut self, end_stream: bool) -> Decoded {
        if self.too_large {
            return Decoded::TooLarge;
        }
        if let Some(what) = self.error {
            return Decoded::Malformed(what);
        }
        if self.trailers {
            return Decoded::Trailers;
        }
        let h = &self.head;
        if self.seen & METHOD != 0 && h.method() == "CONNECT" {
            return if self.seen == METHOD | AUTHORITY && !self.protocol {
                Decoded::Connect
            } else {
                Decoded::Malformed("CONNECT with :scheme or :path, or without :authority")
            };
        }
        if self.seen & (METHOD | SCHEME | PATH) != METHOD | SCHEME | PATH {
            return Decoded::Malformed("missing :method, :scheme or :path");
        }
        let path = h.path();
        if !(path.starts_with('/') || (path == "*" && h.method() == "OPTIONS")) {
            return Decoded::Malformed(":path neither absolute nor * for OPTIONS");
        }
        let host = self.host.map(|s| bytes(&h.buf, s));
        match (h.authority.map(|a| bytes(&h.buf, a)), host) {
            (Some(a), Some(host)) if !a.eq_ignore_ascii_case(host) => {
                return Decoded::Malformed("host differs from :authority");
            }
            (None, Some(host)) if !visible_ascii(host) || host.contains(&b'@') => {
                return Decoded::Malformed("invalid host");
            }
            (None, None) if matches!(h.scheme(), "http" | "https") => {
                return Decoded::Malformed("neither :authority nor host");
            }
            _ => {}
        }
        self.head.has_body = !end_stream;
        Decoded::Request(self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fields: &[(&str, &str)], end_stream: bool) -> Decoded {
        let mut c = Collector::new(16 * 1024, false);
        for (n, v) in fields {
            c.field(n.as_bytes(), v.as_bytes());
        }
        c.finish(end_stream)
    }

    const BASE: [(&str, &str); 4] = [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "example.org"),
        (":path", "/a?b"),
    ];

    fn with(extra: &[(&str, &str)]) -> Decoded {
        let mut v: Vec<(&str, &str)> = BASE.to_vec();
        v.extend_from_slice(extra);
        run(&v, true)
    }

    #[test]
    fn a_good_request() {
        let Decoded::Request(h) = with(&[
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("te", "trailers"),
            ("content-length", "0"),
        ]) else {
            panic!()
        };
        assert_eq!(
            (h.method(), h.scheme(), h.authority(), h.path()),
            ("GET", "https", Some("example.org"), "/a?b")
        );
        assert_eq!(
            h.headers("Cookie").collect::<Vec<_>>(),
            [&b"a=1"[..], b"b=2"]
        );
        assert_eq!(h.header("TE"), Some(&b"trailers"[..]));
        assert_eq!(h.content_length(), Some(0));
        assert!(!h.has_body());
        assert_eq!(h.fields().count(), 4);
    }

    #[test]
    fn host_stands_in_for_authority() {
        let Decoded::Request(h) = run(
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/"),
                ("host", "h.example"),
            ],
            false,
        ) else {
            panic!()
        };
        assert_eq!(h.authority(), Some("h.example"));
        assert!(h.has_body());
    }

    #[test]
    fn malformed_requests() {
        let bad: &[&[(&str, &str)]] = &[
            &[("connection", "close")],
            &[("keep-alive", "1")],
            &[("proxy-connection", "x")],
            &[("transfer-encoding", "chunked")],
            &[("upgrade", "h2c")],
            &[("te", "gzip")],
            &[("Upper", "x")],
            &[("bad name", "x")],
            &[("x", " lead")],
            &[("x", "trail\t")],
            &[("x", "a\rb")],
            &[("x", "a\0b")],
            &[("content-length", "1x")],
            &[("content-length", "1"), ("content-length", "2")],
            &[("host", "other.example")],
            &[("x", "1"), (":method", "GET")],
            &[(":path", "/again")],
            &[(":status", "200")],
            &[(":protocol", "websocket")],
        ];
        for extra in bad {
            assert!(matches!(with(extra), Decoded::Malformed(_)), "{extra:?}");
        }
        for fields in [
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "a"),
            ][..],
            &[(":method", "GET"), (":authority", "a"), (":path", "/")],
            &[(":scheme", "https"), (":authority", "a"), (":path", "/")],
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "a"),
                (":path", ""),
            ],
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "a"),
                (":path", "x"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "a"),
                (":path", "*"),
            ],
            &[(":method", "GET"), (":scheme", "https"), (":path", "/")],
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "u@a"),
                (":path", "/"),
            ],
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "a"),
                (":path", "/a b"),
            ],
            &[
                (":method", "G T"),
                (":scheme", "https"),
                (":authority", "a"),
                (":path", "/"),
            ],
            &[
                (":method", "CONNECT"),
                (":authority", "a:443"),
                (":path", "/"),
            ],
            &[(":method", "CONNECT")],
        ] {
            assert!(
                matches!(run(fields, true), Decoded::Malformed(_)),
                "{fields:?}"
            );
        }
        assert!(matches!(
            run(
                &[
                    (":method", "OPTIONS"),
                    (":scheme", "https"),
                    (":authority", "a"),
                    (":path", "*")
                ],
                true
            ),
            Decoded::Request(_)
        ));
        assert!(matches!(
            run(&[(":method", "CONNECT"), (":authority", "a:443")], true),
            Decoded::Connect
        ));
    }

    #[test]
    fn trailers_and_size() {
        let mut c = Collector::new(1000, true);
        c.field(b"x-checksum", b"abc");
        assert!(matches!(c.finish(true), Decoded::Trailers));
        let mut c = Collector::new(1000, true);
        c.field(b":path", b"/");
        assert!(matches!(c.finish(true), Decoded::Malformed(_)));
        let mut c = Collector::new(100, false);
        for (n, v) in BASE {
            c.field(n.as_bytes(), v.as_bytes());
        }
        c.field(b"x", &[b'a'; 60]);
        assert!(matches!(c.finish(true), Decoded::TooLarge));
    }
}
