//! RFC 5424 messages, and RFC 6587 octet-counting framing for TCP.
//!
//! ```text
//! <134>1 2026-12-06T10:00:00Z muen.sk unipi - access - 10.0.2.2 - - [06/Dec/2026:…] "GET / HTTP/1.1" 200 …
//! PRI  V TIMESTAMP            HOSTNAME APP PROCID MSGID SD MSG
//! ```
//!
//! - PRI = facility × 8 + severity ([`Facility`], [`Severity`]);
//! - TIMESTAMP: RFC 3339 in UTC, to the second (`-` while the wall clock
//!   is unset);
//! - HOSTNAME: `--name`, else `--hostname`, else the interface's address,
//!   else `-`;
//!   APP-NAME `unipi`; PROCID `-`; MSGID `access` or `log`;
//!   STRUCTURED-DATA `-`;
//! - MSG: UTF-8 without a BOM; control characters are written `\xHH`
//!   (each byte), so one message is one line. A message that does not
//!   fit the size limit is cut at a character and ends in
//!   [`TRUNCATED`].
//!
//! Written by hand: no `no_std` crate formats RFC 5424 into a caller's
//! bounded buffer (`syslog_rfc5424` parses; `syslog` needs std).

use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use crate::observe::time::Utc;

/// Appended to a message that was cut to fit.
pub const TRUNCATED: &str = " [truncated]";
/// The APP-NAME field.
pub const APP_NAME: &str = "unipi";
/// Longest HOSTNAME (RFC 5424 §6.2.4).
const MAX_HOSTNAME: usize = 255;
/// A wall clock below this (2001) counts as unset.
const CLOCK_SET: u64 = 1_000_000_000;

/// Syslog facilities a server can use (RFC 5424 §6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facility {
    /// 1: user-level messages.
    User,
    /// 3: system daemons.
    Daemon,
    /// 16-23: local use 0-7 (`Local(0)` is the default).
    Local(u8),
}

impl Default for Facility {
    fn default() -> Self {
        Facility::Local(0)
    }
}

impl Facility {
    /// `user`, `daemon`, `local0` … `local7` (any case).
    pub fn parse(s: &str) -> Option<Facility> {
        let s = s.as_bytes();
        if s.eq_ignore_ascii_case(b"user") {
            return Some(Facility::User);
        }
        if s.eq_ignore_ascii_case(b"daemon") {
            return Some(Facility::Daemon);
        }
        match s {
            [l, o, c, a, l2, d @ b'0'..=b'7']
                if [*l, *o, *c, *a, *l2].eq_ignore_ascii_case(b"local") =>
            {
                Some(Facility::Local(d - b'0'))
            }
            _ => None,
        }
    }

    /// The facility's code.
    pub fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Local(n) => 16 + n.min(7),
        }
    }
}

/// Severities this server sends (RFC 5424 §6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// 3: error conditions (`log::Level::Error`).
    Error = 3,
    /// 4: warning conditions (`log::Level::Warn`).
    Warning = 4,
    /// 6: informational (access lines, `log::Level::Info`).
    Informational = 6,
    /// 7: debug-level (`log::Level::Debug`, `Trace`).
    Debug = 7,
}

impl From<log::Level> for Severity {
    fn from(l: log::Level) -> Self {
        match l {
            log::Level::Error => Severity::Error,
            log::Level::Warn => Severity::Warning,
            log::Level::Info => Severity::Informational,
            log::Level::Debug | log::Level::Trace => Severity::Debug,
        }
    }
}

/// The header fields that vary.
#[derive(Clone, Copy, Debug)]
pub struct Header<'a> {
    /// Facility.
    pub facility: Facility,
    /// Severity.
    pub severity: Severity,
    /// Wall clock, unix seconds.
    pub unix: u64,
    /// HOSTNAME, already checked with [`hostname_field`].
    pub hostname: &'a str,
    /// MSGID: `access` or `log`.
    pub msgid: &'static str,
}

/// Makes `name` a valid HOSTNAME: printable US-ASCII without spaces, at
/// most 255 characters; anything else (or nothing) becomes `-`.
pub fn hostname_field(name: &str) -> &str {
    if name.is_empty()
        || name.len() > MAX_HOSTNAME
        || !name.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        "-"
    } else {
        name
    }
}

/// Writes one message (header and `msg`) into `out` (cleared first),
/// at most `max` bytes long; returns true when `msg` had to be cut.
pub fn format(header: &Header<'_>, msg: fmt::Arguments<'_>, max: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut w = Bounded {
        out,
        max,
        soft_max: max.saturating_sub(TRUNCATED.len()),
        soft_len: 0,
        truncated: false,
        escape: false,
    };
    let pri = u16::from(header.facility.code()) * 8 + header.severity as u16;
    let _ = write!(w, "<{pri}>1 ");
    if header.unix >= CLOCK_SET {
        let _ = write!(w, "{}", Utc::from_unix(header.unix).rfc3339());
    } else {
        let _ = w.write_str("-");
    }
    let _ = write!(
        w,
        " {} {APP_NAME} - {} - ",
        hostname_field(header.hostname),
        header.msgid
    );
    w.escape = true;
    let _ = w.write_fmt(msg);
    let cut = w.truncated;
    if cut {
        let keep = w.soft_len;
        out.truncate(keep);
        out.extend_from_slice(TRUNCATED.as_bytes());
    }
    cut
}

