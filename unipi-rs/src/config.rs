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
//! | `--max-connections=N` | from the heap | concurrent connections (default: what the heap holds, about 11 KiB each) |
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
//! Unipi's Let's Encrypt, SSH and `--monitor` flags are recognised and
//! reported as [`ConfigError::Unsupported`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use log::LevelFilter;
use smoltcp::wire::{EthernetAddress, IpAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

use crate::observe::syslog::message::Facility;
use crate::observe::syslog::target::SyslogTarget;

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

/// Why an ssh key or host-key pin was refused, as a boot-parameter error
/// (which carries a static reason; the key itself is never shown).
fn ssh_reason(e: &unipi_ssh::ParamError) -> &'static str {
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
fn parse_seed(v: &str) -> Result<Vec<u8>, &'static str> {
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

/// An IPv6 address, plain or in brackets (`2001:db8::1`, `[2001:db8::1]`).
fn parse_ipv6(v: &str) -> Result<Ipv6Address, &'static str> {
    let plain = v
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(v);
    Ipv6Address::from_str(plain).map_err(|_| "expected an IPv6 address such as 2001:db8::1")
}

/// A unicast address a host may have or talk to: not unspecified,
/// multicast, loopback or IPv4-mapped.
fn is_host_ipv6(a: Ipv6Address) -> bool {
    !(a.is_unspecified() || a.is_multicast() || a.is_loopback() || a.to_ipv4_mapped().is_some())
}

