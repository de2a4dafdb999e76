//! The system image: what `muen-tools pack` writes and the minimal kernel
//! loads. It is this project's tiny analogue of a compiled Muen policy: it
//! lists every subject, the exact set of regions in its address space (and
//! where their bytes come from), the physical regions that several address
//! spaces share (channels, `time_info`), the events a subject may raise with
//! `vmcall`, and the scheduling plan.
//!
//! It is **not** part of Muen's ABI; a subject never sees it. The format is
//! little-endian, versioned and self-describing enough to reject a mismatch
//! between packer and kernel with a clear error. [`Image::parse`] validates
//! every offset, count and size once; afterwards the accessors cannot fail.
//!
//! ```text
//! header   magic "UNIPISYS", version, sizes, plan, table offsets
//! tables   subjects, mappings, physical regions, events (fixed-size records)
//! blobs    file contents (4 KiB aligned): ELF segments, sinfo, boot info, ...
//! ```

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

/// First eight bytes of every image.
pub const MAGIC: [u8; 8] = *b"UNIPISYS";
/// Format version; bumped on every incompatible change.
pub const VERSION: u32 = 1;
/// Names are Muen names: at most 63 bytes.
pub const NAME_MAX: usize = 63;
/// Page size used for every region and blob.
pub const PAGE: u64 = 0x1000;

const NAME_FIELD: usize = 64;
const HEADER_SIZE: usize = 96;
const SUBJECT_SIZE: usize = NAME_FIELD + 8 * 8;
const MAPPING_SIZE: usize = NAME_FIELD + 8 * 6;
const PHYSICAL_SIZE: usize = NAME_FIELD + 8 * 3;
const EVENT_SIZE: usize = NAME_FIELD + 8 * 2;

/// Header flag: leave QEMU through `isa-debug-exit` once every subject stopped.
pub const FLAG_DEBUG_EXIT: u32 = 1 << 0;
/// Header flags bits 16..31: period in milliseconds (1..=65535; 0 = never)
/// at which the kernel restarts every network channel it writes to a
/// subject with a new epoch, as a restarting NIC subject would. A test aid;
/// kernels that do not know it ignore it.
pub const FLAG_NET_RESTART_SHIFT: u32 = 16;

/// Everything that can be wrong with an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the header or a table needs.
    Truncated,
    /// The first eight bytes are not [`MAGIC`].
    BadMagic,
    /// Built by a packer of another format version.
    Version(u32),
    /// A name is empty, longer than [`NAME_MAX`] or not NUL-padded.
    BadName,
    /// A table or blob reference points outside the image.
    OutOfBounds(&'static str),
    /// An enum field holds an unknown value.
    BadValue(&'static str, u64),
    /// Addresses or sizes that are not page aligned, or that overlap.
    Layout(&'static str),
    /// Builder: a table would exceed a limit.
    TooMany(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("image truncated"),
            Error::BadMagic => f.write_str("not a system image (bad magic)"),
            Error::Version(v) => write!(f, "image format version {v}, kernel expects {VERSION}"),
            Error::BadName => {
                f.write_str("invalid name (empty, longer than 63 bytes or not NUL padded)")
            }
            Error::OutOfBounds(what) => write!(f, "{what} points outside the image"),
            Error::BadValue(what, v) => write!(f, "invalid {what}: {v}"),
            Error::Layout(what) => write!(f, "bad layout: {what}"),
            Error::TooMany(what) => write!(f, "too many {what}"),
        }
    }
}

/// Where the bytes of a private mapping come from, or which shared object it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// Private pages: `len` bytes copied from image offset `offset`, the rest zero.
    File { offset: u64, len: u64 },
    /// Private pages filled with one byte.
    Fill(u8),
    /// Private pages without declared content (Muen: "uninitialized"); the
    /// kernel zeroes them so runs are reproducible.
    Uninitialized,
    /// The physical region with this index in [`Image::physicals`].
    Physical(u32),
    /// The subject's scheduling-info page, written by the kernel every minor frame.
    SchedulingInfo,
    /// The subject's timed-event page.
    TimedEvent,
}

