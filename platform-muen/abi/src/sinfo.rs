//! The subject info page ("sinfo", docs/muen-abi.md §2.1–§2.3).
//!
//! [`Sinfo`] is a validated read-only view over the page bytes; it never
//! panics on hostile input. [`SinfoWriter`] builds a page (as Muen's
//! `mugensinfo` does) into a caller-provided buffer.
//!
//! Layout (all little-endian, packed):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic (`"muinfo\0"` + version byte) |
//! | 8 | 4 | tsc_khz |
//! | 12 | 65 | subject name record |
//! | 77 | 2 / 1 | v03/v04: resource_count u16 @77, padding @79; v05: padding @77, resource_count @78 |
//! | 80 | 255 × 128 | resource records |

use core::fmt;

use crate::bytes::{
    bytes_at, put, put_u8, put_u16, put_u32, put_u64, u8_at, u16_at, u32_at, u64_at,
};

/// Virtual address of the sinfo page in every subject (fixed by the Muen toolchain).
pub const SINFO_VA: u64 = 0xE_0000_0000;
/// Size of the mapped sinfo region.
pub const SINFO_REGION_SIZE: usize = 0x8000;
/// Virtual address of the scheduling info page (= sinfo VA + sinfo region size).
pub const SCHED_INFO_VA: u64 = 0xE_0000_8000;
/// Virtual address of the timed event page.
pub const TIMED_EVENT_VA: u64 = 0xE_0001_0000;
/// Size of the sinfo structure in bytes (0x7FD0).
pub const SINFO_SIZE: usize = 32720;
/// Size of one resource record.
pub const RESOURCE_SIZE: usize = 128;
/// Maximum number of resource records.
pub const MAX_RESOURCES: usize = 255;
/// Size of a name record (length byte, 63 data bytes, terminating NUL).
pub const NAME_RECORD_SIZE: usize = 65;
/// Maximum length of a name in bytes.
pub const NAME_MAX: usize = 63;
/// Size of a memory region record (also the size of every resource data variant).
pub const MEMREGION_SIZE: usize = 56;
/// Size of the data part of a resource record.
pub const RESOURCE_DATA_SIZE: usize = 56;

/// sinfo magic of version 03 (`"muinfo\0\x03"` little-endian).
pub const MAGIC_V03: u64 = 0x0300_6f66_6e69_756d;
/// sinfo magic of version 04 (`"muinfo\0\x04"` little-endian), the primary target.
pub const MAGIC_V04: u64 = 0x0400_6f66_6e69_756d;
/// sinfo magic of version 05 (`"muinfo\0\x05"` little-endian), Solo5-only layout.
pub const MAGIC_V05: u64 = 0x0500_6f66_6e69_756d;

/// Offset of the magic field.
pub const MAGIC_OFFSET: usize = 0;
/// Offset of the tsc_khz field (the kernel patches it at load time).
pub const TSC_KHZ_OFFSET: usize = 8;
/// Offset of the subject name record.
pub const NAME_OFFSET: usize = 12;
/// Offset of the first resource record.
pub const RESOURCES_OFFSET: usize = 80;

/// Offsets inside a resource record.
pub mod record {
    /// Resource kind (u32).
    pub const KIND: usize = 0;
    /// Name record (65 bytes).
    pub const NAME: usize = 4;
    /// Resource data (56 bytes).
    pub const DATA: usize = 72;
}

/// Raw resource kinds (the u32 at offset 0 of a resource record).
pub mod kind {
    /// Unused record; iteration stops here.
    pub const NONE: u32 = 0;
    /// Memory region.
    pub const MEMORY: u32 = 1;
    /// Event (hypercall number).
    pub const EVENT: u32 = 2;
    /// Interrupt vector.
    pub const VECTOR: u32 = 3;
    /// PCI device.
    pub const DEVICE: u32 = 4;
    /// Device memory.
    pub const DEVMEM: u32 = 5;
    /// Device I/O port range (v05 only).
    pub const DEVPORT: u32 = 6;
}

/// Memory region flag: writable.
pub const MEM_WRITABLE: u8 = 1 << 0;
/// Memory region flag: executable.
pub const MEM_EXECUTABLE: u8 = 1 << 1;
/// Value of the pattern field meaning "no fill pattern".
pub const NO_PATTERN: u16 = 256;

/// Layout version of a sinfo page, selected by its magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Magic `0x03006f666e69756d`: v04 layout without `SUBJ_DEVICETREE` (KRNL_IFACE = 18).
    V03,
    /// Magic `0x04006f666e69756d`: current Muen toolchain (§2.2).
    V04,
    /// Magic `0x05006f666e69756d`: newest Solo5 layout (§2.3).
    V05,
}

