//! Page tables: the kernel's (higher half, shared by every address space)
//! and one per subject (lower half, exactly the regions of its image
//! record), plus the software page walk that every kernel access to
//! subject memory goes through.

use crate::bootinfo::MemoryMap;
use crate::frames::OutOfMemory;
use crate::phys::{self, KVMA, PAGE};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

const P: u64 = 1;
const W: u64 = 1 << 1;
const U: u64 = 1 << 2;
const PWT: u64 = 1 << 3;
const PCD: u64 = 1 << 4;
const PS: u64 = 1 << 7;
const G: u64 = 1 << 8;
const NX: u64 = 1 << 63;
const ADDR: u64 = 0x000F_FFFF_FFFF_F000;

/// First address above the subjects' half (lower canonical half end).
pub const USER_TOP: u64 = 0x0000_8000_0000_0000;

static KERNEL_PML4: AtomicU64 = AtomicU64::new(0);
static NX_MASK: AtomicU64 = AtomicU64::new(0);

/// Physical address of the kernel PML4 (valid after [`init_kernel`]).
pub fn kernel_pml4() -> u64 {
    KERNEL_PML4.load(Ordering::Relaxed)
}

fn nx() -> u64 {
    NX_MASK.load(Ordering::Relaxed)
}

unsafe extern "C" {
    static __kernel_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
    static __stack_guard: u8;
}

/// Virtual addresses of linker symbols.
pub struct KernelLayout {
    pub start: u64,
    pub text_end: u64,
    pub rodata_end: u64,
    pub end: u64,
    pub guard: u64,
}

/// The kernel's own section boundaries (virtual).
pub fn kernel_layout() -> KernelLayout {
    KernelLayout {
        start: &raw const __kernel_start as u64,
        text_end: &raw const __text_end as u64,
        rodata_end: &raw const __rodata_end as u64,
        end: &raw const __kernel_end as u64,
        guard: &raw const __stack_guard as u64,
    }
}

fn table_entry(table: u64, idx: u64) -> u64 {
    phys::read_u64(table + idx * 8)
}

fn set_table_entry(table: u64, idx: u64, v: u64) {
    phys::write_u64(table + idx * 8, v)
}

/// Returns the next-level table of `table[idx]`, creating it if needed.
fn next_table(table: u64, idx: u64, flags: u64) -> Result<u64, OutOfMemory> {
    let e = table_entry(table, idx);
    if e & P != 0 {
        return Ok(e & ADDR);
    }
    let t = crate::with_frames(|f| f.zeroed_page())?;
    set_table_entry(table, idx, t | flags);
    Ok(t)
}

fn map_4k(pml4: u64, va: u64, pa: u64, leaf: u64, inter: u64) -> Result<(), OutOfMemory> {
    let pdpt = next_table(pml4, (va >> 39) & 511, inter)?;
    let pd = next_table(pdpt, (va >> 30) & 511, inter)?;
    let pt = next_table(pd, (va >> 21) & 511, inter)?;
    set_table_entry(pt, (va >> 12) & 511, pa | leaf);
    Ok(())
}

/// Builds and loads the kernel page tables: a direct map of
/// `0..max(4 GiB, top of RAM)` (2 MiB pages, uncached where there is no
/// RAM) and the kernel image at `KVMA + phys` with 4 KiB pages (text RX,
/// rodata R, data RW, a guard page below the boot stack). The identity
/// map of the boot tables is dropped: the lower half belongs to subjects.
pub fn init_kernel(map: &MemoryMap, nx_supported: bool) -> Result<(), OutOfMemory> {
    if nx_supported {
        NX_MASK.store(NX, Ordering::Relaxed);
    }
    let pml4 = crate::with_frames(|f| f.zeroed_page())?;
    let gib = 1u64 << 30;
    let top = map.top().max(4 * gib).div_ceil(gib).min(512);
    let pdpt = crate::with_frames(|f| f.zeroed_page())?;
    set_table_entry(pml4, 256, pdpt | P | W);
    for g in 0..top {
        let pd = crate::with_frames(|f| f.zeroed_page())?;
        set_table_entry(pdpt, g, pd | P | W);
        for i in 0..512u64 {
            let pa = g * gib + i * (2 << 20);
            let mut flags = P | W | PS | G | nx();
            if !map.intersects(pa, pa + (2 << 20)) {
                flags |= PCD | PWT;
            }
            set_table_entry(pd, i, pa | flags);
        }
    }
    let k = kernel_layout();
    let mut va = k.start;
    while va < k.end {
        if va != k.guard {
            let flags = if va < k.text_end {
                P | G
            } else if va < k.rodata_end {
                P | G | nx()
            } else {
                P | W | G | nx()
            };
            map_4k(pml4, va, va - KVMA, flags, P | W)?;
        }
        va += PAGE;
    }
    KERNEL_PML4.store(pml4, Ordering::Relaxed);
    // SAFETY: the new tables map the kernel image at the same virtual
    // addresses with the same contents and the direct map is a superset
    // of the boot one for RAM; nothing references the identity map.
    unsafe { crate::cpu::write_cr3(pml4) };
    Ok(())
}

