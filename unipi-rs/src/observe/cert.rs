//! The validity period of an X.509 certificate (RFC 5280 §4.1.2.5), for
//! the certificate-expiry metric and the boot-time warning.
//!
//! Only the path to `validity` is walked — `Certificate` → `tbsCertificate`
//! → optional `[0] version`, `serialNumber`, `signature`, `issuer` →
//! `validity` — with strict DER lengths; nothing else is interpreted.
//! Written by hand: rustls-webpki keeps a certificate's validity private,
//! and no `no_std` X.509 crate is in the tree (x509-cert would add `der`,
//! `spki` and `const-oid` for one field).

use core::fmt;

use crate::http::date::{days_from_civil, days_in_month};

/// Why a certificate's validity could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// The DER ends inside an element.
    Truncated,
    /// An element is not what RFC 5280 puts there.
    UnexpectedTag {
        /// The tag found.
        found: u8,
    },
    /// A length is not in DER form (indefinite, or longer than 4 bytes).
    BadLength,
    /// A time is neither a valid UTCTime nor GeneralizedTime in `Z`.
    BadTime,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::Truncated => f.write_str("the certificate's DER is truncated"),
            CertError::UnexpectedTag { found } => write!(
                f,
                "unexpected DER element (tag {found:#04x}) before the certificate's validity"
            ),
            CertError::BadLength => f.write_str("a DER length in the certificate is not valid DER"),
            CertError::BadTime => f.write_str("the certificate's validity is not a valid UTC time"),
        }
    }
}

/// A certificate's validity period, unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`.
    pub not_after: i64,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One DER element: (tag, contents, what follows).
fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), CertError> {
    let (&tag, rest) = input.split_first().ok_or(CertError::Truncated)?;
    if tag & 0x1f == 0x1f {
        // High tag numbers never occur on the way to the validity.
        return Err(CertError::UnexpectedTag { found: tag });
    }
    let (&first, mut rest) = rest.split_first().ok_or(CertError::Truncated)?;
    let len = match first {
        0..=0x7f => usize::from(first),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            if rest.len() < n {
                return Err(CertError::Truncated);
            }
            let (bytes, r) = rest.split_at(n);
            rest = r;
            let len = bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
            // DER: the shortest form.
            if len < 0x80 || bytes.first() == Some(&0) {
                return Err(CertError::BadLength);
            }
            len
        }
        _ => return Err(CertError::BadLength),
    };
    if rest.len() < len {
        return Err(CertError::Truncated);
    }
    let (contents, rest) = rest.split_at(len);
    Ok((tag, contents, rest))
}

fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), CertError> {
    let (found, contents, rest) = element(input)?;
    if found != tag {
        return Err(CertError::UnexpectedTag { found });
    }
    Ok((contents, rest))
}

