//! The network interface: smoltcp over the platform's Ethernet device, dual
//! stack. IPv4 is static (`--ipv4`, `--ipv4-gateway`) or from DHCP; IPv6
//! always has the link-local address derived from the MAC (modified EUI-64,
//! RFC 4291 appendix A), optionally a static address (`--ipv6`,
//! `--ipv6-gateway`), and, unless `--accept-router-advertisements=false`,
//! an address and default route from router advertisements ([`slaac`]; a
//! static `--ipv6-gateway` wins over advertised routers). `--ipv4-only` /
//! `--ipv6-only` switch a version off. Neighbor discovery is smoltcp's; it
//! does no duplicate address detection.
//!
//! [`Net`] owns the interface and every socket of the application. The rest
//! of the application holds socket handles and reaches the sockets through
//! [`Net::tcp`]; outgoing connections are opened with [`Net::connect`] (which
//! picks the ephemeral port) and host names are looked up with
//! [`Net::resolve`] (A and AAAA). Nothing else touches smoltcp's interface.
//!
//! Limits: 4 interface addresses (IPv4, link-local, static IPv6, SLAAC), 2
//! routes (a default route per version), 4 DNS servers (smoltcp's
//! compile-time tables, set in `unipi-rs/Cargo.toml`); one SLAAC address
//! and one advertised router.

pub mod slaac;

use alloc::rc::{Rc, Weak};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use log::{info, warn};
use smoltcp::iface::{
    Config as IfaceConfig, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::{Device, DeviceCapabilities, PacketMeta, RxToken, TxToken};
use smoltcp::socket::dns::{self, GetQueryResultError, QueryHandle, StartQueryError};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DnsQueryType, EthernetAddress, EthernetFrame,
    EthernetProtocol, EthernetRepr, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address,
    Ipv4Cidr, Ipv6Address, Ipv6Cidr,
};

use crate::config::{Config, IpVersions};
use slaac::{Advert, Change, Slaac};

/// How often the gateway's link-layer address is asked for (smoltcp's
/// neighbour entries live a minute).
const GATEWAY_REFRESH: Duration = Duration::from_secs(30);
/// First port of the ephemeral range (RFC 6335).
const EPHEMERAL_FIRST: u16 = 49152;

/// The interface, its sockets and the addressing state.
pub struct Net {
    iface: Interface,
    sockets: SocketSet<'static>,
    versions: IpVersions,
    dhcp: Option<SocketHandle>,
    dns: SocketHandle,
    /// `--dns` servers; when empty, DHCP's are used.
    static_dns: Vec<IpAddress>,
    /// The DNS servers of the current DHCP lease.
    dhcp_dns: Vec<IpAddress>,
    /// The queries of every [`Lookup`] handed out and not answered yet,
    /// with a handle that tells whether the lookup still exists: the
    /// resolver keeps a slot per query until its result is taken, so the
    /// queries of a dropped lookup (a Git fetch that timed out while
    /// resolving) are cancelled by the next [`Net::resolve`].
    lookups: Vec<(Weak<()>, [Option<QueryHandle>; 2])>,
    /// Router discovery and SLAAC, when on.
    slaac: Option<Slaac>,
    /// A static `--ipv6-gateway` is set: advertised routers are not used.
    static_ipv6_gateway: bool,
    /// A gratuitous ARP is due (new static or leased address).
    announce: bool,
    /// The gateway, kept in smoltcp's neighbour cache (see [`Net::poll`]).
    gateway: Option<Ipv4Address>,
    /// When the gateway's address is asked for next.
    refresh_at: Instant,
    /// The last ephemeral port handed out.
    last_port: u16,
    /// The last poll received packets and left sending to the next one.
    egress_deferred: bool,
}

/// Why an outgoing connection could not be started.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The interface has no address of the remote's IP version to connect
    /// from (no IPv4 address yet, or no routable IPv6 address).
    NoAddress(IpEndpoint),
    /// smoltcp refused the endpoint (unspecified address or port 0).
    Unaddressable(IpEndpoint),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::NoAddress(ep) if matches!(ep.addr, IpAddress::Ipv4(_)) => write!(
                f,
                "no IPv4 address to connect to {ep} from (set --ipv4, or wait for DHCP)"
            ),
            ConnectError::NoAddress(ep) => write!(
                f,
                "no routable IPv6 address to connect to {ep} from \
                 (set --ipv6, or wait for a router advertisement)"
            ),
            ConnectError::Unaddressable(ep) => write!(f, "cannot connect to {ep}"),
        }
    }
}

/// Sizes of a UDP socket's buffers (see [`Net::add_udp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpBuffers {
    /// Datagrams the receive buffer holds, and their bytes together.
    pub rx: (usize, usize),
    /// Datagrams the send buffer holds, and their bytes together.
    pub tx: (usize, usize),
}

/// Why a UDP socket could not be bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindError {
    /// The port that was tried.
    pub port: u16,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot bind a UDP socket to port {}", self.port)
    }
}