impl Backing {
    fn encode(&self) -> [u64; 3] {
        match *self {
            Backing::File { offset, len } => [1, offset, len],
            Backing::Fill(p) => [2, p as u64, 0],
            Backing::Uninitialized => [3, 0, 0],
            Backing::Physical(i) => [4, i as u64, 0],
            Backing::SchedulingInfo => [5, 0, 0],
            Backing::TimedEvent => [6, 0, 0],
        }
    }

    fn decode(v: [u64; 3]) -> Result<Self, Error> {
        Ok(match v[0] {
            1 => Backing::File {
                offset: v[1],
                len: v[2],
            },
            2 => Backing::Fill(
                u8::try_from(v[1]).map_err(|_| Error::BadValue("fill pattern", v[1]))?,
            ),
            3 => Backing::Uninitialized,
            4 => Backing::Physical(
                u32::try_from(v[1]).map_err(|_| Error::BadValue("physical index", v[1]))?,
            ),
            5 => Backing::SchedulingInfo,
            6 => Backing::TimedEvent,
            other => return Err(Error::BadValue("backing kind", other)),
        })
    }
}

/// What the kernel itself does with a shared physical region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Nothing: memory shared between subjects only (or unused).
    None,
    /// The `time_info` page: the kernel publishes wall-clock time into it.
    TimeInfo,
    /// A debuglog channel: the kernel reads it and prints each line on the
    /// serial console prefixed with the name of subject `subject`.
    DebugLog { subject: u32 },
    /// A muennet channel the kernel *writes*: frames received on the NIC
    /// (or from another bridge port) go to bridge port `port`'s subject.
    NetToSubject { port: u32 },
    /// A muennet channel the kernel *reads*: frames the subject sends on port `port`.
    NetFromSubject { port: u32 },
}

impl Peer {
    fn encode(&self) -> [u64; 2] {
        match *self {
            Peer::None => [0, 0],
            Peer::TimeInfo => [1, 0],
            Peer::DebugLog { subject } => [2, subject as u64],
            Peer::NetToSubject { port } => [3, port as u64],
            Peer::NetFromSubject { port } => [4, port as u64],
        }
    }

    fn decode(v: [u64; 2]) -> Result<Self, Error> {
        let idx = || u32::try_from(v[1]).map_err(|_| Error::BadValue("peer index", v[1]));
        Ok(match v[0] {
            0 => Peer::None,
            1 => Peer::TimeInfo,
            2 => Peer::DebugLog { subject: idx()? },
            3 => Peer::NetToSubject { port: idx()? },
            4 => Peer::NetFromSubject { port: idx()? },
            other => return Err(Error::BadValue("peer kind", other)),
        })
    }
}

/// What happens when a subject raises an event with `vmcall`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop the subject for good (Solo5's `solo5_exit` without reset).
    Exit,
    /// Run the kernel's network bridge now (a "data is ready" notification
    /// for the subject's outgoing channels) and resume the subject.
    NetNotify,
    /// Yield the rest of the minor frame to the next subject.
    Yield,
}

impl Action {
    fn encode(&self) -> u64 {
        match self {
            Action::Exit => 1,
            Action::NetNotify => 2,
            Action::Yield => 3,
        }
    }
    fn decode(v: u64) -> Result<Self, Error> {
        Ok(match v {
            1 => Action::Exit,
            2 => Action::NetNotify,
            3 => Action::Yield,
            other => return Err(Error::BadValue("event action", other)),
        })
    }
}

/// Scheduling plan and global behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Length of one minor frame in microseconds. Every subject gets one
    /// minor frame in turn (a static round-robin plan, one major frame =
    /// one frame per runnable subject).
    pub minor_frame_us: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
}

