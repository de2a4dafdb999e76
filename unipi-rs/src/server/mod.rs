//! The listening side: ports, their connections, and who gets a connection
//! when they run short.
//!
//! - `listener`: standby listening sockets per port, refilled as they are
//!   taken, so bursts of connects are queued rather than reset;
//! - `table`: the connections, the wake-ups smoltcp delivers for them and
//!   their timers, so a poll visits only connections with something to do;
//! - `conn`: one connection, a [`Stream`] and an HTTP connection.
//!
//! # Capacity and fairness
//!
//! Every connection's memory is allocated when it is accepted and given
//! back when it ends: its socket (buffers sized from the memory budget when
//! the socket was armed, see `listener::Buffers`), its TLS session and
//! HTTP state (both trimmed to nothing while idle). At most
//! `max_connections` are open. When a new connection arrives at the limit,
//! or the heap passes its high-water mark, the server closes the most
//! expendable connections first (`conn::Standing`): (for memory) those
//! already closing, then idle keep-alive connections (oldest first, closed
//! in order), then handshakes and requests still arriving (oldest first: a
//! legitimate client sends its request at once, so the oldest is the one
//! that dribbles), then clients reading their responses below 64 KiB/s
//! (slowest first), and last — only to admit a new client — responses that
//! have been streaming for over two seconds (longest first): short requests
//! go before bulk transfers — then responses begun less than a second ago
//! (oldest first), and very last handshakes and requests begun less than
//! 250 ms ago (newest first). Webhook requests waiting for their pull are
//! never chosen; when nothing can be closed, the new connection is refused. A client that reads its response more slowly
//! than `min_send_rate` is dropped whatever the load.
//!
//! What is still proportional to the number of connections, all of it in
//! smoltcp 0.14 except the last: `Interface::poll_egress` walks every
//! socket in each pass (a loop iteration that answers a request makes two:
//! one that sends, one that finds nothing more; see `Net::poll_with`),
//! `poll_at` walks every socket before the loop waits, each received TCP
//! segment is matched by scanning the socket set until a socket accepts
//! it, and `SocketSet::add` looks for the first free slot; choosing whom to
//! evict scans the table once per admission round under pressure. Measured
//! in-process (unipi-rs/tests/capacity.rs, native, perf): with 5,000 idle
//! connections a loop iteration that answers one request takes ≈ 0.3 ms
//! against ≈ 10 µs with none, 83 % of it in the egress walk and 8 % in
//! `poll_at` (the ingress scan and our own code stay below 1 %). Sockets
//! kept outside one flat set (a 4-tuple index, and egress only for sockets
//! with something to send) would remove it; the server's own work per
//! iteration follows the connections that were woken or whose timer is
//! due.

mod conn;
mod listener;
mod table;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use log::{debug, info, warn};
use rustls::ServerConfig;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use self::conn::{Conn, End, Handshake, Standing, Visit};
use self::listener::{Accepted, Buffers, Listener};
use self::table::{ConnId, Table};
use crate::http::{self, HookOutcome, HttpConfig, Role};
use crate::net::Net;
use crate::observe::access::AccessSink;
use crate::platform::HeapStats;
use crate::site::Site;
use crate::tls::ServerTls;
use crate::transport::{Layer, Plain, Stream};

/// Listening sockets kept ready on the HTTPS (or only) port.
const BACKLOG: usize = 64;
/// Listening sockets kept ready on the redirecting HTTP port.
const REDIRECT_BACKLOG: usize = 16;
/// Listening sockets kept ready on the metrics port (one scraper).
const METRICS_BACKLOG: usize = 2;
/// Connections whose sockets get [`Buffers::GENEROUS`] (while the heap is
/// less than half full); the rest get [`Buffers::LEAN`]. 256 of them took
/// 12 MiB of the default heap, a tenth of it: 64 still cover a benchmark's
/// 32 busy connections.
const GENEROUS_SLOTS: usize = 64;
/// A client reading faster than this (bytes per second) is never evicted.
const HEALTHY_RATE: u64 = 64 * 1024;
/// Heap use (per mille of its size) above which idle connections are
/// closed, and new sockets get lean buffers.
const HEAP_HIGH: usize = 850;
/// Heap use (per mille) above which new connections are refused.
const HEAP_CRITICAL: usize = 950;
/// Heap cost of an idle TLS connection with lean buffers: socket buffers
/// (4 KiB), smoltcp socket (≈ 0.5 KiB), rustls state (≈ 3.5 KiB), our own
/// state (≈ 1 KiB), with the growth slack of the socket set. Measured
/// 8.6–8.8 KiB per connection added by unipi-rs/tests/capacity.rs (200 →
/// 600 and 1,000 → 10,000 idle connections; docs/bench.md; its quick test
/// fails when a connection costs more); sets the default capacity.
pub const IDLE_CONNECTION_COST: usize = 9 * 1024;

