//! The HTTP/1.1 request head: parsing a header block (httparse) and
//! checking its framing (RFC 9112 §6): `Content-Length`,
//! `Transfer-Encoding`, `Host`, `Expect` and `Connection`.
//!
//! [`Framing::check`] turns the fields into what the connection needs to
//! know (is there a body, how is it delimited, keep-alive, `100 Continue`),
//! or the status of the error response.

use super::super::request::{tokens, valid_host, values};
use unipi_httpwire::Framing as BodyFraming;

/// How the request's body is delimited, and the other framing facts.
#[derive(Clone, Debug)]
pub(crate) struct Framing {
    /// `None`: no body.
    pub body: Option<BodyFraming>,
    /// The body's `Content-Length`, if it has one.
    pub content_length: Option<u64>,
    /// The connection stays open after the response.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub continue_expected: bool,
}

impl Framing {
    /// Checks the framing fields of a parsed request; `Err(status)` for a
    /// request that must be refused (and the connection closed).
    pub fn check(version: u8, fields: &[httparse::Header<'_>]) -> Result<Framing, u16> {
        let (mut close, mut keep_alive) = (false, false);
        for v in values(fields, "connection") {
            for t in tokens(v) {
                close |= t.eq_ignore_ascii_case(b"close");
                keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        let keep_alive = if version == 1 {
            !close
        } else {
            keep_alive && !close
        };

        let mut hosts = values(fields, "host");
        let host = hosts.next();
        let bad_host = hosts.next().is_some()
            || (version == 1 && host.is_none())
            || host.is_some_and(|h| !valid_host(h.trim_ascii()));

        let mut content_length: Option<u64> = None;
        let mut bad_length = false;
        for v in values(fields, "content-length") {
            let mut any = false;
            for t in tokens(v) {
                any = true;
                let ok = t.len() <= 18 && t.iter().all(u8::is_ascii_digit);
                let n = if ok {
                    t.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'))
                } else {
                    0
                };
                if !ok || content_length.is_some_and(|c| c != n) {
                    bad_length = true;
                } else {
                    content_length = Some(n);
                }
            }
            bad_length |= !any;
        }

        let mut te = false;
        let (mut chunked_count, mut chunked_last, mut codings) = (0usize, false, 0usize);
        for v in values(fields, "transfer-encoding") {
            te = true;
            for t in tokens(v) {
                chunked_last = t.eq_ignore_ascii_case(b"chunked");
                chunked_count += usize::from(chunked_last);
                codings += 1;
            }
        }

        let mut expects = values(fields, "expect");
        let expect = expects.next().map(<[u8]>::trim_ascii);
        let several_expects = expects.next().is_some();

        let bad_framing = bad_length
            || (te && content_length.is_some())
            || (te && (version == 0 || !chunked_last || chunked_count != 1));
        if bad_framing || bad_host {
            return Err(400);
        }
        if te && codings > 1 {
            // A coding before the final `chunked` (gzip, deflate, ...): we
            // decode none (RFC 9112 §6.1).
            return Err(501);
        }
        if version == 1
            && expect.is_some()
            && (several_expects || !expect.is_some_and(|e| e.eq_ignore_ascii_case(b"100-continue")))
        {
            return Err(417);
        }

        let body = if te {
            Some(BodyFraming::Chunked)
        } else {
            match content_length {
                Some(l) if l > 0 => Some(BodyFraming::Length(l)),
                _ => None,
            }
        };
        Ok(Framing {
            continue_expected: body.is_some() && version == 1 && expect.is_some(),
            body,
            content_length: content_length.filter(|_| !te),
            keep_alive,
        })
    }
}

/// Is the target what makes the (over-long) request line too long (`414`),
/// rather than a garbage method or version (`400`)?
pub(crate) fn in_target(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or(buf);
    let mut spaces = line.iter().enumerate().filter(|(_, b)| **b == b' ');
    let Some((i, _)) = spaces.next() else {
        return false;
    };
    let method_ok = (1..=32).contains(&i) && line[..i].iter().all(u8::is_ascii_alphabetic);
    match spaces.next() {
        // Still inside the target.
        None => method_ok,
        // Target complete: blame it if the version after it is short.
        Some((j, _)) => method_ok && line.len() - j <= 10,
    }
}

/// Does the request line end in `HTTP/<digit>.<digit>` (a version we do not
/// speak, `505`), rather than garbage (`400`)?
pub(crate) fn bad_version_is_http(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(sp) = line.iter().rposition(|b| *b == b' ') else {
        return false;
    };
    matches!(&line[sp + 1..], [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit())
        || matches!(&line[sp + 1..], [b'H', b'T', b'T', b'P', b'/', a] if a.is_ascii_digit())
}

/// True if `head` has a line feed that does not end a CRLF pair.
pub(crate) fn has_bare_lf(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
}

/// A request line ending in `HTTP/1.<d>` with `d` above 1 is served as
/// HTTP/1.1 (RFC 9110 §2.5: a server responds with the highest minor
/// version it supports). httparse only knows 1.0 and 1.1, so the digit is
/// rewritten in place before parsing; the response says `HTTP/1.1` anyway.
pub(crate) fn serve_minor_versions_as_1_1(input: &mut [u8]) {
    let Some(end) = input.iter().position(|b| *b == b'\n') else {
        return;
    };
    if end < 10 || input[end - 1] != b'\r' {
        return;
    }
    let version = &mut input[end - 9..end - 1];
    if version.starts_with(b"HTTP/1.")
        && matches!(version[7], b'2'..=b'9')
        && input[end - 10] == b' '
    {
        input[end - 2] = b'1';
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn minor_versions() {
        let mut r: Vec<u8> = b"GET / HTTP/1.7\r\nHost: x\r\n".to_vec();
        serve_minor_versions_as_1_1(&mut r);
        assert!(r.starts_with(b"GET / HTTP/1.1\r\n"));
        for same in [
            &b"GET / HTTP/1.0\r\n"[..],
            b"GET / HTTP/2.3\r\n",
            b"GET / HTTP/1.12\r\n",
            b"HTTP/1.2\r\n",
            b"GET / HTTP/1.2\n",
        ] {
            let mut r = same.to_vec();
            serve_minor_versions_as_1_1(&mut r);
            assert_eq!(r, same);
        }
    }

    #[test]
    fn bare_lf() {
        assert!(!has_bare_lf(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(has_bare_lf(
            b"GET / HTTP/1.1\r\nX-A: a\nContent-Length: 41\r\n\r\n"
        ));
        assert!(has_bare_lf(b"\nGET"));
    }
}
