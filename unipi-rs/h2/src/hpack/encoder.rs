//! The stateless HPACK encoder used for responses: literals without
//! indexing (§6.2.2), static-table names and `:status` values, Huffman
//! coding when it is shorter.

use alloc::vec::Vec;

use super::huffman;
use super::table::STATIC;

/// Appends `value` as an integer with an `n`-bit prefix (§5.1); `flags` are
/// the high bits of the first byte.
pub fn encode_integer(out: &mut Vec<u8>, value: usize, n: u8, flags: u8) {
    let max: usize = if n >= 8 { 0xff } else { (1usize << n) - 1 };
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a string literal (§5.2), Huffman-coded when that is shorter.
pub fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    let hlen = huffman::encoded_len(s);
    if hlen < s.len() {
        encode_integer(out, hlen, 7, 0x80);
        huffman::encode(s, out);
    } else {
        encode_integer(out, s.len(), 7, 0);
        out.extend_from_slice(s);
    }
}

/// Appends `:status` (indexed when the static table has the code, else a
/// literal with the static name). `status` must be 100..=999.
pub fn encode_status(out: &mut Vec<u8>, status: u16) {
    let index = match status {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => 0,
    };
    if index > 0 {
        out.push(0x80 | index);
        return;
    }
    let digits = [
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ];
    encode_integer(out, 8, 4, 0);
    encode_string(out, &digits);
}

/// Appends one field as a literal without indexing; the name is taken from
/// the static table when it is there. `name` must already be lowercase.
pub fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    match STATIC.iter().position(|(n, _)| *n == name) {
        Some(i) => encode_integer(out, i + 1, 4, 0),
        None => {
            out.push(0);
            encode_string(out, name);
        }
    }
    encode_string(out, value);
}
