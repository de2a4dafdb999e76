//! unipi-rs's [`Platform`] for a Muen native subject.

use muen_abi::muennet::MuennetDevice;
use muen_subject::{Runtime, heap, regions};
use smoltcp::time::Instant;
use unipi::platform::{HeapStats, NetStats, Platform};

/// The Muen subject as unipi-rs sees it.
pub struct MuenPlatform<'a> {
    rt: &'a mut Runtime,
    device: Option<MuennetDevice>,
    /// Optional "frames are queued" event (`<device>|notify` in sinfo); the
    /// reference Muen system has none and its NIC subject polls.
    notify_event: Option<u8>,
    notified_tx: u64,
}

impl<'a> MuenPlatform<'a> {
    /// Wraps the runtime; `device` is the opened `net0` channel pair.
    pub fn new(
        rt: &'a mut Runtime,
        device: Option<MuennetDevice>,
        notify_event: Option<u8>,
    ) -> Self {
        MuenPlatform {
            rt,
            device,
            notify_event,
            notified_tx: 0,
        }
    }
}

impl Platform for MuenPlatform<'_> {
    type Device = MuennetDevice;

    fn now(&mut self) -> Instant {
        Instant::from_micros((self.rt.clock.now_ns() / 1000) as i64)
    }

    fn unix_time(&mut self) -> u64 {
        self.rt.clock.unix_time_us() / 1_000_000
    }

    fn fill_random(&mut self, buf: &mut [u8]) -> bool {
        muen_baremetal::cpu::fill_random(buf)
    }

    fn cmdline(&self) -> &str {
        self.rt.boot.cmdline
    }

    fn name(&self) -> &str {
        self.rt.sinfo.name()
    }

    fn region(&self, name: &str) -> Option<&'static [u8]> {
        regions::read_only(&self.rt.sinfo, name)
    }

    fn device(&mut self) -> Option<&mut MuennetDevice> {
        self.device.as_mut()
    }

    fn wait(&mut self, deadline: Instant) {
        // Solo5's muen yield: poll the input channel with `pause` until data
        // is pending or the deadline passes (no hypercall; hlt is final).
        loop {
            if self.device.as_mut().is_some_and(|d| d.has_pending()) || self.now() >= deadline {
                return;
            }
            muen_baremetal::cpu::pause();
        }
    }

    fn notify(&mut self) {
        let (Some(n), Some(d)) = (self.notify_event, self.device.as_ref()) else {
            return;
        };
        let tx = d.stats().tx_frames;
        if tx != self.notified_tx {
            self.notified_tx = tx;
            muen_subject::exit::raise_event(n);
        }
    }

    fn net_stats(&self) -> Option<NetStats> {
        let s = self.device.as_ref()?.stats();
        Some(NetStats {
            rx_frames: s.rx_frames,
            tx_frames: s.tx_frames,
            rx_lost: s.rx_lost + s.rx_bad,
            rx_epoch_changes: s.rx_epoch_changes,
            tx_dropped: s.tx_dropped,
        })
    }

    fn heap(&self) -> HeapStats {
        let s = heap::stats();
        HeapStats {
            size: s.size,
            used: s.used,
            peak: s.peak,
        }
    }
}
