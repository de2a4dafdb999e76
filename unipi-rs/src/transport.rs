//! One transport for every TCP connection of the application: a smoltcp
//! socket, optionally inside a security [`Layer`] (TLS today; an SSH
//! channel slots in the same way).
//!
//! The server's connections and the clients (Git, ACME) all move bytes the
//! same way, through a [`Stream`]:
//!
//! 1. [`Stream::exchange`] moves bytes between the socket and the layer and
//!    runs the layer's protocol (handshake, records, alerts);
//! 2. [`Stream::read`] offers received application bytes to a consumer,
//!    which says how many it took (the rest waits: back-pressure reaches the
//!    peer through TCP flow control);
//! 3. [`Stream::write`] hands application bytes to the layer and the socket
//!    and says how many were taken.
//!
//! Outgoing connections start with [`Dial`]: resolve the host name, connect,
//! then the layer's handshake, one step per call, never blocking.
//!
//! Dual stack: a name is looked up as AAAA and A at once ([`Net::resolve`]
//! asks for AAAA only when this host has a routable IPv6 address), and
//! [`Dial`] connects to the IPv6 address first. If that connection is
//! refused, reset, or unanswered for [`FALLBACK_AFTER`], it tries the IPv4
//! address: a sequential form of "happy eyeballs" (RFC 8305 runs the
//! attempts in parallel; one socket per dial here).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use rustls::ClientConfig;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint};

use crate::net::{Answer, ConnectError, Lookup, Net, ResolveError};
use crate::tls::{ClientTls, TlsSession, Unbuffered};

/// Why a layer gave up on its connection.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerError {
    /// TLS failed (handshake, certificate, record or alert); rustls' alert
    /// has been queued for the peer.
    Tls(rustls::Error),
    /// SSH failed (host key, authentication, channel, protocol).
    Ssh(unipi_ssh::Error),
    /// The remote command ended with an error before its output did.
    SshExit {
        /// How it ended.
        status: unipi_ssh::ExitStatus,
        /// The end of what it wrote to stderr (sanitised).
        stderr: String,
    },
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerError::Tls(e) => write!(f, "TLS: {e}"),
            LayerError::Ssh(e) => write!(f, "SSH: {e}"),
            LayerError::SshExit { status, stderr } => {
                write!(f, "SSH: the remote command ended with {status}")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
        }
    }
}

