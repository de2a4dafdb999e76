//! Hexadecimal digits, the one encoding and decoding used by object ids and pkt-line lengths.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The lowercase hexadecimal digit for the low four bits of `nibble`.
pub(crate) fn digit(nibble: u8) -> u8 {
    DIGITS[usize::from(nibble & 0xf)]
}

/// The value of one hexadecimal digit (either case), `None` for anything else.
pub(crate) fn value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for n in 0..16u8 {
            assert_eq!(value(digit(n)), Some(n));
            assert_eq!(value(digit(n).to_ascii_uppercase()), Some(n));
        }
        assert_eq!(digit(0x1f), b'f');
        for c in [b'g', b'G', b' ', b'/', b':', b'@', b'`', 0xff] {
            assert_eq!(value(c), None);
        }
    }
}
