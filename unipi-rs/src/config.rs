//! Boot parameters.
//!
//! The unikernel's command line is untrusted text. [`Config::parse`] reads it
//! as space-separated flags in `--flag=value` or `--flag value` form, after
//! dropping the leading `--solo5:…` options the way Solo5 does. Parsing never
//! fails as a whole: every unknown, malformed or unsupported flag becomes a
//! [`ConfigError`] (which the caller logs) and the setting keeps its default.
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--ipv4=A.B.C.D/N` | DHCP | static address and prefix |
//! | `--ipv4-gateway=A.B.C.D` | none | default gateway |
//! | `--dns=A.B.C.D` (repeatable), `--dns-servers=A,B` | DHCP's | resolvers (at most 4) |
//! | `--mac=xx:xx:xx:xx:xx:xx` | platform's | Ethernet address (unicast) |
//! | `--hostname=NAME` | none | redirect host (else the `Host` header) |
//! | `--port=N` | 80 | plain-HTTP port (redirects to HTTPS) |
//! | `--https-port=N` | 4433 | HTTPS port |
//! | `--remote=URL[#branch]` | none | Git remote (parsed by the git client) |
//! | `--remote-ca=REGION` | `remote_ca` | memory region with PEM CA certificates |
//! | `--site=REGION` | `site` | memory region with the fallback tar archive |
//! | `--tls-cert=REGION` | `tls_cert` | memory region with the PEM certificate chain |
//! | `--tls-key=REGION` | `tls_key` | memory region with the PEM private key |
//! | `--hook=PATH` | `/hook` | secret webhook path |
//! | `--default=URL` | none | `302` target instead of `404` |
//! | `--default-mime-type=TYPE` | `application/octet-stream` | fallback content type |
//! | `--mime-type=PATH:TYPE` (repeatable) | none | per-path content type |
//! | `--hsts=SECONDS` | off | `Strict-Transport-Security: max-age=SECONDS` |
//! | `--max-connections=N` | from the heap | concurrent connections (default: what the heap holds, about 11 KiB each) |
//! | `--min-send-rate=BYTES` | 1024 | a client reading its response more slowly (per 10 s) is dropped; 0: no minimum |
//! | `--hook-secret=SECRET`, `--hook-secret-region=REGION` | none | webhook requests must be signed with it (GitHub, Gitea/Forgejo, GitLab) |
//! | `--hook-max-body=N` | 1048576 | largest webhook request body |
//! | `--idle-timeout=SECONDS` | 30 | keep-alive idle timeout |
//! | `--header-timeout=SECONDS` | 10 | time allowed for a request's header block |
//! | `--max-header-bytes=N` | 16384 | size limit of a request's header block |
//! | `--log-level=LEVEL` | `info` | `error`, `warn`, `info`, `debug` or `trace` |
//! | `--access-log=on\|off` | on | one console line per response |
//! | `--syslog=[udp://\|tcp://]HOST[:PORT]` | off | RFC 5424 syslog (access lines, warnings, errors), see [`crate::observe::syslog::target`] |
//! | `--syslog-facility=NAME` | `local0` | `user`, `daemon`, `local0` … `local7` |
//! | `--metrics-port=N` | off | plain-HTTP port serving Prometheus metrics at `/metrics` |
//!
//! Unipi's Let's Encrypt, SSH and `--monitor` flags are recognised and
//! reported as [`ConfigError::Unsupported`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use log::LevelFilter;
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

use crate::observe::syslog::message::Facility;
use crate::observe::syslog::target::SyslogTarget;

/// Most DNS servers kept.
pub const MAX_DNS_SERVERS: usize = 4;
/// Most `--mime-type` overrides kept.
pub const MAX_MIME_OVERRIDES: usize = 256;

/// The parsed boot parameters. Every field has a usable default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Static IPv4 address with prefix; `None` means DHCP.
    pub ipv4: Option<Ipv4Cidr>,
    /// Default gateway for the static address.
    pub ipv4_gateway: Option<Ipv4Address>,
    /// DNS resolvers (empty: use DHCP's).
    pub dns: Vec<Ipv4Address>,
    /// Ethernet address override.
    pub mac: Option<EthernetAddress>,
    /// Host name for redirects (lowercase).
    pub hostname: Option<String>,
    /// Plain-HTTP port.
    pub port: u16,
    /// HTTPS port.
    pub https_port: u16,
    /// Git remote, `URL[#branch]`, unparsed.
    pub remote: Option<String>,
    /// Memory region holding PEM CA certificates for HTTPS remotes.
    pub remote_ca: String,
    /// Memory region holding the fallback site archive.
    pub site_region: String,
    /// Memory region holding the TLS certificate chain (PEM).
    pub tls_cert: String,
    /// Memory region holding the TLS private key (PEM).
    pub tls_key: String,
    /// Webhook path (starts with `/`).
    pub hook: String,
    /// Redirect target for paths that do not exist.
    pub default_url: Option<String>,
    /// Content type for files no rule matches.
    pub default_mime_type: String,
    /// Per-path content types: (site path without leading `/`, type).
    pub mime_types: Vec<(String, String)>,
    /// HSTS max-age in seconds; `None`: no HSTS header.
    pub hsts: Option<u32>,
    /// Maximum concurrent connections; `None`: as many as the heap holds.
    pub max_connections: Option<usize>,
    /// Minimum bytes per second a client must read while a response waits
    /// for it; 0: none.
    pub min_send_rate: u64,
    /// Webhook secret (signatures/tokens required when set).
    pub hook_secret: Option<String>,
    /// Memory region holding the webhook secret.
    pub hook_secret_region: Option<String>,
    /// Largest webhook request body, bytes.
    pub hook_max_body: u64,
    /// Keep-alive idle timeout, seconds.
    pub idle_timeout: u32,
    /// Header-block timeout, seconds.
    pub header_timeout: u32,
    /// A response that makes no progress for this long drops the
    /// connection (a client that stopped reading), seconds.
    pub send_timeout: u32,
    /// Header-block size limit, bytes.
    pub max_header_bytes: usize,
    /// Log verbosity.
    pub log_level: LevelFilter,
    /// TLS session resumption (tickets); off forces a full handshake per
    /// connection (benchmarks).
    pub tls_resumption: bool,
    /// Seconds between status log lines (connections, heap); 0: none.
    pub status_interval: u32,
    /// One console line per HTTP response.
    pub access_log: bool,
    /// Where syslog messages go; `None`: nowhere.
    pub syslog: Option<SyslogTarget>,
    /// The facility of syslog messages.
    pub syslog_facility: Facility,
    /// Plain-HTTP port serving the metrics; `None`: no metrics.
    pub metrics_port: Option<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ipv4: None,
            ipv4_gateway: None,
            dns: Vec::new(),
            mac: None,
            hostname: None,
            port: 80,
            https_port: 4433,
            remote: None,
            remote_ca: String::from("remote_ca"),
            site_region: String::from("site"),
            tls_cert: String::from("tls_cert"),
            tls_key: String::from("tls_key"),
            hook: String::from("/hook"),
            default_url: None,
            default_mime_type: String::from("application/octet-stream"),
            mime_types: Vec::new(),
            hsts: None,
            max_connections: None,
            min_send_rate: 1024,
            hook_secret: None,
            hook_secret_region: None,
            hook_max_body: 1024 * 1024,
            idle_timeout: 30,
            header_timeout: 10,
            send_timeout: 60,
            max_header_bytes: 16 * 1024,
            log_level: LevelFilter::Info,
            tls_resumption: true,
            status_interval: 0,
            access_log: true,
            syslog: None,
            syslog_facility: Facility::default(),
            metrics_port: None,
        }
    }
}

