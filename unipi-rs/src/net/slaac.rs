//! Router discovery and stateless address autoconfiguration: the part of
//! RFC 4861 §6.3 and RFC 4862 §5.5 a host with one interface needs. Up to
//! three router solicitations, 4 s apart; from router advertisements one
//! address (a /64 prefix with the interface identifier of the link-local
//! address) and one default router, each kept for its advertised lifetime.
//!
//! Why not smoltcp's own SLAAC (`proto-ipv6-slaac`)? In smoltcp 0.14 it
//! panics on an advertisement with a prefix length above 128 or a multicast
//! prefix (any host on the link can send one), and once its three
//! solicitations go unanswered its `poll_at` stays in the past for good,
//! so the event loop would never idle on a network without an IPv6 router.
//! This module uses smoltcp's wire parsers (which check the ICMPv6
//! checksum) and keeps its own timers.
//!
//! [`Slaac`] is sans-IO: [`heard`] turns a received frame into an
//! [`Advert`], [`Slaac::advert`] and [`Slaac::expire`] update the state and
//! say what changed, [`Slaac::solicitation_due`] says when to send a
//! solicitation, which [`solicitation`] builds.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Message, Icmpv6Packet,
    Icmpv6Repr, IpProtocol, Ipv6Address, Ipv6Cidr, Ipv6Packet, Ipv6Repr, NdiscPrefixInfoFlags,
    NdiscRepr,
};

/// Solicitations sent when nothing answers (RFC 4861 MAX_RTR_SOLICITATIONS).
const SOLICITATIONS: u8 = 3;
/// Between solicitations (RFC 4861 RTR_SOLICITATION_INTERVAL).
const SOLICITATION_INTERVAL: Duration = Duration::from_secs(4);
/// An advertisement may shorten an address's remaining lifetime to no less
/// than this (RFC 4862 §5.5.3 e), so a forged one cannot remove it at once.
const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);
/// A lifetime of all ones means "forever" (RFC 4861 §4.6.2).
const INFINITE: Duration = Duration::from_secs(0xffff_ffff);

const ALL_ROUTERS: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// What a valid router advertisement says that matters here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    /// The sender (a link-local address).
    pub router: Ipv6Address,
    /// How long the sender is a default router; zero: it is not (any more).
    pub router_lifetime: Duration,
    /// A prefix for address autoconfiguration, if the advertisement has one
    /// with the autonomous flag (smoltcp keeps the last prefix option).
    pub prefix: Option<Prefix>,
}

/// A prefix information option with the autonomous flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// The prefix (bits beyond `len` are ignored).
    pub prefix: Ipv6Address,
    /// The prefix length; only 64 can be used with a 64-bit identifier.
    pub len: u8,
    /// How long addresses from it stay valid.
    pub valid: Duration,
}

/// The router advertisement carried in `frame`, if it is one that passes
/// RFC 4861 §6.1.2: ICMPv6 directly after the IPv6 header, hop limit 255,
/// link-local source, correct checksum, code 0. Never panics.
pub fn heard(frame: &[u8]) -> Option<Advert> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
    let ip_repr = Ipv6Repr::parse(&ip).ok()?;
    if ip_repr.next_header != IpProtocol::Icmpv6
        || ip_repr.hop_limit != 255
        || !ip_repr.src_addr.is_unicast_link_local()
    {
        return None;
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    if icmp.msg_type() != Icmpv6Message::RouterAdvert {
        return None;
    }
    let repr = Icmpv6Repr::parse(
        &ip_repr.src_addr,
        &ip_repr.dst_addr,
        &icmp,
        &ChecksumCapabilities::default(),
    )
    .ok()?;
    let Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        router_lifetime,
        prefix_info,
        ..
    }) = repr
    else {
        return None;
    };
    let prefix = prefix_info
        .filter(|p| p.flags.contains(NdiscPrefixInfoFlags::ADDRCONF))
        .filter(|p| p.preferred_lifetime <= p.valid_lifetime)
        .map(|p| Prefix {
            prefix: p.prefix,
            len: p.prefix_len,
            valid: p.valid_lifetime,
        });
    Some(Advert {
        router: ip_repr.src_addr,
        router_lifetime,
        prefix,
    })
}

/// A value with the time it stops being valid (None: never).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lease<T> {
    value: T,
    until: Option<Instant>,
}

