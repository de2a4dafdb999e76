//! TLS with rustls' unbuffered (sans-IO) API.
//!
//! - [`session`]: [`TlsSession`], one connection's bounded buffers around
//!   rustls (server or client side); [`crate::transport`] moves its bytes
//!   to and from the TCP socket.
//! - [`ticketer`]: session-ticket encryption (rustls' own is std-only).
//! - here: the server and client configurations (certificates from PEM
//!   regions, TLS 1.3 and 1.2 only, ECDHE with AEAD suites only, ALPN) and
//!   the clock rustls reads ([`LoopClock`]).

pub mod certs;
pub mod session;
pub mod ticketer;

#[cfg(test)]
mod edge_cases;

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub use certs::{ACME_TLS_ALPN, CertStore, Served};
pub use session::{ClientTls, ServerTls, TlsSession, Unbuffered};
pub use ticketer::Ticketer;

/// Why a TLS configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// No certificate in the chain region.
    NoCertificate,
    /// The PEM text could not be parsed.
    Pem(String),
    /// rustls rejected the key or chain.
    Rustls(String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::NoCertificate => f.write_str("no certificate found in the PEM data"),
            SetupError::Pem(e) => write!(f, "PEM: {e}"),
            SetupError::Rustls(e) => write!(f, "TLS: {e}"),
        }
    }
}

/// Memory regions are padded to whole pages with zeros: cut the padding.
fn trim_padding(pem: &[u8]) -> &[u8] {
    let end = pem.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &pem[..end]
}

/// Parses every certificate in a PEM chain.
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let certs = CertificateDer::pem_slice_iter(trim_padding(pem))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SetupError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(SetupError::NoCertificate);
    }
    Ok(certs)
}

/// The wall clock rustls consults (certificate validity, ticket ages). The
/// event loop stores the platform's time into it; rustls reads it through
/// [`TimeProvider`].
#[derive(Debug, Default)]
pub struct LoopClock(AtomicU64);

impl LoopClock {
    /// Records the current Unix time in seconds.
    pub fn set(&self, unix_secs: u64) {
        self.0.store(unix_secs, Ordering::Relaxed);
    }

    /// The last recorded Unix time in seconds.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl TimeProvider for LoopClock {
    fn current_time(&self) -> Option<UnixTime> {
        match self.get() {
            0 => None,
            s => Some(UnixTime::since_unix_epoch(Duration::from_secs(s))),
        }
    }
}

/// The crypto provider: *ring*, with its default (AEAD-only, ECDHE-only)
/// cipher suites and key-exchange groups.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The application protocols the HTTPS port offers (ALPN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protocols {
    /// `h2` before `http/1.1`.
    pub http2: bool,
    /// `acme-tls/1`, for TLS-ALPN-01 validation (RFC 8737).
    pub acme_tls: bool,
}