impl Settings {
    /// The network-channel restart period in milliseconds (0: never), from
    /// flags bits 16..31 ([`FLAG_NET_RESTART_SHIFT`]).
    pub fn net_restart_ms(&self) -> u32 {
        self.flags >> FLAG_NET_RESTART_SHIFT
    }
}

/// One subject (a "vCPU" with its own address space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    pub name: &'a str,
    /// Initial RIP, RSP and RDI (Muen's native profile; everything else is 0).
    pub rip: u64,
    pub rsp: u64,
    pub rdi: u64,
    /// TSC frequency the subject's sinfo advertises (kHz); the kernel checks
    /// it against its own calibration and reports a mismatch.
    pub tsc_khz: u64,
    mappings: (u64, u64),
    events: (u64, u64),
}

/// One region of a subject's address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping<'a> {
    /// Logical name (as in sinfo), for reports.
    pub name: &'a str,
    pub va: u64,
    pub size: u64,
    pub writable: bool,
    pub executable: bool,
    pub backing: Backing,
}

/// A physical region shared by one or more mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Physical<'a> {
    pub name: &'a str,
    pub size: u64,
    pub peer: Peer,
}

/// A `vmcall` event a subject may raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    pub name: &'a str,
    pub number: u8,
    pub action: Action,
}

/// A validated system image borrowed from memory.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    bytes: &'a [u8],
    settings: Settings,
    subjects: (u64, u64),
    mappings: (u64, u64),
    physicals: (u64, u64),
    events: (u64, u64),
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn at(b: &'a [u8], pos: usize) -> Self {
        Reader { b, pos }
    }
    fn u64(&mut self) -> Result<u64, Error> {
        let s = self.b.get(self.pos..self.pos + 8).ok_or(Error::Truncated)?;
        self.pos += 8;
        Ok(u64::from_le_bytes(
            s.try_into().map_err(|_| Error::Truncated)?,
        ))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let s = self.b.get(self.pos..self.pos + 4).ok_or(Error::Truncated)?;
        self.pos += 4;
        Ok(u32::from_le_bytes(
            s.try_into().map_err(|_| Error::Truncated)?,
        ))
    }
    fn name(&mut self) -> Result<&'a str, Error> {
        let s = self
            .b
            .get(self.pos..self.pos + NAME_FIELD)
            .ok_or(Error::Truncated)?;
        self.pos += NAME_FIELD;
        let len = s.iter().position(|&c| c == 0).ok_or(Error::BadName)?;
        if len == 0 || len > NAME_MAX || s[len..].iter().any(|&c| c != 0) {
            return Err(Error::BadName);
        }
        core::str::from_utf8(&s[..len]).map_err(|_| Error::BadName)
    }
}

fn table(
    b: &[u8],
    off: u64,
    count: u64,
    rec: usize,
    what: &'static str,
) -> Result<(u64, u64), Error> {
    let len = count
        .checked_mul(rec as u64)
        .ok_or(Error::OutOfBounds(what))?;
    let end = off.checked_add(len).ok_or(Error::OutOfBounds(what))?;
    if end > b.len() as u64 {
        return Err(Error::OutOfBounds(what));
    }
    Ok((off, count))
}

