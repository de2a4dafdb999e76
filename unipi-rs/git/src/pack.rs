//! Streaming packfile reader (gitformat-pack): parses entries as bytes arrive, inflates them,
//! resolves OFS_DELTA/REF_DELTA, hashes every object and verifies the trailer.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use sha1::{Digest, Sha1};

use crate::base::BaseObjects;
use crate::delta;
use crate::error::Error;
use crate::inflate::{InflateError, Inflater};
use crate::limits::Limits;
use crate::object::ObjectKind;
#[cfg(test)]
use crate::oid::blob_id;
use crate::oid::{ObjectId, hash_object};

/// The type field of a pack entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A whole object.
    Base(ObjectKind),
    /// A delta against the entry at this absolute pack offset.
    OfsDelta(u64),
    /// A delta against the object with this id.
    RefDelta(ObjectId),
}

/// A decoded pack entry header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryHeader {
    pub kind: EntryKind,
    /// Inflated size of the entry's data (the object, or the delta).
    pub size: u64,
}

/// Longest possible entry header: 10 size bytes, 10 offset bytes or a 20-byte id.
const MAX_HEADER: usize = 32;

/// Decodes an entry header at the start of `buf` for the entry at pack offset `offset`.
/// `Ok(None)` means more bytes are needed.
pub(crate) fn parse_entry_header(
    buf: &[u8],
    offset: u64,
) -> Result<Option<(EntryHeader, usize)>, &'static str> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let type_bits = (first >> 4) & 7;
    let mut size = u64::from(first & 0x0f);
    let mut shift = 4u32;
    let mut pos = 1;
    let mut byte = first;
    while byte & 0x80 != 0 {
        let Some(&b) = buf.get(pos) else {
            return Ok(None);
        };
        pos += 1;
        if shift > 60 || (u64::from(b & 0x7f) << shift) >> shift != u64::from(b & 0x7f) {
            return Err("object size overflows");
        }
        size |= u64::from(b & 0x7f) << shift;
        shift += 7;
        byte = b;
    }
    let kind = match type_bits {
        1 => EntryKind::Base(ObjectKind::Commit),
        2 => EntryKind::Base(ObjectKind::Tree),
        3 => EntryKind::Base(ObjectKind::Blob),
        4 => EntryKind::Base(ObjectKind::Tag),
        6 => {
            let Some(&b) = buf.get(pos) else {
                return Ok(None);
            };
            pos += 1;
            let mut rel = u64::from(b & 0x7f);
            let mut byte = b;
            while byte & 0x80 != 0 {
                let Some(&b) = buf.get(pos) else {
                    return Ok(None);
                };
                pos += 1;
                rel = rel
                    .checked_add(1)
                    .and_then(|r| r.checked_mul(128))
                    .ok_or("delta base offset overflows")?
                    | u64::from(b & 0x7f);
                byte = b;
            }
            if rel == 0 || rel > offset {
                return Err("delta base offset points outside the pack");
            }
            EntryKind::OfsDelta(offset - rel)
        }
        7 => {
            let Some(id) = buf.get(pos..pos + 20) else {
                return Ok(None);
            };
            pos += 20;
            EntryKind::RefDelta(ObjectId::from_bytes(id).ok_or("bad base id")?)
        }
        _ => return Err("invalid object type"),
    };
    Ok(Some((EntryHeader { kind, size }, pos)))
}

