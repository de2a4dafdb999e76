//! TLS with rustls' unbuffered (sans-IO) API.
//!
//! [`TlsConn`] sits between a TCP socket and the HTTP layer (server side) or
//! the Git client (client side): ciphertext goes in with
//! [`TlsConn::receive`] and out through [`TlsConn::output`]; plaintext comes
//! out through [`TlsConn::plaintext`] and goes in through
//! [`TlsConn::pump`]. Every buffer is bounded, so a peer that sends faster
//! than the application consumes is throttled by TCP flow control rather than
//! by memory growth.
//!
//! Driving protocol, each time the event loop visits a connection:
//!
//! 1. move ciphertext from the socket into [`TlsConn::receive`] (at most
//!    [`TlsConn::receive_capacity`] bytes);
//! 2. call [`TlsConn::pump`] with the plaintext the application wants to
//!    send; it processes records, decrypts into the plaintext buffer and
//!    encrypts as much of the given plaintext as the output buffer allows;
//! 3. hand [`TlsConn::plaintext`] to the application and
//!    [`TlsConn::consume_plaintext`] what it took;
//! 4. move [`TlsConn::output`] into the socket and
//!    [`TlsConn::consume_output`] what it took.
//!
//! Also here: the server and client configurations (certificates from PEM
//! regions, ALPN `http/1.1`, TLS 1.3 and 1.2 only, ECDHE with AEAD suites
//! only), a session-ticket encrypter ([`Ticketer`], rustls' own is std-only)
//! and the clock rustls reads ([`LoopClock`]).

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use ring::aead;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ProducesTickets, UnbufferedServerConnection};
use rustls::time_provider::TimeProvider;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use smoltcp::socket::tcp;

/// Largest TLS record on the wire (16 KiB plaintext + expansion).
const MAX_RECORD: usize = 16 * 1024 + 2048 + 5;
/// Ciphertext accepted but not yet processed.
const IN_MAX: usize = 2 * MAX_RECORD;
/// Decrypted data waiting for the application.
const PLAIN_MAX: usize = 32 * 1024;
/// Ciphertext waiting for the socket before we stop encrypting more.
const OUT_MAX: usize = 64 * 1024;
/// Plaintext encrypted per call to `encrypt` (one or a few records).
const ENCRYPT_CHUNK: usize = 16 * 1024;

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

/// The HTTPS server configuration: the chain and key from PEM, TLS 1.3 and
/// 1.2, ALPN `http/1.1`, session tickets from `ticketer` (none: every
/// connection makes a full handshake).
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    clock: Arc<LoopClock>,
    ticketer: Option<Arc<Ticketer>>,
) -> Result<Arc<ServerConfig>, SetupError> {
    let certs = parse_certs(cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(trim_padding(key_pem))
        .map_err(|e| SetupError::Pem(e.to_string()))?;
    let mut cfg = ServerConfig::builder_with_details(provider(), clock)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| SetupError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| SetupError::Rustls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    match ticketer {
        Some(t) => cfg.ticketer = t,
        None => {
            cfg.send_tls13_tickets = 0;
            cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        }
    }
    Ok(Arc::new(cfg))
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

/// Session tickets: ChaCha20-Poly1305 with a random key that is replaced
/// every [`Ticketer::ROTATE_SECS`]; the previous key still decrypts, so a
/// ticket lives at most two periods. Layout: key name (16) ‖ nonce (12) ‖
/// ciphertext ‖ tag.
pub struct Ticketer {
    keys: spin::Mutex<TicketKeys>,
    rng: SystemRandom,
}

struct TicketKey {
    name: [u8; 16],
    key: aead::LessSafeKey,
}

struct TicketKeys {
    current: TicketKey,
    previous: Option<TicketKey>,
    created: u64,
}

impl fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ticketer")
    }
}

impl Ticketer {
    /// Seconds between key rotations (and the advertised ticket lifetime).
    pub const ROTATE_SECS: u64 = 6 * 3600;

    /// A ticketer with a fresh random key; `None` without entropy.
    pub fn new(now: u64) -> Option<Self> {
        let rng = SystemRandom::new();
        let current = Self::fresh_key(&rng)?;
        Some(Ticketer {
            keys: spin::Mutex::new(TicketKeys {
                current,
                previous: None,
                created: now,
            }),
            rng,
        })
    }