fn digits(s: &[u8]) -> Result<u32, CertError> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(CertError::BadTime);
    }
    Ok(s.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0')))
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950-2049) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`, as RFC 5280 §4.1.2.5 requires them.
fn time(tag: u8, t: &[u8]) -> Result<i64, CertError> {
    let (year, rest) = match (tag, t.len()) {
        (UTC_TIME, 13) => {
            let yy = i64::from(digits(&t[..2])?);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &t[2..])
        }
        (GENERALIZED_TIME, 15) => (i64::from(digits(&t[..4])?), &t[4..]),
        _ => return Err(CertError::BadTime),
    };
    if rest.get(10) != Some(&b'Z') {
        return Err(CertError::BadTime);
    }
    let [month, day, hour, minute, second] = [0, 2, 4, 6, 8].map(|i| digits(&rest[i..i + 2]));
    let (month, day, hour, minute, second) = (month?, day?, hour?, minute?, second?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(CertError::BadTime);
    }
    Ok(days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

/// The validity of the DER certificate `der`.
pub fn validity(der: &[u8]) -> Result<Validity, CertError> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let (tag, _, mut rest) = element(tbs)?;
    if tag == VERSION {
        let (_, r) = expect(rest, INTEGER)?;
        rest = r;
    } else if tag != INTEGER {
        return Err(CertError::UnexpectedTag { found: tag });
    }
    let (_, rest) = expect(rest, SEQUENCE)?; // signature
    let (_, rest) = expect(rest, SEQUENCE)?; // issuer
    let (validity, _) = expect(rest, SEQUENCE)?;
    let (tag, nb, rest) = element(validity)?;
    let not_before = time(tag, nb)?;
    let (tag, na, _) = element(rest)?;
    let not_after = time(tag, na)?;
    Ok(Validity {
        not_before,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::parse_certs;
    use alloc::vec::Vec;

    /// The validity openssl reports for a PEM certificate.
    fn openssl_dates(pem: &[u8]) -> (i64, i64) {
        let mut child = std::process::Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-startdate",
                "-enddate",
                "-dateopt",
                "iso_8601",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl is required");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(pem).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = std::string::String::from_utf8(out.stdout).unwrap();
        let mut dates = text.lines().map(|l| {
            // notBefore=2026-12-06 10:00:00Z
            let v = l.split_once('=').unwrap().1;
            let d = std::process::Command::new("date")
                .args(["-u", "-d", v, "+%s"])
                .output()
                .unwrap();
            std::string::String::from_utf8(d.stdout)
                .unwrap()
                .trim()
                .parse::<i64>()
                .unwrap()
        });
        (dates.next().unwrap(), dates.next().unwrap())
    }

    #[test]
    fn matches_openssl() {
        let (chain, _, ca) = crate::tls::test_pki::make();
        for pem in [chain, ca] {
            let der = parse_certs(&pem).unwrap();
            let v = validity(&der[0]).unwrap();
            let first_pem: Vec<u8> = {
                let s = core::str::from_utf8(&pem).unwrap();
                let end = s.find("-----END CERTIFICATE-----").unwrap() + 25;
                s.as_bytes()[..end].to_vec()
            };
            assert_eq!((v.not_before, v.not_after), openssl_dates(&first_pem));
        }
    }

    #[test]
    fn times() {
        assert_eq!(time(UTC_TIME, b"700101000000Z"), Ok(0));
        assert_eq!(time(UTC_TIME, b"491231235959Z"), Ok(2_524_607_999));
        assert_eq!(
            time(GENERALIZED_TIME, b"20261206100000Z"),
            Ok(1_796_551_200)
        );
        for bad in [
            &b"700101000000"[..],
            b"700132000000Z",
            b"700229000000Z",
            b"701301000000Z",
            b"700101240000Z",
            b"7001010000+0Z",
            b"700101000000+0100",
        ] {
            assert_eq!(time(UTC_TIME, bad), Err(CertError::BadTime), "{bad:?}");
        }
        assert_eq!(
            time(GENERALIZED_TIME, b"700101000000Z"),
            Err(CertError::BadTime)
        );
    }

    #[test]
    fn malformed_der() {
        assert_eq!(validity(&[]), Err(CertError::Truncated));
        assert_eq!(validity(&[0x30, 0x80]), Err(CertError::BadLength));
        assert_eq!(validity(&[0x30, 0x81, 0x05]), Err(CertError::BadLength));
        assert_eq!(
            validity(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(CertError::BadLength)
        );
        assert_eq!(validity(&[0x30, 0x03, 0x30]), Err(CertError::Truncated));
        assert_eq!(
            validity(&[0x31, 0x00]),
            Err(CertError::UnexpectedTag { found: 0x31 })
        );
        assert_eq!(
            validity(&[0x30, 0x02, 0x1f, 0x00]),
            Err(CertError::UnexpectedTag { found: 0x1f })
        );
        // Every prefix of a real certificate fails cleanly.
        let (chain, _, _) = crate::tls::test_pki::make();
        let der = parse_certs(&chain).unwrap();
        let der = der[0].as_ref();
        for n in 0..der.len() {
            assert!(validity(&der[..n]).is_err());
        }
    }
}