/// Why a name could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name is not a valid DNS name.
    InvalidName,
    /// No resolver is known (no `--dns`, and DHCP gave none), or none that
    /// this host can reach with its addresses.
    NoServer,
    /// The servers did not answer, answered with an error, or the name has
    /// no A or AAAA record.
    Failed,
    /// There is nothing to ask for: IPv4 is off and no routable IPv6
    /// address is configured yet.
    NoRoute,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResolveError::InvalidName => "not a valid DNS name",
            ResolveError::NoServer => "no DNS server this host can reach (set --dns, or use DHCP)",
            ResolveError::Failed => {
                "the DNS servers gave no address (no answer, an error, or no A/AAAA record)"
            }
            ResolveError::NoRoute => {
                "IPv4 is off and there is no routable IPv6 address yet \
                 (set --ipv6, or wait for a router advertisement)"
            }
        })
    }
}

/// One record type of a [`Lookup`].
#[derive(Clone, Copy)]
enum Query {
    /// Not asked (the IP version is off or unusable).
    Off,
    Pending(QueryHandle),
    Found(IpAddress),
    Failed,
}

/// A name lookup in progress: an A and an AAAA query, each only when this
/// host could use the answer (see [`Net::resolve`]). Not `Clone`: the
/// resolver frees its slots when the answers are taken, which
/// [`Net::answer`] does exactly once by consuming it (or, for a dropped
/// lookup, the next [`Net::resolve`]).
pub struct Lookup {
    aaaa: Query,
    a: Query,
    alive: Rc<()>,
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lookup")
    }
}

/// What [`Net::answer`] found.
#[derive(Debug)]
pub enum Answer {
    /// No answer yet: ask again later with the lookup given back.
    Pending(Lookup),
    /// The lookup is over: the addresses in the order to try them (IPv6
    /// first; never empty), or why there are none.
    Done(Result<Vec<IpAddress>, ResolveError>),
}

/// A locally administered unicast MAC derived from the instance name, so
/// that it is stable across boots and unique per subject name.
pub fn mac_from_name(name: &str) -> EthernetAddress {
    // FNV-1a, then force "locally administered, unicast".
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(*b"unipi-rs net0") {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_le_bytes();
    EthernetAddress([(b[0] & 0xfe) | 0x02, b[1], b[2], b[3], b[4], b[5]])
}

/// The link-local address of `mac`: fe80::/64 with the modified EUI-64
/// interface identifier (RFC 4291 appendix A: ff:fe in the middle, the
/// universal/local bit inverted).
pub fn link_local(mac: EthernetAddress) -> Ipv6Cidr {
    let m = mac.0;
    Ipv6Cidr::new(
        Ipv6Address::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ]),
        64,
    )
}

