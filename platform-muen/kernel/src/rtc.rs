//! The CMOS real-time clock: wall-clock time at boot, and the read-through
//! of ports 0x70/0x71 for subjects.

use crate::cpu::{inb, outb};

/// Reads CMOS register `reg` (NMI stays enabled).
pub fn cmos_read(reg: u8) -> u8 {
    outb(0x70, reg & 0x7F);
    inb(0x71)
}

/// A calendar time (UTC, as QEMU's RTC keeps it by default).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DateTime {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix(&self) -> u64 {
        // Days from civil (Howard Hinnant's algorithm).
        let y = self.year as i64 - if self.month <= 2 { 1 } else { 0 };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = self.month as i64;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + self.day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        (days * 86_400 + self.hour as i64 * 3600 + self.minute as i64 * 60 + self.second as i64)
            .max(0) as u64
    }
}

impl core::fmt::Display for DateTime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn raw() -> [u8; 7] {
    [
        cmos_read(0x00),
        cmos_read(0x02),
        cmos_read(0x04),
        cmos_read(0x07),
        cmos_read(0x08),
        cmos_read(0x09),
        cmos_read(0x32),
    ]
}

/// Reads the RTC (consistent snapshot outside an update cycle). None if
/// no RTC answers (e.g. `-M microvm` without `rtc=on`).
pub fn read() -> Option<DateTime> {
    let mut spins = 0;
    while cmos_read(0x0A) & 0x80 != 0 {
        spins += 1;
        if spins > 100_000 {
            return None;
        }
    }
    let mut a = raw();
    loop {
        let b = raw();
        if a == b {
            break;
        }
        a = b;
    }
    let status_b = cmos_read(0x0B);
    if a.iter().all(|&v| v == 0xFF) {
        return None;
    }
    let bcd = status_b & 0x04 == 0;
    let conv = |v: u8| {
        if bcd {
            (v & 0x0F) as u32 + ((v >> 4) as u32) * 10
        } else {
            v as u32
        }
    };
    let mut hour = conv(a[2] & 0x7F);
    if status_b & 0x02 == 0 && a[2] & 0x80 != 0 {
        hour = (hour % 12) + 12;
    }
    let century = if a[6] != 0 && a[6] != 0xFF {
        conv(a[6])
    } else {
        20
    };
    let dt = DateTime {
        second: conv(a[0]),
        minute: conv(a[1]),
        hour,
        day: conv(a[3]),
        month: conv(a[4]),
        year: century * 100 + conv(a[5]),
    };
    if dt.month == 0
        || dt.month > 12
        || dt.day == 0
        || dt.day > 31
        || dt.hour > 23
        || dt.minute > 59
        || dt.second > 60
    {
        return None;
    }
    Some(dt)
}
