//! A learning Ethernet bridge between the NIC and every subject port (the
//! role of nic_linux + br0 in the reference Muen system). Subject ports
//! are muennet channel pairs: the kernel writes `Peer::NetToSubject`
//! channels (random non-zero epoch) and reads `Peer::NetFromSubject`
//! channels. No allocation per packet; lost frames are counted.

use crate::peers::channel;
use crate::subject::PhysRegion;
use alloc::boxed::Box;
use alloc::vec::Vec;
use muen_abi::muennet::{ELEMENT_SIZE, NetReader, NetWriter, RxResult};
use muen_image::Peer;

/// A network device the bridge can use.
pub trait Nic {
    /// Receives one frame into `buf`; None if nothing is pending.
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize>;
    /// Queues one frame for transmission; false if the queue is full.
    fn send(&mut self, frame: &[u8]) -> bool;
    /// Kicks the device after a batch of `send`s and recycles buffers.
    fn flush(&mut self);
    /// Whether `send` would find room now (recycling finished buffers).
    fn can_send(&mut self) -> bool {
        true
    }
    /// Short description for the log.
    fn describe(&self) -> &str;
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PortRef {
    Nic,
    Subject(usize),
}

struct SubjectPort {
    number: u32,
    /// Name of the region behind `to_subject` (for the log).
    to_name: &'static str,
    to_subject: Option<NetWriter>,
    from_subject: Option<NetReader>,
}

const FDB_SIZE: usize = 64;

#[derive(Clone, Copy)]
struct FdbEntry {
    mac: [u8; 6],
    port: PortRef,
    last: u64,
}

/// Counters of the bridge.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
pub struct BridgeStats {
    pub forwarded: u64,
    pub flooded: u64,
    pub to_nic: u64,
    pub from_nic: u64,
    pub nic_tx_full: u64,
    pub subject_overrun: u64,
    pub bad_frames: u64,
    pub runts: u64,
    pub write_errors: u64,
    /// Polls that left subject frames queued because the NIC was full.
    pub nic_backpressure: u64,
}

impl BridgeStats {
    fn dropped(&self) -> u64 {
        self.nic_tx_full + self.subject_overrun + self.bad_frames + self.runts + self.write_errors
    }
}

struct Switch {
    ports: Vec<SubjectPort>,
    nic: Option<Box<dyn Nic>>,
    fdb: [Option<FdbEntry>; FDB_SIZE],
    stats: BridgeStats,
    clock: u64,
}

impl Switch {
    fn learn(&mut self, mac: [u8; 6], port: PortRef) {
        if mac[0] & 1 != 0 {
            return;
        }
        self.clock += 1;
        let clock = self.clock;
        if let Some(e) = self.fdb.iter_mut().flatten().find(|e| e.mac == mac) {
            e.port = port;
            e.last = clock;
            return;
        }
        // Free slot, else the least recently seen one.
        let slot = match self.fdb.iter().position(|e| e.is_none()) {
            Some(i) => i,
            None => {
                let mut oldest = 0;
                for (i, e) in self.fdb.iter().enumerate() {
                    if let (Some(e), Some(o)) = (e, &self.fdb[oldest])
                        && e.last < o.last
                    {
                        oldest = i;
                    }
                }
                oldest
            }
        };
        self.fdb[slot] = Some(FdbEntry {
            mac,
            port,
            last: clock,
        });
    }

    fn lookup(&self, mac: &[u8]) -> Option<PortRef> {
        self.fdb
            .iter()
            .flatten()
            .find(|e| e.mac == mac)
            .map(|e| e.port)
    }

    fn send_to(&mut self, port: PortRef, frame: &[u8]) {
        match port {
            PortRef::Nic => {
                if let Some(nic) = self.nic.as_mut() {
                    if nic.send(frame) {
                        self.stats.to_nic += 1;
                    } else {
                        self.stats.nic_tx_full += 1;
                    }
                }
            }
            PortRef::Subject(i) => {
                if let Some(w) = self.ports.get_mut(i).and_then(|p| p.to_subject.as_mut())
                    && w.send(frame).is_err()
                {
                    self.stats.write_errors += 1;
                }
            }
        }
    }

    fn forward(&mut self, src: PortRef, frame: &[u8]) {
        if frame.len() < 14 {
            self.stats.runts += 1;
            return;
        }
        let mut smac = [0u8; 6];
        smac.copy_from_slice(&frame[6..12]);
        self.learn(smac, src);
        let dst = &frame[0..6];
        if dst[0] & 1 == 0
            && let Some(port) = self.lookup(dst)
        {
            if port != src {
                self.send_to(port, frame);
                self.stats.forwarded += 1;
            }
            return;
        }
        self.stats.flooded += 1;
        if src != PortRef::Nic {
            self.send_to(PortRef::Nic, frame);
        }
        for i in 0..self.ports.len() {
            if PortRef::Subject(i) != src {
                self.send_to(PortRef::Subject(i), frame);
            }
        }
    }
}

/// The bridge.
pub struct Bridge {
    sw: Switch,
    buf: Box<[u8; ELEMENT_SIZE]>,
    reported: BridgeStats,
    last_report: u64,
}

/// Frames moved per port and poll (bounds the time spent in one poll).
const BUDGET: usize = 256;

impl Bridge {
    /// Builds the subject ports from the image's net regions; `epoch`
    /// yields a fresh non-zero random epoch per writer.
    pub fn new(
        regions: &[PhysRegion],
        nic: Option<Box<dyn Nic>>,
        mut epoch: impl FnMut() -> u64,
    ) -> Self {
        let mut ports: Vec<SubjectPort> = Vec::new();
        for r in regions {
            let (number, to) = match r.peer {
                Peer::NetToSubject { port } => (port, true),
                Peer::NetFromSubject { port } => (port, false),
                _ => continue,
            };
            let idx = match ports.iter().position(|p| p.number == number) {
                Some(i) => i,
                None => {
                    ports.push(SubjectPort {
                        number,
                        to_name: "",
                        to_subject: None,
                        from_subject: None,
                    });
                    ports.len() - 1
                }
            };
            let Some(mem) = channel(r) else {
                crate::klog!("bridge: region {} unusable as a channel", r.name);
                continue;
            };
            if to {
                match NetWriter::new(mem, epoch()) {
                    Ok(w) => {
                        ports[idx].to_subject = Some(w);
                        ports[idx].to_name = r.name;
                    }
                    Err(e) => crate::klog!(
                        "bridge: cannot initialise {} as muennet writer: {e:?}",
                        r.name
                    ),
                }
            } else {
                ports[idx].from_subject = Some(NetReader::new(mem));
            }
        }
        Bridge {
            sw: Switch {
                ports,
                nic,
                fdb: [None; FDB_SIZE],
                stats: BridgeStats::default(),
                clock: 0,
            },
            buf: Box::new([0; ELEMENT_SIZE]),
            reported: BridgeStats::default(),
            last_report: 0,
        }
    }