impl Version {
    /// The magic value of this version.
    pub const fn magic(self) -> u64 {
        match self {
            Version::V03 => MAGIC_V03,
            Version::V04 => MAGIC_V04,
            Version::V05 => MAGIC_V05,
        }
    }

    /// The version for `magic`, or `None` if it is not a supported magic.
    pub const fn from_magic(magic: u64) -> Option<Self> {
        match magic {
            MAGIC_V03 => Some(Version::V03),
            MAGIC_V04 => Some(Version::V04),
            MAGIC_V05 => Some(Version::V05),
            _ => None,
        }
    }

    /// Offset of the u16 resource_count field (77 before v05, 78 in v05).
    pub const fn resource_count_offset(self) -> usize {
        match self {
            Version::V03 | Version::V04 => 77,
            Version::V05 => 78,
        }
    }
}

/// Memory kinds of a memory region record (§2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryKind {
    /// 0 `subject`: ordinary subject memory (e.g. `ram`).
    Subject,
    /// 1 `subject_info`: the sinfo page.
    SubjectInfo,
    /// 2 `subject_binary`: a binary segment.
    SubjectBinary,
    /// 3 `subject_zeropage`.
    SubjectZeroPage,
    /// 4 `subject_initrd`.
    SubjectInitrd,
    /// 5 `subject_channel`: a channel (or time_info).
    SubjectChannel,
    /// 6 `subject_state`.
    SubjectState,
    /// 7 `subject_timed_event`.
    SubjectTimedEvent,
    /// 8 `subject_interrupts`.
    SubjectInterrupts,
    /// 9 `subject_scheduling_info`.
    SubjectSchedulingInfo,
    /// 10 `subject_bios`.
    SubjectBios,
    /// 11 `subject_acpi_rsdp`.
    SubjectAcpiRsdp,
    /// 12 `subject_acpi_xsdt`.
    SubjectAcpiXsdt,
    /// 13 `subject_acpi_fadt`.
    SubjectAcpiFadt,
    /// 14 `subject_acpi_dsdt`.
    SubjectAcpiDsdt,
    /// 15 `subject_device`.
    SubjectDevice,
    /// 16 `subject_solo5_boot_info`.
    SubjectSolo5BootInfo,
    /// 17 `subject_crash_audit`.
    SubjectCrashAudit,
    /// 18 `subject_devicetree` (v04 and later only).
    SubjectDeviceTree,
    /// `kernel_interface`: 19 in v04/v05, 18 in v03.
    KernelInterface,
}

impl MemoryKind {
    const TABLE: [MemoryKind; 18] = [
        MemoryKind::Subject,
        MemoryKind::SubjectInfo,
        MemoryKind::SubjectBinary,
        MemoryKind::SubjectZeroPage,
        MemoryKind::SubjectInitrd,
        MemoryKind::SubjectChannel,
        MemoryKind::SubjectState,
        MemoryKind::SubjectTimedEvent,
        MemoryKind::SubjectInterrupts,
        MemoryKind::SubjectSchedulingInfo,
        MemoryKind::SubjectBios,
        MemoryKind::SubjectAcpiRsdp,
        MemoryKind::SubjectAcpiXsdt,
        MemoryKind::SubjectAcpiFadt,
        MemoryKind::SubjectAcpiDsdt,
        MemoryKind::SubjectDevice,
        MemoryKind::SubjectSolo5BootInfo,
        MemoryKind::SubjectCrashAudit,
    ];

    /// The raw number of this kind in `version`, or `None` if the kind does
    /// not exist in that version (`SubjectDeviceTree` in v03).
    pub fn to_raw(self, version: Version) -> Option<u8> {
        match self {
            MemoryKind::SubjectDeviceTree => match version {
                Version::V03 => None,
                _ => Some(18),
            },
            MemoryKind::KernelInterface => match version {
                Version::V03 => Some(18),
                _ => Some(19),
            },
            other => Self::TABLE
                .iter()
                .position(|k| *k == other)
                .map(|p| p as u8),
        }
    }

    /// The kind numbered `raw` in `version`, or `None` for an unknown number.
    pub fn from_raw(raw: u8, version: Version) -> Option<Self> {
        match (raw, version) {
            (18, Version::V03) => Some(MemoryKind::KernelInterface),
            (18, _) => Some(MemoryKind::SubjectDeviceTree),
            (19, Version::V03) => None,
            (19, _) => Some(MemoryKind::KernelInterface),
            (r, _) => Self::TABLE.get(usize::from(r)).copied(),
        }
    }
}

/// Initial content of a memory region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    /// 0: no content declared.
    Uninitialized,
    /// 1: filled with a byte pattern.
    Fill,
    /// 2: loaded from a file.
    File,
}

