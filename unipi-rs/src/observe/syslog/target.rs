//! Where syslog messages go: the value of `--syslog`.
//!
//! | value | transport | default port |
//! |---|---|---|
//! | `HOST`, `HOST:PORT`, `udp://HOST[:PORT]` | UDP, one message per datagram (RFC 5426) | 514 |
//! | `tcp://HOST[:PORT]` | TCP, octet-counting framing (RFC 6587 §3.4.1) | 601 |
//!
//! `HOST` is an IPv4 literal or a DNS name (resolved through `--dns` or
//! DHCP's resolvers). 601 is the port IANA assigned to syslog over TCP
//! (`syslog-conn`, RFC 3195); many collectors listen for TCP on 514
//! instead: give the port then.

use alloc::string::{String, ToString};
use core::fmt;
use core::str::FromStr;

use smoltcp::wire::Ipv4Address;

/// Default UDP port (RFC 5426 §3.3).
pub const UDP_PORT: u16 = 514;
/// Default TCP port (IANA `syslog-conn`).
pub const TCP_PORT: u16 = 601;
/// Longest host name accepted (RFC 1035).
const MAX_NAME: usize = 253;

/// The transport to the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// RFC 5426: one message per datagram.
    Udp,
    /// RFC 6587: a TCP stream, each message preceded by its length.
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// The collector's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An IPv4 literal.
    Ip(Ipv4Address),
    /// A DNS name (lowercase, no trailing dot).
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A parsed `--syslog` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogTarget {
    /// UDP or TCP.
    pub transport: Transport,
    /// The collector.
    pub host: Host,
    /// Its port.
    pub port: u16,
}

impl fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.transport, self.host, self.port)
    }
}

/// Why a `--syslog` value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    /// A scheme other than `udp://` or `tcp://`.
    Scheme,
    /// Nothing where the host should be.
    NoHost,
    /// An IPv6 literal: the network stack speaks IPv4 only.
    Ipv6,
    /// Neither an IPv4 address nor a valid DNS name.
    BadHost,
    /// The port is not a number in 1-65535.
    BadPort,
    /// A path, user name or other URL part after the host.
    Trailing,
}

impl TargetError {
    /// What went wrong and what to write instead (static, for
    /// `ConfigError::Invalid`).
    pub fn reason(self) -> &'static str {
        match self {
            TargetError::Scheme => "use udp://HOST[:PORT] or tcp://HOST[:PORT]",
            TargetError::NoHost => "expected [udp://|tcp://]HOST[:PORT]",
            TargetError::Ipv6 => {
                "IPv6 collectors are not supported; give an IPv4 address or a name"
            }
            TargetError::BadHost => "the host is neither an IPv4 address nor a DNS name",
            TargetError::BadPort => "the port must be a number from 1 to 65535",
            TargetError::Trailing => "only [udp://|tcp://]HOST[:PORT], no path or user",
        }
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl SyslogTarget {
    /// Parses `[udp://|tcp://]HOST[:PORT]` (see the module documentation).
    pub fn parse(value: &str) -> Result<SyslogTarget, TargetError> {
        let (transport, rest) = match value.split_once("://") {
            Some((scheme, rest)) => {
                let t = if scheme.eq_ignore_ascii_case("udp") {
                    Transport::Udp
                } else if scheme.eq_ignore_ascii_case("tcp") {
                    Transport::Tcp
                } else {
                    return Err(TargetError::Scheme);
                };
                (t, rest)
            }
            None => (Transport::Udp, value),
        };
        // A trailing slash is harmless (`tcp://host:601/`).
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.starts_with('[') {
            return Err(TargetError::Ipv6);
        }
        if rest.contains(['/', '@', '?', '#']) {
            return Err(TargetError::Trailing);
        }
        let (host, port) = match rest.split_once(':') {
            Some((h, p)) => {
                if p.contains(':') {
                    return Err(TargetError::Ipv6);
                }
                (h, Some(parse_port(p)?))
            }
            None => (rest, None),
        };
        if host.is_empty() {
            return Err(TargetError::NoHost);
        }
        let host = parse_host(host)?;
        let port = port.unwrap_or(match transport {
            Transport::Udp => UDP_PORT,
            Transport::Tcp => TCP_PORT,
        });
        Ok(SyslogTarget {
            transport,
            host,
            port,
        })
    }
}

fn parse_port(p: &str) -> Result<u16, TargetError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TargetError::BadPort);
    }
    match p.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err(TargetError::BadPort),
    }
}

fn parse_host(h: &str) -> Result<Host, TargetError> {
    if let Ok(ip) = Ipv4Address::from_str(h) {
        if ip.is_unspecified() || ip.is_broadcast() {
            return Err(TargetError::BadHost);
        }
        return Ok(Host::Ip(ip));
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(TargetError::BadHost);
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    // An all-numeric last label is a mistyped address, not a name.
    let numeric_tld = name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if !name.split('.').all(label_ok) || numeric_tld {
        return Err(TargetError::BadHost);
    }
    Ok(Host::Name(name.to_ascii_lowercase().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str) -> SyslogTarget {
        SyslogTarget::parse(v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn forms_and_defaults() {
        let t = ok("10.0.0.1");
        assert_eq!(
            t,
            SyslogTarget {
                transport: Transport::Udp,
                host: Host::Ip(Ipv4Address::new(10, 0, 0, 1)),
                port: 514
            }
        );
        assert_eq!(ok("10.0.0.1:5514").port, 5514);
        assert_eq!(ok("udp://10.0.0.1").port, 514);
        let t = ok("TCP://Logs.Example.org.");
        assert_eq!(t.transport, Transport::Tcp);
        assert_eq!(t.host, Host::Name("logs.example.org".into()));
        assert_eq!(t.port, 601);
        assert_eq!(ok("tcp://logs:514/").port, 514);
        assert_eq!(alloc::format!("{}", ok("logs")), "udp://logs:514");
    }

    #[test]
    fn refusals() {
        for (v, e) in [
            ("", TargetError::NoHost),
            (":514", TargetError::NoHost),
            ("udp://", TargetError::NoHost),
            ("http://x", TargetError::Scheme),
            ("tls://x:6514", TargetError::Scheme),
            ("[::1]:514", TargetError::Ipv6),
            ("::1", TargetError::Ipv6),
            ("x:0", TargetError::BadPort),
            ("x:65536", TargetError::BadPort),
            ("x:", TargetError::BadPort),
            ("x:+1", TargetError::BadPort),
            ("x:99999999999", TargetError::BadPort),
            ("a..b", TargetError::BadHost),
            ("-a.b", TargetError::BadHost),
            ("a_b", TargetError::BadHost),
            ("1.2.3", TargetError::BadHost),
            ("1.2.3.256", TargetError::BadHost),
            ("0.0.0.0", TargetError::BadHost),
            ("255.255.255.255", TargetError::BadHost),
            ("tcp://u@host", TargetError::Trailing),
            ("tcp://host/path", TargetError::Trailing),
        ] {
            assert_eq!(SyslogTarget::parse(v), Err(e), "{v}");
        }
        let long = "a.".repeat(130);
        assert_eq!(SyslogTarget::parse(&long), Err(TargetError::BadHost));
    }
}
