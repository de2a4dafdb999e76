//! Object kinds and the parsers for commits and trees.

use crate::oid::ObjectId;

/// The four git object types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// A commit.
    Commit,
    /// A tree (directory listing).
    Tree,
    /// A blob (file content).
    Blob,
    /// An annotated tag.
    Tag,
}

impl ObjectKind {
    /// The name used in object headers (`commit`, `tree`, `blob`, `tag`).
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Commit => "commit",
            ObjectKind::Tree => "tree",
            ObjectKind::Blob => "blob",
            ObjectKind::Tag => "tag",
        }
    }
}

/// The parts of a commit this client uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommitInfo {
    /// The root tree.
    pub tree: ObjectId,
    /// Committer time in seconds since the Unix epoch.
    pub committer_time: i64,
}

/// Parses the header of a commit object: `tree` must be the first line and a `committer`
/// line with a numeric timestamp must be present.
pub(crate) fn parse_commit(data: &[u8]) -> Result<CommitInfo, &'static str> {
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let tree = first
        .strip_prefix(b"tree ")
        .and_then(ObjectId::from_hex)
        .ok_or("first line is not 'tree <id>'")?;
    for line in lines {
        if line.is_empty() {
            break; // end of headers
        }
        if let Some(ident) = line.strip_prefix(b"committer ") {
            let mut parts = ident.rsplitn(3, |&b| b == b' ');
            let _tz = parts.next();
            let time = parts.next().ok_or("committer line without time")?;
            if time.is_empty() || time.len() > 18 || !time.iter().all(u8::is_ascii_digit) {
                return Err("committer time is not a number");
            }
            let committer_time = time
                .iter()
                .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
            return Ok(CommitInfo {
                tree,
                committer_time,
            });
        }
    }
    Err("no committer line")
}

/// A tree entry's mode, as far as this client cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `100644` (and the historic `100664`).
    Regular,
    /// `100755`.
    Executable,
    /// `120000`.
    Symlink,
    /// `40000` (or zero-padded `040000`).
    Tree,
    /// `160000`: a gitlink (submodule commit).
    Submodule,
}

/// One raw tree entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TreeEntry<'a> {
    /// The mode digits as written.
    pub mode_raw: &'a [u8],
    /// The decoded mode, `None` for unsupported modes.
    pub mode: Option<Mode>,
    /// The name (not validated beyond the framing).
    pub name: &'a [u8],
    /// The object the entry points to.
    pub oid: ObjectId,
}

/// Iterates over the entries of a tree object, checking the framing and that names are
/// strictly increasing in git's order (directories compare as if followed by `/`).
pub(crate) struct TreeIter<'a> {
    rest: &'a [u8],
    prev: Option<(&'a [u8], bool)>,
}

impl<'a> TreeIter<'a> {
    /// Iterates over `data`, the content of a tree object.
    pub fn new(data: &'a [u8]) -> Self {
        TreeIter {
            rest: data,
            prev: None,
        }
    }
}

fn mode_of(raw: &[u8]) -> Option<Mode> {
    Some(match raw {
        b"100644" | b"100664" => Mode::Regular,
        b"100755" => Mode::Executable,
        b"120000" => Mode::Symlink,
        b"40000" | b"040000" => Mode::Tree,
        b"160000" => Mode::Submodule,
        _ => return None,
    })
}

/// Git's tree order: compare names bytewise, a tree's name continuing with `/`.
fn tree_order(a: &[u8], a_tree: bool, b: &[u8], b_tree: bool) -> core::cmp::Ordering {
    let n = a.len().min(b.len());
    match a[..n].cmp(&b[..n]) {
        core::cmp::Ordering::Equal => {}
        other => return other,
    }
    let next = |s: &[u8], tree: bool| -> u8 {
        match s.get(n) {
            Some(&c) => c,
            None if tree => b'/',
            None => 0,
        }
    };
    next(a, a_tree).cmp(&next(b, b_tree))
}