impl<'a> Image<'a> {
    /// Validates `bytes` as a system image: header, every table record,
    /// every reference (blob ranges, physical indices, event numbers) and
    /// every subject's layout (page alignment, no overlapping mappings).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER_SIZE {
            return Err(Error::Truncated);
        }
        if bytes[..8] != MAGIC {
            return Err(Error::BadMagic);
        }
        let mut r = Reader::at(bytes, 8);
        let version = r.u32()?;
        if version != VERSION {
            return Err(Error::Version(version));
        }
        let _header_size = r.u32()?;
        let total = r.u64()?;
        if total > bytes.len() as u64 {
            return Err(Error::Truncated);
        }
        let bytes = &bytes[..total as usize];
        let minor_frame_us = r.u32()?;
        let flags = r.u32()?;
        if minor_frame_us == 0 {
            return Err(Error::BadValue("minor frame length", 0));
        }
        let mut tab = |rec, what| -> Result<(u64, u64), Error> {
            let off = r.u64()?;
            let count = r.u64()?;
            table(bytes, off, count, rec, what)
        };
        let subjects = tab(SUBJECT_SIZE, "subject table")?;
        let mappings = tab(MAPPING_SIZE, "mapping table")?;
        let physicals = tab(PHYSICAL_SIZE, "physical table")?;
        let events = tab(EVENT_SIZE, "event table")?;
        let img = Image {
            bytes,
            settings: Settings {
                minor_frame_us,
                flags,
            },
            subjects,
            mappings,
            physicals,
            events,
        };
        img.validate()?;
        Ok(img)
    }

    fn validate(&self) -> Result<(), Error> {
        for i in 0..self.physicals.1 {
            let p = self.read_physical(i)?;
            if p.size == 0 || p.size % PAGE != 0 {
                return Err(Error::Layout("physical region size"));
            }
            if let Peer::DebugLog { subject } = p.peer
                && u64::from(subject) >= self.subjects.1
            {
                return Err(Error::BadValue("debuglog subject", subject as u64));
            }
        }
        for s in 0..self.subjects.1 {
            let subj = self.read_subject(s)?;
            let (moff, mcount) = subj.mappings;
            if moff
                .checked_add(mcount)
                .is_none_or(|end| end > self.mappings.1)
            {
                return Err(Error::OutOfBounds("subject mappings"));
            }
            let (eoff, ecount) = subj.events;
            if eoff
                .checked_add(ecount)
                .is_none_or(|end| end > self.events.1)
            {
                return Err(Error::OutOfBounds("subject events"));
            }
            for m in moff..moff + mcount {
                let m = self.read_mapping(m)?;
                if m.va % PAGE != 0
                    || m.size == 0
                    || m.size % PAGE != 0
                    || m.va.checked_add(m.size).is_none()
                {
                    return Err(Error::Layout("mapping address or size"));
                }
                // Subject addresses live in the lower half of the canonical space.
                if m.va + m.size > 0x0000_8000_0000_0000 {
                    return Err(Error::Layout("mapping above the lower canonical half"));
                }
                match m.backing {
                    Backing::File { offset, len } => {
                        if len > m.size
                            || offset
                                .checked_add(len)
                                .is_none_or(|e| e > self.bytes.len() as u64)
                        {
                            return Err(Error::OutOfBounds("file backing"));
                        }
                    }
                    Backing::Physical(i) => {
                        let p = self.read_physical(u64::from(i))?;
                        if p.size != m.size {
                            return Err(Error::Layout(
                                "mapping size differs from its physical region",
                            ));
                        }
                    }
                    Backing::SchedulingInfo | Backing::TimedEvent => {
                        if m.size != PAGE {
                            return Err(Error::Layout("kernel page mapping must be one page"));
                        }
                    }
                    Backing::Fill(_) | Backing::Uninitialized => {}
                }
            }
            // No two mappings of one subject may overlap.
            for a in moff..moff + mcount {
                let ma = self.read_mapping(a)?;
                for b in a + 1..moff + mcount {
                    let mb = self.read_mapping(b)?;
                    if ma.va < mb.va + mb.size && mb.va < ma.va + ma.size {
                        return Err(Error::Layout("overlapping mappings"));
                    }
                }
            }
            for e in eoff..eoff + ecount {
                let ev = self.read_event(e)?;
                if ev.number > 63 {
                    return Err(Error::BadValue("event number", ev.number as u64));
                }
            }
        }
        Ok(())
    }

    /// The scheduling plan and flags.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// The whole image.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of subjects.
    pub fn subject_count(&self) -> usize {
        self.subjects.1 as usize
    }

    /// The subjects, in plan order.
    pub fn subjects(&self) -> impl Iterator<Item = Subject<'a>> + '_ {
        (0..self.subjects.1).map(|i| self.read_subject(i).expect("validated"))
    }

    /// The mappings of `subject`.
    pub fn mappings(&self, subject: &Subject<'a>) -> impl Iterator<Item = Mapping<'a>> + '_ {
        let (off, count) = subject.mappings;
        (off..off + count).map(|i| self.read_mapping(i).expect("validated"))
    }

    /// The events of `subject`.
    pub fn events(&self, subject: &Subject<'a>) -> impl Iterator<Item = Event<'a>> + '_ {
        let (off, count) = subject.events;
        (off..off + count).map(|i| self.read_event(i).expect("validated"))
    }

    /// Number of shared physical regions.
    pub fn physical_count(&self) -> usize {
        self.physicals.1 as usize
    }

    /// The shared physical regions; [`Backing::Physical`] indexes this list.
    pub fn physicals(&self) -> impl Iterator<Item = Physical<'a>> + '_ {
        (0..self.physicals.1).map(|i| self.read_physical(i).expect("validated"))
    }

    /// The bytes a [`Backing::File`] refers to.
    pub fn file(&self, offset: u64, len: u64) -> &'a [u8] {
        &self.bytes[offset as usize..(offset + len) as usize]
    }

    fn record(&self, table: (u64, u64), i: u64, size: usize) -> Result<Reader<'a>, Error> {
        if i >= table.1 {
            return Err(Error::OutOfBounds("record index"));
        }
        Ok(Reader::at(self.bytes, (table.0 + i * size as u64) as usize))
    }

    fn read_subject(&self, i: u64) -> Result<Subject<'a>, Error> {
        let mut r = self.record(self.subjects, i, SUBJECT_SIZE)?;
        Ok(Subject {
            name: r.name()?,
            rip: r.u64()?,
            rsp: r.u64()?,
            rdi: r.u64()?,
            tsc_khz: r.u64()?,
            mappings: (r.u64()?, r.u64()?),
            events: (r.u64()?, r.u64()?),
        })
    }

    fn read_mapping(&self, i: u64) -> Result<Mapping<'a>, Error> {
        let mut r = self.record(self.mappings, i, MAPPING_SIZE)?;
        let name = r.name()?;
        let va = r.u64()?;
        let size = r.u64()?;
        let flags = r.u64()?;
        if flags & !3 != 0 {
            return Err(Error::BadValue("mapping flags", flags));
        }
        let backing = Backing::decode([r.u64()?, r.u64()?, r.u64()?])?;
        Ok(Mapping {
            name,
            va,
            size,
            writable: flags & 1 != 0,
            executable: flags & 2 != 0,
            backing,
        })
    }

    fn read_physical(&self, i: u64) -> Result<Physical<'a>, Error> {
        let mut r = self.record(self.physicals, i, PHYSICAL_SIZE)?;
        Ok(Physical {
            name: r.name()?,
            size: r.u64()?,
            peer: Peer::decode([r.u64()?, r.u64()?])?,
        })
    }

    fn read_event(&self, i: u64) -> Result<Event<'a>, Error> {
        let mut r = self.record(self.events, i, EVENT_SIZE)?;
        let name = r.name()?;
        let number = r.u64()?;
        let number = u8::try_from(number).map_err(|_| Error::BadValue("event number", number))?;
        Ok(Event {
            name,
            number,
            action: Action::decode(r.u64()?)?,
        })
    }
}