/// The default `max_connections` for a heap of which `used` bytes are taken
/// at boot: what fits below the mark where idle connections start being
/// closed (`HEAP_HIGH`), less the generous buffers and the standby
/// sockets, at [`IDLE_CONNECTION_COST`] each (11,513 on the subject with
/// the default 128 MiB of RAM). At least 64.
pub fn default_max_connections(heap: HeapStats) -> usize {
    let generous = Buffers::GENEROUS.rx + Buffers::GENEROUS.tx;
    let reserve = (GENEROUS_SLOTS + BACKLOG + REDIRECT_BACKLOG) * generous;
    let budget = (heap.size / 1000 * HEAP_HIGH)
        .saturating_sub(heap.used)
        .saturating_sub(reserve);
    (budget / IDLE_CONNECTION_COST).max(64)
}

/// Counters for the status line and the metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused (RST) because nothing could make room.
    pub refused: u64,
    /// Idle keep-alive connections closed to make room.
    pub evicted_idle: u64,
    /// Stalled, slow or closing connections reset to make room.
    pub evicted_slow: u64,
    /// Connections dropped for reading below the minimum send rate.
    pub too_slow: u64,
    /// Connections that ended with a TLS or transport error.
    pub failed: u64,
    /// TLS handshakes.
    pub tls: TlsStats,
}

/// TLS handshakes, by how they ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TlsStats {
    /// Completed with a full handshake.
    pub full: u64,
    /// Completed by resuming a session from a ticket.
    pub resumed: u64,
    /// Failed with a TLS error (the client was sent an alert).
    pub failed_error: u64,
    /// Not completed within the handshake timeout.
    pub failed_timeout: u64,
    /// The client closed or reset the connection first.
    pub failed_closed: u64,
}

impl TlsStats {
    fn count(&mut self, h: Handshake) {
        match h {
            Handshake::Full => self.full += 1,
            Handshake::Resumed => self.resumed += 1,
            Handshake::Error => self.failed_error += 1,
            Handshake::Timeout => self.failed_timeout += 1,
            Handshake::Closed => self.failed_closed += 1,
        }
    }
}

/// What runs short when connections must be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shortage {
    /// A new connection arrived at `max_connections`.
    Connections,
    /// The heap passed its high-water mark.
    Memory,
}

/// A webhook request that wants a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookRequest(ConnId);

/// A metrics request that wants the exposition ([`Server::complete_metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsRequest(ConnId);

/// The ports to open and the limits.
pub struct Listen {
    /// Plain HTTP (redirects to HTTPS when `tls` is set).
    pub port: u16,
    /// HTTPS.
    pub https_port: u16,
    /// The TLS configuration; `None`: plain HTTP serves the site.
    pub tls: Option<Arc<ServerConfig>>,
    /// Most open connections (both ports together).
    pub max_connections: usize,
    /// Minimum bytes per second a client must read while a response waits
    /// for it (0: none).
    pub min_send_rate: u64,
    /// Plain HTTP serving only the metrics (`--metrics-port`).
    pub metrics_port: Option<u16>,
}

/// The time and the machine's state at one event-loop iteration.
#[derive(Clone, Copy, Debug)]
pub struct Tick {
    /// Monotonic time.
    pub now: Instant,
    /// Wall clock, unix seconds.
    pub unix: u64,
    /// Heap figures.
    pub heap: HeapStats,
}

/// What a poll produced.
#[derive(Debug, Default)]
pub struct Polled {
    /// Webhook requests that appeared.
    pub hooks: Vec<HookRequest>,
    /// Metrics requests that appeared.
    pub metrics: Vec<MetricsRequest>,
    /// Some connection has more to do right away: poll again without
    /// waiting for input.
    pub busy: bool,
}