impl<T> Lease<T> {
    fn new(value: T, now: Instant, lifetime: Duration) -> Lease<T> {
        Lease {
            value,
            until: (lifetime < INFINITE).then(|| now + lifetime),
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.until.is_some_and(|t| t <= now)
    }
}

/// What changed: the caller updates the interface's addresses and routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new autoconfigured address.
    AddressAdded(Ipv6Cidr),
    /// The autoconfigured address expired.
    AddressExpired(Ipv6Cidr),
    /// A new default router.
    RouterAdded(Ipv6Address),
    /// The default router expired or withdrew.
    RouterRemoved(Ipv6Address),
}

/// The router-discovery and SLAAC state of one interface.
#[derive(Debug)]
pub struct Slaac {
    /// The interface identifier (second half of the link-local address).
    iid: [u8; 8],
    solicitations_left: u8,
    next_solicitation: Instant,
    address: Option<Lease<Ipv6Cidr>>,
    router: Option<Lease<Ipv6Address>>,
}

impl Slaac {
    /// Starts router discovery for the interface whose link-local address
    /// is `link_local`; the first solicitation is due at `now`.
    pub fn new(link_local: Ipv6Address, now: Instant) -> Slaac {
        let mut iid = [0; 8];
        iid.copy_from_slice(&link_local.octets()[8..]);
        Slaac {
            iid,
            solicitations_left: SOLICITATIONS,
            next_solicitation: now,
            address: None,
            router: None,
        }
    }

    /// The autoconfigured address, if any.
    pub fn address(&self) -> Option<Ipv6Cidr> {
        self.address.map(|l| l.value)
    }

    /// The default router, if any.
    pub fn router(&self) -> Option<Ipv6Address> {
        self.router.map(|l| l.value)
    }

    /// Takes in an advertisement received at `now`; returns what changed
    /// (at most an address and a router).
    pub fn advert(&mut self, a: &Advert, now: Instant) -> heapless::Vec<Change, 2> {
        let mut changes = heapless::Vec::new();
        // Someone answered: no more solicitations.
        self.solicitations_left = 0;
        if let Some(p) = a.prefix
            && let Some(change) = self.prefix(&p, now)
        {
            let _ = changes.push(change);
        }
        match self.router {
            Some(r) if r.value == a.router && a.router_lifetime == Duration::ZERO => {
                self.router = None;
                let _ = changes.push(Change::RouterRemoved(r.value));
            }
            Some(ref mut r) if r.value == a.router => {
                *r = Lease::new(a.router, now, a.router_lifetime);
            }
            Some(_) => {} // Keep the first router while it lasts.
            None if a.router_lifetime > Duration::ZERO => {
                self.router = Some(Lease::new(a.router, now, a.router_lifetime));
                let _ = changes.push(Change::RouterAdded(a.router));
            }
            None => {}
        }
        changes
    }

    /// RFC 4862 §5.5.3 d and e, for the one address this host forms.
    fn prefix(&mut self, p: &Prefix, now: Instant) -> Option<Change> {
        let octets = p.prefix.octets();
        // A 64-bit identifier needs a /64; a multicast or link-local prefix
        // cannot make an address.
        if p.len != 64 || octets[0] == 0xff || p.prefix.is_unicast_link_local() {
            return None;
        }
        let mut addr = [0u8; 16];
        addr[..8].copy_from_slice(&octets[..8]);
        addr[8..].copy_from_slice(&self.iid);
        let cidr = Ipv6Cidr::new(Ipv6Address::from(addr), 64);
        match &mut self.address {
            Some(lease) if lease.value == cidr => {
                let remaining = lease.until.map(|t| t - now.min(t));
                let valid = if p.valid > TWO_HOURS || remaining.is_some_and(|r| p.valid > r) {
                    p.valid
                } else if remaining.is_none_or(|r| r > TWO_HOURS) {
                    TWO_HOURS
                } else {
                    return None;
                };
                *lease = Lease::new(cidr, now, valid);
                None
            }
            // One autoconfigured address; other prefixes wait until it expires.
            Some(_) => None,
            None if p.valid > Duration::ZERO => {
                self.address = Some(Lease::new(cidr, now, p.valid));
                Some(Change::AddressAdded(cidr))
            }
            None => None,
        }
    }

