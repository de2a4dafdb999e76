//! One TLS connection over rustls' unbuffered API, with bounded buffers.
//!
//! A [`TlsSession`] never touches a socket: ciphertext goes in with
//! [`TlsSession::receive`] and out through [`TlsSession::output`];
//! plaintext comes out through [`TlsSession::plaintext`] and goes in through
//! [`TlsSession::pump`]. [`crate::transport`] does the socket side.
//!
//! Driving protocol, each time the connection is visited:
//!
//! 1. move ciphertext from the socket into [`TlsSession::receive`] (at most
//!    [`TlsSession::receive_capacity`] bytes);
//! 2. call [`TlsSession::pump`] with the plaintext the application wants to
//!    send; it processes records, decrypts into the plaintext buffer and
//!    encrypts as much of the given plaintext as the output buffer allows;
//! 3. hand [`TlsSession::plaintext`] to the application and
//!    [`TlsSession::consume_plaintext`] what it took;
//! 4. move [`TlsSession::output`] into the socket and
//!    [`TlsSession::consume_output`] what it took.
//!
//! # Memory
//!
//! Buffers are allocated on demand and given back with
//! [`TlsSession::trim`] when the connection is idle, so an idle session
//! costs rustls' own state and nothing more. The input buffer grows up to
//! [`IN_MAX`]: rustls joins a handshake message that spans several records
//! inside it, and accepts handshake messages up to 64 KiB, so any
//! ClientHello rustls would accept fits (a larger one is refused by rustls
//! with a `decode_error` alert as soon as its header arrives).

use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, ServerConfig};

/// Largest TLS record on the wire (16 KiB plaintext + expansion + header).
const MAX_RECORD: usize = 16 * 1024 + 2048 + 5;
/// Largest handshake message rustls accepts (header included).
const MAX_HANDSHAKE_MESSAGE: usize = 0xffff + 4;
/// Ciphertext accepted but not yet processed: a largest handshake message
/// spread over full-size records (5-byte header each), plus one more record.
pub const IN_MAX: usize = MAX_HANDSHAKE_MESSAGE + 5 * 5 + MAX_RECORD;
/// Decrypted data waiting for the application.
const PLAIN_MAX: usize = 32 * 1024;
/// Ciphertext waiting for the socket before we stop encrypting more.
const OUT_MAX: usize = 64 * 1024;
/// Plaintext encrypted per call to `encrypt` (one or a few records).
const ENCRYPT_CHUNK: usize = 16 * 1024;
/// Spare capacity a buffer may keep through [`TlsSession::trim`]: none, so
/// an idle session holds no buffer at all (an idle connection kept a
/// ≈ 236-byte input buffer otherwise, 2.4 MB over 10,000 connections).
const KEEP: usize = 0;

/// The alert for an error rustls ended a handshake with but queued no
/// alert for (RFC 8446 §6.2).
fn plaintext_alert_for(error: &rustls::Error) -> u8 {
    use rustls::{Error, PeerMisbehaved};
    const UNEXPECTED_MESSAGE: u8 = 10;
    const HANDSHAKE_FAILURE: u8 = 40;
    const DECODE_ERROR: u8 = 50;
    match error {
        Error::InvalidMessage(_) => DECODE_ERROR,
        Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. }
        | Error::PeerMisbehaved(
            PeerMisbehaved::MessageInterleavedWithHandshakeMessage
            | PeerMisbehaved::TooManyEmptyFragments
            | PeerMisbehaved::RejectedEarlyDataInterleavedWithHandshakeMessage,
        ) => UNEXPECTED_MESSAGE,
        _ => HANDSHAKE_FAILURE,
    }
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
    /// The ALPN protocol agreed on, once the handshake got that far.
    fn alpn(&self) -> Option<&[u8]>;
    /// rustls holds records it wants sent (e.g. a fatal alert).
    fn wants_write(&self) -> bool;
    /// Full or resumed, once the handshake got that far.
    fn handshake_kind(&self) -> Option<rustls::HandshakeKind>;
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = rustls::server::ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
    fn alpn(&self) -> Option<&[u8]> {
        self.alpn_protocol()
    }
    fn wants_write(&self) -> bool {
        rustls::CommonState::wants_write(self)
    }
    fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        rustls::CommonState::handshake_kind(self)
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
    fn alpn(&self) -> Option<&[u8]> {
        self.alpn_protocol()
    }
    fn wants_write(&self) -> bool {
        rustls::CommonState::wants_write(self)
    }
    fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        rustls::CommonState::handshake_kind(self)
    }
}

