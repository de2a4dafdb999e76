//! DNS names to certify, and contact addresses.

use alloc::string::String;
use core::fmt;

use crate::error::{Error, sanitize};

/// Longest DNS name in its text form without the trailing dot (RFC 1035 §2.3.4: 255
/// octets on the wire).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// A validated DNS name to certify: lowercase LDH labels (letters, digits, hyphens, no
/// hyphen at either end, punycode `xn--` allowed), 1 to 63 characters each, at least two
/// labels, at most 253 characters in all, and a last label that is not all digits (so an
/// IPv4 address is never taken for a name). Wildcards are refused: they need the DNS-01
/// challenge, which a unikernel without a DNS server cannot answer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsName(String);

impl DnsName {
    /// Validates `name`; upper-case ASCII letters are lowered (DNS names are
    /// case-insensitive and ACME servers compare lowercase).
    pub fn new(name: &str) -> Result<DnsName, Error> {
        let fail = |reason| Error::InvalidName {
            name: sanitize(name.as_bytes()),
            reason,
        };
        if name.is_empty() {
            return Err(fail("empty name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(fail("longer than 253 characters"));
        }
        if name.starts_with("*.") {
            return Err(fail(
                "wildcard names need the DNS-01 challenge, which is not supported",
            ));
        }
        if name.ends_with('.') {
            return Err(fail("write the name without the trailing dot"));
        }
        let lower = name.to_ascii_lowercase();
        let mut labels = 0;
        let mut last = "";
        for label in lower.split('.') {
            if label.is_empty() {
                return Err(fail("empty label"));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(fail("label longer than 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(fail(
                    "only letters, digits and hyphens are allowed (write IDNs as xn--)",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(fail("a label starts or ends with a hyphen"));
            }
            labels += 1;
            last = label;
        }
        if labels < 2 {
            return Err(fail("a certificate needs a fully qualified name (a.b)"));
        }
        if last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(
                "the last label is numeric: IP addresses cannot be certified",
            ));
        }
        Ok(DnsName(lower))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DnsName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Longest contact e-mail address accepted (RFC 5321 §4.5.3.1.3 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Turns an e-mail address into an ACME contact URL (`mailto:` plus the address).
/// Addresses are checked only as far as ACME servers require: one `@`, a non-empty local
/// part of printable ASCII without `,` `<` `>` or spaces (a `mailto:` URL takes no
/// header fields or lists), and a valid [`DnsName`] as domain.
pub fn contact_url(email: &str) -> Result<String, Error> {
    let fail = |reason| Error::InvalidContact {
        contact: sanitize(email.as_bytes()),
        reason,
    };
    let email = email.strip_prefix("mailto:").unwrap_or(email);
    if email.len() > MAX_EMAIL_LEN {
        return Err(fail("longer than 254 characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(fail("not an e-mail address (no '@')"));
    };
    if local.is_empty()
        || !local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b",<>?@\"\\%".contains(&b))
    {
        return Err(fail("unsupported characters before the '@'"));
    }
    let domain = DnsName::new(domain).map_err(|_| fail("the domain is not a valid name"))?;
    let mut url = String::from("mailto:");
    url.push_str(local);
    url.push('@');
    url.push_str(domain.as_ref());
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> &'static str {
        match DnsName::new(name) {
            Err(Error::InvalidName { reason, .. }) => reason,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn valid_names() {
        assert_eq!(DnsName::new("Example.ORG").unwrap().as_str(), "example.org");
        assert_eq!(DnsName::new("muen.sk").unwrap().as_str(), "muen.sk");
        assert!(DnsName::new("xn--bcher-kva.example").is_ok());
        assert!(DnsName::new("a-b.c0.example").is_ok());
        assert!(DnsName::new("1.2.3.example").is_ok());
        let label = "a".repeat(63);
        let long = alloc::format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(long.len(), 253);
        assert!(DnsName::new(&long).is_ok());
    }

    #[test]
    fn invalid_names() {
        assert_eq!(reason(""), "empty name");
        assert_eq!(reason("a..b"), "empty label");
        assert_eq!(reason(".a.b"), "empty label");
        assert_eq!(reason("a.b."), "write the name without the trailing dot");
        assert_eq!(
            reason("localhost"),
            "a certificate needs a fully qualified name (a.b)"
        );
        assert!(reason("*.example.org").starts_with("wildcard"));
        assert!(reason("a_b.example").starts_with("only letters"));
        assert!(reason("bücher.example").starts_with("only letters"));
        assert!(reason("a b.example").starts_with("only letters"));
        assert_eq!(reason("-a.example"), "a label starts or ends with a hyphen");
        assert_eq!(reason("a-.example"), "a label starts or ends with a hyphen");
        assert!(reason("192.168.0.1").starts_with("the last label is numeric"));
        assert_eq!(
            reason(&alloc::format!("{}.example", "a".repeat(64))),
            "label longer than 63 characters"
        );
        assert_eq!(
            reason(&alloc::format!("{}.example", "a.".repeat(124))),
            "longer than 253 characters"
        );
        // Hostile text is sanitised in the error.
        match DnsName::new("a\u{1b}[2J.example") {
            Err(Error::InvalidName { name, .. }) => assert_eq!(name, "a?[2J.example"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn contacts() {
        assert_eq!(
            contact_url("admin@Example.org").unwrap(),
            "mailto:admin@example.org"
        );
        assert_eq!(
            contact_url("mailto:a.b+c@example.org").unwrap(),
            "mailto:a.b+c@example.org"
        );
        assert!(contact_url("admin").is_err());
        assert!(contact_url("@example.org").is_err());
        assert!(contact_url("a,b@example.org").is_err());
        assert!(contact_url("a@b@example.org").is_err());
        assert!(contact_url("a@localhost").is_err());
        assert!(contact_url("a b@example.org").is_err());
    }
}
