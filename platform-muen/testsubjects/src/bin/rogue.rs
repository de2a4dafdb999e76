//! A hostile subject. It tries to read, write and execute kernel memory
//! (the direct map at 0xFFFF_8000_0000_0000 and the kernel image at
//! 0xFFFF_FFFF_8000_0000) and addresses only another subject maps, and to
//! get the same through the kernel's emulation paths: descriptor-table
//! instructions, `iretq`/`lret`/far transfers, `ltr`, I/O ports the kernel
//! uses, MSRs (LSTAR/EFER/FS_BASE …), control and debug registers, software
//! interrupts on the kernel's vectors.
//!
//! Every attempt runs inside [`probe`]: the subject's own IDT (256 trap
//! gates on an IST stack) records the exception the kernel delivers and
//! lands back in `probe`, so the subject keeps going. Each attempt must end
//! in the expected exception or with a value that shows the kernel kept
//! its own state (`probe <name>: contained: …`); anything else is logged as
//! `ISOLATION BROKEN` and fails the `TEST PASS`/`TEST FAIL` marker.
//!
//! Finally the subject makes one attempt that must stop it, chosen with
//! `--final=NAME` on its command line (see [`final_attempt`]); the kernel
//! stops it with a report. `--no-probes` skips the probes, `--victim=VA,…`
//! names addresses that another subject maps (and this one does not).
#![no_std]
#![no_main]

use core::arch::{asm, global_asm, naked_asm};
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{AtomicU64, Ordering};

use muen_abi::sched::SchedInfoPage;
use muen_abi::sinfo::SCHED_INFO_VA;

muen_subject::subject_main!(main);

/// The kernel's direct map of physical memory.
const DIRECT_MAP: u64 = 0xFFFF_8000_0000_0000;
/// The kernel image (KVMA + 1 MiB: kernel text).
const KERNEL_IMAGE: u64 = 0xFFFF_FFFF_8010_0000;
/// Somewhere in the kernel's data/bss (KVMA + 1 MiB + 256 KiB).
const KERNEL_DATA: u64 = 0xFFFF_FFFF_8014_0000;
/// The lowest non-canonical address.
const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;

use muen_subject::cpu::{CODE_SEL, Tss, tss_descriptor};
/// A TSS descriptor whose base is kernel memory.
const EVIL_TSS_SEL: u16 = 0x28;
/// The selectors the CPU really runs the subject with (ring 3).
const REAL_USER_CS: u64 = 0x23;
const REAL_USER_SS: u64 = 0x1B;

// ---------------------------------------------------------------------------
// Exception capture: own GDT, TSS (IST1) and a 256-gate IDT.

/// The vector of the last exception (u64::MAX: none).
#[unsafe(no_mangle)]
static ROGUE_FAULT_VECTOR: AtomicU64 = AtomicU64::new(u64::MAX);
/// Its error code (0 if the vector has none).
#[unsafe(no_mangle)]
static ROGUE_FAULT_ERROR: AtomicU64 = AtomicU64::new(0);
/// RSP of `rogue_probe` (restored on landing).
#[unsafe(no_mangle)]
static ROGUE_PROBE_RSP: AtomicU64 = AtomicU64::new(0);

const IST_SIZE: usize = 16 * 1024;
#[repr(C, align(16))]
struct Stack([u8; IST_SIZE]);
static mut IST1: Stack = Stack([0; IST_SIZE]);

static mut TSS: Tss = Tss::empty();
/// null, code64 0x08, data 0x10, TSS 0x18 (2 slots), evil TSS 0x28 (2 slots).
static mut GDT: [u64; 7] = [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0, 0, 0, 0];
static mut IDT: [[u64; 2]; 256] = [[0; 2]; 256];
/// A copy of IDT whose #BP gate points into the kernel.
static mut EVIL_IDT: [[u64; 2]; 256] = [[0; 2]; 256];

#[repr(C, packed)]
struct TablePointer {
    limit: u16,
    base: u64,
}

/// A far pointer (m16:32) for `jmp far`/`call far`.
#[repr(C, packed)]
struct FarPtr {
    offset: u32,
    selector: u16,
}
static mut FAR_TARGET: FarPtr = FarPtr {
    offset: 0,
    selector: CODE_SEL,
};

unsafe extern "C" {
    static rogue_vectors: u8;
    /// Calls `f(arg)`; returns its result, or 0 if an exception was
    /// delivered (then ROGUE_FAULT_VECTOR says which).
    fn rogue_probe(f: extern "C" fn(u64) -> u64, arg: u64) -> u64;
}

