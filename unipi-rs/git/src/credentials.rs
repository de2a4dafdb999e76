//! Credentials for HTTP Basic authentication, and keeping them out of every text.
//!
//! A [`Credentials`] value prints as `user:***` (Display and Debug): the secret never reaches
//! a log line or an error message. Whoever prints a remote URL given by a user should print
//! the parsed [`Url`](crate::Url) (which redacts the same way) or pass the raw text through
//! [`redact_credentials`].

use alloc::borrow::Cow;
use alloc::string::String;
use core::fmt;

use crate::error::Error;

/// Longest accepted user name in bytes.
const MAX_USER: usize = 256;
/// Longest accepted secret (password or token) in bytes.
const MAX_SECRET: usize = 4096;

/// A user name and a secret (password or access token) for HTTP Basic authentication.
///
/// Promises: the user name is at most 256 bytes without `:` or control characters; the
/// secret at most 4096 bytes without control characters (it may be empty). `Display` and
/// `Debug` show `user:***`, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    secret: String,
}

impl Credentials {
    /// Credentials from their parts; [`Error::InvalidCredentials`] says which rule a part
    /// breaks (never what the part is).
    pub fn new(user: &str, secret: &str) -> Result<Credentials, Error> {
        let invalid = |reason| Err(Error::InvalidCredentials { reason });
        if user.len() > MAX_USER {
            return invalid("user name longer than 256 bytes");
        }
        if secret.len() > MAX_SECRET {
            return invalid("secret longer than 4096 bytes");
        }
        if user.contains(':') {
            return invalid("user name contains ':'");
        }
        if user.chars().chain(secret.chars()).any(char::is_control) {
            return invalid("control character in user name or secret");
        }
        Ok(Credentials {
            user: String::from(user),
            secret: String::from(secret),
        })
    }

    /// Parses `user:secret` as kept in a file or memory region: text around it (such as a
    /// trailing newline) is trimmed, and the secret is everything after the first `:`.
    pub fn parse(text: &str) -> Result<Credentials, Error> {
        match text.trim().split_once(':') {
            Some((user, secret)) => Credentials::new(user, secret),
            None => Err(Error::InvalidCredentials {
                reason: "expected user:secret",
            }),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The secret; only the HTTP transport reads it.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Display for Credentials {
    /// `user:***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:***", self.user)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("secret", &"***")
            .finish()
    }
}

/// `text` with the user information of every `scheme://user:secret@` in it replaced by
/// `***@`, for printing remote URLs that may not have parsed.
pub fn redact_credentials(text: &str) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &after[at..];
            }
            None => rest = after,
        }
    }
    // scp-like remotes (`user@host:path`) carry no secret.
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn rules_and_printing() {
        let c = Credentials::new("alice", "s3cr3t:with:colons").unwrap();
        assert_eq!(c.user(), "alice");
        assert_eq!(c.secret(), "s3cr3t:with:colons");
        assert_eq!(format!("{c}"), "alice:***");
        assert_eq!(
            format!("{c:?}"),
            "Credentials { user: \"alice\", secret: \"***\" }"
        );
        for (user, secret, why) in [
            ("a:b", "x", "user name contains ':'"),
            ("a\n", "x", "control character in user name or secret"),
            ("a", "x\ty", "control character in user name or secret"),
        ] {
            assert_eq!(
                Credentials::new(user, secret),
                Err(Error::InvalidCredentials { reason: why })
            );
        }
        assert!(Credentials::new(&"u".repeat(257), "x").is_err());
        assert!(Credentials::new("u", &"x".repeat(4097)).is_err());
        assert_eq!(
            Credentials::parse("  bob:tok:en\n").unwrap(),
            Credentials::new("bob", "tok:en").unwrap()
        );
        assert!(Credentials::parse("no-colon").is_err());
        let e = Credentials::parse("a\u{7}b:secret-token").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("secret-token"));
    }

    #[test]
    fn redaction() {
        for (text, want) in [
            ("https://h/x", "https://h/x"),
            ("https://u:tok@h/x#b", "https://***@h/x#b"),
            (
                "--remote http://u%40x:t@k@h:80 failed",
                "--remote http://***@h:80 failed",
            ),
            (
                "a https://u:p@h/ and git://h/x and http://v:q@i/?",
                "a https://***@h/ and git://h/x and http://***@i/?",
            ),
            ("git@github.com:org/site.git", "git@github.com:org/site.git"),
            ("ssh://git@h/x", "ssh://***@h/x"),
        ] {
            assert_eq!(redact_credentials(text), want, "{text}");
        }
    }
}
