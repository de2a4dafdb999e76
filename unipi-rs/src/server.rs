//! The listening side: a bounded pool of smoltcp TCP sockets per port, and
//! for each accepted connection a TLS session (HTTPS port) and an HTTP
//! connection that reads from and writes to it.
//!
//! Every socket of a pool listens while idle; smoltcp hands an incoming SYN
//! to a listening socket. When all sockets of a pool are busy, new
//! connections are refused (smoltcp answers with RST) — overload never
//! costs more memory than the pool was sized for.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use log::{debug, info, warn};
use rustls::ServerConfig;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};

use crate::http::{self, Event, HookOutcome, HttpConfig, Role};
use crate::net::Net;
use crate::site::Site;
use crate::tls::ServerTls;

/// TCP receive buffer per connection (ciphertext; a TLS record is ≤ 16 KiB).
const RX_BUFFER: usize = 16 * 1024;
/// TCP send buffer per connection.
const TX_BUFFER: usize = 32 * 1024;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may linger before it is reset.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Output below this size is gathered across chunks into one TLS record.
const COALESCE: usize = 4096;

/// What a connection is doing.
enum Phase {
    /// Exchanging requests and responses.
    Open,
    /// We asked to close (TLS close_notify queued, then FIN); drop once
    /// everything is sent or the linger time is over.
    Closing { since: Instant },
}

struct Conn {
    socket: SocketHandle,
    tls: Option<ServerTls>,
    http: http::Connection,
    phase: Phase,
    accepted: Instant,
    /// A webhook request of this connection is waiting for the pull.
    hook_pending: bool,
}

/// One listening port and its connections.
struct Pool {
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

/// Counters for the status log and the benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections that ended with a TLS or transport error.
    pub failed: u64,
}

/// Both ports.
pub struct Server {
    pools: Vec<Pool>,
    http_cfg: Arc<HttpConfig>,
    stats: ServerStats,
    scratch: Vec<u8>,
}

/// A webhook request that wants a pull: `(pool index, socket)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookRequest {
    pool: usize,
    socket: SocketHandle,
}