    /// Drops what expired by `now`; returns what changed.
    pub fn expire(&mut self, now: Instant) -> heapless::Vec<Change, 2> {
        let mut changes = heapless::Vec::new();
        if let Some(l) = self.address
            && l.expired(now)
        {
            self.address = None;
            let _ = changes.push(Change::AddressExpired(l.value));
        }
        if let Some(l) = self.router
            && l.expired(now)
        {
            self.router = None;
            let _ = changes.push(Change::RouterRemoved(l.value));
        }
        changes
    }

    /// Whether a router solicitation is due at `now`; if so, counts it as
    /// sent.
    pub fn solicitation_due(&mut self, now: Instant) -> bool {
        if self.solicitations_left == 0 || now < self.next_solicitation {
            return false;
        }
        self.solicitations_left -= 1;
        self.next_solicitation = now + SOLICITATION_INTERVAL;
        true
    }

    /// When this state next needs [`Slaac::expire`] or
    /// [`Slaac::solicitation_due`] (None: only when an advertisement comes).
    pub fn poll_at(&self) -> Option<Instant> {
        let solicit = (self.solicitations_left > 0).then_some(self.next_solicitation);
        [
            solicit,
            self.address.and_then(|l| l.until),
            self.router.and_then(|l| l.until),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The bytes of a router solicitation from `mac` / `link_local` to all
/// routers (with the source link-layer address option), as one Ethernet
/// frame written into `buf`, which must hold [`SOLICITATION_LEN`] bytes.
pub fn solicitation(mac: EthernetAddress, link_local: Ipv6Address, buf: &mut [u8]) {
    let icmp = solicitation_icmp(mac);
    let ip = solicitation_ip(link_local, &icmp);
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 2]),
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut frame = EthernetFrame::new_unchecked(buf);
    eth.emit(&mut frame);
    let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet);
    icmp.emit(
        &link_local,
        &ALL_ROUTERS,
        &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
        &ChecksumCapabilities::default(),
    );
}

fn solicitation_icmp(mac: EthernetAddress) -> Icmpv6Repr<'static> {
    Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit {
        lladdr: Some(mac.into()),
    })
}

fn solicitation_ip(link_local: Ipv6Address, icmp: &Icmpv6Repr<'_>) -> Ipv6Repr {
    Ipv6Repr {
        src_addr: link_local,
        dst_addr: ALL_ROUTERS,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    }
}

