//! `Accept-Encoding` negotiation (`http::negotiate`): the field parsed from arbitrary lines,
//! then a choice among arbitrary offers, checked against a second, deliberately plain
//! reading of RFC 9110 §12.5.3 written here.
//!
//! Input: `offers (1) | sizes seed (4) | field lines separated by '\n'`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi::http::negotiate::{AcceptEncoding, MAX_ELEMENTS, Offer, choose};
use unipi::site::Coding;
use unipi_fuzz::take_u32;

/// The qvalue grammar, read off RFC 9110 §12.4.2 with string operations.
fn reference_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if v.contains('.') && frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{frac:0<3}");
    let thousandths: u16 = padded.parse().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The same rules as `negotiate`, written independently: the rank of `coding`.
fn reference_rank(lines: &[&[u8]], coding: Coding) -> u16 {
    if lines.is_empty() {
        return u16::from(coding == Coding::Identity);
    }
    let mut first: Vec<(String, u16)> = Vec::new();
    let mut seen = 0;
    'lines: for line in lines {
        for element in line.split(|b| *b == b',') {
            if seen == MAX_ELEMENTS {
                break 'lines;
            }
            seen += 1;
            let Ok(element) = std::str::from_utf8(element) else {
                continue;
            };
            let element = element.trim_matches(|c| c == ' ' || c == '\t');
            let mut parts = element.splitn(2, ';');
            let name = parts
                .next()
                .unwrap_or("")
                .trim_matches(|c| c == ' ' || c == '\t');
            let q = match parts.next() {
                None => Some(1000),
                Some(w) => {
                    let w = w.trim_matches(|c| c == ' ' || c == '\t');
                    match w.strip_prefix("q=").or_else(|| w.strip_prefix("Q=")) {
                        Some(v) => reference_q(v),
                        None => None,
                    }
                }
            };
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            let (Some(q), true) = (q, token) else {
                continue;
            };
            let mut name = name.to_ascii_lowercase();
            if name == "x-gzip" {
                name = "gzip".into();
            }
            if !first.iter().any(|(n, _)| *n == name) {
                first.push((name, q));
            }
        }
    }
    let find = |n: &str| first.iter().find(|(x, _)| x == n).map(|(_, q)| *q);
    let star = find("*");
    let listed = find(coding.token());
    match (listed.or(star), coding) {
        (Some(q), _) => q * 2,
        (None, Coding::Identity) => 1,
        (None, _) => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let (sizes, field) = take_u32(rest);
    // Bit 7 of `which`: no field at all; else one line per '\n'.
    let lines: Vec<&[u8]> = if which & 0x80 != 0 {
        Vec::new()
    } else {
        field.split(|b| *b == b'\n').collect()
    };
    let accept = AcceptEncoding::parse(lines.iter().copied());
    let mut offers = vec![Offer {
        coding: Coding::Identity,
        len: u64::from(sizes & 0xff) + 1000,
    }];
    if which & 1 != 0 {
        offers.push(Offer {
            coding: Coding::Gzip,
            len: u64::from((sizes >> 8) & 0x7ff) + 500,
        });
    }
    if which & 2 != 0 {
        offers.push(Offer {
            coding: Coding::Br,
            len: u64::from(sizes >> 19) + 500,
        });
    }
    for o in &offers {
        assert_eq!(
            accept.rank(o.coding),
            reference_rank(&lines, o.coding),
            "{:?} {:?}",
            o.coding,
            lines
                .iter()
                .map(|l| String::from_utf8_lossy(l))
                .collect::<Vec<_>>()
        );
    }
    match choose(&accept, &offers) {
        Some(c) => {
            let chosen = offers
                .iter()
                .find(|o| o.coding == c)
                .expect("chosen among the offers");
            let rank = accept.rank(c);
            assert!(rank > 0);
            for o in &offers {
                let r = accept.rank(o.coding);
                assert!(
                    r < rank || r == rank && o.len >= chosen.len,
                    "{o:?} beats {chosen:?}"
                );
            }
        }
        None => assert!(offers.iter().all(|o| accept.rank(o.coding) == 0)),
    }
    // Identity is refused only by an explicit zero.
    if accept.rank(Coding::Identity) == 0 {
        assert!(lines.iter().any(|l| l.contains(&b'0')));
    }
});