/// Appends a pack entry header: `type_code` (1 commit, 2 tree, 3 blob, 4 tag, 6 OFS_DELTA,
/// 7 REF_DELTA) and the inflated `size`, as the pack reader expects them. For deltas the
/// base reference follows (see [`write_ofs_offset`], or the base's 20-byte id).
pub fn write_entry_header(out: &mut Vec<u8>, type_code: u8, size: u64) {
    let mut b = ((type_code & 7) << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(b | 0x80);
        b = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(b);
}

/// Appends the base reference of an OFS_DELTA entry: how many bytes before the delta entry
/// its base entry starts (at least 1).
pub fn write_ofs_offset(out: &mut Vec<u8>, mut distance: u64) {
    let mut bytes = [0u8; 10];
    let mut i = bytes.len() - 1;
    bytes[i] = (distance & 0x7f) as u8;
    distance >>= 7;
    while distance != 0 {
        distance -= 1;
        i -= 1;
        bytes[i] = 0x80 | (distance & 0x7f) as u8;
        distance >>= 7;
    }
    out.extend_from_slice(&bytes[i..]);
}

/// One object held in memory.
#[derive(Clone, Debug)]
pub(crate) struct Object {
    pub kind: ObjectKind,
    pub data: Arc<[u8]>,
    /// Length of the delta chain that produced it (0 for whole objects).
    pub depth: u32,
}

/// A delta result: id, type, content and chain depth.
type Resolved = (ObjectId, ObjectKind, Arc<[u8]>, u32);

/// Where a delta's base is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum BaseKey {
    Offset(u64),
    Oid(ObjectId),
}

/// A delta whose base has not been seen yet.
#[derive(Debug)]
struct PendingDelta {
    offset: u64,
    data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PackState {
    Header,
    EntryHeader,
    EntryData,
    Trailer,
    Done,
}

/// Where an entry is inflated to: whole objects go straight into their final shared
/// allocation, deltas into a temporary buffer.
#[derive(Debug)]
enum EntryBuf {
    Object(Arc<[u8]>),
    Delta(Vec<u8>),
}

#[derive(Debug)]
struct EntryInProgress {
    offset: u64,
    header: EntryHeader,
    buf: EntryBuf,
    filled: usize,
}

/// A zero-filled shared buffer of `len` bytes, allocated once (no intermediate copy).
fn shared_zeroed(len: usize) -> Arc<[u8]> {
    core::iter::repeat_n(0u8, len).collect()
}

/// Counters reported in [`crate::Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PackCounters {
    pub pack_bytes: u64,
    pub objects: u32,
    pub deltas: u32,
    pub total_objects: u32,
    pub inflated_bytes: u64,
    pub live_bytes: u64,
    pub peak_bytes: u64,
    /// REF_DELTA entries whose base was one of the base objects (a thin pack).
    pub thin_deltas: u32,
}

/// The streaming pack reader and the object store it fills.
#[derive(Debug)]
pub(crate) struct PackReader {
    limits: Limits,
    state: PackState,
    hasher: Sha1,
    buf: Vec<u8>,
    current: Option<EntryInProgress>,
    inflater: Inflater,
    /// Entry offsets in pack order with the id once resolved.
    offsets: Vec<(u64, Option<ObjectId>)>,
    objects: BTreeMap<ObjectId, Object>,
    pending: BTreeMap<BaseKey, Vec<PendingDelta>>,
    pending_count: usize,
    counters: PackCounters,
    /// Objects the client already has: REF_DELTA bases of a thin pack.
    base: Option<Arc<BaseObjects>>,
}

