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
    /// Optional event with action `yield` (`yield` in sinfo): waiting then
    /// gives the rest of the minor frame back instead of spinning, so an
    /// idle subject leaves the CPU to others (under QEMU: to the host).
    yield_event: Option<u8>,
}

impl<'a> MuenPlatform<'a> {
    /// Wraps the runtime; `device` is the opened `net0` channel pair; the
    /// events are the optional `net0|notify` and `yield` from sinfo.
    pub fn new(
        rt: &'a mut Runtime,
        device: Option<MuennetDevice>,
        notify_event: Option<u8>,
        yield_event: Option<u8>,
    ) -> Self {
        MuenPlatform {
            rt,
            device,
            notify_event,
            notified_tx: 0,
            yield_event,
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
        // Solo5's muen yield: poll the input channel until data is pending or
        // the deadline passes (hlt would be final). Between polls either give
        // the rest of the minor frame back (a `yield` event, if the system
        // grants one) or `pause`, as Solo5 does.
        loop {
            if self.device.as_mut().is_some_and(|d| d.has_pending()) || self.now() >= deadline {
                return;
            }
            match self.yield_event {
                Some(ev) => muen_subject::exit::raise_event(ev),
                None => muen_baremetal::cpu::pause(),
            }
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
            // The event's handler (the kernel's bridge) has read the channel.
            if let Some(d) = self.device.as_mut() {
                d.notified();
            }
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

    fn drain_log(&mut self, sink: &mut dyn FnMut(log::Level, &str)) -> u64 {
        muen_subject::console::tap_drain(sink)
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
