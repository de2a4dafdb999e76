//! Capacity of the whole application (`unipi::run`) in-process: the server
//! on one end of a simulated Ethernet link, client smoltcp stacks with real
//! rustls clients on the other, the heap counted per side by a tracking
//! global allocator, time real and monotonic (so the server's per-poll work
//! shows in the latencies).
//!
//! Two client stacks share the link: the *horde* (many connections: a
//! burst, then idle keep-alive connections) and the *probe* (one busy
//! keep-alive client whose request latency is measured). The horde's stack
//! is not polled while the probe is measured, so its own per-poll work
//! (smoltcp walks every socket) stays out of the probe's latencies. The
//! platform reports the server's heap as the subject's (127 MiB,
//! `UNIPI_CAP_HEAP` to change), so the default capacity and the eviction
//! marks behave as on Muen.
//!
//! - `idle_connections_fit_the_estimate` (part of `cargo test`, about a
//!   second): 300 simultaneous connects are all served with no reset, 600
//!   idle keep-alive TLS connections are held and answer, and each one
//!   added (200 → 600) costs at most `unipi::server::IDLE_CONNECTION_COST`.
//! - `capacity` (`#[ignore]`; `make bench` runs it, docs/bench.md): the full
//!   measurement, sized by `UNIPI_CAP_IDLE` (default 10000),
//!   `UNIPI_CAP_BURST` (1000), `UNIPI_CAP_PROBE` (2000 requests),
//!   `UNIPI_CAP_LATENCY_AT` (5000), `UNIPI_CAP_CONCURRENCY` (128
//!   handshakes at a time), `UNIPI_CAP_TIMEOUT` (600 s), `UNIPI_CAP_PARAMS`
//!   (more boot parameters); `UNIPI_CAP_HISTOGRAM=1` prints the server's
//!   live allocations by size at the end. Prints one
//!   `capacity-result: {json}` line.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use common::{Link, Queue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, HardwareAddress, IpAddress, IpCidr, Ipv4Address,
};
use tracking_allocator::{
    AllocationGroupId, AllocationGroupToken, AllocationRegistry, AllocationTracker, Allocator,
};
use unipi::platform::{HeapStats, Platform};

// ------------------------------------------------------------ heap counting

#[global_allocator]
static GLOBAL: Allocator<std::alloc::System> = Allocator::system();

/// The allocation group of the server (0: not registered yet).
static SERVER_GROUP: AtomicUsize = AtomicUsize::new(0);
static SERVER_USED: AtomicIsize = AtomicIsize::new(0);
static SERVER_PEAK: AtomicIsize = AtomicIsize::new(0);

/// Counts the bytes (requested sizes, as the subject's allocator does:
/// platform-muen/subject/src/heap.rs) allocated by the server group and not
/// yet freed, whoever frees them.
struct ServerHeap;

/// With `UNIPI_CAP_HISTOGRAM=1`: the server's live allocations by address
/// (their sizes), for a breakdown of what an idle connection holds.
static LIVE: std::sync::Mutex<Option<std::collections::HashMap<usize, usize>>> =
    std::sync::Mutex::new(None);

impl AllocationTracker for ServerHeap {
    fn allocated(&self, addr: usize, size: usize, _: usize, group: AllocationGroupId) {
        if group.as_usize().get() == SERVER_GROUP.load(Ordering::Relaxed) {
            let now = SERVER_USED.fetch_add(size as isize, Ordering::Relaxed) + size as isize;
            SERVER_PEAK.fetch_max(now, Ordering::Relaxed);
            if let Some(m) = LIVE.lock().unwrap().as_mut() {
                m.insert(addr, size);
            }
        }
    }

    fn deallocated(
        &self,
        addr: usize,
        size: usize,
        _: usize,
        source: AllocationGroupId,
        _: AllocationGroupId,
    ) {
        if source.as_usize().get() == SERVER_GROUP.load(Ordering::Relaxed) {
            SERVER_USED.fetch_sub(size as isize, Ordering::Relaxed);
            if let Some(m) = LIVE.lock().unwrap().as_mut() {
                m.remove(&addr);
            }
        }
    }
}

