//! Local APIC (xAPIC MMIO or x2APIC MSRs), the legacy PIC (remapped and
//! masked) and the calibration of TSC and LAPIC timer against PIT
//! channel 0 by polling latched counts (works on `pc` and `microvm`, which
//! has no port 0x61).

use crate::cpu::{self, inb, outb};
use crate::phys::Mmio;

const REG_ID: u32 = 0x20;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xB0;
const REG_SVR: u32 = 0xF0;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_ERROR: u32 = 0x370;
const REG_INIT_COUNT: u32 = 0x380;
const REG_CUR_COUNT: u32 = 0x390;
const REG_DIVIDE: u32 = 0x3E0;
const LVT_MASKED: u32 = 1 << 16;

/// PIT input clock (Hz).
const PIT_HZ: u64 = 1_193_182;

/// The local APIC of the boot CPU.
pub struct Lapic {
    mmio: Option<Mmio>,
    /// Timer ticks per second (divide-by-1).
    pub timer_hz: u64,
}

impl Lapic {
    /// Finds and enables the local APIC; masks its timer and error LVTs.
    pub fn init() -> Result<Self, &'static str> {
        if cpu::cpuid(1, 0).3 & (1 << 9) == 0 {
            return Err("CPU has no local APIC");
        }
        let base = cpu::rdmsr(0x1B);
        let x2 = base & (1 << 10) != 0;
        let mmio = if x2 {
            None
        } else {
            let pa = base & 0x000F_FFFF_FFFF_F000;
            // SAFETY: the APIC base MSR names the LAPIC register page,
            // which is device memory mapped uncached in the direct map
            // (it is not RAM) and used by nothing else.
            Some(unsafe { Mmio::new(pa, 0x1000) })
        };
        if base & (1 << 11) == 0 {
            // SAFETY: setting the global enable bit keeps the base address.
            unsafe { cpu::wrmsr(0x1B, base | 1 << 11) };
        }
        let l = Lapic { mmio, timer_hz: 0 };
        l.write(REG_TPR, 0);
        l.write(REG_SVR, 0x100 | crate::trap::VEC_SPURIOUS as u32);
        l.write(REG_LVT_ERROR, LVT_MASKED);
        l.write(REG_DIVIDE, 0xB);
        l.write(REG_LVT_TIMER, LVT_MASKED | crate::trap::VEC_TIMER as u32);
        l.write(REG_INIT_COUNT, 0);
        Ok(l)
    }

    fn read(&self, reg: u32) -> u32 {
        match &self.mmio {
            Some(m) => m.read32(reg as u64),
            None => cpu::rdmsr(0x800 + (reg >> 4)) as u32,
        }
    }

    fn write(&self, reg: u32, v: u32) {
        match &self.mmio {
            Some(m) => m.write32(reg as u64, v),
            // SAFETY: x2APIC registers 0x800.. exist in x2APIC mode.
            None => unsafe { cpu::wrmsr(0x800 + (reg >> 4), v as u64) },
        }
    }

    /// "xAPIC" or "x2APIC".
    pub fn mode(&self) -> &'static str {
        if self.mmio.is_some() {
            "xAPIC"
        } else {
            "x2APIC"
        }
    }

    /// APIC id of this CPU.
    pub fn id(&self) -> u32 {
        let v = self.read(REG_ID);
        if self.mmio.is_some() { v >> 24 } else { v }
    }

    /// Signals end of interrupt.
    pub fn eoi(&self) {
        self.write(REG_EOI, 0);
    }

    /// Arms the one-shot timer to fire after `ticks` timer ticks.
    pub fn arm(&self, ticks: u64) {
        self.write(REG_LVT_TIMER, crate::trap::VEC_TIMER as u32);
        self.write(REG_INIT_COUNT, ticks.clamp(1, u32::MAX as u64) as u32);
    }

    /// Stops the timer.
    pub fn disarm(&self) {
        self.write(REG_INIT_COUNT, 0);
    }

    /// Has the timer run down (count reached 0)?
    pub fn expired(&self) -> bool {
        self.read(REG_CUR_COUNT) == 0
    }

    /// Converts TSC ticks to timer ticks.
    pub fn tsc_to_ticks(&self, tsc: u64, tsc_hz: u64) -> u64 {
        (tsc as u128 * self.timer_hz as u128 / tsc_hz.max(1) as u128) as u64
    }
}