impl Net {
    /// Creates the interface on `device` with `mac`, configured from the
    /// boot parameters (see the module documentation). `seed` randomises
    /// smoltcp's initial sequence numbers and the ephemeral ports.
    pub fn new<D: Device>(
        device: &mut D,
        mac: EthernetAddress,
        cfg: &Config,
        now: Instant,
        seed: u64,
    ) -> Net {
        let versions = cfg.ip_versions;
        let slaac = (versions.ipv6() && cfg.accept_router_advertisements)
            .then(|| Slaac::new(link_local(mac).address(), now));
        let mut ic = IfaceConfig::new(HardwareAddress::Ethernet(mac));
        ic.random_seed = seed;
        let mut iface = Interface::new(ic, device, now);
        let mut sockets = SocketSet::new(vec![]);
        let dns = sockets.add(dns::Socket::new(&[], vec![]));
        if versions.ipv6() {
            let ll = link_local(mac);
            iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::Ipv6(ll));
                if let Some(cidr) = cfg.ipv6 {
                    let _ = a.push(IpCidr::Ipv6(cidr));
                }
            });
            if let Some(gw) = cfg.ipv6_gateway
                && iface.routes_mut().add_default_ipv6_route(gw).is_err()
            {
                warn!("could not install the default route via {gw}");
            }
            info!(
                "net: IPv6 {ll}{}{}{}",
                cfg.ipv6
                    .map(|c| alloc::format!(", static {c}"))
                    .unwrap_or_default(),
                cfg.ipv6_gateway
                    .map(|g| alloc::format!(" via {g}"))
                    .unwrap_or_default(),
                if slaac.is_some() {
                    ", SLAAC from router advertisements"
                } else {
                    ""
                }
            );
        }
        let dhcp = match (versions.ipv4(), cfg.ipv4) {
            (false, _) => {
                info!("net: {mac}, IPv4 off (--ipv6-only)");
                None
            }
            (true, Some(cidr)) => {
                iface.update_ip_addrs(|a| {
                    let _ = a.push(IpCidr::Ipv4(cidr));
                });
                if let Some(gw) = cfg.ipv4_gateway
                    && iface.routes_mut().add_default_ipv4_route(gw).is_err()
                {
                    warn!("could not install the default route via {gw}");
                }
                info!(
                    "net: {mac}, static {cidr}{}",
                    cfg.ipv4_gateway
                        .map(|g| alloc::format!(" via {g}"))
                        .unwrap_or_default()
                );
                None
            }
            (true, None) => {
                info!("net: {mac}, no --ipv4: asking DHCP");
                Some(sockets.add(dhcpv4::Socket::new()))
            }
        };
        let span = u64::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        let mut net = Net {
            iface,
            sockets,
            versions,
            dhcp,
            dns,
            static_dns: cfg.dns.clone(),
            dhcp_dns: Vec::new(),
            lookups: Vec::new(),
            slaac,
            static_ipv6_gateway: cfg.ipv6_gateway.is_some(),
            announce: versions.ipv4() && cfg.ipv4.is_some(),
            gateway: cfg.ipv4_gateway,
            refresh_at: now,
            last_port: EPHEMERAL_FIRST + ((seed >> 16) % span) as u16,
            egress_deferred: false,
        };
        net.refresh_dns_servers();
        net
    }

    /// The interface's IPv4 address, once configured.
    pub fn ipv4(&self) -> Option<Ipv4Cidr> {
        self.iface.ip_addrs().iter().find_map(|c| match c {
            IpCidr::Ipv4(c) => Some(*c),
            _ => None,
        })
    }

    /// The interface's IPv6 addresses (link-local first when IPv6 is on).
    pub fn ipv6(&self) -> impl Iterator<Item = Ipv6Cidr> + '_ {
        self.iface.ip_addrs().iter().filter_map(|c| match c {
            IpCidr::Ipv6(c) => Some(*c),
            _ => None,
        })
    }

    /// The first IPv6 address that is not link-local (static or SLAAC):
    /// with it this host can talk IPv6 beyond the link.
    pub fn routable_ipv6(&self) -> Option<Ipv6Cidr> {
        self.ipv6().find(|c| !c.address().is_unicast_link_local())
    }

    /// Whether this host has an address to talk to `ip` from: an IPv4
    /// address for IPv4, the link-local address for link-local IPv6, a
    /// routable IPv6 address for any other IPv6 address.
    pub fn can_reach(&self, ip: IpAddress) -> bool {
        match ip {
            IpAddress::Ipv4(_) => self.ipv4().is_some(),
            IpAddress::Ipv6(a) if a.is_unicast_link_local() => self.ipv6().next().is_some(),
            IpAddress::Ipv6(_) => self.routable_ipv6().is_some(),
        }
    }

    /// Adds a TCP socket with the given buffers.
    pub fn add_tcp(&mut self, rx: Vec<u8>, tx: Vec<u8>) -> SocketHandle {
        let s = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        self.sockets.add(s)
    }

    /// Removes a TCP socket (and frees its buffers).
    pub fn remove_tcp(&mut self, h: SocketHandle) {
        self.sockets.remove(h);
    }

    /// The TCP socket behind `h`.
    ///
    /// # Panics
    ///
    /// If `h` is not a TCP socket of this interface (a bug in the caller,
    /// never a consequence of network input).
    pub fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    /// The next ephemeral port (RFC 6335 range, in turn).
    fn next_port(&mut self) -> u16 {
        self.last_port = if self.last_port == u16::MAX {
            EPHEMERAL_FIRST
        } else {
            self.last_port + 1
        };
        self.last_port
    }

    /// Adds a UDP socket with the given buffers (unbound: see
    /// [`Net::bind_udp`]).
    pub fn add_udp(&mut self, b: UdpBuffers) -> SocketHandle {
        let buffer = |(slots, bytes): (usize, usize)| {
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; slots], vec![0; bytes])
        };
        self.sockets
            .add(udp::Socket::new(buffer(b.rx), buffer(b.tx)))
    }

    /// Binds UDP socket `h` to the next ephemeral port (for a socket that
    /// only sends); returns the port.
    pub fn bind_udp(&mut self, h: SocketHandle) -> Result<u16, BindError> {
        let port = self.next_port();
        self.sockets
            .get_mut::<udp::Socket>(h)
            .bind(port)
            .map(|()| port)
            .map_err(|_| BindError { port })
    }

    /// The UDP socket behind `h`.
    ///
    /// # Panics
    ///
    /// If `h` is not a UDP socket of this interface (a bug in the caller,
    /// never a consequence of network input).
    pub fn udp(&mut self, h: SocketHandle) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket>(h)
    }

    /// Opens a connection from socket `h` to `remote`, from the next
    /// ephemeral port. Whatever the socket did before is aborted.
    pub fn connect(&mut self, h: SocketHandle, remote: IpEndpoint) -> Result<(), ConnectError> {
        if !self.can_reach(remote.addr) {
            return Err(ConnectError::NoAddress(remote));
        }
        let port = self.next_port();
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        s.abort();
        s.connect(self.iface.context(), remote, port)
            .map_err(|_| ConnectError::Unaddressable(remote))
    }

    /// Starts looking up `name`: AAAA when this host has a routable IPv6
    /// address, A when IPv4 is on (both at once). Poll the answer with
    /// [`Net::answer`].
    pub fn resolve(&mut self, name: &str) -> Result<Lookup, ResolveError> {
        self.cancel_abandoned_lookups();
        let want_aaaa = self.routable_ipv6().is_some();
        let want_a = self.versions.ipv4();
        if !want_aaaa && !want_a {
            return Err(ResolveError::NoRoute);
        }
        let aaaa = if want_aaaa {
            Query::Pending(self.start_query(name, DnsQueryType::Aaaa)?)
        } else {
            Query::Off
        };
        let a = if want_a {
            match self.start_query(name, DnsQueryType::A) {
                Ok(q) => Query::Pending(q),
                Err(e) => {
                    if let Query::Pending(q) = aaaa {
                        self.sockets
                            .get_mut::<dns::Socket>(self.dns)
                            .cancel_query(q);
                    }
                    return Err(e);
                }
            }
        } else {
            Query::Off
        };
        let alive = Rc::new(());
        let handles = [aaaa, a].map(|q| match q {
            Query::Pending(h) => Some(h),
            _ => None,
        });
        self.lookups.push((Rc::downgrade(&alive), handles));
        Ok(Lookup { aaaa, a, alive })
    }

    /// Frees the resolver slots of lookups that were dropped unanswered.
    fn cancel_abandoned_lookups(&mut self) {
        let s = self.sockets.get_mut::<dns::Socket>(self.dns);
        self.lookups.retain(|(alive, handles)| {
            if alive.strong_count() > 0 {
                return true;
            }
            for h in handles.iter().flatten() {
                s.cancel_query(*h);
            }
            false
        });
    }

    fn start_query(&mut self, name: &str, kind: DnsQueryType) -> Result<QueryHandle, ResolveError> {
        let s = self.sockets.get_mut::<dns::Socket>(self.dns);
        s.start_query(self.iface.context(), name, kind)
            .map_err(|e| match e {
                StartQueryError::InvalidName | StartQueryError::NameTooLong => {
                    ResolveError::InvalidName
                }
                _ => ResolveError::Failed,
            })
    }

    /// The answer to `lookup` once both of its queries are over, or the
    /// lookup back while one is pending.
    pub fn answer(&mut self, mut lookup: Lookup) -> Answer {
        let s = self.sockets.get_mut::<dns::Socket>(self.dns);
        let Some(entry) = self
            .lookups
            .iter()
            .position(|(alive, _)| Weak::as_ptr(alive) == Rc::as_ptr(&lookup.alive))
        else {
            // Every lookup is registered by `resolve` until answered here.
            return Answer::Done(Err(ResolveError::Failed));
        };
        let mut pending = false;
        for (i, q) in [&mut lookup.aaaa, &mut lookup.a].into_iter().enumerate() {
            if let Query::Pending(h) = *q {
                *q = match s.get_query_result(h) {
                    Err(GetQueryResultError::Pending) => {
                        pending = true;
                        continue;
                    }
                    Err(GetQueryResultError::Failed) => Query::Failed,
                    Ok(addrs) => addrs.first().copied().map_or(Query::Failed, Query::Found),
                };
                // The resolver freed the slot with the result.
                if let Some(h) = self.lookups.get_mut(entry).and_then(|e| e.1.get_mut(i)) {
                    *h = None;
                }
            }
        }
        if pending {
            return Answer::Pending(lookup);
        }
        self.lookups.swap_remove(entry);
        let found: Vec<IpAddress> = [lookup.aaaa, lookup.a]
            .into_iter()
            .filter_map(|q| match q {
                Query::Found(ip) => Some(ip),
                _ => None,
            })
            .collect();
        Answer::Done(if !found.is_empty() {
            Ok(found)
        } else if self.usable_dns_servers().is_empty() {
            Err(ResolveError::NoServer)
        } else {
            Err(ResolveError::Failed)
        })
    }

    /// The configured DNS servers (`--dns`, else DHCP's) this host can
    /// reach with its current addresses.
    fn usable_dns_servers(&self) -> Vec<IpAddress> {
        let configured = if self.static_dns.is_empty() {
            &self.dhcp_dns
        } else {
            &self.static_dns
        };
        configured
            .iter()
            .copied()
            .filter(|a| self.can_reach(*a))
            .collect()
    }

    /// Hands the usable DNS servers to the resolver (after every address
    /// change: smoltcp gives up on a query whose server it has no source
    /// address for, instead of trying the next server).
    fn refresh_dns_servers(&mut self) {
        let servers = self.usable_dns_servers();
        self.sockets
            .get_mut::<dns::Socket>(self.dns)
            .update_servers(&servers);
    }

    /// Runs the interface: ingress, egress, timers, DHCP and SLAAC. Returns
    /// true when socket state may have changed.
    pub fn poll<D: Device>(&mut self, now: Instant, device: &mut D) -> bool {
        self.poll_with(now, device, |_| {})
    }

    /// [`Net::poll`], calling `changed` after every received packet that
    /// changed a socket's state (the server re-arms its listening sockets
    /// there, so that a burst of SYNs within one poll finds them).
    ///
    /// A poll that received packets leaves sending to the next poll (never
    /// to two in a row): the application answers in between, and the next
    /// poll sends answers and acknowledgements in one pass. smoltcp's
    /// egress visits every socket, so each pass costs time in proportion
    /// to the open connections (≈ 40 ns per socket natively); with one
    /// pass fewer per request, a busy keep-alive client's median with
    /// 5,000 idle connections open fell from 0.40–0.49 to 0.26 ms
    /// (unipi-rs/tests/capacity.rs, docs/bench.md).
    pub fn poll_with<D: Device>(
        &mut self,
        now: Instant,
        device: &mut D,
        mut changed: impl FnMut(&mut Net),
    ) -> bool {
        self.iface.poll_maintenance(now);
        let mut any = false;
        let mut adverts: Vec<Advert> = Vec::new();
        let mut received = false;
        loop {
            let r = if self.slaac.is_some() {
                let mut listening = Listening {
                    device: &mut *device,
                    adverts: &mut adverts,
                };
                self.iface
                    .poll_ingress_single(now, &mut listening, &mut self.sockets)
            } else {
                self.iface
                    .poll_ingress_single(now, device, &mut self.sockets)
            };
            match r {
                PollIngressSingleResult::None => break,
                PollIngressSingleResult::PacketProcessed => received = true,
                PollIngressSingleResult::SocketStateChanged => {
                    received = true;
                    any = true;
                    changed(self);
                }
            }
        }
        // What router advertisements brought, and what expired, before
        // anything is sent.
        self.run_slaac(now, &adverts, device);
        if received && !self.egress_deferred {
            self.egress_deferred = true;
        } else {
            self.egress_deferred = false;
            while self.iface.poll_egress(now, device, &mut self.sockets)
                == PollResult::SocketStateChanged
            {
                any = true;
            }
        }
        self.poll_dhcp();
        if let (Some(cidr), HardwareAddress::Ethernet(mac)) =
            (self.ipv4(), self.iface.hardware_addr())
        {
            if self.announce {
                self.announce = false;
                arp_request(device, now, mac, cidr.address(), cidr.address());
            }
            // smoltcp learns a neighbour only from ARP, sends at most one ARP
            // request a second for all neighbours, and forgets entries after
            // a minute: a reply to a new client, waiting behind another
            // lookup, could stall for a second. Every connection from
            // outside the subnet goes through the gateway, so its entry is
            // kept fresh by asking before it expires (the reply fills the
            // cache like any ARP packet aimed at us).
            if let Some(gw) = self.gateway
                && now >= self.refresh_at
            {
                self.refresh_at = now + GATEWAY_REFRESH;
                arp_request(device, now, mac, cidr.address(), gw);
            }
        }
        any
    }

    /// Takes in the router advertisements heard in this poll, drops what
    /// expired, applies the changes to the interface, and sends a router
    /// solicitation when one is due.
    fn run_slaac<D: Device>(&mut self, now: Instant, adverts: &[Advert], device: &mut D) {
        let Some(slaac) = &mut self.slaac else { return };
        let mut changes: Vec<Change> = Vec::new();
        for a in adverts {
            changes.extend(slaac.advert(a, now));
        }
        changes.extend(slaac.expire(now));
        let solicit = slaac.solicitation_due(now);
        for c in &changes {
            self.apply(*c);
        }
        if !changes.is_empty() {
            self.refresh_dns_servers();
        }
        if solicit
            && let (HardwareAddress::Ethernet(mac), Some(tx)) =
                (self.iface.hardware_addr(), device.transmit(now))
        {
            tx.consume(slaac::SOLICITATION_LEN, |buf| {
                slaac::solicitation(mac, link_local(mac).address(), buf);
            });
        }
    }

    /// Puts a SLAAC change into the interface's addresses and routes, and
    /// logs it.
    fn apply(&mut self, change: Change) {
        match change {
            Change::AddressAdded(c) => {
                let mut added = false;
                self.iface.update_ip_addrs(|a| {
                    added = a.push(IpCidr::Ipv6(c)).is_ok();
                });
                if added {
                    info!("net: IPv6 {c} from a router advertisement");
                } else {
                    warn!("net: no room for IPv6 {c} from a router advertisement");
                }
            }
            Change::AddressExpired(c) => {
                self.iface
                    .update_ip_addrs(|a| a.retain(|x| *x != IpCidr::Ipv6(c)));
                warn!("net: IPv6 {c} expired");
            }
            Change::RouterAdded(r) if !self.static_ipv6_gateway => {
                if self.iface.routes_mut().add_default_ipv6_route(r).is_ok() {
                    info!("net: IPv6 default router {r}");
                }
            }
            Change::RouterRemoved(r) if !self.static_ipv6_gateway => {
                self.iface.routes_mut().remove_default_ipv6_route();
                warn!("net: IPv6 default router {r} gone");
            }
            Change::RouterAdded(_) | Change::RouterRemoved(_) => {}
        }
    }

    fn poll_dhcp(&mut self) {
        let Some(h) = self.dhcp else { return };
        let event = match self.sockets.get_mut::<dhcpv4::Socket>(h).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(c)) => Some((
                c.address,
                c.router,
                c.dns_servers.iter().copied().collect::<Vec<_>>(),
            )),
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        match event {
            Some((address, router, dns_servers)) => {
                info!(
                    "net: DHCP lease {address}{}, DNS {:?}",
                    router
                        .map(|r| alloc::format!(" via {r}"))
                        .unwrap_or_default(),
                    dns_servers
                );
                self.iface.update_ip_addrs(|a| {
                    a.retain(|c| !matches!(c, IpCidr::Ipv4(_)));
                    let _ = a.push(IpCidr::Ipv4(address));
                });
                self.gateway = router;
                match router {
                    Some(r) => {
                        let _ = self.iface.routes_mut().add_default_ipv4_route(r);
                    }
                    None => {
                        self.iface.routes_mut().remove_default_ipv4_route();
                    }
                }
                self.dhcp_dns = dns_servers.into_iter().map(IpAddress::Ipv4).collect();
                self.refresh_dns_servers();
                self.announce = true;
            }
            None => {
                // smoltcp also reports "deconfigured" when it starts.
                if self.ipv4().is_some() {
                    warn!("net: DHCP lease lost");
                }
                self.iface
                    .update_ip_addrs(|a| a.retain(|c| !matches!(c, IpCidr::Ipv4(_))));
                self.iface.routes_mut().remove_default_ipv4_route();
                self.dhcp_dns.clear();
                self.refresh_dns_servers();
            }
        }
    }

    /// When the interface next needs to run (None: only on input).
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        let iface = self.iface.poll_at(now, &self.sockets);
        let slaac = self.slaac.as_ref().and_then(Slaac::poll_at);
        [iface, slaac].into_iter().flatten().min()
    }
}

