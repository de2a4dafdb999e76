//! Descriptor tables, trap entry and the switch into a subject.
//!
//! Layout of the switch (docs/kernel.md "CPU state and privilege"):
//! `TSS.RSP0` points at the end of the running subject's [`TrapFrame`], so
//! on any interrupt or exception from ring 3 the CPU pushes its frame
//! straight into it; the stub adds vector, error code, all GPRs and the
//! FXSAVE image, reloads the kernel stack pointer saved by
//! [`enter`] and "returns" from it. The kernel runs with IF = 0; the only
//! ring-0 interrupts arrive in the [`idle`] stub and just mark a pending
//! bit. NMI, #DF and #MC use IST stacks.

use crate::cpu;
use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// User data selector (RPL 3) the subjects really run with.
pub const USER_SS: u64 = 0x1B;
/// User code selector (RPL 3).
pub const USER_CS: u64 = 0x23;
const TSS_SEL: u16 = 0x28;

/// The LAPIC timer vector.
pub const VEC_TIMER: u8 = 0x20;
/// The network interrupt vector (reserved; the NIC is polled).
pub const VEC_NET: u8 = 0x21;
/// The LAPIC spurious vector.
pub const VEC_SPURIOUS: u8 = 0xFF;

/// Everything a subject's CPU state consists of while it is not running.
/// Written by the CPU and the entry stub; the field order is the stub's.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct TrapFrame {
    /// FXSAVE64 image (x87/SSE state).
    pub fx: [u8; 512],
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Vector of the last trap.
    pub vector: u64,
    /// Error code of the last trap (0 if the vector has none).
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// A frame in the reset state: FCW 0x037F, MXCSR 0x1F80, GPRs 0.
    pub fn new() -> Self {
        let mut fx = [0u8; 512];
        fx[0..2].copy_from_slice(&0x037Fu16.to_le_bytes());
        fx[24..28].copy_from_slice(&0x1F80u32.to_le_bytes());
        TrapFrame {
            fx,
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rbp: 0,
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            rbx: 0,
            rax: 0,
            vector: 0,
            error: 0,
            rip: 0,
            cs: USER_CS,
            rflags: 0x202,
            rsp: 0,
            ss: USER_SS,
        }
    }

    /// General-purpose register by x86 number (0 = RAX … 15 = R15).
    pub fn gpr(&self, n: u8) -> u64 {
        match n & 15 {
            0 => self.rax,
            1 => self.rcx,
            2 => self.rdx,
            3 => self.rbx,
            4 => self.rsp,
            5 => self.rbp,
            6 => self.rsi,
            7 => self.rdi,
            8 => self.r8,
            9 => self.r9,
            10 => self.r10,
            11 => self.r11,
            12 => self.r12,
            13 => self.r13,
            14 => self.r14,
            _ => self.r15,
        }
    }

    /// Sets a general-purpose register by x86 number.
    pub fn set_gpr(&mut self, n: u8, v: u64) {
        let r = match n & 15 {
            0 => &mut self.rax,
            1 => &mut self.rcx,
            2 => &mut self.rdx,
            3 => &mut self.rbx,
            4 => &mut self.rsp,
            5 => &mut self.rbp,
            6 => &mut self.rsi,
            7 => &mut self.rdi,
            8 => &mut self.r8,
            9 => &mut self.r9,
            10 => &mut self.r10,
            11 => &mut self.r11,
            12 => &mut self.r12,
            13 => &mut self.r13,
            14 => &mut self.r14,
            _ => &mut self.r15,
        };
        *r = v;
    }
}

