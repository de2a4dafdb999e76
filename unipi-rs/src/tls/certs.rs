//! The certificate the HTTPS port presents, replaceable while serving.
//!
//! [`CertStore`] is the server configuration's certificate resolver: every
//! new handshake asks it, so swapping the certificate ([`CertStore::set`])
//! takes effect for the next handshake while established connections go on
//! with the one they negotiated — a renewal costs no outage. It also
//! answers ACME's TLS-ALPN-01 challenge (RFC 8737): a handshake that offers
//! only ALPN `acme-tls/1` for a name with a published challenge gets that
//! challenge's validation certificate.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::SetupError;

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// What is being served, for the status line and the expiry warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The leaf's subject (or first name).
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// The DNS names it is valid for (subjectAltName).
    pub names: Vec<String>,
    /// Its `notBefore`, unix seconds.
    pub not_before: u64,
    /// Its `notAfter`, unix seconds.
    pub not_after: u64,
    /// Where it came from (`the tls_cert region`, `ACME`).
    pub source: &'static str,
}

impl Served {
    /// What a parsed leaf says.
    pub fn new(info: &unipi_acme::CertInfo, source: &'static str) -> Served {
        Served {
            subject: match info.names.first() {
                Some(name) => name.clone(),
                None => info.subject.clone(),
            },
            issuer: info.issuer.clone(),
            names: info.names.clone(),
            not_before: info.not_before,
            not_after: info.not_after,
            source,
        }
    }

    /// Whether every one of `names` is among its names (ASCII case ignored).
    pub fn covers(&self, names: &[String]) -> bool {
        names
            .iter()
            .all(|n| self.names.iter().any(|m| m.eq_ignore_ascii_case(n)))
    }

    /// When it is due for renewal: two thirds into its lifetime, as
    /// Let's Encrypt and certbot do.
    pub fn renew_at(&self) -> u64 {
        let lifetime = self.not_after.saturating_sub(self.not_before);
        self.not_before + lifetime / 3 * 2
    }
}

#[derive(Default)]
struct Inner {
    current: Option<(Arc<CertifiedKey>, Served)>,
    /// TLS-ALPN-01 validation certificates by name (lowercase).
    challenges: Vec<(String, Arc<CertifiedKey>)>,
}

/// See the module documentation.
#[derive(Default)]
pub struct CertStore(spin::Mutex<Inner>);

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertStore")
    }
}

/// A chain and its key as rustls serves them.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'_>,
) -> Result<Arc<CertifiedKey>, SetupError> {
    let signer = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| SetupError::Rustls(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

/// A DER certificate and PKCS#8 key (ACME's form) as rustls serves them.
pub fn certified_key_der(chain: &[Vec<u8>], pkcs8: &[u8]) -> Result<Arc<CertifiedKey>, SetupError> {
    let chain = chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec()));
    certified_key(chain, &key)
}

impl CertStore {
    /// Serves `key` (described by `served`) from the next handshake on.
    pub fn set(&self, key: Arc<CertifiedKey>, served: Served) {
        self.0.lock().current = Some((key, served));
    }

    /// What is being served, if anything.
    pub fn served(&self) -> Option<Served> {
        self.0.lock().current.as_ref().map(|(_, s)| s.clone())
    }

    /// Answers TLS-ALPN-01 for `name` with `key` until [`CertStore::unpublish`].
    pub fn publish(&self, name: &str, key: Arc<CertifiedKey>) {
        let name = name.to_ascii_lowercase();
        let mut inner = self.0.lock();
        inner.challenges.retain(|(n, _)| *n != name);
        inner.challenges.push((name, key));
    }

    /// Stops answering TLS-ALPN-01 for `name`.
    pub fn unpublish(&self, name: &str) {
        self.0
            .lock()
            .challenges
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let inner = self.0.lock();
        let acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if acme {
            // Only the validation certificate, and only for its name: a
            // client asking for acme-tls/1 gets nothing else (RFC 8737 §3).
            let name = hello.server_name()?;
            return inner
                .challenges
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, k)| k.clone());
        }
        inner.current.as_ref().map(|(k, _)| k.clone())
    }
}
