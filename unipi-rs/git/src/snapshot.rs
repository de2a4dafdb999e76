//! The fetched website: files from the wanted commit's tree, and the walk that builds it.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::base::BaseObjects;
use crate::error::{Error, sanitize};
use crate::limits::Limits;
use crate::object::{Mode, ObjectKind, TreeIter, parse_commit};
use crate::oid::ObjectId;
use crate::pack::Object;
use crate::protocol::ProtocolVersion;

/// What kind of file a tree entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Mode `100644`.
    Regular,
    /// Mode `100755`.
    Executable,
    /// Mode `120000`; the file's data is the link target.
    Symlink,
}

/// One file of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Relative, `/`-separated path; every component passed [`is_safe_name`].
    pub path: String,
    /// Regular, executable or symlink.
    pub kind: FileKind,
    /// The blob id, verified against the content.
    pub oid: ObjectId,
    /// The content (the link target for symlinks). Files with the same blob share it.
    pub data: Arc<[u8]>,
}

/// Measurements of one fetch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of the pack stream (header, entries and trailer).
    pub pack_bytes: u64,
    /// Entries in the pack.
    pub objects: u32,
    /// Entries that were deltas (OFS_DELTA or REF_DELTA).
    pub deltas: u32,
    /// Bytes produced by inflating and applying deltas.
    pub inflated_bytes: u64,
    /// The largest amount of object memory held at once, in bytes: resolved objects, deltas
    /// waiting for their base, the entry being inflated, and the transient second copy while
    /// an object moves into its shared allocation. Excludes fixed overheads (indexes, the
    /// ~75 KiB inflater, buffers of at most one pkt-line).
    pub peak_object_bytes: u64,
    /// Total size of the snapshot's distinct blobs in bytes.
    pub snapshot_bytes: u64,
    /// The protocol version the server spoke.
    pub protocol: Option<ProtocolVersion>,
    /// The request named a base ([`FetchOptions::base`](crate::FetchOptions::base)) and
    /// asked only for what changed since it (`have`, `shallow`, `thin-pack`).
    pub incremental: bool,
    /// Pack entries that were deltas against objects of the base (a thin pack).
    pub thin_deltas: u32,
    /// Distinct trees and blobs of the new commit taken from the base instead of the pack.
    pub reused_objects: u32,
}

/// A fetched commit's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The commit.
    pub commit: ObjectId,
    /// Committer time of the commit, Unix seconds.
    pub commit_time: i64,
    /// Every file, sorted by `path` (bytewise); submodules are left out.
    pub files: Vec<File>,
    /// How the fetch went.
    pub stats: Stats,
    /// The commit's objects, for the next pull to be incremental: keep this beside the
    /// served site and pass it as [`FetchOptions::base`](crate::FetchOptions::base). Its
    /// blobs are the allocations of `files`.
    pub base: Arc<BaseObjects>,
}

impl Snapshot {
    /// Looks a file up by its exact path (binary search).
    pub fn get(&self, path: &str) -> Option<&File> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// Why a path component is refused by [`check_name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsafeName {
    /// The component is empty (`a//b`, a leading or trailing `/`).
    Empty,
    /// `.` or `..`: would leave or repeat the directory.
    Dot,
    /// `.git` in any letter case: git's own directory.
    DotGit,
    /// Contains `/` or `\` (a path separator on some system).
    Separator,
    /// Contains NUL, DEL or another control character.
    Control,
}

impl UnsafeName {
    /// The rule as a short phrase ("dot path component", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            UnsafeName::Empty => "empty path component",
            UnsafeName::Dot => "dot path component",
            UnsafeName::DotGit => ".git path component",
            UnsafeName::Separator => "path separator in a path component",
            UnsafeName::Control => "control character in path",
        }
    }
}

impl core::fmt::Display for UnsafeName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule every component of a served path follows, for files from a Git tree and from
/// anywhere else: non-empty, not `.` or `..`, not `.git` in any case, no `/`, `\`, NUL or
/// other control characters.
pub fn check_name(name: &[u8]) -> Result<(), UnsafeName> {
    if name.is_empty() {
        Err(UnsafeName::Empty)
    } else if name == b"." || name == b".." {
        Err(UnsafeName::Dot)
    } else if name.eq_ignore_ascii_case(b".git") {
        Err(UnsafeName::DotGit)
    } else if name.iter().any(|&b| b < 0x20 || b == 0x7f) {
        Err(UnsafeName::Control)
    } else if name.iter().any(|&b| b == b'/' || b == b'\\') {
        Err(UnsafeName::Separator)
    } else {
        Ok(())
    }
}

/// True for a path component [`check_name`] accepts.
pub fn is_safe_name(name: &[u8]) -> bool {
    check_name(name).is_ok()
}