// One 16-byte stub per vector (a zero error code where the CPU pushes
// none), then the landing: record vector and error code, drop the frame,
// and return from `rogue_probe` with its saved stack and callee-saved
// registers. Software interrupts (`int n`) never push an error code, so for
// them the "error" is the return RIP: only the vector is trusted there.
global_asm!(
    ".pushsection .text.rogue,\"ax\",@progbits",
    ".balign 16",
    ".globl rogue_vectors",
    "rogue_vectors:",
    ".set rvec, 0",
    ".rept 256",
    "    .balign 16",
    "    .if (rvec == 8) || (rvec == 10) || (rvec == 11) || (rvec == 12) || (rvec == 13) || (rvec == 14) || (rvec == 17) || (rvec == 21) || (rvec == 29) || (rvec == 30)",
    "    .else",
    "    push 0",
    "    .endif",
    "    push rvec",
    "    jmp 3f",
    "    .set rvec, rvec + 1",
    ".endr",
    "3:",
    "    pop qword ptr [rip + {vector}]",
    "    pop qword ptr [rip + {error}]",
    "    mov rsp, qword ptr [rip + {saved}]",
    "    cld",
    "    xor eax, eax",
    "    jmp 4f",
    ".globl rogue_probe",
    "rogue_probe:",
    "    push rbx",
    "    push rbp",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    mov qword ptr [rip + {saved}], rsp",
    "    mov qword ptr [rip + {vector}], -1",
    "    sub rsp, 8",
    "    mov rax, rdi",
    "    mov rdi, rsi",
    "    call rax",
    "    add rsp, 8",
    "4:",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbp",
    "    pop rbx",
    "    ret",
    ".popsection",
    vector = sym ROGUE_FAULT_VECTOR,
    error = sym ROGUE_FAULT_ERROR,
    saved = sym ROGUE_PROBE_RSP,
);

/// A 64-bit trap gate (keeps the virtual IF) on IST1.
fn gate(handler: u64) -> [u64; 2] {
    let low = (handler & 0xffff)
        | (u64::from(CODE_SEL) << 16)
        | (1 << 32)
        | (0x8f << 40)
        | ((handler >> 16) & 0xffff) << 48;
    [low, handler >> 32]
}

/// Builds the tables (once).
fn build_tables() {
    // SAFETY: single-threaded; the statics are only touched here and by
    // the CPU (through the kernel) after `load_tables`.
    unsafe {
        let ist1 = addr_of_mut!(IST1) as u64 + IST_SIZE as u64;
        (*addr_of_mut!(TSS)).ist[0] = ist1;
        let gdt = &mut *addr_of_mut!(GDT);
        let [lo, hi] = tss_descriptor(addr_of!(TSS) as u64, 103);
        gdt[3] = lo;
        gdt[4] = hi;
        let [lo, hi] = tss_descriptor(KERNEL_IMAGE, 103);
        gdt[5] = lo;
        gdt[6] = hi;
        let stubs = &raw const rogue_vectors as u64;
        let idt = &mut *addr_of_mut!(IDT);
        let evil = &mut *addr_of_mut!(EVIL_IDT);
        for v in 0..256 {
            idt[v] = gate(stubs + 16 * v as u64);
            evil[v] = idt[v];
        }
        evil[3] = gate(KERNEL_IMAGE);
        (*addr_of_mut!(FAR_TARGET)).offset = far_target as *const () as usize as u32;
    }
}

/// (Re)loads GDT, CS/DS/ES/SS, TR (busy bit cleared first), IDT and
/// FS_BASE = 0: undoes whatever a probe changed.
fn load_tables() {
    // SAFETY: the tables are statics that live for the whole subject; the
    // kernel emulates every instruction here (they all trap at CPL 3).
    unsafe {
        let gdt = &mut *addr_of_mut!(GDT);
        gdt[3] &= !(0x2 << 40); // busy -> available, so ltr accepts it again
        gdt[5] &= !(0x2 << 40);
        muen_subject::cpu::load_tables(
            gdt.as_ptr() as u64,
            (7 * 8 - 1) as u16,
            addr_of!(IDT) as u64,
            (256 * 16 - 1) as u16,
        );
        asm!(
            "xor eax, eax",
            "xor edx, edx",
            "mov ecx, 0xC0000100",
            "wrmsr",
            out("eax") _,
            out("ecx") _,
            out("edx") _,
        );
    }
}

extern "C" fn far_target() {}

// ---------------------------------------------------------------------------
// The attempts: tiny naked functions, argument in RDI, result in RAX.

