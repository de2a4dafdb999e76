//! Entry points for coverage-guided fuzzing (the `fuzz/` crate at the repository root).
//!
//! Not part of the API: compiled only with the `fuzzing` feature, hidden from the docs, and
//! free to change with the fuzz targets. Each function runs one internal parser over
//! arbitrary bytes exactly as the fetch does, plus cheap consistency checks (panics here are
//! findings, like any other panic).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use crate::base::BaseObjects;
use crate::delta;
use crate::error::Error;
use crate::inflate::Inflater;
use crate::limits::Limits;
use crate::object::{ObjectKind, TreeIter, parse_commit};
use crate::oid::ObjectId;
use crate::pack::{Object, PackReader, parse_entry_header};
use crate::pktline::{self, Pkt, PktReader};
use crate::protocol::{Discovery, FetchResponse, LsRefs};
use crate::sideband;
use crate::snapshot::{self, Stats};

/// Deterministic chunk sizes (1..=max) derived from `seed`, so that streaming parsers see
/// their input split at many different places.
pub struct Chunks {
    state: u32,
    max: usize,
}

impl Chunks {
    /// Chunk sizes from `seed`, each at most `max` (at least 1).
    pub fn new(seed: u32, max: usize) -> Self {
        Chunks {
            state: seed | 1,
            max: max.max(1),
        }
    }

    /// The next chunk size.
    pub fn next_len(&mut self) -> usize {
        // xorshift32
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        1 + (x as usize % self.max)
    }

    /// Splits `data` into chunks.
    pub fn split<'a>(&mut self, mut data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let n = self.next_len().min(data.len());
            out.push(&data[..n]);
            data = &data[n..];
        }
        out
    }
}

/// An owned copy of a pkt-line, for comparisons.
#[derive(Debug, PartialEq, Eq)]
enum OwnedPkt {
    Flush,
    Delim,
    ResponseEnd,
    Data(Vec<u8>),
}

fn owned(p: Pkt<'_>) -> OwnedPkt {
    match p {
        Pkt::Flush => OwnedPkt::Flush,
        Pkt::Delim => OwnedPkt::Delim,
        Pkt::ResponseEnd => OwnedPkt::ResponseEnd,
        Pkt::Data(d) => OwnedPkt::Data(d.to_vec()),
    }
}

/// pkt-line framing: decodes `data` in one piece with [`pktline::decode`] and again through a
/// [`PktReader`] fed in chunks from `seed`; both must agree. Every data line also goes through
/// side-band demultiplexing and the `ERR` check. Re-encoding a data line must give its bytes
/// back. Returns the number of lines decoded.
pub fn pkt_lines(data: &[u8], max_len: usize, seed: u32) -> usize {
    let mut whole = Vec::new();
    let mut pos = 0;
    let mut whole_err = false;
    loop {
        match pktline::decode(&data[pos..], max_len) {
            Ok(Some((pkt, used))) => {
                assert!(used >= 4 && used <= data.len() - pos);
                if let Pkt::Data(d) = pkt {
                    let _ = sideband::demux(d);
                    let _ = pktline::err_message(d);
                    let mut enc = Vec::new();
                    pktline::encode(&mut enc, d).expect("a decoded line re-encodes");
                    // The length may have been sent in upper case.
                    assert!(enc[..4].eq_ignore_ascii_case(&data[pos..pos + 4]));
                    assert_eq!(&enc[4..], &data[pos + 4..pos + used]);
                }
                whole.push(owned(pkt));
                pos += used;
            }
            Ok(None) => break,
            Err(_) => {
                whole_err = true;
                break;
            }
        }
    }
    let mut reader = PktReader::new(max_len);
    let mut streamed = Vec::new();
    let mut stream_err = false;
    'outer: for chunk in Chunks::new(seed, 97).split(data) {
        reader.push(chunk);
        loop {
            match reader.next_pkt() {
                Ok(Some(p)) => streamed.push(owned(p)),
                Ok(None) => break,
                Err(_) => {
                    stream_err = true;
                    break 'outer;
                }
            }
        }
    }
    assert_eq!(whole, streamed, "chunked pkt-line decoding differs");
    assert_eq!(whole_err, stream_err, "chunked pkt-line errors differ");
    if !stream_err {
        assert_eq!(reader.is_empty(), pos == data.len());
    }
    whole.len()
}