/// What sits between a TCP socket and the application.
pub trait Layer {
    /// Moves bytes between `socket` and the layer and processes them
    /// (handshake, decryption, queued alerts); true if any byte moved. An
    /// error is final; whatever the layer queued for the peer (an alert) is
    /// still sent.
    fn exchange(&mut self, socket: &mut tcp::Socket<'_>) -> Result<bool, LayerError>;

    /// Offers received application bytes to `take`, which returns how many
    /// it used; returns that number.
    fn read(&mut self, socket: &mut tcp::Socket<'_>, take: &mut dyn FnMut(&[u8]) -> usize)
    -> usize;

    /// Sends application bytes; returns how many were taken (0 while the
    /// handshake runs or the buffers are full).
    fn write(&mut self, socket: &mut tcp::Socket<'_>, data: &[u8]) -> Result<usize, LayerError>;

    /// Starts an orderly close at this layer (TLS close_notify); the next
    /// [`Layer::exchange`] sends it.
    fn close(&mut self);

    /// The layer carries application data (its handshake is done).
    fn is_ready(&self) -> bool;

    /// The peer ended its side at this layer (TLS close_notify).
    fn peer_closed(&self) -> bool;

    /// Bytes are queued in the layer that the socket has not taken yet.
    fn has_output(&self) -> bool;

    /// Gives back spare buffer memory; called when the connection is idle.
    fn trim(&mut self) {}

    /// Buffer memory the layer holds, in bytes.
    fn buffered(&self) -> usize {
        0
    }

    /// The application protocol agreed on in the handshake (TLS ALPN).
    fn alpn(&self) -> Option<&[u8]> {
        None
    }

    /// How the layer's handshake went, once it is done (TLS: full or
    /// resumed); `None` for a layer without one.
    fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        None
    }
}

/// No layer: application bytes are the TCP payload.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl Layer for Plain {
    fn exchange(&mut self, _: &mut tcp::Socket<'_>) -> Result<bool, LayerError> {
        Ok(false)
    }

    fn read(
        &mut self,
        socket: &mut tcp::Socket<'_>,
        take: &mut dyn FnMut(&[u8]) -> usize,
    ) -> usize {
        socket
            .recv(|buf| {
                let n = take(buf).min(buf.len());
                (n, n)
            })
            .unwrap_or(0)
    }

    fn write(&mut self, socket: &mut tcp::Socket<'_>, data: &[u8]) -> Result<usize, LayerError> {
        Ok(socket.send_slice(data).unwrap_or(0))
    }

    fn close(&mut self) {}

    fn is_ready(&self) -> bool {
        true
    }

    fn peer_closed(&self) -> bool {
        false
    }

    fn has_output(&self) -> bool {
        false
    }
}

impl<C: Unbuffered> TlsSession<C> {
    /// Moves as much ciphertext from `socket` as the session accepts (the
    /// rest stays in the socket: TCP flow control); returns how much.
    fn fill_from(&mut self, socket: &mut tcp::Socket<'_>) -> usize {
        let mut total = 0;
        while socket.can_recv() && self.receive_capacity() > 0 {
            let got = socket.recv(|buf| {
                let n = buf.len().min(self.receive_capacity());
                self.receive(&buf[..n]);
                (n, n)
            });
            match got {
                Ok(n) if n > 0 => total += n,
                _ => break,
            }
        }
        total
    }

    /// Moves as much of the session's output into `socket` as it takes;
    /// returns how much.
    fn flush_to(&mut self, socket: &mut tcp::Socket<'_>) -> usize {
        let mut total = 0;
        while socket.can_send() && !self.output().is_empty() {
            match socket.send_slice(self.output()) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.consume_output(n);
                    total += n;
                }
            }
        }
        total
    }
}

impl<C: Unbuffered> Layer for TlsSession<C> {
    fn exchange(&mut self, socket: &mut tcp::Socket<'_>) -> Result<bool, LayerError> {
        let got = self.fill_from(socket);
        let r = self.pump(&[]);
        let sent = self.flush_to(socket);
        r.map(|_| got + sent > 0).map_err(LayerError::Tls)
    }

    fn read(
        &mut self,
        socket: &mut tcp::Socket<'_>,
        take: &mut dyn FnMut(&[u8]) -> usize,
    ) -> usize {
        let mut total = 0;
        loop {
            let plain = self.plaintext();
            if plain.is_empty() {
                break;
            }
            let n = take(plain).min(plain.len());
            self.consume_plaintext(n);
            total += n;
            if n == 0 {
                break;
            }
            // Room for more decrypted data: process what is buffered.
            self.fill_from(socket);
            if self.pump(&[]).is_err() {
                self.flush_to(socket);
                break;
            }
            self.flush_to(socket);
        }
        total
    }

    fn write(&mut self, socket: &mut tcp::Socket<'_>, data: &[u8]) -> Result<usize, LayerError> {
        let r = self.pump(data);
        self.flush_to(socket);
        r.map_err(LayerError::Tls)
    }

    fn close(&mut self) {
        TlsSession::close(self);
    }

    fn is_ready(&self) -> bool {
        self.is_established()
    }

    fn peer_closed(&self) -> bool {
        TlsSession::peer_closed(self)
    }

    fn has_output(&self) -> bool {
        !self.output().is_empty()
    }

    fn trim(&mut self) {
        TlsSession::trim(self);
    }

    fn buffered(&self) -> usize {
        self.buffered_capacity()
    }

    fn alpn(&self) -> Option<&[u8]> {
        TlsSession::alpn(self)
    }

    fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        TlsSession::handshake_kind(self)
    }
}

