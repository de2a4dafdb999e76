//! Remote URLs: `git://`, `http://`, `https://`, `ssh://` and scp-like `user@host:path`,
//! with an optional `#branch`, and `user:secret@` credentials for HTTP(S).

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
    /// `ssh://` or `user@host:path` — `git-upload-pack` run over SSH (default port 22).
    Ssh,
}

impl Scheme {
    /// The scheme's default TCP port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Git => 9418,
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Ssh => 22,
        }
    }

    /// The scheme name as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Git => "git",
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ssh => "ssh",
        }
    }
}

/// The SSH login used when an SSH remote names none (what forges expect).
pub const DEFAULT_SSH_USER: &str = "git";

/// Longest accepted SSH path in bytes.
const MAX_SSH_PATH: usize = 4096;

/// A parsed, validated remote URL.
///
/// Promises: `host` is a non-empty lowercase hostname or IPv4 literal made of
/// `[a-z0-9.-]`, or an IPv6 literal in brackets in its RFC 5952 form (`[2001:db8::1]`);
/// `branch`, if any, is a plausible git branch name. For git:// and HTTP(S)
/// `path` starts with `/` and contains no whitespace, control characters, `?` or `#` (and
/// for HTTP no trailing `/`); credentials only come with HTTP(S). For SSH `path` is what
/// `git-upload-pack` gets: non-empty, without control characters or `#`, absolute, relative
/// to the login directory or starting with `~`; the user name is `[A-Za-z0-9._+-]` and
/// does not start with `-`. `Display` and `Debug` show credentials as `user:***`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    host: String,
    port: u16,
    path: String,
    branch: Option<String>,
    credentials: Option<Credentials>,
    /// The SSH login, if the URL names one.
    ssh_user: Option<String>,
}

impl Url {
    /// Parses a remote with an optional `#branch`:
    ///
    /// * `git://host[:port]/path`;
    /// * `http[s]://[user[:secret]@]host[:port]/path` — user and secret may be
    ///   percent-encoded (`%40` for `@`) and are sent with HTTP Basic authentication to this
    ///   origin;
    /// * `ssh://[user@]host[:port]/path` (also `git+ssh://`, `ssh+git://`), where `/~…`
    ///   stands for a path from a home directory as in git;
    /// * scp-like `[user@]host:path`, `path` relative to the login directory unless it
    ///   starts with `/` or `~`.
    ///
    /// `host` may be an IPv6 literal in brackets (no zone) except in the scp-like form.
    /// Query strings on git:// and HTTP, passwords in SSH remotes and other schemes are
    /// rejected with [`Error::InvalidUrl`], whose reason never repeats a secret.
    pub fn parse(input: &str) -> Result<Url, Error> {
        let (main, branch) = match input.split_once('#') {
            Some((m, b)) => {
                if !valid_branch(b) {
                    return bad("invalid branch name after '#'");
                }
                (m, Some(String::from(b)))
            }
            None => (input, None),
        };
        let mut url = match main.split_once("://") {
            Some((scheme, rest)) => parse_with_scheme(scheme, rest)?,
            None => parse_scp_like(main)?,
        };
        url.branch = branch;
        Ok(url)
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
    /// The repository path: starting with `/`, except for SSH remotes, where it is what
    /// `git-upload-pack` gets (possibly relative to the login directory, or `~…`).
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The SSH login the URL names, if any (see [`DEFAULT_SSH_USER`]).
    pub fn ssh_user(&self) -> Option<&str> {
        self.ssh_user.as_deref()
    }
    /// For SSH remotes, the command the server runs: `git-upload-pack '<path>'`, the path
    /// quoted for a POSIX shell (the SSH server hands it to the login shell).
    pub fn ssh_command(&self) -> Option<String> {
        if self.scheme != Scheme::Ssh {
            return None;
        }
        let mut command = String::from("git-upload-pack ");
        shell_quote(&self.path, &mut command);
        Some(command)
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
            ssh_user: None,
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
    /// Formats the URL back to `scheme://[user:***@]host[:port]path[#branch]`; SSH remotes
    /// with a relative path as `[user@]host:path`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scheme == Scheme::Ssh {
            // ssh://host/~x means ~x, so an absolute /~x needs the scp-like form (port 22),
            // and a relative path has no ssh:// form.
            let ssh_form = self.path.starts_with('~')
                || (self.path.starts_with('/') && !self.path.starts_with("/~"));
            let scp_like = self.port == 22 && !ssh_form;
            if !scp_like {
                f.write_str("ssh://")?;
            }
            if let Some(user) = &self.ssh_user {
                write!(f, "{user}@")?;
            }
            if scp_like {
                write!(f, "{}:{}", self.host, self.path)?;
            } else {
                let slash = if self.path.starts_with('~') { "/" } else { "" };
                write!(f, "{}{slash}{}", self.host_header(), self.path)?;
            }
        } else {
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
        }
        if let Some(b) = &self.branch {
            write!(f, "#{b}")?;
        }
        Ok(())
    }
}