/// Which protocol parser [`protocol`] drives.
#[derive(Clone, Copy, Debug)]
pub enum ProtocolParser {
    /// The first answer (v2 capabilities or v0 ref advertisement), looking for `HEAD`.
    DiscoveryHead,
    /// The same, looking for `refs/heads/main`.
    DiscoveryBranch,
    /// The v2 `ls-refs` answer.
    LsRefs,
    /// The v2 fetch response.
    FetchV2,
    /// The v0 fetch response after a `deepen` request.
    FetchV0Deepen,
    /// The v0 fetch response without `deepen`.
    FetchV0,
}

impl ProtocolParser {
    /// All parsers, for choosing one from a fuzz byte.
    pub const ALL: [ProtocolParser; 6] = [
        ProtocolParser::DiscoveryHead,
        ProtocolParser::DiscoveryBranch,
        ProtocolParser::LsRefs,
        ProtocolParser::FetchV2,
        ProtocolParser::FetchV0Deepen,
        ProtocolParser::FetchV0,
    ];
}

/// Protocol responses: splits `data` into pkt-lines and feeds them to one response parser
/// until it finishes or fails. Pack bytes of a fetch response are counted, not parsed.
pub fn protocol(parser: ProtocolParser, data: &[u8]) -> Result<usize, Error> {
    let mut reader = PktReader::new(Limits::PKT_LINE_MAX);
    reader.push(data);
    let mut discovery = match parser {
        ProtocolParser::DiscoveryHead => Some(Discovery::new("HEAD", 64)),
        ProtocolParser::DiscoveryBranch => Some(Discovery::new("refs/heads/main", 64)),
        _ => None,
    };
    let mut ls_refs = matches!(parser, ProtocolParser::LsRefs).then(|| LsRefs::new("HEAD", 64));
    let mut fetch = match parser {
        ProtocolParser::FetchV2 => Some(FetchResponse::v2()),
        ProtocolParser::FetchV0Deepen => Some(FetchResponse::v0(true)),
        ProtocolParser::FetchV0 => Some(FetchResponse::v0(false)),
        _ => None,
    };
    let mut pack_bytes = 0;
    while let Some(pkt) = reader.next_pkt()? {
        if let Some(d) = &mut discovery {
            if d.on_pkt(pkt)?.is_some() {
                break;
            }
        } else if let Some(l) = &mut ls_refs {
            if l.on_pkt(pkt)?.is_some() {
                break;
            }
        } else if let Some(f) = &mut fetch {
            match f.on_pkt(pkt)? {
                crate::protocol::ResponseItem::PackData(d) => pack_bytes += d.len(),
                crate::protocol::ResponseItem::End => break,
                _ => {}
            }
        }
    }
    Ok(pack_bytes)
}

/// Limits small enough that a fuzzer's inputs stay fast, large enough for real packs of a
/// small site.
pub fn small_limits() -> Limits {
    Limits {
        max_pack_bytes: 4 << 20,
        max_received_bytes: 8 << 20,
        max_objects: 4096,
        max_object_size: 1 << 20,
        max_inflated_bytes: 16 << 20,
        max_delta_depth: 50,
        max_path_len: 1024,
        max_path_depth: 32,
        max_files: 2048,
        ..Limits::default()
    }
}