/// A problem with one boot parameter. The setting it concerns keeps its
/// default (or its previous value). Values are shortened and control
/// characters escaped when displayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A flag nobody knows.
    Unknown {
        /// The flag as given.
        flag: String,
    },
    /// A word that is not a flag (flags start with `--`).
    UnexpectedArgument {
        /// The word.
        arg: String,
    },
    /// A flag that needs a value got none.
    MissingValue {
        /// The flag.
        flag: &'static str,
    },
    /// A flag that takes no value got one.
    UnexpectedValue {
        /// The flag.
        flag: &'static str,
    },
    /// The value is not acceptable.
    Invalid {
        /// The flag.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A Unipi flag that this implementation deliberately does not support.
    Unsupported {
        /// The flag.
        flag: &'static str,
        /// Why, and what to use instead.
        reason: &'static str,
    },
    /// Two settings contradict each other.
    Conflict {
        /// What was done about it.
        message: &'static str,
    },
}

fn shorten(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= 64 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unknown { flag } => write!(f, "unknown option {}", shorten(flag)),
            ConfigError::UnexpectedArgument { arg } => {
                write!(f, "unexpected argument {:?}", shorten(arg))
            }
            ConfigError::MissingValue { flag } => write!(f, "--{} needs a value", flag),
            ConfigError::UnexpectedValue { flag } => write!(f, "--{} takes no value", flag),
            ConfigError::Invalid {
                flag,
                value,
                reason,
            } => write!(f, "--{}={}: {}", flag, shorten(value), reason),
            ConfigError::Unsupported { flag, reason } => {
                write!(f, "--{}: not supported: {}", flag, reason)
            }
            ConfigError::Conflict { message } => f.write_str(message),
        }
    }
}