/// A kernel-mode trap frame as pushed by the fatal path of the stub.
#[repr(C)]
pub struct KernelFrame {
    pub gprs: [u64; 15],
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Interior-mutable storage for tables the CPU reads.
#[repr(C, align(16))]
struct HwCell<T>(UnsafeCell<T>);
// SAFETY: single CPU, IF = 0 in the kernel; the cells are only written
// during init and (TSS.RSP0) right before entering a subject.
unsafe impl<T> Sync for HwCell<T> {}

static GDT: HwCell<[u64; 7]> = HwCell(UnsafeCell::new([
    0,
    0x00AF_9A00_0000_FFFF, // 0x08 kernel code
    0x00CF_9200_0000_FFFF, // 0x10 kernel data
    0x00CF_F200_0000_FFFF, // 0x18 user data (DPL 3)
    0x00AF_FA00_0000_FFFF, // 0x20 user code (DPL 3, 64-bit)
    0,                     // 0x28 TSS (low)
    0,                     // TSS (high)
]));
static TSS: HwCell<[u32; 26]> = HwCell(UnsafeCell::new([0; 26]));
static IDT: HwCell<[u64; 512]> = HwCell(UnsafeCell::new([0; 512]));

const IST_SIZE: usize = 16 * 1024;
#[repr(C, align(16))]
struct IstStacks([[u8; IST_SIZE]; 3]);
static IST: HwCell<IstStacks> = HwCell(UnsafeCell::new(IstStacks([[0; IST_SIZE]; 3])));

/// Kernel RSP saved by `enter` (read by the stub).
#[unsafe(no_mangle)]
static KERNEL_RSP: AtomicU64 = AtomicU64::new(0);
/// Bitmap of interrupt vectors that arrived in ring 0 (idle).
#[unsafe(no_mangle)]
static PENDING_IRQS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
#[unsafe(no_mangle)]
static KERNEL_MXCSR: u32 = 0x1F80;

global_asm!(
    r#"
/* All fifteen general-purpose registers, in the order the saved frame uses. */
.macro push_gprs
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
.endm

.section .text.trap, "ax"
.balign 16
.globl trap_stubs
trap_stubs:
.set vec, 0
.rept 256
.balign 16
.if vec == 2
    iretq
.else
.if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
.else
    pushq $0
.endif
    pushq $vec
    jmp trap_common
.endif
.set vec, vec + 1
.endr

trap_common:
    cmpq $8, (%rsp)
    je fatal_trap
    cmpq $18, (%rsp)
    je fatal_trap
    testb $3, 24(%rsp)
    jz kernel_trap
    push_gprs
    fxsave64 -512(%rsp)
    movq KERNEL_RSP(%rip), %rsp
    cld
    ldmxcsr KERNEL_MXCSR(%rip)
    fninit
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    ret

kernel_trap:
    cmpq $32, (%rsp)
    jb fatal_trap
    pushq %rax
    movq 8(%rsp), %rax
    lock btsq %rax, PENDING_IRQS(%rip)
    popq %rax
    addq $16, %rsp
    iretq

fatal_trap:
    push_gprs
    movq %rsp, %rdi
    andq $-16, %rsp
    cld
    call kernel_fault
    ud2

/* enter_subject(frame: *mut TrapFrame): runs the subject until its next
 * trap, then returns. */
.globl enter_subject
enter_subject:
    pushq %rbx
    pushq %rbp
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, KERNEL_RSP(%rip)
    fxrstor64 (%rdi)
    leaq 512(%rdi), %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

/* idle_wait(): sti; hlt; cli — interrupts taken here never see a Rust
 * red zone. */
.globl idle_wait
idle_wait:
    sti
    hlt
    cli
    ret
"#,
    options(att_syntax)
);

unsafe extern "C" {
    static trap_stubs: u8;
    fn enter_subject(frame: *mut TrapFrame);
    fn idle_wait();
}

fn set_gate(idt: &mut [u64; 512], vec: usize, handler: u64, ist: u8, dpl: u8) {
    let lo = (handler & 0xFFFF)
        | (KERNEL_CS as u64) << 16
        | (ist as u64 & 7) << 32
        | (0x8E | (dpl as u64 & 3) << 5) << 40
        | ((handler >> 16) & 0xFFFF) << 48;
    idt[vec * 2] = lo;
    idt[vec * 2 + 1] = handler >> 32;
}

/// Loads the GDT (with the TSS), the IDT and the task register.
pub fn init() {
    // SAFETY: init runs once, before any subject; nothing else accesses
    // the tables concurrently (single CPU, IF = 0).
    unsafe {
        let tss = &mut *TSS.0.get();
        let ist = IST.0.get() as u64;
        for (i, n) in [(0u64, 1usize), (1, 2), (2, 3)] {
            let top = ist + (i + 1) * IST_SIZE as u64;
            // IST n at byte offset 36 + 8 (n-1) = u32 index 9 + 2 (n-1).
            tss[9 + 2 * (n - 1)] = top as u32;
            tss[10 + 2 * (n - 1)] = (top >> 32) as u32;
        }
        // I/O map base beyond the limit: no I/O bitmap, every port traps.
        tss[25] = 104 << 16;
        let base = TSS.0.get() as u64;
        let gdt = &mut *GDT.0.get();
        gdt[5] = 103 | (base & 0xFF_FFFF) << 16 | 0x89 << 40 | ((base >> 24) & 0xFF) << 56;
        gdt[6] = base >> 32;

        let idt = &mut *IDT.0.get();
        let stubs = &raw const trap_stubs as u64;
        for v in 0..256 {
            let ist = match v {
                2 => 1,
                8 => 2,
                18 => 3,
                _ => 0,
            };
            let dpl = if v == 3 { 3 } else { 0 };
            set_gate(idt, v, stubs + 16 * v as u64, ist, dpl);
        }

        let gdtr: [u64; 2] = [
            (GDT.0.get() as u64) << 16 | (7 * 8 - 1),
            (GDT.0.get() as u64) >> 48,
        ];
        let idtr: [u64; 2] = [
            (IDT.0.get() as u64) << 16 | (256 * 16 - 1),
            (IDT.0.get() as u64) >> 48,
        ];
        asm!(
            "lgdt [{g}]",
            "lidt [{i}]",
            "mov ax, 0x10",
            "mov ss, ax",
            "xor eax, eax",
            "mov ds, ax",
            "mov es, ax",
            "mov fs, ax",
            "mov gs, ax",
            "push 0x08",
            "lea rax, [rip + 2f]",
            "push rax",
            "retfq",
            "2:",
            "mov ax, {tss:x}",
            "ltr ax",
            g = in(reg) gdtr.as_ptr(),
            i = in(reg) idtr.as_ptr(),
            tss = in(reg) TSS_SEL,
            out("rax") _,
        );
    }
}

/// Runs the subject whose state is `frame` until its next trap.
pub fn enter(frame: &mut TrapFrame) {
    let end = frame as *mut TrapFrame as u64 + core::mem::size_of::<TrapFrame>() as u64;
    debug_assert!(end.is_multiple_of(16));
    // SAFETY: TSS.RSP0 (u32 index 1..2) is only read by the CPU on the
    // next ring-3 trap; the frame outlives the call and is exclusively
    // borrowed, the stub writes exactly size_of::<TrapFrame>() bytes below
    // `end`. RIP is canonical and CS/SS are the user selectors (checked by
    // every code path that changes them), so iretq cannot fault.
    unsafe {
        let tss = TSS.0.get() as *mut u32;
        tss.add(1).write_volatile(end as u32);
        tss.add(2).write_volatile((end >> 32) as u32);
        enter_subject(frame);
    }
}

/// Enables interrupts, halts until one arrives, disables them again.
pub fn idle() {
    // SAFETY: the stub only toggles IF around hlt; ring-0 interrupts only
    // set a bit in PENDING_IRQS.
    unsafe { idle_wait() }
}

/// Takes the set of vectors that arrived while idle.
pub fn take_pending(vec: u8) -> bool {
    let word = &PENDING_IRQS[vec as usize / 64];
    let bit = 1u64 << (vec % 64);
    word.fetch_and(!bit, Ordering::Relaxed) & bit != 0
}

fn vector_name(v: u64) -> &'static str {
    const NAMES: [&str; 32] = [
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS",
        "#GP", "#PF", "?", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "?", "?", "?", "?", "?", "?",
        "#HV", "#VC", "#SX", "?",
    ];
    NAMES.get(v as usize).copied().unwrap_or("IRQ")
}

/// Name of an exception vector (`#PF` …).
pub fn exception_name(v: u64) -> &'static str {
    vector_name(v)
}

/// Called by the stub for exceptions in ring 0, #DF and #MC: the kernel
/// itself is broken. Reports and exits with 0x11.
#[unsafe(no_mangle)]
extern "C" fn kernel_fault(f: &KernelFrame) -> ! {
    crate::klog!(
        "KERNEL PANIC: exception {} ({}) rip={:#x} cr2={:#x} err={:#x} rsp={:#x} cs={:#x} rflags={:#x}",
        f.vector,
        vector_name(f.vector),
        f.rip,
        cpu::read_cr2(),
        f.error,
        f.rsp,
        f.cs,
        f.rflags
    );
    const N: [&str; 15] = [
        "r15", "r14", "r13", "r12", "r11", "r10", "r9", "r8", "rbp", "rdi", "rsi", "rdx", "rcx",
        "rbx", "rax",
    ];
    crate::kprint!("kernel:  ");
    for (i, n) in N.iter().enumerate() {
        crate::kprint!(" {n}={:#x}", f.gprs[i]);
    }
    crate::kprint!("\n");
    crate::exit_qemu(crate::EXIT_KERNEL_FAILURE)
}
