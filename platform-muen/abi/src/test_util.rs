//! Helpers shared by the unit tests.

use crate::channel::ChannelMemory;
use std::alloc::{Layout, alloc_zeroed, dealloc};

/// A page-aligned, zeroed heap region standing in for channel memory.
pub(crate) struct Region {
    pub(crate) ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the region is only accessed through `ChannelMemory` (atomics and
// volatile copies) or, in tests, by the raw helpers below.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    pub(crate) fn new(len: usize) -> Self {
        let layout = Layout::from_size_align(len, 4096).unwrap();
        // SAFETY: `len` is non-zero in every test.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Region { ptr, layout }
    }

    pub(crate) fn mem(&self) -> ChannelMemory {
        // SAFETY: the allocation is live until `self` drops, which outlives
        // every reader/writer in these tests.
        unsafe { ChannelMemory::new(self.ptr, self.layout.size()) }.unwrap()
    }

    pub(crate) fn fill(&self, byte: u8) {
        // SAFETY: in-bounds writes while no reader/writer runs concurrently.
        unsafe { core::ptr::write_bytes(self.ptr, byte, self.layout.size()) }
    }

    pub(crate) fn byte(&self, off: usize) -> u8 {
        assert!(off < self.layout.size());
        // SAFETY: in bounds; no concurrent writer.
        unsafe { core::ptr::read_volatile(self.ptr.add(off)) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}