/// An SSH session running one command; the command's stdin and stdout are
/// the application's bytes.
pub struct SshLayer {
    client: unipi_ssh::SshClient,
    ready: bool,
    /// The command's stdout ended.
    eof: bool,
    /// A failed exit, reported once stdout is drained.
    failed: Option<unipi_ssh::ExitStatus>,
    /// Output was left in the session after the last flush.
    pending: bool,
}

impl SshLayer {
    /// A session for `config` (nothing is sent before the first exchange).
    pub fn new(config: unipi_ssh::Config) -> Result<SshLayer, unipi_ssh::Error> {
        Ok(SshLayer {
            client: unipi_ssh::SshClient::new(config)?,
            ready: false,
            eof: false,
            failed: None,
            pending: false,
        })
    }

    fn flush_to(&mut self, socket: &mut tcp::Socket<'_>) -> usize {
        let mut total = 0;
        while socket.can_send() {
            let out = self.client.output();
            if out.is_empty() {
                break;
            }
            match socket.send_slice(out) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.client.consume_output(n);
                    total += n;
                }
            }
        }
        self.pending = !self.client.output().is_empty();
        total
    }
}

impl Layer for SshLayer {
    fn exchange(&mut self, socket: &mut tcp::Socket<'_>) -> Result<bool, LayerError> {
        let mut moved = 0;
        while socket.can_recv() {
            let client = &mut self.client;
            match socket.recv(|buf| {
                let n = client.receive(buf);
                (n, n)
            }) {
                Ok(n) if n > 0 => moved += n,
                _ => break,
            }
        }
        if !socket.may_recv() {
            self.client.peer_closed();
        }
        loop {
            moved += self.flush_to(socket);
            match self.client.poll().map_err(LayerError::Ssh)? {
                unipi_ssh::Event::Idle => break,
                unipi_ssh::Event::HostKey {
                    fingerprint,
                    pinned,
                } => {
                    if pinned {
                        log::debug!("ssh: host key {fingerprint} matches the pin");
                    } else {
                        log::warn!(
                            "ssh: accepting host key {fingerprint} unchecked: set --ssh-authenticator={fingerprint} to pin it"
                        );
                    }
                }
                unipi_ssh::Event::Ready => self.ready = true,
                unipi_ssh::Event::Eof | unipi_ssh::Event::Closed => self.eof = true,
                unipi_ssh::Event::Exit(status) if status != unipi_ssh::ExitStatus::Code(0) => {
                    self.failed = Some(status);
                }
                _ => {}
            }
        }
        if let Some(status) = &self.failed
            && self.client.stdout().is_empty()
        {
            let stderr = String::from_utf8_lossy(self.client.stderr()).trim().into();
            return Err(LayerError::SshExit {
                status: status.clone(),
                stderr,
            });
        }
        Ok(moved > 0)
    }

    fn read(
        &mut self,
        socket: &mut tcp::Socket<'_>,
        take: &mut dyn FnMut(&[u8]) -> usize,
    ) -> usize {
        let out = self.client.stdout();
        if out.is_empty() {
            return 0;
        }
        let n = take(out).min(out.len());
        self.client.consume_stdout(n);
        self.flush_to(socket);
        n
    }

    fn write(&mut self, socket: &mut tcp::Socket<'_>, data: &[u8]) -> Result<usize, LayerError> {
        let n = self.client.write_stdin(data).map_err(LayerError::Ssh)?;
        self.flush_to(socket);
        Ok(n)
    }

    fn close(&mut self) {}

    fn is_ready(&self) -> bool {
        self.ready
    }

    fn peer_closed(&self) -> bool {
        self.eof && self.client.stdout().is_empty()
    }

    fn has_output(&self) -> bool {
        self.pending
    }
}

/// A TCP connection and the layer on it.
pub struct Stream {
    socket: SocketHandle,
    layer: Box<dyn Layer>,
    /// Bytes put into the socket so far (what the peer has acknowledged is
    /// this minus the socket's send queue).
    written: u64,
}