impl Content {
    /// The raw value (0, 1, 2).
    pub const fn to_raw(self) -> u8 {
        match self {
            Content::Uninitialized => 0,
            Content::Fill => 1,
            Content::File => 2,
        }
    }

    /// The content for a raw value, `None` if unknown.
    pub const fn from_raw(raw: u8) -> Option<Self> {
        match raw {
            0 => Some(Content::Uninitialized),
            1 => Some(Content::Fill),
            2 => Some(Content::File),
            _ => None,
        }
    }
}

/// A memory region record (56 bytes, §2.1), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryRegion {
    /// Memory kind.
    pub kind: MemoryKind,
    /// Initial content.
    pub content: Content,
    /// Mapped writable (flag bit 0).
    pub writable: bool,
    /// Mapped executable (flag bit 1).
    pub executable: bool,
    /// Fill pattern byte; `None` is encoded as 256 ("no pattern").
    pub pattern: Option<u8>,
    /// Subject virtual address.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content; `None` is encoded as all-zero.
    pub hash: Option<[u8; 32]>,
}

impl MemoryRegion {
    /// Decodes a memory region record from the first 56 bytes of `data`.
    ///
    /// Unknown flag bits are ignored. Errors: unknown kind, unknown content,
    /// pattern > 256, or `data` shorter than 56 bytes.
    pub fn decode(data: &[u8], version: Version) -> Result<Self, SinfoError> {
        if data.len() < MEMREGION_SIZE {
            return Err(SinfoError::Truncated { len: data.len() });
        }
        let raw_kind = u8_at(data, 0);
        let kind =
            MemoryKind::from_raw(raw_kind, version).ok_or(SinfoError::BadMemoryKind(raw_kind))?;
        let raw_content = u8_at(data, 1);
        let content = Content::from_raw(raw_content).ok_or(SinfoError::BadContent(raw_content))?;
        let flags = u8_at(data, 2);
        let raw_pattern = u16_at(data, 3);
        let pattern = match raw_pattern {
            NO_PATTERN => None,
            p if p < NO_PATTERN => Some(p as u8),
            p => return Err(SinfoError::BadPattern(p)),
        };
        let hash: [u8; 32] = bytes_at(data, 24);
        Ok(MemoryRegion {
            kind,
            content,
            writable: flags & MEM_WRITABLE != 0,
            executable: flags & MEM_EXECUTABLE != 0,
            pattern,
            address: u64_at(data, 8),
            size: u64_at(data, 16),
            hash: if hash == [0; 32] { None } else { Some(hash) },
        })
    }

    /// Encodes this record into `out` (56 bytes) for `version`.
    ///
    /// Fails with [`SinfoError::KindNotInVersion`] if the kind has no number in
    /// `version`.
    pub fn encode(&self, version: Version) -> Result<[u8; MEMREGION_SIZE], SinfoError> {
        let mut out = [0u8; MEMREGION_SIZE];
        let kind = self
            .kind
            .to_raw(version)
            .ok_or(SinfoError::KindNotInVersion)?;
        put_u8(&mut out, 0, kind);
        put_u8(&mut out, 1, self.content.to_raw());
        let mut flags = 0;
        if self.writable {
            flags |= MEM_WRITABLE;
        }
        if self.executable {
            flags |= MEM_EXECUTABLE;
        }
        put_u8(&mut out, 2, flags);
        put_u16(&mut out, 3, self.pattern.map_or(NO_PATTERN, u16::from));
        put_u64(&mut out, 8, self.address);
        put_u64(&mut out, 16, self.size);
        put(&mut out, 24, &self.hash.unwrap_or([0; 32]));
        Ok(out)
    }
}

/// PCI identification of a device (sinfo v05 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PciIds {
    /// PCI vendor id.
    pub vendor_id: u16,
    /// PCI device id.
    pub device_id: u16,
    /// PCI class code.
    pub class_code: u16,
    /// Reset method: 0 NONE, 1 FLR, 2 AF_FLR, 3 PM, 4 BUS.
    pub reset_method: u8,
}

/// A PCI device record (kind DEVICE).
///
/// v03/v04: sid u16 @0, irte_start u16 @2, irq_start u8 @4, ir_count u8 @5,
/// flags u8 @6. v05: sid @0, vendor @2, device @4, class @6, irte_start @8,
/// irq_start @10, ir_count @11, flags @12, reset_method @13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Device {
    /// PCI source id (`bus << 8 | dev << 3 | fn`).
    pub sid: u16,
    /// First interrupt remapping table entry.
    pub irte_start: u16,
    /// First IRQ.
    pub irq_start: u8,
    /// Number of IRQs.
    pub ir_count: u8,
    /// Raw flags (bit 0 = MSI capable).
    pub flags: u8,
    /// PCI ids; `Some` exactly for records decoded from a v05 page. Written as
    /// zeros in v05 when `None`, ignored for older versions.
    pub pci_ids: Option<PciIds>,
}

