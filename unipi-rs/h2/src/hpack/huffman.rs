//! The Huffman code of RFC 7541 Appendix B: decoding (strict about padding
//! and EOS, §5.2) and encoding.
//!
//! `CODES` is the RFC's table, as data. The code is canonical (codes of
//! one length are consecutive and follow symbol order, shorter codes come
//! first); `canonical_tables_match_the_rfc_codes` checks that, and the
//! decoder relies on it: it reads bit by bit and needs, per code length,
//! only the first code and where its symbols start.

use alloc::vec::Vec;

use super::HpackError;

/// `(code, length in bits)` of symbols 0..=255 and of EOS (256).
#[rustfmt::skip]
pub(crate) const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), // 0 0x00
    (0x7fffd8, 23), // 1 0x01
    (0xfffffe2, 28), // 2 0x02
    (0xfffffe3, 28), // 3 0x03
    (0xfffffe4, 28), // 4 0x04
    (0xfffffe5, 28), // 5 0x05
    (0xfffffe6, 28), // 6 0x06
    (0xfffffe7, 28), // 7 0x07
    (0xfffffe8, 28), // 8 0x08
    (0xffffea, 24), // 9 0x09
    (0x3ffffffc, 30), // 10 0x0a
    (0xfffffe9, 28), // 11 0x0b
    (0xfffffea, 28), // 12 0x0c
    (0x3ffffffd, 30), // 13 0x0d
    (0xfffffeb, 28), // 14 0x0e
    (0xfffffec, 28), // 15 0x0f
    (0xfffffed, 28), // 16 0x10
    (0xfffffee, 28), // 17 0x11
    (0xfffffef, 28), // 18 0x12
    (0xffffff0, 28), // 19 0x13
    (0xffffff1, 28), // 20 0x14
    (0xffffff2, 28), // 21 0x15
    (0x3ffffffe, 30), // 22 0x16
    (0xffffff3, 28), // 23 0x17
    (0xffffff4, 28), // 24 0x18
    (0xffffff5, 28), // 25 0x19
    (0xffffff6, 28), // 26 0x1a
    (0xffffff7, 28), // 27 0x1b
    (0xffffff8, 28), // 28 0x1c
    (0xffffff9, 28), // 29 0x1d
    (0xffffffa, 28), // 30 0x1e
    (0xffffffb, 28), // 31 0x1f
    (0x14, 6), // 32 ' '
    (0x3f8, 10), // 33 '!'
    (0x3f9, 10), // 34 '"'
    (0xffa, 12), // 35 '#'
    (0x1ff9, 13), // 36 '$'
    (0x15, 6), // 37 '%'
    (0xf8, 8), // 38 '&'
    (0x7fa, 11), // 39 "'"
    (0x3fa, 10), // 40 '('
    (0x3fb, 10), // 41 ')'
    (0xf9, 8), // 42 '*'
    (0x7fb, 11), // 43 '+'
    (0xfa, 8), // 44 ','
    (0x16, 6), // 45 '-'
    (0x17, 6), // 46 '.'
    (0x18, 6), // 47 '/'
    (0x0, 5), // 48 '0'
    (0x1, 5), // 49 '1'
    (0x2, 5), // 50 '2'
    (0x19, 6), // 51 '3'
    (0x1a, 6), // 52 '4'
    (0x1b, 6), // 53 '5'
    (0x1c, 6), // 54 '6'
    (0x1d, 6), // 55 '7'
    (0x1e, 6), // 56 '8'
    (0x1f, 6), // 57 '9'
    (0x5c, 7), // 58 ':'
    (0xfb, 8), // 59 ';'
    (0x7ffc, 15), // 60 '<'
    (0x20, 6), // 61 '='
    (0xffb, 12), // 62 '>'
    (0x3fc, 10), // 63 '?'
    (0x1ffa, 13), // 64 '@'
    (0x21, 6), // 65 'A'
    (0x5d, 7), // 66 'B'
    (0x5e, 7), // 67 'C'
    (0x5f, 7), // 68 'D'
    (0x60, 7), // 69 'E'
    (0x61, 7), // 70 'F'
    (0x62, 7), // 71 'G'
    (0x63, 7), // 72 'H'
    (0x64, 7), // 73 'I'
    (0x65, 7), // 74 'J'
    (0x66, 7), // 75 'K'
    (0x67, 7), // 76 'L'
    (0x68, 7), // 77 'M'
    (0x69, 7), // 78 'N'
    (0x6a, 7), // 79 'O'
    (0x6b, 7), // 80 'P'
    (0x6c, 7), // 81 'Q'
    (0x6d, 7), // 82 'R'
    (0x6e, 7), // 83 'S'
    (0x6f, 7), // 84 'T'
    (0x70, 7), // 85 'U'
    (0x71, 7), // 86 'V'
    (0x72, 7), // 87 'W'
    (0xfc, 8), // 88 'X'
    (0x73, 7), // 89 'Y'
    (0xfd, 8), // 90 'Z'
    (0x1ffb, 13), // 91 '['
    (0x7fff0, 19), // 92 '\\'
    (0x1ffc, 13), // 93 ']'
    (0x3ffc, 14), // 94 '^'
    (0x22, 6), // 95 '_'
    (0x7ffd, 15), // 96 '`'
    (0x3, 5), // 97 'a'
    (0x23, 6), // 98 'b'
    (0x4, 5), // 99 'c'
    (0x24, 6), // 100 'd'
    (0x5, 5), // 101 'e'
    (0x25, 6), // 102 'f'
    (0x26, 6), // 103 'g'
    (0x27, 6), // 104 'h'
    (0x6, 5), // 105 'i'
    (0x74, 7), // 106 'j'
    (0x75, 7), // 107 'k'
    (0x28, 6), // 108 'l'
    (0x29, 6), // 109 'm'
    (0x2a, 6), // 110 'n'
    (0x7, 5), // 111 'o'
    (0x2b, 6), // 112 'p'
    (0x76, 7), // 113 'q'
    (0x2c, 6), // 114 'r'
    (0x8, 5), // 115 's'
    (0x9, 5), // 116 't'
    (0x2d, 6), // 117 'u'
    (0x77, 7), // 118 'v'
    (0x78, 7), // 119 'w'
    (0x79, 7), // 120 'x'
    (0x7a, 7), // 121 'y'
    (0x7b, 7), // 122 'z'
    (0x7ffe, 15), // 123 '{'
    (0x7fc, 11), // 124 '|'
    (0x3ffd, 14), // 125 '}'
    (0x1ffd, 13), // 126 '~'
    (0xffffffc, 28), // 127 0x7f
    (0xfffe6, 20), // 128 0x80
    (0x3fffd2, 22), // 129 0x81
    (0xfffe7, 20), // 130 0x82
    (0xfffe8, 20), // 131 0x83
    (0x3fffd3, 22), // 132 0x84
    (0x3fffd4, 22), // 133 0x85
    (0x3fffd5, 22), // 134 0x86
    (0x7fffd9, 23), // 135 0x87
    (0x3fffd6, 22), // 136 0x88
    (0x7fffda, 23), // 137 0x89
    (0x7fffdb, 23), // 138 0x8a
    (0x7fffdc, 23), // 139 0x8b
    (0x7fffdd, 23), // 140 0x8c
    (0x7fffde, 23), // 141 0x8d
    (0xffffeb, 24), // 142 0x8e
    (0x7fffdf, 23), // 143 0x8f
    (0xffffec, 24), // 144 0x90
    (0xffffed, 24), // 145 0x91
    (0x3fffd7, 22), // 146 0x92
    (0x7fffe0, 23), // 147 0x93
    (0xffffee, 24), // 148 0x94
    (0x7fffe1, 23), // 149 0x95
    (0x7fffe2, 23), // 150 0x96
    (0x7fffe3, 23), // 151 0x97
    (0x7fffe4, 23), // 152 0x98
    (0x1fffdc, 21), // 153 0x99
    (0x3fffd8, 22), // 154 0x9a
    (0x7fffe5, 23), // 155 0x9b
    (0x3fffd9, 22), // 156 0x9c
    (0x7fffe6, 23), // 157 0x9d
    (0x7fffe7, 23), // 158 0x9e
    (0xffffef, 24), // 159 0x9f
    (0x3fffda, 22), // 160 0xa0
    (0x1fffdd, 21), // 161 0xa1
    (0xfffe9, 20), // 162 0xa2
    (0x3fffdb, 22), // 163 0xa3
    (0x3fffdc, 22), // 164 0xa4
    (0x7fffe8, 23), // 165 0xa5
    (0x7fffe9, 23), // 166 0xa6
    (0x1fffde, 21), // 167 0xa7
    (0x7fffea, 23), // 168 0xa8
    (0x3fffdd, 22), // 169 0xa9
    (0x3fffde, 22), // 170 0xaa
    (0xfffff0, 24), // 171 0xab
    (0x1fffdf, 21), // 172 0xac
    (0x3fffdf, 22), // 173 0xad
    (0x7fffeb, 23), // 174 0xae
    (0x7fffec, 23), // 175 0xaf
    (0x1fffe0, 21), // 176 0xb0
    (0x1fffe1, 21), // 177 0xb1
    (0x3fffe0, 22), // 178 0xb2
    (0x1fffe2, 21), // 179 0xb3
    (0x7fffed, 23), // 180 0xb4
    (0x3fffe1, 22), // 181 0xb5
    (0x7fffee, 23), // 182 0xb6
    (0x7fffef, 23), // 183 0xb7
    (0xfffea, 20), // 184 0xb8
    (0x3fffe2, 22), // 185 0xb9
    (0x3fffe3, 22), // 186 0xba
    (0x3fffe4, 22), // 187 0xbb
    (0x7ffff0, 23), // 188 0xbc
    (0x3fffe5, 22), // 189 0xbd
    (0x3fffe6, 22), // 190 0xbe
    (0x7ffff1, 23), // 191 0xbf
    (0x3ffffe0, 26), // 192 0xc0
    (0x3ffffe1, 26), // 193 0xc1
    (0xfffeb, 20), // 194 0xc2
    (0x7fff1, 19), // 195 0xc3
    (0x3fffe7, 22), // 196 0xc4
    (0x7ffff2, 23), // 197 0xc5
    (0x3fffe8, 22), // 198 0xc6
    (0x1ffffec, 25), // 199 0xc7
    (0x3ffffe2, 26), // 200 0xc8
    (0x3ffffe3, 26), // 201 0xc9
    (0x3ffffe4, 26), // 202 0xca
    (0x7ffffde, 27), // 203 0xcb
    (0x7ffffdf, 27), // 204 0xcc
    (0x3ffffe5, 26), // 205 0xcd
    (0xfffff1, 24), // 206 0xce
    (0x1ffffed, 25), // 207 0xcf
    (0x7fff2, 19), // 208 0xd0
    (0x1fffe3, 21), // 209 0xd1
    (0x3ffffe6, 26), // 210 0xd2
    (0x7ffffe0, 27), // 211 0xd3
    (0x7ffffe1, 27), // 212 0xd4
    (0x3ffffe7, 26), // 213 0xd5
    (0x7ffffe2, 27), // 214 0xd6
    (0xfffff2, 24), // 215 0xd7
    (0x1fffe4, 21), // 216 0xd8
    (0x1fffe5, 21), // 217 0xd9
    (0x3ffffe8, 26), // 218 0xda
    (0x3ffffe9, 26), // 219 0xdb
    (0xffffffd, 28), // 220 0xdc
    (0x7ffffe3, 27), // 221 0xdd
    (0x7ffffe4, 27), // 222 0xde
    (0x7ffffe5, 27), // 223 0xdf
    (0xfffec, 20), // 224 0xe0
    (0xfffff3, 24), // 225 0xe1
    (0xfffed, 20), // 226 0xe2
    (0x1fffe6, 21), // 227 0xe3
    (0x3fffe9, 22), // 228 0xe4
    (0x1fffe7, 21), // 229 0xe5
    (0x1fffe8, 21), // 230 0xe6
    (0x7ffff3, 23), // 231 0xe7
    (0x3fffea, 22), // 232 0xe8
    (0x3fffeb, 22), // 233 0xe9
    (0x1ffffee, 25), // 234 0xea
    (0x1ffffef, 25), // 235 0xeb
    (0xfffff4, 24), // 236 0xec
    (0xfffff5, 24), // 237 0xed
    (0x3ffffea, 26), // 238 0xee
    (0x7ffff4, 23), // 239 0xef
    (0x3ffffeb, 26), // 240 0xf0
    (0x7ffffe6, 27), // 241 0xf1
    (0x3ffffec, 26), // 242 0xf2
    (0x3ffffed, 26), // 243 0xf3
    (0x7ffffe7, 27), // 244 0xf4
    (0x7ffffe8, 27), // 245 0xf5
    (0x7ffffe9, 27), // 246 0xf6
    (0x7ffffea, 27), // 247 0xf7
    (0x7ffffeb, 27), // 248 0xf8
    (0xffffffe, 28), // 249 0xf9
    (0x7ffffec, 27), // 250 0xfa
    (0x7ffffed, 27), // 251 0xfb
    (0x7ffffee, 27), // 252 0xfc
    (0x7ffffef, 27), // 253 0xfd
    (0x7fffff0, 27), // 254 0xfe
    (0x3ffffee, 26), // 255 0xff
    (0x3fffffff, 30), // 256 EOS
];