    fn fresh_key(rng: &SystemRandom) -> Option<TicketKey> {
        let mut name = [0u8; 16];
        let mut key = [0u8; 32];
        rng.fill(&mut name).ok()?;
        rng.fill(&mut key).ok()?;
        let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &key).ok()?;
        Some(TicketKey {
            name,
            key: aead::LessSafeKey::new(unbound),
        })
    }

    /// Replaces the key when it is older than [`Self::ROTATE_SECS`].
    pub fn rotate(&self, now: u64) {
        let mut k = self.keys.lock();
        if now.saturating_sub(k.created) < Self::ROTATE_SECS {
            return;
        }
        if let Some(fresh) = Self::fresh_key(&self.rng) {
            let old = core::mem::replace(&mut k.current, fresh);
            k.previous = Some(old);
            k.created = now;
        }
    }
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        Self::ROTATE_SECS as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; 12];
        self.rng.fill(&mut nonce).ok()?;
        let k = self.keys.lock();
        let mut out = Vec::with_capacity(16 + 12 + plain.len() + 16);
        out.extend_from_slice(&k.current.name);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        let aad = aead::Aad::from(k.current.name);
        k.current
            .key
            .seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aad, &mut body)
            .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < 16 + 12 + 16 || cipher.len() > 16 * 1024 {
            return None;
        }
        let (name, rest) = cipher.split_at(16);
        let (nonce, sealed) = rest.split_at(12);
        let k = self.keys.lock();
        let key = [Some(&k.current), k.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|key| ring_eq(&key.name, name))?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let aad = aead::Aad::from(key.name);
        let plain_len = key.key.open_in_place(nonce, aad, &mut body).ok()?.len();
        body.truncate(plain_len);
        Some(body)
    }
}

/// Constant-time comparison of two byte strings of equal length.
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The two kinds of unbuffered connections behind one driver.
pub trait Unbuffered {
    /// `ServerConnectionData` or `ClientConnectionData`.
    type Data;
    /// `process_tls_records` of the connection.
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = rustls::server::ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = rustls::client::ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

/// Ciphertext waiting for the socket. The storage only grows and is zeroed
/// once, when it grows: records are encoded into [`OutBuf::spare`] and
/// kept with [`OutBuf::commit`], so no byte is zeroed again per record.
#[derive(Default)]
struct OutBuf {
    buf: Vec<u8>,
    len: usize,
}

impl OutBuf {
    fn len(&self) -> usize {
        self.len
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// `n` writable bytes after the committed ones (contents unspecified).
    fn spare(&mut self, n: usize) -> &mut [u8] {
        if self.buf.len() < self.len + n {
            self.buf.resize(self.len + n, 0);
        }
        &mut self.buf[self.len..self.len + n]
    }

    /// Keeps `n` bytes written into [`OutBuf::spare`].
    fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// Drops the first `n` committed bytes.
    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

/// A server-side TLS connection.
pub type ServerTls = TlsConn<UnbufferedServerConnection>;
/// A client-side TLS connection.
pub type ClientTls = TlsConn<UnbufferedClientConnection>;

/// A TLS connection with bounded buffers on both sides (see the module docs
/// for the driving protocol).
pub struct TlsConn<C> {
    conn: C,
    incoming: Vec<u8>,
    outgoing: OutBuf,
    out_sent: usize,
    plain: Vec<u8>,
    plain_read: usize,
    handshake_done: bool,
    peer_closed: bool,
    closed: bool,
    close_requested: bool,
    close_sent: bool,
    error: Option<rustls::Error>,
}

impl ServerTls {
    /// A new server connection.
    pub fn server(config: Arc<ServerConfig>) -> Result<Self, rustls::Error> {
        Ok(Self::wrap(UnbufferedServerConnection::new(config)?))
    }
}

impl ClientTls {
    /// A new client connection to `server_name` (DNS name or IP literal).
    pub fn client(config: Arc<ClientConfig>, server_name: &str) -> Result<Self, rustls::Error> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| rustls::Error::General("invalid server name".into()))?;
        Ok(Self::wrap(UnbufferedClientConnection::new(config, name)?))
    }
}

impl<C: Unbuffered> TlsConn<C> {
    fn wrap(conn: C) -> Self {
        TlsConn {
            conn,
            incoming: Vec::with_capacity(2048),
            outgoing: OutBuf::default(),
            out_sent: 0,
            plain: Vec::new(),
            plain_read: 0,
            handshake_done: false,
            peer_closed: false,
            closed: false,
            close_requested: false,
            close_sent: false,
            error: None,
        }
    }