/// Prints the server's live allocations by size (most bytes first).
fn histogram() {
    let live = LIVE.lock().unwrap();
    let Some(live) = live.as_ref() else { return };
    let mut by_size: std::collections::HashMap<usize, usize> = Default::default();
    for size in live.values() {
        *by_size.entry(*size).or_default() += 1;
    }
    let mut v: Vec<_> = by_size.into_iter().collect();
    v.sort_by_key(|(size, n)| std::cmp::Reverse(size * n));
    for (size, n) in v.iter().take(25) {
        eprintln!(
            "capacity: live server allocations of {size:>6} bytes: {n:>6} ({} bytes)",
            size * n
        );
    }
}

/// The subject's heap on Muen with the default 128 MiB of RAM: `ram` less
/// the 1 MiB stack (platform-muen/subject/src/entry.rs); the image lives in
/// its own regions. Override with `UNIPI_CAP_HEAP` (bytes).
const SUBJECT_HEAP: usize = 127 * 1024 * 1024;

fn server_used() -> usize {
    SERVER_USED.load(Ordering::Relaxed).max(0) as usize
}

// ------------------------------------------------------------ the link

const APP_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const HORDE_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 3);
const PROBE_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 4);
const HORDE_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 3]);
const PROBE_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 4]);
const HTTPS: u16 = 443;

/// A client smoltcp stack on the link.
struct Stack {
    iface: Interface,
    port: Link,
    sockets: SocketSet<'static>,
    next_port: u16,
}

impl Stack {
    fn new(mac: EthernetAddress, ip: Ipv4Address, to_app: Queue) -> Stack {
        let mut port = Link {
            rx: Queue::default(),
            tx: to_app,
        };
        let mut ic = IfaceConfig::new(HardwareAddress::Ethernet(mac));
        ic.random_seed = u64::from(mac.0[5]);
        let mut iface = Interface::new(ic, &mut port, Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv4(ip), 24)).unwrap();
        });
        Stack {
            iface,
            port,
            sockets: SocketSet::new(vec![]),
            next_port: 1024,
        }
    }

    fn poll(&mut self, now: Instant) {
        self.iface.poll(now, &mut self.port, &mut self.sockets);
    }

    /// A socket connecting to the application's HTTPS port.
    fn connect(&mut self, rx: usize, tx: usize) -> SocketHandle {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; rx]),
            tcp::SocketBuffer::new(vec![0; tx]),
        );
        s.set_nagle_enabled(false);
        s.set_ack_delay(None);
        self.next_port = self.next_port.checked_add(1).expect("out of client ports");
        s.connect(
            self.iface.context(),
            (IpAddress::Ipv4(APP_IP), HTTPS),
            self.next_port,
        )
        .unwrap();
        self.sockets.add(s)
    }
}

// ------------------------------------------------------------ one client

/// What a client connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// TCP and TLS handshakes.
    Opening,
    /// Request sent, response arriving.
    Waiting,
    /// Keep-alive, nothing to do.
    Idle,
    /// Closing after a `Connection: close` response.
    Closing,
    /// Over in order.
    Done,
    /// Reset (or failed) before it was served.
    Reset,
}

struct Client {
    socket: SocketHandle,
    tls: ClientConnection,
    phase: Phase,
    close: bool,
    /// Bytes of the current response.
    response: Vec<u8>,
    sent: Option<StdInstant>,
    /// Latency of the last complete response.
    last: Option<StdDuration>,
    served: u32,
}

/// Why client connections were reset (for the report).
static RESETS: std::sync::Mutex<Option<std::collections::BTreeMap<String, usize>>> =
    std::sync::Mutex::new(None);

fn note_reset(why: String) {
    *RESETS
        .lock()
        .unwrap()
        .get_or_insert_with(Default::default)
        .entry(why)
        .or_default() += 1;
}