/// Symbol value of the end-of-string code.
const EOS: u16 = 256;
/// Longest code.
const MAX_LEN: usize = 30;

/// Per-length canonical decoding tables, derived from [`CODES`] at compile
/// time.
struct Canonical {
    /// Number of codes of each length.
    count: [u16; MAX_LEN + 1],
    /// First (numerically smallest) code of each length.
    first: [u32; MAX_LEN + 1],
    /// Index into `symbols` of the first code of each length.
    offset: [u16; MAX_LEN + 1],
    /// Symbols sorted by (code length, symbol).
    symbols: [u16; 257],
}

const fn canonical() -> Canonical {
    let mut c = Canonical {
        count: [0; MAX_LEN + 1],
        first: [0; MAX_LEN + 1],
        offset: [0; MAX_LEN + 1],
        symbols: [0; 257],
    };
    let mut s = 0;
    while s < 257 {
        c.count[CODES[s].1 as usize] += 1;
        s += 1;
    }
    let mut code: u32 = 0;
    let mut next: u16 = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        c.first[len] = code;
        c.offset[len] = next;
        let mut s = 0;
        while s < 257 {
            if CODES[s].1 as usize == len {
                c.symbols[next as usize] = s as u16;
                next += 1;
            }
            s += 1;
        }
        code = (code + c.count[len] as u32) << 1;
        len += 1;
    }
    c
}