/// Ciphertext waiting for the socket. Records are encoded into
/// [`OutBuf::spare`] and kept with [`OutBuf::commit`]; the storage is zeroed
/// only where it grows, never again per record.
#[derive(Default)]
struct OutBuf {
    buf: Vec<u8>,
    len: usize,
    sent: usize,
}

impl OutBuf {
    /// Bytes committed and not yet sent.
    fn pending(&self) -> &[u8] {
        &self.buf[self.sent..self.len]
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

    /// Marks `n` pending bytes as sent.
    fn consume(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.len);
        if self.sent == self.len {
            self.len = 0;
            self.sent = 0;
        } else if self.sent > OUT_MAX {
            self.buf.copy_within(self.sent..self.len, 0);
            self.len -= self.sent;
            self.sent = 0;
        }
    }

    fn trim(&mut self) {
        if self.len == 0 && self.buf.len() > KEEP {
            self.buf = Vec::new();
        }
    }
}

/// A server-side TLS session.
pub type ServerTls = TlsSession<UnbufferedServerConnection>;
/// A client-side TLS session.
pub type ClientTls = TlsSession<UnbufferedClientConnection>;

/// A TLS connection with bounded buffers on both sides (see the module docs
/// for the driving protocol).
pub struct TlsSession<C> {
    conn: C,
    incoming: Vec<u8>,
    outgoing: OutBuf,
    plain: Vec<u8>,
    plain_read: usize,
    handshake_done: bool,
    peer_closed: bool,
    closed: bool,
    close_requested: bool,
    close_sent: bool,
    /// Records were produced (from then on, alerts need keys).
    sent_any: bool,
    error: Option<rustls::Error>,
}

impl ServerTls {
    /// A new server session.
    pub fn server(config: Arc<ServerConfig>) -> Result<Self, rustls::Error> {
        Ok(Self::wrap(UnbufferedServerConnection::new(config)?))
    }
}

impl ClientTls {
    /// A new client session to `server_name` (DNS name or IP literal).
    pub fn client(config: Arc<ClientConfig>, server_name: &str) -> Result<Self, rustls::Error> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| rustls::Error::General("invalid server name".into()))?;
        Ok(Self::wrap(UnbufferedClientConnection::new(config, name)?))
    }
}

impl<C: Unbuffered> TlsSession<C> {
    fn wrap(conn: C) -> Self {
        TlsSession {
            conn,
            incoming: Vec::new(),
            outgoing: OutBuf::default(),
            plain: Vec::new(),
            plain_read: 0,
            handshake_done: false,
            peer_closed: false,
            closed: false,
            close_requested: false,
            close_sent: false,
            sent_any: false,
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

    /// Ciphertext waiting for the socket.
    pub fn output(&self) -> &[u8] {
        self.outgoing.pending()
    }

    /// Marks `n` bytes of [`Self::output`] as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.outgoing.consume(n);
    }

    /// Gives back the memory of empty buffers (call when the connection is
    /// idle); a session keeps only rustls' state and a small reserve.
    pub fn trim(&mut self) {
        if self.incoming.is_empty() && self.incoming.capacity() > KEEP {
            self.incoming = Vec::new();
        }
        if self.plaintext().is_empty() && self.plain.capacity() > KEEP {
            self.plain = Vec::new();
            self.plain_read = 0;
        }
        self.outgoing.trim();
    }

    /// Bytes held in buffers (capacity), for memory accounting.
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.plain.capacity() + self.outgoing.buf.capacity()
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

    /// The ALPN protocol agreed on in the handshake.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn()
    }