impl Stream {
    /// The connection on `socket` through `layer`.
    pub fn new(socket: SocketHandle, layer: Box<dyn Layer>) -> Stream {
        Stream {
            socket,
            layer,
            written: 0,
        }
    }

    /// Runs `f` on the layer and the socket, counting the bytes it put
    /// into the socket. (Acknowledgements only arrive while the interface
    /// is polled, so the growth of the send queue is exactly what `f`
    /// wrote.)
    fn with_socket<R>(
        &mut self,
        net: &mut Net,
        f: impl FnOnce(&mut dyn Layer, &mut tcp::Socket<'static>) -> R,
    ) -> R {
        let s = net.tcp(self.socket);
        let before = s.send_queue();
        let r = f(&mut *self.layer, s);
        self.written += s.send_queue().saturating_sub(before) as u64;
        r
    }

    /// Bytes the peer has acknowledged (TCP payload, ciphertext for TLS):
    /// what the connection has really delivered.
    pub fn acknowledged(&self, net: &mut Net) -> u64 {
        self.written
            .saturating_sub(net.tcp(self.socket).send_queue() as u64)
    }

    /// The socket.
    pub fn socket(&self) -> SocketHandle {
        self.socket
    }

    /// The layer.
    pub fn layer(&self) -> &dyn Layer {
        &*self.layer
    }

    /// See [`Layer::exchange`].
    pub fn exchange(&mut self, net: &mut Net) -> Result<bool, LayerError> {
        self.with_socket(net, |layer, s| layer.exchange(s))
    }

    /// See [`Layer::trim`].
    pub fn trim(&mut self) {
        self.layer.trim();
    }

    /// See [`Layer::read`].
    pub fn read(&mut self, net: &mut Net, mut take: impl FnMut(&[u8]) -> usize) -> usize {
        self.with_socket(net, |layer, s| layer.read(s, &mut take))
    }

    /// See [`Layer::write`].
    pub fn write(&mut self, net: &mut Net, data: &[u8]) -> Result<usize, LayerError> {
        self.with_socket(net, |layer, s| layer.write(s, data))
    }

    /// Starts an orderly close of the layer; the TCP FIN follows once the
    /// layer's last bytes are in the socket ([`Stream::finish_close`]).
    pub fn close(&mut self) {
        self.layer.close();
    }

    /// Sends the FIN once everything queued has gone into the socket;
    /// returns true once the socket no longer carries the connection.
    pub fn finish_close(&mut self, net: &mut Net) -> bool {
        let _ = self.exchange(net);
        let s = net.tcp(self.socket);
        // Discard what the peer still sends (the rest of an oversized
        // request, records after a TLS error). Otherwise its data fills our
        // window, its FIN can never arrive, and the connection lingers.
        while s.can_recv() {
            match s.recv(|b| (b.len(), b.len())) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        // Send our FIN once everything is out: from Established, or from
        // CloseWait when the peer closed first (the common case for a
        // client that is done).
        if !self.layer.has_output()
            && s.send_queue() == 0
            && matches!(s.state(), tcp::State::Established | tcp::State::CloseWait)
        {
            s.close();
        }
        matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait)
    }

    /// The TCP connection still exists (not reset, not fully closed).
    pub fn is_open(&self, net: &mut Net) -> bool {
        net.tcp(self.socket).is_open()
    }

    /// The peer will send nothing more (TCP FIN, or the layer's close).
    pub fn peer_done(&self, net: &mut Net) -> bool {
        !net.tcp(self.socket).may_recv() || self.layer.peer_closed()
    }
}

/// How to secure an outgoing connection.
#[derive(Clone)]
pub enum Security {
    /// Plain TCP.
    Plain,
    /// TLS with this configuration, checking the certificate against the
    /// host name.
    Tls(Arc<ClientConfig>),
    /// An SSH session running a command (user, key, host-key pin,
    /// command).
    Ssh(Box<unipi_ssh::Config>),
}

/// Where an outgoing connection goes.
#[derive(Clone)]
pub struct Target {
    /// Host name or IP literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The layer to run on top.
    pub security: Security,
}

/// Why an outgoing connection failed.
#[derive(Clone, Debug, PartialEq)]
pub enum DialError {
    /// The host name could not be resolved.
    Resolve {
        /// The host name.
        host: String,
        /// Why.
        reason: ResolveError,
    },
    /// The connection could not be started.
    Connect(ConnectError),
    /// The remote refused or reset the connection.
    Refused {
        /// Where we tried to connect.
        remote: IpEndpoint,
    },
    /// The security layer failed (e.g. the TLS certificate was not trusted).
    Layer {
        /// The host name.
        host: String,
        /// Why.
        error: LayerError,
    },
    /// The connection closed during the handshake.
    ClosedInHandshake {
        /// The host name.
        host: String,
    },
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialError::Resolve { host, reason } => write!(f, "cannot resolve {host}: {reason}"),
            DialError::Connect(e) => write!(f, "{e}"),
            DialError::Refused { remote } => {
                write!(f, "TCP connection to {remote} refused or reset")
            }
            DialError::Layer { host, error } => write!(f, "handshake with {host}: {error}"),
            DialError::ClosedInHandshake { host } => {
                write!(f, "handshake with {host}: connection closed")
            }
        }
    }
}