impl<'a> Iterator for TreeIter<'a> {
    type Item = Result<TreeEntry<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let result = (|| {
            let sp = self
                .rest
                .iter()
                .position(|&b| b == b' ')
                .ok_or("entry without a space after the mode")?;
            let mode_raw = &self.rest[..sp];
            if mode_raw.is_empty()
                || mode_raw.len() > 7
                || !mode_raw.iter().all(|b| (b'0'..=b'7').contains(b))
            {
                return Err("malformed mode");
            }
            let after = &self.rest[sp + 1..];
            let nul = after
                .iter()
                .position(|&b| b == 0)
                .ok_or("entry name not terminated")?;
            let name = &after[..nul];
            if name.is_empty() {
                return Err("empty entry name");
            }
            let oid = after
                .get(nul + 1..nul + 21)
                .and_then(ObjectId::from_bytes)
                .ok_or("truncated entry id")?;
            self.rest = &after[nul + 21..];
            let mode = mode_of(mode_raw);
            let is_tree = mode == Some(Mode::Tree);
            if let Some((prev, prev_tree)) = self.prev {
                if prev == name {
                    return Err("duplicate entry name");
                }
                if tree_order(prev, prev_tree, name, is_tree) != core::cmp::Ordering::Less {
                    return Err("entries not sorted");
                }
            }
            self.prev = Some((name, is_tree));
            Ok(TreeEntry {
                mode_raw,
                mode,
                name,
                oid,
            })
        })();
        if result.is_err() {
            self.rest = &[];
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use alloc::string::ToString;
    use alloc::vec::Vec;

    const T: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

    #[test]
    fn commit() {
        let c = alloc::format!(
            "tree {T}\nparent {T}\nauthor A U Thor <a@example.com> 1700000000 +0100\ncommitter C O Mitter <c@example.com> 1700000123 -0500\ngpgsig -----BEGIN\n more\n\nmessage\ncommitter x 5 +0000\n"
        );
        let info = parse_commit(c.as_bytes()).unwrap();
        assert_eq!(info.tree.to_string(), T);
        assert_eq!(info.committer_time, 1_700_000_123);
        assert!(parse_commit(b"parent x\n").is_err());
        let no_committer =
            alloc::format!("tree {T}\nauthor a <a> 1 +0000\n\ncommitter a <a> 1 +0000\n");
        assert_eq!(
            parse_commit(no_committer.as_bytes()),
            Err("no committer line")
        );
        let bad_time = alloc::format!("tree {T}\ncommitter a <a> 1x +0000\n");
        assert!(parse_commit(bad_time.as_bytes()).is_err());
        let huge = alloc::format!("tree {T}\ncommitter a <a> 99999999999999999999 +0000\n");
        assert!(parse_commit(huge.as_bytes()).is_err());
    }

    fn entry(mode: &str, name: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(mode.as_bytes());
        v.push(b' ');
        v.extend_from_slice(name);
        v.push(0);
        v.extend_from_slice(&[0xab; 20]);
        v
    }

    #[test]
    fn tree_entries() {
        let data = [
            entry("100644", b"a.txt"),
            entry("40000", b"a"), // "a/" sorts after "a.txt"
            entry("100755", b"run"),
            entry("160000", b"sub"),
            entry("120000", b"sym"),
        ]
        .concat();
        let entries: Vec<_> = TreeIter::new(&data).collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[1].mode, Some(Mode::Tree));
        assert_eq!(entries[3].mode, Some(Mode::Submodule));
        assert_eq!(entries[0].name, b"a.txt");
        let odd = entry("100600", b"x");
        let e = TreeIter::new(&odd).next().unwrap().unwrap();
        assert_eq!(e.mode, None);
        assert_eq!(e.mode_raw, b"100600");
    }

    #[test]
    fn tree_errors() {
        let unsorted = [entry("100644", b"b"), entry("100644", b"a")].concat();
        assert_eq!(
            TreeIter::new(&unsorted).nth(1),
            Some(Err("entries not sorted"))
        );
        let dup = [entry("100644", b"a"), entry("40000", b"a")].concat();
        assert_eq!(
            TreeIter::new(&dup).nth(1),
            Some(Err("duplicate entry name"))
        );
        let dup2 = [entry("100644", b"a"), entry("100644", b"a")].concat();
        assert_eq!(
            TreeIter::new(&dup2).nth(1),
            Some(Err("duplicate entry name"))
        );
        let mut trunc = entry("100644", b"a");
        trunc.pop();
        assert_eq!(
            TreeIter::new(&trunc).next(),
            Some(Err("truncated entry id"))
        );
        assert_eq!(
            TreeIter::new(b"100644").next(),
            Some(Err("entry without a space after the mode"))
        );
        assert_eq!(
            TreeIter::new(b"100644 abc").next(),
            Some(Err("entry name not terminated"))
        );
        assert_eq!(
            TreeIter::new(&entry("10a644", b"x")).next(),
            Some(Err("malformed mode"))
        );
        assert_eq!(
            TreeIter::new(&entry("100644", b"")).next(),
            Some(Err("empty entry name"))
        );
        // after an error the iterator stops
        let mut it = TreeIter::new(b"garbage");
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }
}
