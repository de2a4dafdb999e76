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
//! | `--ipv6=ADDR/N` | none | static IPv6 address and prefix (a link-local address is always added) |
//! | `--ipv6-gateway=ADDR` | none | IPv6 default gateway (may be link-local) |
//! | `--accept-router-advertisements=BOOL` | `true` | SLAAC: IPv6 address and default route from router advertisements |
//! | `--ipv4-only=BOOL`, `--ipv6-only=BOOL` | `false` | run one IP version only |
//! | `--dns=ADDR` (repeatable), `--dns-servers=A,B` | DHCP's | resolvers (at most 4): `A.B.C.D`, `2001:db8::53` or `[2001:db8::53]`, each optionally `udp:`-prefixed and `:53`-suffixed |
//! | `--mac=xx:xx:xx:xx:xx:xx` | platform's | Ethernet address (unicast) |
//! | `--hostname=NAME` | none | redirect host (else the `Host` header) |
//! | `--name=NAME` | none | the unikernel's name in syslog messages (mirage-monitoring's `--name`; else `--hostname`) |
//! | `--port=N` | 80 | plain-HTTP port (redirects to HTTPS) |
//! | `--https-port=N` | 4433 | HTTPS port |
//! | `--remote=URL[#branch]` | none | Git remote (parsed by the git client) |
//! | `--remote-ca=REGION` | `remote_ca` | memory region with PEM CA certificates |
//! | `--ssh-key=ed25519:BASE64` | none | client key for ssh remotes (Unipi's form: the 32-byte seed); `rsa:` is not supported |
//! | `--ssh-key-region=REGION` | none | memory region with an OpenSSH private key (ed25519, unencrypted) |
//! | `--ssh-authenticator=SHA256:BASE64` | none | host-key pin, as `ssh-keygen -lf` prints it |
//! | `--remote-auth=REGION` | none | memory region with `user:token` for an HTTP(S) remote (Basic auth; kept out of the boot parameters) |
//! | `--site=REGION` | `site` | memory region with the fallback tar archive |
//! | `--tls-cert=REGION` | `tls_cert` | memory region with the PEM certificate chain |
//! | `--tls-key=REGION` | `tls_key` | memory region with the PEM private key |
//! | `--hook=PATH` | `/hook` | secret webhook path |
//! | `--default=URL` | none | `302` target instead of `404` |
//! | `--default-mime-type=TYPE` | `application/octet-stream` | fallback content type |
//! | `--mime-type=PATH:TYPE` (repeatable) | none | per-path content type |
//! | `--hsts=SECONDS` | off | `Strict-Transport-Security: max-age=SECONDS` |
//! | `--max-connections=N` | from the heap | concurrent connections (default: what fits below 85 % of the heap at ≈ 9 KiB per idle connection: 11,513 with 128 MiB) |
//! | `--min-send-rate=BYTES` | 1024 | a client reading its response more slowly (per 10 s) is dropped; 0: no minimum |
//! | `--hook-secret=SECRET`, `--hook-secret-region=REGION` | none | webhook requests must be signed with it (GitHub, Gitea/Forgejo, GitLab) |
//! | `--hook-max-body=N` | 1048576 | largest webhook request body |
//! | `--idle-timeout=SECONDS` | 30 | keep-alive idle timeout |
//! | `--header-timeout=SECONDS` | 10 | time allowed for a request's header block |
//! | `--max-header-bytes=N` | 16384 | size limit of a request's header block |
//! | `--log-level=LEVEL` | `info` | `error`, `warn`, `info`, `debug` or `trace` |
//! | `--http2=on\|off` | on | offer HTTP/2 (ALPN `h2`) on the HTTPS port |
//! | `--tls` | off | certificates from Let's Encrypt (ACME) for `--hostname`, renewed by themselves |
//! | `--production` | off | Let's Encrypt's production directory (else staging) |
//! | `--acme-directory=URL` | none | another ACME server (implies `--tls`) |
//! | `--acme-ca=REGION` | `acme_ca` | memory region with PEM CA certificates for a private ACME server |
//! | `--acme-challenge=http-01\|tls-alpn-01` | `http-01` | the challenge answered first |
//! | `--acme-name=NAME` (repeatable) | none | more names in the certificate |
//! | `--email=ADDR` (repeatable) | none | ACME account contact |
//! | `--account-seed=SEED`, `--cert-seed=SEED` | random | keys derived from a seed (base64 or text, ≥ 16 bytes) |
//! | `--cert-key-type`, `--account-key-type` | `ecdsa` | only ECDSA P-256 |
//! | `--acme-renew-after=SECONDS` | ⅔ of the lifetime | renew this long after issuance (tests) |
//! | `--acme-retry=SECONDS` | 300 | first wait after a failed issuance; doubles up to a day |
//! | `--compression=on\|static\|off` | `on` | gzip text-like files after each fetch and use committed `X.gz`/`X.br` (`static`: only the committed ones; `off`: send every file as it is) |
//! | `--access-log=on\|off` | on | one console line per response |
//! | `--tls-resumption=on\|off` | on | TLS session tickets (resumption without a server-side cache) |
//! | `--status-interval=SECONDS` | 0 | a status line this often (0: never) |
//! | `--syslog=[udp://\|tcp://]HOST[:PORT]` | off | RFC 5424 syslog (access lines, warnings, errors), see [`crate::observe::syslog::target`] |
//! | `--syslog-facility=NAME` | `local0` | `user`, `daemon`, `local0` … `local7` |
//! | `--metrics-port=N` | off | plain-HTTP port serving Prometheus metrics at `/metrics` |
//!
//! Unipi flags this server does not implement (`--monitor`, RSA key types
//! and sizes, ssh passwords) are recognised and reported as
//! [`ConfigError::Unsupported`] with the alternative.
//!
//! The value parsers (addresses, names, URLs, seeds, regions) are in
//! `values.rs`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use log::LevelFilter;
use smoltcp::wire::{EthernetAddress, IpAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

use crate::observe::syslog::message::Facility;
use crate::observe::syslog::target::SyslogTarget;

#[cfg(test)]
mod tests;
mod values;

use values::{
    is_host_ipv6, parse_cidr, parse_cidr6, parse_dns, parse_hook, parse_hostname, parse_ipv4,
    parse_ipv6, parse_mac, parse_mime, parse_num, parse_port, parse_region, parse_remote,
    parse_seed, parse_switch, parse_url, ssh_reason, visible,
};

/// Most DNS servers kept.
pub const MAX_DNS_SERVERS: usize = 4;
/// Most `--mime-type` overrides kept.
pub const MAX_MIME_OVERRIDES: usize = 256;

/// What the server does about compressed representations
/// (`--compression`; the rules are in `site/compress.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// gzip for compressible files, made after each fetch, and committed
    /// `X.gz` / `X.br` files.
    #[default]
    On,
    /// Only committed `X.gz` / `X.br` files; nothing is compressed here.
    Static,
    /// None: every file is sent as it is, without negotiation or `Vary`.
    Off,
}

