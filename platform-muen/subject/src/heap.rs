//! The heap: talc over the part of `ram` below the stack, with counters for
//! the high-water mark (reported by the benchmarks).

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use muen_abi::sinfo::{MemoryKind, Sinfo};
use muen_baremetal::RawSpin;
use talc::TalcLock;
use talc::source::Manual;

/// The global allocator.
pub struct Heap {
    talc: TalcLock<RawSpin, Manual>,
    size: AtomicUsize,
    used: AtomicUsize,
    peak: AtomicUsize,
}

#[cfg_attr(not(test), global_allocator)]
static HEAP: Heap = Heap {
    talc: TalcLock::new(Manual),
    size: AtomicUsize::new(0),
    used: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

// SAFETY: every method forwards to talc's GlobalAlloc implementation, which
// upholds the contract; the counters are bookkeeping only.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { self.talc.alloc(layout) };
        if !p.is_null() {
            self.grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.talc.dealloc(ptr, layout) };
        self.used.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { self.talc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            self.used.fetch_sub(layout.size(), Ordering::Relaxed);
            self.grow(new_size);
        }
        p
    }
}

impl Heap {
    fn grow(&self, n: usize) {
        let now = self.used.fetch_add(n, Ordering::Relaxed) + n;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
}

/// Heap figures in bytes.
#[derive(Debug, Clone, Copy)]
pub struct HeapStats {
    /// Bytes handed to the allocator.
    pub size: usize,
    /// Bytes currently allocated (sum of live layouts).
    pub used: usize,
    /// High-water mark of `used` since boot.
    pub peak: usize,
}

/// Current heap figures.
pub fn stats() -> HeapStats {
    HeapStats {
        size: HEAP.size.load(Ordering::Relaxed),
        used: HEAP.used.load(Ordering::Relaxed),
        peak: HEAP.peak.load(Ordering::Relaxed),
    }
}

unsafe extern "C" {
    /// End of the binary image (linker script).
    static _end: u8;
}

/// Gives the allocator `ram` from the end of the binary up to `stack_size`
/// below the top of `ram` (where the stack Muen set up grows down).
pub fn init(sinfo: &Sinfo<'_>, boot_mem_size: u64, stack_size: u64) {
    let Some(ram) = sinfo
        .memory("ram")
        .filter(|m| m.kind == MemoryKind::Subject && m.writable)
    else {
        log::error!("no writable 'ram' region in sinfo: no heap");
        crate::exit::exit(1);
    };
    let ram_end = ram.address.saturating_add(ram.size);
    if boot_mem_size != 0 && boot_mem_size != ram_end {
        log::warn!(
            "boot info mem_size {boot_mem_size:#x} differs from the end of 'ram' {ram_end:#x}"
        );
    }
    let image_end = &raw const _end as u64;
    let start = ram.address.max(image_end).next_multiple_of(0x1000);
    let end = ram_end.saturating_sub(stack_size);
    if end <= start + 0x10_0000 {
        log::error!(
            "'ram' ({:#x}..{ram_end:#x}) leaves no room for a heap",
            ram.address
        );
        crate::exit::exit(1);
    }
    let size = (end - start) as usize;
    // SAFETY: start..end lies inside `ram` (mapped writable for this subject
    // only), above the binary image and below the stack reserve; nothing
    // else uses it, and it is claimed exactly once.
    let claimed = unsafe { HEAP.talc.lock().claim(start as *mut u8, size) };
    if claimed.is_none() {
        log::error!("the allocator refused the heap region");
        crate::exit::exit(1);
    }
    HEAP.size.store(size, Ordering::Relaxed);
    log::info!(
        "memory: heap {start:#x}-{end:#x} ({} MiB), stack {} KiB below {ram_end:#x}",
        size >> 20,
        stack_size >> 10
    );
}