/// Writes TLS records into a smoltcp socket's send buffer.
struct SocketWriter<'a>(&'a mut tcp::Socket<'static>);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.send_slice(buf) {
            Ok(0) | Err(_) => Err(std::io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Length of a complete HTTP/1.1 response at the start of `b` (status 200
/// and Content-Length required), if it is all there.
fn complete_response(b: &[u8]) -> Option<Result<usize, String>> {
    let end = b.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&b[..end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Some(Err(head.lines().next().unwrap_or("").to_string()));
    }
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())?;
    (b.len() >= end + len).then_some(Ok(end + len))
}

impl Client {
    fn new(socket: SocketHandle, cfg: &Arc<ClientConfig>, close: bool) -> Client {
        let name = ServerName::try_from("localhost").unwrap();
        Client {
            socket,
            tls: ClientConnection::new(cfg.clone(), name).unwrap(),
            phase: Phase::Opening,
            close,
            response: Vec::new(),
            sent: None,
            last: None,
            served: 0,
        }
    }

    fn request(&mut self) {
        let req: &[u8] = if self.close {
            b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        } else {
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
        };
        self.tls.writer().write_all(req).unwrap();
        self.sent = Some(StdInstant::now());
        self.phase = Phase::Waiting;
    }

    /// Moves bytes and advances the phase; true if anything moved.
    fn drive(&mut self, sockets: &mut SocketSet<'static>) -> bool {
        let s = sockets.get_mut::<tcp::Socket>(self.socket);
        if matches!(self.phase, Phase::Done | Phase::Reset) {
            return false;
        }
        if s.state() == tcp::State::Closed || s.state() == tcp::State::TimeWait {
            if self.phase != Phase::Closing {
                note_reset(format!("{:?} in {:?}", s.state(), self.phase));
            }
            self.phase = if self.phase == Phase::Closing {
                Phase::Done
            } else {
                Phase::Reset
            };
            return true;
        }
        let mut moved = false;
        while s.can_recv() {
            let r = s.recv(|buf| match self.tls.read_tls(&mut &buf[..]) {
                Ok(n) => (n, n),
                Err(_) => (0, 0),
            });
            match r {
                Ok(n) if n > 0 => moved = true,
                _ => break,
            }
            if let Err(e) = self.tls.process_new_packets() {
                note_reset(format!("TLS error {e}"));
                s.abort();
                self.phase = Phase::Reset;
                return true;
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            match self.tls.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.response.extend_from_slice(&buf[..n]);
                    moved = true;
                }
                Err(_) => break,
            }
        }
        if self.phase == Phase::Opening && !self.tls.is_handshaking() && s.may_send() {
            self.request();
            moved = true;
        }
        if self.phase == Phase::Waiting
            && let Some(done) = complete_response(&self.response)
        {
            match done {
                Ok(n) => {
                    self.response.drain(..n);
                    self.last = self.sent.map(|t| t.elapsed());
                    self.served += 1;
                    if self.close {
                        self.tls.send_close_notify();
                        self.phase = Phase::Closing;
                    } else {
                        self.phase = Phase::Idle;
                    }
                }
                Err(status) => panic!("unexpected response: {status}"),
            }
            moved = true;
        }
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut SocketWriter(s)) {
                Ok(n) if n > 0 => moved = true,
                _ => break,
            }
        }
        if self.phase == Phase::Closing && !s.may_recv() && s.state() != tcp::State::LastAck {
            s.close();
        }
        if !s.may_recv() && self.phase == Phase::Idle {
            // The server closed an idle connection.
            s.close();
            self.phase = Phase::Closing;
        }
        moved
    }
}

// ------------------------------------------------------------ the scenario

#[derive(Clone, Copy, Debug)]
struct Plan {
    idle: usize,
    burst: usize,
    probe_requests: usize,
    latency_at: usize,
    /// Handshakes in flight while opening idle connections.
    concurrency: usize,
    timeout: StdDuration,
    /// Idle connections checked with a request at the end.
    verify: usize,
    /// Heap checkpoints every this many idle connections.
    checkpoint_every: usize,
}

/// Where the scenario is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Start,
    Probe { round: usize },
    Burst,
    Opening,
    Verify,
    Finished,
}

#[derive(Default, Debug)]
struct Results {
    heap_size: usize,
    heap_baseline: usize,
    burst_served: usize,
    burst_resets: usize,
    burst_ms: f64,
    /// (open idle connections, heap used) at each checkpoint.
    checkpoints: Vec<(usize, usize)>,
    /// (idle connections, p50 ms, p99 ms, mean server iteration µs).
    latency: Vec<(usize, f64, f64, f64)>,
    idle_opened: usize,
    idle_resets: usize,
    idle_held: usize,
    idle_closed_by_server: usize,
    verified: usize,
    open_ms: f64,
    timed_out: bool,
}