/// How a known flag is handled.
#[derive(Clone, Copy)]
enum Kind {
    Value,
    UnsupportedValue(&'static str),
    UnsupportedSwitch(&'static str),
}

const LE: &str = "certificates come from the tls_cert/tls_key memory regions (no Let's Encrypt)";
const SSH: &str = "git over ssh is not implemented; use git:// or https://";
const MON: &str =
    "Unipi's monitoring (InfluxDB) is not implemented; use --metrics-port (Prometheus)";

const FLAGS: &[(&str, Kind)] = &[
    ("ipv4", Kind::Value),
    ("ipv4-gateway", Kind::Value),
    ("dns", Kind::Value),
    ("dns-servers", Kind::Value),
    ("mac", Kind::Value),
    ("hostname", Kind::Value),
    ("port", Kind::Value),
    ("https-port", Kind::Value),
    ("remote", Kind::Value),
    ("remote-ca", Kind::Value),
    ("site", Kind::Value),
    ("tls-cert", Kind::Value),
    ("tls-key", Kind::Value),
    ("hook", Kind::Value),
    ("default", Kind::Value),
    ("default-mime-type", Kind::Value),
    ("mime-type", Kind::Value),
    ("hsts", Kind::Value),
    ("max-connections", Kind::Value),
    ("min-send-rate", Kind::Value),
    ("hook-secret", Kind::Value),
    ("hook-secret-region", Kind::Value),
    ("hook-max-body", Kind::Value),
    ("idle-timeout", Kind::Value),
    ("header-timeout", Kind::Value),
    ("send-timeout", Kind::Value),
    ("max-header-bytes", Kind::Value),
    ("log-level", Kind::Value),
    ("tls-resumption", Kind::Value),
    ("status-interval", Kind::Value),
    ("access-log", Kind::Value),
    ("syslog", Kind::Value),
    ("syslog-facility", Kind::Value),
    ("metrics-port", Kind::Value),
    ("tls", Kind::UnsupportedSwitch(LE)),
    ("production", Kind::UnsupportedSwitch(LE)),
    ("cert-seed", Kind::UnsupportedValue(LE)),
    ("cert-key-type", Kind::UnsupportedValue(LE)),
    ("cert-bits", Kind::UnsupportedValue(LE)),
    ("account-seed", Kind::UnsupportedValue(LE)),
    ("account-key-type", Kind::UnsupportedValue(LE)),
    ("account-bits", Kind::UnsupportedValue(LE)),
    ("email", Kind::UnsupportedValue(LE)),
    ("ssh-key", Kind::UnsupportedValue(SSH)),
    ("ssh-password", Kind::UnsupportedValue(SSH)),
    ("ssh-authenticator", Kind::UnsupportedValue(SSH)),
    ("monitor", Kind::UnsupportedValue(MON)),
];

/// Flags whose values are secrets: never logged.
const SECRET_FLAGS: &[&str] = &[
    "hook-secret",
    "ssh-key",
    "ssh-password",
    "cert-seed",
    "account-seed",
];

/// The command line as it may be logged: values of secret flags become
/// `***`, and so does the password or token in a remote URL
/// (`https://user:***@host/…`).
pub fn redact(cmdline: &str) -> String {
    let mut out = String::with_capacity(cmdline.len());
    let mut hide_next = false;
    for (i, word) in cmdline.split_ascii_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if core::mem::take(&mut hide_next) && !word.starts_with("--") {
            out.push_str("***");
            continue;
        }
        let (name, value) = match word.strip_prefix("--").and_then(|b| b.split_once('=')) {
            Some((n, v)) => (Some(n), Some(v)),
            None => (word.strip_prefix("--"), None),
        };
        match (name, value) {
            (Some(n), Some(_)) if SECRET_FLAGS.contains(&n) => {
                out.push_str("--");
                out.push_str(n);
                out.push_str("=***");
            }
            (Some(n), None) if SECRET_FLAGS.contains(&n) => {
                out.push_str(word);
                hide_next = true;
            }
            _ => out.push_str(&redact_userinfo(word)),
        }
    }
    out
}

/// `scheme://user:secret@host…` → `scheme://user:***@host…`, and
/// `scheme://token@host…` → `scheme://***@host…` (forges take a token as
/// the user name too).
fn redact_userinfo(word: &str) -> String {
    let Some(start) = word.find("://").map(|i| i + 3) else {
        return word.to_string();
    };
    let rest = &word[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return word.to_string();
    };
    let userinfo = &rest[..at];
    let mut s = String::from(&word[..start]);
    match userinfo.split_once(':') {
        Some((user, _)) => {
            s.push_str(user);
            s.push_str(":***");
        }
        None => s.push_str("***"),
    }
    s.push_str(&rest[at..]);
    s
}

impl Config {
    /// Parses a boot command line. Never fails: returns the configuration
    /// (defaults where a flag was absent or bad) and every problem found, in
    /// command-line order.
    pub fn parse(cmdline: &str) -> (Config, Vec<ConfigError>) {
        let mut cfg = Config::default();
        let mut errors = Vec::new();
        let mut words = cmdline
            .split_ascii_whitespace()
            .skip_while(|w| w.starts_with("--solo5:"))
            .peekable();
        let mut port_given = false;
        while let Some(word) = words.next() {
            let Some(body) = word.strip_prefix("--") else {
                errors.push(ConfigError::UnexpectedArgument {
                    arg: word.to_string(),
                });
                continue;
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(flag, kind)) = FLAGS.iter().find(|(n, _)| *n == name) else {
                errors.push(ConfigError::Unknown {
                    flag: word.to_string(),
                });
                continue;
            };
            match kind {
                Kind::UnsupportedSwitch(reason) => {
                    errors.push(ConfigError::Unsupported { flag, reason });
                    continue;
                }
                Kind::Value | Kind::UnsupportedValue(_) => {}
            }
            let value = match inline {
                Some(v) => Some(v),
                None => match words.peek() {
                    Some(next) if !next.starts_with("--") => words.next(),
                    _ => None,
                },
            };
            if let Kind::UnsupportedValue(reason) = kind {
                errors.push(ConfigError::Unsupported { flag, reason });
                continue;
            }
            let Some(value) = value else {
                errors.push(ConfigError::MissingValue { flag });
                continue;
            };
            if flag == "port" {
                port_given = true;
            }
            if let Err(reason) = cfg.apply(flag, value) {
                errors.push(ConfigError::Invalid {
                    flag,
                    value: value.to_string(),
                    reason,
                });
            }
        }
        if cfg.port == cfg.https_port {
            if port_given {
                cfg.https_port = if cfg.port == 4433 { 443 } else { 4433 };
                errors.push(ConfigError::Conflict {
                    message: "--port equals --https-port; HTTPS moved to another port",
                });
            } else {
                cfg.port = if cfg.https_port == 80 { 8080 } else { 80 };
                errors.push(ConfigError::Conflict {
                    message: "--https-port equals the HTTP port; HTTP moved to another port",
                });
            }
        }
        if let Some(m) = cfg.metrics_port
            && (m == cfg.port || m == cfg.https_port)
        {
            cfg.metrics_port = None;
            errors.push(ConfigError::Conflict {
                message: "--metrics-port equals the HTTP or HTTPS port; metrics are off",
            });
        }
        (cfg, errors)
    }

