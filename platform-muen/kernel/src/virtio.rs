//! virtio-net driver for the bridge: virtio-mmio (legacy version 1 and
//! modern version 2; QEMU `-M microvm` puts transports at
//! `0xFEB0_0000 + 0x200·i`) and the legacy I/O-port interface of the
//! transitional virtio-net-pci device (`-M pc`). Split virtqueues, polled
//! (device interrupts suppressed), fixed 2 KiB buffers, no allocation per
//! packet.

use crate::bridge::Nic;
use crate::cpu::{inb, inl, inw, outb, outl, outw};
use crate::phys::{self, Mmio, PAGE};
use crate::{klog, pci};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::sync::atomic::{Ordering, fence};

const STATUS_ACK: u32 = 1;
const STATUS_DRIVER: u32 = 2;
const STATUS_DRIVER_OK: u32 = 4;
const STATUS_FEATURES_OK: u32 = 8;
const DESC_F_WRITE: u16 = 2;
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// The device sets this in the used ring while it does not need kicks (e.g.
/// QEMU while its TX bottom half is pending, or while RX has buffers).
const USED_F_NO_NOTIFY: u16 = 1;
const BUF_SIZE: u64 = 2048;
const MAX_QUEUE: u16 = 256;
const RX: u16 = 0;
const TX: u16 = 1;

const MMIO_BASE: u64 = 0xFEB0_0000;
const MMIO_STRIDE: u64 = 0x200;
const MMIO_SLOTS: u64 = 32;

enum Transport {
    Mmio { regs: Mmio, version: u32 },
    Pci { io: u16 },
}

impl Transport {
    fn status(&self) -> u32 {
        match self {
            Transport::Mmio { regs, .. } => regs.read32(0x70),
            Transport::Pci { io } => inb(io + 0x12) as u32,
        }
    }

    fn set_status(&self, v: u32) {
        match self {
            Transport::Mmio { regs, .. } => regs.write32(0x70, v),
            Transport::Pci { io } => outb(io + 0x12, v as u8),
        }
    }

    fn modern(&self) -> bool {
        matches!(self, Transport::Mmio { version: 2, .. })
    }

    fn negotiate(&self) -> bool {
        match self {
            Transport::Mmio { regs, version } => {
                regs.write32(0x24, 0);
                regs.write32(0x20, 0);
                if *version == 2 {
                    regs.write32(0x14, 1);
                    if regs.read32(0x10) & 1 == 0 {
                        return false; // no VIRTIO_F_VERSION_1
                    }
                    regs.write32(0x24, 1);
                    regs.write32(0x20, 1);
                    self.set_status(self.status() | STATUS_FEATURES_OK);
                    return self.status() & STATUS_FEATURES_OK != 0;
                }
                regs.write32(0x28, PAGE as u32); // GuestPageSize
                true
            }
            Transport::Pci { io } => {
                let _ = inl(*io);
                outl(io + 0x04, 0);
                true
            }
        }
    }

    fn queue_max(&self, q: u16) -> u16 {
        match self {
            Transport::Mmio { regs, .. } => {
                regs.write32(0x30, q as u32);
                regs.read32(0x34).min(MAX_QUEUE as u32) as u16
            }
            Transport::Pci { io } => {
                outw(io + 0x0E, q);
                inw(io + 0x0C)
            }
        }
    }

    fn setup_queue(&self, q: u16, vq: &Queue) {
        match self {
            Transport::Mmio { regs, version } => {
                regs.write32(0x30, q as u32);
                regs.write32(0x38, vq.size as u32);
                if *version == 2 {
                    for (off, pa) in [(0x80, vq.desc), (0x90, vq.avail), (0xA0, vq.used)] {
                        regs.write32(off, pa as u32);
                        regs.write32(off + 4, (pa >> 32) as u32);
                    }
                    regs.write32(0x44, 1);
                } else {
                    regs.write32(0x3C, PAGE as u32);
                    regs.write32(0x40, (vq.desc / PAGE) as u32);
                }
            }
            Transport::Pci { io } => {
                outw(io + 0x0E, q);
                outl(io + 0x08, (vq.desc / PAGE) as u32);
            }
        }
    }

    fn notify(&self, q: u16) {
        match self {
            Transport::Mmio { regs, .. } => regs.write32(0x50, q as u32),
            Transport::Pci { io } => outw(io + 0x10, q),
        }
    }

