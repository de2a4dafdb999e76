//! The site: an immutable snapshot of path → entry.
//!
//! A [`Site`] is built once (from a Git tree by the git client, or from a tar
//! archive in a memory region by [`tar::load`]) through a [`SiteBuilder`],
//! which enforces the path rules and the size limits of [`SiteLimits`]. After
//! [`SiteBuilder::finish`] the snapshot never changes: a webhook pull builds a
//! new one and the application swaps the whole thing.
//!
//! File contents are held as [`Body`] values: cheap-to-clone shared bytes. An
//! HTTP response holds its own clone of the body, so replacing the site while a
//! response is still being sent never invalidates that response.
//!
//! Paths are relative, `/`-separated and never start with `/` (`index.html`,
//! `css/site.css`); see [`validate_path`] for the exact rules.
//!
//! A file can have compressed representations besides its bytes
//! ([`Encodings`]: gzip, Brotli). A freshly built site has none;
//! [`compress::Compressor`] derives a site that has them, a bounded slice
//! of work at a time, so that the event loop keeps serving meanwhile.

pub mod compress;
pub mod gzip;
pub mod tar;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

/// Shared, immutable file contents.
///
/// Cloning never copies the bytes: a `Static` body is a plain slice (for
/// example into a read-only memory region holding a tar archive), a `Shared`
/// body is reference counted.
#[derive(Clone)]
pub enum Body {
    /// Bytes that live for the whole run (e.g. inside a memory region).
    Static(&'static [u8]),
    /// Heap bytes shared by reference counting (e.g. a blob fetched from Git).
    Shared(Arc<[u8]>),
}

impl Body {
    /// The contents.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Static(s) => s,
            Body::Shared(a) => a,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True when the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Static(s) => write!(f, "Body::Static({} bytes)", s.len()),
            Body::Shared(a) => write!(f, "Body::Shared({} bytes)", a.len()),
        }
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Body::Static(s)
    }
}

impl From<Arc<[u8]>> for Body {
    fn from(a: Arc<[u8]>) -> Self {
        Body::Shared(a)
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body::Shared(Arc::from(v))
    }
}

/// A content coding a file can be sent in (RFC 9110 §8.4.1).
///
/// The order is the preference among equally acceptable, equally large
/// representations: Brotli, then gzip, then the bytes as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Coding {
    /// No coding: the file's own bytes.
    Identity,
    /// `gzip` (RFC 1952).
    Gzip,
    /// `br`, Brotli (RFC 7932); only from a committed `X.br`.
    Br,
}

impl Coding {
    /// The content-coding token (`Content-Encoding` value); `identity` is
    /// never sent in `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Br => "br",
        }
    }
}

/// One compressed representation of a file: its bytes and their own
/// strong entity tag (the git blob id of these bytes, so it names exactly
/// them and stays the same across rebuilds that produce the same bytes).
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The compressed bytes.
    pub body: Body,
    /// Strong entity tag of the compressed bytes.
    pub etag: ETag,
    /// Made at site build (`false`) or committed as `X.gz` / `X.br`
    /// (`true`).
    pub committed: bool,
}

/// The compressed representations a file has besides its own bytes. Empty
/// (and one pointer in size) for most files.
#[derive(Clone, Debug, Default)]
pub struct Encodings(Option<Box<EncodingSet>>);

#[derive(Clone, Debug, Default)]
struct EncodingSet {
    gzip: Option<Encoded>,
    br: Option<Encoded>,
}

impl Encodings {
    /// The given representations (empty when both are `None`).
    pub fn new(gzip: Option<Encoded>, br: Option<Encoded>) -> Encodings {
        if gzip.is_none() && br.is_none() {
            Encodings(None)
        } else {
            Encodings(Some(Box::new(EncodingSet { gzip, br })))
        }
    }

    /// The representation in `coding` (`None` for [`Coding::Identity`]:
    /// that is the entry's own body).
    pub fn get(&self, coding: Coding) -> Option<&Encoded> {
        let set = self.0.as_deref()?;
        match coding {
            Coding::Identity => None,
            Coding::Gzip => set.gzip.as_ref(),
            Coding::Br => set.br.as_ref(),
        }
    }

