//! The ELF entry point and the boot sequence.

use crate::{Runtime, clock, console, cpu, exit, heap, regions};
use core::arch::global_asm;
use log::{error, info};
use muen_abi::bootinfo;
use muen_abi::sinfo::{self, ResourceData, Sinfo};

// Muen enters here with RDI = boot info and RSP = top of `ram` - 8, which is
// the alignment of a function entry after `call` (RSP ≡ 8 mod 16), so the
// stub can jump straight into Rust. RBP = 0 terminates frame-pointer walks.
// .bss is zeroed first: the `|fill` region already is, but a loader that
// copies whole file pages would leave bytes in its first page.
global_asm!(
    ".pushsection .text.start,\"ax\",@progbits",
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "    cld",
    "    mov r8, rdi",
    "    lea rdi, [rip + __bss_start]",
    "    lea rcx, [rip + __bss_end]",
    "    sub rcx, rdi",
    "    xor eax, eax",
    "    rep stosb",
    "    mov rdi, r8",
    "    xor ebp, ebp",
    "    jmp {start}",
    ".size _start, . - _start",
    ".popsection",
    start = sym rust_start,
);

unsafe extern "Rust" {
    /// Defined by the application with [`crate::subject_main!`].
    fn __muen_subject_main(rt: &mut Runtime) -> i32;
}

/// Size of the stack below the top of `ram` (the heap ends here).
pub const STACK_SIZE: u64 = 1 << 20;

extern "C" fn rust_start(boot_info_va: u64) -> ! {
    // 1. CPU tables first, so that any fault from here on is reported.
    cpu::init();

    // 2. sinfo: everything else is found through it.
    // SAFETY: Muen maps the sinfo region read-only at SINFO_VA for the whole
    // life of the subject (docs/muen-abi.md §1.1) and never changes it.
    let page = unsafe { regions::static_bytes(sinfo::SINFO_VA, sinfo::SINFO_SIZE) };
    let sinfo = match Sinfo::parse(page) {
        Ok(s) => s,
        Err(e) => {
            console::early(format_args!(
                "unipi: FATAL: subject info page unusable: {e:?}\n"
            ));
            exit::halt();
        }
    };

    // 3. Console on the debuglog channel (Solo5 uses the scheduling start as epoch).
    console::init(&sinfo);
    info!(
        "unipi-rs subject runtime {} on Muen (sinfo {:?})",
        crate::VERSION,
        sinfo.version()
    );

    // 4. Boot info: command line and end of RAM.
    if boot_info_va != bootinfo::BOOT_INFO_VA {
        error!(
            "RDI = {boot_info_va:#x}, expected the boot info at {:#x}",
            bootinfo::BOOT_INFO_VA
        );
    }
    // SAFETY: the boot info page is mapped read-only at BOOT_INFO_VA (cspec
    // `boot_info`, docs/muen-abi.md §6.1) and never changes.
    let bi_page =
        unsafe { regions::static_bytes(bootinfo::BOOT_INFO_VA, bootinfo::BOOT_INFO_SIZE) };
    let boot = match bootinfo::parse(bi_page) {
        Ok(b) => b,
        Err(e) => {
            error!("boot info unusable ({e:?}); continuing with an empty command line");
            bootinfo::BootInfo {
                mem_size: 0,
                kernel_end: 0,
                cmdline: "",
            }
        }
    };

    log_sinfo(&sinfo);
    info!("command line: '{}'", boot.cmdline);

    // 5. Heap over `ram` below the stack.
    heap::init(&sinfo, boot.mem_size, STACK_SIZE);

    // 6. Entropy is required for TLS: refuse to run without it.
    let rng = muen_baremetal::cpu::rng_support();
    if !rng.rdseed && !rng.rdrand {
        error!("the CPU has neither RDSEED nor RDRAND: no entropy source, refusing to start");
        exit::exit(1);
    }

    // 7. Clock (waits for the time subject to publish time_info).
    let mut clock = clock::Clock::init(&sinfo);
    info!(
        "clock: Muen time_info, TSC {} Hz, wall clock {}",
        clock.tsc_hz(),
        clock::Iso8601(clock.unix_time_us() / 1_000_000)
    );

    let mut rt = Runtime { sinfo, boot, clock };
    // SAFETY: the symbol is defined by the application through
    // `subject_main!` with exactly this signature.
    let status = unsafe { __muen_subject_main(&mut rt) };
    exit::exit(status)
}

struct ContentFmt(sinfo::Content, Option<u8>);

impl core::fmt::Display for ContentFmt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match (self.0, self.1) {
            (sinfo::Content::Fill, Some(p)) => write!(f, " fill {p:#04x}"),
            (sinfo::Content::File, _) => f.write_str(" file"),
            _ => Ok(()),
        }
    }
}

fn log_sinfo(sinfo: &Sinfo<'_>) {
    info!(
        "subject '{}', TSC {} kHz, {} resources:",
        sinfo.name(),
        sinfo.tsc_khz(),
        sinfo.resource_count()
    );
    for r in sinfo.resources() {
        match r {
            Ok(r) => match r.data {
                ResourceData::Memory(m) => info!(
                    "  memory  {:<24} {:#013x}-{:#013x} {}{}{} {:?}{}",
                    r.name,
                    m.address,
                    m.address.wrapping_add(m.size).wrapping_sub(1),
                    "r",
                    if m.writable { "w" } else { "-" },
                    if m.executable { "x" } else { "-" },
                    m.kind,
                    ContentFmt(m.content, m.pattern)
                ),
                ResourceData::Event(n) => info!("  event   {:<24} {n}", r.name),
                ResourceData::Vector(v) => info!("  vector  {:<24} {v}", r.name),
                other => info!("  device  {:<24} {other:?}", r.name),
            },
            Err(e) => {
                error!("  invalid resource record: {e:?}");
                break;
            }
        }
    }
}