/// The objects of the commit a thin pack in [`pack`] may build on: a commit whose tree holds
/// `index.html` (`hello\n`, blob `ce013625030ba8dba906f756967f9e9ca394464a`) and
/// `page.html` (200 lines `<p>line N of a page</p>`).
pub fn thin_base() -> Arc<BaseObjects> {
    use crate::oid::{blob_id, hash_object};
    let hello: Arc<[u8]> = Arc::from(&b"hello\n"[..]);
    let page: Vec<u8> = (0..200)
        .flat_map(|i| alloc::format!("<p>line {i} of a page</p>\n").into_bytes())
        .collect();
    let page: Arc<[u8]> = Arc::from(page);
    let mut tree = Vec::new();
    for (name, data) in [("index.html", &hello), ("page.html", &page)] {
        tree.extend_from_slice(alloc::format!("100644 {name}\0").as_bytes());
        tree.extend_from_slice(&blob_id(data).0);
    }
    let tree_id = hash_object(ObjectKind::Tree, &tree);
    let commit = alloc::format!(
        "tree {tree_id}\nauthor a <a@b> 1 +0000\ncommitter c <c@d> 1700000000 +0000\n\nbase\n"
    );
    let commit: Arc<[u8]> = Arc::from(commit.as_bytes());
    let blobs = vec![(blob_id(&hello), hello), (blob_id(&page), page)];
    Arc::new(BaseObjects::new(
        hash_object(ObjectKind::Commit, &commit),
        commit,
        vec![(tree_id, Arc::from(tree))],
        blobs,
    ))
}

/// Pack parsing: feeds `body` (a pack without its 20-byte trailer) in chunks from `seed`,
/// then the SHA-1 trailer it should have (so the fuzzer need not compute hashes), and walks
/// the tree of every commit found. When the seed's top bit is set, REF_DELTA entries may
/// use the objects of [`thin_base`] and so may the walk (an incremental fetch). Returns the
/// number of objects read.
pub fn pack(body: &[u8], limits: &Limits, seed: u32) -> Result<usize, Error> {
    use sha1::{Digest, Sha1};
    let trailer: [u8; 20] = Sha1::digest(body).into();
    let base = (seed >> 31 == 1).then(thin_base);
    let mut reader = PackReader::new(limits.clone(), base.clone());
    let mut result = Ok(());
    for chunk in Chunks::new(seed, 4096).split(body) {
        result = reader.feed(chunk);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = reader.feed(&trailer).and_then(|()| reader.finish());
    }
    let counters = reader.counters();
    assert!(counters.objects <= counters.total_objects);
    let objects = reader.into_objects();
    for (id, o) in &objects {
        if o.kind == ObjectKind::Commit {
            let _ = snapshot::build(&objects, base.as_deref(), *id, limits, Stats::default());
        }
    }
    result.map(|()| objects.len())
}

/// A pack entry header at pack offset `offset`.
pub fn entry_header(data: &[u8], offset: u64) {
    if let Ok(Some((_, used))) = parse_entry_header(data, offset) {
        assert!(used <= data.len());
    }
}

/// Delta application: applies `delta` to `base` into a buffer of the announced result size
/// (skipped above `max_out`).
pub fn delta(base: &[u8], delta: &[u8], max_out: usize) -> Result<Vec<u8>, &'static str> {
    let (_, result, header) = delta::sizes(delta)?;
    assert!(header <= delta.len());
    let len = usize::try_from(result).map_err(|_| "too large")?;
    if len > max_out {
        return Err("too large");
    }
    let mut out = vec![0u8; len];
    delta::apply_into(base, delta, &mut out)?;
    Ok(out)
}