/// The length of the frame [`solicitation`] writes.
pub const SOLICITATION_LEN: usize = 14 + 40 + 16;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use smoltcp::wire::{NdiscPrefixInformation, NdiscRouterFlags};

    pub(crate) const ROUTER: Ipv6Address = Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const ROUTER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const LL: Ipv6Address = Ipv6Address::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
    pub(crate) const PREFIX: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0);
    /// PREFIX with the interface identifier of LL (MAC 52:54:00:12:34:56).
    pub(crate) const ADDR: Ipv6Address =
        Ipv6Address::new(0x2001, 0xdb8, 1, 2, 0x5054, 0xff, 0xfe12, 0x3456);

    /// The parameters of a test advertisement.
    #[derive(Clone, Copy)]
    pub(crate) struct Ra {
        pub src: Ipv6Address,
        pub hop_limit: u8,
        pub router_lifetime: u64,
        pub prefix: Ipv6Address,
        pub prefix_len: u8,
        pub flags: NdiscPrefixInfoFlags,
        pub valid: u64,
        pub preferred: u64,
    }

    impl Default for Ra {
        fn default() -> Ra {
            Ra {
                src: ROUTER,
                hop_limit: 255,
                router_lifetime: 1800,
                prefix: PREFIX,
                prefix_len: 64,
                flags: NdiscPrefixInfoFlags::ON_LINK | NdiscPrefixInfoFlags::ADDRCONF,
                valid: 3600,
                preferred: 1800,
            }
        }
    }

    impl Ra {
        /// The advertisement as an Ethernet frame, checksum included.
        pub(crate) fn frame(&self) -> Vec<u8> {
            let all_nodes = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
            let icmp = Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
                hop_limit: 64,
                flags: NdiscRouterFlags::empty(),
                router_lifetime: Duration::from_secs(self.router_lifetime),
                reachable_time: Duration::ZERO,
                retrans_time: Duration::ZERO,
                lladdr: Some(ROUTER_MAC.into()),
                mtu: None,
                prefix_info: Some(NdiscPrefixInformation {
                    prefix_len: self.prefix_len,
                    flags: self.flags,
                    valid_lifetime: Duration::from_secs(self.valid),
                    preferred_lifetime: Duration::from_secs(self.preferred),
                    prefix: self.prefix,
                }),
            });
            let ip = Ipv6Repr {
                src_addr: self.src,
                dst_addr: all_nodes,
                next_header: IpProtocol::Icmpv6,
                payload_len: icmp.buffer_len(),
                hop_limit: self.hop_limit,
            };
            let eth = EthernetRepr {
                src_addr: ROUTER_MAC,
                dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
                ethertype: EthernetProtocol::Ipv6,
            };
            let mut buf = vec![0; eth.buffer_len() + ip.buffer_len() + icmp.buffer_len()];
            let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
            eth.emit(&mut frame);
            let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
            ip.emit(&mut packet);
            icmp.emit(
                &self.src,
                &all_nodes,
                &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
                &ChecksumCapabilities::default(),
            );
            buf
        }
    }

    fn at(s: u64) -> Instant {
        Instant::from_secs(s as i64)
    }

    #[test]
    fn parses_valid_advertisements_only() {
        let a = heard(&Ra::default().frame()).unwrap();
        assert_eq!(a.router, ROUTER);
        assert_eq!(a.router_lifetime, Duration::from_secs(1800));
        assert_eq!(
            a.prefix,
            Some(Prefix {
                prefix: PREFIX,
                len: 64,
                valid: Duration::from_secs(3600)
            })
        );
        let no_autoconf = Ra {
            flags: NdiscPrefixInfoFlags::ON_LINK,
            ..Ra::default()
        };
        assert_eq!(heard(&no_autoconf.frame()).unwrap().prefix, None);
        let preferred_too_long = Ra {
            preferred: 7200,
            ..Ra::default()
        };
        assert_eq!(heard(&preferred_too_long.frame()).unwrap().prefix, None);
        // RFC 4861 §6.1.2: only from a link-local source, only hop limit 255.
        let global = Ra {
            src: ADDR,
            ..Ra::default()
        };
        assert_eq!(heard(&global.frame()), None);
        let forwarded = Ra {
            hop_limit: 254,
            ..Ra::default()
        };
        assert_eq!(heard(&forwarded.frame()), None);
        let mut bad_checksum = Ra::default().frame();
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 1;
        assert_eq!(heard(&bad_checksum), None);
    }

    #[test]
    fn truncated_or_garbled_frames_never_panic() {
        let f = Ra::default().frame();
        for n in 0..f.len() {
            assert_eq!(heard(&f[..n]), None);
        }
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0xff;
            let _ = heard(&g);
        }
    }

    #[test]
    fn address_and_router_from_an_advertisement() {
        let mut s = Slaac::new(LL, at(0));
        let a = heard(&Ra::default().frame()).unwrap();
        assert_eq!(
            s.advert(&a, at(1)).as_slice(),
            [
                Change::AddressAdded(Ipv6Cidr::new(ADDR, 64)),
                Change::RouterAdded(ROUTER)
            ]
        );
        assert_eq!(s.address(), Some(Ipv6Cidr::new(ADDR, 64)));
        assert_eq!(s.router(), Some(ROUTER));
        // Repeats change nothing; the router expires after its lifetime.
        assert!(s.advert(&a, at(2)).is_empty());
        assert_eq!(s.poll_at(), Some(at(2 + 1800)));
        assert_eq!(
            s.expire(at(2 + 1800)).as_slice(),
            [Change::RouterRemoved(ROUTER)]
        );
        assert_eq!(s.poll_at(), Some(at(2 + 3600)));
        assert_eq!(
            s.expire(at(2 + 3600)).as_slice(),
            [Change::AddressExpired(Ipv6Cidr::new(ADDR, 64))]
        );
        assert_eq!(s.poll_at(), None);
    }

    #[test]
    fn unusable_prefixes_make_no_address() {
        for (prefix, len) in [
            (PREFIX, 48),
            (PREFIX, 128),
            (PREFIX, 200),
            (Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 0), 64),
            (Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 64),
        ] {
            let mut s = Slaac::new(LL, at(0));
            let ra = Ra {
                prefix,
                prefix_len: len,
                ..Ra::default()
            };
            let a = heard(&ra.frame()).unwrap();
            assert_eq!(
                s.advert(&a, at(0)).as_slice(),
                [Change::RouterAdded(ROUTER)],
                "{prefix}/{len}"
            );
            assert_eq!(s.address(), None);
        }
    }

    #[test]
    fn two_hour_rule() {
        let mut s = Slaac::new(LL, at(0));
        let long = Ra {
            valid: 86400,
            ..Ra::default()
        };
        s.advert(&heard(&long.frame()).unwrap(), at(0));
        // A forged advertisement with lifetime 0 cuts it to two hours, no less.
        let zero = Ra {
            valid: 0,
            preferred: 0,
            ..Ra::default()
        };
        assert!(s.advert(&heard(&zero.frame()).unwrap(), at(10)).is_empty());
        assert_eq!(s.address.and_then(|l| l.until), Some(at(10 + 7200)));
        // Within the last two hours, shorter lifetimes are ignored.
        assert!(s.advert(&heard(&zero.frame()).unwrap(), at(20)).is_empty());
        assert_eq!(s.address.and_then(|l| l.until), Some(at(10 + 7200)));
        // Longer ones always count.
        s.advert(&heard(&long.frame()).unwrap(), at(30));
        assert_eq!(s.address.and_then(|l| l.until), Some(at(30 + 86400)));
        // Infinite lifetimes never expire.
        let forever = Ra {
            valid: 0xffff_ffff,
            preferred: 0xffff_ffff,
            router_lifetime: 0,
            ..Ra::default()
        };
        s.advert(&heard(&forever.frame()).unwrap(), at(40));
        assert_eq!(s.address.and_then(|l| l.until), None);
        assert_eq!(s.router(), None, "router lifetime 0 withdrew it");
    }

    #[test]
    fn first_router_and_prefix_stay() {
        let mut s = Slaac::new(LL, at(0));
        s.advert(&heard(&Ra::default().frame()).unwrap(), at(0));
        let other = Ra {
            src: Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
            prefix: Ipv6Address::new(0x2001, 0xdb8, 9, 9, 0, 0, 0, 0),
            ..Ra::default()
        };
        assert!(s.advert(&heard(&other.frame()).unwrap(), at(1)).is_empty());
        assert_eq!(s.router(), Some(ROUTER));
        assert_eq!(s.address(), Some(Ipv6Cidr::new(ADDR, 64)));
    }

    #[test]
    fn three_solicitations_then_silence() {
        let mut s = Slaac::new(LL, at(0));
        let mut sent = Vec::new();
        for t in 0..30 {
            if s.solicitation_due(at(t)) {
                sent.push(t);
            }
        }
        assert_eq!(sent, [0, 4, 8]);
        assert_eq!(s.poll_at(), None, "nothing left to wait for");
        // An advertisement ends the solicitations early.
        let mut s = Slaac::new(LL, at(0));
        assert!(s.solicitation_due(at(0)));
        s.advert(&heard(&Ra::default().frame()).unwrap(), at(1));
        assert!(!s.solicitation_due(at(4)));
    }

    #[test]
    fn solicitation_frame() {
        let mac = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        let mut buf = [0u8; SOLICITATION_LEN];
        solicitation(mac, LL, &mut buf);
        let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(eth.dst_addr(), EthernetAddress([0x33, 0x33, 0, 0, 0, 2]));
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        let ip_repr = Ipv6Repr::parse(&ip).unwrap();
        assert_eq!((ip_repr.src_addr, ip_repr.dst_addr), (LL, ALL_ROUTERS));
        assert_eq!(ip_repr.hop_limit, 255);
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let repr = Icmpv6Repr::parse(&LL, &ALL_ROUTERS, &icmp, &ChecksumCapabilities::default());
        assert_eq!(
            repr,
            Ok(Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit {
                lladdr: Some(mac.into())
            }))
        );
        assert_eq!(
            solicitation_ip(LL, &solicitation_icmp(mac)).buffer_len()
                + solicitation_icmp(mac).buffer_len()
                + 14,
            SOLICITATION_LEN
        );
    }
}
