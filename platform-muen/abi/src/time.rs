//! The `time_info` page (docs/muen-abi.md §2.5) and Solo5's coarse monotonic
//! clock for Muen.
//!
//! `time_info` layout: `tsc_time_base` u64 @0 (µs since the Unix epoch at
//! TSC 0; 0 = not yet published), `tsc_tick_rate_hz` u64 @8,
//! `timezone_microsecs` i64 @16. The publisher writes the rate and timezone
//! first and the base last.

use core::sync::atomic::{AtomicU64, Ordering, fence};

use crate::bytes::{put_u64, u64_at};

/// Size of the time_info record in bytes.
pub const TIME_INFO_SIZE: usize = 24;
/// Smallest valid TSC rate (1 MHz).
pub const MIN_TICK_RATE_HZ: u64 = 1_000_000;
/// Largest valid TSC rate (100 GHz).
pub const MAX_TICK_RATE_HZ: u64 = 100_000_000_000;
/// Smallest valid timezone offset (−12 h) in µs.
pub const MIN_TIMEZONE_MICROS: i64 = -12 * 3600 * 1_000_000;
/// Largest valid timezone offset (+14 h) in µs.
pub const MAX_TIMEZONE_MICROS: i64 = 14 * 3600 * 1_000_000;

const NANOS_PER_SEC: u128 = 1_000_000_000;
const MICROS_PER_SEC: u128 = 1_000_000;

/// The time_info record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimeInfo {
    /// Microseconds since 1970-01-01T00:00:00 UTC at which the TSC was 0;
    /// 0 means "not yet valid".
    pub tsc_time_base: u64,
    /// TSC frequency in Hz.
    pub tsc_tick_rate_hz: u64,
    /// Offset of local time to UTC in µs.
    pub timezone_microsecs: i64,
}

impl TimeInfo {
    /// Decodes the first 24 bytes of `bytes`; `None` if shorter.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < TIME_INFO_SIZE {
            return None;
        }
        Some(TimeInfo {
            tsc_time_base: u64_at(bytes, 0),
            tsc_tick_rate_hz: u64_at(bytes, 8),
            timezone_microsecs: u64_at(bytes, 16) as i64,
        })
    }

    /// The 24-byte encoding.
    pub fn to_bytes(&self) -> [u8; TIME_INFO_SIZE] {
        let mut out = [0u8; TIME_INFO_SIZE];
        put_u64(&mut out, 0, self.tsc_time_base);
        put_u64(&mut out, 8, self.tsc_tick_rate_hz);
        put_u64(&mut out, 16, self.timezone_microsecs as u64);
        out
    }

    /// Writes the 24-byte encoding to the start of `out`.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than 24 bytes (a programming error).
    pub fn encode(&self, out: &mut [u8]) {
        out[..TIME_INFO_SIZE].copy_from_slice(&self.to_bytes());
    }

    /// Whether the record is published and within Muen's ranges: base ≠ 0,
    /// rate in 1 MHz..=100 GHz, timezone in −12 h..=+14 h.
    pub fn is_valid(&self) -> bool {
        self.tsc_time_base != 0
            && (MIN_TICK_RATE_HZ..=MAX_TICK_RATE_HZ).contains(&self.tsc_tick_rate_hz)
            && (MIN_TIMEZONE_MICROS..=MAX_TIMEZONE_MICROS).contains(&self.timezone_microsecs)
    }

    /// UTC in µs since the Unix epoch at TSC value `tsc`:
    /// `tsc_time_base + tsc × 10⁶ / tsc_tick_rate_hz` (floor), computed in
    /// 128 bits and saturating at `u64::MAX`. A zero rate yields the base.
    pub fn unix_micros_at(&self, tsc: u64) -> u64 {
        if self.tsc_tick_rate_hz == 0 {
            return self.tsc_time_base;
        }
        let offset = u128::from(tsc) * MICROS_PER_SEC / u128::from(self.tsc_tick_rate_hz);
        let total = u128::from(self.tsc_time_base) + offset;
        u64::try_from(total).unwrap_or(u64::MAX)
    }
}

