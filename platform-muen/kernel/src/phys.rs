//! Physical memory access through the direct map.
//!
//! All RAM is mapped at [`DIRECT_MAP`]` + phys`. Memory that the frame
//! allocator hands out (subject pages, page tables, channels, DMA rings) is
//! never referenced by Rust references: it is only touched through the
//! functions below, which check that the range lies inside the managed
//! region (above the kernel heap). That keeps every write to "foreign"
//! memory away from the kernel's own statics, stack and heap, so these
//! functions can be safe. Device registers go through [`Mmio`].

use core::sync::atomic::{AtomicU64, Ordering};

/// Virtual base of the direct map of physical memory.
pub const DIRECT_MAP: u64 = 0xFFFF_8000_0000_0000;
/// Virtual base of the kernel image window (`link.ld`'s `KVMA`).
pub const KVMA: u64 = 0xFFFF_FFFF_8000_0000;
/// Page size.
pub const PAGE: u64 = 4096;

static MANAGED_START: AtomicU64 = AtomicU64::new(u64::MAX);
static MANAGED_END: AtomicU64 = AtomicU64::new(0);
static IMAGE_START: AtomicU64 = AtomicU64::new(u64::MAX);
static IMAGE_END: AtomicU64 = AtomicU64::new(0);

/// Declares `[start, end)` (the system image) as readable: read-only
/// subject regions may map image pages directly.
pub fn set_image(start: u64, end: u64) {
    IMAGE_START.store(start, Ordering::Relaxed);
    IMAGE_END.store(end, Ordering::Relaxed);
}

fn is_image(pa: u64, len: u64) -> bool {
    pa.checked_add(len).is_some_and(|end| {
        pa >= IMAGE_START.load(Ordering::Relaxed) && end <= IMAGE_END.load(Ordering::Relaxed)
    })
}

/// Declares `[start, end)` as the managed region (called once by the
/// frame allocator after the heap has been carved out).
pub fn set_managed(start: u64, end: u64) {
    MANAGED_START.store(start, Ordering::Relaxed);
    MANAGED_END.store(end, Ordering::Relaxed);
}

/// Is `[pa, pa + len)` inside the managed region?
pub fn is_managed(pa: u64, len: u64) -> bool {
    let end = match pa.checked_add(len) {
        Some(e) => e,
        None => return false,
    };
    pa >= MANAGED_START.load(Ordering::Relaxed) && end <= MANAGED_END.load(Ordering::Relaxed)
}

fn ptr(pa: u64, len: usize) -> *mut u8 {
    assert!(
        is_managed(pa, len as u64),
        "physical access outside managed RAM: {pa:#x}+{len:#x}"
    );
    (DIRECT_MAP + pa) as *mut u8
}

fn read_ptr(pa: u64, len: usize) -> *const u8 {
    assert!(
        is_managed(pa, len as u64) || is_image(pa, len as u64),
        "physical read outside managed RAM and image: {pa:#x}+{len:#x}"
    );
    (DIRECT_MAP + pa) as *const u8
}

/// Kernel virtual address of managed physical memory (for the channel
/// libraries, which want a raw base pointer).
pub fn virt(pa: u64, len: usize) -> *mut u8 {
    ptr(pa, len)
}

/// Copies `buf.len()` bytes from physical `pa`.
pub fn read(pa: u64, buf: &mut [u8]) {
    let p = read_ptr(pa, buf.len());
    // SAFETY: managed RAM is mapped and never aliased by Rust references.
    unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
}

/// Copies `data` to physical `pa`.
pub fn write(pa: u64, data: &[u8]) {
    let p = ptr(pa, data.len());
    // SAFETY: as `read`.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
}

/// Fills `len` bytes at `pa` with `byte` (8 bytes at a time).
pub fn fill(pa: u64, len: u64, byte: u8) {
    let p = ptr(pa, len as usize);
    let pattern = u64::from_ne_bytes([byte; 8]);
    if pa.is_multiple_of(8) && len.is_multiple_of(8) {
        // SAFETY: as `read`; `rep stosq` writes exactly len bytes at p.
        unsafe {
            core::arch::asm!("rep stosq", inout("rdi") p => _, inout("rcx") len / 8 => _, in("rax") pattern,
                options(nostack, preserves_flags));
        }
    } else {
        // SAFETY: as `read`.
        unsafe { core::ptr::write_bytes(p, byte, len as usize) };
    }
}

macro_rules! volatile_rw {
    ($read:ident, $write:ident, $t:ty) => {
        /// Volatile read of managed memory (naturally aligned).
        pub fn $read(pa: u64) -> $t {
            let p = ptr(pa, core::mem::size_of::<$t>()) as *const $t;
            assert!(p.is_aligned());
            // SAFETY: managed, mapped, aligned (checked).
            unsafe { p.read_volatile() }
        }
        /// Volatile write of managed memory (naturally aligned).
        pub fn $write(pa: u64, v: $t) {
            let p = ptr(pa, core::mem::size_of::<$t>()) as *mut $t;
            assert!(p.is_aligned());
            // SAFETY: managed, mapped, aligned (checked).
            unsafe { p.write_volatile(v) }
        }
    };
}
volatile_rw!(read_u16, write_u16, u16);
volatile_rw!(read_u32, write_u32, u32);
volatile_rw!(read_u64, write_u64, u64);

/// Reads a u32 from any physical address below 4 GiB during early boot
/// (boot-loader structures; the boot page tables map 0..4 GiB).
pub fn early_read_u32(pa: u64) -> u32 {
    assert!(pa < (1 << 32) - 4);
    // SAFETY: the boot direct map covers 0..4 GiB; this is a read of
    // firmware-provided data that no Rust reference aliases.
    unsafe { ((DIRECT_MAP + pa) as *const u32).read_unaligned() }
}

/// Reads a u64 from any physical address below 4 GiB during early boot.
pub fn early_read_u64(pa: u64) -> u64 {
    early_read_u32(pa) as u64 | (early_read_u32(pa + 4) as u64) << 32
}

/// A window of device registers (MMIO), mapped uncached in the direct map.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: u64,
    len: u64,
}

impl Mmio {
    /// # Safety
    /// `[base, base + len)` must be device memory (not RAM) that the kernel
    /// has mapped in the direct map, and must not be used by anything else.
    pub unsafe fn new(base: u64, len: u64) -> Self {
        Mmio { base, len }
    }

    fn reg<T>(&self, off: u64) -> *mut T {
        let size = core::mem::size_of::<T>() as u64;
        assert!(
            off.is_multiple_of(size) && off + size <= self.len,
            "MMIO offset {off:#x} out of range"
        );
        (DIRECT_MAP + self.base + off) as *mut T
    }

    /// 32-bit register read.
    pub fn read32(&self, off: u64) -> u32 {
        // SAFETY: inside the window (checked), device memory per `new`.
        unsafe { self.reg::<u32>(off).read_volatile() }
    }

    /// 32-bit register write.
    pub fn write32(&self, off: u64, v: u32) {
        // SAFETY: as `read32`.
        unsafe { self.reg::<u32>(off).write_volatile(v) }
    }

    /// 8-bit register read.
    pub fn read8(&self, off: u64) -> u8 {
        // SAFETY: as `read32`.
        unsafe { self.reg::<u8>(off).read_volatile() }
    }
}