/// Remaps the 8259 PICs to vectors 0x30..0x3F and masks every line.
pub fn disable_pic() {
    for (cmd, data, base, cascade) in [(0x20u16, 0x21u16, 0x30u8, 4u8), (0xA0, 0xA1, 0x38, 2)] {
        outb(cmd, 0x11);
        outb(data, base);
        outb(data, cascade);
        outb(data, 0x01);
        outb(data, 0xFF);
    }
}

fn pit_count() -> u16 {
    outb(0x43, 0x00); // latch channel 0
    let lo = inb(0x40) as u16;
    let hi = inb(0x40) as u16;
    hi << 8 | lo
}

/// Result of [`calibrate`].
pub struct Calibration {
    pub tsc_hz: u64,
    pub timer_hz: u64,
}

/// Measures TSC and LAPIC-timer rates against PIT channel 0: three runs
/// of `ms` milliseconds each, the median of each rate wins (a host that
/// deschedules QEMU during one run cannot skew the result).
pub fn calibrate(lapic: &Lapic, ms: u64) -> Result<Calibration, &'static str> {
    let mut tsc = [0u64; 3];
    let mut timer = [0u64; 3];
    for i in 0..3 {
        let c = calibrate_once(lapic, ms)?;
        tsc[i] = c.tsc_hz;
        timer[i] = c.timer_hz;
    }
    tsc.sort_unstable();
    timer.sort_unstable();
    Ok(Calibration {
        tsc_hz: tsc[1],
        timer_hz: timer[1],
    })
}

fn calibrate_once(lapic: &Lapic, ms: u64) -> Result<Calibration, &'static str> {
    outb(0x43, 0x34); // channel 0, lo/hi, mode 2
    outb(0x40, 0xFF);
    outb(0x40, 0xFF);
    lapic.write(REG_LVT_TIMER, LVT_MASKED | crate::trap::VEC_TIMER as u32);
    lapic.write(REG_INIT_COUNT, u32::MAX);
    // Wait for the counter to move, then start on a tick edge.
    let mut last = pit_count();
    let mut spins = 0u32;
    loop {
        let c = pit_count();
        if c != last {
            last = c;
            break;
        }
        spins += 1;
        if spins > 1_000_000 {
            return Err("PIT channel 0 does not count");
        }
    }
    let tsc0 = cpu::rdtsc();
    let apic0 = lapic.read(REG_CUR_COUNT);
    let target = PIT_HZ * ms / 1000;
    let mut ticks = 0u64;
    while ticks < target {
        let c = pit_count();
        let d = if c <= last {
            last - c
        } else {
            last + (0xFFFF - c)
        };
        ticks += d as u64;
        last = c;
    }
    let tsc1 = cpu::rdtsc();
    let apic1 = lapic.read(REG_CUR_COUNT);
    lapic.write(REG_INIT_COUNT, 0);
    // Leave the PIT in one-shot mode with a short count: no more IRQ0 edges.
    outb(0x43, 0x30);
    outb(0x40, 0x01);
    outb(0x40, 0x00);
    let tsc_hz = ((tsc1 - tsc0) as u128 * PIT_HZ as u128 / ticks as u128) as u64;
    let timer_hz = ((apic0.wrapping_sub(apic1)) as u128 * PIT_HZ as u128 / ticks as u128) as u64;
    if tsc_hz < 1_000_000 || timer_hz < 1_000 {
        return Err("TSC or LAPIC timer calibration failed");
    }
    Ok(Calibration { tsc_hz, timer_hz })
}
