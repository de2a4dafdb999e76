//! Drives the sans-IO Git client ([`unipi_git::Fetch`]) over smoltcp: DNS
//! lookups, one TCP connection at a time, TLS for `https://` remotes,
//! timeouts, retries with backoff at boot, and the conversion of a fetched
//! snapshot into a [`Site`]. The site being served is only replaced once a
//! fetch has completed and been fully verified; on any error the old site
//! stays.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use core::str::FromStr;
use log::{debug, info, warn};
use rustls::ClientConfig;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::dns::{GetQueryResultError, QueryHandle};
use smoltcp::socket::{dns, tcp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{DnsQueryType, IpAddress, Ipv4Address};
use unipi_git::{
    BaseObjects, Fetch, FetchOptions, FetchPhase, FileKind, Io, ObjectId, Outcome, Scheme,
    Snapshot, Url,
};

use crate::config::Config;
use crate::net::Net;
use crate::platform::Platform;
use crate::site::{Body, Site, SiteBuilder, SiteLimits, SiteMeta};
use crate::tls::{ClientTls, LoopClock, client_config};

/// No bytes moving for this long ends the fetch.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A whole fetch may take at most this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);
/// Retry delays at boot: 1 s, doubling up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// TCP buffers of the client socket (pack data flows in).
const RX_BUFFER: usize = 64 * 1024;
const TX_BUFFER: usize = 16 * 1024;

/// How a fetch ended ([`Fetcher::poll`] returns it in [`Finished`]).
#[derive(Debug)]
pub enum FetchEvent {
    /// A new commit is ready to be served.
    Updated {
        /// The new site.
        site: Box<Site>,
        /// Its commit (hex).
        commit: String,
    },
    /// The remote still points at the commit being served.
    Unchanged,
    /// The fetch failed; the site being served (if any) stays.
    Failed(String),
}

enum Conn {
    None,
    Resolving { host: String, query: QueryHandle },
    Connecting { host: String, tls: bool },
    Handshaking { tls: Box<ClientTls> },
    Open { tls: Option<Box<ClientTls>> },
}

struct Running {
    fetch: Fetch,
    conn: Conn,
    started: Instant,
    active: Instant,
    phase: FetchPhase,
    /// Pull generation this fetch answers.
    generation: u64,
}

/// The Git side of the server: fetches at boot (retrying until it works)
/// and whenever a webhook asks for it, one fetch at a time.
pub struct Fetcher {
    url: Url,
    tls: Option<Arc<ClientConfig>>,
    socket: Option<SocketHandle>,
    local_port: u16,
    current: Option<ObjectId>,
    /// The served commit's objects: the next pull asks only for what changed.
    base: Option<Arc<BaseObjects>>,
    running: Option<Box<Running>>,
    /// Pulls requested (webhooks) and the generation last started.
    requested: u64,
    started: u64,
    /// Boot: retry until the first success.
    have_site: bool,
    failures: u32,
    next_attempt: Instant,
    limits: SiteLimits,
}

/// A finished pull: `generation` tells which requests it answers.
#[derive(Debug)]
pub struct Finished {
    /// Every pull requested with a generation up to this one is answered.
    pub generation: u64,
    /// The result.
    pub event: FetchEvent,
}

impl Fetcher {
    /// A fetcher for `--remote`, or `None` without one. HTTPS remotes trust
    /// the CA certificates of the `--remote-ca` region, or else the bundled
    /// Web PKI roots.
    pub fn new<P: Platform>(
        cfg: &Config,
        p: &mut P,
        clock: Arc<LoopClock>,
    ) -> Result<Option<Fetcher>, String> {
        let Some(remote) = &cfg.remote else {
            return Ok(None);
        };
        let url = Url::parse(remote)
            .map_err(|e| format!("--remote {}: {e}", unipi_git::redact_credentials(remote)))?;
        let tls = match url.scheme() {
            Scheme::Https => Some(match p.region(&cfg.remote_ca) {
                Some(pem) => {
                    info!(
                        "git: trusting the CA certificates of the '{}' region",
                        cfg.remote_ca
                    );
                    client_config(pem, clock)
                        .map_err(|e| format!("--remote-ca region '{}': {e}", cfg.remote_ca))?
                }
                None => {
                    info!("git: trusting the bundled Web PKI roots");
                    crate::tls::web_pki_client_config(clock)
                        .map_err(|e| format!("TLS client: {e}"))?
                }
            }),
            _ => None,
        };
        let mut seed = [0u8; 2];
        p.fill_random(&mut seed);
        let local_port = 49152 + (u16::from_le_bytes(seed) % 16384);
        Ok(Some(Fetcher {
            url,
            tls,
            socket: None,
            local_port,
            current: None,
            base: None,
            running: None,
            requested: 1,
            started: 0,
            have_site: false,
            failures: 0,
            next_attempt: Instant::ZERO,
            limits: SiteLimits::default(),
        }))
    }

    /// Asks for a pull; returns the generation whose result will answer it.
    /// A pull asked for while one runs is served by the next one, so a
    /// commit pushed during a fetch is never missed.
    pub fn request_pull(&mut self) -> u64 {
        if self.running.is_some() {
            self.requested = self.started + 1;
        } else {
            self.requested = self.requested.max(self.started + 1);
        }
        self.requested
    }

    /// When the fetcher needs to run again without network input.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.running {
            Some(r) => Some((r.active + STALL_TIMEOUT).min(r.started + FETCH_TIMEOUT)),
            None if self.requested > self.started => Some(self.next_attempt),
            None => None,
        }
    }

    /// Runs the fetch as far as the network allows.
    pub fn poll(&mut self, net: &mut Net, now: Instant) -> Option<Finished> {
        if self.running.is_none() {
            if self.requested <= self.started || now < self.next_attempt {
                return None;
            }
            self.start(net, now);
        }
        let running = self.running.as_mut()?;
        let socket = self.socket?;
        let done = drive(
            running,
            net,
            socket,
            &mut self.local_port,
            self.tls.as_ref(),
            now,
        )?;
        let generation = running.generation;
        let elapsed = now - running.started;
        let progress = running.fetch.progress();
        self.close(net);
        self.running = None;
        let event = match done {
            Ok(Outcome::Unchanged(commit)) => {
                info!(
                    "git: {} still at {commit} (checked in {} ms)",
                    self.url_text(),
                    elapsed.total_millis()
                );
                self.succeeded();
                FetchEvent::Unchanged
            }
            Ok(Outcome::Fetched(snapshot)) => match to_site(&snapshot, &self.limits) {
                Ok(site) => {
                    let s = &snapshot.stats;
                    info!(
                        "git: fetched {} from {}: {} files, {} bytes (pack {} bytes, {} objects, {} deltas, protocol {}) in {} ms",
                        snapshot.commit,
                        self.url_text(),
                        site.len(),
                        site.total_bytes(),
                        s.pack_bytes,
                        s.objects,
                        s.deltas,
                        s.protocol
                            .map(|p| format!("{p:?}"))
                            .unwrap_or_else(|| "?".into()),
                        elapsed.total_millis()
                    );
                    self.current = Some(snapshot.commit);
                    self.base = Some(snapshot.base.clone());
                    self.succeeded();
                    FetchEvent::Updated {
                        site: Box::new(site),
                        commit: snapshot.commit.to_string(),
                    }
                }
                Err(e) => self.failed(
                    now,
                    format!("fetched {} but cannot serve it: {e}", snapshot.commit),
                ),
            },
            Err(e) => {
                let what = format!(
                    "{e} (while {}, after {} bytes)",
                    progress.phase, progress.received_bytes
                );
                self.failed(now, what)
            }
        };
        Some(Finished { generation, event })
    }

    fn url_text(&self) -> String {
        let mut s = format!(
            "{}://{}:{}{}",
            scheme_name(self.url.scheme()),
            self.url.host(),
            self.url.port(),
            self.url.path()
        );
        if let Some(b) = self.url.branch() {
            s.push('#');
            s.push_str(b);
        }
        s
    }

    fn start(&mut self, net: &mut Net, now: Instant) {
        if self.socket.is_none() {
            let rx = tcp::SocketBuffer::new(vec![0; RX_BUFFER]);
            let tx = tcp::SocketBuffer::new(vec![0; TX_BUFFER]);
            self.socket = Some(net.sockets.add(tcp::Socket::new(rx, tx)));
        }
        self.started = self.requested;
        let opts = FetchOptions {
            current: self.current,
            base: self.base.clone(),
            ..FetchOptions::default()
        };
        info!(
            "git: fetching {}{}",
            self.url_text(),
            if self.failures > 0 {
                format!(" (attempt {})", self.failures + 1)
            } else {
                String::new()
            }
        );
        self.running = Some(Box::new(Running {
            fetch: Fetch::new(self.url.clone(), opts),
            conn: Conn::None,
            started: now,
            active: now,
            phase: FetchPhase::Connecting,
            generation: self.started,
        }));
    }

    fn close(&mut self, net: &mut Net) {
        if let Some(h) = self.socket {
            net.sockets.get_mut::<tcp::Socket>(h).abort();
        }
    }

    fn succeeded(&mut self) {
        self.have_site = true;
        self.failures = 0;
    }

    fn failed(&mut self, now: Instant, reason: String) -> FetchEvent {
        self.failures += 1;
        if self.have_site {
            warn!(
                "git: pull failed, still serving {}: {reason}",
                self.current.map(|c| c.to_string()).unwrap_or_default()
            );
        } else {
            // At boot keep trying: 1 s, 2 s, 4 s, ... up to MAX_BACKOFF.
            let delay = Duration::from_secs(1u64 << (self.failures - 1).min(6)).min(MAX_BACKOFF);
            warn!(
                "git: fetch failed: {reason}; retrying in {} s",
                delay.secs()
            );
            self.next_attempt = now + delay;
            self.requested = self.requested.max(self.started + 1);
        }
        FetchEvent::Failed(reason)
    }
}

