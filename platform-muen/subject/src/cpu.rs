//! The subject's own descriptor tables, as Solo5 sets them up (docs/muen-abi.md
//! §3.1): Muen starts a subject with GDTR/IDTR limit 0 and TR pointing at
//! VA 0, so before the first exception can be delivered the subject needs a
//! GDT (null, 64-bit code 0x08, data 0x10, TSS 0x18), a TSS with IST stacks
//! and an IDT. Every exception vector (0..31) goes to [`exception`] on an IST
//! stack, which reports vector, error code, RIP and CR2 and exits through the
//! exit event: a fault is always fatal for the subject.
//!
//! Interrupt gates never return here, so the handlers can use SSE and the
//! red zone of the interrupted code is never touched (IST stacks).

use core::arch::{asm, global_asm};
use core::ptr::addr_of_mut;

/// 64-bit code segment selector of the runtime's GDT.
pub const CODE_SEL: u16 = 0x08;
/// Data segment selector.
pub const DATA_SEL: u16 = 0x10;
/// TSS selector.
pub const TSS_SEL: u16 = 0x18;
const IST_STACK_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

/// IST1: exceptions. IST2: #DF, NMI, #MC (a fault on IST1 must not reuse it).
static mut IST1: Stack = Stack([0; IST_STACK_SIZE]);
static mut IST2: Stack = Stack([0; IST_STACK_SIZE]);

/// The 64-bit TSS (104 bytes): only the IST pointers matter here.
#[repr(C, packed)]
pub struct Tss {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    /// IST1..IST7 stack tops.
    pub ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
}

impl Tss {
    /// A TSS with no stacks and no I/O permission bitmap.
    pub const fn empty() -> Tss {
        Tss {
            reserved0: 0,
            rsp: [0; 3],
            reserved1: 0,
            ist: [0; 7],
            reserved2: 0,
            reserved3: 0,
            iomap_base: 104,
        }
    }
}

/// The two GDT slots of an available 64-bit TSS descriptor.
pub fn tss_descriptor(base: u64, limit: u64) -> [u64; 2] {
    let low = (limit & 0xffff)
        | (base & 0xff_ffff) << 16
        | 0x89 << 40 // present, 64-bit available TSS
        | ((limit >> 16) & 0xf) << 48
        | ((base >> 24) & 0xff) << 56;
    [low, base >> 32]
}

static mut TSS: Tss = Tss::empty();

/// null, code64 (0x08), data (0x10), TSS (0x18, two slots).
static mut GDT: [u64; 5] = [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0, 0];

/// 32 interrupt gates, 16 bytes each.
static mut IDT: [[u64; 2]; 32] = [[0; 2]; 32];

#[repr(C, packed)]
struct TablePointer {
    limit: u16,
    base: u64,
}

unsafe extern "C" {
    /// Start of the 32 exception entry stubs (16 bytes apart).
    static exception_stubs: u8;
}

const STUB_SIZE: u64 = 16;

// One 16-byte stub per vector: push a zero error code where the CPU pushes
// none, push the vector number, jump to the common path. The common path
// passes a pointer to [vector, error, rip, cs, rflags, rsp, ss] to Rust on a
// 16-byte aligned stack. It never returns.
global_asm!(
    ".pushsection .text.exceptions,\"ax\",@progbits",
    ".balign 16",
    ".globl exception_stubs",
    "exception_stubs:",
    ".set vec, 0",
    ".rept 32",
    "    .balign 16",
    "    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)",
    "    .else",
    "    push 0",
    "    .endif",
    "    push vec",
    "    jmp {common}",
    "    .set vec, vec + 1",
    ".endr",
    ".popsection",
    common = sym exception_common,
);

#[unsafe(naked)]
extern "C" fn exception_common() -> ! {
    core::arch::naked_asm!(
        "cld",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {handler}",
        "ud2",
        handler = sym exception,
    )
}

/// What the CPU (and the stub) pushed.
#[repr(C)]
struct Frame {
    vector: u64,
    error: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

const NAMES: [&str; 32] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved",
    "#MF x87 floating point",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD floating point",
    "#VE virtualization",
    "#CP control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved",
];

