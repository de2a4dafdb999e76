//! The small interface between unipi-rs and the machine it runs on.
//!
//! `platform-muen/subject` implements it for a Muen native subject; tests
//! implement it in memory. Everything the application needs from outside
//! goes through here, so the application itself stays portable and keeps
//! `forbid(unsafe_code)`.

use smoltcp::time::Instant;

/// Heap figures in bytes (for logs and the benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes available to the allocator.
    pub size: usize,
    /// Bytes currently allocated.
    pub used: usize,
    /// High-water mark of `used`.
    pub peak: usize,
}

/// Frame counters of the network device (for the status log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Frames lost on receive (overruns, bad frames).
    pub rx_lost: u64,
    /// Times the peer restarted its channel (new epoch).
    pub rx_epoch_changes: u64,
    /// Frames that could not be sent.
    pub tx_dropped: u64,
}

/// What unipi-rs needs from the machine.
pub trait Platform {
    /// The network device (one Ethernet interface).
    type Device: smoltcp::phy::Device;

    /// Monotonic time. Need not be finer than a millisecond.
    fn now(&mut self) -> Instant;

    /// Wall-clock time in seconds since the Unix epoch (for HTTP dates,
    /// certificate validity).
    fn unix_time(&mut self) -> u64;

    /// Fills `buf` with unpredictable bytes; false if no entropy is available.
    fn fill_random(&mut self, buf: &mut [u8]) -> bool;

    /// The boot command line.
    fn cmdline(&self) -> &str;

    /// The name of this instance (the Muen subject name).
    fn name(&self) -> &str;

    /// The bytes of a read-only data region (certificates, site archive).
    /// Regions are padded to whole pages with zeros.
    fn region(&self, name: &str) -> Option<&'static [u8]>;

    /// The network device, if there is one.
    fn device(&mut self) -> Option<&mut Self::Device>;

    /// Idles until the device has input or `deadline` has passed, whichever
    /// comes first (on Muen: busy-poll with `pause`, as Solo5 does).
    fn wait(&mut self, deadline: Instant);

    /// Tells the network peer that frames were queued (optional).
    fn notify(&mut self) {}

    /// Heap figures.
    fn heap(&self) -> HeapStats;

    /// Network-device counters, if the device keeps them.
    fn net_stats(&self) -> Option<NetStats> {
        None
    }

    /// Hands the warnings and errors the platform's logger wrote since
    /// the last call to `sink`, oldest first (level, message text without
    /// a level prefix), for the syslog; returns how many it had to drop
    /// since the last call. The platform keeps a bounded number; without
    /// such a copy (the default) nothing is handed over.
    fn drain_log(&mut self, sink: &mut dyn FnMut(log::Level, &str)) -> u64 {
        let _ = sink;
        0
    }

    /// Whether the server loop should go on (a unikernel never stops; tests
    /// running the loop in-process do).
    fn running(&mut self) -> bool {
        true
    }
}
