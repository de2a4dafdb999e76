//! The network interface's receive path and router discovery: `net::Net`
//! (dual stack with DHCP, SLAAC on, a listening TCP socket) polled with
//! arbitrary Ethernet frames, `net::slaac::heard` on each frame, and the
//! `net::slaac::Slaac` state machine driven with arbitrary advertisements.
//!
//! Input, read twice:
//! - as frames: records of a time step (1 byte, in 100 ms), a length
//!   (2 bytes, big endian) and that many bytes (fewer at the end);
//! - as advertisements: records of 18 bytes: time step (1, in seconds),
//!   router (1: fe80::N), router lifetime (2), prefix (8: the upper half),
//!   prefix length (1), valid lifetime (4), flags (1: bit 0 a prefix is
//!   present).
//!
//! Invariants: nothing panics; the interface keeps at most 4 addresses and
//! its link-local one; a SLAAC address is a /64 ending in the interface
//! identifier; after `expire(now)` and `solicitation_due(now)`, `poll_at` is
//! never in the past (else the event loop would never idle).
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv6Address};
use unipi::config::Config;
use unipi::net::slaac::{Advert, Prefix, Slaac};
use unipi::net::{Net, link_local};

const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

#[derive(Default)]
struct Frames {
    rx: VecDeque<Vec<u8>>,
    sent: usize,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut usize);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        *self.0 += 1;
        f(&mut vec![0; len])
    }
}

impl Device for Frames {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let f = self.rx.pop_front()?;
        Some((Rx(f), Tx(&mut self.sent)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.sent))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
}

fn frames(data: &[u8]) {
    let (cfg, _) = Config::parse("--dns=2001:db8::53 --dns=10.0.0.53");
    let mut dev = Frames::default();
    let mut net = Net::new(&mut dev, MAC, &cfg, Instant::ZERO, 1);
    let h = net.add_tcp(vec![0; 1024], vec![0; 1024]);
    let _ = net.tcp(h).listen(80);
    let ll = link_local(MAC);
    let mut now = Instant::ZERO;
    let mut rest = data;
    while rest.len() >= 3 {
        now += Duration::from_millis(100 * u64::from(rest[0]));
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let frame = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let _ = unipi::net::slaac::heard(frame);
        dev.rx.push_back(frame.to_vec());
        net.poll(now, &mut dev);
        let v6: Vec<_> = net.ipv6().collect();
        assert!(v6.len() <= 4);
        assert_eq!(v6.first(), Some(&ll));
        let _ = net.poll_at(now);
    }
    let _ = net.resolve("git.test");
}

fn adverts(data: &[u8]) {
    let ll = link_local(MAC).address();
    let mut s = Slaac::new(ll, Instant::ZERO);
    let mut now = Instant::ZERO;
    for r in data.chunks_exact(18) {
        now += Duration::from_secs(u64::from(r[0]));
        let mut prefix = [0u8; 16];
        prefix[..8].copy_from_slice(&r[4..12]);
        let a = Advert {
            router: Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(r[1])),
            router_lifetime: Duration::from_secs(u64::from(u16::from_be_bytes([r[2], r[3]]))),
            prefix: (r[17] & 1 == 1).then(|| Prefix {
                prefix: Ipv6Address::from(prefix),
                len: r[12],
                valid: Duration::from_secs(u64::from(u32::from_be_bytes([
                    r[13], r[14], r[15], r[16],
                ]))),
            }),
        };
        let _ = s.advert(&a, now);
        let _ = s.expire(now);
        let _ = s.solicitation_due(now);
        if let Some(t) = s.poll_at() {
            assert!(t > now, "poll_at {t} is not after {now}");
        }
        if let Some(c) = s.address() {
            assert_eq!(c.prefix_len(), 64);
            assert_eq!(c.address().octets()[8..], ll.octets()[8..]);
            assert!(!c.address().is_multicast() && !c.address().is_unicast_link_local());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    frames(data);
    adverts(data);
});