/// Builds an image. Used by the packer on the host; `no_std` + `alloc` so it
/// can be unit-tested next to the parser.
#[derive(Debug, Default)]
pub struct Builder {
    settings: Option<Settings>,
    subjects: Vec<SubjectSpec>,
    physicals: Vec<(alloc::string::String, u64, Peer)>,
    blobs: Vec<u8>,
}

/// A subject as the [`Builder`] keeps it: name, registers (rip, rsp, rdi,
/// tsc_khz), mappings, events.
type SubjectSpec = (
    alloc::string::String,
    [u64; 4],
    Vec<MappingSpec>,
    Vec<EventSpec>,
);

/// A mapping as given to the [`Builder`]; `File` contents are passed as bytes.
#[derive(Debug, Clone)]
pub struct MappingSpec {
    pub name: alloc::string::String,
    pub va: u64,
    pub size: u64,
    pub writable: bool,
    pub executable: bool,
    pub backing: Backing,
}

/// An event as given to the [`Builder`].
#[derive(Debug, Clone)]
pub struct EventSpec {
    pub name: alloc::string::String,
    pub number: u8,
    pub action: Action,
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > NAME_MAX || name.as_bytes().contains(&0) {
        Err(Error::BadName)
    } else {
        Ok(())
    }
}

impl Builder {
    /// An empty image with the given plan.
    pub fn new(settings: Settings) -> Self {
        Builder {
            settings: Some(settings),
            ..Default::default()
        }
    }

