//! Values of boot parameters: each parser takes the text after `=` and
//! gives the value or a static reason (the caller wraps it in a
//! [`super::ConfigError`]).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::str::FromStr;

use smoltcp::wire::{EthernetAddress, IpAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

/// Why an ssh key or host-key pin was refused, as a boot-parameter error
/// (which carries a static reason; the key itself is never shown).
pub(super) fn ssh_reason(e: &unipi_ssh::ParamError) -> &'static str {
    use unipi_ssh::ParamError as E;
    match e {
        E::RsaUnsupported => "RSA keys are not supported: use an ed25519 key",
        E::KeyFormat | E::KeyBase64 | E::SeedLength { .. } => {
            "expected ed25519:<base64 of the 32-byte seed>"
        }
        _ => "expected SHA256:<base64> as ssh-keygen -lf prints it (or an ed25519 key)",
    }
}

/// A seed for a key: base64 (as Unipi takes it), or else the text itself;
/// at least 16 bytes either way.
pub(super) fn parse_seed(v: &str) -> Result<Vec<u8>, &'static str> {
    use base64ct::Encoding;
    let bytes = base64ct::Base64::decode_vec(v)
        .ok()
        .filter(|b| b.len() >= 16)
        .unwrap_or_else(|| v.as_bytes().to_vec());
    if bytes.len() < 16 {
        return Err("a seed needs at least 16 bytes");
    }
    Ok(bytes)
}

pub(super) fn parse_switch(v: &str) -> Result<bool, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err("expected on or off"),
    }
}

pub(super) fn parse_num(v: &str, min: u64, max: u64) -> Result<u64, &'static str> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a decimal number");
    }
    let n: u64 = v.parse().map_err(|_| "expected a decimal number")?;
    if n < min || n > max {
        return Err("out of range");
    }
    Ok(n)
}

pub(super) fn parse_port(v: &str) -> Result<u16, &'static str> {
    parse_num(v, 1, 65535).map(|n| n as u16)
}

pub(super) fn parse_ipv4(v: &str) -> Result<Ipv4Address, &'static str> {
    Ipv4Address::from_str(v).map_err(|_| "expected an IPv4 address A.B.C.D")
}

pub(super) fn parse_cidr(v: &str) -> Result<Ipv4Cidr, &'static str> {
    let (addr, prefix) = v.split_once('/').ok_or("expected A.B.C.D/N")?;
    let addr = parse_ipv4(addr)?;
    let prefix = parse_num(prefix, 0, 32).map_err(|_| "prefix length must be 0..32")? as u8;
    if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
        return Err("not a host address");
    }
    Ok(Ipv4Cidr::new(addr, prefix))
}

/// An IPv6 address, plain or in brackets (`2001:db8::1`, `[2001:db8::1]`).
pub(super) fn parse_ipv6(v: &str) -> Result<Ipv6Address, &'static str> {
    let plain = v
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(v);
    Ipv6Address::from_str(plain).map_err(|_| "expected an IPv6 address such as 2001:db8::1")
}

/// A unicast address a host may have or talk to: not unspecified,
/// multicast, loopback or IPv4-mapped.
pub(super) fn is_host_ipv6(a: Ipv6Address) -> bool {
    !(a.is_unspecified() || a.is_multicast() || a.is_loopback() || a.to_ipv4_mapped().is_some())
}

pub(super) fn parse_cidr6(v: &str) -> Result<Ipv6Cidr, &'static str> {
    let (addr, prefix) = v
        .split_once('/')
        .ok_or("expected ADDR/N, e.g. 2001:db8::10/64")?;
    let addr = parse_ipv6(addr)?;
    let prefix = parse_num(prefix, 0, 128).map_err(|_| "prefix length must be 0..128")? as u8;
    if !is_host_ipv6(addr) {
        return Err("not a host address");
    }
    if addr.is_unicast_link_local() {
        return Err("the link-local address is derived from the MAC; give a routable address");
    }
    Ok(Ipv6Cidr::new(addr, prefix))
}