impl Device {
    /// Whether the device is MSI capable (flag bit 0).
    pub fn msi_capable(&self) -> bool {
        self.flags & 1 != 0
    }

    fn decode(d: &[u8], version: Version) -> Self {
        match version {
            Version::V03 | Version::V04 => Device {
                sid: u16_at(d, 0),
                irte_start: u16_at(d, 2),
                irq_start: u8_at(d, 4),
                ir_count: u8_at(d, 5),
                flags: u8_at(d, 6),
                pci_ids: None,
            },
            Version::V05 => Device {
                sid: u16_at(d, 0),
                irte_start: u16_at(d, 8),
                irq_start: u8_at(d, 10),
                ir_count: u8_at(d, 11),
                flags: u8_at(d, 12),
                pci_ids: Some(PciIds {
                    vendor_id: u16_at(d, 2),
                    device_id: u16_at(d, 4),
                    class_code: u16_at(d, 6),
                    reset_method: u8_at(d, 13),
                }),
            },
        }
    }

    fn encode(&self, version: Version, d: &mut [u8]) {
        put_u16(d, 0, self.sid);
        match version {
            Version::V03 | Version::V04 => {
                put_u16(d, 2, self.irte_start);
                put_u8(d, 4, self.irq_start);
                put_u8(d, 5, self.ir_count);
                put_u8(d, 6, self.flags);
            }
            Version::V05 => {
                let ids = self.pci_ids.unwrap_or_default();
                put_u16(d, 2, ids.vendor_id);
                put_u16(d, 4, ids.device_id);
                put_u16(d, 6, ids.class_code);
                put_u16(d, 8, self.irte_start);
                put_u8(d, 10, self.irq_start);
                put_u8(d, 11, self.ir_count);
                put_u8(d, 12, self.flags);
                put_u8(d, 13, ids.reset_method);
            }
        }
    }
}

/// BAR information of a device memory record (sinfo v05 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DevMemBar {
    /// PCI source id of the owning device.
    pub sid: u16,
    /// Raw `io_mem_flags` byte of the BAR configuration (@3).
    pub io_mem_flags: u8,
    /// BAR index (@4).
    pub bar_idx: u8,
    /// BAR address (@8).
    pub bar_address: u64,
}

/// A device memory record (kind DEVMEM).
///
/// v03/v04: flags u8 @0 (memory flags), address u64 @8, size u64 @16.
/// v05: sid u16 @0, flags u8 @2 (bit 0 PREFETCHABLE, bit 1 64BIT),
/// io_mem_flags @3, bar_idx @4, bar_address @8, address @16, size @24.
/// The meaning of `flags` therefore differs between versions; it is exposed raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DevMem {
    /// Raw flags byte (v04: @0 memory flags; v05: @2 BAR flags).
    pub flags: u8,
    /// Subject virtual address.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
    /// BAR information; `Some` exactly for records decoded from a v05 page.
    pub bar: Option<DevMemBar>,
}

impl DevMem {
    fn decode(d: &[u8], version: Version) -> Self {
        match version {
            Version::V03 | Version::V04 => DevMem {
                flags: u8_at(d, 0),
                address: u64_at(d, 8),
                size: u64_at(d, 16),
                bar: None,
            },
            Version::V05 => DevMem {
                flags: u8_at(d, 2),
                address: u64_at(d, 16),
                size: u64_at(d, 24),
                bar: Some(DevMemBar {
                    sid: u16_at(d, 0),
                    io_mem_flags: u8_at(d, 3),
                    bar_idx: u8_at(d, 4),
                    bar_address: u64_at(d, 8),
                }),
            },
        }
    }

    fn encode(&self, version: Version, d: &mut [u8]) {
        match version {
            Version::V03 | Version::V04 => {
                put_u8(d, 0, self.flags);
                put_u64(d, 8, self.address);
                put_u64(d, 16, self.size);
            }
            Version::V05 => {
                let bar = self.bar.unwrap_or_default();
                put_u16(d, 0, bar.sid);
                put_u8(d, 2, self.flags);
                put_u8(d, 3, bar.io_mem_flags);
                put_u8(d, 4, bar.bar_idx);
                put_u64(d, 8, bar.bar_address);
                put_u64(d, 16, self.address);
                put_u64(d, 24, self.size);
            }
        }
    }
}

