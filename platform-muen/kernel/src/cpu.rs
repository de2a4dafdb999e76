//! Thin wrappers around privileged x86 instructions: port I/O, MSRs,
//! control registers, TSC, RDRAND, TLB maintenance.
//!
//! Every function here is a single instruction (or a short fixed sequence);
//! the kernel runs at CPL 0 with IF = 0, so none of them can fault except
//! where noted. They are safe to call because none of them touches Rust
//! memory; what they do to the machine is the caller's responsibility
//! (that is why `wrmsr`/`write_cr*` are `unsafe`).

use core::arch::asm;

pub use muen_baremetal::cpu::{cpuid, inb, outb};

/// Reads a 16-bit word from an I/O port.
#[inline]
pub fn inw(port: u16) -> u16 {
    let v: u16;
    // SAFETY: as `inb`.
    unsafe {
        asm!("in ax, dx", out("ax") v, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Reads a 32-bit word from an I/O port.
#[inline]
pub fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: as `inb`.
    unsafe {
        asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Writes a 16-bit word to an I/O port.
#[inline]
pub fn outw(port: u16, v: u16) {
    // SAFETY: as `outb`.
    unsafe {
        asm!("out dx, ax", in("dx") port, in("ax") v, options(nomem, nostack, preserves_flags))
    };
}

/// Writes a 32-bit word to an I/O port.
#[inline]
pub fn outl(port: u16, v: u32) {
    // SAFETY: as `outb`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack, preserves_flags))
    };
}

/// Reads an MSR. Only called for MSRs that exist on every x86_64 CPU or
/// after checking CPUID.
#[inline]
pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading an architectural MSR has no memory effects.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (hi as u64) << 32 | lo as u64
}

/// Writes an MSR.
///
/// # Safety
/// The MSR must exist and the value must keep the kernel's invariants
/// (paging, NX, segment bases it relies on).
#[inline]
pub unsafe fn wrmsr(msr: u32, v: u64) {
    // SAFETY: delegated to the caller.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") v as u32, in("edx") (v >> 32) as u32, options(nostack, preserves_flags))
    };
}

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc at CPL 0 never faults.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// One RDRAND value (None if the CPU has none or it keeps failing).
pub fn rdrand() -> Option<u64> {
    if muen_baremetal::cpu::rng_support().rdrand {
        muen_baremetal::cpu::rdrand64()
    } else {
        None
    }
}

/// Reads CR2 (page-fault linear address).
#[inline]
pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Loads CR3.
///
/// # Safety
/// `pml4` must be a complete PML4 whose kernel half (entries 256..511)
/// maps the kernel exactly as the current one does.
#[inline]
pub unsafe fn write_cr3(pml4: u64) {
    // SAFETY: delegated to the caller.
    unsafe { asm!("mov cr3, {}", in(reg) pml4, options(nostack, preserves_flags)) };
}

/// Reads CR0.
#[inline]
pub fn read_cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effects.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Writes CR0.
///
/// # Safety
/// Must keep PG, PE and the FPU settings the kernel relies on.
#[inline]
pub unsafe fn write_cr0(v: u64) {
    // SAFETY: delegated to the caller.
    unsafe { asm!("mov cr0, {}", in(reg) v, options(nostack, preserves_flags)) };
}

/// Reads CR4.
#[inline]
pub fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Writes CR4.
///
/// # Safety
/// Must keep PAE and OSFXSR set; only bits the CPU supports.
#[inline]
pub unsafe fn write_cr4(v: u64) {
    // SAFETY: delegated to the caller.
    unsafe { asm!("mov cr4, {}", in(reg) v, options(nostack, preserves_flags)) };
}

/// Stops the CPU for good (interrupts off).
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli; hlt never returns with IF = 0 except on NMI/SMI,
        // after which the loop halts again.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Spin-loop hint.
#[inline]
pub fn pause() {
    core::hint::spin_loop();
}