static CANONICAL: Canonical = canonical();

/// Decodes a Huffman-coded string, appending to `out`. Fails on the EOS
/// symbol, on padding longer than 7 bits or not made of 1 bits (RFC 7541
/// §5.2), and when `out` would grow beyond `max_out` bytes.
pub fn decode(input: &[u8], out: &mut Vec<u8>, max_out: usize) -> Result<(), HpackError> {
    let c = &CANONICAL;
    let mut code: u32 = 0;
    let mut len: usize = 0;
    for &byte in input {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let count = u32::from(c.count[len]);
            if count > 0 && code >= c.first[len] && code - c.first[len] < count {
                let index = usize::from(c.offset[len]) + (code - c.first[len]) as usize;
                let sym = c.symbols.get(index).copied().unwrap_or(EOS);
                if sym == EOS {
                    return Err(HpackError::HuffmanEos);
                }
                if out.len() >= max_out {
                    return Err(HpackError::StringTooLong { limit: max_out });
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len >= MAX_LEN {
                // Cannot happen with a complete code; kept so that a wrong
                // table fails loudly instead of reading out of bounds.
                return Err(HpackError::HuffmanEos);
            }
        }
    }
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HpackError::HuffmanPadding);
    }
    Ok(())
}

/// Length in bytes of the Huffman coding of `input`.
pub fn encoded_len(input: &[u8]) -> usize {
    let bits: usize = input
        .iter()
        .map(|&b| usize::from(CODES[usize::from(b)].1))
        .sum();
    bits.div_ceil(8)
}

