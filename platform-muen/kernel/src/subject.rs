//! Subjects: building each address space exactly from its image record,
//! the per-subject kernel pages, the emulated I/O ports, and the region
//! map used in the boot log and in stop reports.

use crate::frames::OutOfMemory;
use crate::paging::AddressSpace;
use crate::phys::{self, PAGE};
use crate::trap::TrapFrame;
use crate::vcpu::{Ports, Stop, VirtCpu};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use muen_image::{Action, Backing, Image, Subject as ImageSubject};

/// A shared physical region of the image, allocated contiguously.
pub struct PhysRegion {
    pub name: &'static str,
    pub pa: u64,
    pub size: u64,
    pub peer: muen_image::Peer,
}

/// How a region of the region map is backed.
#[derive(Clone, Copy)]
pub enum RegionBacking {
    /// Private copy of image bytes.
    File,
    /// Read-only image pages mapped in place.
    ImagePages,
    /// Filled with this byte on first touch.
    Fill(u8),
    /// Zeroed on first touch ("uninitialized" in Muen).
    Zero,
    /// A shared physical region.
    Shared(&'static str),
    SchedulingInfo,
    TimedEvent,
}

/// One line of a subject's region map.
#[derive(Clone, Copy)]
pub struct RegionInfo {
    pub name: &'static str,
    pub va: u64,
    pub size: u64,
    pub writable: bool,
    pub executable: bool,
    pub backing: RegionBacking,
}

impl fmt::Display for RegionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:#x}-{:#x} R{}{} ",
            self.name,
            self.va,
            self.va + self.size - 1,
            if self.writable { "W" } else { "-" },
            if self.executable { "X" } else { "-" }
        )?;
        match self.backing {
            RegionBacking::File => f.write_str("file"),
            RegionBacking::ImagePages => f.write_str("file(shared ro)"),
            RegionBacking::Fill(b) => write!(f, "fill {b:#04x}"),
            RegionBacking::Zero => f.write_str("zero"),
            RegionBacking::Shared(n) => write!(f, "phys {n}"),
            RegionBacking::SchedulingInfo => f.write_str("sched_info"),
            RegionBacking::TimedEvent => f.write_str("timed_event"),
        }
    }
}

/// How a subject ended.
#[derive(Clone, Copy, Debug)]
pub enum End {
    /// Raised an event whose action is Exit.
    Exited { event: &'static str, number: u8 },
    /// Executed `hlt`.
    Halted { rip: u64 },
    /// Stopped by the kernel (fault, unhandled trap).
    Stopped(Stop),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Exited { event, number } => write!(f, "exited via event {event} ({number})"),
            End::Halted { rip } => write!(f, "halted (hlt at {rip:#x})"),
            End::Stopped(s) => write!(f, "stopped: {s}"),
        }
    }
}

/// Counters shown in the summary.
#[derive(Default, Clone, Copy)]
pub struct Stats {
    pub frames: u64,
    pub traps: u64,
    pub emulated: u64,
    pub exceptions: u64,
    pub events: u64,
}

/// The 8250 UART the subject monitor emulates on COM1, plus the CMOS
/// index register and the list of ignored legacy ports.
pub struct SubjectPorts {
    name: &'static str,
    line: [u8; 200],
    len: usize,
    lcr: u8,
    ier: u8,
    mcr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    cmos_index: u8,
}

impl SubjectPorts {
    fn new(name: &'static str) -> Self {
        SubjectPorts {
            name,
            line: [0; 200],
            len: 0,
            lcr: 0,
            ier: 0,
            mcr: 0,
            scr: 0,
            dll: 1,
            dlm: 0,
            cmos_index: 0,
        }
    }

    /// Prints a buffered partial COM1 line.
    pub fn flush(&mut self) {
        if self.len > 0 {
            crate::kprint!("{}| com1: ", self.name);
            crate::serial::write_bytes(&self.line[..self.len]);
            crate::serial::write_bytes(b"\n");
            self.len = 0;
        }
    }

    fn thr(&mut self, b: u8) {
        match b {
            b'\n' => {
                if self.len == 0 {
                    self.line[0] = b' ';
                    self.len = 1;
                }
                self.flush();
            }
            b'\r' | 0 => {}
            _ => {
                self.line[self.len] = b;
                self.len += 1;
                if self.len == self.line.len() {
                    self.flush();
                }
            }
        }
    }
}