// Naked: the assembly is the whole function. Each one returns with `ret`
// or leaves through an exception, which lands in `rogue_probe`; they are
// only ever called through `rogue_probe`.
macro_rules! attempt {
    ($(#[$m:meta])* $name:ident: $($asm:tt)+) => {
        $(#[$m])*
        #[unsafe(naked)]
        extern "C" fn $name(_arg: u64) -> u64 {
            naked_asm!($($asm)+)
        }
    };
}

attempt!(read_at: "mov rax, qword ptr [rdi]", "ret");
attempt!(write_at: "mov rax, 0x524f475545", "mov qword ptr [rdi], rax", "xor eax, eax", "ret");
attempt!(call_at: "call rdi", "ret");
attempt!(lgdt_at: "lgdt [rdi]", "xor eax, eax", "ret");
attempt!(lidt_at: "lidt [rdi]", "xor eax, eax", "ret");
attempt!(sgdt_at: "sgdt [rdi]", "xor eax, eax", "ret");
attempt!(sidt_at: "sidt [rdi]", "xor eax, eax", "ret");
attempt!(str_at: "str word ptr [rdi]", "xor eax, eax", "ret");
attempt!(sldt_at: "sldt word ptr [rdi]", "xor eax, eax", "ret");
attempt!(smsw_at: "smsw word ptr [rdi]", "xor eax, eax", "ret");
attempt!(
    /// Loads a GDTR whose base is `rdi`, then makes the kernel look a
    /// selector up in it.
    gdt_base_then_mov_ds:
    "sub rsp, 16", "mov word ptr [rsp], 0xffff", "mov qword ptr [rsp + 2], rdi", "lgdt [rsp]", "add rsp, 16",
    "mov eax, 0x10", "mov ds, eax", "xor eax, eax", "ret"
);
attempt!(
    gdt_base_then_ltr:
    "sub rsp, 16", "mov word ptr [rsp], 0xffff", "mov qword ptr [rsp + 2], rdi", "lgdt [rsp]", "add rsp, 16",
    "mov eax, 0x18", "ltr ax", "xor eax, eax", "ret"
);
attempt!(
    gdt_base_then_lret:
    "sub rsp, 16", "mov word ptr [rsp], 0xffff", "mov qword ptr [rsp + 2], rdi", "lgdt [rsp]", "add rsp, 16",
    "push 0x08", "lea rax, [rip + 2f]", "push rax", "retfq", "2:", "xor eax, eax", "ret"
);
attempt!(
    /// `ltr` of the selector in RDI; returns `str` (the kernel's view).
    ltr_sel: "mov eax, edi", "ltr ax", "xor eax, eax", "str eax", "ret"
);
attempt!(
    /// FS base := RDI, then an emulated operand relative to FS.
    fs_base_then_lgdt:
    "mov rax, rdi", "mov rdx, rdi", "shr rdx, 32", "mov ecx, 0xC0000100", "wrmsr",
    "xor edi, edi", "lgdt fs:[rdi]", "xor eax, eax", "ret"
);
attempt!(
    fs_base_then_read:
    "mov rax, rdi", "mov rdx, rdi", "shr rdx, 32", "mov ecx, 0xC0000100", "wrmsr",
    "mov rax, qword ptr fs:[0]", "ret"
);
attempt!(
    /// iretq (virtual CS 0x08: emulated) to RIP = RDI.
    iret_emulated_to:
    "mov rax, rsp", "push 0x10", "push rax", "pushfq", "push 0x08", "push rdi", "iretq"
);
attempt!(
    /// iretq with the real ring-3 selectors (executed by the CPU) to RIP = RDI.
    iret_native_to:
    "mov rax, rsp", "push {ss}", "push rax", "pushfq", "push {cs}", "push rdi", "iretq",
    ss = const REAL_USER_SS, cs = const REAL_USER_CS
);
attempt!(
    /// iretq (emulated) with RSP = RDI, then a push.
    iret_emulated_rsp:
    "lea rax, [rip + 2f]", "push 0x10", "push rdi", "pushfq", "push 0x08", "push rax", "iretq",
    "2:", "push rax", "pop rax", "ud2"
);
attempt!(
    /// iretq (emulated) with IOPL = 3 in the popped RFLAGS; returns RFLAGS.
    iret_iopl3:
    "mov rcx, rsp", "lea rax, [rip + 2f]", "push 0x10", "push rcx", "pushfq", "or qword ptr [rsp], 0x3000",
    "push 0x08", "push rax", "iretq", "2:", "pushfq", "pop rax", "ret"
);
attempt!(popf_iopl3: "pushfq", "or qword ptr [rsp], 0x3000", "popfq", "pushfq", "pop rax", "ret");
attempt!(lret_to: "push 0x08", "push rdi", "retfq");
attempt!(farjmp_through: "jmp fword ptr [rdi]");
attempt!(
    /// A valid far call (pointer at RDI) with RSP in kernel memory: the
    /// kernel must push the return frame there.
    farcall_kernel_stack:
    "mov rax, {stack}", "mov rsp, rax", "call fword ptr [rdi]", "ud2",
    stack = const DIRECT_MAP + 0x1000
);
attempt!(port_in8: "mov edx, edi", "mov eax, 0x12345600", "in al, dx", "ret");
attempt!(
    pci_config_read:
    "mov eax, 0x80000000", "mov edx, 0xcf8", "out dx, eax", "mov edx, 0xcfc", "in eax, dx", "ret"
);
attempt!(
    pit_and_pic_writes:
    "mov al, 0x30", "out 0x43, al", "xor eax, eax", "out 0x40, al", "out 0x40, al",
    "mov al, 0xff", "out 0x21, al", "out 0xa1, al", "xor eax, eax", "ret"
);
attempt!(
    /// LSTAR := a subject address, STAR, EFER.SCE := 1, then syscall.
    syscall_after_msrs:
    "lea rax, [rip + 2f]", "mov rdx, rax", "shr rdx, 32", "mov ecx, 0xC0000082", "wrmsr",
    "xor eax, eax", "mov edx, 0x00130008", "mov ecx, 0xC0000081", "wrmsr",
    "mov eax, 0xD01", "xor edx, edx", "mov ecx, 0xC0000080", "wrmsr",
    "syscall", "2:", "mov eax, 0x5c5c", "ret"
);
attempt!(rdmsr_n: "mov ecx, edi", "rdmsr", "shl rdx, 32", "or rax, rdx", "ret");
attempt!(
    /// CR0 := 0x33 (paging and WP off); returns CR0 as read back.
    cr0_paging_off: "mov eax, 0x33", "mov cr0, rax", "mov rax, cr0", "ret"
);
attempt!(
    /// DR0 := RDI, DR7 := enable it; returns DR7 as read into a register
    /// preloaded with a marker.
    debug_registers:
    "mov dr0, rdi", "mov eax, 0x30303", "mov dr7, rax", "mov eax, 0x1234", "mov rax, dr7", "ret"
);
attempt!(cache_and_tlb: "invlpg [rdi]", "wbinvd", "invd", "xor eax, eax", "ret");
attempt!(int_20: "int 0x20", "ret");
attempt!(int_21: "int 0x21", "ret");
attempt!(int_02: "int 0x02", "ret");
attempt!(int_08: "int 0x08", "ret");
attempt!(int_80: "int 0x80", "ret");
attempt!(int_ff: "int 0xff", "ret");
attempt!(int3: "int3", "ret");
attempt!(icebp: ".byte 0xf1", "ret");
attempt!(ud2: "ud2", "ret");
attempt!(xgetbv: "xor ecx, ecx", "xgetbv", "ret");
attempt!(rdtscp: "rdtscp", "ret");
attempt!(vmcall_n: "mov rax, rdi", "vmcall", "xor eax, eax", "ret");

/// `cli`, then spin until the kernel has switched frames 20 times (it
/// preempts regardless of the virtual IF); returns the frame count seen.
extern "C" fn cli_and_spin(_: u64) -> u64 {
    // SAFETY: cli only clears the virtual IF.
    unsafe { asm!("cli", options(nomem, nostack)) };
    let n = wait_frames(20);
    // SAFETY: as above.
    unsafe { asm!("sti", options(nomem, nostack)) };
    n
}

/// Scans this subject's whole `ram` for the PEM marker of a private key
/// (which another subject holds); returns the number of hits. The needle
/// is kept XOR-ed so that this subject's own stack never matches.
extern "C" fn scan_ram(range: u64) -> u64 {
    const NEEDLE_X: [u8; 11] = xor_needle(*b"PRIVATE KEY");
    let (start, len) = (range >> 32 << 12, (range & 0xffff_ffff) << 12);
    let mut hits = 0;
    let mut matched = 0usize;
    for i in 0..len {
        // SAFETY: [start, start + len) is this subject's own `ram` region.
        let b = unsafe { core::ptr::read_volatile((start + i) as *const u8) };
        if b == NEEDLE_X[matched] ^ 0x5a {
            matched += 1;
            if matched == NEEDLE_X.len() {
                hits += 1;
                matched = 0;
            }
        } else {
            matched = usize::from(b == NEEDLE_X[0] ^ 0x5a);
        }
    }
    hits
}

const fn xor_needle(s: [u8; 11]) -> [u8; 11] {
    let mut out = [0u8; 11];
    let mut i = 0;
    while i < 11 {
        out[i] = s[i] ^ 0x5a;
        i += 1;
    }
    out
}

fn sched() -> SchedInfoPage {
    // SAFETY: the scheduling info page is mapped read-only at this address.
    unsafe { SchedInfoPage::new(SCHED_INFO_VA as *const u8) }
}

/// Spins until the minor frame has changed `n` times; returns `n`.
fn wait_frames(n: u64) -> u64 {
    let page = sched();
    let mut seen = 0;
    let mut last = page.start();
    while seen < n {
        let s = page.start();
        if s != last {
            seen += 1;
            last = s;
        }
        core::hint::spin_loop();
    }
    seen
}

fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only writes EDX:EAX (emulated by the kernel).
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reads the virtual CR2 (emulated).
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack)) };
    v
}