/// Why a kernel access to subject memory failed (as the CPU would report
/// it to the subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemFault {
    /// Faulting linear address.
    pub addr: u64,
    /// The page was present (protection violation) rather than unmapped.
    pub present: bool,
    /// The access was a write.
    pub write: bool,
    /// The access was an instruction fetch.
    pub fetch: bool,
    /// The address is not canonical (the CPU raises #GP, not #PF).
    pub noncanonical: bool,
    /// Demand paging ran out of physical memory.
    pub oom: bool,
}

impl MemFault {
    /// The #PF error code the subject sees (it runs at "CPL 0": U/S = 0).
    pub fn error_code(&self) -> u64 {
        (self.present as u64) | (self.write as u64) << 1 | (self.fetch as u64) << 4
    }
}

/// A demand-filled region (Muen "fill" or "uninitialized" content).
#[derive(Debug, Clone, Copy)]
struct LazyRegion {
    va: u64,
    size: u64,
    writable: bool,
    executable: bool,
    fill: u8,
}

/// Pages populated per demand fault (a small cluster keeps the fault
/// count down for big heaps).
const CLUSTER_PAGES: u64 = 16;

/// A subject's address space.
pub struct AddressSpace {
    /// Physical address of the PML4.
    pub pml4: u64,
    lazy: Vec<LazyRegion>,
    /// Pages populated on demand so far.
    pub demand_pages: u64,
}

impl AddressSpace {
    /// An empty lower half with the shared kernel half.
    pub fn new() -> Result<Self, OutOfMemory> {
        let pml4 = crate::with_frames(|f| f.zeroed_page())?;
        let k = kernel_pml4();
        for i in 256..512 {
            set_table_entry(pml4, i, table_entry(k, i));
        }
        Ok(AddressSpace {
            pml4,
            lazy: Vec::new(),
            demand_pages: 0,
        })
    }

    /// Maps one 4 KiB page at `va` (lower half) to `pa`.
    pub fn map(
        &mut self,
        va: u64,
        pa: u64,
        writable: bool,
        executable: bool,
    ) -> Result<(), OutOfMemory> {
        debug_assert!(va < USER_TOP && va.is_multiple_of(PAGE));
        let mut leaf = P | U;
        if writable {
            leaf |= W;
        }
        if !executable {
            leaf |= nx();
        }
        map_4k(self.pml4, va, pa, leaf, P | W | U)
    }

    /// Bytes of demand regions (populated or not).
    pub fn demand_bytes(&self) -> u64 {
        self.lazy.iter().map(|r| r.size).sum()
    }

    /// Declares `[va, va + size)` as filled with `fill` on first touch.
    pub fn add_lazy(&mut self, va: u64, size: u64, writable: bool, executable: bool, fill: u8) {
        self.lazy.push(LazyRegion {
            va,
            size,
            writable,
            executable,
            fill,
        });
    }

    /// The leaf PTE of `va`, or None if some level is not present.
    fn pte(&self, va: u64) -> Option<u64> {
        let mut table = self.pml4;
        for shift in [39u64, 30, 21] {
            let e = table_entry(table, (va >> shift) & 511);
            if e & P == 0 || e & U == 0 {
                return None;
            }
            table = e & ADDR;
        }
        let e = table_entry(table, (va >> 12) & 511);
        if e & P == 0 { None } else { Some(e) }
    }

