//! Remote URLs: `git://`, `http://` and `https://`, with an optional `#branch`.

use alloc::string::String;
use core::fmt;

use crate::error::Error;

/// The transport a URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `git://` — the git daemon protocol over plain TCP (default port 9418).
    Git,
    /// `http://` — smart HTTP (default port 80).
    Http,
    /// `https://` — smart HTTP over TLS (default port 443).
    Https,
}

impl Scheme {
    /// The scheme's default TCP port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Git => 9418,
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// The scheme name as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Git => "git",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed, validated remote URL.
///
/// Promises: `host` is a non-empty lowercase hostname or IPv4 literal made of
/// `[a-z0-9.-]`, or an IPv6 literal in brackets in its RFC 5952 form
/// (`[2001:db8::1]`); `path` starts with `/`, contains no whitespace, control characters, `?` or
/// `#`, and (for HTTP) has no trailing `/`; `branch`, if any, is a plausible git branch name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    host: String,
    port: u16,
    path: String,
    branch: Option<String>,
}

impl Url {
    /// Parses `scheme://host[:port]/path[#branch]` for the schemes `git`, `http` and `https`;
    /// `host` may be an IPv6 literal in brackets (no zone). Credentials (`user@`), query
    /// strings and other schemes are rejected with [`Error::InvalidUrl`].
    pub fn parse(input: &str) -> Result<Url, Error> {
        let bad = |reason| Err(Error::InvalidUrl { reason });
        let (main, branch) = match input.split_once('#') {
            Some((m, b)) => {
                if !valid_branch(b) {
                    return bad("invalid branch name after '#'");
                }
                (m, Some(String::from(b)))
            }
            None => (input, None),
        };
        let (scheme_str, rest) = match main.split_once("://") {
            Some(x) => x,
            None => return bad("missing '://' (expected git://, http:// or https://)"),
        };
        let scheme = if scheme_str.eq_ignore_ascii_case("git") {
            Scheme::Git
        } else if scheme_str.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme_str.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return bad("unsupported scheme (expected git://, http:// or https://)");
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return bad("credentials in the URL are not supported");
        }
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let Some((literal, after)) = rest.split_once(']') else {
                return bad("IPv6 literal without ']'");
            };
            let Ok(ip) = literal.parse::<core::net::Ipv6Addr>() else {
                return bad("invalid IPv6 address literal");
            };
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return bad("invalid port"),
                },
            };
            (alloc::format!("[{ip}]"), port)
        } else {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if !valid_host(host) {
                return bad("invalid host name");
            }
            (host.to_ascii_lowercase(), port)
        };
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && !p.starts_with('+') => n,
                _ => return bad("invalid port"),
            },
            None => scheme.default_port(),
        };
        if path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b >= 0x80)
        {
            return bad("path contains spaces, control characters, non-ASCII or a query");
        }
        let mut path = String::from(path);
        if scheme != Scheme::Git {
            while path.ends_with('/') {
                path.pop();
            }
            if path.is_empty() {
                path.push('/');
            }
        } else if path.len() <= 1 {
            return bad("git:// URL needs a repository path");
        }
        Ok(Url {
            scheme,
            host,
            port,
            path,
            branch,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// The host name or IPv4 literal (lowercase), or the IPv6 literal in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The TCP port (explicit or the scheme's default).
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The repository path, starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The branch selected with `#branch`, if any.
    pub fn branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }
    /// The ref this URL asks for: `refs/heads/<branch>`, or `HEAD` without `#branch`.
    pub fn wanted_ref(&self) -> String {
        match &self.branch {
            Some(b) => alloc::format!("refs/heads/{b}"),
            None => String::from("HEAD"),
        }
    }
    /// `host` or `host:port` when the port is not the scheme's default, as used in the HTTP
    /// `Host` header and the git daemon's `host=` parameter.
    pub fn host_header(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.clone()
        } else {
            alloc::format!("{}:{}", self.host, self.port)
        }
    }

    /// The same URL with another scheme, port and path (used for HTTP redirects).
    pub(crate) fn with_location(&self, scheme: Scheme, port: u16, path: String) -> Url {
        Url {
            scheme,
            host: self.host.clone(),
            port,
            path,
            branch: self.branch.clone(),
        }
    }
}

