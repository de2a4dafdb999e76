//! Content-coding negotiation (RFC 9110 §12.5.3): which representation of
//! a file to send, given the request's `Accept-Encoding`.
//!
//! Parsing: the field is a comma-separated list (over any number of field
//! lines) of `coding [ OWS ";" OWS "q=" qvalue ]`, codings compared
//! case-insensitively, `x-gzip` meaning `gzip` (RFC 9110 §8.4.1.3). A
//! qvalue has at most three decimals and lies in 0..1 (§12.4.2). An
//! element that does not follow this grammar (a bad qvalue, another
//! parameter, stray characters) is ignored, as if it were not there; so is
//! a repeated coding (the first one counts) and anything after the first
//! [`MAX_ELEMENTS`] elements. The work is linear in the field's length.
//! Written here because the crates that parse the field (`headers`,
//! `http`-based ones) need `std` and allocate; this needs neither.
//!
//! Choosing, among the representations the file has:
//!
//! 1. No `Accept-Encoding` at all: the file as it is (identity). RFC 9110
//!    allows any coding then, but a client that sends nothing (curl without
//!    `--compressed`, scripts) rarely decodes anything.
//! 2. A coding is acceptable with its own q, else with the q of `*`, and
//!    not at all when neither is listed — except identity, which stays
//!    acceptable, ranked below every listed coding, unless `identity;q=0`
//!    or `*;q=0` (without an `identity` element) refuse it. An empty field
//!    therefore means identity only.
//! 3. The acceptable representation with the highest q wins; among equal
//!    q the smaller one; among equal sizes br, then gzip, then identity.
//! 4. Nothing acceptable (identity refused, no acceptable coding
//!    available): `None`, which the server answers with `406 Not
//!    Acceptable`. RFC 9110 §12.5.3 asks for a response without coding
//!    "unless the identity coding is indicated as unacceptable"; 406 is
//!    what §15.5.7 describes for that case (415 is about request content).

use crate::site::Coding;

/// Most list elements looked at, over all `Accept-Encoding` lines of a
/// request; later ones are ignored. Browsers send four or five.
pub const MAX_ELEMENTS: usize = 64;

/// A qvalue in thousandths (0 ..= 1000).
pub type Q = u16;

/// What a request's `Accept-Encoding` says about the codings this server
/// can send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AcceptEncoding {
    present: bool,
    gzip: Option<Q>,
    br: Option<Q>,
    identity: Option<Q>,
    star: Option<Q>,
}

impl AcceptEncoding {
    /// Reads every line of the field (`values` as [`super::request::Request::values`]
    /// gives them; none: the field is absent).
    pub fn parse<'v>(values: impl Iterator<Item = &'v [u8]>) -> AcceptEncoding {
        let mut a = AcceptEncoding::default();
        let mut seen = 0;
        for line in values {
            a.present = true;
            for element in line.split(|b| *b == b',') {
                if seen == MAX_ELEMENTS {
                    return a;
                }
                seen += 1;
                let Some((coding, q)) = parse_element(element) else {
                    continue;
                };
                let slot = if coding.eq_ignore_ascii_case(b"gzip")
                    || coding.eq_ignore_ascii_case(b"x-gzip")
                {
                    &mut a.gzip
                } else if coding.eq_ignore_ascii_case(b"br") {
                    &mut a.br
                } else if coding.eq_ignore_ascii_case(b"identity") {
                    &mut a.identity
                } else if coding == b"*" {
                    &mut a.star
                } else {
                    continue;
                };
                slot.get_or_insert(q);
            }
        }
        a
    }

    /// How much the client wants `coding`: 0 = not acceptable; larger is
    /// better. A listed q counts twice its thousandths, so that identity's
    /// implicit acceptability (1) ranks below every listed q above 0.
    pub fn rank(&self, coding: Coding) -> u16 {
        if !self.present {
            return u16::from(coding == Coding::Identity);
        }
        let listed = match coding {
            Coding::Identity => self.identity,
            Coding::Gzip => self.gzip,
            Coding::Br => self.br,
        };
        match (listed.or(self.star), coding) {
            (Some(q), _) => q * 2,
            (None, Coding::Identity) => 1,
            (None, _) => 0,
        }
    }

    /// Whether the field was present at all.
    pub fn is_present(&self) -> bool {
        self.present
    }
}

/// One representation a file has: its coding and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The content coding.
    pub coding: Coding,
    /// Its length in bytes.
    pub len: u64,
}