struct World {
    plan: Plan,
    cfg: Arc<ClientConfig>,
    horde: Stack,
    probe: Stack,
    burst: Vec<Client>,
    idle: Vec<Client>,
    probe_client: Option<Client>,
    probe_samples: Vec<StdDuration>,
    step: Step,
    since: StdInstant,
    /// When the current phase began (burst, opening).
    last_phase: StdInstant,
    last_report: StdInstant,
    /// Idle connections opened at the last checkpoint.
    checkpointed: usize,
    results: Results,
    /// Server time per loop iteration (between two calls of `wait`).
    last_wait_return: Option<StdInstant>,
    server_time: StdDuration,
    server_iterations: u64,
}

impl World {
    fn busy_horde(&mut self, now: Instant) {
        self.probe.poll(now);
        self.horde.poll(now);
        let mut again = true;
        let mut rounds = 0;
        while again && rounds < 4 {
            again = false;
            for c in self.burst.iter_mut().chain(self.idle.iter_mut()) {
                again |= c.drive(&mut self.horde.sockets);
            }
            self.horde.poll(now);
            rounds += 1;
        }
    }

    fn quiet(&self) -> bool {
        self.horde.port.rx.borrow().is_empty()
    }

    fn latency(&mut self, idle: usize) {
        let mut v = core::mem::take(&mut self.probe_samples);
        v.sort();
        let ms = |d: StdDuration| d.as_secs_f64() * 1000.0;
        let p50 = ms(v[v.len() / 2]);
        let p99 = ms(v[(v.len() * 99 / 100).min(v.len() - 1)]);
        let iter = self.server_time.as_secs_f64() * 1e6 / self.server_iterations.max(1) as f64;
        eprintln!(
            "capacity: probe with {idle} idle connections: {} requests, p50 {p50:.3} ms, p99 {p99:.3} ms, server loop {iter:.1} µs/iteration",
            v.len()
        );
        self.results.latency.push((idle, p50, p99, iter));
    }

    fn held(&mut self) -> (usize, usize) {
        let mut held = 0;
        let mut closed = 0;
        for c in &self.idle {
            let s = self.horde.sockets.get::<tcp::Socket>(c.socket);
            match c.phase {
                Phase::Idle if s.state() == tcp::State::Established => held += 1,
                Phase::Closing | Phase::Done => closed += 1,
                _ => {}
            }
        }
        (held, closed)
    }