impl PackReader {
    /// A reader enforcing `limits`; REF_DELTA entries may refer to `base` (a thin pack).
    pub fn new(limits: Limits, base: Option<Arc<BaseObjects>>) -> Self {
        PackReader {
            base,
            limits,
            state: PackState::Header,
            hasher: Sha1::new(),
            buf: Vec::new(),
            current: None,
            inflater: Inflater::new(),
            offsets: Vec::new(),
            objects: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_count: 0,
            counters: PackCounters::default(),
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> PackCounters {
        self.counters
    }

    /// The objects read so far, by id.
    #[cfg(test)]
    pub fn objects(&self) -> &BTreeMap<ObjectId, Object> {
        &self.objects
    }

    fn consume(&mut self, bytes: &[u8], hash: bool) -> Result<(), Error> {
        self.counters.pack_bytes += bytes.len() as u64;
        if self.counters.pack_bytes > self.limits.max_pack_bytes {
            return Err(Error::PackTooLarge {
                limit: self.limits.max_pack_bytes,
            });
        }
        if hash {
            self.hasher.update(bytes);
        }
        Ok(())
    }

    fn note_memory(&mut self, transient: u64) {
        let now = self.counters.live_bytes + transient;
        if now > self.counters.peak_bytes {
            self.counters.peak_bytes = now;
        }
    }

    fn add_inflated(&mut self, n: u64) -> Result<(), Error> {
        self.counters.inflated_bytes += n;
        if self.counters.inflated_bytes > self.limits.max_inflated_bytes {
            return Err(Error::InflatedTooLarge {
                limit: self.limits.max_inflated_bytes,
            });
        }
        Ok(())
    }

    /// Feeds pack bytes. Everything is consumed or an error returned.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            match self.state {
                PackState::Header => {
                    let take = (12 - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    self.consume(&data[..take], true)?;
                    data = &data[take..];
                    if self.buf.len() == 12 {
                        self.parse_pack_header()?;
                    }
                }
                PackState::EntryHeader => {
                    let had = self.buf.len();
                    let take = (MAX_HEADER - had).min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    let offset = self.counters.pack_bytes - had as u64;
                    match parse_entry_header(&self.buf, offset) {
                        Ok(Some((header, len))) => {
                            let used = len - had;
                            self.consume(&data[..used], true)?;
                            data = &data[used..];
                            self.buf.clear();
                            self.start_entry(offset, header)?;
                        }
                        Ok(None) => {
                            self.consume(&data[..take], true)?;
                            data = &data[take..];
                            if self.buf.len() >= MAX_HEADER {
                                return Err(Error::PackEntryHeader {
                                    offset,
                                    reason: "header too long",
                                });
                            }
                        }
                        Err(reason) => return Err(Error::PackEntryHeader { offset, reason }),
                    }
                }
                PackState::EntryData => {
                    let Some(cur) = self.current.as_mut() else {
                        return Err(Error::Usage("pack entry state lost"));
                    };
                    let out: &mut [u8] = match &mut cur.buf {
                        EntryBuf::Object(arc) => {
                            Arc::get_mut(arc).ok_or(Error::Usage("entry buffer shared"))?
                        }
                        EntryBuf::Delta(v) => v,
                    };
                    let (offset, expected) = (cur.offset, cur.header.size);
                    let (used, finished) = self
                        .inflater
                        .inflate(data, out, &mut cur.filled)
                        .map_err(|e| match e {
                            InflateError::Corrupt => Error::Zlib { offset },
                            InflateError::Overflow => Error::SizeMismatch {
                                offset,
                                expected,
                                actual: expected + 1,
                            },
                        })?;
                    self.consume(&data[..used], true)?;
                    data = &data[used..];
                    if finished {
                        self.finish_entry()?;
                    }
                }
                PackState::Trailer => {
                    let take = (20 - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    self.consume(&data[..take], false)?;
                    data = &data[take..];
                    if self.buf.len() == 20 {
                        self.finish_pack()?;
                    }
                }
                PackState::Done => return Err(Error::PackTrailingData),
            }
        }
        Ok(())
    }

    fn parse_pack_header(&mut self) -> Result<(), Error> {
        if &self.buf[..4] != b"PACK" {
            return Err(Error::PackSignature);
        }
        let version = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
        if version != 2 && version != 3 {
            return Err(Error::PackVersion(version));
        }
        let count = u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
        if count > self.limits.max_objects {
            return Err(Error::TooManyObjects {
                count,
                limit: self.limits.max_objects,
            });
        }
        self.counters.total_objects = count;
        self.buf.clear();
        self.state = if count == 0 {
            PackState::Trailer
        } else {
            PackState::EntryHeader
        };
        Ok(())
    }

    fn start_entry(&mut self, offset: u64, header: EntryHeader) -> Result<(), Error> {
        if header.size > self.limits.max_object_size {
            return Err(Error::ObjectTooLarge {
                size: header.size,
                limit: self.limits.max_object_size,
            });
        }
        // The announced size is charged up front, so that entries that lie about their
        // size cannot make us allocate (and zero) more than the inflated-bytes limit.
        self.add_inflated(header.size)?;
        let len =
            usize::try_from(header.size).map_err(|_| Error::OutOfMemory { bytes: header.size })?;
        let buf = match header.kind {
            EntryKind::Base(_) => EntryBuf::Object(shared_zeroed(len)),
            _ => {
                let mut v = Vec::new();
                v.try_reserve_exact(len)
                    .map_err(|_| Error::OutOfMemory { bytes: header.size })?;
                v.resize(len, 0);
                EntryBuf::Delta(v)
            }
        };
        self.note_memory(header.size);
        self.inflater.reset();
        self.offsets.push((offset, None));
        self.current = Some(EntryInProgress {
            offset,
            header,
            buf,
            filled: 0,
        });
        self.state = PackState::EntryData;
        Ok(())
    }

    fn finish_entry(&mut self) -> Result<(), Error> {
        let cur = self
            .current
            .take()
            .ok_or(Error::Usage("pack entry state lost"))?;
        if cur.filled as u64 != cur.header.size {
            return Err(Error::SizeMismatch {
                offset: cur.offset,
                expected: cur.header.size,
                actual: cur.filled as u64,
            });
        }
        self.counters.objects += 1;
        self.state = if self.counters.objects == self.counters.total_objects {
            PackState::Trailer
        } else {
            PackState::EntryHeader
        };
        let delta = match (cur.header.kind, cur.buf) {
            (EntryKind::Base(kind), EntryBuf::Object(data)) => {
                let oid = hash_object(kind, &data);
                return self.insert(cur.offset, oid, kind, data, 0);
            }
            (_, EntryBuf::Delta(delta)) => {
                self.counters.deltas += 1;
                delta
            }
            _ => return Err(Error::Usage("entry buffer of the wrong kind")),
        };
        match cur.header.kind {
            EntryKind::Base(_) => Err(Error::Usage("entry buffer of the wrong kind")),
            EntryKind::OfsDelta(base_offset) => {
                let idx = self
                    .offsets
                    .binary_search_by_key(&base_offset, |e| e.0)
                    .map_err(|_| Error::DeltaBaseMissing {
                        offset: cur.offset,
                        base: None,
                    })?;
                match self.offsets[idx].1 {
                    Some(base) => self.apply_delta(cur.offset, base, &delta),
                    None => self.defer(BaseKey::Offset(base_offset), cur.offset, delta),
                }
            }
            EntryKind::RefDelta(base) => {
                let in_base = || self.base.as_ref().is_some_and(|b| b.get(&base).is_some());
                if self.objects.contains_key(&base) || in_base() {
                    self.apply_delta(cur.offset, base, &delta)
                } else {
                    self.defer(BaseKey::Oid(base), cur.offset, delta)
                }
            }
        }
    }

    fn defer(&mut self, key: BaseKey, offset: u64, data: Vec<u8>) -> Result<(), Error> {
        self.counters.live_bytes += data.len() as u64;
        self.note_memory(0);
        self.pending_count += 1;
        self.pending
            .entry(key)
            .or_default()
            .push(PendingDelta { offset, data });
        Ok(())
    }

    /// Applies a delta to its (present) base and returns the resulting object.
    fn resolve(
        &mut self,
        offset: u64,
        base: ObjectId,
        delta_data: &[u8],
    ) -> Result<Resolved, Error> {
        let (kind, base_data, base_depth) = match self.objects.get(&base) {
            Some(o) => (o.kind, Arc::clone(&o.data), o.depth),
            None => {
                let (kind, data) = self.base.as_ref().and_then(|b| b.get(&base)).ok_or(
                    Error::DeltaBaseMissing {
                        offset,
                        base: Some(base),
                    },
                )?;
                self.counters.thin_deltas += 1;
                (kind, Arc::clone(data), 0)
            }
        };
        let depth = base_depth + 1;
        if depth > self.limits.max_delta_depth {
            return Err(Error::DeltaTooDeep {
                limit: self.limits.max_delta_depth,
            });
        }
        let (_, result_size, _) =
            delta::sizes(delta_data).map_err(|reason| Error::Delta { offset, reason })?;
        if result_size > self.limits.max_object_size {
            return Err(Error::ObjectTooLarge {
                size: result_size,
                limit: self.limits.max_object_size,
            });
        }
        self.add_inflated(result_size)?;
        let len =
            usize::try_from(result_size).map_err(|_| Error::OutOfMemory { bytes: result_size })?;
        let mut result = shared_zeroed(len);
        let out = Arc::get_mut(&mut result).ok_or(Error::Usage("result buffer shared"))?;
        delta::apply_into(&base_data, delta_data, out)
            .map_err(|reason| Error::Delta { offset, reason })?;
        self.note_memory(result_size + delta_data.len() as u64);
        let oid = hash_object(kind, &result);
        Ok((oid, kind, result, depth))
    }

    fn apply_delta(&mut self, offset: u64, base: ObjectId, delta_data: &[u8]) -> Result<(), Error> {
        let (oid, kind, data, depth) = self.resolve(offset, base, delta_data)?;
        self.insert(offset, oid, kind, data, depth)
    }

    /// Records the object of the entry at `offset` without resolving dependants.
    fn store(&mut self, offset: u64, oid: ObjectId, kind: ObjectKind, data: Arc<[u8]>, depth: u32) {
        if let Ok(i) = self.offsets.binary_search_by_key(&offset, |e| e.0) {
            self.offsets[i].1 = Some(oid);
        }
        if !self.objects.contains_key(&oid) {
            self.counters.live_bytes += data.len() as u64;
            self.note_memory(0);
            self.objects.insert(oid, Object { kind, data, depth });
        }
    }

    /// Records an object and resolves, iteratively, every delta that waited for it.
    fn insert(
        &mut self,
        offset: u64,
        oid: ObjectId,
        kind: ObjectKind,
        data: Arc<[u8]>,
        depth: u32,
    ) -> Result<(), Error> {
        self.store(offset, oid, kind, data, depth);
        let mut ready: Vec<(u64, ObjectId)> = alloc::vec![(offset, oid)];
        while let Some((off, id)) = ready.pop() {
            for key in [BaseKey::Offset(off), BaseKey::Oid(id)] {
                let Some(list) = self.pending.remove(&key) else {
                    continue;
                };
                for p in list {
                    self.pending_count -= 1;
                    self.counters.live_bytes -= p.data.len() as u64;
                    let (new_id, kind, data, depth) = self.resolve(p.offset, id, &p.data)?;
                    self.store(p.offset, new_id, kind, data, depth);
                    ready.push((p.offset, new_id));
                }
            }
        }
        Ok(())
    }

    fn finish_pack(&mut self) -> Result<(), Error> {
        let digest: [u8; 20] = core::mem::take(&mut self.hasher).finalize().into();
        if digest[..] != self.buf[..] {
            return Err(Error::PackChecksum);
        }
        self.buf.clear();
        // Report a missing REF_DELTA base first: OFS deltas only wait for entries that wait
        // themselves.
        let missing = self
            .pending
            .iter()
            .find(|(k, _)| matches!(k, BaseKey::Oid(_)));
        if let Some((key, list)) = missing.or_else(|| self.pending.iter().next()) {
            let offset = list.first().map(|p| p.offset).unwrap_or(0);
            return Err(Error::DeltaBaseMissing {
                offset,
                base: match key {
                    BaseKey::Oid(id) => Some(*id),
                    BaseKey::Offset(_) => None,
                },
            });
        }
        self.state = PackState::Done;
        Ok(())
    }

    /// Called when the pack stream ended: errors unless the pack was complete.
    pub fn finish(&self) -> Result<(), Error> {
        if self.state == PackState::Done {
            Ok(())
        } else {
            Err(Error::PackTruncated)
        }
    }

    /// Gives up the object store, dropping everything else (inflater, indexes).
    pub fn into_objects(self) -> BTreeMap<ObjectId, Object> {
        self.objects
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;
    use miniz_oxide::deflate::compress_to_vec_zlib;

    /// Encodes an entry header (type + size varint).
    pub fn entry_header(ty: u8, size: u64) -> Vec<u8> {
        let mut out = vec![];
        write_entry_header(&mut out, ty, size);
        out
    }

    /// Encodes an OFS_DELTA relative offset.
    pub fn ofs(rel: u64) -> Vec<u8> {
        let mut out = vec![];
        write_ofs_offset(&mut out, rel);
        out
    }

    /// A raw pack entry: type, extra header bytes (base ref), uncompressed data.
    pub struct RawEntry {
        pub ty: u8,
        pub base: Vec<u8>,
        pub data: Vec<u8>,
    }

    pub fn build_pack(entries: &[RawEntry]) -> Vec<u8> {
        let mut p = b"PACK\0\0\0\x02".to_vec();
        p.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for e in entries {
            p.extend_from_slice(&entry_header(e.ty, e.data.len() as u64));
            p.extend_from_slice(&e.base);
            p.extend_from_slice(&compress_to_vec_zlib(&e.data, 6));
        }
        let digest: [u8; 20] = Sha1::digest(&p).into();
        p.extend_from_slice(&digest);
        p
    }

    pub fn delta(base_len: usize, result_len: usize, ops: &[u8]) -> Vec<u8> {
        let mut v = vec![];
        delta::write_header(&mut v, base_len as u64, result_len as u64);
        v.extend_from_slice(ops);
        v
    }

    fn blob(data: &[u8]) -> RawEntry {
        RawEntry {
            ty: 3,
            base: vec![],
            data: data.to_vec(),
        }
    }

    fn read(pack: &[u8], step: usize, limits: Limits) -> Result<PackReader, Error> {
        let mut r = PackReader::new(limits, None);
        for chunk in pack.chunks(step) {
            r.feed(chunk)?;
        }
        r.finish()?;
        Ok(r)
    }

    #[test]
    fn entry_headers() {
        assert_eq!(
            parse_entry_header(&[0x35], 12).unwrap(),
            Some((
                EntryHeader {
                    kind: EntryKind::Base(ObjectKind::Blob),
                    size: 5
                },
                1
            ))
        );
        let h = entry_header(1, 1_000_000);
        assert_eq!(
            parse_entry_header(&h, 12).unwrap().unwrap().0.size,
            1_000_000
        );
        assert_eq!(parse_entry_header(&h[..1], 12).unwrap(), None);
        assert_eq!(parse_entry_header(&[], 12).unwrap(), None);
        let mut d = entry_header(6, 10);
        d.extend_from_slice(&ofs(300));
        assert_eq!(
            parse_entry_header(&d, 1000).unwrap().unwrap().0.kind,
            EntryKind::OfsDelta(700)
        );
        assert_eq!(
            parse_entry_header(&d, 299),
            Err("delta base offset points outside the pack")
        );
        assert_eq!(parse_entry_header(&d[..d.len() - 1], 1000).unwrap(), None);
        let mut zero = entry_header(6, 10);
        zero.push(0);
        assert!(parse_entry_header(&zero, 1000).is_err());
        let mut r = entry_header(7, 3);
        r.extend_from_slice(&[0x11; 20]);
        assert_eq!(
            parse_entry_header(&r, 12).unwrap().unwrap(),
            (
                EntryHeader {
                    kind: EntryKind::RefDelta(ObjectId([0x11; 20])),
                    size: 3
                },
                21
            )
        );
        assert_eq!(parse_entry_header(&r[..20], 12).unwrap(), None);
        assert_eq!(parse_entry_header(&[0x05], 12), Err("invalid object type"));
        assert_eq!(parse_entry_header(&[0x55], 12), Err("invalid object type"));
        let overflow = [
            0xb0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert_eq!(
            parse_entry_header(&overflow, 12),
            Err("object size overflows")
        );
        let mut big_ofs = entry_header(6, 1);
        big_ofs.extend_from_slice(&[0xff; 10]);
        big_ofs.push(0x7f);
        assert_eq!(
            parse_entry_header(&big_ofs, u64::MAX),
            Err("delta base offset overflows")
        );
    }

    #[test]
    fn whole_objects_any_chunking() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let pack = build_pack(&[blob(b"hello\n"), blob(b""), blob(&big), blob(b"hello\n")]);
        for step in [1, 13, 4096, pack.len()] {
            let r = read(&pack, step, Limits::default()).unwrap();
            let c = r.counters();
            assert_eq!(c.objects, 4);
            assert_eq!(c.pack_bytes, pack.len() as u64);
            assert_eq!(r.objects().len(), 3);
            let id = blob_id(b"hello\n");
            assert_eq!(&*r.objects()[&id].data, b"hello\n");
            assert!(r.objects().contains_key(&blob_id(&big)));
        }
    }

    #[test]
    fn deltas() {
        let base = b"0123456789abcdef".to_vec();
        // result "abcdef0123" = copy(10,6) + copy(0,4)
        let d1 = delta(16, 10, &[0x91, 10, 6, 0x90, 4]);
        let first_len = {
            let mut v = entry_header(3, 16);
            v.extend_from_slice(&compress_to_vec_zlib(&base, 6));
            (12 + v.len()) as u64
        };
        // ofs-delta to entry 0, then a ref-delta on the ofs-delta's result, then a ref-delta
        // whose base comes later in the pack.
        let mid = blob_id(b"abcdef0123");
        let later = blob_id(b"later!");
        let d2 = delta(10, 3, &[3, b'x', b'y', b'z']);
        let d3 = delta(6, 6, &[0x90, 6]);
        let pack = build_pack(&[
            blob(&base),
            RawEntry {
                ty: 6,
                base: ofs(first_len - 12),
                data: d1,
            },
            RawEntry {
                ty: 7,
                base: mid.0.to_vec(),
                data: d2,
            },
            RawEntry {
                ty: 7,
                base: later.0.to_vec(),
                data: d3,
            },
            blob(b"later!"),
        ]);
        for step in [1, 7, pack.len()] {
            let r = read(&pack, step, Limits::default()).unwrap();
            let objs = r.objects();
            assert_eq!(&*objs[&mid].data, b"abcdef0123");
            assert_eq!(objs[&mid].depth, 1);
            let xyz = blob_id(b"xyz");
            assert_eq!(objs[&xyz].depth, 2);
            assert_eq!(objs[&later].depth, 0);
            assert_eq!(objs.len(), 4);
        }
        // delta chain limit
        let limits = Limits {
            max_delta_depth: 1,
            ..Limits::default()
        };
        assert_eq!(
            read(&pack, 100, limits).err(),
            Some(Error::DeltaTooDeep { limit: 1 })
        );
    }

    #[test]
    fn missing_and_bad_bases() {
        let d = delta(6, 6, &[0x90, 6]);
        let pack = build_pack(&[RawEntry {
            ty: 7,
            base: vec![0x22; 20],
            data: d.clone(),
        }]);
        assert_eq!(
            read(&pack, 100, Limits::default()).err(),
            Some(Error::DeltaBaseMissing {
                offset: 12,
                base: Some(ObjectId([0x22; 20]))
            })
        );
        // ofs-delta pointing into the middle of the previous entry
        let pack = build_pack(&[
            blob(b"later!"),
            RawEntry {
                ty: 6,
                base: ofs(3),
                data: d,
            },
        ]);
        assert!(matches!(
            read(&pack, 100, Limits::default()),
            Err(Error::DeltaBaseMissing { base: None, .. })
        ));
        // bad copy in a delta
        let pack = build_pack(&[
            blob(b"later!"),
            RawEntry {
                ty: 7,
                base: blob_id(b"later!").0.to_vec(),
                data: delta(6, 6, &[0x91, 4, 6]),
            },
        ]);
        assert!(matches!(
            read(&pack, 100, Limits::default()),
            Err(Error::Delta {
                reason: "copy range outside the base",
                ..
            })
        ));
    }

    #[test]
    fn delta_bomb_is_refused() {
        let base = blob_id(b"x");
        let bomb = delta(1, 1 << 40, &[0x80]);
        let pack = build_pack(&[
            blob(b"x"),
            RawEntry {
                ty: 7,
                base: base.0.to_vec(),
                data: bomb,
            },
        ]);
        assert_eq!(
            read(&pack, 100, Limits::default()).err(),
            Some(Error::ObjectTooLarge {
                size: 1 << 40,
                limit: 64 << 20
            })
        );
        // Many medium deltas against one base exceed the inflated total.
        let base_data = vec![b'a'; 0x10000];
        let base = blob_id(&base_data);
        let mut entries = vec![blob(&base_data)];
        for i in 0..20u8 {
            let mut ops = vec![0x80; 16]; // 16 copies of 64 KiB
            ops.extend_from_slice(&[1, i]);
            entries.push(RawEntry {
                ty: 7,
                base: base.0.to_vec(),
                data: delta(0x10000, 16 * 0x10000 + 1, &ops),
            });
        }
        let pack = build_pack(&entries);
        let limits = Limits {
            max_inflated_bytes: 10 << 20,
            ..Limits::default()
        };
        assert_eq!(
            read(&pack, 4096, limits).err(),
            Some(Error::InflatedTooLarge { limit: 10 << 20 })
        );
    }

    #[test]
    fn corruption() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 256) as u8).collect();
        let pack = build_pack(&[blob(&data), blob(b"tail")]);
        // wrong trailer
        let mut bad = pack.clone();
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        assert_eq!(
            read(&bad, 100, Limits::default()).err(),
            Some(Error::PackChecksum)
        );
        // flipped byte inside the zlib data of the first entry
        let mut bad = pack.clone();
        bad[12 + 3 + 40] ^= 0x55;
        let e = read(&bad, 100, Limits::default()).err().unwrap();
        assert!(
            matches!(
                e,
                Error::Zlib { offset: 12 } | Error::SizeMismatch { offset: 12, .. }
            ),
            "{e:?}"
        );
        // header size lies
        let mut lie = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
        lie.extend_from_slice(&entry_header(3, 3));
        lie.extend_from_slice(&compress_to_vec_zlib(b"four", 6));
        assert!(matches!(
            read(&lie, 100, Limits::default()),
            Err(Error::SizeMismatch { .. })
        ));
        let mut short = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
        short.extend_from_slice(&entry_header(3, 5));
        short.extend_from_slice(&compress_to_vec_zlib(b"four", 6));
        assert!(matches!(
            read(&short, 100, Limits::default()),
            Err(Error::SizeMismatch {
                expected: 5,
                actual: 4,
                ..
            })
        ));
        // signature, version, truncation, trailing data
        assert_eq!(
            read(b"PAKC\0\0\0\x02\0\0\0\0", 100, Limits::default()).err(),
            Some(Error::PackSignature)
        );
        assert_eq!(
            read(b"PACK\0\0\0\x04\0\0\0\0", 100, Limits::default()).err(),
            Some(Error::PackVersion(4))
        );
        assert_eq!(
            read(&pack[..pack.len() - 5], 100, Limits::default()).err(),
            Some(Error::PackTruncated)
        );
        let mut extra = pack.clone();
        extra.push(0);
        assert_eq!(
            read(&extra, 100, Limits::default()).err(),
            Some(Error::PackTrailingData)
        );
        // empty pack with a good trailer is fine; version 3 accepted
        let mut empty = b"PACK\0\0\0\x03\0\0\0\0".to_vec();
        let digest: [u8; 20] = Sha1::digest(&empty).into();
        empty.extend_from_slice(&digest);
        assert!(read(&empty, 1, Limits::default()).is_ok());
    }

    #[test]
    fn limits() {
        let data = vec![7u8; 3000];
        let pack = build_pack(&[blob(&data), blob(b"x")]);
        let l = Limits {
            max_objects: 1,
            ..Limits::default()
        };
        assert_eq!(
            read(&pack, 100, l).err(),
            Some(Error::TooManyObjects { count: 2, limit: 1 })
        );
        let l = Limits {
            max_object_size: 2999,
            ..Limits::default()
        };
        assert_eq!(
            read(&pack, 100, l).err(),
            Some(Error::ObjectTooLarge {
                size: 3000,
                limit: 2999
            })
        );
        let l = Limits {
            max_pack_bytes: 20,
            ..Limits::default()
        };
        assert_eq!(
            read(&pack, 100, l).err(),
            Some(Error::PackTooLarge { limit: 20 })
        );
        let l = Limits {
            max_inflated_bytes: 2000,
            ..Limits::default()
        };
        assert_eq!(
            read(&pack, 100, l).err(),
            Some(Error::InflatedTooLarge { limit: 2000 })
        );
        // A header claiming a huge object is refused before anything is allocated.
        let mut huge = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
        huge.extend_from_slice(&entry_header(3, u64::MAX >> 8));
        assert!(matches!(
            read(&huge, 100, Limits::default()),
            Err(Error::ObjectTooLarge { .. })
        ));
    }
}