// ---------------------------------------------------------------------------
// Running and judging the attempts.

#[derive(Clone, Copy)]
enum Expect {
    /// This exception (and for #PF this CR2).
    Fault(u8, Option<u64>),
    /// One of these exceptions.
    EitherFault(u8, u8),
    /// Completes with a result that satisfies the check.
    Value(fn(u64) -> bool, &'static str),
}

struct Probes {
    total: u32,
    broken: u32,
}

fn exception_name(v: u64) -> &'static str {
    match v {
        1 => "#DB",
        2 => "NMI vector",
        3 => "#BP",
        6 => "#UD",
        8 => "#DF vector",
        13 => "#GP",
        14 => "#PF",
        0x20 => "kernel timer vector",
        0x21 => "kernel net vector",
        0x80 => "int 0x80",
        0xff => "kernel spurious vector",
        _ => "exception",
    }
}

impl Probes {
    fn run(&mut self, name: &str, f: extern "C" fn(u64) -> u64, arg: u64, expect: Expect) {
        self.total += 1;
        // SAFETY: `rogue_probe` saves the callee-saved registers and RSP and
        // restores them when an exception lands, so an attempt that faults
        // half-way leaves the Rust caller intact (attempts hold no locks
        // and own no memory). Every attempt only touches registers, its own
        // stack, and the addresses it is meant to be refused.
        let value = unsafe { rogue_probe(f, arg) };
        let vector = ROGUE_FAULT_VECTOR.load(Ordering::SeqCst);
        let error = ROGUE_FAULT_ERROR.load(Ordering::SeqCst);
        let addr = if vector == 14 { cr2() } else { 0 };
        load_tables();
        let ok = match expect {
            Expect::Fault(v, want_addr) => {
                u64::from(v) == vector && want_addr.is_none_or(|a| a == addr)
            }
            Expect::EitherFault(a, b) => vector == u64::from(a) || vector == u64::from(b),
            Expect::Value(check, _) => vector == u64::MAX && check(value),
        };
        let outcome = if vector != u64::MAX {
            // Only #GP and #PF are raised by the CPU or the kernel here
            // (with an error code); the other vectors come from `int n`.
            let err = if vector == 13 || vector == 14 {
                error
            } else {
                0
            };
            if vector == 14 {
                alloc_free_fmt(format_args!(
                    "exception {vector} ({}) addr={addr:#x} err={err:#x}",
                    exception_name(vector)
                ))
            } else {
                alloc_free_fmt(format_args!(
                    "exception {vector} ({}) err={err:#x}",
                    exception_name(vector)
                ))
            }
        } else {
            alloc_free_fmt(format_args!("completed, result {value:#x}"))
        };
        if ok {
            let why = match expect {
                Expect::Value(_, why) => why,
                Expect::Fault(..) | Expect::EitherFault(..) => "delivered to the subject's IDT",
            };
            log::info!("probe {name}: contained: {} ({why})", outcome.as_str());
        } else {
            self.broken += 1;
            log::error!("probe {name}: ISOLATION BROKEN: {}", outcome.as_str());
        }
    }
}