    fn mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        for (i, b) in m.iter_mut().enumerate() {
            *b = match self {
                Transport::Mmio { regs, .. } => regs.read8(0x100 + i as u64),
                Transport::Pci { io } => inb(io + 0x14 + i as u16),
            };
        }
        m
    }
}

/// A split virtqueue in one contiguous, page-aligned allocation (legacy
/// layout with 4 KiB alignment, also valid for modern devices).
struct Queue {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    bufs: u64,
    avail_idx: u16,
    last_used: u16,
}

impl Queue {
    fn new(size: u16) -> Option<Queue> {
        let n = size as u64;
        let used_off = (16 * n + 6 + 2 * n).div_ceil(PAGE) * PAGE;
        let ring_bytes = used_off + (6 + 8 * n).div_ceil(PAGE) * PAGE;
        let bytes = ring_bytes + n * BUF_SIZE;
        let pa = crate::with_frames(|f| f.alloc(bytes.div_ceil(PAGE), PAGE)).ok()?;
        phys::fill(pa, ring_bytes, 0);
        Some(Queue {
            size,
            desc: pa,
            avail: pa + 16 * n,
            used: pa + used_off,
            bufs: pa + ring_bytes,
            avail_idx: 0,
            last_used: 0,
        })
    }

    fn buf(&self, id: u16) -> u64 {
        self.bufs + id as u64 * BUF_SIZE
    }

    fn set_desc(&self, id: u16, len: u32, flags: u16) {
        let d = self.desc + 16 * id as u64;
        phys::write_u64(d, self.buf(id));
        phys::write_u32(d + 8, len);
        phys::write_u16(d + 12, flags);
        phys::write_u16(d + 14, 0);
    }

    fn push_avail(&mut self, id: u16) {
        let slot = self.avail + 4 + 2 * (self.avail_idx % self.size) as u64;
        phys::write_u16(slot, id);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        fence(Ordering::SeqCst);
        phys::write_u16(self.avail + 2, self.avail_idx);
    }

    /// Whether the device asks for a kick after new available buffers. The
    /// fence orders our avail-index store before the flags load.
    fn wants_kick(&self) -> bool {
        fence(Ordering::SeqCst);
        phys::read_u16(self.used) & USED_F_NO_NOTIFY == 0
    }

    /// Next used element (id, len), if any.
    fn pop_used(&mut self) -> Option<(u16, u32)> {
        let idx = phys::read_u16(self.used + 2);
        if idx == self.last_used {
            return None;
        }
        fence(Ordering::SeqCst);
        let e = self.used + 4 + 8 * (self.last_used % self.size) as u64;
        let id = phys::read_u32(e);
        let len = phys::read_u32(e + 4);
        self.last_used = self.last_used.wrapping_add(1);
        if id >= self.size as u32 {
            return None;
        }
        Some((id as u16, len))
    }
}

/// A virtio-net device driven by the bridge.
pub struct VirtioNet {
    t: Transport,
    rx: Queue,
    tx: Queue,
    tx_free: Vec<u16>,
    hdr_len: usize,
    notify_rx: bool,
    notify_tx: bool,
    desc: String,
}