/// The representation to send (see the module documentation); `None`:
/// none is acceptable (`406`).
pub fn choose(accept: &AcceptEncoding, offers: &[Offer]) -> Option<Coding> {
    offers
        .iter()
        .map(|o| (accept.rank(o.coding), o))
        .filter(|(rank, _)| *rank > 0)
        .max_by(|(ra, a), (rb, b)| {
            ra.cmp(rb)
                .then(b.len.cmp(&a.len))
                .then(a.coding.cmp(&b.coding))
        })
        .map(|(_, o)| o.coding)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(a), Some(b)) => &s[a..=b],
        _ => &[],
    }
}

/// `coding [ OWS ";" OWS "q=" qvalue ]` → (coding, q); `None` when empty or
/// malformed.
fn parse_element(element: &[u8]) -> Option<(&[u8], Q)> {
    let element = trim_ows(element);
    let (coding, weight) = match element.iter().position(|b| *b == b';') {
        Some(i) => (trim_ows(&element[..i]), Some(trim_ows(&element[i + 1..]))),
        None => (element, None),
    };
    if coding.is_empty() || !coding.iter().all(|b| is_tchar(*b)) {
        return None;
    }
    let q = match weight {
        None => 1000,
        Some(w) => match w {
            [b'q' | b'Q', b'=', value @ ..] => parse_qvalue(value)?,
            _ => return None,
        },
    };
    Some((coding, q))
}