/// A device I/O port range record (kind DEVPORT, sinfo v05 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DevPort {
    /// PCI source id.
    pub sid: u16,
    /// BAR index.
    pub bar_idx: u8,
    /// First port.
    pub address: u16,
    /// Number of ports.
    pub size: u16,
}

impl DevPort {
    fn decode(d: &[u8]) -> Self {
        DevPort {
            sid: u16_at(d, 0),
            bar_idx: u8_at(d, 2),
            address: u16_at(d, 4),
            size: u16_at(d, 6),
        }
    }

    fn encode(&self, d: &mut [u8]) {
        put_u16(d, 0, self.sid);
        put_u8(d, 2, self.bar_idx);
        put_u16(d, 4, self.address);
        put_u16(d, 6, self.size);
    }
}

/// The typed data of a resource record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceData<'a> {
    /// kind 1: a memory region.
    Memory(MemoryRegion),
    /// kind 2: an event number (the RAX value of `vmcall`).
    Event(u8),
    /// kind 3: an interrupt vector.
    Vector(u8),
    /// kind 4: a PCI device.
    Device(Device),
    /// kind 5: device memory.
    DevMem(DevMem),
    /// kind 6 (v05 only): a device I/O port range.
    DevPort(DevPort),
    /// Any other non-zero kind (including 6 before v05): raw kind and the 56 data bytes.
    Unknown(u32, &'a [u8]),
}

impl ResourceData<'_> {
    /// The raw resource kind of this data.
    pub fn kind_raw(&self) -> u32 {
        match self {
            ResourceData::Memory(_) => kind::MEMORY,
            ResourceData::Event(_) => kind::EVENT,
            ResourceData::Vector(_) => kind::VECTOR,
            ResourceData::Device(_) => kind::DEVICE,
            ResourceData::DevMem(_) => kind::DEVMEM,
            ResourceData::DevPort(_) => kind::DEVPORT,
            ResourceData::Unknown(k, _) => *k,
        }
    }
}

/// One decoded resource record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource<'a> {
    /// Resource name (≤ 63 bytes, valid UTF-8).
    pub name: &'a str,
    /// Typed data.
    pub data: ResourceData<'a>,
}

/// Errors reported while parsing or building a sinfo page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinfoError {
    /// The input is shorter than the structure it should hold.
    Truncated {
        /// Length of the input.
        len: usize,
    },
    /// The magic is not one of v03/v04/v05.
    BadMagic(u64),
    /// resource_count is larger than 255.
    BadResourceCount(u16),
    /// A name record has a length > 63, contains NUL or is not valid UTF-8.
    BadName,
    /// A memory region has an unknown memory kind.
    BadMemoryKind(u8),
    /// A memory region has an unknown content type.
    BadContent(u8),
    /// A memory region has a pattern value > 256.
    BadPattern(u16),
    /// The output buffer is smaller than [`SINFO_SIZE`].
    BufferTooSmall {
        /// Length of the buffer.
        len: usize,
    },
    /// A name to write is longer than 63 bytes.
    NameTooLong {
        /// Length of the name.
        len: usize,
    },
    /// A name to write contains a NUL byte.
    NameContainsNul,
    /// All 255 resource records are used.
    TooManyResources,
    /// The memory kind or resource kind does not exist in this sinfo version.
    KindNotInVersion,
    /// Raw resource data to write is longer than 56 bytes, or the kind is NONE.
    BadResourceData,
}

impl fmt::Display for SinfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinfoError::Truncated { len } => write!(f, "sinfo truncated ({len} bytes)"),
            SinfoError::BadMagic(m) => write!(f, "bad sinfo magic {m:#018x}"),
            SinfoError::BadResourceCount(c) => write!(f, "bad sinfo resource count {c}"),
            SinfoError::BadName => write!(f, "bad sinfo name record"),
            SinfoError::BadMemoryKind(k) => write!(f, "unknown memory kind {k}"),
            SinfoError::BadContent(c) => write!(f, "unknown memory content {c}"),
            SinfoError::BadPattern(p) => write!(f, "bad fill pattern {p}"),
            SinfoError::BufferTooSmall { len } => {
                write!(f, "sinfo buffer too small ({len} < {SINFO_SIZE} bytes)")
            }
            SinfoError::NameTooLong { len } => write!(f, "name too long ({len} > {NAME_MAX})"),
            SinfoError::NameContainsNul => write!(f, "name contains NUL"),
            SinfoError::TooManyResources => write!(f, "more than {MAX_RESOURCES} resources"),
            SinfoError::KindNotInVersion => write!(f, "kind not representable in this version"),
            SinfoError::BadResourceData => write!(f, "bad raw resource data"),
        }
    }
}

impl core::error::Error for SinfoError {}