fn parse_cidr6(v: &str) -> Result<Ipv6Cidr, &'static str> {
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
fn parse_dns(v: &str) -> Result<IpAddress, &'static str> {
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
            vec![IpAddress::v4(9, 9, 9, 9), IpAddress::v4(1, 1, 1, 1)]
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
    fn ipv6_flags() {
        let c = ok("--ipv6=2001:db8::10/64 --ipv6-gateway=fe80::1 \
                    --accept-router-advertisements=false");
        assert_eq!(
            c.ipv6,
            Some(Ipv6Cidr::new(
                Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10),
                64
            ))
        );
        assert_eq!(
            c.ipv6_gateway,
            Some(Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1))
        );
        assert!(!c.accept_router_advertisements);
        assert!(ok("").accept_router_advertisements);
        assert_eq!(ok("").ip_versions, IpVersions::Both);
        assert_eq!(
            ok("--ipv6-gateway [fd00::1] --ipv6 fd00::10/128").ipv6_gateway,
            Some(Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1))
        );
        for bad in [
            "--ipv6=2001:db8::10",
            "--ipv6=2001:db8::10/129",
            "--ipv6=2001:db8::10/x",
            "--ipv6=fe80::1/64",
            "--ipv6=::/0",
            "--ipv6=::1/128",
            "--ipv6=ff02::1/64",
            "--ipv6=::ffff:10.0.0.1/96",
            "--ipv6=10.0.0.1/24",
            "--ipv6=2001:db8::10%eth0/64",
            "--ipv6-gateway=ff02::2",
            "--ipv6-gateway=::",
            "--ipv6-gateway=10.0.0.1",
            "--accept-router-advertisements=maybe",
            "--ipv4-only=1",
        ] {
            let (c, e) = err(bad);
            assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}: {e:?}");
            assert_eq!((c.ipv6, c.ipv6_gateway), (None, None), "{bad}");
        }
    }

    #[test]
    fn ip_versions() {
        assert_eq!(ok("--ipv4-only=true").ip_versions, IpVersions::Ipv4Only);
        assert_eq!(ok("--ipv6-only true").ip_versions, IpVersions::Ipv6Only);
        assert_eq!(ok("--ipv6-only=false").ip_versions, IpVersions::Both);
        assert_eq!(
            ok("--ipv4-only=true --ipv4-only=false").ip_versions,
            IpVersions::Both
        );
        assert!(IpVersions::Ipv4Only.ipv4() && !IpVersions::Ipv4Only.ipv6());
        assert!(!IpVersions::Ipv6Only.ipv4() && IpVersions::Ipv6Only.ipv6());
        assert!(IpVersions::Both.ipv4() && IpVersions::Both.ipv6());
        // Contradictions: the first one stays in force.
        let (c, e) = err("--ipv4-only=true --ipv6-only=true");
        assert_eq!(c.ip_versions, IpVersions::Ipv4Only);
        assert!(matches!(
            e[0],
            ConfigError::Invalid {
                flag: "ipv6-only",
                ..
            }
        ));
        // A family that is off makes its addresses moot, and says so.
        let (c, e) = err("--ipv6-only=true --ipv4=10.0.0.2/24");
        assert_eq!(c.ip_versions, IpVersions::Ipv6Only);
        assert!(matches!(e[0], ConfigError::Conflict { .. }), "{e:?}");
        let (_, e) = err("--ipv6=2001:db8::1/64 --ipv4-only=true");
        assert!(matches!(e[0], ConfigError::Conflict { .. }), "{e:?}");
    }

    #[test]
    fn dns_servers_of_both_versions() {
        let c = ok("--dns=2001:db8::53 --dns=[2001:db8::54]:53 \
                    --dns-servers=udp:10.0.0.1:53,udp:[fd00::3]");
        assert_eq!(
            c.dns,
            vec![
                IpAddress::v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53),
                IpAddress::v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x54),
                IpAddress::v4(10, 0, 0, 1),
                IpAddress::v6(0xfd00, 0, 0, 0, 0, 0, 0, 3),
            ]
        );
        for bad in [
            "--dns=[2001:db8::53]:54",
            "--dns=[2001:db8::53]x",
            "--dns=[2001:db8::53",
            "--dns=2001:db8::53:54:55:56:57:58",
            "--dns=ff02::1",
            "--dns=::",
            "--dns=[10.0.0.1]",
            "--dns=0.0.0.0",
            "--dns=tcp:[2001:db8::53]",
        ] {
            let (c, e) = err(bad);
            assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}: {e:?}");
            assert!(c.dns.is_empty(), "{bad}");
        }
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
    fn compression() {
        assert_eq!(ok("").compression, Compression::On);
        assert_eq!(ok("--compression=off").compression, Compression::Off);
        assert_eq!(ok("--compression STATIC").compression, Compression::Static);
        assert_eq!(ok("--compression=on").compression, Compression::On);
        let (c, e) = err("--compression=off --compression=br");
        assert_eq!(c.compression, Compression::Off);
        assert!(matches!(e[0], ConfigError::Invalid { .. }), "{e:?}");
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
            "--ssh-password pw --monitor 10.0.0.2 \
             --cert-key-type=ed25519 --cert-bits=4096 --account-key-type=rsa \
             --account-bits=2048 --frobnicate=1 stray --port=81",
        );
        assert_eq!(c.port, 81);
        let unsupported = e
            .iter()
            .filter(|x| matches!(x, ConfigError::Unsupported { .. }))
            .count();
        assert_eq!(unsupported, 4, "{e:?}");
        assert!(e.contains(&ConfigError::Invalid {
            flag: "account-key-type",
            value: "rsa".into(),
            reason: KEY_TYPE,
        }));
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
    fn unipi_acme_flags() {
        let (c, e) = Config::parse(
            "--tls --production --hostname=muen.sk --email=me@muen.sk \
             --cert-seed=YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo= --account-seed=my-account-seed-text \
             --acme-name=www.muen.sk --acme-challenge=tls-alpn-01 --cert-key-type=ecdsa",
        );
        assert!(e.is_empty(), "{e:?}");
        assert!(c.acme.enabled && c.acme.production && c.acme.tls_alpn);
        assert_eq!(
            c.acme.cert_seed.as_deref(),
            Some(&b"abcdefghijklmnopqrstuvwxyz"[..])
        );
        assert_eq!(
            c.acme.account_seed.as_deref(),
            Some(&b"my-account-seed-text"[..])
        );
        assert_eq!(c.acme.extra_names, ["www.muen.sk"]);
        assert!(!alloc::format!("{:?}", c.acme).contains("abcdef"));
        let (c, e) =
            Config::parse("--tls=off --acme-directory=https://ca.example/dir --cert-seed=short");
        assert!(c.acme.enabled, "a directory implies --tls");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            !alloc::format!("{}", e[0]).contains("short"),
            "seeds are not echoed"
        );
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