fn scheme_name(s: Scheme) -> &'static str {
    match s {
        Scheme::Git => "git",
        Scheme::Http => "http",
        Scheme::Https => "https",
        Scheme::Ssh => "ssh",
    }
}

/// Advances one fetch; `Some(result)` once it is over.
fn drive(
    r: &mut Running,
    net: &mut Net,
    socket: SocketHandle,
    local_port: &mut u16,
    tls_cfg: Option<&Arc<ClientConfig>>,
    now: Instant,
) -> Option<Result<Outcome, unipi_git::Error>> {
    if now >= r.started + FETCH_TIMEOUT || now >= r.active + STALL_TIMEOUT {
        r.fetch.timeout();
    }
    let progress = r.fetch.progress();
    if progress.phase != r.phase {
        r.phase = progress.phase;
        debug!("git: {}", r.phase);
    }
    let mut buf = [0u8; 4096];
    // A bounded number of steps per loop iteration keeps serving responsive.
    for _ in 0..256 {
        match r.fetch.poll() {
            Io::Done(result) => {
                r.conn = Conn::None;
                return Some(result);
            }
            Io::ConnectSsh(_) => r
                .fetch
                .transport_error("ssh:// remotes are not supported yet"),
            Io::Close => {
                net.sockets.get_mut::<tcp::Socket>(socket).abort();
                r.conn = Conn::None;
            }
            Io::Connect { host, port, tls } => {
                let (host, tls) = (host.to_string(), tls);
                match connect_step(r, net, socket, local_port, tls_cfg, &host, port, tls) {
                    Step::Progress => r.active = now,
                    Step::Wait => return None,
                    Step::Fail(e) => r.fetch.transport_error(e),
                }
            }
            Io::Send(bytes) => {
                let s = net.sockets.get_mut::<tcp::Socket>(socket);
                let n = match &mut r.conn {
                    Conn::Open { tls: Some(t) } => {
                        let n = match t.pump(bytes) {
                            Ok(n) => n,
                            Err(e) => {
                                r.fetch.transport_error(format!("TLS: {e}"));
                                continue;
                            }
                        };
                        t.write_to(s);
                        n
                    }
                    Conn::Open { tls: None } => s.send_slice(bytes).unwrap_or(0),
                    _ => {
                        r.fetch.transport_error("connection lost");
                        continue;
                    }
                };
                if !s.is_open() {
                    r.fetch
                        .transport_error("connection closed by the remote while sending");
                    continue;
                }
                if n == 0 {
                    return None;
                }
                r.fetch.sent(n);
                r.active = now;
            }
            Io::Receive => {
                let s = net.sockets.get_mut::<tcp::Socket>(socket);
                match &mut r.conn {
                    Conn::Open { tls: Some(t) } => {
                        t.read_from(s);
                        if let Err(e) = t.pump(&[]) {
                            r.fetch.transport_error(format!("TLS: {e}"));
                            continue;
                        }
                        t.write_to(s);
                        let plain = t.plaintext();
                        if !plain.is_empty() {
                            let n = plain.len();
                            r.fetch.received(plain);
                            t.consume_plaintext(n);
                            r.active = now;
                        } else if t.peer_closed() || !s.may_recv() {
                            r.fetch.peer_closed();
                        } else {
                            return None;
                        }
                    }
                    Conn::Open { tls: None } => {
                        if s.can_recv() {
                            if let Ok(n) = s.recv_slice(&mut buf) {
                                r.fetch.received(&buf[..n]);
                                r.active = now;
                            }
                        } else if !s.may_recv() {
                            r.fetch.peer_closed();
                        } else {
                            return None;
                        }
                    }
                    _ => r.fetch.transport_error("connection lost"),
                }
            }
        }
    }
    None
}