    /// True when the file has no compressed representation.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// A strong HTTP entity tag: the git blob id of the file in lowercase hex,
/// surrounded by double quotes (`"3b18e512dba79e4c8300dd08aeb37f8e728b8dad"`).
///
/// Identical contents always give identical tags, whether the site came from
/// Git or from an archive.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ETag([u8; 42]);

impl ETag {
    /// The tag for a git blob id.
    pub fn from_blob_id(id: &[u8; 20]) -> ETag {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut b = [b'"'; 42];
        for (i, byte) in id.iter().enumerate() {
            b[1 + 2 * i] = HEX[usize::from(byte >> 4)];
            b[2 + 2 * i] = HEX[usize::from(byte & 0xf)];
        }
        ETag(b)
    }

    /// The tag including its quotes, ready for an `ETag:` header.
    pub fn as_str(&self) -> &str {
        // Always ASCII by construction.
        core::str::from_utf8(&self.0).unwrap_or("\"\"")
    }

    /// The tag without its quotes (the opaque part compared by validators).
    pub fn opaque(&self) -> &str {
        let s = self.as_str();
        &s[1..s.len() - 1]
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a path of the site refers to.
#[derive(Clone, Debug)]
pub enum Entry {
    /// A regular file.
    File {
        /// The contents (shared, never copied).
        body: Body,
        /// Strong entity tag derived from the git blob id of the contents.
        etag: ETag,
        /// Modification time, unix seconds.
        last_modified: u64,
        /// The file had an executable mode bit (informational).
        executable: bool,
        /// Compressed representations (none until [`compress`] has run).
        encodings: Encodings,
    },
    /// A symbolic link: served as a `301` redirect whose `Location` is
    /// `target` (already sanitised into a valid header value).
    Redirect {
        /// The redirect target (relative or absolute URI reference).
        target: String,
    },
}

/// Where a snapshot came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteMeta {
    /// Human-readable source description, e.g. `"git 3b18e5…"` or `"archive"`.
    pub source: String,
    /// The commit id in hex, when the site came from Git.
    pub commit: Option<String>,
    /// Modification time of the snapshot as a whole (commit time, or the
    /// newest file in an archive), unix seconds.
    pub last_modified: Option<u64>,
}

/// Bounds enforced while building a site (all inputs are untrusted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteLimits {
    /// Maximum number of entries (files and redirects).
    pub max_files: usize,
    /// Maximum sum of all file sizes in bytes.
    pub max_total_bytes: usize,
    /// Maximum length of a path in bytes.
    pub max_path_len: usize,
    /// Maximum number of `/`-separated components in a path.
    pub max_depth: usize,
}

impl Default for SiteLimits {
    /// 65 536 entries, 256 MiB of content, 1024-byte paths, 32 levels.
    fn default() -> Self {
        SiteLimits {
            max_files: 65_536,
            max_total_bytes: 256 * 1024 * 1024,
            max_path_len: 1024,
            max_depth: 32,
        }
    }
}

/// Why a site could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteError {
    /// A path broke the rules of [`validate_path`].
    InvalidPath {
        /// The offending path (truncated for display).
        path: String,
        /// Which rule was broken.
        reason: &'static str,
    },
    /// The same path was added twice.
    Duplicate {
        /// The path.
        path: String,
    },
    /// A redirect target was not usable as a `Location` header.
    InvalidRedirect {
        /// The path of the redirect.
        path: String,
        /// Which rule was broken.
        reason: &'static str,
    },
    /// More entries than [`SiteLimits::max_files`].
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// More content than [`SiteLimits::max_total_bytes`].
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for SiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiteError::InvalidPath { path, reason } => {
                write!(f, "invalid path {:?}: {}", path, reason)
            }
            SiteError::Duplicate { path } => write!(f, "duplicate path {:?}", path),
            SiteError::InvalidRedirect { path, reason } => {
                write!(f, "invalid link target for {:?}: {}", path, reason)
            }
            SiteError::TooManyFiles { limit } => write!(f, "more than {} files", limit),
            SiteError::TooLarge { limit } => write!(f, "site larger than {} bytes", limit),
        }
    }
}

/// The git blob id of `data`: SHA-1 over `"blob <len>\0"` followed by `data`.
///
/// This is the id `git hash-object` prints, so a file gets the same ETag
/// whether it came from a Git remote or from an archive.
pub fn git_blob_id(data: &[u8]) -> [u8; 20] {
    *unipi_git::blob_id(data).as_bytes()
}