/// The device while SLAAC is on: every received frame is also offered to
/// [`slaac::heard`], and the router advertisements found are collected (at
/// most [`ADVERTS_PER_POLL`]; smoltcp itself ignores them).
struct Listening<'a, D: Device> {
    device: &'a mut D,
    adverts: &'a mut Vec<Advert>,
}

/// Router advertisements taken in per poll; more are dropped (a flood
/// cannot grow memory).
const ADVERTS_PER_POLL: usize = 4;

/// A received frame of [`Listening`].
struct ListeningRx<'a, T> {
    token: T,
    adverts: &'a mut Vec<Advert>,
}

impl<T: RxToken> RxToken for ListeningRx<'_, T> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let adverts = self.adverts;
        self.token.consume(|frame| {
            if adverts.len() < ADVERTS_PER_POLL
                && let Some(a) = slaac::heard(frame)
            {
                adverts.push(a);
            }
            f(frame)
        })
    }

    fn meta(&self) -> PacketMeta {
        self.token.meta()
    }
}

impl<D: Device> Device for Listening<'_, D> {
    type RxToken<'b>
        = ListeningRx<'b, D::RxToken<'b>>
    where
        Self: 'b;
    type TxToken<'b>
        = D::TxToken<'b>
    where
        Self: 'b;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.device.receive(timestamp)?;
        Some((
            ListeningRx {
                token: rx,
                adverts: self.adverts,
            },
            tx,
        ))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.device.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

