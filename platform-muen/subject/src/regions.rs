//! Access to the memory regions sinfo describes.
//!
//! sinfo is written by the Muen toolchain, but this runtime still treats it
//! as input to check: a region is only turned into a slice if its address
//! range is sane (non-empty, no overflow, lower canonical half, page
//! aligned) and it has the kind and permissions the use needs.

use muen_abi::channel::ChannelMemory;
use muen_abi::sinfo::{MemoryKind, MemoryRegion, Sinfo};

/// A `'static` view of `len` bytes at `va`.
///
/// # Safety
/// `va..va+len` must be mapped readable for the rest of the subject's life
/// and must not be written by anyone while the slice exists.
pub unsafe fn static_bytes(va: u64, len: usize) -> &'static [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts(va as *const u8, len) }
}

fn sane(m: &MemoryRegion) -> bool {
    m.size > 0
        && m.address.is_multiple_of(0x1000)
        && m.size.is_multiple_of(0x1000)
        && m.address
            .checked_add(m.size)
            .is_some_and(|end| end <= 0x0000_8000_0000_0000)
        && m.address >= 0x1000
}

/// The shared-memory view of a channel region.
pub fn channel(m: &MemoryRegion) -> Result<ChannelMemory, &'static str> {
    if m.kind != MemoryKind::SubjectChannel || !sane(m) {
        return Err("not a usable channel region");
    }
    let len = usize::try_from(m.size).map_err(|_| "channel too large")?;
    // SAFETY: sinfo says the channel is mapped at this address for the life
    // of the subject; channel memory is only accessed through the
    // volatile/atomic protocol of `muen_abi::channel`.
    unsafe { ChannelMemory::new(m.address as *mut u8, len) }.map_err(|_| "channel region rejected")
}

/// The contents of a read-only data region (certificates, site archive, ...):
/// kind `subject`, not writable, not executable, with file content.
pub fn read_only(sinfo: &Sinfo<'_>, name: &str) -> Option<&'static [u8]> {
    let m = sinfo.memory(name)?;
    if m.kind != MemoryKind::Subject || m.writable || m.executable || !sane(&m) {
        log::warn!("memory region '{name}' is not a read-only data region; ignored");
        return None;
    }
    let len = usize::try_from(m.size).ok()?;
    // SAFETY: sinfo describes a read-only mapping of this range; nobody can
    // write it (it is not writable for this subject, and data regions are
    // not shared with writers).
    Some(unsafe { static_bytes(m.address, len) })
}