/// A small formatted string on the stack (no heap needed).
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn alloc_free_fmt(args: core::fmt::Arguments<'_>) -> Line {
    let mut l = Line {
        buf: [0; 160],
        len: 0,
    };
    let _ = core::fmt::Write::write_fmt(&mut l, args);
    l
}

fn pf(addr: u64) -> Expect {
    Expect::Fault(14, Some(addr))
}

/// Parses `--victim=VA,VA,…` (hex with 0x) from the command line.
fn victim_addresses(cmdline: &str) -> ([u64; 8], usize) {
    let mut out = [0u64; 8];
    let mut n = 0;
    for word in cmdline.split_ascii_whitespace() {
        if let Some(list) = word.strip_prefix("--victim=") {
            for item in list.split(',') {
                let hex = item.trim_start_matches("0x");
                if let (Ok(v), true) = (u64::from_str_radix(hex, 16), n < out.len()) {
                    out[n] = v;
                    n += 1;
                }
            }
        }
    }
    (out, n)
}

fn probes(rt: &muen_subject::Runtime) -> Probes {
    let mut p = Probes {
        total: 0,
        broken: 0,
    };
    let (victims, nv) = victim_addresses(rt.boot.cmdline);

    // Kernel memory, directly.
    p.run(
        "read kernel direct map (phys 0)",
        read_at,
        DIRECT_MAP,
        pf(DIRECT_MAP),
    );
    p.run(
        "read direct map of the kernel image (phys 1 MiB)",
        read_at,
        DIRECT_MAP + 0x10_0000,
        pf(DIRECT_MAP + 0x10_0000),
    );
    p.run(
        "write direct map (phys 16 MiB)",
        write_at,
        DIRECT_MAP + 0x100_0000,
        pf(DIRECT_MAP + 0x100_0000),
    );
    p.run("read kernel text", read_at, KERNEL_IMAGE, pf(KERNEL_IMAGE));
    p.run("write kernel data", write_at, KERNEL_DATA, pf(KERNEL_DATA));
    p.run(
        "execute kernel text",
        call_at,
        KERNEL_IMAGE,
        pf(KERNEL_IMAGE),
    );
    p.run(
        "read top of the address space",
        read_at,
        0xFFFF_FFFF_FFFF_F000,
        pf(0xFFFF_FFFF_FFFF_F000),
    );
    p.run(
        "read non-canonical address",
        read_at,
        NON_CANONICAL,
        Expect::Fault(13, None),
    );
    // Device memory the kernel drives (LAPIC, IOAPIC, virtio-mmio): MMIO
    // at low addresses that exist only in the kernel's direct map.
    for (name, a) in [
        ("read LAPIC MMIO", 0xFEE0_0000u64),
        ("read IOAPIC MMIO", 0xFEC0_0000),
        ("write virtio-mmio NIC", 0xFEB0_0000),
    ] {
        let f = if name.starts_with("write") {
            write_at
        } else {
            read_at
        };
        p.run(name, f, a, pf(a));
    }
    // Another subject's regions (addresses it maps and this one does not).
    for &a in &victims[..nv] {
        let n = alloc_free_fmt(format_args!("read another subject's region at {a:#x}"));
        p.run(n.as_str(), read_at, a, pf(a));
        let n = alloc_free_fmt(format_args!("write another subject's region at {a:#x}"));
        p.run(n.as_str(), write_at, a, pf(a));
    }
    // Regions this subject shares read-only (time_info is shared with
    // every subject) or that the kernel writes.
    let text = 0x20_0000u64;
    p.run(
        "write own text (shared read-only image pages)",
        write_at,
        text,
        pf(text),
    );
    for name in ["time_info", "sinfo", "scheduling_info"] {
        if let Some(m) = rt.sinfo.memory(name) {
            let n = alloc_free_fmt(format_args!("write {name} (read-only)"));
            p.run(n.as_str(), write_at, m.address, pf(m.address));
        }
    }
    if let Some(ram) = rt.sinfo.memory("ram") {
        p.run(
            "scan own ram for another subject's private key",
            scan_ram,
            (ram.address >> 12) << 32 | (ram.size >> 12),
            Expect::Value(|hits| hits == 0, "not found: address spaces are disjoint"),
        );
    }

    // The kernel's emulation paths, pointed at kernel memory.
    p.run(
        "lgdt with its operand in kernel memory",
        lgdt_at,
        KERNEL_IMAGE,
        pf(KERNEL_IMAGE),
    );
    p.run(
        "lidt with its operand in kernel memory",
        lidt_at,
        KERNEL_DATA,
        pf(KERNEL_DATA),
    );
    p.run(
        "lgdt through an FS base in kernel memory",
        fs_base_then_lgdt,
        KERNEL_IMAGE,
        pf(KERNEL_IMAGE),
    );
    p.run(
        "read through an FS base in kernel memory",
        fs_base_then_read,
        KERNEL_DATA,
        pf(KERNEL_DATA),
    );
    p.run(
        "FS base non-canonical",
        fs_base_then_read,
        NON_CANONICAL,
        Expect::Fault(13, None),
    );
    p.run(
        "GDT base in kernel memory, then mov ds",
        gdt_base_then_mov_ds,
        KERNEL_IMAGE,
        pf(KERNEL_IMAGE + 0x10),
    );
    p.run(
        "GDT base in kernel memory, then ltr",
        gdt_base_then_ltr,
        KERNEL_IMAGE,
        pf(KERNEL_IMAGE + 0x18),
    );
    p.run(
        "GDT base in kernel memory, then lret",
        gdt_base_then_lret,
        KERNEL_DATA,
        pf(KERNEL_DATA + 0x08),
    );
    p.run(
        "ltr of a TSS whose base is kernel memory",
        ltr_sel,
        u64::from(EVIL_TSS_SEL),
        Expect::Value(
            |tr| tr == u64::from(EVIL_TSS_SEL),
            "selector recorded, nothing read until delivery",
        ),
    );
    p.run(
        "sgdt into kernel memory",
        sgdt_at,
        KERNEL_DATA,
        pf(KERNEL_DATA),
    );
    p.run(
        "sidt into kernel memory",
        sidt_at,
        KERNEL_DATA,
        pf(KERNEL_DATA),
    );
    p.run(
        "str into kernel memory",
        str_at,
        KERNEL_DATA,
        pf(KERNEL_DATA),
    );
    p.run(
        "sldt into kernel memory",
        sldt_at,
        KERNEL_DATA,
        pf(KERNEL_DATA),
    );
    p.run(
        "smsw into kernel memory",
        smsw_at,
        KERNEL_DATA,
        pf(KERNEL_DATA),
    );
    let mut gdtr = [0u8; 10];
    p.run(
        "sgdt shows the subject's own GDT",
        sgdt_at,
        gdtr.as_mut_ptr() as u64,
        Expect::Value(|_| true, "checked below"),
    );
    let base = u64::from_le_bytes(gdtr[2..10].try_into().unwrap_or([0; 8]));
    let own = addr_of!(GDT) as u64;
    p.run(
        "sgdt base equals the subject's own GDT",
        read_at,
        &base as *const u64 as u64,
        if base == own {
            Expect::Value(|_| true, "no kernel address leaked")
        } else {
            Expect::Value(|_| false, "kernel GDT leaked")
        },
    );
    p.run(
        "iretq (emulated) to a kernel RIP",
        iret_emulated_to,
        KERNEL_IMAGE,
        Expect::Fault(13, None),
    );
    p.run(
        "iretq (native, ring-3 selectors) to a kernel RIP",
        iret_native_to,
        KERNEL_IMAGE,
        pf(KERNEL_IMAGE),
    );
    p.run(
        "iretq (emulated) with RSP in kernel memory, then push",
        iret_emulated_rsp,
        DIRECT_MAP + 0x1000,
        pf(DIRECT_MAP + 0x0ff8),
    );
    p.run(
        "iretq (emulated) with IOPL 3",
        iret_iopl3,
        0,
        Expect::Value(|fl| fl & 0x3000 == 0, "IOPL stays 0"),
    );
    p.run(
        "popfq with IOPL 3",
        popf_iopl3,
        0,
        Expect::Value(|fl| fl & 0x3000 == 0, "IOPL stays 0"),
    );
    p.run(
        "lret to a kernel RIP",
        lret_to,
        KERNEL_IMAGE,
        Expect::Fault(13, None),
    );
    p.run(
        "far jmp through a pointer in kernel memory",
        farjmp_through,
        KERNEL_DATA,
        pf(KERNEL_DATA),
    );
    let far = addr_of!(FAR_TARGET) as u64;
    p.run(
        "far call with RSP in kernel memory",
        farcall_kernel_stack,
        far,
        pf(DIRECT_MAP + 0x1000 - 8),
    );

    // I/O ports the kernel uses: ignored, or read as all-ones.
    p.run(
        "in from the PIT (0x40)",
        port_in8,
        0x40,
        Expect::Value(|v| v & 0xff == 0xff, "ignored, reads 0xff"),
    );
    p.run(
        "in from the i8042 (0x60)",
        port_in8,
        0x60,
        Expect::Value(|v| v & 0xff == 0xff, "ignored, reads 0xff"),
    );
    p.run(
        "PCI configuration read (0xcf8/0xcfc)",
        pci_config_read,
        0,
        Expect::Value(
            |v| v & 0xffff_ffff == 0xffff_ffff,
            "ignored, reads all-ones",
        ),
    );
    p.run(
        "reprogram the PIT and mask the PIC",
        pit_and_pic_writes,
        0,
        Expect::Value(|_| true, "ignored"),
    );

    // MSRs and control/debug registers.
    p.run(
        "LSTAR/STAR/EFER.SCE, then syscall",
        syscall_after_msrs,
        0,
        Expect::Fault(6, None),
    );
    for (name, msr) in [
        ("rdmsr EFER", 0xC000_0080u64),
        ("rdmsr LSTAR", 0xC000_0082),
        ("rdmsr STAR", 0xC000_0081),
        ("rdmsr KERNEL_GS_BASE", 0xC000_0102),
        ("rdmsr SYSENTER_EIP", 0x176),
        ("rdmsr APIC_BASE", 0x1B),
    ] {
        p.run(
            name,
            rdmsr_n,
            msr,
            Expect::Value(|v| v == 0, "reads 0, nothing leaked"),
        );
    }
    p.run(
        "mov cr0 (paging off)",
        cr0_paging_off,
        0,
        Expect::Value(|v| v == 0x8001_0033, "ignored; cr0 reads the shadow"),
    );
    p.run(
        "mov dr0/dr7 (breakpoint on the kernel)",
        debug_registers,
        KERNEL_IMAGE,
        Expect::Value(|v| v == 0x1234, "ignored; no debug register read"),
    );
    p.run(
        "invlpg/wbinvd/invd",
        cache_and_tlb,
        KERNEL_IMAGE,
        Expect::Value(|_| true, "ignored"),
    );

    // Software interrupts on the kernel's vectors, and other traps.
    p.run(
        "int 0x20 (the kernel's timer vector)",
        int_20,
        0,
        Expect::Fault(0x20, None),
    );
    p.run(
        "int 0x21 (the kernel's net vector)",
        int_21,
        0,
        Expect::Fault(0x21, None),
    );
    p.run("int 2 (NMI vector)", int_02, 0, Expect::Fault(2, None));
    p.run("int 8 (#DF vector)", int_08, 0, Expect::Fault(8, None));
    p.run("int 0x80", int_80, 0, Expect::Fault(0x80, None));
    p.run(
        "int 0xff (the kernel's spurious vector)",
        int_ff,
        0,
        Expect::Fault(0xff, None),
    );
    p.run("int3", int3, 0, Expect::Fault(3, None));
    // #DB on hardware; QEMU TCG (without WANT_ICEBP) raises #UD.
    p.run("int1 (icebp)", icebp, 0, Expect::EitherFault(1, 6));
    p.run("ud2", ud2, 0, Expect::Fault(6, None));
    p.run("xgetbv", xgetbv, 0, Expect::Fault(6, None));
    p.run("rdtscp", rdtscp, 0, Expect::Fault(6, None));
    p.run(
        "vmcall with an event of no one",
        vmcall_n,
        42,
        Expect::Value(|_| true, "ignored"),
    );
    p.run(
        "vmcall with a huge event number",
        vmcall_n,
        u64::MAX,
        Expect::Value(|_| true, "ignored"),
    );
    p.run(
        "cli, then spin",
        cli_and_spin,
        0,
        Expect::Value(|n| n == 20, "still preempted"),
    );
    let page = sched();
    let (before, t, after) = (page.read(), rdtsc(), page.read());
    let exact = if before == after {
        t == before.tsc_schedule_end
    } else {
        true
    };
    p.run(
        "rdtsc",
        read_at,
        &t as *const u64 as u64,
        if exact {
            Expect::Value(|_| true, "frame end, no fine-grained TSC")
        } else {
            Expect::Value(|_| false, "real TSC")
        },
    );
    p
}