    fn apply(&mut self, flag: &str, v: &str) -> Result<(), &'static str> {
        match flag {
            "ipv4" => self.ipv4 = Some(parse_cidr(v)?),
            "ipv4-gateway" => self.ipv4_gateway = Some(parse_ipv4(v)?),
            "dns" => self.add_dns(parse_dns(v)?)?,
            "dns-servers" => {
                let mut list = Vec::new();
                for item in v.split(',') {
                    list.push(parse_dns(item)?);
                }
                for a in list {
                    self.add_dns(a)?;
                }
            }
            "mac" => self.mac = Some(parse_mac(v)?),
            "hostname" => self.hostname = Some(parse_hostname(v)?),
            "port" => self.port = parse_port(v)?,
            "https-port" => self.https_port = parse_port(v)?,
            "remote" => self.remote = Some(parse_remote(v)?),
            "remote-ca" => self.remote_ca = parse_region(v)?,
            "site" => self.site_region = parse_region(v)?,
            "tls-cert" => self.tls_cert = parse_region(v)?,
            "tls-key" => self.tls_key = parse_region(v)?,
            "hook" => self.hook = parse_hook(v)?,
            "default" => self.default_url = Some(parse_url(v)?),
            "default-mime-type" => self.default_mime_type = parse_mime(v)?,
            "mime-type" => {
                let (path, ty) = v.rsplit_once(':').ok_or("expected PATH:TYPE")?;
                let path = path.trim_start_matches('/');
                if path.is_empty() || path.len() > 1024 || path.bytes().any(|b| b < 0x21) {
                    return Err("bad path");
                }
                let ty = parse_mime(ty)?;
                if self.mime_types.len() >= MAX_MIME_OVERRIDES {
                    return Err("too many --mime-type overrides");
                }
                match self.mime_types.iter_mut().find(|(p, _)| p == path) {
                    Some(entry) => entry.1 = ty,
                    None => self.mime_types.push((path.to_string(), ty)),
                }
            }
            "hsts" => self.hsts = Some(parse_num(v, 0, u64::from(u32::MAX))? as u32),
            "max-connections" => self.max_connections = Some(parse_num(v, 1, 1_000_000)? as usize),
            "min-send-rate" => self.min_send_rate = parse_num(v, 0, 1 << 30)?,
            "hook-secret" => {
                if v.is_empty() || v.len() > 1024 {
                    return Err("expected 1 to 1024 characters");
                }
                self.hook_secret = Some(v.to_string());
            }
            "hook-secret-region" => self.hook_secret_region = Some(parse_region(v)?),
            "hook-max-body" => self.hook_max_body = parse_num(v, 0, 64 << 20)?,
            "idle-timeout" => self.idle_timeout = parse_num(v, 1, 3600)? as u32,
            "header-timeout" => self.header_timeout = parse_num(v, 1, 600)? as u32,
            "send-timeout" => self.send_timeout = parse_num(v, 1, 3600)? as u32,
            "max-header-bytes" => self.max_header_bytes = parse_num(v, 1024, 65536)? as usize,
            "log-level" => {
                self.log_level = match v.to_ascii_lowercase().as_str() {
                    "error" => LevelFilter::Error,
                    "warn" | "warning" => LevelFilter::Warn,
                    "info" => LevelFilter::Info,
                    "debug" => LevelFilter::Debug,
                    "trace" => LevelFilter::Trace,
                    _ => return Err("expected error, warn, info, debug or trace"),
                }
            }
            "tls-resumption" => self.tls_resumption = parse_switch(v)?,
            "access-log" => self.access_log = parse_switch(v)?,
            "syslog" => self.syslog = Some(SyslogTarget::parse(v).map_err(|e| e.reason())?),
            "syslog-facility" => {
                self.syslog_facility =
                    Facility::parse(v).ok_or("expected user, daemon or local0 to local7")?
            }
            "metrics-port" => self.metrics_port = Some(parse_port(v)?),
            "status-interval" => self.status_interval = parse_num(v, 0, 86400)? as u32,
            _ => return Err("unhandled flag"),
        }
        Ok(())
    }