/// Broadcasts an ARP request from `ip` at `mac` for `target`. With
/// `target == ip` it is a gratuitous ARP: it announces the address, so the
/// first connection forwarded to it does not wait for an ARP round trip
/// (and stale caches learn the new MAC).
pub fn arp_request<D: Device>(
    device: &mut D,
    now: Instant,
    mac: EthernetAddress,
    ip: Ipv4Address,
    target: Ipv4Address,
) {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Arp,
    };
    let len = eth.buffer_len() + arp.buffer_len();
    if let Some(tx) = device.transmit(now) {
        tx.consume(len, |buf| {
            let mut frame = EthernetFrame::new_unchecked(buf);
            eth.emit(&mut frame);
            arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_stable_local_unicast() {
        let a = mac_from_name("unipi");
        assert_eq!(a, mac_from_name("unipi"));
        assert_ne!(a, mac_from_name("unipi2"));
        assert_eq!(a.0[0] & 0x03, 0x02, "locally administered, unicast");
    }

    #[test]
    fn gratuitous_arp_frame() {
        use smoltcp::phy::{Loopback, Medium, RxToken};
        let mut dev = Loopback::new(Medium::Ethernet);
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let ip = Ipv4Address::new(192, 168, 254, 10);
        arp_request(&mut dev, Instant::ZERO, mac, ip, ip);
        let (rx, _) = dev.receive(Instant::ZERO).unwrap();
        rx.consume(|buf| {
            let f = EthernetFrame::new_checked(buf).unwrap();
            assert_eq!(f.dst_addr(), EthernetAddress::BROADCAST);
            let arp = ArpRepr::parse(&ArpPacket::new_checked(f.payload()).unwrap()).unwrap();
            match arp {
                ArpRepr::EthernetIpv4 {
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                } => {
                    assert_eq!(source_protocol_addr, ip);
                    assert_eq!(target_protocol_addr, ip);
                }
                _ => panic!("not an ARP request"),
            }
        });
    }

    /// A link whose received frames the test queues and whose sent frames
    /// it inspects.
    #[derive(Default)]
    struct TestLink {
        rx: std::collections::VecDeque<Vec<u8>>,
        tx: Vec<Vec<u8>>,
    }

    struct Rx(Vec<u8>);
    struct Tx<'a>(&'a mut Vec<Vec<u8>>);

    impl smoltcp::phy::RxToken for Rx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl TxToken for Tx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut buf = vec![0; len];
            let r = f(&mut buf);
            self.0.push(buf);
            r
        }
    }

    impl Device for TestLink {
        type RxToken<'a> = Rx;
        type TxToken<'a> = Tx<'a>;

        fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
            let frame = self.rx.pop_front()?;
            Some((Rx(frame), Tx(&mut self.tx)))
        }

        fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
            Some(Tx(&mut self.tx))
        }

        fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
            let mut c = smoltcp::phy::DeviceCapabilities::default();
            c.medium = smoltcp::phy::Medium::Ethernet;
            c.max_transmission_unit = 1514;
            c
        }
    }

    use slaac::tests::{ADDR as SLAAC_ADDR, PREFIX, ROUTER as ROUTER_LL, Ra};

    fn router_advert(prefix: Ipv6Address, prefix_len: u8) -> Vec<u8> {
        Ra {
            prefix,
            prefix_len,
            ..Ra::default()
        }
        .frame()
    }

    fn start_net(cmdline: &str, link: &mut TestLink) -> Net {
        let (cfg, errors) = Config::parse(cmdline);
        assert!(errors.is_empty(), "{errors:?}");
        let mac = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        Net::new(link, mac, &cfg, Instant::ZERO, 1)
    }

    #[test]
    fn link_local_is_modified_eui64() {
        let ll = link_local(EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        assert_eq!(
            ll,
            Ipv6Cidr::new(
                Ipv6Address::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456),
                64
            )
        );
        // The universal/local bit is inverted, not set.
        let ll = link_local(EthernetAddress([0x02, 0, 0, 0, 0, 1]));
        assert_eq!(ll.address().octets()[8], 0x00);
    }

    #[test]
    fn dual_stack_static_addresses() {
        let mut link = TestLink::default();
        let mut net = start_net(
            "--ipv4=10.0.0.2/24 --ipv6=2001:db8::2/64 --ipv6-gateway=fe80::1 \
             --accept-router-advertisements=false",
            &mut link,
        );
        net.poll(Instant::ZERO, &mut link);
        assert_eq!(
            net.ipv4().map(|c| c.address()),
            Some(Ipv4Address::new(10, 0, 0, 2))
        );
        let v6: Vec<Ipv6Cidr> = net.ipv6().collect();
        assert_eq!(v6.len(), 2);
        assert!(v6[0].address().is_unicast_link_local());
        assert_eq!(
            net.routable_ipv6().map(|c| c.address()),
            Some(Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2))
        );
        assert_eq!(
            net.iface
                .routes()
                .get_default_ipv6_route()
                .map(|r| r.via_router),
            Some(IpAddress::Ipv6(ROUTER_LL))
        );
        // No router solicitation when router advertisements are refused.
        assert!(!link.tx.iter().any(|f| f.get(54) == Some(&133)));
    }

    #[test]
    fn slaac_from_a_router_advertisement() {
        let mut link = TestLink::default();
        let mut net = start_net("--dns=2001:db8::53 --dns=10.9.9.9", &mut link);
        net.poll(Instant::ZERO, &mut link);
        // DHCP runs for IPv4 and a router solicitation went out for IPv6.
        let solicit = link.tx.iter().find(|f| f.get(54) == Some(&133));
        let solicit = solicit.expect("a router solicitation");
        assert_eq!(
            solicit[38..54],
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        );
        assert!(net.routable_ipv6().is_none());
        let lookup = net.resolve("git.test").unwrap();
        assert!(matches!(
            (lookup.aaaa, lookup.a),
            (Query::Off, Query::Pending(_))
        ));
        assert!(
            net.usable_dns_servers().is_empty(),
            "neither version can reach its server"
        );

        link.rx.push_back(router_advert(PREFIX, 64));
        net.poll(Instant::from_millis(10), &mut link);
        assert_eq!(
            net.routable_ipv6(),
            Some(Ipv6Cidr::new(SLAAC_ADDR, 64)),
            "{:?}",
            net.iface.ip_addrs()
        );
        assert_eq!(
            net.iface
                .routes()
                .get_default_ipv6_route()
                .map(|r| r.via_router),
            Some(IpAddress::Ipv6(ROUTER_LL))
        );
        assert!(
            net.ipv6()
                .next()
                .is_some_and(|c| c.address().is_unicast_link_local())
        );
        // The IPv6 resolver is usable now, the IPv4 one still is not.
        assert_eq!(
            net.usable_dns_servers(),
            [IpAddress::v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53)]
        );
        let lookup = net.resolve("git.test").unwrap();
        assert!(matches!(lookup.aaaa, Query::Pending(_)));
        assert!(matches!(lookup.a, Query::Pending(_)));
    }

    #[test]
    fn hostile_router_advertisements_change_nothing() {
        let mut link = TestLink::default();
        let mut net = start_net("--ipv4=10.0.0.2/24", &mut link);
        let before = net.iface.ip_addrs().to_vec();
        for (prefix, len) in [
            (PREFIX, 129),
            (PREFIX, 255),
            (Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 0), 64),
            (Ipv6Address::new(0xff0e, 1, 2, 3, 0, 0, 0, 0), 64),
        ] {
            link.rx.push_back(router_advert(prefix, len));
            net.poll(Instant::from_millis(10), &mut link);
            assert_eq!(net.iface.ip_addrs(), before.as_slice(), "{prefix}/{len}");
        }
    }

    #[test]
    fn unanswered_solicitations_leave_nothing_to_poll_for() {
        let mut link = TestLink::default();
        let mut net = start_net("--ipv4=10.0.0.2/24", &mut link);
        for s in 0..20 {
            net.poll(Instant::from_secs(s), &mut link);
        }
        let solicitations = link.tx.iter().filter(|f| f.get(54) == Some(&133)).count();
        assert_eq!(solicitations, 3);
        let now = Instant::from_secs(20);
        assert!(
            net.poll_at(now).is_none_or(|t| t > now),
            "a deadline in the past would keep the event loop from idling"
        );
    }

    #[test]
    fn a_static_gateway_wins_over_advertised_routers() {
        let mut link = TestLink::default();
        let mut net = start_net("--ipv6=2001:db8::2/64 --ipv6-gateway=fe80::99", &mut link);
        link.rx.push_back(router_advert(PREFIX, 64));
        net.poll(Instant::ZERO, &mut link);
        assert_eq!(net.ipv6().count(), 3, "link-local, static and SLAAC");
        assert_eq!(
            net.iface
                .routes()
                .get_default_ipv6_route()
                .map(|r| r.via_router),
            Some(IpAddress::v6(0xfe80, 0, 0, 0, 0, 0, 0, 0x99))
        );
    }

    #[test]
    fn dropped_lookups_free_their_resolver_slots() {
        let mut link = TestLink::default();
        let mut net = start_net(
            "--ipv4=10.0.0.2/24 --ipv6=2001:db8::2/64 --dns=10.0.0.53",
            &mut link,
        );
        for name in ["a.test", "b.test", "c.test"] {
            let lookup = net.resolve(name).unwrap();
            assert!(matches!(
                (lookup.aaaa, lookup.a),
                (Query::Pending(_), Query::Pending(_))
            ));
            net.poll(Instant::ZERO, &mut link);
            drop(lookup);
        }
        assert_eq!(net.lookups.len(), 1, "the first two were cancelled");
        // An answered lookup leaves nothing behind.
        let lookup = net.resolve("d.test").unwrap();
        assert_eq!(net.lookups.len(), 1);
        let mut lookup = lookup;
        for s in 1..60 {
            net.poll(Instant::from_secs(s), &mut link);
            lookup = match net.answer(lookup) {
                Answer::Pending(l) => l,
                Answer::Done(r) => {
                    assert_eq!(r, Err(ResolveError::Failed), "nobody answers");
                    assert!(net.lookups.is_empty());
                    return;
                }
            };
        }
        panic!("the lookup never ended");
    }

    #[test]
    fn one_version_only() {
        let mut link = TestLink::default();
        let mut net = start_net("--ipv6-only=true --dns=10.0.0.53", &mut link);
        net.poll(Instant::ZERO, &mut link);
        assert!(net.ipv4().is_none() && net.dhcp.is_none());
        assert_eq!(net.resolve("x.test").unwrap_err(), ResolveError::NoRoute);
        let h = net.add_tcp(vec![0; 64], vec![0; 64]);
        let v4 = IpEndpoint::new(IpAddress::v4(10, 0, 0, 1), 80);
        assert_eq!(net.connect(h, v4), Err(ConnectError::NoAddress(v4)));
        let global = IpEndpoint::new(IpAddress::v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 80);
        assert_eq!(net.connect(h, global), Err(ConnectError::NoAddress(global)));
        let ll = IpEndpoint::new(IpAddress::Ipv6(ROUTER_LL), 80);
        assert_eq!(net.connect(h, ll), Ok(()));
        assert!(alloc::format!("{}", ConnectError::NoAddress(global)).contains("--ipv6"));
        assert!(alloc::format!("{}", ConnectError::NoAddress(v4)).contains("--ipv4"));

        let mut link = TestLink::default();
        let mut net = start_net("--ipv4-only=true --ipv4=10.0.0.2/24", &mut link);
        link.rx.push_back(router_advert(PREFIX, 64));
        net.poll(Instant::ZERO, &mut link);
        assert_eq!(net.ipv6().count(), 0, "no IPv6 at all, SLAAC included");
        let lookup = net.resolve("x.test").unwrap();
        assert!(matches!(
            (lookup.aaaa, lookup.a),
            (Query::Off, Query::Pending(_))
        ));
    }

    #[test]
    fn ephemeral_ports_wrap_inside_the_range() {
        use smoltcp::phy::{Loopback, Medium};
        let mut dev = Loopback::new(Medium::Ethernet);
        let (cfg, _) = Config::parse("--ipv4=10.0.0.2/24");
        let mut net = Net::new(&mut dev, mac_from_name("t"), &cfg, Instant::ZERO, 0);
        let h = net.add_tcp(vec![0; 64], vec![0; 64]);
        net.last_port = u16::MAX;
        let remote = IpEndpoint::new(IpAddress::v4(10, 0, 0, 1), 80);
        net.connect(h, remote).unwrap();
        assert_eq!(
            net.tcp(h).local_endpoint().map(|e| e.port),
            Some(EPHEMERAL_FIRST)
        );
        net.connect(h, remote).unwrap();
        assert_eq!(
            net.tcp(h).local_endpoint().map(|e| e.port),
            Some(EPHEMERAL_FIRST + 1)
        );
    }
}