    /// Runs the clients once; false once the scenario is over.
    fn step(&mut self, now: Instant) -> bool {
        // Frames from the application go to the stack they are for.
        if self.since.elapsed() > self.plan.timeout {
            self.results.timed_out = true;
            eprintln!("capacity: timed out in step {:?}", self.step);
            self.step = Step::Finished;
        }
        match self.step {
            Step::Start => {
                self.results.heap_baseline = server_used();
                self.step = Step::Probe { round: 0 };
                let h = self.probe.connect(16384, 4096);
                self.probe_client = Some(Client::new(h, &self.cfg, false));
                self.server_time = StdDuration::ZERO;
                self.server_iterations = 0;
            }
            Step::Probe { round } => {
                self.probe.poll(now);
                let mut probe = self.probe_client.take().unwrap();
                let c = &mut probe;
                c.drive(&mut self.probe.sockets);
                if c.phase == Phase::Idle {
                    if let Some(l) = c.last.take()
                        && c.served > 1
                    {
                        self.probe_samples.push(l);
                    }
                    if self.probe_samples.len() >= self.plan.probe_requests {
                        let idle = self.held().0;
                        self.latency(idle);
                        self.step = match round {
                            0 => {
                                self.since_phase();
                                Step::Burst
                            }
                            _ => Step::Opening,
                        };
                    } else {
                        if self.probe_samples.is_empty() {
                            self.server_time = StdDuration::ZERO;
                            self.server_iterations = 0;
                        }
                        c.request();
                    }
                } else if c.phase == Phase::Reset {
                    panic!("the probe connection was reset");
                }
                c.drive(&mut self.probe.sockets);
                self.probe.poll(now);
                self.probe_client = Some(probe);
            }
            Step::Burst => {
                if self.burst.is_empty() && self.plan.burst > 0 {
                    // Every SYN at once: one poll sends them all.
                    for _ in 0..self.plan.burst {
                        let h = self.horde.connect(8192, 2048);
                        self.burst.push(Client::new(h, &self.cfg, true));
                    }
                }
                self.busy_horde(now);
                let over = self
                    .burst
                    .iter()
                    .all(|c| matches!(c.phase, Phase::Done | Phase::Reset));
                if over {
                    let resets = self
                        .burst
                        .iter()
                        .filter(|c| c.phase == Phase::Reset)
                        .count();
                    self.results.burst_resets = resets;
                    self.results.burst_served = self.burst.iter().filter(|c| c.served > 0).count();
                    self.results.burst_ms = self.phase_ms();
                    eprintln!(
                        "capacity: burst of {}: {} served, {} reset, {:.0} ms",
                        self.plan.burst, self.results.burst_served, resets, self.results.burst_ms
                    );
                    for c in self.burst.drain(..) {
                        self.horde.sockets.remove(c.socket);
                    }
                    self.since_phase();
                    self.step = Step::Opening;
                }
            }
            Step::Opening => {
                let target = if self.results.latency.len() < 2 && self.plan.latency_at > 0 {
                    self.plan.latency_at.min(self.plan.idle)
                } else {
                    self.plan.idle
                };
                let in_flight = self
                    .idle
                    .iter()
                    .filter(|c| matches!(c.phase, Phase::Opening | Phase::Waiting))
                    .count();
                // Stop at each checkpoint until every connection is idle.
                let boundary = (self.checkpointed + self.plan.checkpoint_every).min(target);
                let mut start = self
                    .plan
                    .concurrency
                    .saturating_sub(in_flight)
                    .min(boundary.saturating_sub(self.idle.len()));
                while start > 0 {
                    let h = self.horde.connect(4096, 1024);
                    self.idle.push(Client::new(h, &self.cfg, false));
                    start -= 1;
                }
                self.busy_horde(now);
                if self.last_report.elapsed() > StdDuration::from_secs(5) {
                    self.last_report = StdInstant::now();
                    let mut phases = std::collections::BTreeMap::new();
                    for c in &self.idle {
                        *phases.entry(format!("{:?}", c.phase)).or_insert(0) += 1;
                    }
                    eprintln!("capacity: opening: {phases:?}; {}", STATUS.lock().unwrap());
                }
                let settled = self.idle.len() >= target
                    && self
                        .idle
                        .iter()
                        .all(|c| !matches!(c.phase, Phase::Opening | Phase::Waiting));
                let n = self.idle.len();
                if n == boundary && n > self.checkpointed && in_flight == 0 && self.quiet() {
                    self.checkpointed = n;
                    let (held, _) = self.held();
                    if self.results.checkpoints.last().map(|c| c.0) != Some(held) {
                        self.results.checkpoints.push((held, server_used()));
                        eprintln!(
                            "capacity: {held} idle connections held, heap {} bytes ({} over the baseline), {:.1} s; {}",
                            server_used(),
                            server_used() as i64 - self.results.heap_baseline as i64,
                            self.since.elapsed().as_secs_f64(),
                            STATUS.lock().unwrap()
                        );
                    }
                }
                if settled && self.quiet() {
                    if self.results.latency.len() < 2 && self.plan.latency_at > 0 {
                        self.step = Step::Probe { round: 1 };
                        self.server_time = StdDuration::ZERO;
                        self.server_iterations = 0;
                    } else {
                        self.results.open_ms = self.phase_ms();
                        self.step = Step::Verify;
                        let n = self.idle.len();
                        let stride = (n / self.plan.verify.max(1)).max(1);
                        for c in self.idle.iter_mut().step_by(stride).take(self.plan.verify) {
                            if c.phase == Phase::Idle {
                                c.request();
                            }
                        }
                    }
                }
            }
            Step::Verify => {
                self.busy_horde(now);
                let waiting = self.idle.iter().any(|c| c.phase == Phase::Waiting);
                if !waiting {
                    let (held, closed) = self.held();
                    self.results.idle_opened = self.idle.len();
                    self.results.idle_resets =
                        self.idle.iter().filter(|c| c.phase == Phase::Reset).count();
                    self.results.idle_held = held;
                    self.results.idle_closed_by_server = closed;
                    self.results.verified = self.idle.iter().filter(|c| c.served > 1).count();
                    histogram();
                    self.step = Step::Finished;
                }
            }
            Step::Finished => return false,
        }
        true
    }