/// Progress of a [`Dial`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialStatus {
    /// Waiting for the network (DNS answer, SYN-ACK, handshake records).
    Pending,
    /// The stream carries application data.
    Open,
}

/// How long a connection attempt may wait for the SYN-ACK when another
/// address of the name is left to try (the last attempt waits as long as
/// TCP and the caller's own timeouts allow).
pub const FALLBACK_AFTER: Duration = Duration::from_secs(2);

enum DialState {
    Resolving(Lookup),
    /// Waiting for the SYN-ACK from `remote`; `fallbacks` are the name's
    /// other addresses, tried in order if this attempt fails.
    Connecting {
        remote: IpEndpoint,
        fallbacks: Vec<IpAddress>,
    },
    Handshaking,
    Open,
}

/// `[2001:db8::1]` → `2001:db8::1`; anything else unchanged.
fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// An outgoing connection: resolve, connect, handshake, then a [`Stream`].
pub struct Dial {
    target: Target,
    state: DialState,
    stream: Stream,
}

impl Dial {
    /// Starts connecting `socket` to `target`.
    /// `target.host` is a name, an IPv4 literal, or an IPv6 literal with or
    /// without brackets.
    pub fn start(net: &mut Net, socket: SocketHandle, target: Target) -> Result<Dial, DialError> {
        let state = match IpAddress::from_str(unbracket(&target.host)) {
            Ok(ip) => Self::connect(net, socket, target.port, ip, &[])?,
            Err(_) => match net.resolve(&target.host) {
                Ok(l) => {
                    log::debug!("resolving {}", target.host);
                    DialState::Resolving(l)
                }
                Err(reason) => {
                    return Err(DialError::Resolve {
                        host: target.host,
                        reason,
                    });
                }
            },
        };
        let stream = Stream::new(socket, Box::new(Plain));
        Ok(Dial {
            target,
            state,
            stream,
        })
    }

    /// Connects to `first`, or else to the first of `rest` that can be
    /// tried; the addresses after it become the fallbacks.
    fn connect(
        net: &mut Net,
        socket: SocketHandle,
        port: u16,
        first: IpAddress,
        rest: &[IpAddress],
    ) -> Result<DialState, DialError> {
        let mut remote = IpEndpoint::new(first, port);
        let mut rest = rest.iter();
        loop {
            match net.connect(socket, remote) {
                Ok(()) => {
                    let fallbacks: Vec<IpAddress> = rest.copied().collect();
                    let timeout = (!fallbacks.is_empty()).then_some(FALLBACK_AFTER);
                    net.tcp(socket).set_timeout(timeout);
                    log::debug!("connecting to {remote}");
                    return Ok(DialState::Connecting { remote, fallbacks });
                }
                Err(e) => match rest.next() {
                    Some(next) => {
                        log::debug!("{e}; trying {next}");
                        remote = IpEndpoint::new(*next, port);
                    }
                    None => return Err(DialError::Connect(e)),
                },
            }
        }
    }