/// Decodes a 65-byte name record (length ≤ 63, UTF-8).
fn decode_name(rec: &[u8]) -> Result<&str, SinfoError> {
    let len = usize::from(u8_at(rec, 0));
    if len > NAME_MAX {
        return Err(SinfoError::BadName);
    }
    let bytes = rec.get(1..1 + len).ok_or(SinfoError::BadName)?;
    // A NUL inside the length would end the name early for C readers of the same page, and
    // `SinfoWriter` could not write it back (found by fuzzing).
    if bytes.contains(&0) {
        return Err(SinfoError::BadName);
    }
    core::str::from_utf8(bytes).map_err(|_| SinfoError::BadName)
}

/// Whether the name record `rec` holds exactly `name` (Solo5 `muen_names_equal`).
fn name_equals(rec: &[u8], name: &str) -> bool {
    let len = usize::from(u8_at(rec, 0));
    len <= NAME_MAX && rec.get(1..1 + len) == Some(name.as_bytes())
}

fn check_name(name: &str) -> Result<(), SinfoError> {
    if name.len() > NAME_MAX {
        return Err(SinfoError::NameTooLong { len: name.len() });
    }
    if name.as_bytes().contains(&0) {
        return Err(SinfoError::NameContainsNul);
    }
    Ok(())
}

fn encode_name(out: &mut [u8], name: &str) {
    // Callers checked `name` with `check_name`, so the length fits in a u8.
    put_u8(out, 0, name.len() as u8);
    put(out, 1, name.as_bytes());
}

/// Decodes one 128-byte resource record; `Ok(None)` for kind NONE.
fn decode_resource(rec: &[u8], version: Version) -> Result<Option<Resource<'_>>, SinfoError> {
    let raw_kind = u32_at(rec, record::KIND);
    if raw_kind == kind::NONE {
        return Ok(None);
    }
    let name = decode_name(rec.get(record::NAME..).unwrap_or(&[]))?;
    let data = rec
        .get(record::DATA..record::DATA + RESOURCE_DATA_SIZE)
        .ok_or(SinfoError::Truncated { len: rec.len() })?;
    let data = match raw_kind {
        kind::MEMORY => ResourceData::Memory(MemoryRegion::decode(data, version)?),
        kind::EVENT => ResourceData::Event(u8_at(data, 0)),
        kind::VECTOR => ResourceData::Vector(u8_at(data, 0)),
        kind::DEVICE => ResourceData::Device(Device::decode(data, version)),
        kind::DEVMEM => ResourceData::DevMem(DevMem::decode(data, version)),
        kind::DEVPORT if version == Version::V05 => ResourceData::DevPort(DevPort::decode(data)),
        other => ResourceData::Unknown(other, data),
    };
    Ok(Some(Resource { name, data }))
}

/// A validated view of a sinfo page.
///
/// Construction checks the length (≥ [`SINFO_SIZE`]), the magic (v03/v04/v05),
/// `resource_count ≤ 255` and the subject name record. Individual resource
/// records are validated when they are visited; a bad record never prevents
/// access to the others.
#[derive(Debug, Clone, Copy)]
pub struct Sinfo<'a> {
    bytes: &'a [u8],
    version: Version,
    count: usize,
    name: &'a str,
}