/// Wall-clock time in ns as Solo5 computes it: `tsc_time_base × 1000 +
/// monotonic_ns` (timezone ignored), saturating.
pub fn wall_clock_ns(info: &TimeInfo, monotonic_ns: u64) -> u64 {
    info.tsc_time_base
        .saturating_mul(1000)
        .saturating_add(monotonic_ns)
}

fn field<'a>(ptr: *mut u8, off: usize) -> &'a AtomicU64 {
    debug_assert!(off.is_multiple_of(8) && off < TIME_INFO_SIZE);
    // SAFETY: only called by `TimeInfoPage`/`TimeInfoPublisher`, whose `new`
    // contracts make `ptr..ptr + 24` 8-aligned, mapped for their lifetime
    // (which bounds 'a at every call site) and accessed only atomically.
    unsafe { AtomicU64::from_ptr(ptr.add(off) as *mut u64) }
}

/// Read-only view of a live time_info page (subject side).
#[derive(Debug)]
pub struct TimeInfoPage {
    ptr: *mut u8,
}

impl TimeInfoPage {
    /// Creates the view over the page at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be 8-byte aligned, and 24 bytes at `ptr` must stay mapped
    /// and readable for the lifetime of the view. Concurrent writers must use
    /// aligned 8-byte stores (as [`TimeInfoPublisher`] and Muen's `time` do).
    pub unsafe fn new(ptr: *const u8) -> Self {
        debug_assert!(ptr.cast::<u64>().is_aligned(), "time_info page misaligned");
        TimeInfoPage {
            ptr: ptr as *mut u8,
        }
    }

    /// Reads the record: `tsc_time_base` first with Acquire (the publisher
    /// stores it last with Release), then rate and timezone. If the base is
    /// non-zero, rate and timezone are those published with it (for a
    /// publisher that publishes once, like Muen's `time` subject).
    pub fn read(&self) -> TimeInfo {
        let base = field(self.ptr, 0).load(Ordering::Acquire);
        let rate = field(self.ptr, 8).load(Ordering::Relaxed);
        let tz = field(self.ptr, 16).load(Ordering::Relaxed);
        TimeInfo {
            tsc_time_base: base,
            tsc_tick_rate_hz: rate,
            timezone_microsecs: tz as i64,
        }
    }
}

// SAFETY: only atomic loads through the raw pointer; thread-independent.
unsafe impl Send for TimeInfoPage {}
// SAFETY: `&self` methods only perform atomic loads.
unsafe impl Sync for TimeInfoPage {}

/// Publisher of a time_info page (the `time` subject's role; kernel side).
#[derive(Debug)]
pub struct TimeInfoPublisher {
    ptr: *mut u8,
}

impl TimeInfoPublisher {
    /// Creates the publisher over the page at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be 8-byte aligned, and 24 bytes at `ptr` must stay mapped
    /// and writable for the lifetime of the publisher, with no Rust
    /// references to them held anywhere.
    pub unsafe fn new(ptr: *mut u8) -> Self {
        debug_assert!(ptr.cast::<u64>().is_aligned(), "time_info page misaligned");
        TimeInfoPublisher { ptr }
    }

    /// Publishes `info`: rate and timezone first, a Release fence, then
    /// `tsc_time_base` last (Release).
    pub fn publish(&mut self, info: &TimeInfo) {
        field(self.ptr, 8).store(info.tsc_tick_rate_hz, Ordering::Relaxed);
        field(self.ptr, 16).store(info.timezone_microsecs as u64, Ordering::Relaxed);
        fence(Ordering::Release);
        field(self.ptr, 0).store(info.tsc_time_base, Ordering::Release);
    }
}

// SAFETY: only atomic stores through the raw pointer; thread-independent.
unsafe impl Send for TimeInfoPublisher {}

/// Solo5-on-Muen monotonic clock (§2.5), as pure logic.
///
/// Time is derived from `tsc_schedule_start` only (no RDTSC): when the
/// scheduling info shows a new minor frame, "now" jumps to that frame's start
/// TSC; otherwise every call advances "now" by `min_delta = ceil(hz / 10⁹)`
/// ticks (≥ 1 ns). The result is nanoseconds since TSC 0,
/// `floor(tsc × 10⁹ / hz)` computed exactly in 128 bits (no accumulated
/// rounding, unlike Solo5's 32.32 fixed point), so precision is 1 ns and the
/// value is exact for any TSC below 2⁶⁴. The clock is strictly increasing:
/// a frame start that is not ahead of the current "now" (a repeated or
/// backwards value) only adds `min_delta`. Saturates at `u64::MAX` ns
/// (≈ 584 years).
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    hz: u64,
    min_delta: u64,
    last_start: u64,
    tsc: u64,
}

