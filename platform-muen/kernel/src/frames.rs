//! Physical frame allocator: a bump allocator over the free RAM above the
//! loaded image. Nothing is ever freed (subjects live until the machine
//! stops), which keeps it trivially correct.

use crate::bootinfo::{MAX_RANGES, MemoryMap};
use crate::phys::PAGE;

/// Free RAM ranges and the bump cursor.
pub struct Frames {
    ranges: [(u64, u64); MAX_RANGES],
    count: usize,
    cur: usize,
    next: u64,
    /// Bytes handed out so far.
    pub used: u64,
}

/// Out of physical memory.
#[derive(Debug, Clone, Copy)]
pub struct OutOfMemory;

impl Frames {
    /// All RAM of `map` at or above `floor`.
    pub fn new(map: &MemoryMap, floor: u64) -> Self {
        let mut f = Frames {
            ranges: [(0, 0); MAX_RANGES],
            count: 0,
            cur: 0,
            next: 0,
            used: 0,
        };
        for (s, e) in map.iter() {
            let s = s.max(floor);
            if s < e {
                f.ranges[f.count] = (s, e);
                f.count += 1;
            }
        }
        f.next = if f.count > 0 { f.ranges[0].0 } else { 0 };
        f
    }

    /// Lowest address not yet handed out.
    pub fn cursor(&self) -> u64 {
        self.next
    }

    /// End of the highest free range.
    pub fn top(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.ranges[self.count - 1].1
        }
    }

    /// Bytes still free.
    pub fn free(&self) -> u64 {
        if self.cur >= self.count {
            return 0;
        }
        let mut total = self.ranges[self.cur].1 - self.next;
        for r in &self.ranges[self.cur + 1..self.count] {
            total += r.1 - r.0;
        }
        total
    }

    /// `pages` physically contiguous pages, aligned to `align` bytes (a
    /// power of two, at least one page). Contents are undefined.
    pub fn alloc(&mut self, pages: u64, align: u64) -> Result<u64, OutOfMemory> {
        let bytes = pages.checked_mul(PAGE).ok_or(OutOfMemory)?;
        while self.cur < self.count {
            let start = self.next.div_ceil(align) * align;
            if start
                .checked_add(bytes)
                .is_some_and(|end| end <= self.ranges[self.cur].1)
            {
                self.next = start + bytes;
                self.used += bytes;
                return Ok(start);
            }
            self.cur += 1;
            if self.cur < self.count {
                self.next = self.ranges[self.cur].0;
            }
        }
        Err(OutOfMemory)
    }

    /// One zeroed page.
    pub fn zeroed_page(&mut self) -> Result<u64, OutOfMemory> {
        let pa = self.alloc(1, PAGE)?;
        crate::phys::fill(pa, PAGE, 0);
        Ok(pa)
    }
}