impl<'a> Sinfo<'a> {
    /// Parses and validates a sinfo page. Bytes beyond [`SINFO_SIZE`] are ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, SinfoError> {
        let bytes = bytes
            .get(..SINFO_SIZE)
            .ok_or(SinfoError::Truncated { len: bytes.len() })?;
        let magic = u64_at(bytes, MAGIC_OFFSET);
        let version = Version::from_magic(magic).ok_or(SinfoError::BadMagic(magic))?;
        let count = u16_at(bytes, version.resource_count_offset());
        if usize::from(count) > MAX_RESOURCES {
            return Err(SinfoError::BadResourceCount(count));
        }
        let name = decode_name(bytes.get(NAME_OFFSET..).unwrap_or(&[]))?;
        Ok(Sinfo {
            bytes,
            version,
            count: usize::from(count),
            name,
        })
    }

    /// Parses the sinfo page at `ptr` (normally [`SINFO_VA`]).
    ///
    /// # Safety
    ///
    /// `ptr..ptr + SINFO_SIZE` must be mapped readable memory that is not
    /// written while the returned view (lifetime `'a`) is in use. (The kernel
    /// only patches the page before the subject starts.)
    pub unsafe fn from_ptr(ptr: *const u8) -> Result<Self, SinfoError> {
        // SAFETY: the caller guarantees that SINFO_SIZE bytes at `ptr` are
        // readable and immutable for 'a; a u8 slice has no alignment needs.
        let bytes = unsafe { core::slice::from_raw_parts(ptr, SINFO_SIZE) };
        Self::parse(bytes)
    }

    /// The layout version (from the magic).
    pub fn version(&self) -> Version {
        self.version
    }

    /// TSC frequency in kHz as stored in the page (not range-checked).
    pub fn tsc_khz(&self) -> u32 {
        u32_at(self.bytes, TSC_KHZ_OFFSET)
    }

    /// The subject name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The resource_count field (≤ 255).
    pub fn resource_count(&self) -> usize {
        self.count
    }

    fn record(&self, index: usize) -> &'a [u8] {
        let start = RESOURCES_OFFSET + index * RESOURCE_SIZE;
        self.bytes.get(start..start + RESOURCE_SIZE).unwrap_or(&[])
    }

    /// Raw records in use: index < resource_count, stopping before the first
    /// record of kind NONE (Solo5 semantics).
    fn records(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let this = *self;
        (0..this.count)
            .map(move |i| this.record(i))
            .take_while(|rec| u32_at(rec, record::KIND) != kind::NONE)
    }

    /// Iterates over the resources: records `0..resource_count`, stopping at
    /// the first record of kind NONE. A malformed record yields `Err` and
    /// iteration continues with the next one.
    pub fn resources(&self) -> Resources<'a> {
        Resources {
            sinfo: *self,
            index: 0,
        }
    }

    fn find_raw(&self, name: &str, raw_kind: u32) -> Option<&'a [u8]> {
        self.records().find(|rec| {
            u32_at(rec, record::KIND) == raw_kind
                && name_equals(rec.get(record::NAME..).unwrap_or(&[]), name)
        })
    }

    /// The first resource named exactly `name` (any kind), if it decodes.
    pub fn find(&self, name: &str) -> Option<Resource<'a>> {
        let rec = self
            .records()
            .find(|rec| name_equals(rec.get(record::NAME..).unwrap_or(&[]), name))?;
        decode_resource(rec, self.version).ok().flatten()
    }

    /// The first MEMORY resource named exactly `name`; `None` if there is none
    /// or that record is malformed.
    pub fn memory(&self, name: &str) -> Option<MemoryRegion> {
        let rec = self.find_raw(name, kind::MEMORY)?;
        let data = rec.get(record::DATA..)?;
        MemoryRegion::decode(data, self.version).ok()
    }

    /// The number of the first EVENT resource named exactly `name`.
    pub fn event(&self, name: &str) -> Option<u8> {
        self.find_raw(name, kind::EVENT)
            .map(|rec| u8_at(rec, record::DATA))
    }

    /// The vector of the first VECTOR resource named exactly `name`.
    pub fn vector(&self, name: &str) -> Option<u8> {
        self.find_raw(name, kind::VECTOR)
            .map(|rec| u8_at(rec, record::DATA))
    }
}

/// Iterator over the resources of a [`Sinfo`] (see [`Sinfo::resources`]).
#[derive(Debug, Clone)]
pub struct Resources<'a> {
    sinfo: Sinfo<'a>,
    index: usize,
}

impl<'a> Iterator for Resources<'a> {
    type Item = Result<Resource<'a>, SinfoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.sinfo.count {
            return None;
        }
        let rec = self.sinfo.record(self.index);
        match decode_resource(rec, self.sinfo.version) {
            Ok(None) => {
                self.index = self.sinfo.count;
                None
            }
            Ok(Some(r)) => {
                self.index += 1;
                Some(Ok(r))
            }
            Err(e) => {
                self.index += 1;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.sinfo.count.saturating_sub(self.index)))
    }
}

/// Overwrites the tsc_khz field of a sinfo page in place (what the kernel does
/// at load time). Checks the length and the magic first.
pub fn patch_tsc_khz(page: &mut [u8], tsc_khz: u32) -> Result<(), SinfoError> {
    if page.len() < SINFO_SIZE {
        return Err(SinfoError::Truncated { len: page.len() });
    }
    let magic = u64_at(page, MAGIC_OFFSET);
    Version::from_magic(magic).ok_or(SinfoError::BadMagic(magic))?;
    put_u32(page, TSC_KHZ_OFFSET, tsc_khz);
    Ok(())
}

/// Builds a sinfo page into a caller-provided buffer (like Muen's `mugensinfo`).
///
/// The page is consistent after every call: the resource count is updated
/// with each added record.
#[derive(Debug)]
pub struct SinfoWriter<'b> {
    buf: &'b mut [u8],
    version: Version,
    count: usize,
}