/// `[udp:]ADDR[:53]` with ADDR an IPv4 address, or an IPv6 address in
/// brackets (`[2001:db8::53]:53`) or plain (`2001:db8::53`, no port then).
pub(super) fn parse_dns(v: &str) -> Result<IpAddress, &'static str> {
    let v = match v.strip_prefix("udp:") {
        Some(rest) => rest,
        None if v.starts_with("tcp:") || v.starts_with("tls:") => {
            return Err("only plain UDP DNS is supported");
        }
        None => v,
    };
    let (addr, port) = if let Some(rest) = v.strip_prefix('[') {
        let (a, after) = rest.split_once(']').ok_or("missing ']'")?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("expected [ADDR] or [ADDR]:53")?,
            ),
        };
        (IpAddress::Ipv6(parse_ipv6(a)?), port)
    } else if v.matches(':').count() > 1 {
        (IpAddress::Ipv6(parse_ipv6(v)?), None)
    } else {
        match v.split_once(':') {
            Some((a, p)) => (IpAddress::Ipv4(parse_ipv4(a)?), Some(p)),
            None => (IpAddress::Ipv4(parse_ipv4(v)?), None),
        }
    };
    if port.is_some_and(|p| p != "53") {
        return Err("DNS port must be 53");
    }
    let usable = match addr {
        IpAddress::Ipv4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddress::Ipv6(a) => is_host_ipv6(a),
    };
    if !usable {
        return Err("not a unicast address");
    }
    Ok(addr)
}

pub(super) fn parse_mac(v: &str) -> Result<EthernetAddress, &'static str> {
    let mut bytes = [0u8; 6];
    let mut n = 0;
    for part in v.split([':', '-']) {
        if n == 6 || part.len() != 2 {
            return Err("expected xx:xx:xx:xx:xx:xx");
        }
        bytes[n] = u8::from_str_radix(part, 16).map_err(|_| "expected xx:xx:xx:xx:xx:xx")?;
        n += 1;
    }
    if n != 6 {
        return Err("expected xx:xx:xx:xx:xx:xx");
    }
    let mac = EthernetAddress(bytes);
    if !mac.is_unicast() || bytes == [0; 6] {
        return Err("not a unicast address");
    }
    Ok(mac)
}

pub(super) fn parse_hostname(v: &str) -> Result<String, &'static str> {
    let v = v.strip_suffix('.').unwrap_or(v);
    if v.is_empty() || v.len() > 253 {
        return Err("bad host name length");
    }
    for label in v.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("bad host name label");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("label starts or ends with '-'");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("host names use letters, digits, '-' and '.'");
        }
    }
    Ok(v.to_ascii_lowercase())
}

/// Printable ASCII without spaces: safe inside a header value.
pub(super) fn visible(v: &str) -> bool {
    v.bytes().all(|b| (0x21..0x7f).contains(&b))
}

pub(super) fn parse_remote(v: &str) -> Result<String, &'static str> {
    if v.is_empty() || v.len() > 2048 || !visible(v) {
        return Err("expected a URL");
    }
    // scheme://… or scp-like [user@]host:path (ssh); the Git client checks
    // the rest.
    let scp_like = v
        .split_once(':')
        .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'));
    if !v.contains("://") && !scp_like {
        return Err("expected scheme://host/path or user@host:path");
    }
    Ok(v.to_string())
}

pub(super) fn parse_url(v: &str) -> Result<String, &'static str> {
    if v.is_empty() || v.len() > 2048 || !visible(v) {
        return Err("expected a URL (printable ASCII, no spaces)");
    }
    Ok(v.to_string())
}

pub(super) fn parse_region(v: &str) -> Result<String, &'static str> {
    if v.is_empty() || v.len() > 63 {
        return Err("region names have 1..63 characters");
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'|'))
    {
        return Err("region names use letters, digits, '_', '-', '.', '|'");
    }
    Ok(v.to_string())
}

pub(super) fn parse_hook(v: &str) -> Result<String, &'static str> {
    if !v.starts_with('/') {
        return Err("must start with '/'");
    }
    if v.len() > 256 || !visible(v) {
        return Err("bad path");
    }
    if v.bytes().any(|b| matches!(b, b'?' | b'#' | b';' | b'%')) {
        return Err("must not contain '?', '#', ';' or '%'");
    }
    Ok(v.to_string())
}

pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `type/subtype` with optional `;param=value` parts (no spaces: the command
/// line cannot carry them).
pub(super) fn parse_mime(v: &str) -> Result<String, &'static str> {
    if v.len() > 200 || !visible(v) {
        return Err("bad media type");
    }
    let mut parts = v.split(';');
    let essence = parts.next().unwrap_or("");
    let (t, s) = essence.split_once('/').ok_or("expected type/subtype")?;
    if t.is_empty() || s.is_empty() || !t.bytes().all(is_tchar) || !s.bytes().all(is_tchar) {
        return Err("expected type/subtype");
    }
    for p in parts {
        let (k, val) = p.split_once('=').ok_or("bad media type parameter")?;
        if k.is_empty() || !k.bytes().all(is_tchar) || val.is_empty() {
            return Err("bad media type parameter");
        }
    }
    Ok(v.to_string())
}
