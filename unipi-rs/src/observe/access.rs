//! The access log's record of one response, the same for every framing
//! (HTTP/1.1 in `http/h1`, HTTP/2 beside it):
//!
//! - [`AccessRequest`]: what the request said, captured once its header
//!   block has been read (peer, method, path, protocol, `Referer`,
//!   `User-Agent`) and when it began;
//! - [`AccessRecord`]: how its response ended — status, bytes, duration,
//!   complete or cut short — once its last byte was handed to the
//!   transport or the connection died;
//! - [`AccessSink`]: where finished records go (the application counts
//!   them for the metrics, writes the console line and queues the syslog
//!   message, see [`super::Observer`]).
//!
//! Text fields are bounded ([`PATH_MAX`], …) and escaped as they are
//! captured, the way nginx escapes its log variables: `"`, `\`, control
//! characters and bytes above 0x7e become `\xHH`, and a field that does not
//! fit ends in `...`. A record is therefore printable ASCII whatever the
//! client sent, and goes into a syslog message, the console or a file as
//! it is.
//!
//! The request line names the path without its query string or path
//! parameters (`?…`, `;…`): queries can carry tokens, and a static site
//! answers the same without them. The webhook's path is written `<hook>`,
//! never the secret.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpAddress;

use super::time::Utc;

/// Longest method kept (escaped bytes).
pub const METHOD_MAX: usize = 16;
/// Longest path kept (escaped bytes).
pub const PATH_MAX: usize = 200;
/// Longest `Referer` kept (escaped bytes).
pub const REFERER_MAX: usize = 200;
/// Longest `User-Agent` kept (escaped bytes).
pub const USER_AGENT_MAX: usize = 200;

/// Appended to a field that was cut to fit.
const CUT: &[u8] = b"...";

/// A bounded text field, escaped when set (see the module documentation).
/// Always printable ASCII without `"` and `\` (except in escapes).
#[derive(Clone)]
pub struct Field<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Field<N> {
    fn default() -> Self {
        Field {
            buf: [0; N],
            len: 0,
        }
    }
}

/// Kept as they are; everything else is written `\xHH`.
fn plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

fn escaped_len(b: u8) -> usize {
    if plain(b) { 1 } else { 4 }
}

impl<const N: usize> Field<N> {
    /// A field holding `raw`, escaped and cut to fit.
    pub fn new(raw: &[u8]) -> Self {
        let mut f = Field::default();
        f.set(raw);
        f
    }

    /// Replaces the contents with `raw`, escaped and cut to fit.
    pub fn set(&mut self, raw: &[u8]) {
        self.len = 0;
        let total: usize = raw.iter().map(|&b| escaped_len(b)).sum();
        let room = if total <= N {
            N
        } else {
            N.saturating_sub(CUT.len())
        };
        for &b in raw {
            if self.len + escaped_len(b) > room {
                break;
            }
            self.push(b);
        }
        if total > N {
            for &c in CUT.iter().take(N - self.len) {
                self.buf[self.len] = c;
                self.len += 1;
            }
        }
    }

    fn push(&mut self, b: u8) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        if plain(b) {
            self.buf[self.len] = b;
            self.len += 1;
        } else {
            let e = [
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ];
            self.buf[self.len..self.len + 4].copy_from_slice(&e);
            self.len += 4;
        }
    }

    /// The escaped text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    /// Nothing was set (or an empty value).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> fmt::Debug for Field<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What the access log keeps of a request (see the module documentation).
/// Boxed where it waits for its response, so an idle connection holds none.
#[derive(Clone, Debug)]
pub struct AccessRequest {
    /// The client's address (from the socket when it was accepted).
    pub peer: Option<IpAddress>,
    /// When the request's first byte arrived.
    pub start: Instant,
    method: Field<METHOD_MAX>,
    path: Field<PATH_MAX>,
    /// `HTTP/1.1`, `HTTP/1.0`, `HTTP/2.0`; empty when the request line
    /// could not be read.
    protocol: &'static str,
    referer: Field<REFERER_MAX>,
    user_agent: Field<USER_AGENT_MAX>,
}