    fn since_phase(&mut self) {
        self.last_phase = StdInstant::now();
    }

    fn phase_ms(&self) -> f64 {
        self.last_phase.elapsed().as_secs_f64() * 1000.0
    }
}

// ------------------------------------------------------------ the platform

struct Sim {
    t0: StdInstant,
    app: Link,
    world: World,
    cmdline: String,
    regions: Vec<(&'static str, &'static [u8])>,
    client_group: Option<AllocationGroupToken>,
    heap_size: usize,
    stop: bool,
}

impl Sim {
    fn now_instant(&self) -> Instant {
        Instant::from_micros(self.t0.elapsed().as_micros() as i64)
    }

    /// Delivers the application's frames to the client stacks.
    fn switch(&mut self) {
        let mut from_app = self.app.tx.borrow_mut();
        while let Some(frame) = from_app.pop_front() {
            let dst = EthernetFrame::new_checked(&frame[..]).map(|f| f.dst_addr());
            match dst {
                Ok(d) if d == HORDE_MAC => self.world.horde.port.rx.borrow_mut().push_back(frame),
                Ok(d) if d == PROBE_MAC => self.world.probe.port.rx.borrow_mut().push_back(frame),
                Ok(d) if d.is_broadcast() => {
                    self.world
                        .horde
                        .port
                        .rx
                        .borrow_mut()
                        .push_back(frame.clone());
                    self.world.probe.port.rx.borrow_mut().push_back(frame);
                }
                _ => {}
            }
        }
    }
}

impl Platform for Sim {
    type Device = Link;

    fn now(&mut self) -> Instant {
        self.now_instant()
    }
    fn unix_time(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }
    fn fill_random(&mut self, buf: &mut [u8]) -> bool {
        let t = self.t0.elapsed().as_nanos() as u64;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t.rotate_left(i as u32 * 7) as u8) ^ (i as u8).wrapping_mul(151);
        }
        true
    }
    fn cmdline(&self) -> &str {
        &self.cmdline
    }
    fn name(&self) -> &str {
        "unipi"
    }
    fn region(&self, name: &str) -> Option<&'static [u8]> {
        self.regions.iter().find(|r| r.0 == name).map(|r| r.1)
    }
    fn device(&mut self) -> Option<&mut Link> {
        Some(&mut self.app)
    }
    fn wait(&mut self, _deadline: Instant) {
        let entered = StdInstant::now();
        if let Some(t) = self.world.last_wait_return {
            self.world.server_time += entered - t;
            self.world.server_iterations += 1;
        }
        let now = self.now_instant();
        let mut group = self.client_group.take().unwrap();
        {
            let _g = group.enter();
            self.switch();
            if !self.world.step(now) {
                self.stop = true;
            }
            self.switch();
        }
        self.client_group = Some(group);
        self.world.last_wait_return = Some(StdInstant::now());
    }
    fn heap(&self) -> HeapStats {
        HeapStats {
            size: self.heap_size,
            used: server_used(),
            peak: SERVER_PEAK.load(Ordering::Relaxed).max(0) as usize,
        }
    }
    fn running(&mut self) -> bool {
        !self.stop
    }
}

/// Prints the server's warnings (refusals, failures) on stderr.
struct StderrLog;

/// The server's last status line (`--status-interval`).
static STATUS: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if r.level() <= log::Level::Warn {
            eprintln!("unipi: {}", r.args());
        } else if r.level() == log::Level::Info {
            let line = r.args().to_string();
            if line.starts_with("status:") {
                *STATUS.lock().unwrap() = line;
            } else if line.contains("connections") {
                eprintln!("unipi: {line}");
            }
        }
    }
    fn flush(&self) {}
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