    /// The host name (or address) being connected to.
    pub fn host(&self) -> &str {
        &self.target.host
    }

    /// Takes the next steps the network allows.
    pub fn poll(&mut self, net: &mut Net) -> Result<DialStatus, DialError> {
        loop {
            match core::mem::replace(&mut self.state, DialState::Handshaking) {
                DialState::Resolving(lookup) => match net.answer(lookup) {
                    Answer::Pending(l) => {
                        self.state = DialState::Resolving(l);
                        return Ok(DialStatus::Pending);
                    }
                    Answer::Done(Ok(addrs)) => {
                        log::debug!("{} is {addrs:?}", self.target.host);
                        let Some((first, rest)) = addrs.split_first() else {
                            return Err(DialError::Resolve {
                                host: self.target.host.clone(),
                                reason: ResolveError::Failed,
                            });
                        };
                        self.state =
                            Self::connect(net, self.stream.socket, self.target.port, *first, rest)?;
                    }
                    Answer::Done(Err(reason)) => {
                        return Err(DialError::Resolve {
                            host: self.target.host.clone(),
                            reason,
                        });
                    }
                },
                DialState::Connecting { remote, fallbacks } => {
                    match net.tcp(self.stream.socket).state() {
                        tcp::State::SynSent | tcp::State::SynReceived => {
                            self.state = DialState::Connecting { remote, fallbacks };
                            return Ok(DialStatus::Pending);
                        }
                        tcp::State::Established => {
                            net.tcp(self.stream.socket).set_timeout(None);
                            let layer: Result<Box<dyn Layer>, LayerError> =
                                match &self.target.security {
                                    Security::Plain => Ok(Box::new(Plain)),
                                    Security::Tls(cfg) => {
                                        ClientTls::client(cfg.clone(), unbracket(&self.target.host))
                                            .map(|t| Box::new(t) as Box<dyn Layer>)
                                            .map_err(LayerError::Tls)
                                    }
                                    Security::Ssh(cfg) => SshLayer::new((**cfg).clone())
                                        .map(|s| Box::new(s) as Box<dyn Layer>)
                                        .map_err(LayerError::Ssh),
                                };
                            self.stream.layer = layer.map_err(|error| DialError::Layer {
                                host: self.target.host.clone(),
                                error,
                            })?;
                            self.state = DialState::Handshaking;
                        }
                        _ => match fallbacks.split_first() {
                            Some((next, rest)) => {
                                log::info!(
                                    "{}: no connection to {remote}; trying {next}",
                                    self.target.host
                                );
                                self.state = Self::connect(
                                    net,
                                    self.stream.socket,
                                    self.target.port,
                                    *next,
                                    rest,
                                )?;
                            }
                            None => return Err(DialError::Refused { remote }),
                        },
                    }
                }
                DialState::Handshaking => {
                    if let Err(error) = self.stream.exchange(net) {
                        return Err(DialError::Layer {
                            host: self.target.host.clone(),
                            error,
                        });
                    }
                    if self.stream.layer.is_ready() {
                        self.state = DialState::Open;
                    } else if !self.stream.is_open(net) {
                        return Err(DialError::ClosedInHandshake {
                            host: self.target.host.clone(),
                        });
                    } else {
                        return Ok(DialStatus::Pending);
                    }
                }
                DialState::Open => {
                    self.state = DialState::Open;
                    return Ok(DialStatus::Open);
                }
            }
        }
    }

    /// The stream, once [`Dial::poll`] said [`DialStatus::Open`].
    pub fn stream(&mut self) -> Option<&mut Stream> {
        match self.state {
            DialState::Open => Some(&mut self.stream),
            _ => None,
        }
    }

    /// Describes the target for messages: `host:port`.
    pub fn describe(&self) -> String {
        format!("{}:{}", self.target.host, self.target.port)
    }
}