    /// Populates the demand region containing `va` (a cluster of pages
    /// around it). Ok(false): `va` is in no demand region.
    pub fn populate(&mut self, va: u64) -> Result<bool, OutOfMemory> {
        let Some(r) = self
            .lazy
            .iter()
            .copied()
            .find(|r| va >= r.va && va - r.va < r.size)
        else {
            return Ok(false);
        };
        let page = va & !(PAGE - 1);
        let cluster = CLUSTER_PAGES * PAGE;
        let start = (page & !(cluster - 1)).max(r.va);
        let end = (start + cluster).min(r.va + r.size);
        let mut p = start;
        while p < end {
            if self.pte(p).is_none() {
                // Run of consecutive missing pages: one allocation, one fill.
                let mut run_end = p + PAGE;
                while run_end < end && self.pte(run_end).is_none() {
                    run_end += PAGE;
                }
                let n = (run_end - p) / PAGE;
                let pa = crate::with_frames(|f| f.alloc(n, PAGE))?;
                phys::fill(pa, n * PAGE, r.fill);
                for i in 0..n {
                    self.map(p + i * PAGE, pa + i * PAGE, r.writable, r.executable)?;
                }
                self.demand_pages += n;
                p = run_end;
            } else {
                p += PAGE;
            }
        }
        Ok(true)
    }

    /// Translates `va` for an access by the kernel on the subject's
    /// behalf, checking present/user/writable/executable like the CPU,
    /// and populating demand regions.
    pub fn translate(&mut self, va: u64, write: bool, fetch: bool) -> Result<u64, MemFault> {
        let fault = |present, noncanonical, oom| MemFault {
            addr: va,
            present,
            write,
            fetch,
            noncanonical,
            oom,
        };
        if va >= USER_TOP {
            // The kernel half does not exist for the subject; non-canonical
            // addresses raise #GP.
            let canonical = va >= 0xFFFF_8000_0000_0000;
            return Err(fault(false, !canonical, false));
        }
        for _ in 0..2 {
            if let Some(e) = self.pte(va) {
                if (write && e & W == 0) || (fetch && e & nx() != 0) {
                    return Err(fault(true, false, false));
                }
                return Ok((e & ADDR) | (va & (PAGE - 1)));
            }
            match self.populate(va) {
                Ok(true) => continue,
                Ok(false) => return Err(fault(false, false, false)),
                Err(OutOfMemory) => return Err(fault(false, false, true)),
            }
        }
        Err(fault(false, false, false))
    }

    /// Reads subject memory at `va`.
    pub fn read(&mut self, mut va: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        let mut done = 0;
        while done < buf.len() {
            let pa = self.translate(va, false, false)?;
            let n = ((PAGE - (va & (PAGE - 1))) as usize).min(buf.len() - done);
            phys::read(pa, &mut buf[done..done + n]);
            done += n;
            va = va.wrapping_add(n as u64);
        }
        Ok(())
    }

    /// Writes subject memory at `va`. Every page is checked before the
    /// first byte is written, so a fault leaves memory unchanged.
    pub fn write(&mut self, va: u64, data: &[u8]) -> Result<(), MemFault> {
        let mut off = 0u64;
        while off < data.len() as u64 {
            let a = va.wrapping_add(off);
            self.translate(a, true, false)?;
            off += PAGE - (a & (PAGE - 1));
        }
        let mut done = 0;
        let mut a = va;
        while done < data.len() {
            let pa = self.translate(a, true, false)?;
            let n = ((PAGE - (a & (PAGE - 1))) as usize).min(data.len() - done);
            phys::write(pa, &data[done..done + n]);
            done += n;
            a = a.wrapping_add(n as u64);
        }
        Ok(())
    }

    /// Fetches up to `buf.len()` instruction bytes at `va`; returns how
    /// many could be read before the first non-executable page.
    pub fn fetch(&mut self, va: u64, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let a = va.wrapping_add(done as u64);
            let Ok(pa) = self.translate(a, false, true) else {
                break;
            };
            let n = ((PAGE - (a & (PAGE - 1))) as usize).min(buf.len() - done);
            phys::read(pa, &mut buf[done..done + n]);
            done += n;
        }
        done
    }

    /// Checks that `va` is executable (for exception handlers).
    pub fn check_exec(&mut self, va: u64) -> Result<(), MemFault> {
        self.translate(va, false, true).map(|_| ())
    }
}