/// Which IP versions the interface runs (`--ipv4-only`, `--ipv6-only`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IpVersions {
    /// Dual stack: IPv4 and IPv6.
    #[default]
    Both,
    /// IPv4 only (`--ipv4-only=true`).
    Ipv4Only,
    /// IPv6 only (`--ipv6-only=true`).
    Ipv6Only,
}

impl IpVersions {
    /// IPv4 is on.
    pub fn ipv4(self) -> bool {
        self != IpVersions::Ipv6Only
    }

    /// IPv6 is on.
    pub fn ipv6(self) -> bool {
        self != IpVersions::Ipv4Only
    }
}

/// The parsed boot parameters. Every field has a usable default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Static IPv4 address with prefix; `None` means DHCP.
    pub ipv4: Option<Ipv4Cidr>,
    /// Default gateway for the static address.
    pub ipv4_gateway: Option<Ipv4Address>,
    /// Static IPv6 address with prefix (besides the link-local address,
    /// which is always there).
    pub ipv6: Option<Ipv6Cidr>,
    /// IPv6 default gateway.
    pub ipv6_gateway: Option<Ipv6Address>,
    /// Configure an IPv6 address and default route from router
    /// advertisements (SLAAC).
    pub accept_router_advertisements: bool,
    /// The IP versions in use.
    pub ip_versions: IpVersions,
    /// DNS resolvers, IPv4 or IPv6 (empty: use DHCP's).
    pub dns: Vec<IpAddress>,
    /// Ethernet address override.
    pub mac: Option<EthernetAddress>,
    /// Host name for redirects (lowercase).
    pub hostname: Option<String>,
    /// The unikernel's name (`--name`, as mirage-monitoring takes it): the
    /// syslog HOSTNAME, before `--hostname`.
    pub name: Option<String>,
    /// Plain-HTTP port.
    pub port: u16,
    /// HTTPS port.
    pub https_port: u16,
    /// Git remote, `URL[#branch]`, unparsed.
    pub remote: Option<String>,
    /// Memory region holding PEM CA certificates for HTTPS remotes.
    pub remote_ca: String,
    /// Memory region holding `user:token` for an HTTP(S) remote.
    pub remote_auth: Option<String>,
    /// The client key for ssh remotes (its `Debug` shows only the public
    /// fingerprint).
    pub ssh_key: Option<unipi_ssh::Ed25519Key>,
    /// Memory region holding an OpenSSH private key (ed25519).
    pub ssh_key_region: Option<String>,
    /// The ssh server's host-key fingerprint.
    pub ssh_authenticator: Option<unipi_ssh::Fingerprint>,
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
    /// Offer HTTP/2 (ALPN `h2`) on the HTTPS port.
    pub http2: bool,
    /// Certificates from ACME (`--tls`, or implied by `--acme-directory`).
    pub acme: Acme,
    /// Compressed representations.
    pub compression: Compression,
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
            ipv6: None,
            ipv6_gateway: None,
            accept_router_advertisements: true,
            ip_versions: IpVersions::Both,
            dns: Vec::new(),
            mac: None,
            hostname: None,
            name: None,
            port: 80,
            https_port: 4433,
            remote: None,
            remote_ca: String::from("remote_ca"),
            remote_auth: None,
            ssh_key: None,
            ssh_key_region: None,
            ssh_authenticator: None,
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
            http2: true,
            acme: Acme::default(),
            compression: Compression::On,
            syslog: None,
            syslog_facility: Facility::default(),
            metrics_port: None,
        }
    }
}