fn bad<T>(reason: &'static str) -> Result<T, Error> {
    Err(Error::InvalidUrl { reason })
}

/// `scheme://…` (after splitting off `#branch`).
fn parse_with_scheme(scheme: &str, rest: &str) -> Result<Url, Error> {
    let scheme = if scheme.eq_ignore_ascii_case("git") {
        Scheme::Git
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if ["ssh", "git+ssh", "ssh+git"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        Scheme::Ssh
    } else {
        return bad("unsupported scheme (expected git://, http://, https:// or ssh://)");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, authority) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    let (credentials, ssh_user) = match (scheme, userinfo) {
        (_, None) => (None, None),
        (Scheme::Git, Some(_)) => {
            return bad("git:// does not support credentials (user@ in the URL)");
        }
        (Scheme::Ssh, Some(user)) => (None, Some(parse_ssh_user(user)?)),
        (Scheme::Http | Scheme::Https, Some(userinfo)) => (Some(parse_userinfo(userinfo)?), None),
    };
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
    let path = match scheme {
        Scheme::Ssh => {
            // As in git: ssh://host/~user/repo names a path from a home directory.
            let path = if path.starts_with("/~") {
                &path[1..]
            } else {
                path
            };
            ssh_path(path)?
        }
        Scheme::Git | Scheme::Http | Scheme::Https => {
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
            path
        }
    };
    Ok(Url {
        scheme,
        host,
        port,
        path,
        branch: None,
        credentials,
        ssh_user,
    })
}

/// scp-like `[user@]host:path` (after splitting off `#branch`).
fn parse_scp_like(text: &str) -> Result<Url, Error> {
    let Some((login, path)) = text.split_once(':') else {
        return bad(
            "not a remote URL (expected git://, http://, https://, ssh:// or user@host:path)",
        );
    };
    if login.contains('/') {
        return bad(
            "local paths are not remotes (expected git://, http://, https://, ssh:// or user@host:path)",
        );
    }
    let (ssh_user, host) = match login.rsplit_once('@') {
        Some((user, host)) => (Some(parse_ssh_user(user)?), host),
        None => (None, login),
    };
    if host.starts_with('[') {
        return bad("IPv6 literals need the ssh://[address]/path form");
    }
    if !valid_host(host) {
        return bad("invalid host name");
    }
    Ok(Url {
        scheme: Scheme::Ssh,
        host: host.to_ascii_lowercase(),
        port: Scheme::Ssh.default_port(),
        path: ssh_path(path)?,
        branch: None,
        credentials: None,
        ssh_user,
    })
}

/// An SSH login name: `[A-Za-z0-9._+-]`, 1 to 64 characters, not starting with `-`.
fn parse_ssh_user(user: &str) -> Result<String, Error> {
    if user.contains(':') {
        return bad("SSH remotes take a user name, not a password (use a key)");
    }
    let ok = !user.is_empty()
        && user.len() <= 64
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'));
    if !ok {
        return bad("invalid SSH user name");
    }
    Ok(String::from(user))
}

/// A path for `git-upload-pack` on the SSH server.
fn ssh_path(path: &str) -> Result<String, Error> {
    if path.is_empty() || path == "/" {
        return bad("SSH remote needs a repository path");
    }
    if path.len() > MAX_SSH_PATH {
        return bad("SSH repository path longer than 4096 bytes");
    }
    if path.chars().any(char::is_control) {
        return bad("SSH repository path contains control characters");
    }
    Ok(String::from(path))
}

/// `text` as one word for a POSIX shell, as git quotes it (`sq_quote_buf`): in single
/// quotes, with `'` written as `'\''` and `!` as `'\!'` (for csh login shells).
fn shell_quote(text: &str, out: &mut String) {
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' | '!' => {
                out.push_str("'\\");
                out.push(c);
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out.push('\'');
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
        let u = Url::parse("ssh://git@[fd00::2]:2222/srv/site.git").unwrap();
        assert_eq!(
            (u.host(), u.port(), u.path()),
            ("[fd00::2]", 2222, "/srv/site.git")
        );
        assert_eq!(u.to_string(), "ssh://git@[fd00::2]:2222/srv/site.git");
        let u = Url::parse("https://me:pw@[::1]:8443/r.git").unwrap();
        assert_eq!(u.to_string(), "https://me:***@[::1]:8443/r.git");
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
    fn ssh_forms() {
        let cmd = |u: &Url| u.ssh_command().unwrap();
        for (text, user, host, port, path, shown) in [
            (
                "ssh://h/srv/site.git",
                None,
                "h",
                22,
                "/srv/site.git",
                "ssh://h/srv/site.git",
            ),
            (
                "ssh://deploy@Git.Example:2222/site.git#gh-pages",
                Some("deploy"),
                "git.example",
                2222,
                "/site.git",
                "ssh://deploy@git.example:2222/site.git#gh-pages",
            ),
            (
                "git+ssh://h/~/site.git",
                None,
                "h",
                22,
                "~/site.git",
                "ssh://h/~/site.git",
            ),
            (
                "ssh+git://h:22/~alice/x",
                None,
                "h",
                22,
                "~alice/x",
                "ssh://h/~alice/x",
            ),
            (
                "git@github.com:org/site.git",
                Some("git"),
                "github.com",
                22,
                "org/site.git",
                "git@github.com:org/site.git",
            ),
            (
                "h:site.git#main",
                None,
                "h",
                22,
                "site.git",
                "h:site.git#main",
            ),
            (
                "h:/abs/a b.git",
                None,
                "h",
                22,
                "/abs/a b.git",
                "ssh://h/abs/a b.git",
            ),
            ("u@h:~/x", Some("u"), "h", 22, "~/x", "ssh://u@h/~/x"),
            ("http:/~'@C", None, "http", 22, "/~'@C", "http:/~'@C"),
            ("h:it's!.git", None, "h", 22, "it's!.git", "h:it's!.git"),
            (
                "ssh://h/caf\u{e9}?.git",
                None,
                "h",
                22,
                "/caf\u{e9}?.git",
                "ssh://h/caf\u{e9}?.git",
            ),
        ] {
            let u = Url::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(u.scheme(), Scheme::Ssh, "{text}");
            assert_eq!(
                (u.ssh_user(), u.host(), u.port(), u.path()),
                (user, host, port, path),
                "{text}"
            );
            assert_eq!(u.to_string(), shown, "{text}");
            assert_eq!(Url::parse(shown).unwrap(), u, "{shown}");
            assert!(u.credentials().is_none());
        }
        let u = Url::parse("h:it's!.git").unwrap();
        assert_eq!(cmd(&u), r"git-upload-pack 'it'\''s'\!'.git'");
        let u = Url::parse("ssh://h/srv/a b.git").unwrap();
        assert_eq!(cmd(&u), "git-upload-pack '/srv/a b.git'");
        let u = Url::parse("ssh://h/~/x").unwrap();
        assert_eq!(cmd(&u), "git-upload-pack '~/x'");
        assert_eq!(Url::parse("git://h/x").unwrap().ssh_command(), None);
        let not_remote =
            "not a remote URL (expected git://, http://, https://, ssh:// or user@host:path)";
        let local = "local paths are not remotes (expected git://, http://, https://, ssh:// or user@host:path)";
        let password = "SSH remotes take a user name, not a password (use a key)";
        let control = "SSH repository path contains control characters";
        for (bad, why) in [
            ("ssh://u:pw@h/x", password),
            ("ssh://-oProxyCommand=x@h/x", "invalid SSH user name"),
            ("-oProxyCommand=x@h:x", "invalid SSH user name"),
            ("ssh://h", "SSH remote needs a repository path"),
            ("ssh://h/", "SSH remote needs a repository path"),
            ("h:", "SSH remote needs a repository path"),
            ("ssh://h/a\nb", control),
            ("h:a\u{7f}b", control),
            ("h:a\u{85}b", control),
            ("-oProxyCommand=x:y", "invalid host name"),
            (
                "[::1]:x",
                "IPv6 literals need the ssh://[address]/path form",
            ),
            ("./dir:x", local),
            ("/srv/site.git", not_remote),
            ("ssh://h:0/x", "invalid port"),
        ] {
            assert_eq!(
                Url::parse(bad),
                Err(Error::InvalidUrl { reason: why }),
                "{bad}"
            );
        }
        let long = alloc::format!("h:{}", "x".repeat(4097));
        assert!(Url::parse(&long).is_err());
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