impl VirtioNet {
    fn init(t: Transport, what: &str) -> Option<Self> {
        t.set_status(0);
        t.set_status(STATUS_ACK);
        t.set_status(STATUS_ACK | STATUS_DRIVER);
        if !t.negotiate() {
            klog!("virtio-net ({what}): feature negotiation failed");
            t.set_status(0x80);
            return None;
        }
        let hdr_len = if t.modern() { 12 } else { 10 };
        let rx_size = t.queue_max(RX);
        let tx_size = t.queue_max(TX);
        if rx_size == 0 || tx_size == 0 || rx_size > 1024 || tx_size > 1024 {
            klog!("virtio-net ({what}): unusable queue sizes {rx_size}/{tx_size}");
            return None;
        }
        let mut rx = Queue::new(rx_size)?;
        let tx = Queue::new(tx_size)?;
        for q in [&rx, &tx] {
            phys::write_u16(q.avail, AVAIL_F_NO_INTERRUPT);
        }
        t.setup_queue(RX, &rx);
        t.setup_queue(TX, &tx);
        for id in 0..rx_size {
            rx.set_desc(id, BUF_SIZE as u32, DESC_F_WRITE);
            rx.push_avail(id);
        }
        t.set_status(t.status() | STATUS_DRIVER_OK);
        t.notify(RX);
        let m = t.mac();
        let mut desc = String::new();
        let _ = write!(
            desc,
            "virtio-net {what}, queues {rx_size}/{tx_size}, mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        );
        Some(VirtioNet {
            t,
            rx,
            tx,
            tx_free: (0..tx_size).rev().collect(),
            hdr_len,
            notify_rx: false,
            notify_tx: false,
            desc,
        })
    }

    fn reclaim_tx(&mut self) {
        while let Some((id, _)) = self.tx.pop_used() {
            self.tx_free.push(id);
        }
    }
}

impl Nic for VirtioNet {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            let (id, len) = self.rx.pop_used()?;
            let len = (len as usize).min(BUF_SIZE as usize);
            let n = len.saturating_sub(self.hdr_len).min(buf.len());
            phys::read(self.rx.buf(id) + self.hdr_len as u64, &mut buf[..n]);
            self.rx.set_desc(id, BUF_SIZE as u32, DESC_F_WRITE);
            self.rx.push_avail(id);
            self.notify_rx = true;
            if n > 0 {
                return Some(n);
            }
        }
    }

    fn send(&mut self, frame: &[u8]) -> bool {
        if frame.len() + self.hdr_len > BUF_SIZE as usize {
            return false;
        }
        if self.tx_free.is_empty() {
            self.reclaim_tx();
        }
        let Some(id) = self.tx_free.pop() else {
            return false;
        };
        let b = self.tx.buf(id);
        phys::fill(b, self.hdr_len as u64, 0);
        phys::write(b + self.hdr_len as u64, frame);
        self.tx.set_desc(id, (frame.len() + self.hdr_len) as u32, 0);
        self.tx.push_avail(id);
        self.notify_tx = true;
        true
    }

    fn flush(&mut self) {
        // A kick is a device exit: skip it while the device says it will
        // look at the ring anyway.
        if self.notify_tx {
            if self.tx.wants_kick() {
                self.t.notify(TX);
            }
            self.notify_tx = false;
        }
        if self.notify_rx {
            if self.rx.wants_kick() {
                self.t.notify(RX);
            }
            self.notify_rx = false;
        }
        self.reclaim_tx();
    }

    fn can_send(&mut self) -> bool {
        if self.tx_free.is_empty() {
            self.reclaim_tx();
        }
        !self.tx_free.is_empty()
    }

    fn describe(&self) -> &str {
        &self.desc
    }
}

fn probe_pci() -> Option<VirtioNet> {
    // Transitional virtio-net (0x1000) has the legacy I/O BAR0.
    let (bdf, _) = pci::find(0x1AF4, &[0x1000, 0x1041], 0)?;
    let id = bdf.read32(0) >> 16;
    let bar0 = bdf.read32(0x10);
    if id != 0x1000 || bar0 & 1 == 0 {
        klog!(
            "virtio-net-pci at {:02x}:{:02x}.{} has no legacy I/O BAR (use a transitional device); ignored",
            bdf.bus,
            bdf.dev,
            bdf.func
        );
        return None;
    }
    let cmd = bdf.read32(0x04);
    bdf.write32(0x04, (cmd & 0xFFFF) | 0x5); // I/O space + bus master
    let io = (bar0 & 0xFFFC) as u16;
    let mut what = String::new();
    let _ = write!(
        what,
        "pci {:02x}:{:02x}.{} legacy io {:#x}",
        bdf.bus, bdf.dev, bdf.func, io
    );
    VirtioNet::init(Transport::Pci { io }, &what)
}

fn probe_mmio() -> Option<VirtioNet> {
    for i in 0..MMIO_SLOTS {
        let base = MMIO_BASE + i * MMIO_STRIDE;
        // SAFETY: QEMU's virtio-mmio transport window (device memory, not
        // RAM, mapped uncached by the direct map); reads of an empty slot
        // return zeros and have no side effects.
        let regs = unsafe { Mmio::new(base, MMIO_STRIDE) };
        if regs.read32(0) != 0x7472_6976 {
            continue;
        }
        let version = regs.read32(4);
        if regs.read32(8) != 1 || !(version == 1 || version == 2) {
            continue;
        }
        let mut what = String::new();
        let _ = write!(what, "mmio v{version} at {base:#x}");
        return VirtioNet::init(Transport::Mmio { regs, version }, &what);
    }
    None
}

/// Finds a virtio-net device (PCI first, then microvm's MMIO slots).
pub fn probe() -> Option<Box<dyn Nic>> {
    let nic = probe_pci().or_else(probe_mmio)?;
    Some(Box::new(nic))
}