/// Appends the Huffman coding of `input` to `out`, padded with 1 bits.
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in input {
        let (code, len) = CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1u64 << pad) - 1)) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_tables_match_the_rfc_codes() {
        let c = &CANONICAL;
        // Kraft equality: the code is complete, so every bit string decodes.
        let kraft: u64 = CODES
            .iter()
            .map(|&(_, l)| 1u64 << (MAX_LEN - usize::from(l)))
            .sum();
        assert_eq!(kraft, 1u64 << MAX_LEN);
        for (sym, &(code, len)) in CODES.iter().enumerate() {
            let len = usize::from(len);
            let first = c.first[len];
            let rank = c.symbols[usize::from(c.offset[len])..]
                .iter()
                .position(|&s| usize::from(s) == sym)
                .unwrap();
            assert_eq!(first + rank as u32, code, "symbol {sym}");
            assert!(code < (1 << len));
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc7541_appendix_c4_and_c6_strings() {
        // The Huffman-coded literals of RFC 7541 C.4 and C.6.
        let cases = [
            ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
            ("no-cache", "a8eb 1064 9cbf"),
            ("custom-key", "25a8 49e9 5ba9 7d7f"),
            ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
            ("302", "6402"),
            ("private", "aec3 771a 4b"),
            (
                "Mon, 21 Oct 2013 20:13:21 GMT",
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
            ),
            (
                "https://www.example.com",
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
            ),
            ("307", "640e ff"),
            ("gzip", "9bd9 ab"),
        ];
        for (text, code) in cases {
            let code = hex(code);
            let mut out = Vec::new();
            encode(text.as_bytes(), &mut out);
            assert_eq!(out, code, "{text}");
            assert_eq!(encoded_len(text.as_bytes()), code.len());
            let mut back = Vec::new();
            decode(&code, &mut back, 1000).unwrap();
            assert_eq!(back, text.as_bytes());
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        let mut code = Vec::new();
        encode(&all, &mut code);
        let mut back = Vec::new();
        decode(&code, &mut back, 256).unwrap();
        assert_eq!(back, all);
        assert_eq!(
            decode(&code, &mut Vec::new(), 255),
            Err(HpackError::StringTooLong { limit: 255 })
        );
    }

    #[test]
    fn bad_padding_and_eos_are_errors() {
        // 'a' is 00011 (5 bits); padding with zeros is invalid.
        assert_eq!(
            decode(&[0x18], &mut Vec::new(), 10),
            Err(HpackError::HuffmanPadding)
        );
        // 'a' + 3 one bits: valid.
        assert_eq!(decode(&[0x1f], &mut Vec::new(), 10), Ok(()));
        // A whole byte of padding (8 one bits) is too long.
        assert_eq!(
            decode(&[0x1f, 0xff], &mut Vec::new(), 10),
            Err(HpackError::HuffmanPadding)
        );
        // EOS (30 one bits) inside the string.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut Vec::new(), 10),
            Err(HpackError::HuffmanEos)
        );
    }
}