/// A `fmt::Write` into a byte buffer that stops at `max` bytes, escaping
/// control characters once `escape` is set, and remembers the last unit
/// boundary within `soft_max` (where a cut message ends).
struct Bounded<'o> {
    out: &'o mut Vec<u8>,
    max: usize,
    soft_max: usize,
    soft_len: usize,
    truncated: bool,
    escape: bool,
}

impl Bounded<'_> {
    fn unit(&mut self, bytes: &[u8]) {
        if self.truncated {
            return;
        }
        if self.out.len() + bytes.len() > self.max {
            self.truncated = true;
            return;
        }
        self.out.extend_from_slice(bytes);
        if self.out.len() <= self.soft_max {
            self.soft_len = self.out.len();
        }
    }
}

impl fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        if self.truncated {
            return Ok(());
        }
        // Most pieces: nothing to escape, and they fit below the cut.
        let plain = !self.escape || s.bytes().all(|b| (0x20..0x7f).contains(&b));
        if plain && self.out.len() + s.len() <= self.soft_max {
            self.out.extend_from_slice(s.as_bytes());
            self.soft_len = self.out.len();
            return Ok(());
        }
        for c in s.chars() {
            let mut buf = [0u8; 4];
            let enc = c.encode_utf8(&mut buf).as_bytes();
            if self.escape && c.is_control() {
                for &b in enc {
                    self.unit(&[
                        b'\\',
                        b'x',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ]);
                }
            } else {
                self.unit(enc);
            }
            if self.truncated {
                break;
            }
        }
        Ok(())
    }
}

/// Writes the RFC 6587 octet-counting prefix of a `len`-byte message
/// (`"<len> "`) into `out`; returns its length (at most 21 bytes).
pub fn octet_count_prefix(len: usize, out: &mut [u8; 21]) -> usize {
    let mut digits = [0u8; 20];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let d = &digits[i..];
    out[..d.len()].copy_from_slice(d);
    out[d.len()] = b' ';
    d.len() + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn header(unix: u64) -> Header<'static> {
        Header {
            facility: Facility::Local(0),
            severity: Severity::Informational,
            unix,
            hostname: "muen.sk",
            msgid: "access",
        }
    }

    fn text(v: &[u8]) -> &str {
        core::str::from_utf8(v).unwrap()
    }

    #[test]
    fn header_fields() {
        let mut out = Vec::new();
        let cut = format(
            &header(1_796_551_200),
            format_args!("hello {}", 42),
            2048,
            &mut out,
        );
        assert!(!cut);
        assert_eq!(
            text(&out),
            "<134>1 2026-12-06T10:00:00Z muen.sk unipi - access - hello 42"
        );
        let mut h = header(5);
        h.facility = Facility::Daemon;
        h.severity = Severity::Warning;
        h.hostname = "bad name";
        h.msgid = "log";
        format(&h, format_args!("x"), 2048, &mut out);
        assert_eq!(text(&out), "<28>1 - - unipi - log - x");
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = Vec::new();
        format(
            &header(0),
            format_args!("a\nb\r\t\u{7f}\u{85}ä\"c"),
            2048,
            &mut out,
        );
        assert_eq!(
            text(&out),
            "<134>1 - muen.sk unipi - access - a\\x0ab\\x0d\\x09\\x7f\\xc2\\x85ä\"c"
        );
    }

    #[test]
    fn truncation_keeps_the_limit_and_characters_whole() {
        let mut out = Vec::new();
        let head = "<134>1 - muen.sk unipi - access - ".len();
        // Exactly full: not cut.
        let msg = "x".repeat(100 - head);
        assert!(!format(&header(0), format_args!("{msg}"), 100, &mut out));
        assert_eq!(out.len(), 100);
        // One more: cut with the marker, within the limit.
        let msg = "x".repeat(101 - head);
        assert!(format(&header(0), format_args!("{msg}"), 100, &mut out));
        assert_eq!(out.len(), 100);
        assert!(text(&out).ends_with(TRUNCATED));
        for max in 40..140 {
            let msg: String = "ä\n€".repeat(30);
            let cut = format(&header(0), format_args!("{msg}"), max, &mut out);
            assert!(cut);
            assert!(out.len() <= max, "{max}: {}", out.len());
            let s = text(&out);
            assert!(s.ends_with(TRUNCATED), "{s}");
            assert!(!s[..s.len() - TRUNCATED.len()].ends_with("\\x0"), "{s}");
        }
    }

    #[test]
    fn facilities_and_framing() {
        assert_eq!(Facility::parse("LOCAL7"), Some(Facility::Local(7)));
        assert_eq!(Facility::parse("daemon").map(Facility::code), Some(3));
        assert_eq!(Facility::parse("local8"), None);
        assert_eq!(Facility::parse("kern"), None);
        assert_eq!(Facility::default().code(), 16);
        let mut p = [0u8; 21];
        let n = octet_count_prefix(0, &mut p);
        assert_eq!(&p[..n], b"0 ");
        let n = octet_count_prefix(2048, &mut p);
        assert_eq!(&p[..n], b"2048 ");
        let n = octet_count_prefix(usize::MAX, &mut p);
        assert_eq!(&p[..n], alloc::format!("{} ", usize::MAX).as_bytes());
    }
}