    /// Full or resumed, once the handshake got that far.
    pub fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        self.conn.handshake_kind()
    }

    /// After an error rustls has usually queued a fatal alert (e.g.
    /// protocol_version for a TLS 1.1 client), possibly behind records of
    /// the flight it was building (a ServerHello); while it holds records,
    /// each processing step hands one out for encoding before rustls looks
    /// at input again. Put them all into the output so the peer learns why
    /// — and stop there: a further step would deframe the (bad) input once
    /// more.
    ///
    /// The buffer must be the real one, never an empty slice: a handshake
    /// message that rustls is still joining across records lives in it and
    /// its read position points into it. With an empty slice rustls sliced
    /// past the end and panicked — one oversized ClientHello crashed the
    /// server.
    ///
    /// For a few errors rustls queues no alert at all (a handshake message
    /// over 64 KiB, a record interleaved with a fragmented handshake
    /// message: docs/tls.md lists them). Before the first byte of ours went
    /// out no key is in use yet, so a plaintext alert is as good as rustls'
    /// own would be: we send the one RFC 8446 §6.2 asks for.
    fn flush_alert(&mut self, error: &rustls::Error) {
        let mut encoded = false;
        for _ in 0..16 {
            if !self.conn.wants_write() {
                break;
            }
            let UnbufferedStatus { state, .. } = self.conn.process(&mut self.incoming);
            let Ok(ConnectionState::EncodeTlsData(mut e)) = state else {
                break;
            };
            let mut size = 512;
            loop {
                match e.encode(self.outgoing.spare(size)) {
                    Ok(n) => {
                        self.outgoing.commit(n);
                        encoded = true;
                        break;
                    }
                    Err(EncodeError::InsufficientSize(s)) if s.required_size <= 64 * 1024 => {
                        size = s.required_size
                    }
                    Err(_) => break,
                }
            }
        }
        if !encoded && !self.sent_any {
            let desc = plaintext_alert_for(error);
            let n = 7.min(self.outgoing.spare(7).len());
            self.outgoing.spare(7)[..n].copy_from_slice(&[21, 3, 3, 0, 2, 2, desc][..n]);
            self.outgoing.commit(n);
        }
    }

    /// Records `e` as the end of the session and queues rustls' alert.
    fn fail(&mut self, e: rustls::Error, discard: usize) -> rustls::Error {
        self.error = Some(e.clone());
        self.incoming.drain(..discard.min(self.incoming.len()));
        self.flush_alert(&e);
        e
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
                Err(e) => return Err(self.fail(e, discard)),
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
                                drop(r);
                                return Err(self.fail(e, discard));
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
                                self.sent_any = true;
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
                        while taken < app_data.len() {
                            let room = OUT_MAX.saturating_sub(self.outgoing.pending().len());
                            if room == 0 {
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
                            let Some(n) = written else {
                                let e = rustls::Error::EncryptError;
                                self.error = Some(e.clone());
                                return Err(e);
                            };
                            self.outgoing.commit(n);
                            taken += chunk.len();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_pki::{make as test_pki, now};
    use crate::tls::{LoopClock, Ticketer, client_config, server_config};
    use alloc::vec;

    /// Moves all output of one side into the other, `rounds` times.
    fn shuttle<A: Unbuffered, B: Unbuffered>(
        a: &mut TlsSession<A>,
        b: &mut TlsSession<B>,
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
        let scfg = server_config(&chain, &key, clock.clone(), Some(ticketer), false).unwrap();
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
            false,
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
        let scfg = server_config(&chain, &key, clock, None, false).unwrap();
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
}
