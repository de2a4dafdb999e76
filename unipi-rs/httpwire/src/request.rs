//! The request writer: an HTTP/1.1 request head (and body) from validated parts.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// One request to serialise. The writer adds `Host` and, with a body, `Content-Length`;
/// `headers` must not contain those or `Transfer-Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, a token (`GET`, `POST`, `HEAD`...).
    pub method: &'a str,
    /// The request target in origin form (`/path?query`): visible ASCII, no spaces.
    pub target: &'a str,
    /// The `Host` field value (`host` or `host:port`).
    pub host: &'a str,
    /// Further fields, in order. Values must not contain control characters other than HTAB.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body; `Some(&[])` sends `Content-Length: 0`.
    pub body: Option<&'a [u8]>,
}

/// A part of a [`Request`] that cannot be written as given (it would break the framing or
/// inject fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The method is not a token.
    Method,
    /// The target is empty or contains spaces, control or non-ASCII characters.
    Target,
    /// The host is empty or contains characters other than visible ASCII.
    Host,
    /// A header name is not a token, or is one the writer sets itself.
    HeaderName,
    /// A header value contains CR, LF or another control character.
    HeaderValue,
    /// Credentials contain a control character, or the user name contains `:`.
    Credentials,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestError::Method => "HTTP method is not a token",
            RequestError::Target => {
                "request target contains spaces, control or non-ASCII characters"
            }
            RequestError::Host => "Host value contains characters other than visible ASCII",
            RequestError::HeaderName => {
                "header name is not a token or is Host, Content-Length or Transfer-Encoding"
            }
            RequestError::HeaderValue => "header value contains a control character",
            RequestError::Credentials => {
                "credentials contain a control character, or the user name contains ':'"
            }
        })
    }
}

impl core::error::Error for RequestError {}

/// `tchar` of RFC 9110 §5.6.2.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

fn is_visible_ascii(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

impl Request<'_> {
    /// Appends the request to `out`. On error nothing is appended.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), RequestError> {
        if !is_token(self.method) {
            return Err(RequestError::Method);
        }
        if !is_visible_ascii(self.target) {
            return Err(RequestError::Target);
        }
        if !is_visible_ascii(self.host) {
            return Err(RequestError::Host);
        }
        for (name, value) in self.headers {
            if !is_token(name)
                || ["host", "content-length", "transfer-encoding"]
                    .iter()
                    .any(|r| name.eq_ignore_ascii_case(r))
            {
                return Err(RequestError::HeaderName);
            }
            if !is_field_value(value) {
                return Err(RequestError::HeaderValue);
            }
        }
        for part in [
            self.method,
            " ",
            self.target,
            " HTTP/1.1\r\nHost: ",
            self.host,
            "\r\n",
        ] {
            out.extend_from_slice(part.as_bytes());
        }
        for (name, value) in self.headers {
            for part in [*name, ": ", *value, "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
        }
        match self.body {
            Some(body) => {
                let length = alloc::format!("Content-Length: {}\r\n\r\n", body.len());
                out.extend_from_slice(length.as_bytes());
                out.extend_from_slice(body);
            }
            None => out.extend_from_slice(b"\r\n"),
        }
        Ok(())
    }
}

/// The `Authorization` value for HTTP Basic authentication (RFC 7617): `Basic ` and the
/// base64 of `user:password` (UTF-8). The result is a secret: never log it. The encoding runs
/// in constant time (base64ct), so its timing does not depend on the secret.
pub fn basic_authorization(user: &str, password: &str) -> Result<String, RequestError> {
    let control = |s: &str| s.chars().any(char::is_control);
    if user.contains(':') || control(user) || control(password) {
        return Err(RequestError::Credentials);
    }
    use base64ct::Encoding;
    let mut pair = Vec::with_capacity(user.len() + 1 + password.len());
    pair.extend_from_slice(user.as_bytes());
    pair.push(b':');
    pair.extend_from_slice(password.as_bytes());
    let mut value = String::from("Basic ");
    value.push_str(&base64ct::Base64::encode_string(&pair));
    pair.fill(0);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format() {
        let mut out = Vec::new();
        Request {
            method: "POST",
            target: "/r/git-upload-pack",
            host: "h:8080",
            headers: &[("Git-Protocol", "version=2")],
            body: Some(b"0000"),
        }
        .write(&mut out)
        .unwrap();
        assert_eq!(
            out,
            b"POST /r/git-upload-pack HTTP/1.1\r\nHost: h:8080\r\nGit-Protocol: version=2\r\nContent-Length: 4\r\n\r\n0000"
        );
        let mut out = Vec::new();
        let get = Request {
            method: "GET",
            target: "/",
            host: "h",
            headers: &[],
            body: None,
        };
        get.write(&mut out).unwrap();
        assert_eq!(out, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    }

    #[test]
    fn refuses_injection() {
        let ok = Request {
            method: "GET",
            target: "/",
            host: "h",
            headers: &[],
            body: None,
        };
        for (req, err) in [
            (
                Request {
                    method: "GE T",
                    ..ok
                },
                RequestError::Method,
            ),
            (Request { method: "", ..ok }, RequestError::Method),
            (
                Request {
                    target: "/a b",
                    ..ok
                },
                RequestError::Target,
            ),
            (
                Request {
                    target: "/\r\nX: y",
                    ..ok
                },
                RequestError::Target,
            ),
            (
                Request {
                    target: "/é", ..ok
                },
                RequestError::Target,
            ),
            (
                Request {
                    host: "h\r\nX: y",
                    ..ok
                },
                RequestError::Host,
            ),
            (
                Request {
                    headers: &[("X\r\nY", "1")],
                    ..ok
                },
                RequestError::HeaderName,
            ),
            (
                Request {
                    headers: &[("Content-Length", "1")],
                    ..ok
                },
                RequestError::HeaderName,
            ),
            (
                Request {
                    headers: &[("host", "x")],
                    ..ok
                },
                RequestError::HeaderName,
            ),
            (
                Request {
                    headers: &[("X", "a\r\nY: b")],
                    ..ok
                },
                RequestError::HeaderValue,
            ),
            (
                Request {
                    headers: &[("X", "a\0")],
                    ..ok
                },
                RequestError::HeaderValue,
            ),
        ] {
            let mut out = b"kept".to_vec();
            assert_eq!(req.write(&mut out), Err(err), "{req:?}");
            assert_eq!(out, b"kept");
        }
    }

    #[test]
    fn basic() {
        // RFC 7617 §2's example.
        assert_eq!(
            basic_authorization("Aladdin", "open sesame").unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(
            basic_authorization("a:b", "c"),
            Err(RequestError::Credentials)
        );
        assert_eq!(
            basic_authorization("a", "c\n"),
            Err(RequestError::Credentials)
        );
    }
}
