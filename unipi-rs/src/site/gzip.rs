//! gzip members (RFC 1952) around miniz_oxide's raw deflate: writing one
//! ([`Deflater`]) and checking that a committed `X.gz` decompresses to
//! exactly the bytes of `X` ([`Check`]), both a bounded slice at a time.
//!
//! The gzip wrapper is ten header bytes and an eight-byte trailer; it is
//! written and read here because the no_std deflate crates stop at raw
//! deflate and zlib (miniz_oxide) and the gzip crates need `std::io`.
//!
//! What we write: `1f 8b 08`, no flags, MTIME 0, XFL 0, OS 255
//! ("unknown"), the raw deflate stream, CRC-32 and length. Nothing in it
//! depends on the time or the machine, so the same bytes at the same level
//! always give the same member (and the same ETag).
//!
//! What we accept in a committed `.gz`: exactly one member with method 8
//! (deflate), any of the optional header fields (FEXTRA, FNAME, FCOMMENT,
//! FHCRC, checked when present), no reserved flag bits, a deflate stream
//! that produces exactly the expected bytes, a matching CRC-32 and length,
//! and nothing after the trailer. Browsers stop at the first member, so a
//! second one would be silently lost: it is refused.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress_to_output, create_comp_flags_from_zip_params,
};
use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// The header of every member we write (no name, no time, OS unknown).
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The compression level (zlib's scale; 6 is gzip's and zlib's default).
/// Part of what makes the output, and so its ETag, reproducible.
pub const LEVEL: u8 = 6;

/// Input bytes handed to the compressor per call. Chunks always start at
/// multiples of this from the start of a file, so the output does not
/// depend on how the work was sliced.
const CHUNK: usize = 4096;

const FTEXT: u8 = 1;
const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

/// Why a committed `.gz` is not used as the gzip representation of its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GzipError {
    /// It does not start with the gzip magic bytes.
    NotGzip,
    /// Compression method other than deflate.
    Method(u8),
    /// Reserved header flag bits are set.
    ReservedFlags(u8),
    /// The header's own CRC (FHCRC) does not match.
    HeaderCrc,
    /// The file ends inside the header, the deflate stream or the trailer.
    Truncated,
    /// The deflate stream is corrupt.
    Corrupt,
    /// It decompresses to other bytes than the file, first differing at this
    /// offset (or to more bytes, when the offset is the file's length).
    Differs {
        /// First offset where the decompressed bytes differ.
        offset: usize,
    },
    /// It decompresses to fewer bytes than the file.
    Shorter {
        /// How many bytes it decompresses to.
        len: usize,
    },
    /// The trailer's CRC-32 or length does not match the bytes.
    Trailer,
    /// More data (e.g. a second member) follows the first member.
    TrailingData,
}

impl fmt::Display for GzipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GzipError::NotGzip => f.write_str("not a gzip file"),
            GzipError::Method(m) => write!(f, "compression method {m} is not deflate"),
            GzipError::ReservedFlags(fl) => write!(f, "reserved header flags {fl:#04x} set"),
            GzipError::HeaderCrc => f.write_str("header CRC does not match"),
            GzipError::Truncated => f.write_str("truncated"),
            GzipError::Corrupt => f.write_str("corrupt deflate data"),
            GzipError::Differs { offset } => {
                write!(f, "decompresses to other bytes (from offset {offset})")
            }
            GzipError::Shorter { len } => write!(f, "decompresses to only {len} bytes"),
            GzipError::Trailer => f.write_str("CRC-32 or length in the trailer is wrong"),
            GzipError::TrailingData => f.write_str("data after the first gzip member"),
        }
    }
}

/// Parses the header of a gzip member; returns where the deflate data
/// starts.
pub fn parse_header(data: &[u8]) -> Result<usize, GzipError> {
    let fixed = data
        .get(..10)
        .ok_or(if data.len() >= 2 && data[..2] != [0x1f, 0x8b] {
            GzipError::NotGzip
        } else {
            GzipError::Truncated
        })?;
    if fixed[..2] != [0x1f, 0x8b] {
        return Err(GzipError::NotGzip);
    }
    if fixed[2] != 8 {
        return Err(GzipError::Method(fixed[2]));
    }
    let flags = fixed[3];
    if flags & !(FTEXT | FHCRC | FEXTRA | FNAME | FCOMMENT) != 0 {
        return Err(GzipError::ReservedFlags(flags));
    }
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let len = data.get(pos..pos + 2).ok_or(GzipError::Truncated)?;
        pos += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            let rest = data.get(pos..).ok_or(GzipError::Truncated)?;
            let nul = rest
                .iter()
                .position(|b| *b == 0)
                .ok_or(GzipError::Truncated)?;
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = data.get(pos..pos + 2).ok_or(GzipError::Truncated)?;
        let header = data.get(..pos).ok_or(GzipError::Truncated)?;
        if crc32fast::hash(header) as u16 != u16::from_le_bytes([stored[0], stored[1]]) {
            return Err(GzipError::HeaderCrc);
        }
        pos += 2;
    }
    if pos > data.len() {
        return Err(GzipError::Truncated);
    }
    Ok(pos)
}