fn ignored_port(port: u16) -> bool {
    matches!(port, 0x20 | 0x21 | 0xA0 | 0xA1 | 0x40..=0x43 | 0x61 | 0x60 | 0x64 | 0x80 | 0xCF8..=0xCFF)
}

impl Ports for SubjectPorts {
    fn port_in(&mut self, port: u16, size: u8) -> Option<u32> {
        let ones = match size {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => 0xFFFF_FFFF,
        };
        let dlab = self.lcr & 0x80 != 0;
        let v = match port {
            0x3F8 => {
                if dlab {
                    self.dll
                } else {
                    0
                }
            }
            0x3F9 => {
                if dlab {
                    self.dlm
                } else {
                    self.ier
                }
            }
            0x3FA => 0x01,
            0x3FB => self.lcr,
            0x3FC => self.mcr,
            0x3FD => 0x60,
            0x3FE => 0xB0,
            0x3FF => self.scr,
            0x70 => return Some(ones),
            0x71 => crate::rtc::cmos_read(self.cmos_index),
            p if ignored_port(p) => return Some(ones),
            _ => return None,
        };
        Some(v as u32)
    }

    fn port_out(&mut self, port: u16, _size: u8, value: u32) -> bool {
        let b = value as u8;
        let dlab = self.lcr & 0x80 != 0;
        match port {
            0x3F8 if dlab => self.dll = b,
            0x3F8 => self.thr(b),
            0x3F9 if dlab => self.dlm = b,
            0x3F9 => self.ier = b,
            0x3FA => {}
            0x3FB => self.lcr = b,
            0x3FC => self.mcr = b,
            0x3FD | 0x3FE => {}
            0x3FF => self.scr = b,
            0x70 => self.cmos_index = b & 0x7F,
            0x71 => {}
            p if ignored_port(p) => {}
            _ => return false,
        }
        true
    }
}

/// A subject: its CPU state, address space and bookkeeping.
pub struct Subject {
    pub name: &'static str,
    pub frame: Box<TrapFrame>,
    pub virt: VirtCpu,
    pub space: AddressSpace,
    /// Physical address of its scheduling-info page, if mapped.
    pub sched_pa: Option<u64>,
    /// Events by number: (name, action).
    pub events: [Option<(&'static str, Action)>; 64],
    pub ports: SubjectPorts,
    pub regions: Vec<RegionInfo>,
    pub end: Option<End>,
    /// TSC before which a yielded subject is not scheduled again.
    pub sleep_until: u64,
    pub stats: Stats,
}

/// Checks for a Muen sinfo page (magic of layout v03, v04 or v05).
fn is_sinfo(bytes: &[u8]) -> bool {
    use muen_abi::sinfo::{MAGIC_OFFSET, MAGIC_V03, MAGIC_V04, MAGIC_V05, TSC_KHZ_OFFSET};
    let Some(m) = bytes.get(MAGIC_OFFSET..MAGIC_OFFSET + 8) else {
        return false;
    };
    let magic = u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]]);
    bytes.len() >= TSC_KHZ_OFFSET + 4 && [MAGIC_V03, MAGIC_V04, MAGIC_V05].contains(&magic)
}

/// Byte offset of `tsc_khz` in sinfo.
const SINFO_TSC_KHZ: u64 = muen_abi::sinfo::TSC_KHZ_OFFSET as u64;