/// The default site (htdocs/) as the `site` region's tar archive.
fn site_tar() -> Vec<u8> {
    let out = std::process::Command::new("tar")
        .args([
            "--format=ustar",
            "--sort=name",
            "--owner=0",
            "--group=0",
            "-C",
        ])
        .arg(root().join("htdocs"))
        .args(["-cf", "-", "."])
        .output()
        .expect("tar is required");
    assert!(out.status.success(), "tar failed");
    out.stdout
}

/// A development CA and server certificate made for this test run by
/// `certs/gen-dev-cert.sh` (a fresh clone has no `certs/dev/`).
fn dev_certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("unipi-capacity-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let st = std::process::Command::new(root().join("certs/gen-dev-cert.sh"))
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("openssl is required (apt-get install openssl)");
        assert!(st.success(), "certs/gen-dev-cert.sh failed");
        dir
    })
}

fn client_config() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dev_certs().join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

static INIT: std::sync::Once = std::sync::Once::new();

/// Runs the whole application against `plan`; returns the results.
fn run(plan: Plan, extra_params: &str) -> Results {
    INIT.call_once(|| {
        let _ = AllocationRegistry::set_global_tracker(ServerHeap);
        let _ = log::set_logger(&StderrLog);
    });
    let heap_size = env_usize("UNIPI_CAP_HEAP", SUBJECT_HEAP);
    let to_app: Queue = Queue::default();
    let cfg = client_config();
    let world = World {
        plan,
        cfg,
        horde: Stack::new(HORDE_MAC, HORDE_IP, to_app.clone()),
        probe: Stack::new(PROBE_MAC, PROBE_IP, to_app.clone()),
        burst: Vec::new(),
        idle: Vec::new(),
        probe_client: None,
        probe_samples: Vec::new(),
        step: Step::Start,
        since: StdInstant::now(),
        last_phase: StdInstant::now(),
        last_report: StdInstant::now(),
        checkpointed: 0,
        results: Results {
            heap_size,
            ..Results::default()
        },
        last_wait_return: None,
        server_time: StdDuration::ZERO,
        server_iterations: 0,
    };
    let regions = vec![
        (
            "tls_cert",
            leak(std::fs::read(dev_certs().join("server.pem")).unwrap()),
        ),
        (
            "tls_key",
            leak(std::fs::read(dev_certs().join("server.key")).unwrap()),
        ),
        ("site", leak(site_tar())),
    ];
    let mut sim = Sim {
        t0: StdInstant::now(),
        app: Link {
            rx: to_app,
            tx: Queue::default(),
        },
        world,
        cmdline: format!(
            "--ipv4={APP_IP}/24 --port=80 --https-port={HTTPS} --access-log=off --idle-timeout=3600 --status-interval=1 {extra_params}"
        ),
        regions,
        client_group: AllocationGroupToken::register(),
        heap_size,
        stop: false,
    };
    let mut server_group = AllocationGroupToken::register().unwrap();
    SERVER_GROUP.store(server_group.id().as_usize().get(), Ordering::Relaxed);
    SERVER_USED.store(0, Ordering::Relaxed);
    SERVER_PEAK.store(0, Ordering::Relaxed);
    if std::env::var("UNIPI_CAP_HISTOGRAM").is_ok_and(|v| v == "1") {
        *LIVE.lock().unwrap() = Some(Default::default());
    }
    AllocationRegistry::enable_tracking();
    let status = {
        let _g = server_group.enter();
        unipi::run(&mut sim)
    };
    AllocationRegistry::disable_tracking();
    assert_eq!(status, 0);
    eprintln!("capacity: last {}", STATUS.lock().unwrap());
    if let Some(r) = RESETS.lock().unwrap().take() {
        eprintln!("capacity: client connections reset: {r:?}");
    }
    *LIVE.lock().unwrap() = None;
    let mut group = sim.client_group.take().unwrap();
    let _g = group.enter();
    std::mem::take(&mut sim.world.results)
}

