//! Two smoltcp interfaces connected by two in-memory muennet channels
//! (A's `out` is B's `in` and vice versa) establish a TCP connection and
//! exchange data in both directions.
#![cfg(feature = "smoltcp")]

use std::alloc::{Layout, alloc_zeroed, dealloc};

use muen_abi::channel::ChannelMemory;
use muen_abi::muennet::{MuennetDevice, NetReader, NetWriter};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address};

/// A page-aligned zeroed allocation standing in for one channel region.
struct Region {
    ptr: *mut u8,
    layout: Layout,
}

impl Region {
    fn new(len: usize) -> Self {
        let layout = Layout::from_size_align(len, 4096).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Region { ptr, layout }
    }

    fn mem(&self) -> ChannelMemory {
        // SAFETY: the allocation outlives every device built on it (regions
        // are dropped at the end of the test, after the devices).
        unsafe { ChannelMemory::new(self.ptr, self.layout.size()) }.unwrap()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32) as u8
                ^ seed
        })
        .collect()
}

#[test]
fn tcp_over_muennet_both_ways() {
    // Small channels (43 slots each) so the rings wrap.
    let stats = exchange(0x1_0000, 96 * 1024, 16 * 1024, &[]);
    for s in stats {
        assert_eq!(s.rx_overruns, 0);
        assert_eq!(s.rx_bad, 0);
        assert_eq!(s.tx_dropped, 0);
    }
}

#[test]
fn tcp_over_lossy_muennet_recovers() {
    // 16 slots per direction; at a few points each side floods its own ring
    // with 17 junk frames, so the peer's reader overruns, loses whatever was
    // unread, skips to the newest data, and TCP retransmits.
    let stats = exchange(64 + 16 * 1516, 64 * 1024, 8 * 1024, &[2, 5, 9, 14, 1200]);
    for s in stats {
        assert!(s.rx_overruns > 0, "{stats:?}");
        assert!(s.rx_lost > 0);
    }
}

/// Transfers `size` bytes each way between two interfaces whose channels are
/// `channel_size` bytes; socket buffers of `window` bytes; floods both rings
/// at the iterations in `flood_at` (1 iteration = 1 ms).
fn exchange(
    channel_size: usize,
    size: usize,
    window: usize,
    flood_at: &[u32],
) -> [muen_abi::muennet::DeviceStats; 2] {
    const SIZE_LIMIT: usize = 1 << 20;
    assert!(size <= SIZE_LIMIT);
    let a_to_b = Region::new(channel_size);
    let b_to_a = Region::new(channel_size);
    let mut dev_a = MuennetDevice::new(
        NetReader::new(b_to_a.mem()),
        NetWriter::new(a_to_b.mem(), 0xa).unwrap(),
    );
    let mut dev_b = MuennetDevice::new(
        NetReader::new(a_to_b.mem()),
        NetWriter::new(b_to_a.mem(), 0xb).unwrap(),
    );

    let mut now = Instant::from_millis(0);
    let mut cfg_a = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 0x0a]).into());
    cfg_a.random_seed = 1;
    let mut cfg_b = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 0x0b]).into());
    cfg_b.random_seed = 2;
    let mut iface_a = Interface::new(cfg_a, &mut dev_a, now);
    let mut iface_b = Interface::new(cfg_b, &mut dev_b, now);
    iface_a.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24)).unwrap();
    });
    iface_b.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)).unwrap();
    });

    let sock = || {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; window]),
            tcp::SocketBuffer::new(vec![0; window]),
        )
    };
    let mut sockets_a = SocketSet::new(vec![]);
    let mut sockets_b = SocketSet::new(vec![]);
    let client = sockets_a.add(sock());
    let server = sockets_b.add(sock());
    sockets_b
        .get_mut::<tcp::Socket>(server)
        .listen(4433)
        .unwrap();
    sockets_a
        .get_mut::<tcp::Socket>(client)
        .connect(
            iface_a.context(),
            (Ipv4Address::new(10, 0, 0, 2), 4433),
            49152,
        )
        .unwrap();

    let to_b = pattern(3, size);
    let to_a = pattern(7, size);
    let (mut sent_a, mut sent_b) = (0usize, 0usize);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());

    // At most ~10 simulated minutes (1 ms per iteration).
    // Frames for an unknown MAC: ignored by the interface if they get through.
    let mut junk = [0u8; 60];
    junk[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0xff]);
    junk[12..14].copy_from_slice(&[0x88, 0xb5]);
    for iteration in 0..600_000u32 {
        if flood_at.contains(&iteration) {
            for _ in 0..17 {
                dev_a.writer_mut().send(&junk).unwrap();
                dev_b.writer_mut().send(&junk).unwrap();
            }
        }
        iface_a.poll(now, &mut dev_a, &mut sockets_a);
        iface_b.poll(now, &mut dev_b, &mut sockets_b);
        {
            let s = sockets_a.get_mut::<tcp::Socket>(client);
            if s.can_send() && sent_a < size {
                sent_a += s.send_slice(&to_b[sent_a..]).unwrap();
            }
            if s.can_recv() {
                s.recv(|d| {
                    got_a.extend_from_slice(d);
                    (d.len(), ())
                })
                .unwrap();
            }
        }
        {
            let s = sockets_b.get_mut::<tcp::Socket>(server);
            if s.can_send() && sent_b < size {
                sent_b += s.send_slice(&to_a[sent_b..]).unwrap();
            }
            if s.can_recv() {
                s.recv(|d| {
                    got_b.extend_from_slice(d);
                    (d.len(), ())
                })
                .unwrap();
            }
        }
        if got_a.len() == size && got_b.len() == size {
            break;
        }
        now += smoltcp::time::Duration::from_millis(1);
    }
    assert_eq!(got_b.len(), size, "A -> B incomplete");
    assert_eq!(got_a.len(), size, "B -> A incomplete");
    assert!(got_b == to_b, "A -> B corrupted");
    assert!(got_a == to_a, "B -> A corrupted");

    let stats = [dev_a.stats(), dev_b.stats()];
    for s in stats {
        assert!(s.tx_frames > (size / 1460) as u64);
        assert!(s.rx_frames > 0);
    }
    eprintln!(
        "channel {channel_size:#x}, {size} bytes each way, simulated {now}\nA: {:?}\nB: {:?}",
        stats[0], stats[1]
    );

    drop((iface_a, iface_b, sockets_a, sockets_b, dev_a, dev_b));
    drop((a_to_b, b_to_a));
    stats
}