impl AccessRequest {
    /// A request from `peer` that began at `start`, whose request line is
    /// not known (yet): the access log writes it as `"-"`.
    pub fn new(peer: Option<IpAddress>, start: Instant) -> Box<AccessRequest> {
        Box::new(AccessRequest {
            peer,
            start,
            method: Field::default(),
            path: Field::default(),
            protocol: "",
            referer: Field::default(),
            user_agent: Field::default(),
        })
    }

    /// Sets the request line: method, path (without query; `<hook>` for
    /// the webhook) and protocol.
    pub fn set_request(&mut self, method: &str, path: &str, protocol: &'static str) {
        self.method.set(method.as_bytes());
        self.path.set(path.as_bytes());
        self.protocol = protocol;
    }

    /// Sets the `Referer` and `User-Agent` field values (the first of
    /// each, if any).
    pub fn set_fields(&mut self, referer: Option<&[u8]>, user_agent: Option<&[u8]>) {
        self.referer.set(referer.unwrap_or(b""));
        self.user_agent.set(user_agent.unwrap_or(b""));
    }

    /// The method, escaped; empty when the request line was not read.
    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// The path, escaped (no query).
    pub fn path(&self) -> &str {
        self.path.as_str()
    }

    /// The protocol of the request line (`HTTP/1.1`, …), or empty.
    pub fn protocol(&self) -> &'static str {
        self.protocol
    }

    /// The `Referer`, escaped; empty when absent.
    pub fn referer(&self) -> &str {
        self.referer.as_str()
    }

    /// The `User-Agent`, escaped; empty when absent.
    pub fn user_agent(&self) -> &str {
        self.user_agent.as_str()
    }
}

/// Whether a response reached the transport in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Its last byte was handed to the transport.
    Complete,
    /// The connection ended first; the byte counts say what was sent.
    Aborted,
}

/// One response, finished (see the module documentation).
#[derive(Clone, Debug)]
pub struct AccessRecord {
    /// What the request said.
    pub request: Box<AccessRequest>,
    /// The response's status.
    pub status: u16,
    /// Bytes of the response handed to the transport (status line, header
    /// block and body; plaintext).
    pub bytes: u64,
    /// Of those, body bytes (nginx's `$body_bytes_sent`).
    pub body_bytes: u64,
    /// From the request's first byte until the response's last.
    pub duration: Duration,
    /// Complete, or cut short.
    pub delivery: Delivery,
}

impl AccessRecord {
    /// The status class as an index: 0 for `1xx` … 4 for `5xx`; `None`
    /// outside 100-599.
    pub fn status_class(&self) -> Option<usize> {
        match self.status {
            100..=599 => Some(usize::from(self.status / 100 - 1)),
            _ => None,
        }
    }

    /// The short console line, e.g. `GET /css/site.css 200 1234B 3ms`
    /// (` (aborted)` appended for a response cut short).
    pub fn console(&self) -> impl fmt::Display + '_ {
        Console(self)
    }

    /// nginx's `combined` line, with the request time in seconds appended
    /// (and ` aborted` for a response cut short), at wall-clock time
    /// `unix`:
    ///
    /// ```text
    /// 10.0.2.2 - - [06/Dec/2026:10:00:00 +0000] "GET /a HTTP/1.1" 200 1234 "-" "curl/8.0" 0.003
    /// ```
    pub fn combined(&self, unix: u64) -> impl fmt::Display + '_ {
        Combined { r: self, unix }
    }
}

struct Console<'a>(&'a AccessRecord);

impl fmt::Display for Console<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let q = &r.request;
        let (method, path) = if q.method.is_empty() {
            ("-", "-")
        } else {
            (q.method(), q.path())
        };
        write!(
            f,
            "{method} {path} {} {}B {}ms{}",
            r.status,
            r.bytes,
            r.duration.total_millis(),
            match r.delivery {
                Delivery::Complete => "",
                Delivery::Aborted => " (aborted)",
            }
        )
    }
}

struct Combined<'a> {
    r: &'a AccessRecord,
    unix: u64,
}

/// `"text"`, or `"-"` for an empty field.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        f.write_str(if self.0.is_empty() { "-" } else { self.0 })?;
        f.write_str("\"")
    }
}