/// Checks a site path against the rules every entry must follow.
///
/// A valid path is non-empty, at most `max_path_len` bytes, does not start
/// with `/`, contains no control characters (including NUL and DEL), and
/// consists of at most `max_depth` `/`-separated components, each of which
/// passes [`unipi_git::check_name`] (the rule for paths from a Git tree: not
/// empty, `.`, `..` or `.git` in any case, no `\\`). On failure the broken
/// rule is returned as a short phrase.
pub fn validate_path(path: &str, limits: &SiteLimits) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.len() > limits.max_path_len {
        return Err("path too long");
    }
    if path.starts_with('/') {
        return Err("absolute path");
    }
    if path.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("control character in path");
    }
    let mut depth = 0usize;
    for comp in path.split('/') {
        depth += 1;
        unipi_git::check_name(comp.as_bytes()).map_err(unipi_git::UnsafeName::as_str)?;
    }
    if depth > limits.max_depth {
        return Err("path too deep");
    }
    Ok(())
}

/// Turns a link target into a safe `Location` value: control characters are
/// refused, spaces and non-ASCII bytes are percent-encoded, length is bounded.
fn sanitize_location(target: &str, max_len: usize) -> Result<String, &'static str> {
    if target.is_empty() {
        return Err("empty target");
    }
    if target.len() > max_len {
        return Err("target too long");
    }
    let mut out = String::with_capacity(target.len());
    for b in target.bytes() {
        match b {
            0..=0x1f | 0x7f => return Err("control character in target"),
            b' ' | 0x80..=0xff | b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            _ => out.push(char::from(b)),
        }
    }
    Ok(out)
}

/// Shortens untrusted text for error messages.
fn display_path(path: &str) -> String {
    let mut end = path.len().min(128);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    String::from(&path[..end])
}

/// Collects entries for a [`Site`], enforcing [`SiteLimits`] as it goes.
pub struct SiteBuilder {
    limits: SiteLimits,
    entries: BTreeMap<Box<str>, Entry>,
    total_bytes: usize,
}

impl SiteBuilder {
    /// An empty builder that will enforce `limits`.
    pub fn new(limits: SiteLimits) -> Self {
        SiteBuilder {
            limits,
            entries: BTreeMap::new(),
            total_bytes: 0,
        }
    }

    /// Number of entries added so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing has been added yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of the file sizes added so far.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// An entry added earlier (used e.g. to resolve hard links).
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    fn check_new(&self, path: &str) -> Result<(), SiteError> {
        validate_path(path, &self.limits).map_err(|reason| SiteError::InvalidPath {
            path: display_path(path),
            reason,
        })?;
        if self.entries.contains_key(path) {
            return Err(SiteError::Duplicate {
                path: display_path(path),
            });
        }
        if self.entries.len() >= self.limits.max_files {
            return Err(SiteError::TooManyFiles {
                limit: self.limits.max_files,
            });
        }
        Ok(())
    }

    /// Adds a regular file. `blob_id` is its git blob id (see
    /// [`git_blob_id`]); the ETag is derived from it. Fails without changing
    /// the builder if the path is invalid or already present, or if a limit
    /// would be exceeded.
    pub fn add_file(
        &mut self,
        path: &str,
        body: Body,
        blob_id: [u8; 20],
        last_modified: u64,
        executable: bool,
    ) -> Result<(), SiteError> {
        let etag = ETag::from_blob_id(&blob_id);
        self.add_file_with_etag(path, body, etag, last_modified, executable)
    }

    /// [`add_file`](Self::add_file) with a ready-made ETag (e.g. copied from
    /// another entry with the same contents).
    pub(crate) fn add_file_with_etag(
        &mut self,
        path: &str,
        body: Body,
        etag: ETag,
        last_modified: u64,
        executable: bool,
    ) -> Result<(), SiteError> {
        self.check_new(path)?;
        let total = self
            .total_bytes
            .checked_add(body.len())
            .filter(|t| *t <= self.limits.max_total_bytes)
            .ok_or(SiteError::TooLarge {
                limit: self.limits.max_total_bytes,
            })?;
        self.total_bytes = total;
        self.entries.insert(
            Box::from(path),
            Entry::File {
                body,
                etag,
                last_modified,
                executable,
                encodings: Encodings::default(),
            },
        );
        Ok(())
    }

