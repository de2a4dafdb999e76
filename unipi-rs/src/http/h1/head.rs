//! The HTTP/1.1 request head: parsing a header block (httparse) and
//! checking its framing (RFC 9112 §6): `Content-Length`,
//! `Transfer-Encoding`, `Host`, `Expect` and `Connection`.
//!
//! [`Framing::check`] turns the fields into what the connection needs to
//! know (is there a body, how is it delimited, keep-alive, `100 Continue`),
//! or the status of the error response.

use super::super::HttpLimits;
use super::super::request::{tokens, valid_host, values};
use super::body::BodyReader;

/// How the request's body is delimited, and the other framing facts.
#[derive(Clone, Debug)]
pub(crate) struct Framing {
    /// `None`: no body.
    pub body: Option<BodyReader>,
    /// The connection stays open after the response.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub continue_expected: bool,
}

impl Framing {
    /// Checks the framing fields of a parsed request; `Err(status)` for a
    /// request that must be refused (and the connection closed).
    pub fn check(
        version: u8,
        fields: &[httparse::Header<'_>],
        limits: &HttpLimits,
    ) -> Result<Framing, u16> {
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
        let (mut chunked_count, mut chunked_last) = (0usize, false);
        for v in values(fields, "transfer-encoding") {
            te = true;
            for t in tokens(v) {
                chunked_last = t.eq_ignore_ascii_case(b"chunked");
                chunked_count += usize::from(chunked_last);
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
        if content_length.is_some_and(|l| l > limits.max_body_bytes) {
            return Err(413);
        }
        if version == 1
            && expect.is_some()
            && (several_expects || !expect.is_some_and(|e| e.eq_ignore_ascii_case(b"100-continue")))
        {
            return Err(417);
        }

        let body = if te {
            Some(BodyReader::chunked())
        } else {
            match content_length {
                Some(l) if l > 0 => Some(BodyReader::with_length(l)),
                _ => None,
            }
        };
        Ok(Framing {
            continue_expected: body.is_some() && version == 1 && expect.is_some(),
            body,
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