impl MonotonicClock {
    /// A clock for a TSC of `tsc_hz` Hz (0 is treated as 1), starting at the
    /// frame start `sched_start`.
    pub fn new(tsc_hz: u64, sched_start: u64) -> Self {
        let hz = tsc_hz.max(1);
        MonotonicClock {
            hz,
            min_delta: hz.div_ceil(1_000_000_000),
            last_start: sched_start,
            tsc: sched_start,
        }
    }

    /// The TSC rate in Hz used for conversion.
    pub fn tsc_hz(&self) -> u64 {
        self.hz
    }

    /// Ticks added per call within one minor frame.
    pub fn min_delta(&self) -> u64 {
        self.min_delta
    }

    /// The TSC value corresponding to the last returned time.
    pub fn current_tsc(&self) -> u64 {
        self.tsc
    }

    /// Converts a TSC value to ns since TSC 0 (floor, saturating).
    pub fn tsc_to_ns(&self, tsc: u64) -> u64 {
        let ns = u128::from(tsc) * NANOS_PER_SEC / u128::from(self.hz);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// The current time in ns since TSC 0, given the current
    /// `tsc_schedule_start`.
    pub fn now_ns(&mut self, sched_start: u64) -> u64 {
        if sched_start != self.last_start && sched_start > self.tsc {
            self.tsc = sched_start;
        } else {
            self.tsc = self.tsc.saturating_add(self.min_delta);
        }
        self.last_start = sched_start;
        self.tsc_to_ns(self.tsc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;

    #[test]
    fn decode_encode() {
        let ti = TimeInfo {
            tsc_time_base: 1_700_000_000_000_000,
            tsc_tick_rate_hz: 2_111_994_000,
            timezone_microsecs: -3600 * 1_000_000,
        };
        let b = ti.to_bytes();
        assert_eq!(TimeInfo::decode(&b), Some(ti));
        assert_eq!(TimeInfo::decode(&b[..23]), None);
        assert!(ti.is_valid());
        assert!(
            !TimeInfo {
                tsc_time_base: 0,
                ..ti
            }
            .is_valid()
        );
        assert!(
            !TimeInfo {
                tsc_tick_rate_hz: 999_999,
                ..ti
            }
            .is_valid()
        );
        assert!(
            !TimeInfo {
                tsc_tick_rate_hz: MAX_TICK_RATE_HZ + 1,
                ..ti
            }
            .is_valid()
        );
        assert!(
            !TimeInfo {
                timezone_microsecs: MAX_TIMEZONE_MICROS + 1,
                ..ti
            }
            .is_valid()
        );
        assert!(
            !TimeInfo {
                timezone_microsecs: MIN_TIMEZONE_MICROS - 1,
                ..ti
            }
            .is_valid()
        );
    }

    #[test]
    fn unix_micros() {
        let ti = TimeInfo {
            tsc_time_base: 1_000_000,
            tsc_tick_rate_hz: 2_000_000_000,
            timezone_microsecs: 0,
        };
        assert_eq!(ti.unix_micros_at(0), 1_000_000);
        assert_eq!(ti.unix_micros_at(2_000_000_000), 2_000_000);
        assert_eq!(ti.unix_micros_at(1999), 1_000_000);
        assert_eq!(ti.unix_micros_at(2000), 1_000_001);
        // No overflow for the largest TSC: 2^64 / 2e9 s ≈ 292 years.
        let big = ti.unix_micros_at(u64::MAX);
        assert_eq!(
            big,
            1_000_000 + (u128::from(u64::MAX) * 1_000_000 / 2_000_000_000) as u64
        );
        // Slow TSC and huge base saturate instead of overflowing.
        let slow = TimeInfo {
            tsc_time_base: u64::MAX - 5,
            tsc_tick_rate_hz: 1,
            timezone_microsecs: 0,
        };
        assert_eq!(slow.unix_micros_at(u64::MAX), u64::MAX);
        let zero = TimeInfo {
            tsc_tick_rate_hz: 0,
            ..ti
        };
        assert_eq!(zero.unix_micros_at(12345), 1_000_000);
        assert_eq!(wall_clock_ns(&ti, 5), 1_000_000_005);
        assert_eq!(wall_clock_ns(&slow, 5), u64::MAX);
    }

    #[repr(align(4096))]
    struct Page([u8; 4096]);

    #[test]
    fn publish_and_read() {
        let mut page = Box::new(Page([0; 4096]));
        let p = page.0.as_mut_ptr();
        // SAFETY: page-aligned heap page that outlives both views and is only
        // accessed through them.
        let (mut publ, view) = unsafe { (TimeInfoPublisher::new(p), TimeInfoPage::new(p)) };
        assert_eq!(view.read(), TimeInfo::default());
        let ti = TimeInfo {
            tsc_time_base: 42,
            tsc_tick_rate_hz: 3_000_000_000,
            timezone_microsecs: -5,
        };
        publ.publish(&ti);
        assert_eq!(view.read(), ti);
        drop(page);
    }

    #[test]
    fn monotonic_frozen_within_frame_plus_min_delta() {
        // 2.5 GHz: min_delta = 3 ticks.
        let hz = 2_500_000_000;
        let mut c = MonotonicClock::new(hz, 1_000_000);
        assert_eq!(c.min_delta(), 3);
        let t1 = c.now_ns(1_000_000);
        let t2 = c.now_ns(1_000_000);
        let t3 = c.now_ns(1_000_000);
        assert_eq!(c.current_tsc(), 1_000_009);
        assert_eq!(t1, c.tsc_to_ns(1_000_003));
        assert!(t1 < t2 && t2 < t3);
        assert!(t3 - t1 <= 3);
        // New minor frame: jump to its start.
        let t4 = c.now_ns(5_000_000);
        assert_eq!(t4, 2_000_000); // 5e6 ticks at 2.5 GHz = 2 ms
        let t5 = c.now_ns(5_000_000);
        assert_eq!(t5, c.tsc_to_ns(5_000_003));
        // A backwards or stale frame start never makes time go back.
        let t6 = c.now_ns(4_000_000);
        assert!(t6 > t5);
        let t7 = c.now_ns(5_000_004); // changed but not ahead of "now" + ...
        assert!(t7 > t6);
    }

    #[test]
    fn monotonic_slow_and_fast_rates() {
        // 1 MHz: min_delta 1 tick = 1000 ns.
        let mut c = MonotonicClock::new(1_000_000, 0);
        assert_eq!(c.min_delta(), 1);
        assert_eq!(c.now_ns(0), 1000);
        assert_eq!(c.now_ns(0), 2000);
        // Zero rate does not divide by zero.
        let mut z = MonotonicClock::new(0, 7);
        assert_eq!(z.tsc_hz(), 1);
        assert_eq!(z.now_ns(7), 8_000_000_000);
        // Decades of uptime at 5 GHz: exact, no overflow.
        let mut f = MonotonicClock::new(5_000_000_000, 0);
        let thirty_years_ticks = 5_000_000_000u64 * 3600 * 24 * 365 * 30;
        let ns = f.now_ns(thirty_years_ticks);
        assert_eq!(ns, 3600 * 24 * 365 * 30 * 1_000_000_000u64);
        // Saturation at the end of the TSC range.
        let mut s = MonotonicClock::new(1, u64::MAX - 1);
        assert_eq!(s.now_ns(u64::MAX - 1), u64::MAX);
        assert_eq!(s.now_ns(u64::MAX - 1), u64::MAX);
    }

    #[test]
    fn monotonic_never_decreases_random() {
        let mut c = MonotonicClock::new(3_000_000_000, 100);
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut start = 100u64;
        let mut last = 0;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 4 {
                0 => start = start.wrapping_add(x % 1_000_000),
                1 => start = start.saturating_sub(x % 1000),
                _ => {}
            }
            let now = c.now_ns(start);
            assert!(now > last || now == u64::MAX);
            last = now;
        }
    }
}