/// The HTTPS server configuration: whatever certificate `certs` holds at
/// each handshake, TLS 1.3 and 1.2, the ALPN `protocols`, session tickets
/// from `ticketer` (none: every connection makes a full handshake).
pub fn server_config_with(
    certs: Arc<CertStore>,
    clock: Arc<LoopClock>,
    ticketer: Option<Arc<Ticketer>>,
    protocols: Protocols,
) -> Result<Arc<ServerConfig>, SetupError> {
    let mut cfg = ServerConfig::builder_with_details(provider(), clock)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| SetupError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    cfg.alpn_protocols = Vec::new();
    if protocols.http2 {
        cfg.alpn_protocols.push(b"h2".to_vec());
    }
    cfg.alpn_protocols.push(b"http/1.1".to_vec());
    if protocols.acme_tls {
        cfg.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    match ticketer {
        Some(t) => cfg.ticketer = t,
        None => {
            cfg.send_tls13_tickets = 0;
            cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        }
    }
    Ok(Arc::new(cfg))
}

/// A PEM chain and key, checked and ready to serve, with what the status
/// line says about them.
pub fn load_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    source: &'static str,
) -> Result<(Arc<rustls::sign::CertifiedKey>, Served), SetupError> {
    let certs = parse_certs(cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(trim_padding(key_pem))
        .map_err(|e| SetupError::Pem(e.to_string()))?;
    let served = describe(&certs[0], source);
    let certified = certs::certified_key(certs, &key)?;
    certified
        .keys_match()
        .map_err(|e| SetupError::Rustls(e.to_string()))?;
    Ok((certified, served))
}

/// Subject, issuer and expiry of a leaf certificate (parsed by
/// unipi-acme's X.509 reader; unknown fields stay empty).
pub fn describe(leaf: &CertificateDer<'_>, source: &'static str) -> Served {
    match unipi_acme::CertInfo::parse(leaf.as_ref()) {
        Ok(info) => Served::new(&info, source),
        Err(_) => Served {
            subject: String::new(),
            issuer: String::new(),
            names: Vec::new(),
            not_before: 0,
            not_after: 0,
            source,
        },
    }
}

/// The HTTPS server configuration for one fixed certificate (PEM chain and
/// key), ALPN `h2` (when `http2`) and `http/1.1`.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    clock: Arc<LoopClock>,
    ticketer: Option<Arc<Ticketer>>,
    http2: bool,
) -> Result<Arc<ServerConfig>, SetupError> {
    let (key, served) = load_pem(cert_pem, key_pem, "PEM")?;
    let store = Arc::new(CertStore::default());
    store.set(key, served);
    let protocols = Protocols {
        http2,
        acme_tls: false,
    };
    server_config_with(store, clock, ticketer, protocols)
}

/// A client configuration that trusts the CA certificates in `roots_pem`.
pub fn client_config(
    roots_pem: &[u8],
    clock: Arc<LoopClock>,
) -> Result<Arc<ClientConfig>, SetupError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(roots_pem)? {
        roots
            .add(cert)
            .map_err(|e| SetupError::Rustls(e.to_string()))?;
    }
    client_with_roots(roots, clock)
}

/// A client configuration that trusts the bundled Web PKI roots (Mozilla's
/// list, from the `webpki-roots` crate).
pub fn web_pki_client_config(clock: Arc<LoopClock>) -> Result<Arc<ClientConfig>, SetupError> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    client_with_roots(roots, clock)
}

/// TLS 1.3 and 1.2, ALPN `http/1.1`, no client certificate.
fn client_with_roots(
    roots: RootCertStore,
    clock: Arc<LoopClock>,
) -> Result<Arc<ClientConfig>, SetupError> {
    let mut cfg = ClientConfig::builder_with_details(provider(), clock)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| SetupError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
pub(crate) mod test_pki {
    use alloc::format;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicU64, Ordering};

    /// Seconds since the epoch, from the host clock.
    pub fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// A throw-away CA and server certificate, made with openssl so the test
    /// needs no extra crates: (chain, key, CA), all PEM.
    pub fn make() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("unipi-tls-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/gen-dev-cert.sh");
        let st = std::process::Command::new("sh")
            .arg(script)
            .arg(&dir)
            .status()
            .expect("run gen-dev-cert.sh (needs openssl)");
        assert!(st.success());
        let r = |n: &str| std::fs::read(dir.join(n)).unwrap();
        let out = (r("server.pem"), r("server.key"), r("ca.pem"));
        let _ = std::fs::remove_dir_all(&dir);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_reported() {
        assert_eq!(
            parse_certs(b"\0\0\0").unwrap_err(),
            SetupError::NoCertificate
        );
        let clock = Arc::new(LoopClock::default());
        let e = server_config(b"junk", b"junk", clock, None, true).unwrap_err();
        assert!(
            matches!(e, SetupError::NoCertificate | SetupError::Pem(_)),
            "{e:?}"
        );
    }
}
