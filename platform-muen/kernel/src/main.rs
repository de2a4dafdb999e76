//! The minimal kernel: hosts Muen native subjects under QEMU so the same
//! subject binary runs here and on Muen.
//!
//! See `docs/kernel.md` for the design and the contract with subjects and
//! the packer. Module map: `boot` (entry stubs), `cpu`/`phys`/`trap`
//! (the unsafe edges: instructions, physical memory, descriptor tables and
//! the switch to ring 3), `paging`, `frames`, `apic`, `rtc`, `serial`,
//! `decode` + `vcpu` (instruction emulation and exception delivery, safe),
//! `subject`, `sched`, `peers` (time_info, debuglog), `bridge` + `virtio`
//! + `pci` (network).

#![no_std]
#![no_main]

extern crate alloc;

mod apic;
mod boot;
mod bootinfo;
mod bridge;
mod cpu;
mod decode;
mod frames;
mod paging;
mod pci;
mod peers;
mod phys;
mod rtc;
mod sched;
mod serial;
mod subject;
mod trap;
mod vcpu;
mod virtio;

use alloc::boxed::Box;
use alloc::vec::Vec;
use frames::Frames;
use muen_image::{Image, Peer};
use phys::{KVMA, PAGE};

/// Value written to isa-debug-exit when the kernel itself failed.
pub const EXIT_KERNEL_FAILURE: u32 = 0x11;

#[global_allocator]
static ALLOC: talc::TalcLock<muen_baremetal::RawSpin, talc::source::Manual> =
    talc::TalcLock::new(talc::source::Manual);

static FRAMES: muen_baremetal::Mutex<Option<Frames>> = muen_baremetal::Mutex::new(None);

/// Runs `f` on the frame allocator.
pub fn with_frames<R>(f: impl FnOnce(&mut Frames) -> R) -> R {
    let mut g = FRAMES.lock();
    match g.as_mut() {
        Some(frames) => f(frames),
        None => fatal("frame allocator used before initialisation"),
    }
}

/// Leaves QEMU through isa-debug-exit (port 0xf4) if present, else halts.
pub fn exit_qemu(code: u32) -> ! {
    cpu::outl(0xf4, code);
    cpu::halt_forever()
}

/// Reports a fatal kernel error and exits with [`EXIT_KERNEL_FAILURE`].
pub fn fatal(msg: &str) -> ! {
    klog!("FATAL: {msg}");
    exit_qemu(EXIT_KERNEL_FAILURE)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    klog!("KERNEL PANIC: {info}");
    exit_qemu(EXIT_KERNEL_FAILURE)
}

/// Kernel heap size (bookkeeping only; subject memory comes from frames).
const HEAP_PAGES: u64 = 512;

/// A non-zero random value for channel epochs.
pub fn random_epoch() -> u64 {
    let v = cpu::rdrand().unwrap_or_else(|| {
        // No RDRAND: mix the TSC (still non-zero and different per call).
        let t = cpu::rdtsc();
        t.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (t >> 29)
    });
    if v == 0 { 1 } else { v }
}

/// CPU features the kernel found and enabled.
struct Features {
    nx: bool,
    umip: bool,
    smep: bool,
    rdrand: bool,
}