    /// How many ciphertext bytes [`Self::receive`] accepts now.
    pub fn receive_capacity(&self) -> usize {
        if self.error.is_some() || self.closed {
            return 0;
        }
        IN_MAX.saturating_sub(self.incoming.len())
    }

    /// Appends ciphertext from the socket (at most [`Self::receive_capacity`]
    /// bytes are kept; the caller must not offer more).
    pub fn receive(&mut self, data: &[u8]) {
        let n = data.len().min(self.receive_capacity());
        self.incoming.extend_from_slice(&data[..n]);
    }

    /// Decrypted data waiting for the application.
    pub fn plaintext(&self) -> &[u8] {
        &self.plain[self.plain_read..]
    }

    /// Marks `n` bytes of [`Self::plaintext`] as taken.
    pub fn consume_plaintext(&mut self, n: usize) {
        self.plain_read = (self.plain_read + n).min(self.plain.len());
        if self.plain_read == self.plain.len() {
            self.plain.clear();
            self.plain_read = 0;
        }
    }

    /// Moves as much ciphertext from `socket` as [`Self::receive_capacity`]
    /// allows (the rest stays in the socket: TCP flow control).
    pub fn read_from(&mut self, socket: &mut tcp::Socket<'_>) {
        if socket.can_recv() && self.receive_capacity() > 0 {
            let _ = socket.recv(|buf| {
                let n = buf.len().min(self.receive_capacity());
                self.receive(&buf[..n]);
                (n, ())
            });
        }
    }

    /// Moves as much of [`Self::output`] into `socket` as it takes.
    pub fn write_to(&mut self, socket: &mut tcp::Socket<'_>) {
        while socket.can_send() && !self.output().is_empty() {
            match socket.send_slice(self.output()) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.consume_output(n),
            }
        }
    }

    /// Ciphertext waiting for the socket.
    pub fn output(&self) -> &[u8] {
        &self.outgoing.as_slice()[self.out_sent..]
    }

