//! Git delta application (gitformat-pack "Deltified representation"), fully validated.

/// Why a delta was rejected.
pub type DeltaError = &'static str;

/// Reads a delta header varint (7 bits per byte, little-endian groups) at `*pos`.
fn varint(delta: &[u8], pos: &mut usize) -> Result<u64, DeltaError> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let b = *delta.get(*pos).ok_or("truncated size in delta header")?;
        *pos += 1;
        if shift > 63 || (shift > 0 && u64::from(b & 0x7f) >> (64 - shift) != 0) {
            return Err("size in delta header overflows");
        }
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

/// Appends a delta header: the base size and the result size as varints (7 bits per byte,
/// least significant group first), as the delta reader expects them.
pub fn write_header(out: &mut alloc::vec::Vec<u8>, base_len: u64, result_len: u64) {
    for mut n in [base_len, result_len] {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }
}

/// The base size, result size and header length of a delta.
pub fn sizes(delta: &[u8]) -> Result<(u64, u64, usize), DeltaError> {
    let mut pos = 0;
    let base = varint(delta, &mut pos)?;
    let result = varint(delta, &mut pos)?;
    Ok((base, result, pos))
}

/// Applies `delta` to `base`, writing the result into `out`, whose length must be the
/// delta's announced result size. Checks that the base size matches, every copy stays inside
/// the base, no opcode is 0, and exactly `out.len()` bytes are produced. Work is bounded by
/// the sizes of `delta` and `out`.
pub fn apply_into(base: &[u8], delta: &[u8], out: &mut [u8]) -> Result<(), DeltaError> {
    let (base_size, result_size, mut pos) = sizes(delta)?;
    if base_size != base.len() as u64 {
        return Err("base size does not match the base object");
    }
    if result_size != out.len() as u64 {
        return Err("result buffer does not match the announced size");
    }
    let mut written = 0usize;
    while pos < delta.len() {
        let op = delta[pos];
        pos += 1;
        let src = if op & 0x80 != 0 {
            let mut offset = 0usize;
            let mut size = 0usize;
            for i in 0..4 {
                if op & (1 << i) != 0 {
                    let b = *delta.get(pos).ok_or("truncated copy instruction")?;
                    pos += 1;
                    offset |= usize::from(b) << (8 * i);
                }
            }
            for i in 0..3 {
                if op & (0x10 << i) != 0 {
                    let b = *delta.get(pos).ok_or("truncated copy instruction")?;
                    pos += 1;
                    size |= usize::from(b) << (8 * i);
                }
            }
            if size == 0 {
                size = 0x10000;
            }
            let end = offset.checked_add(size).ok_or("copy range overflows")?;
            base.get(offset..end).ok_or("copy range outside the base")?
        } else if op != 0 {
            let n = usize::from(op);
            let src = delta
                .get(pos..pos + n)
                .ok_or("truncated insert instruction")?;
            pos += n;
            src
        } else {
            return Err("reserved opcode 0");
        };
        let dst = out
            .get_mut(written..written + src.len())
            .ok_or("delta produces more than the announced result size")?;
        dst.copy_from_slice(src);
        written += src.len();
    }
    if written != out.len() {
        return Err("delta produces less than the announced result size");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Test helper: allocates the announced result (refusing more than `max`) and applies.
    fn apply(base: &[u8], delta: &[u8], max: u64) -> Result<Vec<u8>, DeltaError> {
        let (_, size, _) = sizes(delta)?;
        if size > max {
            return Err(TOO_LARGE);
        }
        let mut out = vec![0u8; size as usize];
        apply_into(base, delta, &mut out)?;
        Ok(out)
    }
    const TOO_LARGE: DeltaError = "too large";

    fn hdr(base: u64, result: u64) -> Vec<u8> {
        let mut v = vec![];
        write_header(&mut v, base, result);
        v
    }

    #[test]
    fn copy_and_insert() {
        let base = b"hello, world";
        let mut d = hdr(12, 11);
        d.extend_from_slice(&[0x80 | 0x01 | 0x10, 7, 5]); // copy "world"
        d.extend_from_slice(&[6, b' ', b'h', b'e', b'l', b'l', b'o']); // insert
        assert_eq!(apply(base, &d, 100).unwrap(), b"world hello");
        // offset and size omitted: copy from 0, size 0x10000
        let big = vec![7u8; 0x10000];
        let mut d = hdr(0x10000, 0x10000);
        d.push(0x80);
        assert_eq!(apply(&big, &d, 1 << 20).unwrap(), big);
        // empty result
        assert_eq!(apply(b"abc", &hdr(3, 0), 10).unwrap(), b"");
    }

    #[test]
    fn varints() {
        assert_eq!(sizes(&hdr(0, 0)).unwrap(), (0, 0, 2));
        assert_eq!(sizes(&hdr(300, 1 << 40)).unwrap(), (300, 1 << 40, 2 + 6));
        assert_eq!(sizes(&hdr(u64::MAX, 1)).unwrap().0, u64::MAX);
        assert!(sizes(&[0x80]).is_err());
        assert!(sizes(&[0xff; 11]).is_err());
        let mut over = vec![0xff; 9];
        over.push(0x02); // bit 64
        over.push(0);
        assert!(sizes(&over).is_err());
    }

    #[test]
    fn rejects_bad_deltas() {
        let base = b"0123456789";
        let cases: &[(&[u8], DeltaError)] = &[
            (&[9, 1, 1, b'x'], "base size does not match the base object"),
            (&[10, 1, 0], "reserved opcode 0"),
            (
                &[10, 5, 0x80 | 0x01 | 0x10, 8, 5],
                "copy range outside the base",
            ),
            (&[10, 5, 0x80 | 0x0f], "truncated copy instruction"),
            (&[10, 5, 5, b'a'], "truncated insert instruction"),
            (
                &[10, 2, 3, b'a', b'b', b'c'],
                "delta produces more than the announced result size",
            ),
            (
                &[10, 4, 3, b'a', b'b', b'c'],
                "delta produces less than the announced result size",
            ),
            (
                &[10, 4, 0x80 | 0x10, 4, 0x80 | 0x10, 4],
                "delta produces more than the announced result size",
            ),
        ];
        for (d, want) in cases {
            assert_eq!(apply(base, d, 100), Err(*want), "{d:?}");
        }
        // delta bomb: tiny delta claiming a huge result is refused before allocating
        let mut d = hdr(10, 1 << 40);
        d.push(0x80);
        assert_eq!(apply(base, &d, 1 << 20), Err(TOO_LARGE));
        // copy offset with all four bytes set far outside
        let d = [10, 1, 0x80 | 0x0f | 0x10, 0xff, 0xff, 0xff, 0xff, 1];
        assert_eq!(apply(base, &d, 100), Err("copy range outside the base"));
    }
}
