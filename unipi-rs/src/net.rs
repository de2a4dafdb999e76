//! The network interface: smoltcp over the platform's Ethernet device, with
//! a static IPv4 address (`--ipv4`, `--ipv4-gateway`) or DHCP, and a DNS
//! resolver (servers from `--dns` or from the DHCP lease).
//!
//! [`Net`] owns the interface and every socket of the application. The rest
//! of the application holds socket handles and reaches the sockets through
//! [`Net::tcp`]; outgoing connections are opened with [`Net::connect`] (which
//! picks the ephemeral port) and host names are looked up with
//! [`Net::resolve`]. Nothing else touches smoltcp's interface.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use log::{info, warn};
use smoltcp::iface::{
    Config as IfaceConfig, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::{Device, TxToken};
use smoltcp::socket::dns::{self, GetQueryResultError, QueryHandle, StartQueryError};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DnsQueryType, EthernetAddress, EthernetFrame,
    EthernetProtocol, EthernetRepr, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address,
    Ipv4Cidr,
};

use crate::config::Config;

/// First port of the ephemeral range (RFC 6335).
const EPHEMERAL_FIRST: u16 = 49152;

/// The interface, its sockets and the addressing state.
pub struct Net {
    iface: Interface,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    dns: SocketHandle,
    static_dns: Vec<Ipv4Address>,
    /// A gratuitous ARP is due (new static or leased address).
    announce: bool,
    /// The last ephemeral port handed out.
    last_port: u16,
    /// The last poll received packets and left sending to the next one.
    egress_deferred: bool,
}

/// Why an outgoing connection could not be started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The interface has no address yet (DHCP has not answered).
    NoAddress,
    /// smoltcp refused the endpoint (unspecified address or port 0).
    Unaddressable(IpEndpoint),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::NoAddress => f.write_str("no IP address yet (waiting for DHCP)"),
            ConnectError::Unaddressable(ep) => write!(f, "cannot connect to {ep}"),
        }
    }
}

/// Why a name could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// The name is not a valid DNS name.
    InvalidName,
    /// No resolver is known (no `--dns`, and DHCP gave none).
    NoServer,
    /// The servers did not answer, or answered with an error.
    Failed,
    /// The answer held no address of the kind asked for.
    NoAddress,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResolveError::InvalidName => "not a valid DNS name",
            ResolveError::NoServer => "no DNS server known (set --dns, or use DHCP)",
            ResolveError::Failed => "the DNS servers gave no answer",
            ResolveError::NoAddress => "the name has no IPv4 address",
        })
    }
}

/// A name lookup in progress (see [`Net::resolve`]). Not `Clone`: the
/// resolver frees its slot when the answer is taken, which
/// [`Net::answer`] does exactly once by consuming it.
pub struct Lookup(QueryHandle);

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
    /// The lookup is over.
    Done(Result<IpAddress, ResolveError>),
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

