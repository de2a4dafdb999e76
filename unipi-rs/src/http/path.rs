//! Request targets and paths.
//!
//! Rules (Unipi's, made explicit):
//! - the target is origin-form (`/path?query`) or absolute-form
//!   (`http://authority/path?query`, RFC 9112 §3.2.2); anything else is a
//!   `400`;
//! - the path ends at the first `?` or `;`;
//! - percent-decoding is strict: `%` must be followed by two hex digits, and
//!   must not encode an unreserved character (`A-Z a-z 0-9 - . _ ~`), which
//!   has exactly one spelling; the decoded path must be UTF-8 without NUL;
//! - for lookup, repeated slashes collapse (`//a///b` names `a/b`), and a
//!   `.` or `..` segment is a `400` (browsers never send them, since they
//!   resolve dot segments themselves, so they only come from probes; this also
//!   makes escaping the site root impossible).

use alloc::string::String;
use alloc::vec::Vec;

/// A request target split into its parts (all borrowed from the request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// The authority of an absolute-form target (`host[:port]`).
    pub authority: Option<&'a str>,
    /// The raw path: up to the first `?` or `;` (may be empty for an
    /// absolute-form target without path).
    pub path: &'a str,
    /// The raw query, after the first `?`, if any.
    pub query: Option<&'a str>,
    /// The raw path with everything after it (what a redirect keeps).
    pub path_and_query: &'a str,
}

/// Splits a request target; `None` if it is neither origin-form nor
/// absolute-form with an `http`/`https` scheme.
pub fn split_target(target: &str) -> Option<Target<'_>> {
    let (authority, rest) = if target.starts_with('/') {
        (None, target)
    } else {
        let after_scheme = strip_prefix_ignore_case(target, "http://")
            .or_else(|| strip_prefix_ignore_case(target, "https://"))?;
        let end = after_scheme
            .find(['/', '?', '#'])
            .unwrap_or(after_scheme.len());
        let authority = &after_scheme[..end];
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        (Some(authority), &after_scheme[end..])
    };
    if rest.contains('#') {
        return None;
    }
    let path_end = rest.find(['?', ';']).unwrap_or(rest.len());
    let query = rest.find('?').map(|q| &rest[q + 1..]);
    Some(Target {
        authority,
        path: &rest[..path_end],
        query,
        path_and_query: rest,
    })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// Why a path was refused (all map to `400 Bad Request`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%XX` encoding an unreserved character.
    EncodedUnreserved,
    /// A decoded NUL byte.
    Nul,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// A `.` or `..` segment.
    DotSegment,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-decodes `raw` into `buf` (cleared first) and returns it as text.
pub fn decode<'b>(raw: &str, buf: &'b mut Vec<u8>) -> Result<&'b str, PathError> {
    buf.clear();
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex);
            let lo = bytes.get(i + 2).copied().and_then(hex);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEscape);
            };
            let d = hi << 4 | lo;
            if is_unreserved(d) {
                return Err(PathError::EncodedUnreserved);
            }
            if d == 0 {
                return Err(PathError::Nul);
            }
            buf.push(d);
            i += 3;
        } else {
            buf.push(b);
            i += 1;
        }
    }
    core::str::from_utf8(buf).map_err(|_| PathError::NotUtf8)
}

/// Builds the site key of a decoded path into `key` (cleared first): no
/// leading slash, empty segments dropped. Returns `true` when the path names
/// a directory (ends with `/`, or is empty), in which case the caller looks
/// up `<key>/index.html`.
pub fn site_key(decoded: &str, key: &mut String) -> Result<bool, PathError> {
    key.clear();
    for seg in decoded.split('/') {
        match seg {
            "" => continue,
            "." | ".." => return Err(PathError::DotSegment),
            s => {
                if !key.is_empty() {
                    key.push('/');
                }
                key.push_str(s);
            }
        }
    }
    Ok(decoded.is_empty() || decoded.ends_with('/'))
}

/// Appends `key` to `out` as an absolute URI path (`/` + key), percent-
/// encoding every byte that is not unreserved, a sub-delimiter, `:`, `@` or
/// `/`. The result never starts with `//`.
pub fn push_encoded_path(key: &str, out: &mut String) {
    out.push('/');
    for b in key.bytes() {
        if is_unreserved(b) || b"!$&'()*+,;=:@/".contains(&b) {
            out.push(char::from(b));
        } else {
            push_pct(b, out);
        }
    }
}