/// The trailer of a member whose uncompressed bytes have CRC-32 `crc` and
/// length `len` (modulo 2³²).
pub fn trailer(crc: u32, len: usize) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&(len as u32).to_le_bytes());
    t
}

/// What a slice of work ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// More to do; this much work (bytes) was done.
    More(usize),
    /// Finished; this much work was done in the last slice.
    Done(usize),
}

/// Checks a committed gzip member against the bytes it must decompress
/// to, a bounded slice at a time. Holds miniz_oxide's inflate state (about
/// 43 KiB) while it runs.
pub struct Check {
    state: Box<InflateState>,
    /// Next input byte of the member (after the header once started).
    input: usize,
    /// Bytes of the expected data confirmed so far.
    confirmed: usize,
    crc: crc32fast::Hasher,
    started: bool,
}

impl Default for Check {
    fn default() -> Self {
        Check::new()
    }
}

impl Check {
    /// A check that has not looked at anything yet.
    pub fn new() -> Check {
        Check {
            state: InflateState::new_boxed(DataFormat::Raw),
            input: 0,
            confirmed: 0,
            crc: crc32fast::Hasher::new(),
            started: false,
        }
    }

    /// Continues checking that `gz` decompresses to exactly `expected`,
    /// doing about `budget` bytes of work (input read plus output
    /// compared). Pass the same `gz` and `expected` every time.
    pub fn step(
        &mut self,
        gz: &[u8],
        expected: &[u8],
        budget: usize,
    ) -> Result<Progress, GzipError> {
        if !self.started {
            self.input = parse_header(gz)?;
            self.started = true;
        }
        let mut work = 0;
        let mut out = [0u8; 2048];
        while work < budget {
            let input = gz.get(self.input..).unwrap_or(&[]);
            let r = inflate(&mut self.state, input, &mut out, MZFlush::None);
            self.input += r.bytes_consumed;
            let produced = out.get(..r.bytes_written).unwrap_or(&[]);
            let end = self.confirmed + produced.len();
            let want = expected.get(self.confirmed..end.min(expected.len()));
            match want {
                Some(w) if w == produced => {}
                Some(w) => {
                    let at = w.iter().zip(produced).position(|(a, b)| a != b);
                    return Err(GzipError::Differs {
                        offset: self.confirmed + at.unwrap_or(w.len()),
                    });
                }
                None => {
                    return Err(GzipError::Differs {
                        offset: expected.len(),
                    });
                }
            }
            self.crc.update(produced);
            self.confirmed = end;
            work += r.bytes_consumed + r.bytes_written + 64;
            match r.status {
                Ok(MZStatus::StreamEnd) => {
                    return self.finish(gz, expected).map(|()| Progress::Done(work));
                }
                Ok(_) if r.bytes_consumed == 0 && r.bytes_written == 0 => {
                    return Err(GzipError::Truncated);
                }
                Ok(_) => {}
                Err(MZError::Buf) => return Err(GzipError::Truncated),
                Err(_) => return Err(GzipError::Corrupt),
            }
        }
        Ok(Progress::More(work))
    }

    fn finish(&mut self, gz: &[u8], expected: &[u8]) -> Result<(), GzipError> {
        if self.confirmed != expected.len() {
            return Err(GzipError::Shorter {
                len: self.confirmed,
            });
        }
        let t = gz
            .get(self.input..self.input + 8)
            .ok_or(GzipError::Truncated)?;
        let crc = core::mem::take(&mut self.crc).finalize();
        if t != trailer(crc, expected.len()) {
            return Err(GzipError::Trailer);
        }
        if gz.len() != self.input + 8 {
            return Err(GzipError::TrailingData);
        }
        Ok(())
    }
}

/// Compresses one file after another into gzip members, a bounded slice at
/// a time. Holds miniz_oxide's compressor (about 300 KiB) while it exists.
pub struct Deflater {
    comp: Box<CompressorOxide>,
}

impl Default for Deflater {
    fn default() -> Self {
        Deflater::new()
    }
}

/// One file being compressed by a [`Deflater`].
pub struct Member {
    out: Vec<u8>,
    /// Input bytes taken so far.
    pos: usize,
    crc: crc32fast::Hasher,
    limit: usize,
}

impl Member {
    /// A member for a file whose gzip form is only wanted if it is at most
    /// `limit` bytes long.
    pub fn new(limit: usize) -> Member {
        let mut out = Vec::new();
        out.extend_from_slice(&HEADER);
        Member {
            out,
            pos: 0,
            crc: crc32fast::Hasher::new(),
            limit,
        }
    }
}

