//! `https://` URLs: the configured directory and every URL the server hands out.
//!
//! Written here rather than taken from the `url` crate (std-only, and far larger): ACME
//! needs only absolute `https` URLs and absolute-path references in `Location` headers.

use alloc::string::String;
use core::fmt;

use crate::error::{Error, sanitize};

/// The Let's Encrypt production directory.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// The Let's Encrypt staging directory (untrusted certificates, generous rate limits).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// A validated absolute `https://` URL: no user information, a host that is a DNS name, an
/// IPv4 address or a bracketed IPv6 address, an optional port, and a path (with optional
/// query) of printable ASCII. A fragment is dropped. The scheme and host are lowercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    text: String,
    /// Byte range of the host in `text`.
    host: (usize, usize),
    port: u16,
    /// Start of the path in `text`.
    path: usize,
}

impl Url {
    /// Parses an absolute `https://` URL of at most `max_len` bytes.
    pub fn parse(url: &str, max_len: usize) -> Result<Url, Error> {
        let fail = |reason| Error::InvalidUrl {
            url: sanitize(url.as_bytes()),
            reason,
        };
        if url.len() > max_len {
            return Err(fail("too long"));
        }
        if !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(fail("contains spaces, control or non-ASCII characters"));
        }
        let url = url.split('#').next().unwrap_or(url);
        let Some(scheme_end) = url.find("://") else {
            return Err(fail("not an absolute URL"));
        };
        if !url[..scheme_end].eq_ignore_ascii_case("https") {
            return Err(fail("only https:// is allowed"));
        }
        let rest = &url[scheme_end + 3..];
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        let path_and_query = &rest[auth_end..];
        if authority.contains('@') {
            return Err(fail("user information is not allowed"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| fail("bad host or port"))?;
        let mut text = String::from("https://");
        let host_start = text.len();
        text.push_str(&host.to_ascii_lowercase());
        let host_end = text.len();
        if port != 443 {
            text.push(':');
            push_u16(&mut text, port);
        }
        let path = text.len();
        if !path_and_query.starts_with('/') {
            text.push('/');
        }
        text.push_str(path_and_query);
        Ok(Url {
            text,
            host: (host_start, host_end),
            port,
            path,
        })
    }

    /// Resolves a `Location` or `Link` target against this URL: an absolute `https://` URL
    /// or an absolute path on the same host (`/acme/order/1`).
    pub fn join(&self, reference: &str, max_len: usize) -> Result<Url, Error> {
        if reference.starts_with('/') && !reference.starts_with("//") {
            let mut abs = String::from(&self.text[..self.path]);
            abs.push_str(reference);
            Url::parse(&abs, max_len)
        } else {
            Url::parse(reference, max_len)
        }
    }

    /// The whole URL.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The host (for DNS, TLS server name and the `Host` header), without brackets for
    /// IPv6.
    pub fn host(&self) -> &str {
        let h = &self.text[self.host.0..self.host.1];
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
    }

    /// The TCP port (443 unless the URL names another).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The value for the `Host` header: the host, with `:port` unless it is 443.
    pub fn host_header(&self) -> &str {
        &self.text[self.host.0..self.path]
    }

    /// The request target: path and query, always starting with `/`.
    pub fn path_and_query(&self) -> &str {
        &self.text[self.path..]
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn push_u16(s: &mut String, v: u16) {
    use core::fmt::Write;
    let _ = write!(s, "{v}");
}

fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let host = &authority[..=end];
        let inner = &host[1..host.len() - 1];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        match &authority[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if !host.starts_with('[')
        && (host.is_empty()
            || host.len() > 253
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return None;
    }
    let port = match port {
        None => 443,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return None,
                Ok(n) => n,
            }
        }
        Some(_) => return None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let u = Url::parse("HTTPS://Acme.Example:14000/dir?x=1#frag", 2048).unwrap();
        assert_eq!(u.as_str(), "https://acme.example:14000/dir?x=1");
        assert_eq!(u.host(), "acme.example");
        assert_eq!(u.port(), 14000);
        assert_eq!(u.host_header(), "acme.example:14000");
        assert_eq!(u.path_and_query(), "/dir?x=1");

        let u = Url::parse(LETS_ENCRYPT_PRODUCTION, 2048).unwrap();
        assert_eq!(u.port(), 443);
        assert_eq!(u.host_header(), "acme-v02.api.letsencrypt.org");
        assert_eq!(u.path_and_query(), "/directory");

        let u = Url::parse("https://127.0.0.1:443", 2048).unwrap();
        assert_eq!(u.as_str(), "https://127.0.0.1/");
        let u = Url::parse("https://[::1]:8443/x", 2048).unwrap();
        assert_eq!(u.host(), "::1");
        assert_eq!(u.host_header(), "[::1]:8443");
        let u = Url::parse("https://a.example?q", 2048).unwrap();
        assert_eq!(u.path_and_query(), "/?q");
    }

    #[test]
    fn refuses_what_acme_never_needs() {
        for bad in [
            "http://a.example/",
            "a.example/dir",
            "https://",
            "https://:443/",
            "https://user@a.example/",
            "https://a.example:0/",
            "https://a.example:65536/",
            "https://a.example:/",
            "https://a.example:12x/",
            "https://a_b.example/",
            "https://a.example/ space",
            "https://a.example/\u{7f}",
            "https://a.example/é",
            "https://[zz]/",
            "https://[::1/",
            "https://[::1]x/",
        ] {
            assert!(Url::parse(bad, 2048).is_err(), "{bad}");
        }
        assert!(Url::parse("https://a.example/aaaa", 20).is_err());
    }

    #[test]
    fn joins_location_references() {
        let base = Url::parse("https://127.0.0.1:14000/dir", 2048).unwrap();
        assert_eq!(
            base.join("/my-order/abc", 2048).unwrap().as_str(),
            "https://127.0.0.1:14000/my-order/abc"
        );
        assert_eq!(
            base.join("https://other.example/x", 2048).unwrap().as_str(),
            "https://other.example/x"
        );
        assert!(base.join("//evil.example/x", 2048).is_err());
        assert!(base.join("relative/path", 2048).is_err());
    }
}