/// The last attempt: each must stop the subject (the kernel reports it).
fn final_attempt(name: &str, rt: &muen_subject::Runtime) {
    log::info!("final attempt: {name}");
    wait_frames(2); // let the kernel forward the log first
    // SAFETY (all arms): each instruction is meant to be refused; if the
    // kernel lets it through, the lines after it report the breach.
    unsafe {
        match name {
            "cr3" => asm!("xor eax, eax", "mov cr3, rax", out("eax") _),
            "port-f4" => asm!("mov al, 0x10", "out 0xf4, al", out("eax") _),
            "outs" => asm!(
                "mov rsi, {src}", "mov ecx, 64", "mov edx, 0x3f8", "rep outsb",
                src = const KERNEL_IMAGE, out("rsi") _, out("ecx") _, out("edx") _
            ),
            "idt-kernel" => {
                let idtr = TablePointer {
                    limit: 0xfff,
                    base: KERNEL_IMAGE,
                };
                asm!("lidt [{}]", "int3", in(reg) &idtr);
            }
            "tss-kernel" => {
                asm!("mov eax, {sel}", "ltr ax", "int3", sel = const EVIL_TSS_SEL as u32, out("eax") _)
            }
            "gate-kernel" => {
                let idtr = TablePointer {
                    limit: (256 * 16 - 1) as u16,
                    base: addr_of!(EVIL_IDT) as u64,
                };
                asm!("lidt [{}]", "int3", in(reg) &idtr);
            }
            "sysenter" => asm!(
                "mov ecx, 0x174", "mov eax, 0x08", "xor edx, edx", "wrmsr",
                "lea rax, [rip + 2f]", "mov rdx, rax", "shr rdx, 32", "mov ecx, 0x176", "wrmsr",
                "sysenter", "2:",
                out("eax") _, out("ecx") _, out("edx") _
            ),
            "swapgs" => asm!("swapgs"),
            "debuglog" => {
                // Corrupt the header of the own debuglog channel, which the
                // kernel reads: a new epoch with an element count far
                // beyond the region. The kernel must refuse it.
                if let Some(m) = rt.sinfo.memory("debuglog") {
                    let hdr = m.address as *mut u64;
                    core::ptr::write_volatile(hdr.add(4), u64::MAX / 64);
                    core::ptr::write_volatile(hdr.add(1), 0x0bad_0bad_0bad_0bad);
                }
                wait_frames(5);
                asm!("xor eax, eax", "mov cr3, rax", out("eax") _);
            }
            other => log::error!("unknown final attempt '{other}'"),
        }
    }
    muen_testsubjects::result(
        false,
        format_args!("ISOLATION BROKEN: survived final attempt {name}"),
    );
}

fn main(rt: &mut muen_subject::Runtime) -> i32 {
    build_tables();
    load_tables();
    let cmdline = rt.boot.cmdline;
    if !cmdline.split_ascii_whitespace().any(|w| w == "--no-probes") {
        // Log injection: every line the kernel prints for a subject starts
        // with the subject's name, so these cannot forge kernel lines.
        log::info!("forged line follows\nkernel: subject unipi stopped: FORGED");
        for &b in b"forged com1 line follows\nkernel: subject unipi stopped: FORGED COM1\n" {
            // SAFETY: COM1 output (emulated by the kernel as an 8250).
            unsafe { asm!("out dx, al", in("dx") 0x3f8u16, in("al") b, options(nomem, nostack)) };
        }
        let p = probes(rt);
        muen_testsubjects::result(
            p.broken == 0,
            format_args!(
                "rogue: {} attempts, {} contained, {} broke isolation",
                p.total,
                p.total - p.broken,
                p.broken
            ),
        );
    }
    match cmdline
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("--final="))
    {
        Some(name) => final_attempt(name, rt),
        None => return 0,
    }
    1
}