/// How compressing a file ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Deflated {
    /// Not finished; this much input was taken in this slice.
    More(usize),
    /// The whole gzip member (work of the last slice).
    Done(Vec<u8>, usize),
    /// It would be longer than the limit: given up (work of the last slice).
    TooLarge(usize),
}

impl Deflater {
    /// A compressor at [`LEVEL`].
    pub fn new() -> Deflater {
        let flags = create_comp_flags_from_zip_params(i32::from(LEVEL), 0, 0);
        Deflater {
            comp: Box::new(CompressorOxide::new(flags)),
        }
    }

    /// Gets ready for the next file.
    pub fn reset(&mut self) {
        self.comp.reset();
    }

    /// Compresses about `budget` more bytes of `data` into `m`. Pass the same
    /// `data` and member every time, and [`reset`](Self::reset) before a new
    /// member.
    pub fn step(&mut self, m: &mut Member, data: &[u8], budget: usize) -> Deflated {
        let mut work = 0;
        loop {
            let end = data.len().min((m.pos / CHUNK + 1) * CHUNK);
            let chunk = data.get(m.pos..end).unwrap_or(&[]);
            let flush = if end == data.len() {
                TDEFLFlush::Finish
            } else {
                TDEFLFlush::None
            };
            let (out, limit) = (&mut m.out, m.limit);
            let (status, used) = compress_to_output(&mut self.comp, chunk, flush, |bytes| {
                out.extend_from_slice(bytes);
                out.len() <= limit
            });
            m.crc.update(chunk.get(..used).unwrap_or(&[]));
            m.pos += used;
            work += used + 64;
            match status {
                TDEFLStatus::Done => {
                    let crc = core::mem::take(&mut m.crc).finalize();
                    m.out.extend_from_slice(&trailer(crc, data.len()));
                    if m.out.len() > m.limit {
                        return Deflated::TooLarge(work);
                    }
                    return Deflated::Done(core::mem::take(&mut m.out), work);
                }
                TDEFLStatus::Okay if used > 0 => {}
                // The callback refused more output (over the limit), or the
                // compressor made no progress: either way there is no
                // member worth keeping.
                _ => return Deflated::TooLarge(work),
            }
            if work >= budget {
                return Deflated::More(work);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn text(n: usize) -> Vec<u8> {
        let words = [
            "unipi ", "muen ", "subject ", "channel ", "<p>", "</p>\n", "rust ",
        ];
        let mut v = Vec::new();
        let mut i = 7u32;
        while v.len() < n {
            i = i.wrapping_mul(1_103_515_245).wrapping_add(12345);
            v.extend_from_slice(words[(i >> 16) as usize % words.len()].as_bytes());
        }
        v.truncate(n);
        v
    }

    fn deflate_all(data: &[u8], budget: usize) -> Option<Vec<u8>> {
        let mut d = Deflater::new();
        let mut m = Member::new(data.len() * 9 / 10 + 100);
        for _ in 0..1_000_000 {
            match d.step(&mut m, data, budget) {
                Deflated::More(w) => assert!(w >= budget),
                Deflated::Done(v, _) => return Some(v),
                Deflated::TooLarge(_) => return None,
            }
        }
        panic!("no end");
    }

    fn check_all(gz: &[u8], expected: &[u8], budget: usize) -> Result<(), GzipError> {
        let mut c = Check::new();
        for _ in 0..1_000_000 {
            match c.step(gz, expected, budget)? {
                Progress::More(w) => assert!(w >= budget),
                Progress::Done(_) => return Ok(()),
            }
        }
        panic!("no end");
    }

    fn inflate_reference(gz: &[u8]) -> Vec<u8> {
        let start = parse_header(gz).unwrap();
        miniz_oxide::inflate::decompress_to_vec(&gz[start..gz.len() - 8]).unwrap()
    }

    #[test]
    fn members_round_trip_and_do_not_depend_on_slicing() {
        for n in [0, 1, 300, 4096, 4097, 70_000] {
            let data = text(n);
            let whole = deflate_all(&data, usize::MAX);
            if n == 0 {
                assert_eq!(inflate_reference(whole.as_ref().unwrap()), data);
            }
            if n < 300 {
                // Tiny inputs do not shrink below the 90 % limit (+100).
                continue;
            }
            let whole = whole.unwrap();
            assert_eq!(&whole[..10], &HEADER);
            assert_eq!(inflate_reference(&whole), data);
            for budget in [1, 100, 5000] {
                assert_eq!(
                    deflate_all(&data, budget).as_ref(),
                    Some(&whole),
                    "{n}/{budget}"
                );
                check_all(&whole, &data, budget).unwrap();
            }
        }
    }

    #[test]
    fn a_reset_compressor_writes_what_a_fresh_one_writes() {
        // The Compressor reuses one Deflater for all files; the bytes (and so
        // the ETags) must not depend on what it compressed before.
        let (a, b) = (text(9000), text(5000));
        let fresh = deflate_all(&b, 777).unwrap();
        let mut d = Deflater::new();
        let mut m = Member::new(a.len());
        while let Deflated::More(_) = d.step(&mut m, &a, 1000) {}
        // Also after giving up half way.
        let mut m = Member::new(10);
        assert!(matches!(d.step(&mut m, &a, 100_000), Deflated::TooLarge(_)));
        d.reset();
        let mut m = Member::new(b.len());
        let again = loop {
            match d.step(&mut m, &b, 777) {
                Deflated::More(_) => {}
                Deflated::Done(v, _) => break v,
                Deflated::TooLarge(_) => panic!(),
            }
        };
        assert_eq!(again, fresh);
    }

    #[test]
    fn incompressible_data_is_given_up() {
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert_eq!(deflate_all(&noise, 4096), None);
    }

    #[test]
    fn gzip_tool_output_is_accepted() {
        extern crate std;
        use std::io::Write;
        use std::process::{Command, Stdio};
        let data = text(10_000);
        for args in [&["-c", "-9"][..], &["-c", "-n", "-1"], &["-c", "--name"]] {
            let child = Command::new("gzip")
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn();
            let Ok(mut child) = child else {
                std::eprintln!("skipping: no gzip");
                return;
            };
            child.stdin.take().unwrap().write_all(&data).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            check_all(&out.stdout, &data, 1000).unwrap();
            // One byte more in the expected file: the member is too short.
            let mut more = data.clone();
            more.push(b'x');
            assert_eq!(
                check_all(&out.stdout, &more, 1000),
                Err(GzipError::Shorter { len: data.len() })
            );
        }
    }

    #[test]
    fn mismatches_are_reported() {
        let data = text(5000);
        let gz = deflate_all(&data, usize::MAX).unwrap();
        let mut other = data.clone();
        other[4000] ^= 1;
        assert_eq!(
            check_all(&gz, &other, 512),
            Err(GzipError::Differs { offset: 4000 })
        );
        assert_eq!(
            check_all(&gz, &data[..4999], 512),
            Err(GzipError::Differs { offset: 4999 })
        );
        let mut bad_crc = gz.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert_eq!(check_all(&bad_crc, &data, 512), Err(GzipError::Trailer));
        let mut bad_len = gz.clone();
        bad_len[n - 1] ^= 1;
        assert_eq!(check_all(&bad_len, &data, 512), Err(GzipError::Trailer));
        let mut two = gz.clone();
        two.extend_from_slice(&gz);
        assert_eq!(check_all(&two, &data, 512), Err(GzipError::TrailingData));
        for cut in [0, 1, 5, 10, 11, n / 2, n - 8, n - 1] {
            let r = check_all(&gz[..cut], &data, 512);
            assert!(
                matches!(r, Err(GzipError::Truncated | GzipError::NotGzip)),
                "{cut}: {r:?}"
            );
        }
        let mut corrupt = gz.clone();
        corrupt[10] = 0xff; // an invalid block type
        assert!(check_all(&corrupt, &data, 512).is_err());
        assert_eq!(
            check_all(b"PK\x03\x04xxxxxxxx", &data, 512),
            Err(GzipError::NotGzip)
        );
        let mut method = gz.clone();
        method[2] = 7;
        assert_eq!(check_all(&method, &data, 512), Err(GzipError::Method(7)));
        let mut reserved = gz.clone();
        reserved[3] = 0x20;
        assert_eq!(
            check_all(&reserved, &data, 512),
            Err(GzipError::ReservedFlags(0x20))
        );
    }

    #[test]
    fn optional_header_fields() {
        let data = text(3000);
        let gz = deflate_all(&data, usize::MAX).unwrap();
        let body = &gz[10..];
        let mut h = vec![
            0x1f,
            0x8b,
            8,
            FEXTRA | FNAME | FCOMMENT | FHCRC,
            1,
            2,
            3,
            4,
            2,
            3,
        ];
        h.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
        h.extend_from_slice(b"name.txt\0comment\0");
        let crc = crc32fast::hash(&h) as u16;
        h.extend_from_slice(&crc.to_le_bytes());
        let start = h.len();
        h.extend_from_slice(body);
        assert_eq!(parse_header(&h), Ok(start));
        check_all(&h, &data, 700).unwrap();
        let mut bad = h.clone();
        bad[start - 1] ^= 1;
        assert_eq!(parse_header(&bad), Err(GzipError::HeaderCrc));
        assert_eq!(parse_header(&h[..14]), Err(GzipError::Truncated));
        assert_eq!(parse_header(&h[..20]), Err(GzipError::Truncated));
    }
}
