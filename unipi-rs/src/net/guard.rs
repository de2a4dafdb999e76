//! A filter in front of smoltcp's receive path that drops the router
//! advertisements smoltcp 0.14 would panic on.
//!
//! With SLAAC on, smoltcp turns the prefix information of a router
//! advertisement into an address without checking it: a prefix length above
//! 128 trips an assertion in `Ipv6Cidr::new`, and a multicast prefix yields
//! a multicast "address" that `Interface::update_ip_addrs` refuses with a
//! panic. Any host on the link could send either. [`Guard`] wraps the
//! device and hands smoltcp an empty frame instead of such an
//! advertisement (smoltcp drops empty frames as malformed); every other
//! frame passes untouched. Written here because no crate does this: it is a
//! workaround for one smoltcp version (the tests in this file and the
//! `net_ingress` fuzz target show whether a newer smoltcp still needs it).

use smoltcp::phy::{Device, DeviceCapabilities, PacketMeta, RxToken};
use smoltcp::time::Instant;

/// Ethernet header: destination, source, EtherType.
const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
const IPV6_HEADER: usize = 40;
const NEXT_HOP_BY_HOP: u8 = 0;
const NEXT_ICMPV6: u8 = 58;
const ICMPV6_ROUTER_ADVERT: u8 = 134;
/// ICMPv6 header (4) plus the router advertisement's fixed fields (12).
const ROUTER_ADVERT_FIXED: usize = 16;
const OPTION_PREFIX_INFORMATION: u8 = 3;

/// Whether smoltcp may see `frame`: false only for a router advertisement
/// with a prefix information option that has a prefix length above 128 or a
/// multicast prefix. Reads at most the frame; never panics.
pub fn admit(frame: &[u8]) -> bool {
    match router_advert_options(frame) {
        Some(options) => !has_bad_prefix(options),
        None => true,
    }
}

/// The options of a router advertisement carried in `frame` (directly or
/// after a hop-by-hop header, the only extension header smoltcp reads
/// before ICMPv6), or None for any other frame.
fn router_advert_options(frame: &[u8]) -> Option<&[u8]> {
    if frame.get(12..14)? != ETHERTYPE_IPV6 {
        return None;
    }
    let ip = frame.get(ETHERNET_HEADER..)?;
    let mut next = *ip.get(6)?;
    let mut rest = ip.get(IPV6_HEADER..)?;
    if next == NEXT_HOP_BY_HOP {
        next = *rest.first()?;
        let len = (usize::from(*rest.get(1)?) + 1) * 8;
        rest = rest.get(len..)?;
    }
    if next != NEXT_ICMPV6 || *rest.first()? != ICMPV6_ROUTER_ADVERT {
        return None;
    }
    rest.get(ROUTER_ADVERT_FIXED..)
}

/// Walks the neighbor-discovery options (type, length in units of 8
/// bytes, data) the way smoltcp does, and checks every prefix information
/// option (RFC 4861 §4.6.2: prefix length at byte 2, prefix at 16..32).
fn has_bad_prefix(mut options: &[u8]) -> bool {
    while options.len() >= 2 {
        let kind = options[0];
        let len = usize::from(options[1]) * 8;
        if len == 0 {
            // smoltcp rejects the whole message.
            return false;
        }
        let Some(option) = options.get(..len) else {
            return false;
        };
        if kind == OPTION_PREFIX_INFORMATION && len == 32 {
            let prefix_len = option[2];
            let first_prefix_byte = option[16];
            if prefix_len > 128 || first_prefix_byte == 0xff {
                return true;
            }
        }
        options = &options[len..];
    }
    false
}

/// A device whose received frames pass [`admit`] first.
pub struct Guard<'d, D: Device + ?Sized>(pub &'d mut D);

/// A received frame, checked when smoltcp consumes it.
pub struct GuardedRx<T>(T);

impl<T: RxToken> RxToken for GuardedRx<T> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        self.0
            .consume(|frame| if admit(frame) { f(frame) } else { f(&[]) })
    }

    fn meta(&self) -> PacketMeta {
        self.0.meta()
    }
}

impl<D: Device + ?Sized> Device for Guard<'_, D> {
    type RxToken<'a>
        = GuardedRx<D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.0
            .receive(timestamp)
            .map(|(rx, tx)| (GuardedRx(rx), tx))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.0.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.0.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A router advertisement from fe80::1 to ff02::1 with one prefix
    /// information option; `hop_by_hop` puts an empty hop-by-hop header
    /// in front of the ICMPv6 message.
    pub(crate) fn router_advert(prefix: [u8; 16], prefix_len: u8, hop_by_hop: bool) -> Vec<u8> {
        let mut icmp = Vec::new();
        icmp.extend_from_slice(&[ICMPV6_ROUTER_ADVERT, 0, 0, 0]); // checksum left 0
        icmp.extend_from_slice(&[64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]);
        icmp.extend_from_slice(&[OPTION_PREFIX_INFORMATION, 4, prefix_len, 0xc0]);
        icmp.extend_from_slice(&[0, 0, 0x0e, 0x10, 0, 0, 0x0e, 0x10, 0, 0, 0, 0]);
        icmp.extend_from_slice(&prefix);
        let mut frame = Vec::new();
        frame.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1, 2, 0, 0, 0, 0, 1]);
        frame.extend_from_slice(&ETHERTYPE_IPV6);
        let payload_len = icmp.len() + if hop_by_hop { 8 } else { 0 };
        let next = if hop_by_hop {
            NEXT_HOP_BY_HOP
        } else {
            NEXT_ICMPV6
        };
        frame.extend_from_slice(&[0x60, 0, 0, 0, 0, payload_len as u8, next, 255]);
        frame.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        frame.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        if hop_by_hop {
            frame.extend_from_slice(&[NEXT_ICMPV6, 0, 1, 4, 0, 0, 0, 0]);
        }
        frame.extend_from_slice(&icmp);
        frame
    }

    const DOC_PREFIX: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const MULTICAST_PREFIX: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn admits_good_advertisements_and_other_frames() {
        assert!(admit(&router_advert(DOC_PREFIX, 64, false)));
        assert!(admit(&router_advert(DOC_PREFIX, 128, true)));
        assert!(admit(&[]));
        assert!(admit(&[0u8; 13]));
        let mut arp = router_advert(DOC_PREFIX, 200, false);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(admit(&arp), "not IPv6");
    }

    #[test]
    fn drops_what_smoltcp_would_panic_on() {
        for hbh in [false, true] {
            assert!(!admit(&router_advert(DOC_PREFIX, 129, hbh)));
            assert!(!admit(&router_advert(DOC_PREFIX, 255, hbh)));
            assert!(!admit(&router_advert(MULTICAST_PREFIX, 64, hbh)));
        }
    }

    #[test]
    fn truncated_frames_never_panic() {
        let bad = router_advert(MULTICAST_PREFIX, 64, true);
        for n in 0..bad.len() {
            let _ = admit(&bad[..n]);
        }
        // An option with length 0 ends parsing, as in smoltcp.
        let mut zero = router_advert(MULTICAST_PREFIX, 64, false);
        zero[ETHERNET_HEADER + IPV6_HEADER + ROUTER_ADVERT_FIXED + 1] = 0;
        assert!(admit(&zero));
    }
}