/// Reads CR2 (the faulting address of the last #PF). On Muen a native
/// subject runs at CPL 0 and may read it; the minimal kernel emulates it.
fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

extern "C" fn exception(frame: &Frame) -> ! {
    let vector = frame.vector as usize;
    let name = NAMES.get(vector).copied().unwrap_or("?");
    let cr2 = if vector == 14 { cr2() } else { 0 };
    crate::console::emergency(format_args!(
        "unipi: FATAL: exception {vector} ({name}) at rip={:#x} err={:#x} cr2={cr2:#x} rsp={:#x} rflags={:#x}\n",
        frame.rip, frame.error, frame.rsp, frame.rflags
    ));
    crate::exit::exit_after_fault()
}

fn gate(handler: u64, ist: u8) -> [u64; 2] {
    let low = (handler & 0xffff)
        | (u64::from(CODE_SEL) << 16)
        | (u64::from(ist & 7) << 32)
        | (0x8e << 40) // present, DPL 0, 64-bit interrupt gate
        | ((handler >> 16) & 0xffff) << 48;
    [low, handler >> 32]
}

/// Loads GDT, TSS and IDT and reloads the segment registers.
pub fn init() {
    // SAFETY: single-threaded boot code, before any exception can be taken:
    // nothing else accesses these statics concurrently. The tables live in
    // .bss/.data for the whole life of the subject, as the CPU requires.
    unsafe {
        let ist1 = addr_of_mut!(IST1) as u64 + IST_STACK_SIZE as u64;
        let ist2 = addr_of_mut!(IST2) as u64 + IST_STACK_SIZE as u64;
        let tss = addr_of_mut!(TSS);
        (*tss).ist[0] = ist1;
        (*tss).ist[1] = ist2;

        let gdt = &mut *addr_of_mut!(GDT);
        let [lo, hi] = tss_descriptor(tss as u64, (core::mem::size_of::<Tss>() - 1) as u64);
        gdt[3] = lo;
        gdt[4] = hi;

        let stubs = &raw const exception_stubs as u64;
        let idt = &mut *addr_of_mut!(IDT);
        for (v, entry) in idt.iter_mut().enumerate() {
            let ist = if matches!(v, 2 | 8 | 18) { 2 } else { 1 };
            *entry = gate(stubs + v as u64 * STUB_SIZE, ist);
        }

        load_tables(
            gdt.as_ptr() as u64,
            (core::mem::size_of::<[u64; 5]>() - 1) as u16,
            idt.as_ptr() as u64,
            (core::mem::size_of::<[[u64; 2]; 32]>() - 1) as u16,
        );
    }
}

/// Loads GDTR and IDTR, reloads CS with a far return and DS/ES/SS with the
/// data selector, and loads TR with [`TSS_SEL`] (as Solo5 does at start).
///
/// # Safety
/// Both tables must be valid for these selectors and stay where they are
/// for as long as the CPU uses them; the TSS descriptor must be available
/// (not busy).
pub unsafe fn load_tables(gdt_base: u64, gdt_limit: u16, idt_base: u64, idt_limit: u16) {
    let gdtr = TablePointer {
        limit: gdt_limit,
        base: gdt_base,
    };
    let idtr = TablePointer {
        limit: idt_limit,
        base: idt_base,
    };
    // SAFETY: the caller guarantees valid, stable tables; the sequence only
    // changes descriptor-table registers and segment selectors.
    unsafe {
        asm!(
            "lgdt [{gdtr}]",
            // Reload CS with a far return to the next instruction.
            "push {code}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {data:x}",
            "mov es, {data:x}",
            "mov ss, {data:x}",
            "ltr {tss:x}",
            "lidt [{idtr}]",
            gdtr = in(reg) &gdtr,
            idtr = in(reg) &idtr,
            code = in(reg) u64::from(CODE_SEL),
            data = in(reg) u64::from(DATA_SEL),
            tss = in(reg) u64::from(TSS_SEL),
            tmp = out(reg) _,
        );
    }
}