/// `"0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ]` in thousandths.
fn parse_qvalue(v: &[u8]) -> Option<Q> {
    let (int, frac) = match v.iter().position(|b| *b == b'.') {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    let whole: Q = match int {
        b"0" => 0,
        b"1" => 1000,
        _ => return None,
    };
    let Some(frac) = frac else {
        return Some(whole);
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: Q = 0;
    for (i, d) in frac.iter().enumerate() {
        thousandths += Q::from(d - b'0') * [100, 10, 1][i];
    }
    if whole == 1000 && thousandths != 0 {
        return None;
    }
    Some(whole + thousandths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::{Br, Gzip, Identity};

    fn accept(lines: &[&str]) -> AcceptEncoding {
        AcceptEncoding::parse(lines.iter().map(|l| l.as_bytes()))
    }

    /// Identity of 1000 bytes, gzip of 300, br of 250.
    const ALL: [Offer; 3] = [
        Offer {
            coding: Identity,
            len: 1000,
        },
        Offer {
            coding: Gzip,
            len: 300,
        },
        Offer {
            coding: Br,
            len: 250,
        },
    ];
    const NO_BR: [Offer; 2] = [ALL[0], ALL[1]];
    const IDENTITY: [Offer; 1] = [ALL[0]];

    fn pick(lines: &[&str], offers: &[Offer]) -> Option<Coding> {
        choose(&accept(lines), offers)
    }

    #[test]
    fn qvalues() {
        for (v, q) in [
            ("0", 0),
            ("0.", 0),
            ("0.5", 500),
            ("0.05", 50),
            ("0.001", 1),
            ("0.999", 999),
            ("1", 1000),
            ("1.", 1000),
            ("1.000", 1000),
        ] {
            assert_eq!(parse_qvalue(v.as_bytes()), Some(q), "{v}");
        }
        for v in [
            "", ".5", "1.001", "2", "0.0001", "-0", "0.5x", "01", "0,5", " 0.5",
        ] {
            assert_eq!(parse_qvalue(v.as_bytes()), None, "{v}");
        }
    }

    #[test]
    fn elements() {
        assert_eq!(parse_element(b" gzip "), Some((&b"gzip"[..], 1000)));
        assert_eq!(parse_element(b"gzip;q=0.5"), Some((&b"gzip"[..], 500)));
        assert_eq!(parse_element(b"gzip \t; Q=0"), Some((&b"gzip"[..], 0)));
        for bad in [
            "",
            " ",
            "gzip;q=2",
            "gzip;level=1",
            "gzip;q = 0.5",
            "gz ip",
            "g\"zip",
            ";q=1",
            "gzip;",
        ] {
            assert_eq!(parse_element(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn browsers_and_tools() {
        // Chromium, Firefox, curl --compressed: all q=1, the smallest wins.
        assert_eq!(pick(&["gzip, deflate, br, zstd"], &ALL), Some(Br));
        assert_eq!(pick(&["gzip, deflate, br, zstd"], &NO_BR), Some(Gzip));
        assert_eq!(pick(&["deflate, gzip"], &ALL), Some(Gzip));
        // No field: identity, even with gzip available.
        assert_eq!(pick(&[], &ALL), Some(Identity));
        // Empty field: identity only.
        assert_eq!(pick(&[""], &ALL), Some(Identity));
        assert_eq!(pick(&["identity"], &ALL), Some(Identity));
        assert_eq!(pick(&["x-gzip"], &ALL), Some(Gzip));
        assert_eq!(pick(&["GZip"], &ALL), Some(Gzip));
        assert_eq!(pick(&["compress, deflate"], &ALL), Some(Identity));
    }

    #[test]
    fn q_values_decide() {
        assert_eq!(pick(&["br;q=0.5, gzip"], &ALL), Some(Gzip));
        assert_eq!(pick(&["br;q=0.5, gzip;q=0.5"], &ALL), Some(Br));
        // Identity listed higher than gzip.
        assert_eq!(pick(&["gzip;q=0.5, identity"], &NO_BR), Some(Identity));
        // Identity unlisted ranks below any listed positive q.
        assert_eq!(pick(&["gzip;q=0.001"], &NO_BR), Some(Gzip));
        // Star.
        assert_eq!(pick(&["*"], &ALL), Some(Br));
        assert_eq!(pick(&["*;q=0.5, gzip"], &ALL), Some(Gzip));
        assert_eq!(pick(&["*, br;q=0"], &ALL), Some(Gzip));
        // Equal q, equal size: br, then gzip, then identity.
        let same = [
            Offer {
                coding: Identity,
                len: 10,
            },
            Offer {
                coding: Gzip,
                len: 10,
            },
            Offer {
                coding: Br,
                len: 10,
            },
        ];
        assert_eq!(pick(&["*"], &same), Some(Br));
        assert_eq!(pick(&["identity, gzip"], &same[..2]), Some(Gzip));
        // Equal q, identity smaller (a committed .br larger than usual).
        let big_br = [
            ALL[0],
            Offer {
                coding: Br,
                len: 2000,
            },
        ];
        assert_eq!(pick(&["*"], &big_br), Some(Identity));
    }

    #[test]
    fn refusals() {
        assert_eq!(pick(&["gzip;q=0"], &NO_BR), Some(Identity));
        assert_eq!(pick(&["identity;q=0, gzip"], &NO_BR), Some(Gzip));
        assert_eq!(pick(&["identity;q=0, gzip;q=0"], &NO_BR), None);
        assert_eq!(pick(&["identity;q=0, gzip;q=0"], &ALL), None);
        assert_eq!(pick(&["identity;q=0"], &IDENTITY), None);
        assert_eq!(pick(&["*;q=0"], &ALL), None);
        assert_eq!(pick(&["*;q=0, identity"], &ALL), Some(Identity));
        assert_eq!(pick(&["*;q=0, gzip;q=0.1"], &ALL), Some(Gzip));
        assert_eq!(pick(&["br, identity;q=0"], &NO_BR), None);
        assert_eq!(pick(&["identity;q=0.000"], &IDENTITY), None);
    }

    #[test]
    fn malformed_and_repeated_elements() {
        // A bad element is ignored; the rest still counts.
        assert_eq!(pick(&["gzip;q=2, br"], &ALL), Some(Br));
        assert_eq!(pick(&["gzip;q=2"], &ALL), Some(Identity));
        assert_eq!(pick(&["identity;q=zero, gzip;q=0"], &NO_BR), Some(Identity));
        // The first occurrence counts.
        assert_eq!(pick(&["gzip;q=0, gzip"], &NO_BR), Some(Identity));
        assert_eq!(pick(&["x-gzip;q=0", "gzip"], &NO_BR), Some(Identity));
        // Several lines are one list.
        assert_eq!(pick(&["identity;q=0", "gzip"], &NO_BR), Some(Gzip));
        assert_eq!(pick(&["identity;q=0", ""], &NO_BR), None);
        // Only MAX_ELEMENTS elements are read.
        let mut long = alloc::string::String::new();
        for _ in 0..MAX_ELEMENTS {
            long.push_str("deflate,");
        }
        long.push_str("gzip");
        assert_eq!(pick(&[&long], &NO_BR), Some(Identity));
        assert!(accept(&[&long]).is_present());
        let r = accept(&[",,,gzip"]);
        assert_eq!(r.rank(Gzip), 2000);
        assert_eq!(r.rank(Identity), 1);
        assert_eq!(r.rank(Br), 0);
        assert!(!accept(&[]).is_present());
    }
}