/// Where the walk finds objects: the pack just read, then the base of an incremental fetch.
struct Store<'a> {
    pack: &'a BTreeMap<ObjectId, Object>,
    base: Option<&'a BaseObjects>,
}

impl Store<'_> {
    /// The object `oid` of `kind`, from the pack or else the base.
    fn get(&self, oid: &ObjectId, kind: ObjectKind) -> Result<&Arc<[u8]>, Error> {
        let (actual, data) = match self.pack.get(oid) {
            Some(o) => (o.kind, &o.data),
            None => self
                .base
                .and_then(|b| b.get(oid))
                .ok_or(Error::ObjectMissing { oid: *oid })?,
        };
        if actual != kind {
            return Err(Error::WrongObjectType {
                oid: *oid,
                expected: kind.name(),
                actual: actual.name(),
            });
        }
        Ok(data)
    }
}

fn join(prefix: &str, name: &[u8]) -> String {
    let mut p = String::with_capacity(prefix.len() + name.len() + 1);
    p.push_str(prefix);
    if !prefix.is_empty() {
        p.push('/');
    }
    p.push_str(&String::from_utf8_lossy(name));
    p
}

/// Walks the tree of `commit` and builds the snapshot. Every object must be in `objects`
/// (whose ids were computed from their content) or in `base`; paths are checked against
/// `limits`.
pub(crate) fn build(
    objects: &BTreeMap<ObjectId, Object>,
    base: Option<&BaseObjects>,
    commit: ObjectId,
    limits: &Limits,
    mut stats: Stats,
) -> Result<Snapshot, Error> {
    let store = Store {
        pack: objects,
        base,
    };
    let commit_data = store.get(&commit, ObjectKind::Commit)?;
    let info = parse_commit(commit_data).map_err(|reason| Error::BadCommit {
        oid: commit,
        reason,
    })?;
    let mut trees = Vec::new();
    let mut blobs = Vec::new();
    let mut files = Vec::new();
    let mut entries = 0usize;
    let mut path_bytes = 0usize;
    // (tree, path prefix, depth of its entries)
    let mut stack: Vec<(ObjectId, String, usize)> = alloc::vec![(info.tree, String::new(), 1)];
    while let Some((tree_id, prefix, depth)) = stack.pop() {
        let tree = store.get(&tree_id, ObjectKind::Tree)?;
        trees.push((tree_id, Arc::clone(tree)));
        for entry in TreeIter::new(tree) {
            let entry = entry.map_err(|reason| Error::BadTree {
                oid: tree_id,
                reason,
            })?;
            entries += 1;
            if entries > limits.max_files {
                return Err(Error::TooManyFiles {
                    limit: limits.max_files,
                });
            }
            if !is_safe_name(entry.name) {
                return Err(Error::UnsafePath {
                    path: sanitize(join(&prefix, entry.name).as_bytes()),
                });
            }
            let Ok(name) = core::str::from_utf8(entry.name) else {
                return Err(Error::NonUtf8Path {
                    path: sanitize(join(&prefix, entry.name).as_bytes()),
                });
            };
            if depth > limits.max_path_depth {
                return Err(Error::PathTooDeep {
                    limit: limits.max_path_depth,
                });
            }
            let path = join(&prefix, name.as_bytes());
            if path.len() > limits.max_path_len {
                return Err(Error::PathTooLong {
                    limit: limits.max_path_len,
                });
            }
            path_bytes += path.len();
            if path_bytes > limits.max_path_bytes {
                return Err(Error::PathsTooLarge {
                    limit: limits.max_path_bytes,
                });
            }
            let kind = match entry.mode {
                Some(Mode::Tree) => {
                    stack.push((entry.oid, path, depth + 1));
                    continue;
                }
                Some(Mode::Submodule) => {
                    log::info!("skipping submodule {path} at {}", entry.oid);
                    continue;
                }
                Some(Mode::Regular) => FileKind::Regular,
                Some(Mode::Executable) => FileKind::Executable,
                Some(Mode::Symlink) => FileKind::Symlink,
                None => {
                    return Err(Error::UnsupportedMode {
                        path: sanitize(path.as_bytes()),
                        mode: sanitize(entry.mode_raw),
                    });
                }
            };
            let blob = store.get(&entry.oid, ObjectKind::Blob)?;
            blobs.push((entry.oid, Arc::clone(blob)));
            files.push(File {
                path,
                kind,
                oid: entry.oid,
                data: Arc::clone(blob),
            });
        }
    }
    files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let base = BaseObjects::new(commit, Arc::clone(commit_data), trees, blobs);
    stats.snapshot_bytes = base.blob_bytes();
    stats.reused_objects = base.count_not_in(objects);
    Ok(Snapshot {
        commit,
        commit_time: info.committer_time,
        files,
        stats,
        base: Arc::new(base),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oid::hash_object;

    struct Repo {
        objects: BTreeMap<ObjectId, Object>,
    }

    impl Repo {
        fn new() -> Self {
            Repo {
                objects: BTreeMap::new(),
            }
        }
        fn add(&mut self, kind: ObjectKind, data: &[u8]) -> ObjectId {
            let id = hash_object(kind, data);
            self.objects.insert(
                id,
                Object {
                    kind,
                    data: Arc::from(data),
                    depth: 0,
                },
            );
            id
        }
        fn tree(&mut self, entries: &[(&str, &[u8], ObjectId)]) -> ObjectId {
            let mut data = Vec::new();
            for (mode, name, id) in entries {
                data.extend_from_slice(mode.as_bytes());
                data.push(b' ');
                data.extend_from_slice(name);
                data.push(0);
                data.extend_from_slice(&id.0);
            }
            self.add(ObjectKind::Tree, &data)
        }
        fn commit(&mut self, tree: ObjectId) -> ObjectId {
            let c = alloc::format!(
                "tree {tree}\nauthor a <a@b> 1 +0000\ncommitter c <c@d> 1700000000 +0200\n\nmsg\n"
            );
            self.add(ObjectKind::Commit, c.as_bytes())
        }
    }

    #[test]
    fn safe_names() {
        for ok in [
            &b"index.html"[..],
            b"..foo",
            b".gitignore",
            b".git2",
            b"a b",
            "é".as_bytes(),
        ] {
            assert!(is_safe_name(ok), "{ok:?}");
        }
        for bad in [
            &b""[..],
            b".",
            b"..",
            b".git",
            b".GIT",
            b".Git",
            b"a/b",
            b"a\\b",
            b"a\nb",
            b"\x7f",
            b"a\0",
        ] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
        assert_eq!(check_name(b".."), Err(UnsafeName::Dot));
        assert_eq!(check_name(b".gIt"), Err(UnsafeName::DotGit));
        assert_eq!(check_name(b"a\\b"), Err(UnsafeName::Separator));
        assert_eq!(check_name(b"a\tb"), Err(UnsafeName::Control));
        assert_eq!(check_name(b""), Err(UnsafeName::Empty));
    }

    #[test]
    fn walk() {
        let mut r = Repo::new();
        let hello = r.add(ObjectKind::Blob, b"hello\n");
        let empty = r.add(ObjectKind::Blob, b"");
        let target = r.add(ObjectKind::Blob, b"index.html");
        let sub = r.tree(&[("100755", b"run.sh", hello), ("100644", b"z", empty)]);
        let root = r.tree(&[
            ("40000", b"dir", sub),
            ("100644", b"index.html", hello),
            ("120000", b"link", target),
            ("160000", b"module", ObjectId([9; 20])),
        ]);
        let c = r.commit(root);
        let snap = build(&r.objects, None, c, &Limits::default(), Stats::default()).unwrap();
        assert_eq!(snap.commit, c);
        assert_eq!(snap.commit_time, 1_700_000_000);
        let paths: Vec<_> = snap
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.kind))
            .collect();
        assert_eq!(
            paths,
            [
                ("dir/run.sh", FileKind::Executable),
                ("dir/z", FileKind::Regular),
                ("index.html", FileKind::Regular),
                ("link", FileKind::Symlink),
            ]
        );
        assert_eq!(&*snap.get("link").unwrap().data, b"index.html");
        assert!(Arc::ptr_eq(
            &snap.get("dir/run.sh").unwrap().data,
            &snap.get("index.html").unwrap().data
        ));
        assert_eq!(snap.stats.snapshot_bytes, 6 + 10);
        assert!(snap.get("module").is_none());
    }

    #[test]
    fn unsafe_and_limits() {
        let mut r = Repo::new();
        let blob = r.add(ObjectKind::Blob, b"x");
        for name in [&b".."[..], b".git", b".GiT", b"a\x01"] {
            let root = r.tree(&[("100644", name, blob)]);
            let c = r.commit(root);
            let e = build(&r.objects, None, c, &Limits::default(), Stats::default()).unwrap_err();
            assert!(matches!(e, Error::UnsafePath { .. }), "{e:?}");
        }
        let git_dir = r.tree(&[("100644", b"config", blob)]);
        let root = r.tree(&[("40000", b".git", git_dir)]);
        let c = r.commit(root);
        assert_eq!(
            build(&r.objects, None, c, &Limits::default(), Stats::default()).unwrap_err(),
            Error::UnsafePath {
                path: ".git".into()
            }
        );
        let root = r.tree(&[("100644", b"\xff", blob)]);
        let c = r.commit(root);
        assert!(matches!(
            build(&r.objects, None, c, &Limits::default(), Stats::default()),
            Err(Error::NonUtf8Path { .. })
        ));
        let root = r.tree(&[("100600", b"x", blob)]);
        let c = r.commit(root);
        assert_eq!(
            build(&r.objects, None, c, &Limits::default(), Stats::default()).unwrap_err(),
            Error::UnsupportedMode {
                path: "x".into(),
                mode: "100600".into()
            }
        );
        // depth, length, count
        let mut t = r.tree(&[("100644", b"f", blob)]);
        for _ in 0..5 {
            t = r.tree(&[("40000", b"dddddddddd", t)]);
        }
        let c = r.commit(t);
        let l = Limits {
            max_path_depth: 5,
            ..Limits::default()
        };
        assert_eq!(
            build(&r.objects, None, c, &l, Stats::default()).unwrap_err(),
            Error::PathTooDeep { limit: 5 }
        );
        let l = Limits {
            max_path_len: 30,
            ..Limits::default()
        };
        assert_eq!(
            build(&r.objects, None, c, &l, Stats::default()).unwrap_err(),
            Error::PathTooLong { limit: 30 }
        );
        let l = Limits {
            max_files: 5,
            ..Limits::default()
        };
        assert_eq!(
            build(&r.objects, None, c, &l, Stats::default()).unwrap_err(),
            Error::TooManyFiles { limit: 5 }
        );
        assert!(build(&r.objects, None, c, &Limits::default(), Stats::default()).is_ok());
        // A tree bomb (the same subtree referenced many times) is bounded by max_files.
        let mut t = r.tree(&[("100644", b"f", blob)]);
        for _ in 0..20 {
            let names: Vec<[u8; 2]> = (0..10u8).map(|i| [b'a', b'0' + i]).collect();
            let entries: Vec<(&str, &[u8], ObjectId)> =
                names.iter().map(|n| ("40000", &n[..], t)).collect();
            t = r.tree(&entries);
        }
        let c = r.commit(t);
        assert_eq!(
            build(&r.objects, None, c, &Limits::default(), Stats::default()).unwrap_err(),
            Error::TooManyFiles { limit: 100_000 }
        );
    }

    /// Fuzzing finding: two long names per level pointing at the same subtree, 15 levels
    /// deep, are 8 KiB of trees but 32 768 paths of ~3.8 KiB (125 MB) within the default
    /// `max_files` and `max_path_len`; `max_path_bytes` stops the walk early.
    #[test]
    fn fuzz_regression_path_bytes_bomb() {
        let mut r = Repo::new();
        let blob = r.add(ObjectKind::Blob, b"x");
        let a = [b'a'; 250];
        let b = [b'b'; 250];
        let mut t = r.tree(&[("100644", &a, blob), ("100644", &b, blob)]);
        for level in 1..15 {
            t = r.tree(&[("40000", &a, t), ("40000", &b, t)]);
            if level == 7 {
                // 256 files, 0.5 MB of paths: fine.
                let c = r.commit(t);
                let snap =
                    build(&r.objects, None, c, &Limits::default(), Stats::default()).unwrap();
                assert_eq!(snap.files.len(), 256);
            }
        }
        let c = r.commit(t);
        assert_eq!(
            build(&r.objects, None, c, &Limits::default(), Stats::default()).unwrap_err(),
            Error::PathsTooLarge { limit: 16 << 20 }
        );
    }

    #[test]
    fn missing_and_wrong_types() {
        let mut r = Repo::new();
        let blob = r.add(ObjectKind::Blob, b"x");
        let root = r.tree(&[("100644", b"a", ObjectId([1; 20]))]);
        let c = r.commit(root);
        assert_eq!(
            build(&r.objects, None, c, &Limits::default(), Stats::default()).unwrap_err(),
            Error::ObjectMissing {
                oid: ObjectId([1; 20])
            }
        );
        let root = r.tree(&[("40000", b"a", blob)]);
        let c = r.commit(root);
        assert!(matches!(
            build(&r.objects, None, c, &Limits::default(), Stats::default()),
            Err(Error::WrongObjectType { .. })
        ));
        assert!(matches!(
            build(&r.objects, None, blob, &Limits::default(), Stats::default()),
            Err(Error::WrongObjectType {
                expected: "commit",
                ..
            })
        ));
        let bad = r.add(ObjectKind::Commit, b"not a commit");
        assert!(matches!(
            build(&r.objects, None, bad, &Limits::default(), Stats::default()),
            Err(Error::BadCommit { .. })
        ));
    }
}
