//! What the serving code knows about a request, whatever its framing:
//! method, target, `Host` and the header fields.
//!
//! HTTP/1.1 builds a [`Request`] from the parsed header block; HTTP/2 from
//! a decoded header list. Fields are `httparse::Header` values (name and
//! raw value) in both cases, so lookups read the same everywhere.

use httparse::Header;

/// The request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `OPTIONS`
    Options,
    /// A method RFC 9110 defines that this server never allows (`PUT`,
    /// `DELETE`, `CONNECT`, `TRACE`) or the registered `PATCH`.
    Unsupported,
    /// A method this server does not know.
    Unknown,
}

impl Method {
    /// Classifies a method token (methods are case-sensitive).
    pub fn parse(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "OPTIONS" => Method::Options,
            "PUT" | "DELETE" | "CONNECT" | "TRACE" | "PATCH" => Method::Unsupported,
            _ => Method::Unknown,
        }
    }
}

/// A request as the serving code sees it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'r> {
    /// The method token as sent (for the access log).
    pub method_token: &'r str,
    /// The method.
    pub method: Method,
    /// The request target (origin-form `/path?query`, absolute-form, `*`,
    /// or authority-form for `CONNECT`).
    pub target: &'r str,
    /// The `Host` (HTTP/1.1) or `:authority` (HTTP/2) value, trimmed.
    pub host: Option<&'r str>,
    /// Every header field, in order.
    pub fields: &'r [Header<'r>],
}

impl<'r> Request<'r> {
    /// What the access log keeps of this request, arriving from `peer`
    /// since `start` over `protocol` (`HTTP/1.1`, `HTTP/2.0`, …): the path
    /// without its query or parameters, `Referer` and `User-Agent`.
    pub fn access(
        &self,
        peer: Option<smoltcp::wire::IpAddress>,
        start: smoltcp::time::Instant,
        protocol: &'static str,
    ) -> alloc::boxed::Box<crate::observe::access::AccessRequest> {
        let path = self.target.split(['?', ';']).next().unwrap_or("");
        let mut log = crate::observe::access::AccessRequest::new(peer, start);
        log.set_request(self.method_token, path, protocol);
        log.set_fields(
            self.values("referer").next(),
            self.values("user-agent").next(),
        );
        log
    }

    /// Every value of the field `name` (case-insensitive), in order.
    pub fn values(&self, name: &'static str) -> impl Iterator<Item = &'r [u8]> + 'r {
        values(self.fields, name)
    }

    /// The value of a field that must occur once; `None` if absent or
    /// repeated.
    pub fn single(&self, name: &'static str) -> Option<&'r [u8]> {
        let mut it = self.values(name);
        match (it.next(), it.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        }
    }

    /// True if the field occurs at all.
    pub fn has(&self, name: &'static str) -> bool {
        self.values(name).next().is_some()
    }
}

/// Every value of the field `name` in `fields` (case-insensitive).
pub fn values<'h, 'b: 'h>(
    fields: &'h [Header<'b>],
    name: &'static str,
) -> impl Iterator<Item = &'b [u8]> + 'h {
    fields
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// The elements of a comma-separated list value, trimmed, empty ones
/// skipped (RFC 9110 §5.6.1).
pub fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Characters allowed in a `Host` value (reg-name, IP literal, port).
pub fn valid_host(h: &[u8]) -> bool {
    h.len() <= 262
        && h.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(b))
}

/// `host[:port]` → `host` (IPv6 literals keep their brackets).
pub fn host_without_port(h: &str) -> Option<&str> {
    let (host, port) = if h.starts_with('[') {
        let end = h.find(']')?;
        let rest = &h[end + 1..];
        let port = if rest.is_empty() {
            ""
        } else {
            rest.strip_prefix(':')?
        };
        (&h[..=end], port)
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host, port),
            None => (h, ""),
        }
    };
    if host.is_empty() || host.contains(['[', ']']) && !host.starts_with('[') {
        return None;
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
        return None;
    }
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(Method::parse("GET"), Method::Get);
        assert_eq!(Method::parse("get"), Method::Unknown);
        assert_eq!(Method::parse("DELETE"), Method::Unsupported);
        assert_eq!(Method::parse("BREW"), Method::Unknown);
    }

    #[test]
    fn hosts() {
        assert_eq!(host_without_port("a.b:80"), Some("a.b"));
        assert_eq!(host_without_port("[::1]:443"), Some("[::1]"));
        assert_eq!(host_without_port("[::1]x"), None);
        assert_eq!(host_without_port("a:b"), None);
        assert!(valid_host(b"example.org:8080"));
        assert!(!valid_host(b"a b"));
    }

    #[test]
    fn lookups() {
        let fields = [
            Header {
                name: "Accept",
                value: b"a",
            },
            Header {
                name: "accept",
                value: b"b",
            },
            Header {
                name: "Range",
                value: b"bytes=0-1",
            },
        ];
        let r = Request {
            method_token: "GET",
            method: Method::Get,
            target: "/",
            host: None,
            fields: &fields,
        };
        assert_eq!(r.values("ACCEPT").count(), 2);
        assert_eq!(r.single("accept"), None);
        assert_eq!(r.single("range"), Some(&b"bytes=0-1"[..]));
        assert!(!r.has("if-match"));
        assert_eq!(
            tokens(b" a, ,b ,").collect::<alloc::vec::Vec<_>>(),
            [&b"a"[..], b"b"]
        );
    }
}
