//! Thin wrappers for CPU instructions. Each is safe to call in the sense
//! that it cannot violate Rust's memory model; what it does to the machine
//! (port I/O, hypercalls) is the caller's business.

use core::arch::asm;

/// Spin-wait hint (`pause`); does not exit on Muen (PAUSEExiting = 0).
#[inline(always)]
pub fn pause() {
    core::hint::spin_loop();
}

/// One 64-bit value from `rdseed`, retried a bounded number of times.
#[inline]
pub fn rdseed64() -> Option<u64> {
    for _ in 0..128 {
        let v: u64;
        let ok: u8;
        // SAFETY: rdseed only writes the named registers and flags; callers
        // check CPUID support first (an unsupported rdseed raises #UD, which
        // the exception handlers report).
        unsafe {
            asm!("rdseed {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack))
        };
        if ok != 0 {
            return Some(v);
        }
        pause();
    }
    None
}

/// One 64-bit value from `rdrand`, retried a bounded number of times.
#[inline]
pub fn rdrand64() -> Option<u64> {
    for _ in 0..128 {
        let v: u64;
        let ok: u8;
        // SAFETY: as for rdseed.
        unsafe {
            asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack))
        };
        if ok != 0 {
            return Some(v);
        }
        pause();
    }
    None
}

/// `cpuid` leaf/subleaf → (eax, ebx, ecx, edx).
#[inline]
pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Which hardware random-number instructions the CPU has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RngSupport {
    pub rdseed: bool,
    pub rdrand: bool,
}

/// Probes CPUID for RDSEED (leaf 7 EBX bit 18) and RDRAND (leaf 1 ECX bit 30).
pub fn rng_support() -> RngSupport {
    let (max, ..) = cpuid(0, 0);
    let rdrand = cpuid(1, 0).2 & (1 << 30) != 0;
    let rdseed = max >= 7 && cpuid(7, 0).1 & (1 << 18) != 0;
    RngSupport { rdseed, rdrand }
}

/// Fills `buf` from RDSEED, falling back to RDRAND. Returns false if the
/// CPU has neither or they keep failing (the caller must not go on with
/// predictable keys).
pub fn fill_random(buf: &mut [u8]) -> bool {
    let s = rng_support();
    for chunk in buf.chunks_mut(8) {
        let v = if s.rdseed { rdseed64() } else { None }
            .or_else(|| if s.rdrand { rdrand64() } else { None });
        match v {
            Some(v) => chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]),
            None => return false,
        }
    }
    true
}

/// `out dx, al`.
#[inline]
pub fn outb(port: u16, v: u8) {
    // SAFETY: port output has no effect on Rust-visible memory.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags))
    };
}

/// `in al, dx`.
#[inline]
pub fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: port input has no effect on Rust-visible memory.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Writes `bytes` to COM1 (0x3F8), polling the line-status register. On
/// Muen the subject monitor emulates this UART into its own log; under the
/// minimal kernel it is captured the same way. Used only before the
/// debuglog channel works and for last-resort messages.
pub fn com1_write(bytes: &[u8]) {
    for &b in bytes {
        for _ in 0..100_000 {
            if inb(0x3FD) & 0x20 != 0 {
                break;
            }
            pause();
        }
        outb(0x3F8, b);
    }
}