enum Step {
    Progress,
    Wait,
    Fail(String),
}

/// One step of "resolve, connect, handshake"; calls `connected()` at the end.
#[allow(clippy::too_many_arguments)]
fn connect_step(
    r: &mut Running,
    net: &mut Net,
    socket: SocketHandle,
    local_port: &mut u16,
    tls_cfg: Option<&Arc<ClientConfig>>,
    host: &str,
    port: u16,
    tls: bool,
) -> Step {
    match &mut r.conn {
        Conn::None | Conn::Open { .. } => {
            if let Ok(ip) = Ipv4Address::from_str(host) {
                return tcp_connect(
                    r,
                    net,
                    socket,
                    local_port,
                    host,
                    IpAddress::Ipv4(ip),
                    port,
                    tls,
                );
            }
            let dns_h = net.dns();
            let ctx = net.iface.context();
            match net
                .sockets
                .get_mut::<dns::Socket>(dns_h)
                .start_query(ctx, host, DnsQueryType::A)
            {
                Ok(query) => {
                    debug!("git: resolving {host}");
                    r.conn = Conn::Resolving {
                        host: host.to_string(),
                        query,
                    };
                    Step::Progress
                }
                Err(e) => Step::Fail(format!(
                    "cannot resolve {host}: {e:?} (no DNS server? use --dns)"
                )),
            }
        }
        Conn::Resolving { query, host: h, .. } => {
            let query = *query;
            let h = h.clone();
            match net
                .sockets
                .get_mut::<dns::Socket>(net.dns())
                .get_query_result(query)
            {
                Ok(addrs) => match addrs.iter().find_map(|a| match a {
                    IpAddress::Ipv4(v4) => Some(*v4),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }) {
                    Some(ip) => {
                        debug!("git: {h} is {ip}");
                        tcp_connect(
                            r,
                            net,
                            socket,
                            local_port,
                            &h,
                            IpAddress::Ipv4(ip),
                            port,
                            tls,
                        )
                    }
                    None => Step::Fail(format!("{h} has no IPv4 address")),
                },
                Err(GetQueryResultError::Pending) => Step::Wait,
                Err(GetQueryResultError::Failed) => Step::Fail(format!("cannot resolve {h}")),
            }
        }
        Conn::Connecting { host: h, tls } => {
            let s = net.sockets.get_mut::<tcp::Socket>(socket);
            match s.state() {
                tcp::State::Established => {
                    if *tls {
                        let Some(cfg) = tls_cfg else {
                            return Step::Fail("no TLS configuration".into());
                        };
                        match ClientTls::client(cfg.clone(), h) {
                            Ok(t) => {
                                r.conn = Conn::Handshaking { tls: Box::new(t) };
                                Step::Progress
                            }
                            Err(e) => Step::Fail(format!("TLS: {e}")),
                        }
                    } else {
                        r.conn = Conn::Open { tls: None };
                        r.fetch.connected();
                        Step::Progress
                    }
                }
                tcp::State::SynSent | tcp::State::SynReceived => Step::Wait,
                _ => Step::Fail(format!("TCP connection to {h}:{port} refused or reset")),
            }
        }
        Conn::Handshaking { tls: t } => {
            let s = net.sockets.get_mut::<tcp::Socket>(socket);
            t.read_from(s);
            if let Err(e) = t.pump(&[]) {
                t.write_to(s);
                return Step::Fail(format!("TLS handshake with {host}: {e}"));
            }
            t.write_to(s);
            if t.is_established() {
                let Conn::Handshaking { tls } = core::mem::replace(&mut r.conn, Conn::None) else {
                    unreachable!()
                };
                r.conn = Conn::Open { tls: Some(tls) };
                r.fetch.connected();
                Step::Progress
            } else if !s.is_open() {
                Step::Fail(format!("TLS handshake with {host}: connection closed"))
            } else {
                Step::Wait
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn tcp_connect(
    r: &mut Running,
    net: &mut Net,
    socket: SocketHandle,
    local_port: &mut u16,
    host: &str,
    ip: IpAddress,
    port: u16,
    tls: bool,
) -> Step {
    *local_port = if *local_port == u16::MAX {
        49152
    } else {
        *local_port + 1
    };
    let ctx = net.iface.context();
    let s = net.sockets.get_mut::<tcp::Socket>(socket);
    s.abort();
    match s.connect(ctx, (ip, port), *local_port) {
        Ok(()) => {
            debug!("git: connecting to {host} ({ip}:{port})");
            r.conn = Conn::Connecting {
                host: host.to_string(),
                tls,
            };
            Step::Progress
        }
        Err(e) => Step::Fail(format!("cannot connect to {ip}:{port}: {e:?}")),
    }
}

/// Turns a verified snapshot into a site: blobs become files (ETag = blob
/// id, Last-Modified = commit time), symlinks become redirects.
pub fn to_site(snapshot: &Snapshot, limits: &SiteLimits) -> Result<Site, String> {
    let time = u64::try_from(snapshot.commit_time).unwrap_or(0);
    let mut b = SiteBuilder::new(*limits);
    for f in &snapshot.files {
        let r = match f.kind {
            FileKind::Regular | FileKind::Executable => b.add_file(
                &f.path,
                Body::Shared(f.data.clone()),
                *f.oid.as_bytes(),
                time,
                f.kind == FileKind::Executable,
            ),
            FileKind::Symlink => match core::str::from_utf8(&f.data) {
                Ok(target) => b.add_redirect(&f.path, target),
                Err(_) => {
                    warn!("git: symlink {} has a non-UTF-8 target; skipped", f.path);
                    continue;
                }
            },
        };
        if let Err(e) = r {
            return Err(format!("{}: {e}", f.path));
        }
    }
    let commit = snapshot.commit.to_string();
    b.finish(SiteMeta {
        source: format!("git {commit}"),
        commit: Some(commit),
        last_modified: Some(time),
    })
    .map_err(|e| e.to_string())
}
