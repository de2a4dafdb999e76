//! Remote URLs: `git://`, `http://` and `https://`, with an optional `#branch`, and
//! `user:secret@` credentials for HTTP(S).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use crate::credentials::Credentials;
use crate::error::Error;
use crate::hex;

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
/// `[a-z0-9.-]`; `path` starts with `/`, contains no whitespace, control characters, `?` or
/// `#`, and (for HTTP) has no trailing `/`; `branch`, if any, is a plausible git branch name;
/// credentials only come with HTTP(S). `Display` and `Debug` show credentials as `user:***`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    host: String,
    port: u16,
    path: String,
    branch: Option<String>,
    credentials: Option<Credentials>,
}

impl Url {
    /// Parses `scheme://[user[:secret]@]host[:port]/path[#branch]` for the schemes `git`,
    /// `http` and `https`. User and secret may be percent-encoded (`%40` for `@`); they are
    /// only accepted for HTTP(S), where they are sent with HTTP Basic authentication to this
    /// origin. IPv6 literals, query strings and other schemes are rejected with
    /// [`Error::InvalidUrl`], whose reason never repeats the secret.
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
        let (credentials, authority) = match authority.rsplit_once('@') {
            Some(_) if scheme == Scheme::Git => {
                return bad("git:// does not support credentials (user@ in the URL)");
            }
            Some((userinfo, host)) => (Some(parse_userinfo(userinfo)?), host),
            None => (None, authority),
        };
        if authority.starts_with('[') {
            return bad("IPv6 address literals are not supported");
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => match p.parse::<u16>() {
                Ok(n) if n != 0 && !p.starts_with('+') => (h, n),
                _ => return bad("invalid port"),
            },
            None => (authority, scheme.default_port()),
        };
        if !valid_host(host) {
            return bad("invalid host name");
        }
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
            host: host.to_ascii_lowercase(),
            port,
            path,
            branch,
            credentials,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// The host name or IPv4 literal (lowercase).
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

    /// The credentials given in the URL, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The same URL with `credentials` instead of its own.
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Url {
        self.credentials = credentials;
        self
    }

    /// True when `other` has the same origin (scheme, host and port).
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }

    /// The same host with another scheme, port and path and no credentials (used for HTTP
    /// redirects; the transport decides whether its credentials go along).
    pub(crate) fn with_location(&self, scheme: Scheme, port: u16, path: String) -> Url {
        Url {
            scheme,
            host: self.host.clone(),
            port,
            path,
            branch: self.branch.clone(),
            credentials: None,
        }
    }
}

/// Characters RFC 3986 allows unencoded in user information, besides `%XX`.
fn userinfo_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
        )
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = hex::value(bytes.next()?)?;
            let lo = hex::value(bytes.next()?)?;
            out.push((hi << 4) | lo);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// `user[:secret]` from a URL (without the `@`).
fn parse_userinfo(userinfo: &str) -> Result<Credentials, Error> {
    let bad = |reason| Err(Error::InvalidUrl { reason });
    if userinfo.is_empty() {
        return bad("empty user name before '@'");
    }
    if !userinfo.bytes().all(|c| userinfo_char(c) || c == b'%') {
        return bad("credentials contain characters that must be percent-encoded");
    }
    let (user, secret) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (Some(user), Some(secret)) = (percent_decode(user), percent_decode(secret)) else {
        return bad("credentials contain an invalid percent-encoding");
    };
    Credentials::new(&user, &secret).map_err(|e| match e {
        Error::InvalidCredentials { reason } => Error::InvalidUrl { reason },
        other => other,
    })
}

impl fmt::Display for Url {
    /// Formats the URL back to `scheme://[user:***@]host[:port]path[#branch]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if let Some(c) = &self.credentials {
            for b in c.user().bytes() {
                if userinfo_char(b) && b != b':' {
                    f.write_char(char::from(b))?;
                } else {
                    write!(f, "%{:02X}", b)?;
                }
            }
            f.write_str(":***@")?;
        }
        write!(f, "{}{}", self.host_header(), self.path)?;
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
    fn credentials() {
        let u = Url::parse("https://alice:t%40k:en@Git.Example:8443/site.git#main").unwrap();
        let c = u.credentials().unwrap();
        assert_eq!((c.user(), c.secret()), ("alice", "t@k:en"));
        assert_eq!(u.host(), "git.example");
        assert_eq!(
            u.to_string(),
            "https://alice:***@git.example:8443/site.git#main"
        );
        let debug = alloc::format!("{u:?}");
        assert!(!debug.contains("t@k") && debug.contains("***"), "{debug}");
        let u = Url::parse("http://a%40b%20c@h/x").unwrap();
        assert_eq!(u.credentials().unwrap().user(), "a@b c");
        assert_eq!(u.to_string(), "http://a%40b%20c:***@h/x");
        let u = Url::parse("http://bob@h/x").unwrap();
        assert_eq!(u.credentials().unwrap().secret(), "");
        assert_eq!(u.to_string(), "http://bob:***@h/x");
        let plain = Url::parse("http://h/x").unwrap();
        assert!(u.same_origin(&plain));
        assert!(!u.same_origin(&Url::parse("https://h/x").unwrap()));
        assert!(!u.same_origin(&Url::parse("http://h:81/x").unwrap()));
        assert_eq!(u.clone().with_credentials(None).to_string(), "http://h/x");
        // Reasons never repeat the secret.
        let e = Url::parse("https://u:zq%0a9@h/x").unwrap_err();
        assert!(!alloc::format!("{e} {e:?}").contains("zq"), "{e}");
    }

    #[test]
    fn rejected() {
        for bad in [
            "ftp://h/x",
            "h/x",
            "git://user@h/x",
            "http://@h/x",
            "http://us er:pw@h/x",
            "http://u:p w@h/x",
            "http://u:%zz@h/x",
            "http://u:%ff@h/x",
            "http://u%3Ax:pw@h/x",
            "http://u:%0a@h/x",
            "http://[::1]/x",
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