    /// Adds a redirect (a symbolic link in the source tree). The target is
    /// kept as written, except that spaces and non-ASCII bytes are
    /// percent-encoded; control characters, an empty target or one longer
    /// than twice `max_path_len` are refused.
    pub fn add_redirect(&mut self, path: &str, target: &str) -> Result<(), SiteError> {
        self.check_new(path)?;
        let target = sanitize_location(target, self.limits.max_path_len.saturating_mul(2))
            .map_err(|reason| SiteError::InvalidRedirect {
                path: display_path(path),
                reason,
            })?;
        self.entries
            .insert(Box::from(path), Entry::Redirect { target });
        Ok(())
    }

    /// Freezes the entries into an immutable, sorted [`Site`].
    pub fn finish(self, meta: SiteMeta) -> Result<Site, SiteError> {
        let entries: Vec<(Box<str>, Entry)> = self.entries.into_iter().collect();
        Ok(Site {
            entries,
            meta,
            total_bytes: self.total_bytes,
        })
    }
}

/// An immutable site snapshot: sorted paths with their entries, plus metadata.
#[derive(Clone, Debug)]
pub struct Site {
    entries: Vec<(Box<str>, Entry)>,
    meta: SiteMeta,
    total_bytes: usize,
}

impl Site {
    /// The entry at `path` (relative, no leading `/`), by binary search.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.position(path).map(|i| &self.entries[i].1)
    }

    /// The index of `path` in path order (see [`Site::at`]).
    pub(crate) fn position(&self, path: &str) -> Option<usize> {
        self.entries.binary_search_by(|(p, _)| (**p).cmp(path)).ok()
    }

    /// The path and entry at index `i` in path order.
    pub(crate) fn at(&self, i: usize) -> Option<(&str, &Entry)> {
        self.entries.get(i).map(|(p, e)| (&**p, e))
    }

    /// The same site with the compressed representations of the files at
    /// the given indices replaced (indices that are not files are skipped).
    /// Bodies are shared, not copied.
    pub(crate) fn with_encodings(&self, updates: Vec<(usize, Encodings)>) -> Site {
        let mut site = self.clone();
        for (i, new) in updates {
            if let Some((_, Entry::File { encodings, .. })) = site.entries.get_mut(i) {
                *encodings = new;
            }
        }
        site
    }

    /// All entries in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(p, e)| (&**p, e))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the site has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of all file sizes in bytes.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Where the snapshot came from.
    pub fn meta(&self) -> &SiteMeta {
        &self.meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn builder() -> SiteBuilder {
        SiteBuilder::new(SiteLimits::default())
    }

    #[test]
    fn blob_id_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let id = git_blob_id(b"hello\n");
        assert_eq!(
            ETag::from_blob_id(&id).as_str(),
            "\"ce013625030ba8dba906f756967f9e9ca394464a\""
        );
        // Empty blob.
        assert_eq!(
            ETag::from_blob_id(&git_blob_id(b"")).opaque(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
    }

    #[test]
    fn path_rules() {
        let l = SiteLimits::default();
        for ok in [
            "index.html",
            "a/b/c.css",
            "ä/ü.html",
            ".well-known/x",
            ".gitignore",
        ] {
            assert_eq!(validate_path(ok, &l), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "./a",
            "a/./b",
            "../a",
            "a/..",
            ".git",
            "x/.GIT/config",
            "a\0b",
            "a\nb",
            "a\x7fb",
        ] {
            assert!(validate_path(bad, &l).is_err(), "{bad:?}");
        }
        let small = SiteLimits {
            max_path_len: 5,
            max_depth: 2,
            ..l
        };
        assert!(validate_path("abcdef", &small).is_err());
        assert!(validate_path("a/b/c", &small).is_err());
        assert!(validate_path("a/b", &small).is_ok());
    }

    #[test]
    fn build_and_lookup() {
        let mut b = builder();
        b.add_file(
            "index.html",
            Body::Static(b"<h1>"),
            git_blob_id(b"<h1>"),
            10,
            false,
        )
        .unwrap();
        b.add_file("a/b.css", Body::from(vec![1, 2, 3]), [0; 20], 20, true)
            .unwrap();
        b.add_redirect("old.html", "new page.html").unwrap();
        assert_eq!(
            b.add_file("index.html", Body::Static(b""), [0; 20], 0, false),
            Err(SiteError::Duplicate {
                path: "index.html".into()
            })
        );
        assert!(b.add_redirect("bad", "a\r\nSet-Cookie: x").is_err());
        assert!(b.add_redirect("bad", "").is_err());
        let site = b
            .finish(SiteMeta {
                source: "test".into(),
                commit: None,
                last_modified: Some(20),
            })
            .unwrap();
        assert_eq!(site.len(), 3);
        assert_eq!(site.total_bytes(), 7);
        assert!(site.get("missing").is_none());
        assert!(site.get("/index.html").is_none());
        match site.get("a/b.css") {
            Some(Entry::File {
                body,
                executable: true,
                last_modified: 20,
                encodings,
                ..
            }) => {
                assert_eq!(body.as_bytes(), &[1, 2, 3]);
                assert!(encodings.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match site.get("old.html") {
            Some(Entry::Redirect { target }) => assert_eq!(target, "new%20page.html"),
            other => panic!("{other:?}"),
        }
        let paths: Vec<&str> = site.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["a/b.css", "index.html", "old.html"]);
    }

    #[test]
    fn limits_enforced() {
        let mut b = SiteBuilder::new(SiteLimits {
            max_files: 2,
            max_total_bytes: 10,
            ..SiteLimits::default()
        });
        b.add_file("a", Body::Static(b"12345"), [0; 20], 0, false)
            .unwrap();
        assert_eq!(
            b.add_file("b", Body::Static(b"123456"), [0; 20], 0, false),
            Err(SiteError::TooLarge { limit: 10 })
        );
        b.add_file("b", Body::Static(b"12345"), [0; 20], 0, false)
            .unwrap();
        assert_eq!(
            b.add_redirect("c", "x"),
            Err(SiteError::TooManyFiles { limit: 2 })
        );
        assert_eq!(b.total_bytes(), 10);
    }

    #[test]
    fn encodings_and_replacement() {
        let mut b = builder();
        b.add_file(
            "a.css",
            Body::Static(b"aaaa"),
            git_blob_id(b"aaaa"),
            1,
            false,
        )
        .unwrap();
        b.add_redirect("b", "a.css").unwrap();
        let site = b.finish(SiteMeta::default()).unwrap();
        let gz = Encoded {
            body: Body::Static(b"gz"),
            etag: ETag::from_blob_id(&git_blob_id(b"gz")),
            committed: false,
        };
        assert!(Encodings::new(None, None).is_empty());
        let i = site.position("a.css").unwrap();
        let j = site.position("b").unwrap();
        let new = site.with_encodings(vec![
            (i, Encodings::new(Some(gz.clone()), None)),
            (j, Encodings::new(Some(gz), None)),
            (99, Encodings::default()),
        ]);
        match new.get("a.css") {
            Some(Entry::File { encodings, .. }) => {
                assert_eq!(encodings.get(Coding::Gzip).unwrap().body.as_bytes(), b"gz");
                assert!(encodings.get(Coding::Br).is_none());
                assert!(encodings.get(Coding::Identity).is_none());
            }
            other => panic!("{other:?}"),
        }
        // The original is untouched.
        match site.get("a.css") {
            Some(Entry::File { encodings, .. }) => assert!(encodings.is_empty()),
            other => panic!("{other:?}"),
        }
        assert_eq!(new.at(j).map(|(p, _)| p), Some("b"));
        assert!(new.at(2).is_none());
        assert_eq!(Coding::Br.token(), "br");
        assert!(Coding::Br > Coding::Gzip && Coding::Gzip > Coding::Identity);
    }

    #[test]
    fn body_clone_shares() {
        let a: Arc<[u8]> = Arc::from(&b"xyz"[..]);
        let body = Body::Shared(a.clone());
        let c = body.clone();
        assert_eq!(Arc::strong_count(&a), 3);
        assert_eq!(c.as_bytes(), b"xyz");
        assert_eq!(c.len(), 3);
        assert!(!c.is_empty());
    }
}