    /// Marks `n` bytes of [`Self::output`] as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.out_sent = (self.out_sent + n).min(self.outgoing.len());
        if self.out_sent == self.outgoing.len() {
            self.outgoing.clear();
            self.out_sent = 0;
        } else if self.out_sent > OUT_MAX {
            self.outgoing.drop_front(self.out_sent);
            self.out_sent = 0;
        }
    }

    /// Asks for a close_notify to be sent once the handshake allows it.
    pub fn close(&mut self) {
        self.close_requested = true;
    }

    /// True once the handshake completed.
    pub fn is_established(&self) -> bool {
        self.handshake_done
    }

    /// True once the peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// True once close_notify went both ways, or after we sent ours.
    pub fn is_closed(&self) -> bool {
        self.closed || self.close_sent
    }

    /// The error that ended the connection, if any.
    pub fn error(&self) -> Option<&rustls::Error> {
        self.error.as_ref()
    }

    /// After an error rustls has queued a fatal alert (e.g. protocol_version
    /// for a TLS 1.1 client); the next processing step hands it out for
    /// encoding. Put it into the output so the peer learns why.
    ///
    /// Exactly one step, on the real input buffer: a queued alert comes out
    /// before rustls looks at input again, and any further step would
    /// deframe the rest of the (bad) input once more. The buffer must be
    /// the real one, never an empty slice: a handshake message that rustls
    /// is still joining across records lives in it and its read position
    /// points into it. With an empty slice rustls sliced past the end and
    /// panicked — one oversized ClientHello crashed the server.
    fn flush_alert(&mut self) {
        let UnbufferedStatus { state, .. } = self.conn.process(&mut self.incoming);
        if let Ok(ConnectionState::EncodeTlsData(mut e)) = state
            && let Ok(n) = e.encode(self.outgoing.spare(512))
        {
            self.outgoing.commit(n);
        }
    }

    /// Processes received records and encrypts from `app_data`; returns how
    /// many bytes of `app_data` were encrypted (0 until the handshake is
    /// done, or while the output buffer is full).
    pub fn pump(&mut self, app_data: &[u8]) -> Result<usize, rustls::Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let mut taken = 0;
        // A bounded number of state transitions per call.
        for _ in 0..64 {
            let UnbufferedStatus { mut discard, state } = self.conn.process(&mut self.incoming);
            let state = match state {
                Ok(s) => s,
                Err(e) => {
                    if discard > 0 {
                        self.incoming.drain(..discard.min(self.incoming.len()));
                    }
                    self.error = Some(e.clone());
                    self.flush_alert();
                    return Err(e);
                }
            };
            let mut again = true;
            match state {
                ConnectionState::ReadTraffic(mut r) => {
                    while self.plain.len() - self.plain_read < PLAIN_MAX {
                        match r.next_record() {
                            Some(Ok(rec)) => {
                                discard += rec.discard;
                                self.plain.extend_from_slice(rec.payload);
                            }
                            Some(Err(e)) => {
                                self.error = Some(e.clone());
                                drop(r);
                                self.incoming.drain(..discard.min(self.incoming.len()));
                                self.flush_alert();
                                return Err(e);
                            }
                            None => break,
                        }
                    }
                    // Stop when the application has not caught up.
                    again = self.plain.len() - self.plain_read < PLAIN_MAX;
                }
                ConnectionState::ReadEarlyData(_) => {
                    // 0-RTT is never enabled, so this cannot happen; end the
                    // connection rather than spin on it.
                    let e = rustls::Error::General("unexpected early data".into());
                    self.error = Some(e.clone());
                    return Err(e);
                }
                ConnectionState::EncodeTlsData(mut e) => {
                    let mut size = 4096;
                    loop {
                        match e.encode(self.outgoing.spare(size)) {
                            Ok(n) => {
                                self.outgoing.commit(n);
                                break;
                            }
                            Err(EncodeError::InsufficientSize(s)) => size = s.required_size,
                            Err(EncodeError::AlreadyEncoded) => break,
                        }
                    }
                }
                ConnectionState::TransmitTlsData(t) => t.done(),
                ConnectionState::BlockedHandshake => again = false,
                ConnectionState::WriteTraffic(mut w) => {
                    self.handshake_done = true;
                    if self.close_requested && !self.close_sent {
                        if let Ok(n) = w.queue_close_notify(self.outgoing.spare(64)) {
                            self.outgoing.commit(n);
                            self.close_sent = true;
                        }
                    } else if !self.close_sent {
                        loop {
                            let room = OUT_MAX.saturating_sub(self.outgoing.len() - self.out_sent);
                            if taken >= app_data.len() || room == 0 {
                                break;
                            }
                            let end = (taken + ENCRYPT_CHUNK.min(room)).min(app_data.len());
                            let chunk = &app_data[taken..end];
                            let mut size = chunk.len() + 64;
                            let written = loop {
                                match w.encrypt(chunk, self.outgoing.spare(size)) {
                                    Ok(n) => break Some(n),
                                    Err(EncryptError::InsufficientSize(s)) => {
                                        size = s.required_size
                                    }
                                    Err(_) => break None,
                                }
                            };
                            match written {
                                Some(n) => {
                                    self.outgoing.commit(n);
                                    taken += chunk.len();
                                }
                                None => {
                                    let e = rustls::Error::EncryptError;
                                    self.error = Some(e.clone());
                                    return Err(e);
                                }
                            }
                        }
                    }
                    again = false;
                }
                ConnectionState::PeerClosed => self.peer_closed = true,
                ConnectionState::Closed => {
                    self.peer_closed = true;
                    self.closed = true;
                    again = false;
                }
                _ => again = false,
            }
            if discard > 0 {
                self.incoming.drain(..discard.min(self.incoming.len()));
            }
            if !again {
                break;
            }
        }
        Ok(taken)
    }
}