impl fmt::Display for Url {
    /// Formats the URL back to `scheme://host[:port]path[#branch]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.host_header(),
            self.path
        )?;
        if let Some(b) = &self.branch {
            write!(f, "#{b}")?;
        }
        Ok(())
    }
}

/// Hostnames and IPv4 literals: `[A-Za-z0-9.-]`, labels of 1..=63 chars not starting or
/// ending with `-`, at most 253 chars.
pub(crate) fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// A conservative subset of `git check-ref-format` for branch names.
pub(crate) fn valid_branch(b: &str) -> bool {
    !b.is_empty()
        && b.len() <= 255
        && !b.starts_with('-')
        && !b.starts_with('/')
        && !b.ends_with('/')
        && !b.ends_with('.')
        && !b.ends_with(".lock")
        && !b.contains("..")
        && !b.contains("//")
        && !b.contains("@{")
        && !b.split('/').any(|c| c.starts_with('.'))
        && b != "@"
        && b.bytes().all(|c| {
            c > b' '
                && c != 0x7f
                && !matches!(c, b'~' | b'^' | b':' | b'?' | b'*' | b'[' | b'\\' | b'#')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn git_urls() {
        let u = Url::parse("git://example.org/site.git").unwrap();
        assert_eq!(u.scheme(), Scheme::Git);
        assert_eq!(u.host(), "example.org");
        assert_eq!(u.port(), 9418);
        assert_eq!(u.path(), "/site.git");
        assert_eq!(u.branch(), None);
        assert_eq!(u.wanted_ref(), "HEAD");
        assert_eq!(u.host_header(), "example.org");
        let u = Url::parse("git://10.0.0.1:1234/a/b#gh-pages").unwrap();
        assert_eq!(u.port(), 1234);
        assert_eq!(u.host_header(), "10.0.0.1:1234");
        assert_eq!(u.wanted_ref(), "refs/heads/gh-pages");
        assert_eq!(u.to_string(), "git://10.0.0.1:1234/a/b#gh-pages");
        assert!(Url::parse("git://host").is_err());
        assert!(Url::parse("git://host/").is_err());
    }

    #[test]
    fn http_urls() {
        let u = Url::parse("HTTPS://Example.ORG/site.git/#feature/x").unwrap();
        assert_eq!(u.scheme(), Scheme::Https);
        assert_eq!(u.host(), "example.org");
        assert_eq!(u.port(), 443);
        assert_eq!(u.path(), "/site.git");
        assert_eq!(u.branch(), Some("feature/x"));
        let u = Url::parse("http://h:8080").unwrap();
        assert_eq!(u.path(), "/");
        assert_eq!(u.port(), 8080);
        assert_eq!(u.host_header(), "h:8080");
        let u = Url::parse("http://h:80/x").unwrap();
        assert_eq!(u.host_header(), "h");
    }

    #[test]
    fn ipv6_literals() {
        let u = Url::parse("git://[2001:DB8:0::1]:9419/site.git").unwrap();
        assert_eq!(u.host(), "[2001:db8::1]");
        assert_eq!(u.port(), 9419);
        assert_eq!(u.host_header(), "[2001:db8::1]:9419");
        assert_eq!(u.to_string(), "git://[2001:db8::1]:9419/site.git");
        let u = Url::parse("https://[::1]/r.git").unwrap();
        assert_eq!((u.host(), u.port()), ("[::1]", 443));
        assert_eq!(u.host_header(), "[::1]");
        for bad in [
            "http://[::1/x",
            "http://[::1]x/x",
            "http://[::1]:/x",
            "http://[::1]:0/x",
            "http://[fe80::1%eth0]/x",
            "http://[10.0.0.1]/x",
            "http://[]/x",
            "http://[::1]]/x",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejected() {
        for bad in [
            "ftp://h/x",
            "h/x",
            "http://user:pw@h/x",
            "http://h:0/x",
            "http://h:99999/x",
            "http://h:/x",
            "http://h:+80/x",
            "http:///x",
            "http://h_x/x",
            "http://-h/x",
            "http://h/a b",
            "http://h/a?b",
            "http://h/a\n",
            "http://h/x#",
            "http://h/x#a..b",
            "http://h/x#-a",
            "http://h/x#a b",
            "http://h/x#a.lock",
            "http://h/x#.hidden",
            "http://h/x#a#b",
        ] {
            assert!(
                matches!(Url::parse(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
