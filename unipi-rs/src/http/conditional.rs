//! Validators and ranges (RFC 9110 §13 and §14).
//!
//! - entity-tag lists (`If-Match`, `If-None-Match`) with `*`, `W/` weak tags,
//!   optional whitespace and empty list elements; a malformed list stops
//!   matching at the first malformed element;
//! - `If-Range` with a strong entity tag or an exact date;
//! - a single `bytes=` range (`first-last`, `first-`, `-suffix`). More than
//!   one range is answered with the whole representation (`200`), which RFC
//!   9110 §14.2 allows and which spares a multipart encoder; a syntactically
//!   invalid `Range` is ignored the same way.

/// How entity tags are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Both must be strong and equal (`If-Match`, `If-Range`).
    Strong,
    /// Opaque parts equal, `W/` ignored (`If-None-Match`).
    Weak,
}

/// Does any element of the entity-tag list in `values` (one or more header
/// lines) match `opaque` (our strong tag without quotes)? `*` matches.
pub fn etag_list_matches<'v>(
    values: impl Iterator<Item = &'v [u8]>,
    opaque: &str,
    cmp: Compare,
) -> bool {
    for v in values {
        let mut rest = v;
        loop {
            rest = skip_ows_commas(rest);
            if rest.is_empty() {
                break;
            }
            if rest[0] == b'*' {
                return true;
            }
            let Some((weak, tag, after)) = parse_etag(rest) else {
                break;
            };
            if tag == opaque.as_bytes() && (cmp == Compare::Weak || !weak) {
                return true;
            }
            rest = after;
        }
    }
    false
}

fn skip_ows_commas(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b',', tail @ ..] = s {
        s = tail;
    }
    s
}

/// Parses `[W/]"opaque"` at the start of `s`: (weak, opaque, rest).
fn parse_etag(s: &[u8]) -> Option<(bool, &[u8], &[u8])> {
    let (weak, s) = match s {
        [b'W', b'/', tail @ ..] => (true, tail),
        _ => (false, s),
    };
    let s = s.strip_prefix(b"\"")?;
    let end = s.iter().position(|b| *b == b'"')?;
    let tag = &s[..end];
    if tag.iter().any(|b| *b < 0x21 || *b == 0x7f) {
        return None;
    }
    Some((weak, tag, &s[end + 1..]))
}

/// Whether an `If-Range` value is an entity tag (else it is meant as a date).
pub fn is_entity_tag(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    v.starts_with(b"\"") || v.starts_with(b"W/")
}

/// Evaluates an `If-Range` value against our strong tag and Last-Modified:
/// an entity tag must match strongly; a date must equal `last_modified`
/// exactly. Anything else does not match.
pub fn if_range_matches(value: &[u8], opaque: &str, last_modified: u64, now: u64) -> bool {
    let v = value.trim_ascii();
    if is_entity_tag(v) {
        match parse_etag(v) {
            Some((false, tag, rest)) => tag == opaque.as_bytes() && rest.trim_ascii().is_empty(),
            _ => false,
        }
    } else {
        super::date::parse(v, now) == Some(last_modified as i64)
    }
}

/// What to send for a `Range` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Ignore the header: send the whole representation with `200`.
    Full,
    /// Send bytes `start..=end` with `206`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// `416` with `Content-Range: bytes */len`.
    Unsatisfiable,
}

fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Saturate: a huge position is simply beyond any representation.
    Some(s.iter().fold(0u64, |a, d| {
        a.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Evaluates a `Range` header value for a representation of `len` bytes.
pub fn evaluate_range(value: &[u8], len: u64) -> RangeOutcome {
    let v = value.trim_ascii();
    let Some(eq) = v.iter().position(|b| *b == b'=') else {
        return RangeOutcome::Full;
    };
    if !v[..eq].trim_ascii().eq_ignore_ascii_case(b"bytes") {
        return RangeOutcome::Full;
    }
    let mut specs = v[eq + 1..]
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeOutcome::Full;
    };
    let Some(dash) = spec.iter().position(|b| *b == b'-') else {
        return RangeOutcome::Full;
    };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    if first.is_empty() {
        let Some(suffix) = number(last) else {
            return RangeOutcome::Full;
        };
        if suffix == 0 || len == 0 {
            return RangeOutcome::Unsatisfiable;
        }
        return RangeOutcome::Partial {
            start: len - suffix.min(len),
            end: len - 1,
        };
    }
    let Some(start) = number(first) else {
        return RangeOutcome::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(e) if e >= start => e,
            _ => return RangeOutcome::Full,
        }
    };
    if start >= len {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Partial {
        start,
        end: end.min(len - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::*;

    const TAG: &str = "abc123";

    fn m(v: &str, cmp: Compare) -> bool {
        etag_list_matches(core::iter::once(v.as_bytes()), TAG, cmp)
    }

    #[test]
    fn etag_lists() {
        assert!(m("\"abc123\"", Compare::Weak));
        assert!(m("W/\"abc123\"", Compare::Weak));
        assert!(!m("W/\"abc123\"", Compare::Strong));
        assert!(m("\"abc123\"", Compare::Strong));
        assert!(m("*", Compare::Strong));
        assert!(m("\"x\", \"abc123\"", Compare::Weak));
        assert!(m(" ,\t\"x\" ,, W/\"abc123\" ", Compare::Weak));
        assert!(m("\"x\",\"abc123\"", Compare::Weak));
        assert!(!m("\"x\", \"y\"", Compare::Weak));
        assert!(!m("abc123", Compare::Weak)); // unquoted: malformed
        assert!(!m("\"abc123", Compare::Weak));
        assert!(!m("\"abc12\"", Compare::Weak));
        assert!(!m("", Compare::Weak));
        assert!(!m("w/\"abc123\"", Compare::Weak)); // W is case-sensitive
        // Several header lines.
        let lines = [&b"\"x\""[..], &b"\"abc123\""[..]];
        assert!(etag_list_matches(lines.into_iter(), TAG, Compare::Weak));
    }

    #[test]
    fn if_range() {
        let lm = 784_111_777;
        assert!(if_range_matches(b"\"abc123\"", TAG, lm, 0));
        assert!(!if_range_matches(b"W/\"abc123\"", TAG, lm, 0));
        assert!(!if_range_matches(b"\"other\"", TAG, lm, 0));
        assert!(if_range_matches(
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            TAG,
            lm,
            0
        ));
        assert!(!if_range_matches(
            b"Sun, 06 Nov 1994 08:49:38 GMT",
            TAG,
            lm,
            0
        ));
        assert!(!if_range_matches(b"garbage", TAG, lm, 0));
        assert!(is_entity_tag(b" W/\"x\""));
        assert!(!is_entity_tag(b"Sun, 06 Nov 1994 08:49:37 GMT"));
    }

    #[test]
    fn ranges() {
        let r = |v: &str, len| evaluate_range(v.as_bytes(), len);
        assert_eq!(r("bytes=0-499", 1000), Partial { start: 0, end: 499 });
        assert_eq!(
            r("bytes=500-", 1000),
            Partial {
                start: 500,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=-200", 1000),
            Partial {
                start: 800,
                end: 999
            }
        );
        assert_eq!(r("bytes=-2000", 1000), Partial { start: 0, end: 999 });
        assert_eq!(
            r("bytes=990-2000", 1000),
            Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(r("Bytes = 1-1 ", 1000), Partial { start: 1, end: 1 });
        assert_eq!(r("bytes=5-5,", 1000), Partial { start: 5, end: 5 });
        assert_eq!(
            r("bytes=0-99999999999999999999999", 10),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(r("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(r("bytes=99999999999999999999999-", 1000), Unsatisfiable);
        assert_eq!(r("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), Unsatisfiable);
        assert_eq!(r("bytes=-5", 0), Unsatisfiable);
        // Ignored.
        assert_eq!(r("bytes=0-1,5-6", 1000), Full);
        assert_eq!(r("bytes=5-1", 1000), Full);
        assert_eq!(r("bytes=a-b", 1000), Full);
        assert_eq!(r("bytes=-", 1000), Full);
        assert_eq!(r("bytes=", 1000), Full);
        assert_eq!(r("bytes=1", 1000), Full);
        assert_eq!(r("items=0-1", 1000), Full);
        assert_eq!(r("bytes 0-1", 1000), Full);
        assert_eq!(r("bytes=+1-2", 1000), Full);
    }
}