    /// Adds a blob (page aligned inside the blob area) and returns the
    /// backing that refers to it. Offsets are fixed up in [`Builder::finish`].
    pub fn blob(&mut self, bytes: &[u8]) -> Backing {
        let offset = self.blobs.len() as u64;
        self.blobs.extend_from_slice(bytes);
        let pad = (PAGE - self.blobs.len() as u64 % PAGE) % PAGE;
        self.blobs.resize(self.blobs.len() + pad as usize, 0);
        Backing::File {
            offset,
            len: bytes.len() as u64,
        }
    }

    /// Adds a shared physical region and returns its index.
    pub fn physical(&mut self, name: &str, size: u64, peer: Peer) -> Result<u32, Error> {
        check_name(name)?;
        if size == 0 || !size.is_multiple_of(PAGE) {
            return Err(Error::Layout("physical region size"));
        }
        let idx =
            u32::try_from(self.physicals.len()).map_err(|_| Error::TooMany("physical regions"))?;
        self.physicals.push((name.into(), size, peer));
        Ok(idx)
    }

    /// Adds a subject and returns its index (its place in the plan).
    pub fn subject(
        &mut self,
        name: &str,
        regs: SubjectRegs,
        mappings: Vec<MappingSpec>,
        events: Vec<EventSpec>,
    ) -> Result<u32, Error> {
        check_name(name)?;
        for m in &mappings {
            check_name(&m.name)?;
        }
        for e in &events {
            check_name(&e.name)?;
        }
        let idx = u32::try_from(self.subjects.len()).map_err(|_| Error::TooMany("subjects"))?;
        self.subjects.push((
            name.into(),
            [regs.rip, regs.rsp, regs.rdi, regs.tsc_khz],
            mappings,
            events,
        ));
        Ok(idx)
    }

    /// Serialises the image and validates it with [`Image::parse`].
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        let settings = self.settings.unwrap_or(Settings {
            minor_frame_us: 1000,
            flags: 0,
        });
        let nmap: usize = self.subjects.iter().map(|s| s.2.len()).sum();
        let nev: usize = self.subjects.iter().map(|s| s.3.len()).sum();
        let sub_off = HEADER_SIZE as u64;
        let map_off = sub_off + (self.subjects.len() * SUBJECT_SIZE) as u64;
        let phys_off = map_off + (nmap * MAPPING_SIZE) as u64;
        let ev_off = phys_off + (self.physicals.len() * PHYSICAL_SIZE) as u64;
        let tables_end = ev_off + (nev * EVENT_SIZE) as u64;
        let blob_off = tables_end.div_ceil(PAGE) * PAGE;
        let total = blob_off + self.blobs.len() as u64;