/// A cheap boxed error for callers that only log.
pub fn describe(e: &rustls::Error) -> Box<str> {
    e.to_string().into_boxed_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// A throw-away CA and server certificate, made with openssl so the test
    /// needs no extra crates.
    fn test_pki() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
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

    /// Moves all output of one side into the other, `rounds` times.
    fn shuttle<A: Unbuffered, B: Unbuffered>(
        a: &mut TlsConn<A>,
        b: &mut TlsConn<B>,
        a_send: &[u8],
        b_send: &[u8],
    ) -> (usize, usize) {
        let (mut sa, mut sb) = (0, 0);
        for _ in 0..20 {
            sa += a.pump(&a_send[sa..]).unwrap();
            let out = a.output().to_vec();
            let n = out.len().min(b.receive_capacity());
            b.receive(&out[..n]);
            a.consume_output(n);
            sb += b.pump(&b_send[sb..]).unwrap();
            let out = b.output().to_vec();
            let n = out.len().min(a.receive_capacity());
            a.receive(&out[..n]);
            b.consume_output(n);
        }
        (sa, sb)
    }

    #[test]
    fn handshake_and_data_both_ways_with_rustls_client() {
        let (chain, key, ca) = test_pki();
        let clock = Arc::new(LoopClock::default());
        clock.set(now());
        let ticketer = Arc::new(Ticketer::new(now()).unwrap());
        let scfg = server_config(&chain, &key, clock.clone(), Some(ticketer)).unwrap();
        let ccfg = client_config(&ca, clock).unwrap();
        let mut server = ServerTls::server(scfg).unwrap();
        let mut client = ClientTls::client(ccfg, "localhost").unwrap();
        let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(3);
        let response = vec![0x5a; 100_000];
        let mut got_req = Vec::new();
        let mut got_resp = Vec::new();
        let (mut sc, mut ss) = (0, 0);
        for _ in 0..200 {
            let (a, b) = shuttle(&mut client, &mut server, &request[sc..], &response[ss..]);
            sc += a;
            ss += b;
            got_req.extend_from_slice(server.plaintext());
            let n = server.plaintext().len();
            server.consume_plaintext(n);
            got_resp.extend_from_slice(client.plaintext());
            let n = client.plaintext().len();
            client.consume_plaintext(n);
            if got_resp.len() == response.len() && got_req.len() == request.len() {
                break;
            }
        }
        assert!(client.is_established() && server.is_established());
        assert_eq!(got_req, request);
        assert_eq!(got_resp, response);
        // Clean close both ways.
        client.close();
        server.close();
        shuttle(&mut client, &mut server, &[], &[]);
        assert!(client.peer_closed() && server.peer_closed());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let (chain, key, _) = test_pki();
        let clock = Arc::new(LoopClock::default());
        clock.set(now());
        let scfg = server_config(
            &chain,
            &key,
            clock,
            Some(Arc::new(Ticketer::new(now()).unwrap())),
        )
        .unwrap();
        let mut server = ServerTls::server(scfg).unwrap();
        server.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(server.pump(&[]).is_err());
        assert_eq!(server.receive_capacity(), 0);
        // The peer is told why: a fatal alert record (content type 21).
        assert_eq!(server.output().first(), Some(&21), "{:?}", server.output());
    }

    /// A ClientHello that claims 16 MiB, spread over full-size records:
    /// rustls rejects it while part of it is still being joined in the
    /// input buffer. Handing rustls an empty buffer to flush the alert
    /// then made it slice beyond the buffer and panic (a remote crash).
    #[test]
    fn oversized_handshake_message_is_an_error_not_a_panic() {
        let (chain, key, _) = test_pki();
        let clock = Arc::new(LoopClock::default());
        clock.set(now());
        let scfg = server_config(&chain, &key, clock, None).unwrap();
        let mut server = ServerTls::server(scfg).unwrap();
        let mut failed = false;
        for i in 0..6 {
            let mut body = vec![0x41u8; 16384];
            if i == 0 {
                body[..4].copy_from_slice(&[1, 0xff, 0xff, 0xff]);
            }
            let mut rec = vec![22, 3, 1, 0x40, 0x00];
            rec.extend_from_slice(&body);
            let n = rec.len().min(server.receive_capacity());
            server.receive(&rec[..n]);
            if server.pump(&[]).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "a 16 MiB handshake message must be refused");
        assert!(server.pump(&[]).is_err());
    }

    #[test]
    fn tickets_round_trip_and_rotate() {
        let t = Ticketer::new(1000).unwrap();
        let c = t.encrypt(b"session state").unwrap();
        assert_eq!(t.decrypt(&c).unwrap(), b"session state");
        let mut bad = c.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(t.decrypt(&bad).is_none());
        assert!(t.decrypt(&c[..20]).is_none());
        t.rotate(1000 + Ticketer::ROTATE_SECS);
        assert_eq!(
            t.decrypt(&c).unwrap(),
            b"session state",
            "previous key still decrypts"
        );
        t.rotate(1000 + 2 * Ticketer::ROTATE_SECS);
        assert!(
            t.decrypt(&c).is_none(),
            "a ticket lives at most two periods"
        );
    }

    #[test]
    fn bad_pem_is_reported() {
        assert_eq!(
            parse_certs(b"\0\0\0").unwrap_err(),
            SetupError::NoCertificate
        );
        let clock = Arc::new(LoopClock::default());
        let e = server_config(b"junk", b"junk", clock, None).unwrap_err();
        assert!(
            matches!(e, SetupError::NoCertificate | SetupError::Pem(_)),
            "{e:?}"
        );
    }
}