/// The open connections and their bookkeeping.
#[derive(Default)]
struct Open {
    table: Table<Conn>,
    /// Connections that are closing (they do not count against the limit).
    closing: usize,
    /// Connections with generous buffers.
    generous: usize,
    /// Sockets of ended connections: removed once the interface has sent
    /// their RST or FIN.
    reaping: Vec<SocketHandle>,
}

impl Open {
    /// Connections that count against the limit.
    fn active(&self) -> usize {
        self.table.len() - self.closing
    }

    /// Adds an accepted connection.
    fn insert(&mut self, c: Conn) {
        self.generous += usize::from(c.generous);
        self.table.insert(c);
    }

    /// Removes connection `id`; its socket goes once the interface has sent
    /// what it still has to (a RST if the connection did not close).
    fn end(&mut self, net: &mut Net, id: ConnId) {
        let Some(c) = self.table.remove(id) else {
            return;
        };
        self.closing -= usize::from(c.is_closing());
        self.generous -= usize::from(c.generous);
        self.reap(net, c.stream().socket());
    }

    /// Aborts `socket` unless it is closed, and removes it after the next
    /// interface poll.
    fn reap(&mut self, net: &mut Net, socket: SocketHandle) {
        let s = net.tcp(socket);
        if !matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait) {
            s.abort();
        }
        self.reaping.push(socket);
    }
}

/// Both ports and their connections.
pub struct Server {
    listeners: Vec<Listener>,
    open: Open,
    http_cfg: Arc<HttpConfig>,
    max_connections: usize,
    min_send_rate: u64,
    stats: ServerStats,
    /// The heap as of the last poll (for the listeners' buffer sizes).
    heap: HeapStats,
    refused_logged: bool,
    scratch: Vec<u8>,
    visits: Vec<ConnId>,
    again: Vec<ConnId>,
    accepted: Vec<Accepted>,
}