    /// Number of subject ports.
    pub fn port_count(&self) -> usize {
        self.sw.ports.len()
    }

    /// Restarts every channel the bridge writes to a subject with a fresh
    /// epoch (`NetWriter::restart`: header and slots re-initialised, epoch
    /// last), as a NIC subject that restarts does; frames not yet read are
    /// lost and the subjects' readers resynchronise. Returns how many
    /// channels were restarted.
    pub fn restart_subject_channels(&mut self, mut epoch: impl FnMut() -> u64) -> usize {
        let mut n = 0;
        for p in &mut self.sw.ports {
            if let Some(w) = p.to_subject.as_mut() {
                let old = w.inner().epoch();
                let mut new = epoch();
                if new == old {
                    new = new.wrapping_add(1).max(1);
                }
                w.restart(new);
                crate::klog!(
                    "bridge: port {} ({}): channel restarted, epoch {old:#x} -> {new:#x}",
                    p.number,
                    p.to_name
                );
                n += 1;
            }
        }
        n
    }

    /// Does the bridge have a NIC?
    pub fn nic(&self) -> Option<&str> {
        self.sw.nic.as_ref().map(|n| n.describe())
    }

    /// Moves pending frames: subjects → bridge, NIC → bridge.
    pub fn poll(&mut self) {
        for p in 0..self.sw.ports.len() {
            for _ in 0..BUDGET {
                let Some(rx) = self.sw.ports[p].from_subject.as_mut() else {
                    break;
                };
                // Backpressure: while the NIC's queue is full, leave frames in
                // the subject's channel instead of reading and dropping them
                // (each drop costs the sender a retransmission); they move on
                // a later poll. Only up to half the channel, though: an
                // overrun would lose the whole backlog at once, so beyond
                // that the oldest frames are read (and dropped) as before.
                if self.sw.nic.as_mut().is_some_and(|n| !n.can_send()) {
                    let (pending, elements) = rx.backlog();
                    if pending <= elements / 2 {
                        self.sw.stats.nic_backpressure += 1;
                        break;
                    }
                }
                match rx.receive(&mut self.buf) {
                    RxResult::Frame(n) => {
                        let n = n.min(ELEMENT_SIZE);
                        self.sw.forward(PortRef::Subject(p), &self.buf[..n]);
                    }
                    RxResult::EpochChanged | RxResult::Overrun => continue,
                    RxResult::BadLength(_) => self.sw.stats.bad_frames += 1,
                    RxResult::NoData | RxResult::Inactive | RxResult::Incompatible => break,
                }
            }
        }
        if self.sw.nic.is_some() {
            for _ in 0..BUDGET {
                let Some(nic) = self.sw.nic.as_mut() else {
                    break;
                };
                let Some(n) = nic.recv(&mut self.buf[..]) else {
                    break;
                };
                self.sw.stats.from_nic += 1;
                let n = n.min(ELEMENT_SIZE);
                self.sw.forward(PortRef::Nic, &self.buf[..n]);
            }
            if let Some(nic) = self.sw.nic.as_mut() {
                nic.flush();
            }
        }
        self.sw.stats.subject_overrun = self
            .sw
            .ports
            .iter()
            .filter_map(|p| p.from_subject.as_ref())
            .map(|r| r.lost_elements())
            .sum();
    }

    /// Logs the counters if frames were dropped since the last report
    /// (at most every `interval` TSC ticks), or unconditionally if `force`.
    pub fn report(&mut self, now: u64, interval: u64, force: bool) {
        let s = self.sw.stats;
        let due = now.saturating_sub(self.last_report) >= interval
            && s.dropped() != self.reported.dropped();
        if force || due {
            crate::klog!(
                "bridge: {} frames from NIC, {} to NIC, {} forwarded, {} flooded, {} polls held back by a full NIC; dropped {} (nic tx full {}, subject overrun {}, bad length {}, runt {}, write error {})",
                s.from_nic,
                s.to_nic,
                s.forwarded,
                s.flooded,
                s.nic_backpressure,
                s.dropped(),
                s.nic_tx_full,
                s.subject_overrun,
                s.bad_frames,
                s.runts,
                s.write_errors
            );
            self.reported = s;
            self.last_report = now;
        }
    }
}
