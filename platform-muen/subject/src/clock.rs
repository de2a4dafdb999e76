//! Time as a Solo5 unikernel sees it on Muen (docs/muen-abi.md §2.4, §2.5): the
//! monotonic clock advances with the scheduling plan (the start of the
//! current minor frame, plus a minimal step per call so it never stands
//! still), and wall-clock time adds the `tsc_time_base` published in
//! `time_info`. `rdtsc` is never used: on Muen it traps and returns the end
//! of the current minor frame.

use core::fmt;
use muen_abi::sched::SchedInfoPage;
use muen_abi::sinfo::{self, Sinfo};
use muen_abi::time::{MonotonicClock, TimeInfo, TimeInfoPage};

fn sched_page() -> SchedInfoPage {
    // SAFETY: Muen maps the scheduling info page read-only at SCHED_INFO_VA
    // for every subject (docs/muen-abi.md §1.1); the kernel writes it between
    // minor frames and SchedInfoPage only reads it with volatile loads.
    unsafe { SchedInfoPage::new(sinfo::SCHED_INFO_VA as *const u8) }
}

/// `tsc_schedule_start` of the current minor frame (debuglog timestamps,
/// channel epochs).
pub fn sched_start() -> u64 {
    sched_page().start()
}

/// The subject's clock.
pub struct Clock {
    mono: MonotonicClock,
    info: TimeInfo,
}

impl Clock {
    /// Waits until `time_info` is published (as Solo5 does) and starts the
    /// monotonic clock.
    pub fn init(sinfo: &Sinfo<'_>) -> Self {
        let page = match sinfo.memory("time_info") {
            Some(m) if m.size >= 0x1000 && m.address % 0x1000 == 0 => {
                // SAFETY: sinfo says `time_info` is mapped (read-only) here;
                // TimeInfoPage only performs volatile reads.
                unsafe { TimeInfoPage::new(m.address as *const u8) }
            }
            _ => {
                log::error!("no usable 'time_info' region: wall-clock time unknown");
                crate::exit::exit(1);
            }
        };
        let mut waited = false;
        let mut last = sched_start();
        let mut frames = 0u64;
        let info = loop {
            let info = page.read();
            if info.is_valid() {
                break info;
            }
            let s = sched_start();
            if s != last {
                last = s;
                frames += 1;
                if frames == 1000 && !waited {
                    log::warn!("waiting for the time subject to publish time_info");
                    waited = true;
                }
            }
            muen_baremetal::cpu::pause();
        };
        Clock {
            mono: MonotonicClock::new(info.tsc_tick_rate_hz, sched_start()),
            info,
        }
    }

    /// TSC frequency from time_info.
    pub fn tsc_hz(&self) -> u64 {
        self.info.tsc_tick_rate_hz
    }

    /// Monotonic nanoseconds (since TSC 0, like Solo5).
    pub fn now_ns(&mut self) -> u64 {
        self.mono.now_ns(sched_start())
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_time_us(&mut self) -> u64 {
        let ns = self.now_ns();
        muen_abi::time::wall_clock_ns(&self.info, ns) / 1000
    }
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub struct Iso8601(pub u64);

impl fmt::Display for Iso8601 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = (self.0 / 86400) as i64;
        let secs = self.0 % 86400;
        // Civil date from days since 1970-01-01 (proleptic Gregorian).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}