    fn add_dns(&mut self, a: Ipv4Address) -> Result<(), &'static str> {
        if self.dns.contains(&a) {
            return Ok(());
        }
        if self.dns.len() >= MAX_DNS_SERVERS {
            return Err("too many DNS servers (at most 4)");
        }
        self.dns.push(a);
        Ok(())
    }
}

fn parse_switch(v: &str) -> Result<bool, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err("expected on or off"),
    }
}

fn parse_num(v: &str, min: u64, max: u64) -> Result<u64, &'static str> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a decimal number");
    }
    let n: u64 = v.parse().map_err(|_| "expected a decimal number")?;
    if n < min || n > max {
        return Err("out of range");
    }
    Ok(n)
}

fn parse_port(v: &str) -> Result<u16, &'static str> {
    parse_num(v, 1, 65535).map(|n| n as u16)
}

fn parse_ipv4(v: &str) -> Result<Ipv4Address, &'static str> {
    Ipv4Address::from_str(v).map_err(|_| "expected an IPv4 address A.B.C.D")
}

fn parse_cidr(v: &str) -> Result<Ipv4Cidr, &'static str> {
    let (addr, prefix) = v.split_once('/').ok_or("expected A.B.C.D/N")?;
    let addr = parse_ipv4(addr)?;
    let prefix = parse_num(prefix, 0, 32).map_err(|_| "prefix length must be 0..32")? as u8;
    if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
        return Err("not a host address");
    }
    Ok(Ipv4Cidr::new(addr, prefix))
}

fn parse_dns(v: &str) -> Result<Ipv4Address, &'static str> {
    let v = match v.strip_prefix("udp:") {
        Some(rest) => rest,
        None if v.starts_with("tcp:") || v.starts_with("tls:") => {
            return Err("only plain UDP DNS is supported");
        }
        None => v,
    };
    let addr = match v.rsplit_once(':') {
        Some((a, "53")) => a,
        Some(_) => return Err("DNS port must be 53"),
        None => v,
    };
    parse_ipv4(addr)
}