/// Inflation: streams `data` (zlib) through the inflater in chunks from `seed` into a buffer
/// of `out_len` bytes. When the stream ends, the result must equal miniz_oxide's one-shot
/// decompression of the bytes consumed, and those bytes must be a prefix of `data`.
pub fn inflate(data: &[u8], out_len: usize, seed: u32) -> Option<Vec<u8>> {
    let mut inf = Inflater::new();
    let mut out = vec![0u8; out_len];
    let mut filled = 0;
    let mut pos = 0;
    let mut chunks = Chunks::new(seed, 512);
    // Each round consumes input or ends; the bound only keeps a harness bug from hanging.
    for _ in 0..4 * data.len() + 64 {
        let end = (pos + chunks.next_len()).min(data.len());
        let (used, done) = inf.inflate(&data[pos..end], &mut out, &mut filled).ok()?;
        assert!(used <= end - pos);
        assert!(filled <= out.len());
        pos += used;
        if done {
            out.truncate(filled);
            // miniz_oxide's streaming decoder, unlike its one-shot decoder and zlib, accepts
            // back-references before the start of the output (reading zeros from its
            // window). Harmless here: every object is hashed after inflation, so such a stream
            // only yields content the remote could have sent outright. Compare when both
            // decoders accept the stream.
            if let Ok(oneshot) =
                miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&data[..pos], out_len)
            {
                assert_eq!(oneshot, out, "streamed and one-shot inflation differ");
            }
            return Some(out);
        }
        if end == data.len() && used == 0 {
            return None;
        }
    }
    None
}

/// Tree and commit parsing: runs the tree iterator and the commit parser over `data`, then
/// builds a snapshot from objects cut out of `data`.
///
/// Object format for the walk: repeated `kind (1 byte: 0 tree, 1 blob, 2 commit, 3 tag) |
/// length (2 bytes LE) | content`. Object `i` gets the id `[i + 1, 0, 0, ..]` (not its hash,
/// so that trees can name each other), and the commit walked is synthesised pointing at
/// object 0.
pub fn tree(data: &[u8], limits: &Limits) -> Result<usize, Error> {
    let mut n = 0;
    for e in TreeIter::new(data) {
        match e {
            Ok(e) => {
                assert!(!e.name.is_empty());
                n += 1;
            }
            Err(_) => break,
        }
    }
    let _ = parse_commit(data);

    let mut objects = BTreeMap::new();
    let mut rest = data;
    let mut index = 0u8;
    while rest.len() >= 3 && index < 255 {
        let kind = match rest[0] % 4 {
            0 => ObjectKind::Tree,
            1 => ObjectKind::Blob,
            2 => ObjectKind::Commit,
            _ => ObjectKind::Tag,
        };
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let mut id = [0u8; 20];
        id[0] = index + 1;
        objects.insert(
            ObjectId(id),
            Object {
                kind,
                data: Arc::from(&rest[3..3 + len]),
                depth: 0,
            },
        );
        rest = &rest[3 + len..];
        index += 1;
    }
    let mut root = [0u8; 20];
    root[0] = 1;
    let commit_text = alloc::format!(
        "tree {}\nauthor a <a@b> 1 +0000\ncommitter c <c@d> 1700000000 +0000\n\nfuzz\n",
        ObjectId(root)
    );
    let commit = ObjectId([0xcc; 20]);
    objects.insert(
        commit,
        Object {
            kind: ObjectKind::Commit,
            data: Arc::from(commit_text.as_bytes()),
            depth: 0,
        },
    );
    let snap = snapshot::build(&objects, None, commit, limits, Stats::default())?;
    assert!(snap.files.len() <= limits.max_files);
    for w in snap.files.windows(2) {
        assert!(
            w[0].path < w[1].path,
            "snapshot paths unsorted or duplicated"
        );
    }
    for f in &snap.files {
        assert!(f.path.len() <= limits.max_path_len);
        assert!(
            f.path
                .split('/')
                .all(|c| snapshot::is_safe_name(c.as_bytes())),
            "forbidden path {:?} in snapshot",
            f.path
        );
    }
    Ok(n + snap.files.len())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// The committed thin-pack seeds of the `git_pack` target build on [`thin_base`].
    #[test]
    fn thin_pack_seeds_resolve() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/git_pack/");
        for (name, objects) in [("thin-commit", 3), ("thin-ref-delta", 1)] {
            let data = std::fs::read(alloc::format!("{dir}{name}")).unwrap();
            let seed = u32::from_le_bytes(data[..4].try_into().unwrap());
            assert_eq!(
                pack(&data[4..], &small_limits(), seed),
                Ok(objects),
                "{name}"
            );
            assert!(pack(&data[4..], &small_limits(), seed & 0x7fff_ffff).is_err());
        }
    }
}