fn enable_cpu_features() -> Features {
    let (_, _, _, ext_edx) = cpu::cpuid(0x8000_0001, 0);
    let nx = ext_edx & (1 << 20) != 0;
    let max = cpu::cpuid(0, 0).0;
    let (_, ebx7, ecx7, _) = if max >= 7 {
        cpu::cpuid(7, 0)
    } else {
        (0, 0, 0, 0)
    };
    let mut cr4 = cpu::read_cr4();
    cr4 |= 1 << 2; // TSD: rdtsc traps at CPL 3
    if cpu::cpuid(1, 0).3 & (1 << 13) != 0 {
        cr4 |= 1 << 7; // PGE
    }
    if ecx7 & (1 << 2) != 0 {
        cr4 |= 1 << 11; // UMIP
    }
    if ebx7 & (1 << 7) != 0 {
        cr4 |= 1 << 20; // SMEP
    }
    // SMAP stays off: QEMU TCG pops the stack of a ring-3 `lret`/`iret`
    // (which then #GP and are emulated) with supervisor accesses, so SMAP
    // would turn them into bogus #PFs. The kernel never dereferences
    // subject addresses anyway (everything goes through the page walk).
    let _ = ebx7 & (1 << 20);
    // SAFETY: only bits the CPU reports; the kernel never executes user
    // pages (SMEP) and keeps PAE/OSFXSR set.
    unsafe {
        cpu::write_cr4(cr4);
        cpu::write_cr0(cpu::read_cr0() | 1 << 16); // WP
    }
    if cpu::cpuid(1, 0).3 & (1 << 11) != 0 {
        // SAFETY: IA32_SYSENTER_CS exists (CPUID.1:EDX.SEP). With 0 there,
        // `sysenter` from a subject raises #GP (emulated: the subject is
        // stopped) instead of entering ring 0 at whatever SYSENTER_EIP a
        // boot loader left behind. The kernel itself never uses sysenter.
        unsafe { cpu::wrmsr(0x174, 0) };
    }
    Features {
        nx,
        umip: ecx7 & (1 << 2) != 0,
        smep: ebx7 & (1 << 7) != 0,
        rdrand: cpu::cpuid(1, 0).2 & (1 << 30) != 0,
    }
}