impl Server {
    /// Opens the listening ports: HTTPS on `https_port` when `tls` is
    /// given (with plain HTTP on `port` redirecting to it), otherwise plain
    /// HTTP serving the site on `port`.
    pub fn new(net: &mut Net, http_cfg: Arc<HttpConfig>, listen: Listen) -> Server {
        let (port, https_port) = (listen.port, listen.https_port);
        let max = listen.max_connections.max(1);
        let mut listeners = match listen.tls {
            Some(cfg) => {
                info!(
                    "serving HTTPS on port {https_port}, redirecting HTTP on port {port}; up to {max} connections"
                );
                let site = Role::Site { secure: true };
                vec![
                    Listener::new(https_port, site, Some(cfg), BACKLOG),
                    Listener::new(port, Role::Redirect, None, REDIRECT_BACKLOG),
                ]
            }
            None => {
                warn!(
                    "no TLS certificate: serving plain HTTP on port {port}; up to {max} connections"
                );
                let site = Role::Site { secure: false };
                vec![Listener::new(port, site, None, BACKLOG)]
            }
        };
        if let Some(m) = listen.metrics_port {
            info!("serving metrics on port {m} (plain HTTP, /metrics)");
            listeners.push(Listener::new(m, Role::Metrics, None, METRICS_BACKLOG));
        }
        let mut server = Server {
            listeners,
            open: Open::default(),
            http_cfg,
            max_connections: max,
            min_send_rate: listen.min_send_rate,
            stats: ServerStats::default(),
            heap: HeapStats::default(),
            refused_logged: false,
            scratch: vec![0; 16 * 1024],
            visits: Vec::new(),
            again: Vec::new(),
            accepted: Vec::new(),
        };
        server.replenish(net, Instant::ZERO);
        server
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Number of open connections (closing ones included).
    pub fn open_connections(&self) -> usize {
        self.open.table.len()
    }

    fn heap_above(&self, per_mille: usize) -> bool {
        self.heap.size > 0 && self.heap.used > self.heap.size / 1000 * per_mille
    }

    /// The buffers for sockets armed now.
    fn buffers(&self) -> Buffers {
        if self.open.generous < GENEROUS_SLOTS && !self.heap_above(500) {
            Buffers::GENEROUS
        } else {
            Buffers::LEAN
        }
    }

    /// Keeps every port's listening sockets armed; the interface calls this
    /// after each packet that changed a socket's state.
    pub fn replenish(&mut self, net: &mut Net, now: Instant) {
        let buffers = self.buffers();
        let room = if self.heap_above(HEAP_CRITICAL) {
            0
        } else {
            self.max_connections.saturating_sub(self.open.active())
        };
        for l in &mut self.listeners {
            l.replenish(net, now, buffers, l.backlog.max(room));
        }
    }

    /// Accepts new connections, then visits every connection that was woken
    /// or whose timer is due. The records of responses that finished go to
    /// `access`.
    pub fn poll(
        &mut self,
        net: &mut Net,
        site: Option<&Site>,
        tick: &Tick,
        access: &mut dyn AccessSink,
    ) -> Polled {
        self.heap = tick.heap;
        // The interface was polled since the sockets were aborted: their
        // RSTs are out.
        for h in self.open.reaping.drain(..) {
            net.remove_tcp(h);
        }
        self.accept(net, tick.now, access);
        if self.heap_above(HEAP_HIGH) {
            let want = (self.open.table.len() / 16).max(1);
            self.evict(net, tick.now, want, Shortage::Memory, access);
        }

        let mut polled = Polled::default();
        let mut visits = core::mem::take(&mut self.visits);
        self.open.table.take_ready(&mut visits);
        self.open.table.take_due(tick.now, &mut visits);
        visits.append(&mut self.again);
        visits.sort_unstable();
        visits.dedup();
        let mut visit = Visit {
            net,
            site,
            now: tick.now,
            unix: tick.unix,
            scratch: &mut self.scratch,
            min_send_rate: self.min_send_rate,
            http_cfg: &self.http_cfg,
            access,
        };
        for &id in &visits {
            let Some(c) = self.open.table.get_mut(id) else {
                continue;
            };
            let was_closing = c.is_closing();
            let v = c.visit(&mut visit);
            if v.hook {
                polled.hooks.push(HookRequest(id));
            }
            if v.metrics {
                polled.metrics.push(MetricsRequest(id));
            }
            if let Some(h) = v.handshake {
                self.stats.tls.count(h);
            }
            match v.end {
                Some(end) => {
                    match end {
                        End::Closed => {}
                        End::Failed => self.stats.failed += 1,
                        End::TooSlow => self.stats.too_slow += 1,
                    }
                    self.open.end(visit.net, id);
                }
                None => {
                    if !was_closing && c.is_closing() {
                        self.open.closing += 1;
                    }
                    if v.busy {
                        polled.busy = true;
                        self.again.push(id);
                    }
                    let socket = c.stream().socket();
                    let deadline = c.deadline();
                    self.open.table.set_timer(id, deadline);
                    if let Some(w) = self.open.table.waker(id) {
                        let s = visit.net.tcp(socket);
                        s.register_recv_waker(w);
                        s.register_send_waker(w);
                    }
                }
            }
        }
        self.visits = visits;
        self.replenish(net, tick.now);
        polled.busy |= self.open.table.has_ready();
        polled
    }

    /// Turns harvested sockets into connections, making room if needed.
    fn accept(&mut self, net: &mut Net, now: Instant, access: &mut dyn AccessSink) {
        let mut accepted = core::mem::take(&mut self.accepted);
        for (index, l) in self.listeners.iter_mut().enumerate() {
            l.harvest(net, now, index, &mut accepted);
        }
        if accepted.is_empty() {
            self.accepted = accepted;
            return;
        }
        let over = (self.open.active() + accepted.len()).saturating_sub(self.max_connections);
        if over > 0 {
            self.evict(net, now, over, Shortage::Connections, access);
        }
        if self.heap_above(HEAP_CRITICAL) {
            self.evict(net, now, accepted.len(), Shortage::Memory, access);
        }
        for a in accepted.drain(..) {
            if self.open.active() >= self.max_connections || self.heap_above(HEAP_CRITICAL) {
                self.open.reap(net, a.socket);
                self.stats.refused += 1;
                if !self.refused_logged {
                    warn!(
                        "{} connections open and none can be closed: refusing new ones",
                        self.open.table.len()
                    );
                    self.refused_logged = true;
                }
                continue;
            }
            let l = &self.listeners[a.listener];
            let layer: Box<dyn Layer> = match &l.tls {
                Some(cfg) => match ServerTls::server(cfg.clone()) {
                    Ok(t) => Box::new(t),
                    Err(e) => {
                        warn!("TLS session setup failed: {e}");
                        self.open.reap(net, a.socket);
                        continue;
                    }
                },
                None => Box::new(Plain),
            };
            let peer = net.tcp(a.socket).remote_endpoint();
            if let Some(ep) = peer {
                debug!("accepted {ep} on port {}", l.port);
            }
            self.stats.accepted += 1;
            self.refused_logged = false;
            let mut http = http::Connection::new(self.http_cfg.clone(), l.role, now);
            http.set_peer(peer.map(|ep| ep.addr));
            let mut c = Conn::new(Stream::new(a.socket, layer), http, now);
            c.generous = a.buffers == Buffers::GENEROUS;
            self.open.insert(c);
        }
        self.accepted = accepted;
    }

    /// Closes up to `want` of the most expendable connections (see the
    /// module documentation).
    fn evict(
        &mut self,
        net: &mut Net,
        now: Instant,
        want: usize,
        shortage: Shortage,
        access: &mut dyn AccessSink,
    ) {
        let mut candidates: Vec<(Standing, ConnId)> = self
            .open
            .table
            .iter()
            .filter_map(|(id, c)| {
                let s = c.standing(now, HEALTHY_RATE);
                let expendable = match s {
                    Standing::Protected => false,
                    // Closing connections hold no slot, only memory; a
                    // healthy response gives back memory only as it ends.
                    Standing::Closing { .. } => shortage == Shortage::Memory,
                    Standing::Long { .. } | Standing::Starting { .. } | Standing::Fresh { .. } => {
                        shortage == Shortage::Connections
                    }
                    Standing::Idle { .. } | Standing::Stalled { .. } | Standing::Slow { .. } => {
                        true
                    }
                };
                expendable.then_some((s, id))
            })
            .collect();
        candidates.sort_unstable();
        for (standing, id) in candidates.into_iter().take(want) {
            match standing {
                Standing::Idle { .. } => {
                    if let Some(c) = self.open.table.get_mut(id) {
                        c.close_idle(net, now);
                        self.open.closing += 1;
                        self.stats.evicted_idle += 1;
                        self.open.table.wake(id);
                    }
                }
                _ => {
                    self.stats.evicted_slow += 1;
                    if let Some(c) = self.open.table.get_mut(id) {
                        c.abandon(now, access);
                    }
                    self.open.end(net, id);
                }
            }
        }
    }

    /// Answers a webhook request once the pull has finished.
    pub fn complete_hook(
        &mut self,
        req: HookRequest,
        outcome: HookOutcome,
        now: Instant,
        unix: u64,
    ) {
        if let Some(c) = self.open.table.get_mut(req.0) {
            c.complete_hook(outcome, now, unix);
            self.open.table.wake(req.0);
        }
    }

    /// Answers a metrics request with `exposition`.
    pub fn complete_metrics(
        &mut self,
        req: MetricsRequest,
        exposition: alloc::string::String,
        now: Instant,
        unix: u64,
    ) {
        if let Some(c) = self.open.table.get_mut(req.0) {
            c.complete_metrics(exposition, now, unix);
            self.open.table.wake(req.0);
        }
    }

    /// True when a connection was woken since the last poll.
    pub fn has_ready(&self) -> bool {
        self.open.table.has_ready()
    }

    /// The earliest time a connection needs attention without input.
    pub fn deadline(&self) -> Option<Instant> {
        self.open.table.next_timer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subject's heap with the default 128 MiB of RAM, and what the
    /// default site and TLS take at boot (status lines of a QEMU boot).
    const SUBJECT_HEAP: usize = 133_169_152;

    #[test]
    fn the_default_heap_holds_ten_thousand_connections() {
        let heap = HeapStats {
            size: SUBJECT_HEAP,
            used: 4 << 20,
            peak: 0,
        };
        let max = default_max_connections(heap);
        assert!(max >= 10_000, "{max}");
        // And they fit below the eviction mark at the measured cost.
        assert!(heap.used + max * IDLE_CONNECTION_COST <= SUBJECT_HEAP / 1000 * HEAP_HIGH);
    }

    #[test]
    fn a_small_heap_still_gets_a_pool() {
        let heap = HeapStats {
            size: 8 << 20,
            used: 7 << 20,
            peak: 0,
        };
        assert_eq!(default_max_connections(heap), 64);
    }
}