/// The ACME settings (Unipi's names where Unipi has them).
#[derive(Clone, PartialEq, Eq)]
pub struct Acme {
    /// Provision and renew certificates (`--tls`).
    pub enabled: bool,
    /// Let's Encrypt's production directory instead of staging
    /// (`--production`).
    pub production: bool,
    /// Any other ACME directory (`--acme-directory`; implies `enabled`).
    pub directory: Option<String>,
    /// Memory region with PEM CA certificates for a private ACME server
    /// (`--acme-ca`, default `acme_ca`); else the Web PKI roots.
    pub ca_region: String,
    /// Contact addresses (`--email`, repeatable).
    pub emails: Vec<String>,
    /// Names besides `--hostname` (`--acme-name`, repeatable).
    pub extra_names: Vec<String>,
    /// The challenge to answer first: `http-01` (default) or `tls-alpn-01`.
    pub tls_alpn: bool,
    /// Seed of the account key (`--account-seed`; secret).
    pub account_seed: Option<Vec<u8>>,
    /// Seed of the certificate key (`--cert-seed`; secret).
    pub cert_seed: Option<Vec<u8>>,
    /// Renew this many seconds after issuance instead of at two thirds of
    /// the lifetime (`--acme-renew-after`; for tests).
    pub renew_after: Option<u64>,
    /// The wait after the first failed issuance, doubling with each further
    /// failure up to a day (`--acme-retry`).
    pub retry_first: u64,
}

impl Default for Acme {
    fn default() -> Self {
        Acme {
            enabled: false,
            production: false,
            directory: None,
            ca_region: String::from("acme_ca"),
            emails: Vec::new(),
            extra_names: Vec::new(),
            tls_alpn: false,
            account_seed: None,
            cert_seed: None,
            renew_after: None,
            retry_first: 300,
        }
    }
}

impl fmt::Debug for Acme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acme")
            .field("enabled", &self.enabled)
            .field("production", &self.production)
            .field("directory", &self.directory)
            .field("emails", &self.emails)
            .field("extra_names", &self.extra_names)
            .field("tls_alpn", &self.tls_alpn)
            .field("account_seed", &self.account_seed.as_ref().map(|_| "***"))
            .field("cert_seed", &self.cert_seed.as_ref().map(|_| "***"))
            .field("renew_after", &self.renew_after)
            .field("retry_first", &self.retry_first)
            .finish()
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
    /// A flag that is true when present (`--tls`), or `--flag=on|off`.
    Switch,
}