/// Entered from the boot stub in long mode on the boot stack.
#[unsafe(no_mangle)]
pub extern "C" fn kmain(proto: u32, info: u64) -> ! {
    serial::init();
    let map = bootinfo::parse(proto, info).unwrap_or_else(|e| fatal(e));
    let layout = paging::kernel_layout();
    let image_pa = (layout.end - KVMA).div_ceil(PAGE) * PAGE;
    if image_pa + 96 >= 1 << 32
        || phys::early_read_u64(image_pa) != u64::from_le_bytes(muen_image::MAGIC)
    {
        fatal(
            "no system image appended to the kernel (expected 'UNIPISYS' at the page after __kernel_end)",
        );
    }
    let total = phys::early_read_u64(image_pa + 16);
    let image_end = image_pa.saturating_add(total).div_ceil(PAGE) * PAGE;
    if !map.iter().any(|(s, e)| s <= image_pa && image_end <= e) {
        fatal("system image does not lie in RAM (truncated load?)");
    }
    phys::set_image(image_pa, image_end);

    let mut frames = Frames::new(&map, image_end);
    let heap = frames
        .alloc(HEAP_PAGES, PAGE)
        .unwrap_or_else(|_| fatal("no memory for the kernel heap"));
    if heap + HEAP_PAGES * PAGE > 1 << 32 {
        fatal("kernel heap above 4 GiB");
    }
    // SAFETY: the heap range is RAM (from the memory map) above the image,
    // mapped by the boot direct map and never handed out again.
    unsafe {
        ALLOC.lock().claim(
            (phys::DIRECT_MAP + heap) as *mut u8,
            (HEAP_PAGES * PAGE) as usize,
        );
    }
    phys::set_managed(frames.cursor(), frames.top());
    *FRAMES.lock() = Some(frames);

    let features = enable_cpu_features();
    paging::init_kernel(&map, features.nx)
        .unwrap_or_else(|_| fatal("no memory for the kernel page tables"));
    trap::init();
    apic::disable_pic();
    let mut lapic = apic::Lapic::init().unwrap_or_else(|e| fatal(e));
    let cal = apic::calibrate(&lapic, 3).unwrap_or_else(|e| fatal(e));
    lapic.timer_hz = cal.timer_hz;
    let tsc_hz = cal.tsc_hz;
    let rtc = rtc::read();

    // SAFETY: [image_pa, image_pa + total) is RAM (checked against the
    // memory map), mapped by the direct map, outside every range the
    // frame allocator hands out, and never written by anyone.
    let bytes: &'static [u8] = unsafe {
        core::slice::from_raw_parts((phys::DIRECT_MAP + image_pa) as *const u8, total as usize)
    };
    let image = match Image::parse(bytes) {
        Ok(i) => i,
        Err(e) => {
            klog!("FATAL: system image rejected: {e}");
            exit_qemu(EXIT_KERNEL_FAILURE)
        }
    };

    let unix = rtc.map(|d| d.unix()).unwrap_or(0);
    match rtc {
        Some(d) => klog!(
            "unipi-rs minimal kernel {}, boot={}, {} MiB RAM, TSC {}.{:03} MHz, RTC {}",
            env!("CARGO_PKG_VERSION"),
            bootinfo::proto_name(proto),
            map.total() >> 20,
            tsc_hz / 1_000_000,
            tsc_hz / 1000 % 1000,
            d
        ),
        None => klog!(
            "unipi-rs minimal kernel {}, boot={}, {} MiB RAM, TSC {}.{:03} MHz, RTC absent (time_info starts at 1970; use -M microvm,rtc=on)",
            env!("CARGO_PKG_VERSION"),
            bootinfo::proto_name(proto),
            map.total() >> 20,
            tsc_hz / 1_000_000,
            tsc_hz / 1000 % 1000
        ),
    }
    let on = |b: bool| if b { "on" } else { "off" };
    klog!(
        "{} APIC id {}, timer {} MHz; NX {}, UMIP {}, SMEP {}, RDRAND {}; image {} KiB at {:#x}, {} subject(s), minor frame {} us",
        lapic.mode(),
        lapic.id(),
        cal.timer_hz / 1_000_000,
        on(features.nx),
        on(features.umip),
        on(features.smep),
        on(features.rdrand),
        total >> 10,
        image_pa,
        image.subject_count(),
        image.settings().minor_frame_us
    );

    // Shared physical regions: contiguous, zeroed.
    let mut regions = Vec::new();
    for p in image.physicals() {
        let pa = with_frames(|f| f.alloc(p.size / PAGE, PAGE))
            .unwrap_or_else(|_| fatal("out of memory for shared regions"));
        phys::fill(pa, p.size, 0);
        regions.push(subject::PhysRegion {
            name: p.name,
            pa,
            size: p.size,
            peer: p.peer,
        });
    }

    // time_info: published before any subject runs.
    let tsc_now = cpu::rdtsc();
    let base = (unix as u128 * 1_000_000)
        .saturating_sub(tsc_now as u128 * 1_000_000 / tsc_hz as u128) as u64;
    let info = muen_abi::time::TimeInfo {
        tsc_time_base: base.max(1),
        tsc_tick_rate_hz: tsc_hz,
        timezone_microsecs: 0,
    };
    peers::publish_time(&regions, &info);

    let tsc_khz = (tsc_hz / 1000).min(u32::MAX as u64) as u32;
    let mut subjects = Vec::new();
    for (i, s) in image.subjects().enumerate() {
        let subj = subject::Subject::build(&image, &s, &regions, image_pa, tsc_khz)
            .unwrap_or_else(|_| fatal("out of memory building subject address spaces"));
        klog!(
            "subject {} {}: entry {:#x} stack {:#x}; regions: {}",
            i,
            subj.name,
            s.rip,
            s.rsp,
            subj.region_map()
        );
        subjects.push(subj);
    }

    let logs = peers::DebugLogs::new(&regions);
    let has_net = regions.iter().any(|r| {
        matches!(
            r.peer,
            Peer::NetToSubject { .. } | Peer::NetFromSubject { .. }
        )
    });
    let nic: Option<Box<dyn bridge::Nic>> = virtio::probe();
    let bridge = if has_net || nic.is_some() {
        let b = bridge::Bridge::new(&regions, nic, random_epoch);
        klog!(
            "bridge: {} subject port(s), NIC: {}",
            b.port_count(),
            b.nic().unwrap_or("none")
        );
        Some(b)
    } else {
        None
    };
    let free = with_frames(|f| f.free());
    klog!(
        "{} debuglog channel(s) forwarded; {} MiB free for demand paging",
        logs.len(),
        free >> 20
    );
    let demand: u64 = subjects.iter().map(|s| s.space.demand_bytes()).sum();
    if demand > free {
        klog!(
            "warning: demand-paged regions add up to {} MiB, more than is free: a subject that touches all of its memory can leave another without (docs/kernel.md, Honest limits)",
            demand >> 20
        );
    }

    let mut k = sched::Kernel::new(subjects, lapic, tsc_hz, image.settings(), logs, bridge);
    k.run()
}
