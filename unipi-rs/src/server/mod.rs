//! The listening side: a bounded pool of smoltcp TCP sockets per port, and
//! for each accepted connection a [`conn::Conn`] (a [`Stream`] with TLS on
//! the HTTPS port, and an HTTP connection).
//!
//! Every socket of a pool listens while idle; smoltcp hands an incoming SYN
//! to a listening socket. When all sockets of a pool are busy, new
//! connections are refused (smoltcp answers with RST) — overload never
//! costs more memory than the pool was sized for.

mod conn;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use log::{debug, info, warn};
use rustls::ServerConfig;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use self::conn::{Conn, Visit, Visited};
use crate::http::{self, HookOutcome, HttpConfig, Role};
use crate::net::Net;
use crate::site::Site;
use crate::tls::ServerTls;
use crate::transport::{Layer, Plain, Stream};

/// TCP receive buffer per connection (ciphertext; a TLS record is ≤ 16 KiB).
const RX_BUFFER: usize = 16 * 1024;
/// TCP send buffer per connection.
const TX_BUFFER: usize = 32 * 1024;

/// Counters for the status log and the benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections that ended with a TLS or transport error.
    pub failed: u64,
}

/// A webhook request that wants a pull: `(port index, socket)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookRequest {
    port: usize,
    socket: SocketHandle,
}

/// One listening port and its connections.
struct Port {
    port: u16,
    role: Role,
    tls: Option<Arc<ServerConfig>>,
    /// Listening sockets and sockets whose connection was torn down.
    idle: Vec<SocketHandle>,
    conns: Vec<Conn>,
    refused_logged: bool,
    /// Sockets aborted during the current poll. They listen again only at
    /// the next poll, once the interface has sent their RST: `listen()`
    /// forgets the peer, and with it the pending reset, which would leave
    /// the peer believing the connection is still open.
    resetting: Vec<SocketHandle>,
}

/// Both ports.
pub struct Server {
    ports: Vec<Port>,
    http_cfg: Arc<HttpConfig>,
    stats: ServerStats,
    scratch: Vec<u8>,
}

/// The ports to open.
pub struct Listen {
    /// Plain HTTP (redirects to HTTPS when `tls` is set).
    pub port: u16,
    /// HTTPS.
    pub https_port: u16,
    /// The TLS configuration; `None`: plain HTTP serves the site.
    pub tls: Option<Arc<ServerConfig>>,
    /// Connections per port (the HTTP port of an HTTPS server gets a
    /// quarter, 2 to 16).
    pub max_connections: usize,
}