fn parse_mac(v: &str) -> Result<EthernetAddress, &'static str> {
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

fn parse_hostname(v: &str) -> Result<String, &'static str> {
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
fn visible(v: &str) -> bool {
    v.bytes().all(|b| (0x21..0x7f).contains(&b))
}

fn parse_remote(v: &str) -> Result<String, &'static str> {
    if v.is_empty() || v.len() > 2048 || !visible(v) {
        return Err("expected a URL");
    }
    if !v.contains("://") {
        return Err("expected scheme://host/path");
    }
    Ok(v.to_string())
}

fn parse_url(v: &str) -> Result<String, &'static str> {
    if v.is_empty() || v.len() > 2048 || !visible(v) {
        return Err("expected a URL (printable ASCII, no spaces)");
    }
    Ok(v.to_string())
}

fn parse_region(v: &str) -> Result<String, &'static str> {
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

fn parse_hook(v: &str) -> Result<String, &'static str> {
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

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `type/subtype` with optional `;param=value` parts (no spaces: the command
/// line cannot carry them).
fn parse_mime(v: &str) -> Result<String, &'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            redact(
                "--ipv4=1.2.3.4/24 --hook-secret=s3cr3t --hook-secret t0p --remote=https://bob:tok@h/r.git#b"
            ),
            "--ipv4=1.2.3.4/24 --hook-secret=*** --hook-secret *** --remote=https://bob:***@h/r.git#b"
        );
        assert_eq!(
            redact("--remote https://tok@h/x"),
            "--remote https://***@h/x"
        );
        assert_eq!(redact("--remote=git://h/a@b"), "--remote=git://h/a@b");
        assert_eq!(redact("--ssh-key=ed25519:AAAA --x"), "--ssh-key=*** --x");
    }
    use alloc::vec;

    fn ok(cmdline: &str) -> Config {
        let (c, e) = Config::parse(cmdline);
        assert!(e.is_empty(), "{cmdline}: {e:?}");
        c
    }

    fn err(cmdline: &str) -> (Config, Vec<ConfigError>) {
        let (c, e) = Config::parse(cmdline);
        assert!(!e.is_empty(), "{cmdline} should fail");
        (c, e)
    }

    #[test]
    fn defaults() {
        let c = ok("");
        assert_eq!(c, Config::default());
        assert_eq!(c.port, 80);
        assert_eq!(c.https_port, 4433);
        assert_eq!(c.hook, "/hook");
        assert_eq!(c.remote_ca, "remote_ca");
        assert_eq!(c.site_region, "site");
        assert_eq!(c.tls_cert, "tls_cert");
        assert_eq!(c.tls_key, "tls_key");
        assert_eq!(c.max_connections, None);
        assert_eq!(c.default_mime_type, "application/octet-stream");
        assert_eq!(c.log_level, LevelFilter::Info);
        assert_eq!(ok("   \t "), Config::default());
    }

    #[test]
    fn make_command_line() {
        let c = ok("--ipv4=192.168.254.10/24 --ipv4-gateway=192.168.254.1 \
                    --remote=git://192.168.254.2/site.git");
        assert_eq!(
            c.ipv4,
            Some(Ipv4Cidr::new(Ipv4Address::new(192, 168, 254, 10), 24))
        );
        assert_eq!(c.ipv4_gateway, Some(Ipv4Address::new(192, 168, 254, 1)));
        assert_eq!(c.remote.as_deref(), Some("git://192.168.254.2/site.git"));
    }

    #[test]
    fn solo5_options_stripped() {
        let c = ok("--solo5:quiet --solo5:debug --port=8080");
        assert_eq!(c.port, 8080);
        // Only leading ones are Solo5's.
        let (_, e) = err("--port=8080 --solo5:quiet");
        assert!(matches!(e[0], ConfigError::Unknown { .. }));
    }

    #[test]
    fn both_forms() {
        for line in [
            "--hostname=muen.sk --port=8080",
            "--hostname muen.sk --port 8080",
        ] {
            let c = ok(line);
            assert_eq!(c.hostname.as_deref(), Some("muen.sk"));
            assert_eq!(c.port, 8080);
        }
        let (c, e) = err("--hostname --port 81");
        assert_eq!(e, vec![ConfigError::MissingValue { flag: "hostname" }]);
        assert_eq!(c.port, 81);
        assert_eq!(
            err("--port").1,
            vec![ConfigError::MissingValue { flag: "port" }]
        );
        // An empty inline value is a value, and an invalid one.
        assert!(matches!(err("--port=").1[0], ConfigError::Invalid { .. }));
    }

    #[test]
    fn network_flags() {
        let c = ok("--mac=02:00:5e:10:00:01 --dns=9.9.9.9 --dns 1.1.1.1 --dns=9.9.9.9");
        assert_eq!(
            c.mac,
            Some(EthernetAddress([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]))
        );
        assert_eq!(
            c.dns,
            vec![Ipv4Address::new(9, 9, 9, 9), Ipv4Address::new(1, 1, 1, 1)]
        );
        let c = ok("--dns-servers=udp:8.8.8.8,8.8.4.4:53");
        assert_eq!(c.dns.len(), 2);
        for bad in [
            "--ipv4=1.2.3.4",
            "--ipv4=1.2.3.4/33",
            "--ipv4=1.2.3/24",
            "--ipv4=0.0.0.0/8",
            "--ipv4=224.0.0.1/4",
            "--ipv4=1.2.3.4/x",
            "--ipv4-gateway=300.1.1.1",
            "--dns=tcp:1.1.1.1",
            "--dns=1.1.1.1:54",
            "--dns-servers=1.1.1.1,nope",
            "--mac=01:00:5e:00:00:01",
            "--mac=00:00:00:00:00:00",
            "--mac=02:00:5e:10:00",
            "--mac=02:00:5e:10:00:01:02",
            "--mac=02:00:5e:10:00:zz",
            "--mac=020:00:5e:10:00:1",
        ] {
            let (c, e) = err(bad);
            assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}: {e:?}");
            assert_eq!(c.ipv4, None);
            assert_eq!(c.mac, None);
        }
        let (c, e) = err("--dns=1.1.1.1 --dns=1.1.1.2 --dns=1.1.1.3 --dns=1.1.1.4 --dns=1.1.1.5");
        assert_eq!(c.dns.len(), MAX_DNS_SERVERS);
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn ports_and_numbers() {
        let c = ok(
            "--port=8080 --https-port=443 --hsts=31536000 --max-connections=10 \
                    --idle-timeout=5 --header-timeout=2 --max-header-bytes=4096",
        );
        assert_eq!((c.port, c.https_port), (8080, 443));
        assert_eq!(c.hsts, Some(31_536_000));
        assert_eq!(c.max_connections, Some(10));
        assert_eq!((c.idle_timeout, c.header_timeout), (5, 2));
        assert_eq!(c.max_header_bytes, 4096);
        for bad in [
            "--port=0",
            "--port=65536",
            "--port=-1",
            "--port=+80",
            "--port=8o",
            "--https-port=99999999999999999999999",
            "--hsts=-5",
            "--max-connections=0",
            "--idle-timeout=0",
            "--header-timeout=601",
            "--max-header-bytes=100",
        ] {
            let (c, e) = err(bad);
            assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}");
            assert_eq!((c.port, c.https_port), (80, 4433));
        }
    }

    #[test]
    fn port_conflicts() {
        let (c, e) = err("--port=4433");
        assert_eq!((c.port, c.https_port), (4433, 443));
        assert!(matches!(e[0], ConfigError::Conflict { .. }));
        let (c, _) = err("--https-port=80");
        assert_eq!((c.port, c.https_port), (8080, 80));
    }

    #[test]
    fn strings() {
        let c = ok(
            "--hostname=Muen.SK. --remote=https://git.example/site.git#gh-pages \
                    --remote-ca=ca_certs --site=fallback|site --tls-cert=cert --tls-key=key \
                    --hook=/secret/abc-123 --default=https://muen.sk/ \
                    --default-mime-type=text/plain;charset=latin1",
        );
        assert_eq!(c.hostname.as_deref(), Some("muen.sk"));
        assert_eq!(
            c.remote.as_deref(),
            Some("https://git.example/site.git#gh-pages")
        );
        assert_eq!(c.remote_ca, "ca_certs");
        assert_eq!(c.site_region, "fallback|site");
        assert_eq!((c.tls_cert.as_str(), c.tls_key.as_str()), ("cert", "key"));
        assert_eq!(c.hook, "/secret/abc-123");
        assert_eq!(c.default_url.as_deref(), Some("https://muen.sk/"));
        assert_eq!(c.default_mime_type, "text/plain;charset=latin1");
        for bad in [
            "--hostname=-bad.sk",
            "--hostname=a..b",
            "--hostname=a_b.sk",
            "--remote=nothing",
            "--remote-ca=",
            "--site=a/b",
            "--tls-cert=x!y",
            "--hook=hook",
            "--hook=/a?b",
            "--hook=/a%20",
            "--default-mime-type=text",
            "--default-mime-type=text/plain;x",
            "--default-mime-type=te(t/plain",
            "--mime-type=foo",
            "--mime-type=:text/plain",
            "--mime-type=/x:bad",
            "--log-level=loud",
        ] {
            let (_, e) = err(bad);
            assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}: {e:?}");
        }
        let (c, _) = err("--hook=nope");
        assert_eq!(c.hook, "/hook");
    }

    #[test]
    fn mime_overrides() {
        let c = ok(
            "--mime-type=/feed:application/rss+xml --mime-type=a:b:text/plain \
                    --mime-type feed:application/atom+xml",
        );
        assert_eq!(
            c.mime_types,
            vec![
                ("feed".into(), "application/atom+xml".into()),
                ("a:b".into(), "text/plain".into())
            ]
        );
    }

    #[test]
    fn resumption_and_status() {
        assert_eq!(ok("--send-timeout=7").send_timeout, 7);
        assert!(!ok("--access-log=off").access_log);
        assert!(ok("").access_log);
        assert_eq!(ok("").send_timeout, 60);
        let c = ok("--tls-resumption=off --status-interval 5");
        assert!(!c.tls_resumption);
        assert_eq!(c.status_interval, 5);
        assert!(ok("").tls_resumption);
        assert_eq!(ok("").status_interval, 0);
        let (_, errs) = Config::parse("--tls-resumption=maybe --status-interval=-1");
        assert_eq!(errs.len(), 2);
    }

    #[test]
    fn observability_flags() {
        use crate::observe::syslog::target::{Host, Transport};
        let c = ok("--syslog=tcp://192.168.254.4:601 --syslog-facility=daemon --metrics-port 9100");
        let t = c.syslog.unwrap();
        assert_eq!(t.transport, Transport::Tcp);
        assert_eq!(t.host, Host::Ip(Ipv4Address::new(192, 168, 254, 4)));
        assert_eq!(t.port, 601);
        assert_eq!(c.syslog_facility, Facility::Daemon);
        assert_eq!(c.metrics_port, Some(9100));
        let c = ok("--syslog logs.example.org");
        assert_eq!(c.syslog.unwrap().transport, Transport::Udp);
        assert_eq!(ok("").syslog, None);
        assert_eq!(ok("").metrics_port, None);
        for bad in [
            "--syslog=http://x",
            "--syslog=x:0",
            "--syslog=[::1]",
            "--syslog-facility=kern",
            "--metrics-port=0",
        ] {
            let (c, e) = err(bad);
            assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}: {e:?}");
            assert_eq!((c.syslog, c.metrics_port), (None, None));
        }
        let (c, e) = err("--metrics-port=4433");
        assert_eq!(c.metrics_port, None);
        assert!(matches!(e[0], ConfigError::Conflict { .. }));
    }

    #[test]
    fn log_levels() {
        for (v, l) in [
            ("error", LevelFilter::Error),
            ("warn", LevelFilter::Warn),
            ("INFO", LevelFilter::Info),
            ("debug", LevelFilter::Debug),
            ("trace", LevelFilter::Trace),
        ] {
            assert_eq!(ok(&alloc::format!("--log-level={v}")).log_level, l);
        }
    }

    #[test]
    fn unknown_and_unsupported() {
        let (c, e) = Config::parse(
            "--tls --production --cert-seed abc --email=me@x --ssh-key=ed25519:AAA \
             --ssh-password pw --ssh-authenticator=SHA256:x --monitor 10.0.0.2 \
             --cert-key-type=ed25519 --cert-bits=4096 --account-seed=s --account-key-type=rsa \
             --account-bits=2048 --frobnicate=1 stray --port=81",
        );
        assert_eq!(c.port, 81);
        let unsupported = e
            .iter()
            .filter(|x| matches!(x, ConfigError::Unsupported { .. }))
            .count();
        assert_eq!(unsupported, 13);
        assert!(e.contains(&ConfigError::Unknown {
            flag: "--frobnicate=1".into()
        }));
        assert!(e.contains(&ConfigError::UnexpectedArgument {
            arg: "stray".into()
        }));
        let msg = alloc::format!("{}", e[0]);
        assert!(msg.contains("not supported"), "{msg}");
    }

    #[test]
    fn errors_display_safely() {
        let (_, e) = Config::parse(&alloc::format!("--port={}", "9".repeat(500)));
        let msg = alloc::format!("{}", e[0]);
        assert!(msg.len() < 120, "{msg}");
        let (_, e) = Config::parse("--hook=/a\u{7}b");
        assert!(!alloc::format!("{}", e[0]).contains('\u{7}'));
    }
}