impl Subject {
    /// Builds subject `index` of `image`.
    pub fn build(
        image: &Image<'static>,
        s: &ImageSubject<'static>,
        phys_regions: &[PhysRegion],
        image_pa: u64,
        tsc_khz: u32,
    ) -> Result<Self, OutOfMemory> {
        let mut space = AddressSpace::new()?;
        let mut regions = Vec::new();
        let mut sched_pa = None;
        for m in image.mappings(s) {
            let pages = m.size / PAGE;
            let backing = match m.backing {
                Backing::File { offset, len } => {
                    let data = image.file(offset, len);
                    let sinfo = m.name == "sinfo";
                    let tail_zero = {
                        let end = (offset + len).div_ceil(PAGE) * PAGE;
                        image
                            .bytes()
                            .get((offset + len) as usize..end as usize)
                            .is_some_and(|t| t.iter().all(|&b| b == 0))
                    };
                    if !m.writable && !sinfo && offset % PAGE == 0 && tail_zero {
                        let file_pages = len.div_ceil(PAGE);
                        for i in 0..file_pages {
                            space.map(
                                m.va + i * PAGE,
                                image_pa + offset + i * PAGE,
                                false,
                                m.executable,
                            )?;
                        }
                        if file_pages < pages {
                            space.add_lazy(
                                m.va + file_pages * PAGE,
                                (pages - file_pages) * PAGE,
                                false,
                                m.executable,
                                0,
                            );
                        }
                        RegionBacking::ImagePages
                    } else {
                        let pa = crate::with_frames(|f| f.alloc(pages, PAGE))?;
                        phys::write(pa, data);
                        phys::fill(pa + len, m.size - len, 0);
                        if sinfo {
                            if is_sinfo(data) {
                                phys::write(pa + SINFO_TSC_KHZ, &tsc_khz.to_le_bytes());
                                if s.tsc_khz != 0 && s.tsc_khz != tsc_khz as u64 {
                                    crate::klog!(
                                        "{}: sinfo tsc_khz {} replaced by the measured {}",
                                        s.name,
                                        s.tsc_khz,
                                        tsc_khz
                                    );
                                }
                            } else {
                                crate::klog!(
                                    "{}: mapping 'sinfo' has no sinfo magic; tsc_khz not patched",
                                    s.name
                                );
                            }
                        }
                        for i in 0..pages {
                            space.map(m.va + i * PAGE, pa + i * PAGE, m.writable, m.executable)?;
                        }
                        RegionBacking::File
                    }
                }
                Backing::Fill(b) => {
                    space.add_lazy(m.va, m.size, m.writable, m.executable, b);
                    RegionBacking::Fill(b)
                }
                Backing::Uninitialized => {
                    space.add_lazy(m.va, m.size, m.writable, m.executable, 0);
                    RegionBacking::Zero
                }
                Backing::Physical(i) => {
                    let Some(p) = phys_regions.get(i as usize) else {
                        continue;
                    };
                    for k in 0..pages {
                        space.map(m.va + k * PAGE, p.pa + k * PAGE, m.writable, m.executable)?;
                    }
                    RegionBacking::Shared(p.name)
                }
                Backing::SchedulingInfo | Backing::TimedEvent => {
                    let pa = crate::with_frames(|f| f.zeroed_page())?;
                    space.map(m.va, pa, m.writable, m.executable)?;
                    if m.backing == Backing::SchedulingInfo {
                        sched_pa = Some(pa);
                        RegionBacking::SchedulingInfo
                    } else {
                        RegionBacking::TimedEvent
                    }
                }
            };
            regions.push(RegionInfo {
                name: m.name,
                va: m.va,
                size: m.size,
                writable: m.writable,
                executable: m.executable,
                backing,
            });
        }
        let mut events = [None; 64];
        for e in image.events(s) {
            if let Some(slot) = events.get_mut(e.number as usize) {
                *slot = Some((e.name, e.action));
            }
        }
        let mut frame = Box::new(TrapFrame::new());
        frame.rip = s.rip;
        frame.rsp = s.rsp;
        frame.rdi = s.rdi;
        Ok(Subject {
            name: s.name,
            frame,
            virt: VirtCpu::reset(),
            space,
            sched_pa,
            events,
            ports: SubjectPorts::new(s.name),
            regions,
            end: None,
            sleep_until: 0,
            stats: Stats::default(),
        })
    }

    /// Writes the scheduling info (start first, then end, as Muen does).
    pub fn set_schedule(&self, start: u64, end: u64) {
        if let Some(pa) = self.sched_pa {
            phys::write_u64(pa, start);
            phys::write_u64(pa + 8, end);
        }
    }

    /// The region map as one line.
    pub fn region_map(&self) -> String {
        let mut s = String::new();
        for (i, r) in self.regions.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{r}");
        }
        s
    }

    /// Is the subject still runnable?
    pub fn alive(&self) -> bool {
        self.end.is_none()
    }
}
