//! SHA-1 object ids.

use core::fmt;

use crate::hex;
use crate::object::ObjectKind;

/// A SHA-1 object id (20 bytes). Only SHA-1 repositories are supported.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectId(pub [u8; 20]);

impl ObjectId {
    /// Length of the binary form in bytes.
    pub const LEN: usize = 20;
    /// Length of the hexadecimal form in characters.
    pub const HEX_LEN: usize = 40;

    /// Parses exactly 40 hexadecimal digits (either case). Returns `None` for anything else.
    pub fn from_hex(hex: &[u8]) -> Option<ObjectId> {
        if hex.len() != Self::HEX_LEN {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            out[i] = (hex::value(pair[0])? << 4) | hex::value(pair[1])?;
        }
        Some(ObjectId(out))
    }

    /// Takes the id from exactly 20 raw bytes. Returns `None` if `bytes` is not 20 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<ObjectId> {
        let arr: [u8; 20] = bytes.try_into().ok()?;
        Some(ObjectId(arr))
    }

    /// The raw 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Writes the lowercase hexadecimal form into `out` and returns it as `&str`.
    pub fn to_hex<'a>(&self, out: &'a mut [u8; 40]) -> &'a str {
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = hex::digit(b >> 4);
            out[2 * i + 1] = hex::digit(*b);
        }
        // Only ASCII hex digits were written.
        core::str::from_utf8(out).unwrap_or("")
    }
}

impl fmt::Display for ObjectId {
    /// Formats as 40 lowercase hexadecimal digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 40];
        f.write_str(self.to_hex(&mut buf))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// The id of a blob with content `data`: what `git hash-object` prints for a file, and the
/// id every file of a [`Snapshot`](crate::Snapshot) carries.
pub fn blob_id(data: &[u8]) -> ObjectId {
    hash_object(ObjectKind::Blob, data)
}

/// Computes the git object id of an object: SHA-1 over `"<kind> <len>\0"` followed by `data`.
pub(crate) fn hash_object(kind: ObjectKind, data: &[u8]) -> ObjectId {
    let mut h = ObjectHasher::new(kind, data.len() as u64);
    h.update(data);
    h.finish()
}

/// [`blob_id`] fed in pieces (for content made a slice at a time): the length is known up
/// front because it is part of the hashed header.
pub struct BlobHasher(ObjectHasher);

impl BlobHasher {
    /// A hasher for a blob of `len` bytes.
    pub fn new(len: usize) -> BlobHasher {
        BlobHasher(ObjectHasher::new(ObjectKind::Blob, len as u64))
    }

    /// Hashes the next bytes of the blob.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The blob id (meaningful when exactly `len` bytes were fed).
    pub fn finish(self) -> ObjectId {
        self.0.finish()
    }
}

pub(crate) struct ObjectHasher(sha1::Sha1);

impl ObjectHasher {
    pub(crate) fn new(kind: ObjectKind, len: u64) -> ObjectHasher {
        use sha1::Digest;
        let mut h = sha1::Sha1::new();
        h.update(kind.name().as_bytes());
        h.update(b" ");
        let mut num = [0u8; 20];
        h.update(format_decimal(len, &mut num));
        h.update([0u8]);
        ObjectHasher(h)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        sha1::Digest::update(&mut self.0, data);
    }

    pub(crate) fn finish(self) -> ObjectId {
        ObjectId(sha1::Digest::finalize(self.0).into())
    }
}

/// Formats `n` in decimal into `buf` and returns the written digits.
pub(crate) fn format_decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    #[test]
    fn blob_hasher_in_pieces() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        for step in [1, 7, 4096, 5000] {
            let mut h = BlobHasher::new(data.len());
            for piece in data.chunks(step) {
                h.update(piece);
            }
            assert_eq!(h.finish(), blob_id(&data), "step {step}");
        }
    }

    #[test]
    fn hex_roundtrip() {
        let hex = b"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
        let id = ObjectId::from_hex(hex).unwrap();
        assert_eq!(id.to_string().as_bytes(), hex);
        assert_eq!(
            ObjectId::from_hex(b"E69DE29BB2D1D6434B8B29AE775AD8C2E48C5391"),
            Some(id)
        );
        assert!(ObjectId::from_hex(b"e69de29bb2d1d6434b8b29ae775ad8c2e48c539").is_none());
        assert!(ObjectId::from_hex(b"g69de29bb2d1d6434b8b29ae775ad8c2e48c5391").is_none());
        assert!(ObjectId::from_bytes(&[0; 19]).is_none());
    }

    #[test]
    fn empty_blob_id() {
        assert_eq!(
            blob_id(b"").to_string(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            blob_id(b"hello\n").to_string(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn decimal() {
        let mut b = [0u8; 20];
        assert_eq!(format_decimal(0, &mut b), b"0");
        assert_eq!(format_decimal(u64::MAX, &mut b), b"18446744073709551615");
    }
}