        let mut out = Vec::with_capacity(total as usize);
        out.extend_from_slice(&MAGIC);
        put32(&mut out, VERSION);
        put32(&mut out, HEADER_SIZE as u32);
        put64(&mut out, total);
        put32(&mut out, settings.minor_frame_us);
        put32(&mut out, settings.flags);
        for (off, count) in [
            (sub_off, self.subjects.len()),
            (map_off, nmap),
            (phys_off, self.physicals.len()),
            (ev_off, nev),
        ] {
            put64(&mut out, off);
            put64(&mut out, count as u64);
        }
        out.resize(HEADER_SIZE, 0);

        let (mut mi, mut ei) = (0u64, 0u64);
        for (name, regs, maps, evs) in &self.subjects {
            put_name(&mut out, name);
            for r in regs {
                put64(&mut out, *r);
            }
            put64(&mut out, mi);
            put64(&mut out, maps.len() as u64);
            put64(&mut out, ei);
            put64(&mut out, evs.len() as u64);
            mi += maps.len() as u64;
            ei += evs.len() as u64;
        }
        for (_, _, maps, _) in &self.subjects {
            for m in maps {
                put_name(&mut out, &m.name);
                put64(&mut out, m.va);
                put64(&mut out, m.size);
                put64(&mut out, m.writable as u64 | (m.executable as u64) << 1);
                let backing = match m.backing {
                    Backing::File { offset, len } => Backing::File {
                        offset: offset + blob_off,
                        len,
                    },
                    other => other,
                };
                for v in backing.encode() {
                    put64(&mut out, v);
                }
            }
        }
        for (name, size, peer) in &self.physicals {
            put_name(&mut out, name);
            put64(&mut out, *size);
            for v in peer.encode() {
                put64(&mut out, v);
            }
        }
        for (_, _, _, evs) in &self.subjects {
            for e in evs {
                put_name(&mut out, &e.name);
                put64(&mut out, e.number as u64);
                put64(&mut out, e.action.encode());
            }
        }
        out.resize(blob_off as usize, 0);
        out.extend_from_slice(&self.blobs);
        Image::parse(&out)?;
        Ok(out)
    }
}

