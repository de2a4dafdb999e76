//! Wall-clock time as the logs write it: RFC 3339 in UTC for syslog
//! headers (RFC 5424 §6.2.3), the Common Log Format's `06/Dec/2026:10:00:00
//! +0000` for access lines. The calendar arithmetic is the HTTP date code's
//! (`http/date.rs`).

use core::fmt;

use crate::http::date::{MONTHS, civil_from_days};

/// Latest time written with a four-digit year (9999-12-31T23:59:59Z); later
/// times are clamped to it.
const MAX_UNIX: u64 = 253_402_300_799;

/// A UTC date and time of day, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Year (1970-9999).
    pub year: u32,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub minute: u32,
    /// Second, 0-59.
    pub second: u32,
}

impl Utc {
    /// The date and time of `unix` seconds since 1970-01-01T00:00:00Z
    /// (clamped to the year 9999).
    pub fn from_unix(unix: u64) -> Utc {
        let t = unix.min(MAX_UNIX) as i64;
        let (year, month, day) = civil_from_days(t.div_euclid(86_400));
        let secs = t.rem_euclid(86_400) as u32;
        Utc {
            year: year as u32,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }

    /// Writes as RFC 3339 `2026-12-06T10:00:00Z`.
    pub fn rfc3339(self) -> impl fmt::Display {
        Rfc3339(self)
    }

    /// Writes as the Common Log Format's `06/Dec/2026:10:00:00 +0000`.
    pub fn clf(self) -> impl fmt::Display {
        Clf(self)
    }
}

struct Rfc3339(Utc);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    }
}

struct Clf(Utc);

impl fmt::Display for Clf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let month = MONTHS
            .get(t.month.wrapping_sub(1) as usize)
            .and_then(|m| core::str::from_utf8(m.as_slice()).ok())
            .unwrap_or("Jan");
        write!(
            f,
            "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
            t.day, t.year, t.hour, t.minute, t.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn formats() {
        // 2026-12-06T10:00:00Z
        let t = Utc::from_unix(1_796_551_200);
        assert_eq!(format!("{}", t.rfc3339()), "2026-12-06T10:00:00Z");
        assert_eq!(format!("{}", t.clf()), "06/Dec/2026:10:00:00 +0000");
        assert_eq!(
            format!("{}", Utc::from_unix(0).rfc3339()),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            format!("{}", Utc::from_unix(u64::MAX).rfc3339()),
            "9999-12-31T23:59:59Z"
        );
        // A leap day.
        assert_eq!(
            format!("{}", Utc::from_unix(951_827_696).clf()),
            "29/Feb/2000:12:34:56 +0000"
        );
    }
}