impl Net {
    /// Creates the interface on `device` with `mac`; static addressing when
    /// `cfg.ipv4` is set, DHCP otherwise. `seed` randomises smoltcp's
    /// initial sequence numbers and the ephemeral ports.
    pub fn new<D: Device>(
        device: &mut D,
        mac: EthernetAddress,
        cfg: &Config,
        now: Instant,
        seed: u64,
    ) -> Net {
        let mut ic = IfaceConfig::new(HardwareAddress::Ethernet(mac));
        ic.random_seed = seed;
        let mut iface = Interface::new(ic, device, now);
        let mut sockets = SocketSet::new(vec![]);
        let static_dns: Vec<Ipv4Address> = cfg.dns.clone();
        let servers: Vec<IpAddress> = static_dns.iter().map(|a| IpAddress::Ipv4(*a)).collect();
        let dns = sockets.add(dns::Socket::new(&servers, vec![]));
        let dhcp = match cfg.ipv4 {
            Some(cidr) => {
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
            None => {
                info!("net: {mac}, no --ipv4: asking DHCP");
                Some(sockets.add(dhcpv4::Socket::new()))
            }
        };
        let span = u64::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        Net {
            iface,
            sockets,
            dhcp,
            dns,
            static_dns,
            announce: cfg.ipv4.is_some(),
            last_port: EPHEMERAL_FIRST + ((seed >> 16) % span) as u16,
            egress_deferred: false,
        }
    }

    /// The interface's IPv4 address, once configured.
    pub fn ipv4(&self) -> Option<Ipv4Cidr> {
        self.iface.ip_addrs().iter().find_map(|c| match c {
            IpCidr::Ipv4(c) => Some(*c),
            #[allow(unreachable_patterns)]
            _ => None,
        })
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

    /// Opens a connection from socket `h` to `remote`, from the next
    /// ephemeral port. Whatever the socket did before is aborted.
    pub fn connect(&mut self, h: SocketHandle, remote: IpEndpoint) -> Result<(), ConnectError> {
        if self.iface.ip_addrs().is_empty() {
            return Err(ConnectError::NoAddress);
        }
        self.last_port = if self.last_port == u16::MAX {
            EPHEMERAL_FIRST
        } else {
            self.last_port + 1
        };
        let port = self.last_port;
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        s.abort();
        s.connect(self.iface.context(), remote, port)
            .map_err(|_| ConnectError::Unaddressable(remote))
    }

    /// Starts looking up the IPv4 address of `name`; poll the answer with
    /// [`Net::answer`].
    pub fn resolve(&mut self, name: &str) -> Result<Lookup, ResolveError> {
        let s = self.sockets.get_mut::<dns::Socket>(self.dns);
        match s.start_query(self.iface.context(), name, DnsQueryType::A) {
            Ok(q) => Ok(Lookup(q)),
            Err(StartQueryError::InvalidName | StartQueryError::NameTooLong) => {
                Err(ResolveError::InvalidName)
            }
            Err(StartQueryError::NoFreeSlot) => Err(ResolveError::Failed),
        }
    }

    /// The answer to `lookup`, or the lookup back while it is pending.
    pub fn answer(&mut self, lookup: Lookup) -> Answer {
        let s = self.sockets.get_mut::<dns::Socket>(self.dns);
        Answer::Done(match s.get_query_result(lookup.0) {
            Err(GetQueryResultError::Pending) => return Answer::Pending(lookup),
            Err(GetQueryResultError::Failed) => Err(if self.has_dns_server() {
                ResolveError::Failed
            } else {
                ResolveError::NoServer
            }),
            Ok(addrs) => addrs
                .iter()
                .find(|a| matches!(a, IpAddress::Ipv4(_)))
                .copied()
                .ok_or(ResolveError::NoAddress),
        })
    }

    fn has_dns_server(&self) -> bool {
        !self.static_dns.is_empty() || self.dhcp.is_some() && self.ipv4().is_some()
    }

    /// Runs the interface: ingress, egress, timers and DHCP. Returns true
    /// when socket state may have changed.
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
        let mut received = false;
        loop {
            match self
                .iface
                .poll_ingress_single(now, device, &mut self.sockets)
            {
                PollIngressSingleResult::None => break,
                PollIngressSingleResult::PacketProcessed => received = true,
                PollIngressSingleResult::SocketStateChanged => {
                    received = true;
                    any = true;
                    changed(self);
                }
            }
        }
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
        if self.announce {
            self.announce = false;
            if let (Some(cidr), HardwareAddress::Ethernet(mac)) =
                (self.ipv4(), self.iface.hardware_addr())
            {
                gratuitous_arp(device, now, mac, cidr.address());
            }
        }
        any
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
                    a.clear();
                    let _ = a.push(IpCidr::Ipv4(address));
                });
                match router {
                    Some(r) => {
                        let _ = self.iface.routes_mut().add_default_ipv4_route(r);
                    }
                    None => {
                        self.iface.routes_mut().remove_default_ipv4_route();
                    }
                }
                if self.static_dns.is_empty() {
                    let servers: Vec<IpAddress> =
                        dns_servers.iter().map(|a| IpAddress::Ipv4(*a)).collect();
                    self.sockets
                        .get_mut::<dns::Socket>(self.dns)
                        .update_servers(&servers);
                }
                self.announce = true;
            }
            None => {
                // smoltcp also reports "deconfigured" when it starts.
                if self.ipv4().is_some() {
                    warn!("net: DHCP lease lost");
                }
                self.iface.update_ip_addrs(|a| a.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
            }
        }
    }

    /// When the interface next needs to run (None: only on input).
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        self.iface.poll_at(now, &self.sockets)
    }
}

/// Announces `ip` at `mac` with a gratuitous ARP request, so that the
/// first connection forwarded to this address does not wait for an ARP
/// round trip (and stale caches learn the new MAC).
pub fn gratuitous_arp<D: Device>(
    device: &mut D,
    now: Instant,
    mac: EthernetAddress,
    ip: Ipv4Address,
) {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: ip,
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
        gratuitous_arp(&mut dev, Instant::ZERO, mac, ip);
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