/// Appends raw request text to a header value, percent-encoding the bytes
/// a header must not carry raw (non-ASCII; httparse already refused
/// controls and spaces).
pub fn push_uri_safe(s: &str, out: &mut String) {
    for b in s.bytes() {
        if (0x21..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            push_pct(b, out);
        }
    }
}

fn push_pct(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = split_target("/a/b?x=1;y").unwrap();
        assert_eq!(
            (t.path, t.query, t.authority),
            ("/a/b", Some("x=1;y"), None)
        );
        let t = split_target("/a;v=2/b?q").unwrap();
        assert_eq!((t.path, t.query), ("/a", Some("q")));
        assert_eq!(t.path_and_query, "/a;v=2/b?q");
        let t = split_target("/hook?data={abc}").unwrap();
        assert_eq!(t.path, "/hook");
        let t = split_target("HTTP://example.com:81/x?y").unwrap();
        assert_eq!(t.authority, Some("example.com:81"));
        assert_eq!((t.path, t.query), ("/x", Some("y")));
        let t = split_target("https://example.com").unwrap();
        assert_eq!((t.path, t.path_and_query), ("", ""));
        let t = split_target("http://example.com?q").unwrap();
        assert_eq!((t.path, t.query), ("", Some("q")));
        for bad in [
            "*",
            "a/b",
            "example.com:443",
            "ftp://x/",
            "http:///x",
            "http://u@h/",
            "/a#f",
        ] {
            assert_eq!(split_target(bad), None, "{bad}");
        }
    }

    #[test]
    fn decoding() {
        let mut buf = Vec::new();
        assert_eq!(decode("/a%20b", &mut buf), Ok("/a b"));
        assert_eq!(decode("/%C3%A4", &mut buf), Ok("/ä"));
        assert_eq!(decode("/%2f", &mut buf), Ok("//"));
        assert_eq!(decode("/ä", &mut buf), Ok("/ä"));
        assert_eq!(decode("/%", &mut buf), Err(PathError::BadEscape));
        assert_eq!(decode("/%4", &mut buf), Err(PathError::BadEscape));
        assert_eq!(decode("/%zz", &mut buf), Err(PathError::BadEscape));
        assert_eq!(decode("/%41", &mut buf), Err(PathError::EncodedUnreserved));
        assert_eq!(
            decode("/%2E%2E/x", &mut buf),
            Err(PathError::EncodedUnreserved)
        );
        assert_eq!(decode("/%7e", &mut buf), Err(PathError::EncodedUnreserved));
        assert_eq!(decode("/%00", &mut buf), Err(PathError::Nul));
        assert_eq!(decode("/%C3", &mut buf), Err(PathError::NotUtf8));
        assert_eq!(decode("/%FF", &mut buf), Err(PathError::NotUtf8));
    }

    #[test]
    fn keys() {
        let mut k = String::new();
        assert_eq!(site_key("/", &mut k), Ok(true));
        assert_eq!(k, "");
        assert_eq!(site_key("", &mut k), Ok(true));
        assert_eq!(site_key("/a/b.html", &mut k), Ok(false));
        assert_eq!(k, "a/b.html");
        assert_eq!(site_key("//a///b/", &mut k), Ok(true));
        assert_eq!(k, "a/b");
        assert_eq!(site_key("/a/../b", &mut k), Err(PathError::DotSegment));
        assert_eq!(site_key("/./b", &mut k), Err(PathError::DotSegment));
        assert_eq!(site_key("/..", &mut k), Err(PathError::DotSegment));
        assert_eq!(site_key("/a..b/.c", &mut k), Ok(false));
    }

    #[test]
    fn encoding() {
        let mut s = String::new();
        push_encoded_path("a b/ä/x;y", &mut s);
        assert_eq!(s, "/a%20b/%C3%A4/x;y");
        let mut s = String::new();
        push_uri_safe("/ä?x=\"", &mut s);
        assert_eq!(s, "/%C3%A4?x=\"");
    }
}