impl Server {
    /// Opens the listening ports: HTTPS on `https_port` when `tls` is
    /// given (with plain HTTP on `port` redirecting to it), otherwise plain
    /// HTTP serving the site on `port`.
    pub fn new(net: &mut Net, http_cfg: Arc<HttpConfig>, listen: Listen) -> Server {
        let mut ports = Vec::new();
        let max = listen.max_connections.max(1);
        let (port, https_port) = (listen.port, listen.https_port);
        match listen.tls {
            Some(cfg) => {
                let site = Role::Site { secure: true };
                ports.push(Port::new(net, https_port, site, Some(cfg), max));
                let redirect_slots = (max / 4).clamp(2, 16);
                ports.push(Port::new(net, port, Role::Redirect, None, redirect_slots));
                info!(
                    "serving HTTPS on port {https_port} (up to {max} connections), redirecting HTTP on port {port}"
                );
            }
            None => {
                let site = Role::Site { secure: false };
                ports.push(Port::new(net, port, site, None, max));
                warn!("no TLS certificate: serving plain HTTP on port {port}");
            }
        }
        Server {
            ports,
            http_cfg,
            stats: ServerStats::default(),
            scratch: vec![0; 16 * 1024],
        }
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Number of open connections.
    pub fn open_connections(&self) -> usize {
        self.ports.iter().map(|p| p.conns.len()).sum()
    }

    /// Moves data between sockets, TLS and HTTP for every connection;
    /// returns the webhook requests that appeared.
    pub fn poll(
        &mut self,
        net: &mut Net,
        site: Option<&Site>,
        now: Instant,
        unix: u64,
    ) -> Vec<HookRequest> {
        let mut hooks = Vec::new();
        for (pi, port) in self.ports.iter_mut().enumerate() {
            // The interface was polled since the last call: the RSTs of
            // the sockets aborted then are out.
            port.resetting.clear();
            port.accept(net, &self.http_cfg, now, &mut self.stats);
            let mut visit = Visit {
                net,
                site,
                now,
                unix,
                scratch: &mut self.scratch,
            };
            let mut i = 0;
            while i < port.conns.len() {
                match port.conns[i].visit(&mut visit) {
                    Visited::Continue => i += 1,
                    Visited::HookRequested => {
                        hooks.push(HookRequest {
                            port: pi,
                            socket: port.conns[i].stream().socket(),
                        });
                        i += 1;
                    }
                    Visited::Finished { failed } => {
                        let c = port.conns.swap_remove(i);
                        self.stats.failed += u64::from(failed);
                        port.recycle(visit.net, c.stream().socket());
                    }
                }
            }
            port.relisten(net);
        }
        hooks
    }

    /// Answers a webhook request once the pull has finished.
    pub fn complete_hook(
        &mut self,
        req: HookRequest,
        outcome: HookOutcome,
        now: Instant,
        unix: u64,
    ) {
        if let Some(c) = self.ports.get_mut(req.port).and_then(|p| {
            p.conns
                .iter_mut()
                .find(|c| c.stream().socket() == req.socket)
        }) {
            c.complete_hook(outcome, now, unix);
        }
    }

    /// The earliest time a connection needs attention without input.
    pub fn deadline(&self) -> Option<Instant> {
        self.ports
            .iter()
            .flat_map(|p| p.conns.iter())
            .filter_map(Conn::deadline)
            .min()
    }
}

impl Port {
    fn new(
        net: &mut Net,
        port: u16,
        role: Role,
        tls: Option<Arc<ServerConfig>>,
        size: usize,
    ) -> Port {
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size {
            let h = net.add_tcp(vec![0; RX_BUFFER], vec![0; TX_BUFFER]);
            let s = net.tcp(h);
            s.set_nagle_enabled(false);
            s.set_ack_delay(None);
            idle.push(h);
        }
        let mut p = Port {
            port,
            role,
            tls,
            idle,
            conns: Vec::with_capacity(size),
            refused_logged: false,
            resetting: Vec::new(),
        };
        p.relisten(net);
        p
    }

    /// Every idle socket that is fully closed listens again.
    fn relisten(&mut self, net: &mut Net) {
        for &h in &self.idle {
            if self.resetting.contains(&h) {
                continue;
            }
            let s = net.tcp(h);
            if s.state() == tcp::State::TimeWait {
                // We closed first; the peer is done. Free the slot now.
                s.abort();
            }
            if s.state() == tcp::State::Closed && s.listen(self.port).is_err() {
                warn!("cannot listen on port {}", self.port);
            }
        }
    }

    /// Turns idle sockets that received a connection into connections.
    fn accept(
        &mut self,
        net: &mut Net,
        http_cfg: &Arc<HttpConfig>,
        now: Instant,
        stats: &mut ServerStats,
    ) {
        let mut i = 0;
        while i < self.idle.len() {
            let h = self.idle[i];
            let s = net.tcp(h);
            // A socket becomes a connection once the handshake completed (in
            // SynReceived it may still fall back to listening).
            if matches!(
                s.state(),
                tcp::State::Listen
                    | tcp::State::SynReceived
                    | tcp::State::Closed
                    | tcp::State::TimeWait
            ) {
                i += 1;
                continue;
            }
            self.idle.swap_remove(i);
            let layer: Box<dyn Layer> = match &self.tls {
                Some(cfg) => match ServerTls::server(cfg.clone()) {
                    Ok(t) => Box::new(t),
                    Err(e) => {
                        warn!("TLS session setup failed: {e}");
                        s.abort();
                        self.resetting.push(h);
                        self.idle.push(h);
                        continue;
                    }
                },
                None => Box::new(Plain),
            };
            if let Some(ep) = s.remote_endpoint() {
                debug!("accepted {ep} on port {}", self.port);
            }
            stats.accepted += 1;
            self.refused_logged = false;
            let http = http::Connection::new(http_cfg.clone(), self.role, now);
            self.conns.push(Conn::new(Stream::new(h, layer), http, now));
        }
        if self.idle.is_empty() && !self.refused_logged {
            warn!(
                "port {}: all {} connections busy; refusing new ones",
                self.port,
                self.conns.len()
            );
            self.refused_logged = true;
        }
    }

    fn recycle(&mut self, net: &mut Net, h: SocketHandle) {
        let s = net.tcp(h);
        if s.state() != tcp::State::Closed && s.state() != tcp::State::TimeWait {
            s.abort();
            self.resetting.push(h);
        }
        self.idle.push(h);
    }
}