const KEY_TYPE: &str = "ACME keys are ECDSA P-256: RSA key generation is too slow under emulation and Let's Encrypt takes ECDSA";
const SSH_PASSWORD: &str = "ssh password authentication is not supported; use --ssh-key";
const MON: &str =
    "Unipi's monitoring (InfluxDB) is not implemented; use --metrics-port (Prometheus)";

const FLAGS: &[(&str, Kind)] = &[
    ("ipv4", Kind::Value),
    ("ipv4-gateway", Kind::Value),
    ("ipv6", Kind::Value),
    ("ipv6-gateway", Kind::Value),
    ("accept-router-advertisements", Kind::Value),
    ("ipv4-only", Kind::Value),
    ("ipv6-only", Kind::Value),
    ("dns", Kind::Value),
    ("dns-servers", Kind::Value),
    ("mac", Kind::Value),
    ("hostname", Kind::Value),
    ("name", Kind::Value),
    ("port", Kind::Value),
    ("https-port", Kind::Value),
    ("remote", Kind::Value),
    ("remote-ca", Kind::Value),
    ("remote-auth", Kind::Value),
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
    ("compression", Kind::Value),
    ("http2", Kind::Value),
    ("tls", Kind::Switch),
    ("production", Kind::Switch),
    ("cert-seed", Kind::Value),
    ("cert-key-type", Kind::Value),
    ("cert-bits", Kind::UnsupportedValue(KEY_TYPE)),
    ("account-seed", Kind::Value),
    ("account-key-type", Kind::Value),
    ("account-bits", Kind::UnsupportedValue(KEY_TYPE)),
    ("email", Kind::Value),
    ("acme-directory", Kind::Value),
    ("acme-ca", Kind::Value),
    ("acme-challenge", Kind::Value),
    ("acme-name", Kind::Value),
    ("acme-renew-after", Kind::Value),
    ("acme-retry", Kind::Value),
    ("ssh-key", Kind::Value),
    ("ssh-key-region", Kind::Value),
    ("ssh-authenticator", Kind::Value),
    ("ssh-password", Kind::UnsupportedValue(SSH_PASSWORD)),
    ("syslog", Kind::Value),
    ("syslog-facility", Kind::Value),
    ("metrics-port", Kind::Value),
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
                Kind::Switch => {
                    let on = match inline {
                        None => Ok(true),
                        Some(v) => parse_switch(v),
                    };
                    match on {
                        Ok(on) => cfg.switch(flag, on),
                        Err(reason) => errors.push(ConfigError::Invalid {
                            flag,
                            value: inline.unwrap_or_default().to_string(),
                            reason,
                        }),
                    }
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
                // The value may carry a secret (a token in a URL): never
                // keep it unredacted, even in an error.
                let value = if SECRET_FLAGS.contains(&flag) {
                    String::from("***")
                } else {
                    redact_userinfo(value)
                };
                errors.push(ConfigError::Invalid {
                    flag,
                    value,
                    reason,
                });
            }
        }
        match cfg.ip_versions {
            IpVersions::Ipv6Only if cfg.ipv4.is_some() || cfg.ipv4_gateway.is_some() => {
                errors.push(ConfigError::Conflict {
                    message: "--ipv6-only=true: --ipv4 and --ipv4-gateway are ignored",
                });
            }
            IpVersions::Ipv4Only if cfg.ipv6.is_some() || cfg.ipv6_gateway.is_some() => {
                errors.push(ConfigError::Conflict {
                    message: "--ipv4-only=true: --ipv6 and --ipv6-gateway are ignored",
                });
            }
            _ => {}
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

    fn switch(&mut self, flag: &str, on: bool) {
        match flag {
            "tls" => self.acme.enabled = on,
            "production" => self.acme.production = on,
            _ => {}
        }
    }

    fn apply(&mut self, flag: &str, v: &str) -> Result<(), &'static str> {
        match flag {
            "cert-seed" => self.acme.cert_seed = Some(parse_seed(v)?),
            "account-seed" => self.acme.account_seed = Some(parse_seed(v)?),
            "cert-key-type" | "account-key-type" => match v.to_ascii_lowercase().as_str() {
                "ecdsa" | "p256" | "p-256" | "ec" => {}
                _ => return Err(KEY_TYPE),
            },
            "email" => {
                if !v.contains('@') || v.len() > 254 || !visible(v) {
                    return Err("expected an e-mail address");
                }
                if self.acme.emails.len() >= 4 {
                    return Err("at most 4 addresses");
                }
                self.acme.emails.push(v.to_string());
            }
            "acme-directory" => {
                if !v.starts_with("https://") {
                    return Err("expected an https:// URL");
                }
                self.acme.directory = Some(parse_url(v)?);
                self.acme.enabled = true;
            }
            "acme-ca" => self.acme.ca_region = parse_region(v)?,
            "acme-challenge" => {
                self.acme.tls_alpn = match v {
                    "http-01" => false,
                    "tls-alpn-01" => true,
                    _ => return Err("expected http-01 or tls-alpn-01"),
                }
            }
            "acme-name" => {
                if self.acme.extra_names.len() >= 16 {
                    return Err("at most 16 extra names");
                }
                self.acme.extra_names.push(parse_hostname(v)?);
            }
            "acme-renew-after" => self.acme.renew_after = Some(parse_num(v, 1, 1 << 32)?),
            "acme-retry" => self.acme.retry_first = parse_num(v, 1, 86_400)?,
            "ipv4" => self.ipv4 = Some(parse_cidr(v)?),
            "ipv4-gateway" => self.ipv4_gateway = Some(parse_ipv4(v)?),
            "ipv6" => self.ipv6 = Some(parse_cidr6(v)?),
            "ipv6-gateway" => {
                let gw = parse_ipv6(v)?;
                if !is_host_ipv6(gw) {
                    return Err("not a unicast address");
                }
                self.ipv6_gateway = Some(gw);
            }
            "accept-router-advertisements" => {
                self.accept_router_advertisements = parse_switch(v)?;
            }
            "ipv4-only" => {
                self.ip_versions = match (parse_switch(v)?, self.ip_versions) {
                    (true, IpVersions::Ipv6Only) => {
                        return Err("contradicts --ipv6-only=true, which stays in force");
                    }
                    (true, _) => IpVersions::Ipv4Only,
                    (false, IpVersions::Ipv4Only) => IpVersions::Both,
                    (false, same) => same,
                }
            }
            "ipv6-only" => {
                self.ip_versions = match (parse_switch(v)?, self.ip_versions) {
                    (true, IpVersions::Ipv4Only) => {
                        return Err("contradicts --ipv4-only=true, which stays in force");
                    }
                    (true, _) => IpVersions::Ipv6Only,
                    (false, IpVersions::Ipv6Only) => IpVersions::Both,
                    (false, same) => same,
                }
            }
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
            "name" => self.name = Some(parse_hostname(v)?),
            "port" => self.port = parse_port(v)?,
            "https-port" => self.https_port = parse_port(v)?,
            "remote" => self.remote = Some(parse_remote(v)?),
            "remote-ca" => self.remote_ca = parse_region(v)?,
            "remote-auth" => self.remote_auth = Some(parse_region(v)?),
            "ssh-key" => {
                self.ssh_key = Some(unipi_ssh::parse_ssh_key(v).map_err(|e| ssh_reason(&e))?)
            }
            "ssh-key-region" => self.ssh_key_region = Some(parse_region(v)?),
            "ssh-authenticator" => {
                self.ssh_authenticator =
                    Some(unipi_ssh::parse_authenticator(v).map_err(|e| ssh_reason(&e))?)
            }
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
            "http2" => self.http2 = parse_switch(v)?,
            "syslog" => self.syslog = Some(SyslogTarget::parse(v).map_err(|e| e.reason())?),
            "syslog-facility" => {
                self.syslog_facility =
                    Facility::parse(v).ok_or("expected user, daemon or local0 to local7")?
            }
            "metrics-port" => self.metrics_port = Some(parse_port(v)?),
            "status-interval" => self.status_interval = parse_num(v, 0, 86400)? as u32,
            "compression" => {
                self.compression = match v.to_ascii_lowercase().as_str() {
                    "static" => Compression::Static,
                    other => match parse_switch(other) {
                        Ok(true) => Compression::On,
                        Ok(false) => Compression::Off,
                        Err(_) => return Err("expected on, static or off"),
                    },
                }
            }
            _ => return Err("unhandled flag"),
        }
        Ok(())
    }

    fn add_dns(&mut self, a: IpAddress) -> Result<(), &'static str> {
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
