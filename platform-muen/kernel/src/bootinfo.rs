//! The memory map handed over by the boot loader (PVH `hvm_start_info` or
//! multiboot1 info), reduced to a sorted list of usable RAM ranges.

use crate::boot::{PROTO_MULTIBOOT, PROTO_PVH};
use crate::phys::{early_read_u32, early_read_u64};

/// At most this many RAM ranges are kept.
pub const MAX_RANGES: usize = 32;

/// Usable RAM, sorted by address, non-overlapping.
#[derive(Clone, Copy)]
pub struct MemoryMap {
    pub ranges: [(u64, u64); MAX_RANGES],
    pub count: usize,
}

impl MemoryMap {
    fn push(&mut self, base: u64, len: u64) {
        if len == 0 || self.count == MAX_RANGES {
            return;
        }
        self.ranges[self.count] = (base, base.saturating_add(len));
        self.count += 1;
    }

    /// The ranges as `(start, end)`.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges[..self.count].iter().copied()
    }

    /// Total bytes of RAM.
    pub fn total(&self) -> u64 {
        self.iter().map(|(s, e)| e - s).sum()
    }

    /// End of the highest RAM range.
    pub fn top(&self) -> u64 {
        self.iter().map(|(_, e)| e).max().unwrap_or(0)
    }

    /// Does `[start, end)` intersect RAM?
    pub fn intersects(&self, start: u64, end: u64) -> bool {
        self.iter().any(|(s, e)| s < end && start < e)
    }
}

/// Human-readable name of the boot protocol.
pub fn proto_name(proto: u32) -> &'static str {
    match proto {
        PROTO_PVH => "PVH",
        PROTO_MULTIBOOT => "multiboot",
        _ => "unknown",
    }
}

/// Reads the memory map. Fails with a message if the structure is missing.
pub fn parse(proto: u32, info: u64) -> Result<MemoryMap, &'static str> {
    let mut map = MemoryMap {
        ranges: [(0, 0); MAX_RANGES],
        count: 0,
    };
    match proto {
        PROTO_PVH => {
            if early_read_u32(info) != 0x336e_c578 {
                return Err("PVH start_info has a bad magic");
            }
            let version = early_read_u32(info + 4);
            let paddr = early_read_u64(info + 40);
            let entries = early_read_u32(info + 48) as u64;
            if version < 1 || paddr == 0 || entries == 0 {
                return Err("PVH start_info has no memory map (version 0)");
            }
            for i in 0..entries.min(128) {
                let e = paddr + 24 * i;
                if early_read_u32(e + 16) == 1 {
                    map.push(early_read_u64(e), early_read_u64(e + 8));
                }
            }
        }
        PROTO_MULTIBOOT => {
            let flags = early_read_u32(info);
            if flags & (1 << 6) != 0 {
                let len = early_read_u32(info + 44) as u64;
                let addr = early_read_u32(info + 48) as u64;
                let mut off = 0;
                while off + 24 <= len {
                    let e = addr + off;
                    let size = early_read_u32(e) as u64;
                    if early_read_u32(e + 20) == 1 {
                        map.push(early_read_u64(e + 4), early_read_u64(e + 12));
                    }
                    off += size + 4;
                }
            } else if flags & 1 != 0 {
                let upper_kib = early_read_u32(info + 8) as u64;
                map.push(0x10_0000, upper_kib * 1024);
            } else {
                return Err("multiboot info has no memory information");
            }
        }
        _ => return Err("unknown boot protocol"),
    }
    // Sort (insertion sort, tiny) and page-align inwards.
    let n = map.count;
    for i in 1..n {
        let mut j = i;
        while j > 0 && map.ranges[j - 1].0 > map.ranges[j].0 {
            map.ranges.swap(j - 1, j);
            j -= 1;
        }
    }
    for r in &mut map.ranges[..n] {
        r.0 = r.0.div_ceil(4096) * 4096;
        r.1 = r.1 / 4096 * 4096;
        if r.1 < r.0 {
            r.1 = r.0;
        }
    }
    if map.count == 0 || map.total() == 0 {
        return Err("memory map lists no RAM");
    }
    Ok(map)
}
