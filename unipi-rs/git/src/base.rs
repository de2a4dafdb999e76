//! What a fetch keeps of the commit it fetched, so that the next pull can be incremental.
//!
//! The next pull tells the server it has this commit (as a shallow boundary), so the server
//! sends only the objects that changed, possibly as deltas against these objects (a thin
//! pack). Those deltas are resolved against the objects here, and the new tree walk takes
//! every unchanged tree and blob from here instead of the pack.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::object::ObjectKind;
use crate::oid::ObjectId;

/// One kept object: its id and its content (a shared allocation).
type Entry = (ObjectId, Arc<[u8]>);

/// The objects of one commit: the commit object, every tree of its tree and every blob of
/// its files, each verified against its id when it was fetched.
///
/// Memory: the blobs are the snapshot's own shared allocations (the same `Arc`s as
/// [`File::data`](crate::File::data), never copies), so keeping this beside the served site
/// costs the commit and tree objects plus one table entry per object; see
/// [`kept_bytes`](Self::kept_bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct BaseObjects {
    commit: ObjectId,
    commit_data: Arc<[u8]>,
    /// Sorted by id, no duplicates.
    trees: Vec<Entry>,
    /// Sorted by id, no duplicates.
    blobs: Vec<Entry>,
}

impl BaseObjects {
    /// Builds the set from a walk's objects (any order, duplicates allowed).
    pub(crate) fn new(
        commit: ObjectId,
        commit_data: Arc<[u8]>,
        mut trees: Vec<Entry>,
        mut blobs: Vec<Entry>,
    ) -> BaseObjects {
        for list in [&mut trees, &mut blobs] {
            list.sort_unstable_by_key(|e| e.0);
            list.dedup_by_key(|e| e.0);
            list.shrink_to_fit();
        }
        BaseObjects {
            commit,
            commit_data,
            trees,
            blobs,
        }
    }

    /// The commit.
    pub fn commit(&self) -> ObjectId {
        self.commit
    }

    /// Number of distinct trees (the root tree included).
    pub fn tree_count(&self) -> usize {
        self.trees.len()
    }

    /// Number of distinct blobs.
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Heap bytes this set holds beyond the snapshot's blobs: the commit and tree objects
    /// (content and reference counts) and the two tables (entry size × capacity). Blob
    /// contents are shared with the snapshot and not counted.
    pub fn kept_bytes(&self) -> usize {
        const ARC_COUNTS: usize = 2 * core::mem::size_of::<usize>();
        let entry = core::mem::size_of::<Entry>();
        let trees: usize = self.trees.iter().map(|(_, d)| d.len() + ARC_COUNTS).sum();
        trees
            + self.commit_data.len()
            + ARC_COUNTS
            + (self.trees.capacity() + self.blobs.capacity()) * entry
    }

    /// Total size of the distinct blobs in bytes.
    pub(crate) fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, d)| d.len() as u64).sum()
    }

    /// How many of the trees and blobs are not keys of `pack` (they came from elsewhere).
    pub(crate) fn count_not_in<V>(&self, pack: &BTreeMap<ObjectId, V>) -> u32 {
        let n = self
            .trees
            .iter()
            .chain(&self.blobs)
            .filter(|(id, _)| !pack.contains_key(id))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The object `id`, if it is one of these, with its kind.
    pub(crate) fn get(&self, id: &ObjectId) -> Option<(ObjectKind, &Arc<[u8]>)> {
        if *id == self.commit {
            return Some((ObjectKind::Commit, &self.commit_data));
        }
        if let Some(data) = find(&self.trees, id) {
            return Some((ObjectKind::Tree, data));
        }
        find(&self.blobs, id).map(|data| (ObjectKind::Blob, data))
    }
}

/// The content of `id` in a list sorted by id.
fn find<'a>(list: &'a [Entry], id: &ObjectId) -> Option<&'a Arc<[u8]>> {
    let i = list.binary_search_by_key(id, |e| e.0).ok()?;
    list.get(i).map(|(_, data)| data)
}

impl fmt::Debug for BaseObjects {
    /// Counts only (the contents are the site).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseObjects")
            .field("commit", &self.commit)
            .field("trees", &self.trees.len())
            .field("blobs", &self.blobs.len())
            .field("kept_bytes", &self.kept_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oid::{blob_id, hash_object};
    use alloc::vec;

    #[test]
    fn lookup_and_accounting() {
        let a: Arc<[u8]> = Arc::from(&b"a"[..]);
        let t: Arc<[u8]> = Arc::from(&b"tree bytes"[..]);
        let c: Arc<[u8]> = Arc::from(&b"commit bytes"[..]);
        let (aid, tid, cid) = (
            blob_id(&a),
            hash_object(ObjectKind::Tree, &t),
            hash_object(ObjectKind::Commit, &c),
        );
        let base = BaseObjects::new(
            cid,
            c.clone(),
            vec![(tid, t.clone()), (tid, t.clone())],
            vec![(aid, a.clone()), (aid, a.clone())],
        );
        assert_eq!((base.tree_count(), base.blob_count()), (1, 1));
        assert_eq!(base.commit(), cid);
        assert_eq!(base.get(&cid).map(|o| o.0), Some(ObjectKind::Commit));
        assert_eq!(base.get(&tid).map(|o| o.0), Some(ObjectKind::Tree));
        let (kind, data) = base.get(&aid).unwrap();
        assert_eq!(kind, ObjectKind::Blob);
        assert!(Arc::ptr_eq(data, &a), "blobs are shared, not copied");
        assert_eq!(base.get(&ObjectId([7; 20])), None);
        let entry = core::mem::size_of::<Entry>();
        assert_eq!(base.kept_bytes(), 10 + 12 + 2 * 16 + 2 * entry);
        assert!(alloc::format!("{base:?}").contains("blobs: 1"));
    }
}