impl<'b> SinfoWriter<'b> {
    /// Starts a page: zeroes `buf[..SINFO_SIZE]`, writes magic, `tsc_khz` and
    /// the subject `name`, with no resources.
    pub fn new(
        buf: &'b mut [u8],
        version: Version,
        name: &str,
        tsc_khz: u32,
    ) -> Result<Self, SinfoError> {
        if buf.len() < SINFO_SIZE {
            return Err(SinfoError::BufferTooSmall { len: buf.len() });
        }
        check_name(name)?;
        let page = &mut buf[..SINFO_SIZE];
        page.fill(0);
        put_u64(page, MAGIC_OFFSET, version.magic());
        put_u32(page, TSC_KHZ_OFFSET, tsc_khz);
        encode_name(&mut page[NAME_OFFSET..NAME_OFFSET + NAME_RECORD_SIZE], name);
        Ok(SinfoWriter {
            buf,
            version,
            count: 0,
        })
    }

    /// The version being written.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Number of records written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    fn push(&mut self, raw_kind: u32, name: &str, data: &[u8]) -> Result<(), SinfoError> {
        check_name(name)?;
        if data.len() > RESOURCE_DATA_SIZE {
            return Err(SinfoError::BadResourceData);
        }
        if self.count >= MAX_RESOURCES {
            return Err(SinfoError::TooManyResources);
        }
        let mut rec = [0u8; RESOURCE_SIZE];
        put_u32(&mut rec, record::KIND, raw_kind);
        encode_name(
            &mut rec[record::NAME..record::NAME + NAME_RECORD_SIZE],
            name,
        );
        put(&mut rec, record::DATA, data);
        let start = RESOURCES_OFFSET + self.count * RESOURCE_SIZE;
        put(self.buf, start, &rec);
        self.count += 1;
        put_u16(
            self.buf,
            self.version.resource_count_offset(),
            self.count as u16,
        );
        Ok(())
    }

    /// Adds a MEMORY resource.
    pub fn memory(&mut self, name: &str, region: &MemoryRegion) -> Result<(), SinfoError> {
        let data = region.encode(self.version)?;
        self.push(kind::MEMORY, name, &data)
    }

    /// Adds an EVENT resource (`number` is the hypercall number, 0..63).
    pub fn event(&mut self, name: &str, number: u8) -> Result<(), SinfoError> {
        self.push(kind::EVENT, name, &[number])
    }

    /// Adds a VECTOR resource.
    pub fn vector(&mut self, name: &str, vector: u8) -> Result<(), SinfoError> {
        self.push(kind::VECTOR, name, &[vector])
    }

    /// Adds a DEVICE resource in this version's layout.
    pub fn device(&mut self, name: &str, device: &Device) -> Result<(), SinfoError> {
        let mut data = [0u8; RESOURCE_DATA_SIZE];
        device.encode(self.version, &mut data);
        self.push(kind::DEVICE, name, &data)
    }

    /// Adds a DEVMEM resource in this version's layout.
    pub fn dev_mem(&mut self, name: &str, mem: &DevMem) -> Result<(), SinfoError> {
        let mut data = [0u8; RESOURCE_DATA_SIZE];
        mem.encode(self.version, &mut data);
        self.push(kind::DEVMEM, name, &data)
    }

    /// Adds a DEVPORT resource (v05 only, else [`SinfoError::KindNotInVersion`]).
    pub fn dev_port(&mut self, name: &str, port: &DevPort) -> Result<(), SinfoError> {
        if self.version != Version::V05 {
            return Err(SinfoError::KindNotInVersion);
        }
        let mut data = [0u8; RESOURCE_DATA_SIZE];
        port.encode(&mut data);
        self.push(kind::DEVPORT, name, &data)
    }

    /// Adds any resource. `Unknown(kind, bytes)` writes `bytes` (≤ 56) with
    /// the raw kind (which must not be NONE, else [`SinfoError::BadResourceData`]).
    pub fn resource(&mut self, resource: &Resource<'_>) -> Result<(), SinfoError> {
        match resource.data {
            ResourceData::Memory(m) => self.memory(resource.name, &m),
            ResourceData::Event(e) => self.event(resource.name, e),
            ResourceData::Vector(v) => self.vector(resource.name, v),
            ResourceData::Device(d) => self.device(resource.name, &d),
            ResourceData::DevMem(m) => self.dev_mem(resource.name, &m),
            ResourceData::DevPort(p) => self.dev_port(resource.name, &p),
            ResourceData::Unknown(k, bytes) => {
                if k == kind::NONE {
                    return Err(SinfoError::BadResourceData);
                }
                self.push(k, resource.name, bytes)
            }
        }
    }

    /// Ends the page; returns the number of bytes used ([`SINFO_SIZE`]).
    pub fn finish(self) -> usize {
        SINFO_SIZE
    }
}

#[cfg(test)]
mod tests;
