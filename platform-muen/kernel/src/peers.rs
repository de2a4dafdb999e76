//! The kernel's roles on shared physical regions (`muen_image::Peer`):
//! publishing `time_info`, forwarding debuglog channels to COM1 the way
//! Muen's dbgserver does, and (in [`crate::bridge`]) the network.

use crate::phys;
use crate::subject::PhysRegion;
use alloc::vec::Vec;
use muen_abi::channel::ChannelMemory;
use muen_abi::debuglog::{LogEvent, LogReader};
use muen_abi::time::{TimeInfo, TimeInfoPublisher};
use muen_image::Peer;

/// A channel view of a kernel-owned shared region.
pub fn channel(r: &PhysRegion) -> Option<ChannelMemory> {
    let base = phys::virt(r.pa, r.size as usize);
    // SAFETY: the region is managed RAM allocated for this physical region
    // at boot, never freed, page aligned and never referenced by Rust
    // references; subjects access it only through their own mappings.
    unsafe { ChannelMemory::new(base, r.size as usize) }.ok()
}

/// Publishes `info` into every `time_info` region (rate and timezone
/// first, `tsc_time_base` last).
pub fn publish_time(regions: &[PhysRegion], info: &TimeInfo) -> usize {
    let mut n = 0;
    for r in regions.iter().filter(|r| r.peer == Peer::TimeInfo) {
        let p = phys::virt(r.pa, 24);
        // SAFETY: 24 bytes of a managed, page-aligned region that lives
        // forever and is only accessed through raw pointers.
        let mut publisher = unsafe { TimeInfoPublisher::new(p) };
        publisher.publish(info);
        n += 1;
    }
    n
}

struct LogForward {
    subject: usize,
    reader: LogReader,
    started: bool,
    warned: bool,
    /// The previous piece had no end of line (next output continues it).
    continued: bool,
}

/// Forwards every debuglog channel to the serial console.
pub struct DebugLogs {
    logs: Vec<LogForward>,
}

/// Prints `<name><marker> <text>` with control characters replaced.
fn print_line(name: &str, marker: char, text: &[u8]) {
    let mut buf = [0u8; 600];
    let mut n = 0;
    for &b in text.iter().take(buf.len()) {
        buf[n] = if b == b'\t' || (0x20..0x7F).contains(&b) || b >= 0x80 {
            b
        } else {
            b'.'
        };
        n += 1;
    }
    crate::kprint!("{name}{marker} ");
    crate::serial::write_bytes(&buf[..n]);
    crate::serial::write_bytes(b"\n");
}

impl DebugLogs {
    /// Readers for every `Peer::DebugLog` region.
    pub fn new(regions: &[PhysRegion]) -> Self {
        let mut logs = Vec::new();
        for r in regions {
            if let Peer::DebugLog { subject } = r.peer
                && let Some(mem) = channel(r)
            {
                logs.push(LogForward {
                    subject: subject as usize,
                    reader: LogReader::new(mem),
                    started: false,
                    warned: false,
                    continued: false,
                });
            }
        }
        DebugLogs { logs }
    }

    /// Number of forwarded channels.
    pub fn len(&self) -> usize {
        self.logs.len()
    }

    /// Prints everything new. `names[i]` is subject i's name.
    pub fn poll(&mut self, names: &[&str]) {
        for l in &mut self.logs {
            let name = names.get(l.subject).copied().unwrap_or("?");
            // Bounded: a subject writing without pause cannot stall the kernel.
            for _ in 0..4096 {
                match l.reader.poll() {
                    LogEvent::Line(text) => {
                        print_line(name, if l.continued { '>' } else { '|' }, text);
                        l.continued = false;
                    }
                    LogEvent::Partial(text) => {
                        print_line(name, if l.continued { '>' } else { '|' }, text);
                        l.continued = true;
                    }
                    LogEvent::EpochChanged => {
                        if l.started {
                            crate::kprint!("{name}% (debuglog restarted with a new epoch)\n");
                        }
                        l.started = true;
                        l.continued = false;
                    }
                    LogEvent::Overrun => {
                        crate::kprint!("{name}# (debuglog overrun: lines lost)\n");
                        l.continued = false;
                    }
                    LogEvent::Incompatible => {
                        if !l.warned {
                            crate::klog!(
                                "debuglog of {name}: incompatible channel header, not forwarded"
                            );
                            l.warned = true;
                        }
                        break;
                    }
                    LogEvent::Inactive | LogEvent::Empty => break,
                }
            }
        }
    }

    /// Prints the unterminated last line of subject `subject`'s logs.
    pub fn flush_subject(&mut self, subject: usize, names: &[&str]) {
        self.poll(names);
        let name = names.get(subject).copied().unwrap_or("?");
        for l in self.logs.iter_mut().filter(|l| l.subject == subject) {
            if let Some(text) = l.reader.take_partial() {
                print_line(name, if l.continued { '>' } else { '|' }, text);
                l.continued = false;
            }
        }
    }
}