impl fmt::Display for Combined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.r;
        let q = &r.request;
        match q.peer {
            Some(ip) => write!(f, "{ip}")?,
            None => f.write_str("-")?,
        }
        write!(f, " - - [{}] ", Utc::from_unix(self.unix).clf())?;
        if q.method.is_empty() {
            f.write_str("\"-\"")?;
        } else {
            f.write_str("\"")?;
            f.write_str(q.method())?;
            f.write_str(" ")?;
            f.write_str(q.path())?;
            if !q.protocol.is_empty() {
                f.write_str(" ")?;
                f.write_str(q.protocol)?;
            }
            f.write_str("\"")?;
        }
        let ms = r.duration.total_millis();
        write!(
            f,
            " {} {} {} {} {}.{:03}{}",
            r.status,
            r.body_bytes,
            Quoted(q.referer()),
            Quoted(q.user_agent()),
            ms / 1000,
            ms % 1000,
            match r.delivery {
                Delivery::Complete => "",
                Delivery::Aborted => " aborted",
            }
        )
    }
}

/// Where finished access records go.
pub trait AccessSink {
    /// Takes one finished record.
    fn record(&mut self, record: &AccessRecord);
}

/// Keeps copies (for tests and tools).
impl AccessSink for Vec<AccessRecord> {
    fn record(&mut self, record: &AccessRecord) {
        self.push(record.clone());
    }
}

/// Drops every record.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl AccessSink for Discard {
    fn record(&mut self, _: &AccessRecord) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;
    use smoltcp::wire::Ipv4Address;

    fn record(req: Box<AccessRequest>, status: u16, delivery: Delivery) -> AccessRecord {
        AccessRecord {
            request: req,
            status,
            bytes: 250,
            body_bytes: 100,
            duration: Duration::from_millis(1234),
            delivery,
        }
    }

    #[test]
    fn escapes_like_nginx() {
        let f: Field<64> = Field::new(b"a\"b\\c\x01\x7f\xc3\xa4 d");
        assert_eq!(f.as_str(), r#"a\x22b\x5cc\x01\x7f\xc3\xa4 d"#);
        assert!(f.as_str().bytes().all(|b| (0x20..0x7f).contains(&b)));
    }

    #[test]
    fn cuts_with_a_marker() {
        let f: Field<10> = Field::new(b"0123456789");
        assert_eq!(f.as_str(), "0123456789", "exactly full: no marker");
        let f: Field<10> = Field::new(b"0123456789a");
        assert_eq!(f.as_str(), "0123456...");
        // An escape never is cut in half.
        let f: Field<10> = Field::new(b"012345\x01\x02");
        assert_eq!(f.as_str(), "012345...");
        let f: Field<2> = Field::new(b"abc");
        assert_eq!(f.as_str(), "..");
        let f: Field<0> = Field::new(b"abc");
        assert_eq!(f.as_str(), "");
        for n in 0..40 {
            let raw: String = "ä\"x".repeat(n);
            let f: Field<17> = Field::new(raw.as_bytes());
            assert!(f.as_str().len() <= 17);
        }
    }

    #[test]
    fn combined_line() {
        let mut q = AccessRequest::new(
            Some(IpAddress::Ipv4(Ipv4Address::new(10, 0, 2, 2))),
            Instant::ZERO,
        );
        q.set_request("GET", "/a b", "HTTP/1.1");
        q.set_fields(None, Some(b"curl/8.0 \"x\""));
        let r = record(q, 200, Delivery::Complete);
        assert_eq!(
            format!("{}", r.combined(1_796_551_200)),
            r#"10.0.2.2 - - [06/Dec/2026:10:00:00 +0000] "GET /a b HTTP/1.1" 200 100 "-" "curl/8.0 \x22x\x22" 1.234"#
        );
        assert_eq!(format!("{}", r.console()), "GET /a b 200 250B 1234ms");
        assert_eq!(r.status_class(), Some(1));
    }

    #[test]
    fn unparsed_and_aborted() {
        let r = record(
            AccessRequest::new(None, Instant::ZERO),
            400,
            Delivery::Aborted,
        );
        assert_eq!(
            format!("{}", r.combined(0)),
            r#"- - - [01/Jan/1970:00:00:00 +0000] "-" 400 100 "-" "-" 1.234 aborted"#
        );
        assert_eq!(format!("{}", r.console()), "- - 400 250B 1234ms (aborted)");
        let mut odd = r.clone();
        odd.status = 99;
        assert_eq!(odd.status_class(), None);
        odd.status = 599;
        assert_eq!(odd.status_class(), Some(4));
    }
}