impl Server {
    /// Opens the listening pools: HTTPS on `https_port` when `tls` is
    /// given (with plain HTTP on `port` redirecting to it), otherwise plain
    /// HTTP serving the site on `port`.
    pub fn new(
        net: &mut Net,
        http_cfg: Arc<HttpConfig>,
        tls: Option<Arc<ServerConfig>>,
        port: u16,
        https_port: u16,
        max_connections: usize,
    ) -> Server {
        let mut pools = Vec::new();
        let max = max_connections.max(1);
        match tls {
            Some(cfg) => {
                pools.push(Pool::new(
                    net,
                    https_port,
                    Role::Site { secure: true },
                    Some(cfg),
                    max,
                ));
                pools.push(Pool::new(
                    net,
                    port,
                    Role::Redirect,
                    None,
                    (max / 4).clamp(2, 16),
                ));
                info!(
                    "serving HTTPS on port {https_port} (up to {max} connections), redirecting HTTP on port {port}"
                );
            }
            None => {
                pools.push(Pool::new(
                    net,
                    port,
                    Role::Site { secure: false },
                    None,
                    max,
                ));
                warn!("no TLS certificate: serving plain HTTP on port {port}");
            }
        }
        Server {
            pools,
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
        self.pools.iter().map(|p| p.conns.len()).sum()
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
        for (pi, pool) in self.pools.iter_mut().enumerate() {
            // The interface was polled since the last call: the RSTs of
            // the sockets aborted then are out.
            pool.resetting.clear();
            pool.accept(net, &self.http_cfg, now, &mut self.stats);
            let mut i = 0;
            while i < pool.conns.len() {
                let keep = drive(
                    &mut pool.conns[i],
                    net,
                    site,
                    now,
                    unix,
                    &mut self.scratch,
                    &mut hooks,
                    pi,
                );
                if keep {
                    i += 1;
                } else {
                    let c = pool.conns.swap_remove(i);
                    if c.tls.as_ref().is_some_and(|t| t.error().is_some()) {
                        self.stats.failed += 1;
                    }
                    pool.recycle(net, c.socket);
                }
            }
            pool.relisten(net);
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
        if let Some(c) = self
            .pools
            .get_mut(req.pool)
            .and_then(|p| p.conns.iter_mut().find(|c| c.socket == req.socket))
        {
            c.http.complete_hook(outcome, now, unix);
            c.hook_pending = false;
        }
    }

    /// The earliest time a connection needs attention without input.
    pub fn deadline(&self) -> Option<Instant> {
        self.pools
            .iter()
            .flat_map(|p| p.conns.iter())
            .filter_map(|c| {
                let hs = match &c.tls {
                    Some(t) if !t.is_established() => Some(c.accepted + HANDSHAKE_TIMEOUT),
                    _ => None,
                };
                let close = match c.phase {
                    Phase::Closing { since } => Some(since + CLOSE_TIMEOUT),
                    Phase::Open => None,
                };
                [c.http.deadline(), hs, close].into_iter().flatten().min()
            })
            .min()
    }
}

impl Pool {
    fn new(
        net: &mut Net,
        port: u16,
        role: Role,
        tls: Option<Arc<ServerConfig>>,
        size: usize,
    ) -> Pool {
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size {
            let rx = tcp::SocketBuffer::new(vec![0; RX_BUFFER]);
            let tx = tcp::SocketBuffer::new(vec![0; TX_BUFFER]);
            let mut s = tcp::Socket::new(rx, tx);
            s.set_nagle_enabled(false);
            s.set_ack_delay(None);
            idle.push(net.sockets.add(s));
        }
        let mut pool = Pool {
            port,
            role,
            tls,
            idle,
            conns: Vec::with_capacity(size),
            refused_logged: false,
            resetting: Vec::new(),
        };
        pool.relisten(net);
        pool
    }

    /// Every idle socket that is fully closed listens again.
    fn relisten(&mut self, net: &mut Net) {
        for &h in &self.idle {
            if self.resetting.contains(&h) {
                continue;
            }
            let s = net.sockets.get_mut::<tcp::Socket>(h);
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
            let s = net.sockets.get_mut::<tcp::Socket>(h);
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
            let tls = match &self.tls {
                Some(cfg) => match ServerTls::server(cfg.clone()) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        warn!("TLS session setup failed: {e}");
                        s.abort();
                        self.resetting.push(h);
                        self.idle.push(h);
                        continue;
                    }
                },
                None => None,
            };
            if let Some(ep) = s.remote_endpoint() {
                debug!("accepted {ep} on port {}", self.port);
            }
            stats.accepted += 1;
            self.refused_logged = false;
            self.conns.push(Conn {
                socket: h,
                tls,
                http: http::Connection::new(http_cfg.clone(), self.role, now),
                phase: Phase::Open,
                accepted: now,
                hook_pending: false,
            });
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
        let s = net.sockets.get_mut::<tcp::Socket>(h);
        if s.state() != tcp::State::Closed && s.state() != tcp::State::TimeWait {
            s.abort();
            self.resetting.push(h);
        }
        self.idle.push(h);
    }
}

/// Runs one connection; false when it is finished and its socket can be
/// recycled.
#[allow(clippy::too_many_arguments)]
fn drive(
    c: &mut Conn,
    net: &mut Net,
    site: Option<&Site>,
    now: Instant,
    unix: u64,
    scratch: &mut [u8],
    hooks: &mut Vec<HookRequest>,
    pool: usize,
) -> bool {
    let socket = net.sockets.get_mut::<tcp::Socket>(c.socket);
    if !socket.is_open() {
        // Reset by the peer, or fully closed.
        c.http.abort(now);
        return false;
    }
    if let Phase::Closing { since } = c.phase {
        // Lingering close: discard what the peer still sends (the rest of
        // an oversized request, records after a TLS error). Otherwise its
        // data fills our window, its FIN can never arrive, and the slot
        // stays taken until CLOSE_TIMEOUT.
        while socket.can_recv() {
            match socket.recv(|b| (b.len(), b.len())) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if let Some(t) = &mut c.tls {
            let _ = t.pump(&[]);
            t.write_to(socket);
        }
        let drained =
            c.tls.as_ref().is_none_or(|t| t.output().is_empty()) && socket.send_queue() == 0;
        // Send our FIN once everything is out: from Established, or from
        // CloseWait when the peer closed first (the common case for a
        // client that is done). Waiting for Established alone left such
        // sockets in CloseWait, holding a pool slot until CLOSE_TIMEOUT.
        if drained
            && matches!(
                socket.state(),
                tcp::State::Established | tcp::State::CloseWait
            )
        {
            socket.close();
        }
        if now >= since + CLOSE_TIMEOUT {
            return false;
        }
        return !matches!(socket.state(), tcp::State::Closed | tcp::State::TimeWait);
    }

    // 1. Input: socket -> (TLS) -> HTTP.
    match &mut c.tls {
        Some(t) => {
            t.read_from(socket);
            if t.pump(&[]).is_err() {
                if let Some(e) = t.error() {
                    debug!("TLS error: {e}");
                }
                // rustls queued an alert if it could; send it, then close.
                t.write_to(socket);
                c.http.abort(now);
                c.phase = Phase::Closing { since: now };
                return true;
            }
            if !t.is_established() && now >= c.accepted + HANDSHAKE_TIMEOUT {
                debug!("TLS handshake timed out");
                c.http.abort(now);
                return false;
            }
            let plain = t.plaintext();
            if !plain.is_empty() {
                let n = c.http.receive(plain, now);
                t.consume_plaintext(n);
            }
        }
        None => {
            if socket.can_recv() {
                let http = &mut c.http;
                let _ = socket.recv(|buf| {
                    let n = http.receive(buf, now);
                    (n, ())
                });
            }
        }
    }

    // 2. Process, 3. output, until nothing moves.
    let mut failed = false;
    for _ in 0..16 {
        while let Some(ev) = c.http.poll(site, now, unix) {
            match ev {
                Event::HookRequested => {
                    c.hook_pending = true;
                    hooks.push(HookRequest {
                        pool,
                        socket: c.socket,
                    });
                }
            }
        }
        let moved = match &mut c.tls {
            Some(t) => {
                let mut moved = 0;
                loop {
                    let out = c.http.output();
                    if out.is_empty() {
                        break;
                    }
                    let n = if out.len() >= COALESCE {
                        t.pump(out)
                    } else {
                        let len = c.http.copy_output(scratch);
                        t.pump(&scratch[..len])
                    };
                    match n {
                        Ok(0) => break,
                        Ok(n) => {
                            c.http.consume(n);
                            moved += n;
                        }
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                    t.write_to(socket);
                }
                t.write_to(socket);
                moved
            }
            None => {
                let mut moved = 0;
                while socket.can_send() {
                    let out = c.http.output();
                    if out.is_empty() {
                        break;
                    }
                    match socket.send_slice(out) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            c.http.consume(n);
                            moved += n;
                        }
                    }
                }
                moved
            }
        };
        if moved == 0 || failed {
            break;
        }
    }
    if failed {
        c.http.abort(now);
        c.phase = Phase::Closing { since: now };
        return true;
    }

    // Feed leftover plaintext that did not fit before processing.
    if let Some(t) = &mut c.tls {
        let plain = t.plaintext();
        if !plain.is_empty() {
            let n = c.http.receive(plain, now);
            t.consume_plaintext(n);
        }
    }

    // 4. Time.
    if c.http.deadline().is_some_and(|d| now >= d) {
        c.http.on_timeout(now);
    }

    // 5. Close.
    let peer_done = !socket.may_recv() || c.tls.as_ref().is_some_and(|t| t.peer_closed());
    if c.http.wants_close() || (peer_done && c.http.output().is_empty() && !c.hook_pending) {
        begin_close(c, now);
    }
    true
}

fn begin_close(c: &mut Conn, now: Instant) {
    if let Some(t) = &mut c.tls {
        t.close();
        let _ = t.pump(&[]);
    }
    c.phase = Phase::Closing { since: now };
}