/// Marginal heap per idle connection between the first and the last
/// checkpoint.
fn marginal(r: &Results) -> Option<f64> {
    let (first, last) = (r.checkpoints.first()?, r.checkpoints.last()?);
    (last.0 > first.0).then(|| (last.1 as f64 - first.1 as f64) / (last.0 - first.0) as f64)
}

#[test]
fn idle_connections_fit_the_estimate() {
    let plan = Plan {
        idle: 600,
        burst: 300,
        probe_requests: 50,
        latency_at: 0,
        concurrency: 64,
        timeout: StdDuration::from_secs(120),
        verify: 20,
        checkpoint_every: 200,
    };
    let r = run(plan, "");
    assert!(!r.timed_out, "{r:?}");
    assert_eq!(
        r.burst_resets, 0,
        "a burst of 300 connects is queued, not reset"
    );
    assert_eq!(r.burst_served, 300, "{r:?}");
    assert_eq!(r.idle_held, 600, "{r:?}");
    assert_eq!(r.verified, 20, "idle connections still answer: {r:?}");
    assert!(r.checkpoints.len() >= 2, "{r:?}");
    // Beyond the first 64 connections (generous buffers), every one is lean.
    let per = marginal(&r).unwrap() as usize;
    eprintln!("capacity: {per} bytes of heap per idle connection (200 to 600 open)");
    assert!(
        per <= unipi::server::IDLE_CONNECTION_COST,
        "an idle TLS connection costs {per} bytes, more than the {} the default capacity assumes",
        unipi::server::IDLE_CONNECTION_COST
    );
}

#[test]
#[ignore = "load measurement for make bench (minutes)"]
fn capacity() {
    let plan = Plan {
        idle: env_usize("UNIPI_CAP_IDLE", 10_000),
        burst: env_usize("UNIPI_CAP_BURST", 1000),
        probe_requests: env_usize("UNIPI_CAP_PROBE", 2000),
        latency_at: env_usize("UNIPI_CAP_LATENCY_AT", 5000),
        concurrency: env_usize("UNIPI_CAP_CONCURRENCY", 128),
        timeout: StdDuration::from_secs(env_usize("UNIPI_CAP_TIMEOUT", 600) as u64),
        verify: 100,
        checkpoint_every: 1000,
    };
    let params = std::env::var("UNIPI_CAP_PARAMS").unwrap_or_default();
    let r = run(plan, &params);
    let baseline = r.heap_baseline;
    let total_per = r
        .checkpoints
        .last()
        .map(|c| (c.1 as f64 - baseline as f64) / c.0.max(1) as f64);
    let fits = total_per.map(|p| ((r.heap_size - baseline) as f64 / p) as usize);
    let json = format!(
        concat!(
            "{{\"heap_size\": {}, \"heap_baseline\": {}, \"burst\": {}, \"burst_served\": {}, ",
            "\"burst_resets\": {}, \"burst_ms\": {:.0}, \"idle_target\": {}, \"idle_opened\": {}, ",
            "\"idle_held\": {}, \"idle_resets\": {}, \"idle_closed_by_server\": {}, \"verified\": {}, ",
            "\"open_ms\": {:.0}, \"heap_per_idle\": {}, \"heap_per_idle_marginal\": {}, ",
            "\"idle_fit_in_heap\": {}, \"checkpoints\": {:?}, \"latency\": {:?}, \"timed_out\": {}}}"
        ),
        r.heap_size,
        baseline,
        plan.burst,
        r.burst_served,
        r.burst_resets,
        r.burst_ms,
        plan.idle,
        r.idle_opened,
        r.idle_held,
        r.idle_resets,
        r.idle_closed_by_server,
        r.verified,
        r.open_ms,
        total_per.map_or("null".into(), |p| format!("{p:.0}")),
        marginal(&r).map_or("null".into(), |p| format!("{p:.0}")),
        fits.map_or("null".into(), |f| f.to_string()),
        r.checkpoints.iter().map(|c| [c.0, c.1]).collect::<Vec<_>>(),
        r.latency
            .iter()
            .map(|l| [l.0 as f64, l.1, l.2, l.3])
            .collect::<Vec<_>>(),
        r.timed_out
    );
    println!("capacity-result: {json}");
}
