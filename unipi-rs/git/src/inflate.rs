//! Streaming zlib inflation with an exact output bound (miniz_oxide).

use alloc::boxed::Box;
use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// Why inflation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The zlib data is corrupt (including a bad Adler-32).
    Corrupt,
    /// The stream would produce more bytes than the output slice holds.
    Overflow,
}

/// A reusable zlib stream decoder (about 43 KiB of state).
pub(crate) struct Inflater {
    state: Box<InflateState>,
}

impl core::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Inflater")
    }
}

impl Inflater {
    /// A fresh decoder for zlib-wrapped streams.
    pub fn new() -> Self {
        Inflater {
            state: InflateState::new_boxed(DataFormat::Zlib),
        }
    }

    /// Prepares for the next stream.
    pub fn reset(&mut self) {
        self.state.reset(DataFormat::Zlib);
    }

    /// Inflates from `input` into `out[*filled..]`, advancing `*filled`. Output beyond the end
    /// of `out` is an [`InflateError::Overflow`]. Returns the number of input bytes used and
    /// whether the stream ended; input after the end of the stream is not consumed.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        filled: &mut usize,
    ) -> Result<(usize, bool), InflateError> {
        let mut used = 0;
        let mut probe = [0u8; 8];
        loop {
            let full = *filled >= out.len();
            let target: &mut [u8] = if full {
                &mut probe
            } else {
                &mut out[*filled..]
            };
            let r = inflate(&mut self.state, &input[used..], target, MZFlush::None);
            used += r.bytes_consumed;
            if full && r.bytes_written > 0 {
                return Err(InflateError::Overflow);
            }
            if !full {
                *filled += r.bytes_written;
            }
            match r.status {
                Ok(MZStatus::StreamEnd) => return Ok((used, true)),
                Ok(_) => {
                    if r.bytes_consumed == 0 && r.bytes_written == 0 {
                        return Ok((used, false));
                    }
                }
                Err(MZError::Buf) => return Ok((used, false)),
                Err(_) => return Err(InflateError::Corrupt),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use miniz_oxide::deflate::compress_to_vec_zlib;

    fn data(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i * 7 % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn exact_end_detection_in_pieces() {
        let plain = data(200_000);
        let mut z = compress_to_vec_zlib(&plain, 6);
        let zlen = z.len();
        z.extend_from_slice(b"NEXT ENTRY");
        for step in [1, 7, 4096, z.len()] {
            let mut inf = Inflater::new();
            let mut out = vec![0u8; plain.len()];
            let mut filled = 0;
            let mut pos = 0;
            let mut done = false;
            while !done {
                let end = (pos + step).min(z.len());
                let (used, fin) = inf.inflate(&z[pos..end], &mut out, &mut filled).unwrap();
                pos += used;
                done = fin;
                assert!(pos <= zlen);
            }
            assert_eq!(pos, zlen, "step {step}");
            assert_eq!(filled, plain.len());
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn empty_stream_and_reset() {
        let z = compress_to_vec_zlib(b"", 6);
        let mut inf = Inflater::new();
        let mut filled = 0;
        assert_eq!(
            inf.inflate(&z, &mut [], &mut filled).unwrap(),
            (z.len(), true)
        );
        inf.reset();
        let z2 = compress_to_vec_zlib(b"abc", 6);
        let mut out = [0u8; 3];
        assert_eq!(
            inf.inflate(&z2, &mut out, &mut filled).unwrap(),
            (z2.len(), true)
        );
        assert_eq!(&out, b"abc");
        // a short output is an overflow, not a silent truncation
        inf.reset();
        let mut filled = 0;
        assert_eq!(
            inf.inflate(&z2, &mut out[..2], &mut filled),
            Err(InflateError::Overflow)
        );
    }

    #[test]
    fn overflow_and_corruption() {
        let plain = data(10_000);
        let z = compress_to_vec_zlib(&plain, 6);
        let mut inf = Inflater::new();
        let mut out = vec![0u8; 10_000];
        assert_eq!(
            inf.inflate(&z, &mut out[..9_999], &mut 0),
            Err(InflateError::Overflow)
        );
        let mut bad = z.clone();
        let n = bad.len();
        bad[n - 1] ^= 1; // adler32
        inf.reset();
        assert_eq!(
            inf.inflate(&bad, &mut out, &mut 0),
            Err(InflateError::Corrupt)
        );
        let mut bad = z.clone();
        bad[0] = 0x12; // bad zlib header
        inf.reset();
        assert_eq!(
            inf.inflate(&bad, &mut out, &mut 0),
            Err(InflateError::Corrupt)
        );
    }
}
