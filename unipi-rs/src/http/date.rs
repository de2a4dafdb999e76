//! HTTP dates (RFC 9110 §5.6.7): formatting as IMF-fixdate, and parsing of
//! the three formats recipients must accept (IMF-fixdate, RFC 850, asctime).

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;

/// Latest time that still has a four-digit year (9999-12-31T23:59:59Z).
const MAX_UNIX: u64 = 253_402_300_799;

const WEEKDAYS: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const WEEKDAYS_LONG: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
/// Month abbreviations (`Jan` … `Dec`), as HTTP dates and the access log write them.
pub(crate) const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (y, m) = if month <= 2 {
        (year - 1, i64::from(month) + 9)
    } else {
        (year, i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days in `month` (1-12) of `year`.
pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Formats unix seconds as an IMF-fixdate. Times after year 9999 are
/// clamped to its last second.
pub fn format(unix: u64) -> [u8; IMF_FIXDATE_LEN] {
    let t = unix.min(MAX_UNIX) as i64;
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[0..3].copy_from_slice(WEEKDAYS[weekday]);
    two(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[month as usize - 1]);
    let y = year as u32;
    two(&mut out[12..14], y / 100);
    two(&mut out[14..16], y % 100);
    two(&mut out[17..19], (secs / 3600) as u32);
    two(&mut out[20..22], (secs / 60 % 60) as u32);
    two(&mut out[23..25], (secs % 60) as u32);
    out
}

fn two(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0')))
}

fn month_of(s: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.as_slice() == s)
        .map(|i| i as u32 + 1)
}

fn time_of(s: &[u8]) -> Option<(u32, u32, u32)> {
    if s.len() != 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&s[0..2])?, digits(&s[3..5])?, digits(&s[6..8])?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some((h, m, sec.min(59)))
}

fn assemble(year: i64, month: u32, day: u32, (h, m, s): (u32, u32, u32)) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + i64::from(h * 3600 + m * 60 + s))
}

/// Parses an HTTP-date in any of the three formats, surrounding whitespace
/// allowed. Returns unix seconds, or `None` for anything invalid (the caller
/// then ignores the header, as RFC 9110 requires). `now` (unix seconds) is
/// used to place two-digit RFC 850 years: a year more than 50 years in the
/// future means the century before.
pub fn parse(value: &[u8], now: u64) -> Option<i64> {
    let v = value.trim_ascii();
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    if v.len() == IMF_FIXDATE_LEN && v[3] == b',' {
        if !WEEKDAYS.iter().any(|d| d.as_slice() == &v[0..3])
            || &v[4..5] != b" "
            || v[7] != b' '
            || v[11] != b' '
            || v[16] != b' '
            || &v[25..] != b" GMT"
        {
            return None;
        }
        let day = digits(&v[5..7])?;
        let month = month_of(&v[8..11])?;
        let year = digits(&v[12..16])?;
        return assemble(i64::from(year), month, day, time_of(&v[17..25])?);
    }
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    if let Some(comma) = v.iter().position(|b| *b == b',') {
        let name = &v[..comma];
        if !WEEKDAYS_LONG.iter().any(|d| d.as_bytes() == name) {
            return None;
        }
        let rest = &v[comma..];
        if rest.len() != 24
            || &rest[..2] != b", "
            || rest[4] != b'-'
            || rest[8] != b'-'
            || rest[11] != b' '
            || &rest[20..] != b" GMT"
        {
            return None;
        }
        let day = digits(&rest[2..4])?;
        let month = month_of(&rest[5..8])?;
        let yy = i64::from(digits(&rest[9..11])?);
        let this_year = civil_from_days((now.min(MAX_UNIX) / 86_400) as i64).0;
        let mut year = this_year - this_year.rem_euclid(100) + yy;
        if year > this_year + 50 {
            year -= 100;
        }
        return assemble(year, month, day, time_of(&rest[12..20])?);
    }
    // asctime: "Sun Nov  6 08:49:37 1994"
    if v.len() == 24 && v[3] == b' ' && v[7] == b' ' && v[10] == b' ' && v[19] == b' ' {
        if !WEEKDAYS.iter().any(|d| d.as_slice() == &v[0..3]) {
            return None;
        }
        let month = month_of(&v[4..7])?;
        let day = if v[8] == b' ' {
            digits(&v[9..10])?
        } else {
            digits(&v[8..10])?
        };
        let year = digits(&v[20..24])?;
        return assemble(i64::from(year), month, day, time_of(&v[11..19])?);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT

    #[test]
    fn formats() {
        assert_eq!(&format(T), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&format(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&format(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&format(1_700_000_000), b"Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(&format(u64::MAX), b"Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn parses_all_three_formats() {
        let now = 1_700_000_000;
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT", now), Some(T as i64));
        assert_eq!(
            parse(b"  Sun, 06 Nov 1994 08:49:37 GMT ", now),
            Some(T as i64)
        );
        assert_eq!(
            parse(b"Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(T as i64)
        );
        assert_eq!(parse(b"Sun Nov  6 08:49:37 1994", now), Some(T as i64));
        assert_eq!(
            parse(b"Sun Nov 16 08:49:37 1994", now),
            Some(T as i64 + 864_000)
        );
        // Two-digit years: 30 → 2030 (within 50 years), 74 → 1974 (2074
        // would be more than 50 years ahead of 2023).
        assert_eq!(
            parse(b"Friday, 01-Jan-30 00:00:00 GMT", now),
            Some(1_893_456_000)
        );
        assert_eq!(
            parse(b"Tuesday, 01-Jan-74 00:00:00 GMT", now),
            Some(126_230_400)
        );
        // Before 1970 is representable.
        assert_eq!(parse(b"Wed, 31 Dec 1969 23:59:59 GMT", now), Some(-1));
    }

    #[test]
    fn round_trip() {
        let mut t = 0u64;
        while t < 4_000_000_000 {
            assert_eq!(parse(&format(t), 0), Some(t as i64), "{t}");
            t += 7_777_777;
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b""[..],
            b"yesterday",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 31 Feb 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 06 Nov 1994 08:60:00 GMT",
            b"Xyz, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Foo 1994 08:49:37 GMT",
            b"Sun, 6 Nov 1994 08:49:37 GMT",
            b"Sun,  6 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 19x4 08:49:37 GMT",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Funday, 06-Nov-94 08:49:37 GMT",
            b"Sun Nov 6 08:49:37 1994",
            b"Sun Nov  0 08:49:37 1994",
            b"\xff\xfe",
            b"Sun, 06 Nov 1994 08:49:37 GMT\x00",
        ] {
            assert_eq!(parse(bad, 1_700_000_000), None, "{:?}", bad);
        }
    }
}

/// Formats unix seconds as an HTTP date in log lines.
pub struct Display(pub u64);

impl core::fmt::Display for Display {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(core::str::from_utf8(&format(self.0)).unwrap_or("?"))
    }
}