/// The initial register values of a subject (everything else starts at 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectRegs {
    pub rip: u64,
    pub rsp: u64,
    pub rdi: u64,
    pub tsc_khz: u64,
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_name(out: &mut Vec<u8>, name: &str) {
    let mut field = [0u8; NAME_FIELD];
    field[..name.len()].copy_from_slice(name.as_bytes());
    out.extend_from_slice(&field);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn sample() -> Vec<u8> {
        let mut b = Builder::new(Settings {
            minor_frame_us: 1000,
            flags: FLAG_DEBUG_EXIT,
        });
        let text = b.blob(&[0x90; 100]);
        let log = b
            .physical("unipi_debuglog", 0x20000, Peer::DebugLog { subject: 0 })
            .unwrap();
        let maps = vec![
            MappingSpec {
                name: "text".into(),
                va: 0x200000,
                size: 0x1000,
                writable: false,
                executable: true,
                backing: text,
            },
            MappingSpec {
                name: "ram".into(),
                va: 0x201000,
                size: 0x10000,
                writable: true,
                executable: false,
                backing: Backing::Uninitialized,
            },
            MappingSpec {
                name: "debuglog".into(),
                va: 0xf_fff0_0000,
                size: 0x20000,
                writable: true,
                executable: false,
                backing: Backing::Physical(log),
            },
            MappingSpec {
                name: "scheduling_info".into(),
                va: 0xe_0000_8000,
                size: 0x1000,
                writable: false,
                executable: false,
                backing: Backing::SchedulingInfo,
            },
        ];
        let evs = vec![EventSpec {
            name: "solo5_exit".into(),
            number: 0,
            action: Action::Exit,
        }];
        b.subject(
            "unipi",
            SubjectRegs {
                rip: 0x200000,
                rsp: 0x210ff8,
                rdi: 0x1000,
                tsc_khz: 1_000_000,
            },
            maps,
            evs,
        )
        .unwrap();
        b.finish().unwrap()
    }

    #[test]
    fn net_restart_period_lives_in_the_high_flag_bits() {
        let s = Settings {
            minor_frame_us: 1000,
            flags: FLAG_DEBUG_EXIT | 2500 << FLAG_NET_RESTART_SHIFT,
        };
        assert_eq!(s.net_restart_ms(), 2500);
        assert_eq!(s.flags & FLAG_DEBUG_EXIT, FLAG_DEBUG_EXIT);
        assert_eq!(
            Settings {
                minor_frame_us: 1000,
                flags: 0xFFFF_0000
            }
            .net_restart_ms(),
            65535
        );
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let img = Image::parse(&bytes).unwrap();
        assert_eq!(img.settings().flags, FLAG_DEBUG_EXIT);
        assert_eq!(img.settings().net_restart_ms(), 0);
        let s = img.subjects().next().unwrap();
        assert_eq!(s.name, "unipi");
        assert_eq!((s.rip, s.rsp, s.rdi), (0x200000, 0x210ff8, 0x1000));
        let maps: Vec<_> = img.mappings(&s).collect();
        assert_eq!(maps.len(), 4);
        match maps[0].backing {
            Backing::File { offset, len } => {
                assert_eq!(offset % PAGE, 0);
                assert_eq!(img.file(offset, len), &[0x90; 100][..]);
            }
            other => panic!("{other:?}"),
        }
        assert!(maps[0].executable && !maps[0].writable);
        let phys: Vec<_> = img.physicals().collect();
        assert_eq!(phys[0].peer, Peer::DebugLog { subject: 0 });
        let ev: Vec<_> = img.events(&s).collect();
        assert_eq!(ev[0].action, Action::Exit);
    }

    #[test]
    fn rejects_corruption() {
        let good = sample();
        assert_eq!(Image::parse(&good[..50]).unwrap_err(), Error::Truncated);
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Image::parse(&bad).unwrap_err(), Error::BadMagic);
        let mut bad = good.clone();
        bad[8] = 9;
        assert_eq!(Image::parse(&bad).unwrap_err(), Error::Version(9));
        // Every truncation and every single-byte flip must be rejected or
        // parsed without panicking.
        for cut in 0..good.len().min(2048) {
            let _ = Image::parse(&good[..cut]);
        }
        for i in 0..2048.min(good.len()) {
            let mut b = good.clone();
            b[i] ^= 0xff;
            if let Ok(img) = Image::parse(&b) {
                for s in img.subjects() {
                    let _ = img.mappings(&s).count();
                    let _ = img.events(&s).count();
                }
            }
        }
    }

    #[test]
    fn rejects_overlap_and_bad_names() {
        let mut b = Builder::new(Settings {
            minor_frame_us: 1000,
            flags: 0,
        });
        let m = |va| MappingSpec {
            name: "x".to_string(),
            va,
            size: 0x2000,
            writable: true,
            executable: false,
            backing: Backing::Fill(0),
        };
        b.subject(
            "s",
            SubjectRegs {
                rip: 0,
                rsp: 0,
                rdi: 0,
                tsc_khz: 1,
            },
            vec![m(0x1000), m(0x2000)],
            vec![],
        )
        .unwrap();
        assert_eq!(
            b.finish().unwrap_err(),
            Error::Layout("overlapping mappings")
        );
        let mut b = Builder::new(Settings {
            minor_frame_us: 1000,
            flags: 0,
        });
        let long = "x".repeat(64);
        assert_eq!(
            b.physical(&long, 0x1000, Peer::None).unwrap_err(),
            Error::BadName
        );
    }
}
