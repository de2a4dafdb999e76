//! Compressed representations for a whole site, made a bounded slice at a
//! time so that the one event loop keeps serving while it works.
//!
//! After every fetch the application serves the new site at once, without
//! compressed representations, and starts a [`Compressor`] on it. Each
//! event-loop iteration calls [`Compressor::step`], which does about
//! [`SLICE`] bytes of work (deflate input, inflate output, hashed bytes)
//! and returns; when everything is done it returns a new [`Site`] with the
//! same entries plus their [`Encodings`], which the application swaps in.
//! A fetch that completes meanwhile simply drops the compressor.
//!
//! What a file gets (with `--compression=on`, the default):
//!
//! | representation | when |
//! |---|---|
//! | gzip from a committed `X.gz` | `X.gz` is a file of the site, smaller than `X`, and decompresses (checked, a slice at a time) to exactly the bytes of `X`; otherwise a warning names the reason and `X.gz` is not used for `X` |
//! | gzip made here | no usable `X.gz`; the type of `X` is compressible (`http/mime.rs`), `X` has [`MIN_SIZE`] to [`MAX_FILE`] bytes, and gzip at level 6 saves at least 10 % |
//! | br from a committed `X.br` | `X.br` is a file of the site, not empty and smaller than `X`. It is not decoded: the image carries no Brotli decoder (its dictionary alone is 120 KiB), so check it when you commit it (`brotli -t`) |
//!
//! `X.gz` and `X.br` stay reachable under their own names. With
//! `--compression=static` only committed files are used (no CPU spent
//! here); with `--compression=off` there is no compressor at all.
//!
//! Entity tags: every representation has its own strong ETag, the git blob
//! id of its bytes. For a committed `X.gz` that is its object id in Git; for
//! gzip made here it is the blob id of the member [`Deflater`] writes,
//! which depends only on the file's bytes, the level ([`super::gzip::LEVEL`]) and
//! the miniz_oxide version: the same after every reboot and rebuild, and a
//! different tag exactly when the bytes differ.
//!
//! Memory: compressed bytes made here are extra heap (committed ones share
//! the bytes of `X.gz`/`X.br`); the total is bounded by
//! [`Settings::max_made_bytes`], files beyond it keep their identity only.
//! While it runs the compressor holds miniz_oxide's deflate state (about
//! 300 KiB), an inflate state (43 KiB) while checking a `.gz`, and the file
//! being compressed.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use smoltcp::time::Instant;

use super::gzip::{Check, Deflated, Deflater, Member, Progress};
use super::{Body, ETag, Encoded, Encodings, Entry, Site};
use crate::config::Compression;
use unipi_git::BlobHasher;

/// Work per [`Compressor::step`], in bytes (deflate input, inflate output,
/// hashed bytes): about 0.4 ms of a 2020s x86 core at level 6, a few
/// milliseconds under QEMU/TCG.
pub const SLICE: usize = 8 * 1024;

/// Files smaller than this are not compressed here: the gzip header and
/// trailer (18 bytes) and the extra `Content-Encoding`/`Vary` fields eat
/// most of the saving.
pub const MIN_SIZE: usize = 256;

/// Files larger than this are not compressed here (a committed `X.gz` is
/// still used): it bounds the transient memory of one file.
pub const MAX_FILE: usize = 16 * 1024 * 1024;

/// Most "not used" warnings logged per site; the summary counts them all.
const MAX_WARNINGS: usize = 20;

/// What the compressor may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `--compression`.
    pub mode: Compression,
    /// Most bytes of compressed representations made here (their heap);
    /// files beyond it keep their identity representation only.
    pub max_made_bytes: usize,
}

/// What one compression pass did (logged when it is done).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Files whose type is compressible and that are large enough.
    pub candidates: usize,
    /// gzip representations made here.
    pub made: usize,
    /// gzip representations from committed `X.gz`.
    pub committed_gz: usize,
    /// br representations from committed `X.br`.
    pub committed_br: usize,
    /// Committed `X.gz` / `X.br` not used (each logged as a warning).
    pub rejected: usize,
    /// Compressed here but saving less than 10 %.
    pub not_worth_it: usize,
    /// Not compressed because [`Settings::max_made_bytes`] was reached.
    pub over_budget: usize,
    /// Identity bytes of the files that got a gzip representation.
    pub identity_bytes: usize,
    /// Their gzip bytes.
    pub gzip_bytes: usize,
    /// Heap taken by the representations made here.
    pub made_bytes: usize,
    /// Bytes of work done (deflate input, inflate output, hashed bytes).
    pub work_bytes: usize,
    /// Calls of [`Compressor::step`].
    pub slices: usize,
    /// From the start to the end of the pass, milliseconds.
    pub elapsed_ms: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = self.made + self.committed_gz;
        write!(
            f,
            "gzip for {} files ({} made here, {} committed .gz), br for {} (committed .br); \
             {} -> {} bytes",
            files,
            self.made,
            self.committed_gz,
            self.committed_br,
            self.identity_bytes,
            self.gzip_bytes
        )?;
        if self.identity_bytes > 0 {
            let pct = self.gzip_bytes as u64 * 1000 / self.identity_bytes as u64;
            write!(f, " ({}.{} %)", pct / 10, pct % 10)?;
        }
        write!(
            f,
            ", {} bytes of heap made; {} of {} candidates saved < 10 %, {} over the memory \
             budget, {} committed files not used; {} ms in {} slices",
            self.made_bytes,
            self.not_worth_it,
            self.candidates,
            self.over_budget,
            self.rejected,
            self.elapsed_ms,
            self.slices
        )
    }
}

/// A finished pass: the site with its compressed representations.
#[derive(Debug)]
pub struct Compressed {
    /// The same entries and metadata, with [`Encodings`].
    pub site: Site,
    /// What was done.
    pub stats: Stats,
}

/// One file to work on, in path order.
struct Task {
    entry: usize,
    /// A committed `X.gz` to check.
    gz: Option<usize>,
    /// A committed `X.br` to use as it is.
    br: Option<Encoded>,
    /// Compress here if no committed `X.gz` is usable.
    deflate: bool,
}

/// What the current file is in the middle of.
enum Phase {
    Start,
    Verify {
        gz: usize,
        check: Check,
    },
    Deflate(Member),
    Hash {
        bytes: Arc<[u8]>,
        hasher: BlobHasher,
        pos: usize,
    },
    Finished,
}

struct Current {
    task: Task,
    phase: Phase,
    gzip: Option<Encoded>,
}

/// Makes the compressed representations of a site; see the module
/// documentation.
pub struct Compressor {
    site: Arc<Site>,
    tasks: alloc::vec::IntoIter<Task>,
    current: Option<Current>,
    results: Vec<(usize, Encodings)>,
    deflater: Option<Deflater>,
    settings: Settings,
    stats: Stats,
    warnings: usize,
    started: Instant,
    done: bool,
}

impl Compressor {
    /// Plans the work for `site`; `compressible` says whether a site path's
    /// content type is worth compressing (see `HttpConfig::compressible`).
    /// `None` when there is nothing to do (`--compression=off`, or no file
    /// qualifies and none has a committed `.gz`/`.br`).
    pub fn new(
        site: Arc<Site>,
        settings: Settings,
        compressible: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> Option<Compressor> {
        if settings.mode == Compression::Off {
            return None;
        }
        let mut c = Compressor {
            site: site.clone(),
            tasks: Vec::new().into_iter(),
            current: None,
            results: Vec::new(),
            deflater: None,
            settings,
            stats: Stats::default(),
            warnings: 0,
            started: now,
            done: false,
        };
        let mut tasks = Vec::new();
        let mut name = String::new();
        for i in 0..site.len() {
            let Some((path, Entry::File { body, .. })) = site.at(i) else {
                continue;
            };
            let len = body.len();
            let mut companion = |suffix: &str| {
                name.clear();
                name.push_str(path);
                name.push_str(suffix);
                let j = site.position(&name)?;
                match site.at(j) {
                    Some((_, Entry::File { body, etag, .. })) => Some((j, body.clone(), *etag)),
                    _ => None,
                }
            };
            let gz = companion(".gz");
            let br = companion(".br");
            let gz = match gz {
                Some((j, b, _)) if b.len() < len => Some(j),
                Some(_) => {
                    c.reject(path, "gz", "it is not smaller than the file");
                    None
                }
                None => None,
            };
            let br = match br {
                Some((_, body, etag)) if !body.is_empty() && body.len() < len => Some(Encoded {
                    body,
                    etag,
                    committed: true,
                }),
                Some(_) => {
                    c.reject(path, "br", "it is empty or not smaller than the file");
                    None
                }
                None => None,
            };
            let deflate = settings.mode == Compression::On
                && (MIN_SIZE..=MAX_FILE).contains(&len)
                && compressible(path);
            c.stats.candidates += usize::from(deflate);
            if gz.is_some() || br.is_some() || deflate {
                tasks.push(Task {
                    entry: i,
                    gz,
                    br,
                    deflate,
                });
            }
        }
        if tasks.is_empty() {
            return None;
        }
        c.tasks = tasks.into_iter();
        Some(c)
    }

    /// Does about [`SLICE`] bytes of work; returns the new site once all is
    /// done (after that, drop the compressor: further calls return `None`).
    pub fn step(&mut self, now: Instant) -> Option<Compressed> {
        self.step_with(SLICE, now)
    }

    /// [`step`](Self::step) with another amount of work.
    pub fn step_with(&mut self, budget: usize, now: Instant) -> Option<Compressed> {
        if self.done {
            return None;
        }
        self.stats.slices += 1;
        let mut work = 0;
        while work < budget {
            let Some(mut cur) = self.current.take() else {
                let Some(task) = self.tasks.next() else {
                    self.stats.work_bytes += work;
                    return Some(self.finish(now));
                };
                self.current = Some(Current {
                    task,
                    phase: Phase::Start,
                    gzip: None,
                });
                continue;
            };
            work += self.advance(&mut cur, budget - work);
            if matches!(cur.phase, Phase::Finished) {
                self.stats.committed_br += usize::from(cur.task.br.is_some());
                if cur.gzip.is_some() || cur.task.br.is_some() {
                    self.results
                        .push((cur.task.entry, Encodings::new(cur.gzip, cur.task.br)));
                }
            } else {
                self.current = Some(cur);
            }
        }
        self.stats.work_bytes += work;
        None
    }

    /// Moves the current file on by about `budget` bytes of work; returns
    /// the work done.
    fn advance(&mut self, cur: &mut Current, budget: usize) -> usize {
        let site = self.site.clone();
        let Some((path, Entry::File { body, .. })) = site.at(cur.task.entry) else {
            cur.phase = Phase::Finished;
            return 0;
        };
        let data = body.as_bytes();
        match &mut cur.phase {
            Phase::Start => {
                cur.phase = match cur.task.gz {
                    Some(gz) => Phase::Verify {
                        gz,
                        check: Check::new(),
                    },
                    None => self.deflate_or_finish(cur.task.deflate, data.len()),
                };
                64
            }
            Phase::Verify { gz, check } => {
                let Some((
                    _,
                    Entry::File {
                        body: gz_body,
                        etag,
                        ..
                    },
                )) = site.at(*gz)
                else {
                    cur.phase = Phase::Finished;
                    return 0;
                };
                match check.step(gz_body.as_bytes(), data, budget) {
                    Ok(Progress::More(w)) => w,
                    Ok(Progress::Done(w)) => {
                        self.stats.committed_gz += 1;
                        self.stats.identity_bytes += data.len();
                        self.stats.gzip_bytes += gz_body.len();
                        cur.gzip = Some(Encoded {
                            body: gz_body.clone(),
                            etag: *etag,
                            committed: true,
                        });
                        cur.phase = Phase::Finished;
                        w
                    }
                    Err(e) => {
                        self.reject(path, "gz", e);
                        cur.phase = self.deflate_or_finish(cur.task.deflate, data.len());
                        budget
                    }
                }
            }
            Phase::Deflate(member) => {
                let deflater = self.deflater.get_or_insert_with(Deflater::new);
                match deflater.step(member, data, budget) {
                    Deflated::More(w) => w,
                    Deflated::Done(bytes, w) => {
                        let bytes: Arc<[u8]> = Arc::from(bytes);
                        cur.phase = Phase::Hash {
                            hasher: BlobHasher::new(bytes.len()),
                            bytes,
                            pos: 0,
                        };
                        w
                    }
                    Deflated::TooLarge(w) => {
                        self.stats.not_worth_it += 1;
                        cur.phase = Phase::Finished;
                        w
                    }
                }
            }
            Phase::Hash { bytes, hasher, pos } => {
                let end = bytes.len().min(pos.saturating_add(budget));
                hasher.update(bytes.get(*pos..end).unwrap_or(&[]));
                let w = end - *pos + 64;
                *pos = end;
                if end == bytes.len() {
                    let Phase::Hash { bytes, hasher, .. } =
                        core::mem::replace(&mut cur.phase, Phase::Finished)
                    else {
                        return w;
                    };
                    self.stats.made += 1;
                    self.stats.made_bytes += bytes.len();
                    self.stats.identity_bytes += data.len();
                    self.stats.gzip_bytes += bytes.len();
                    cur.gzip = Some(Encoded {
                        body: Body::Shared(bytes),
                        etag: ETag::from_blob_id(hasher.finish().as_bytes()),
                        committed: false,
                    });
                }
                w
            }
            Phase::Finished => 0,
        }
    }

    /// The phase after a committed `.gz` was checked (or absent).
    fn deflate_or_finish(&mut self, deflate: bool, len: usize) -> Phase {
        if !deflate {
            return Phase::Finished;
        }
        // Save at least 10 %: at most 90 % of the identity size.
        let limit = len - len / 10;
        if self.stats.made_bytes.saturating_add(limit) > self.settings.max_made_bytes {
            self.stats.over_budget += 1;
            return Phase::Finished;
        }
        if let Some(d) = &mut self.deflater {
            d.reset();
        }
        Phase::Deflate(Member::new(limit))
    }

    fn reject(&mut self, path: &str, ext: &str, why: impl fmt::Display) {
        self.stats.rejected += 1;
        self.warnings += 1;
        if self.warnings <= MAX_WARNINGS {
            log::warn!(
                "site: {path}.{ext} is not used as the {} encoding of {path}: {why} \
                 (it is still served as {path}.{ext}; regenerate it, e.g. `gzip -9 -n -k`, \
                 `brotli -k`, or delete it)",
                if ext == "gz" { "gzip" } else { "br" }
            );
        }
    }

    fn finish(&mut self, now: Instant) -> Compressed {
        self.done = true;
        self.deflater = None;
        self.stats.elapsed_ms = (now - self.started).total_millis();
        Compressed {
            site: self.site.with_encodings(core::mem::take(&mut self.results)),
            stats: self.stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::gzip;
    use crate::site::{Coding, SiteBuilder, SiteLimits, SiteMeta, git_blob_id};
    use alloc::vec;

    pub(crate) fn text(n: usize, seed: u32) -> Vec<u8> {
        let words = ["static ", "site ", "<li>", "</li>\n", "unikernel ", "git "];
        let mut v = Vec::new();
        let mut i = seed;
        while v.len() < n {
            i = i.wrapping_mul(1_103_515_245).wrapping_add(12345);
            v.extend_from_slice(words[(i >> 16) as usize % words.len()].as_bytes());
        }
        v.truncate(n);
        v
    }

    fn gzip_tool(data: &[u8]) -> Option<Vec<u8>> {
        extern crate std;
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("gzip")
            .args(["-c", "-9", "-n"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(data).ok()?;
        let out = child.wait_with_output().ok()?;
        out.status.success().then_some(out.stdout)
    }

    fn add(b: &mut SiteBuilder, path: &str, data: Vec<u8>) {
        let id = git_blob_id(&data);
        b.add_file(path, Body::from(data), id, 5, false).unwrap();
    }

    fn settings(mode: Compression) -> Settings {
        Settings {
            mode,
            max_made_bytes: usize::MAX,
        }
    }

    fn by_type(path: &str) -> bool {
        crate::http::mime::lookup(path).is_some_and(|m| m.compressible)
    }

    fn run(site: Site, s: Settings, budget: usize) -> Option<Compressed> {
        let mut c = Compressor::new(Arc::new(site), s, &by_type, Instant::from_millis(0))?;
        for i in 0..1_000_000 {
            if let Some(done) = c.step_with(budget, Instant::from_millis(i)) {
                assert!(c.step(Instant::from_millis(i)).is_none());
                return Some(done);
            }
        }
        panic!("never finished");
    }

    fn encodings<'s>(site: &'s Site, path: &str) -> &'s Encodings {
        match site.get(path) {
            Some(Entry::File { encodings, .. }) => encodings,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn inflate(gz: &[u8]) -> Vec<u8> {
        let start = gzip::parse_header(gz).unwrap();
        miniz_oxide::inflate::decompress_to_vec(&gz[start..gz.len() - 8]).unwrap()
    }

    fn sample() -> Site {
        let mut b = SiteBuilder::new(SiteLimits::default());
        add(&mut b, "index.html", text(5000, 1));
        add(&mut b, "tiny.css", text(100, 2));
        add(&mut b, "img.png", text(5000, 3)); // compressible bytes, but not by type
        add(&mut b, "app.js", text(3000, 4));
        add(&mut b, "app.js.br", vec![0x1b; 40]);
        let doc = text(4000, 5);
        if let Some(gz) = gzip_tool(&doc) {
            add(&mut b, "doc.txt.gz", gz);
        }
        add(&mut b, "doc.txt", doc);
        let bad = text(4000, 6);
        add(
            &mut b,
            "bad.txt.gz",
            gzip_tool(&text(4000, 7)).unwrap_or(vec![1; 100]),
        );
        add(&mut b, "bad.txt", bad);
        b.add_redirect("old.html", "index.html").unwrap();
        b.finish(SiteMeta::default()).unwrap()
    }

    #[test]
    fn whole_site() {
        let site = sample();
        let done = run(site.clone(), settings(Compression::On), SLICE).unwrap();
        let s = &done.site;
        assert_eq!(s.len(), site.len());
        // Made here: decompresses to the file, own strong ETag = blob id.
        for path in ["index.html", "app.js", "bad.txt"] {
            let Some(Entry::File { body, etag, .. }) = s.get(path) else {
                panic!()
            };
            let gz = encodings(s, path).get(Coding::Gzip).unwrap();
            assert!(!gz.committed, "{path}");
            assert_eq!(inflate(gz.body.as_bytes()), body.as_bytes(), "{path}");
            assert_eq!(
                gz.etag,
                ETag::from_blob_id(&git_blob_id(gz.body.as_bytes()))
            );
            assert_ne!(gz.etag, *etag);
            assert!(gz.body.len() <= body.len() * 9 / 10);
        }
        // Too small, not compressible by type, redirects: nothing.
        assert!(encodings(s, "tiny.css").is_empty());
        assert!(encodings(s, "img.png").is_empty());
        assert!(matches!(s.get("old.html"), Some(Entry::Redirect { .. })));
        // Committed .br: used as is, with its own ETag, body shared.
        let br = encodings(s, "app.js").get(Coding::Br).unwrap();
        assert!(br.committed);
        let Some(Entry::File { body, etag, .. }) = s.get("app.js.br") else {
            panic!()
        };
        assert_eq!(br.etag, *etag);
        assert_eq!(br.body.as_bytes().as_ptr(), body.as_bytes().as_ptr());
        // Companions stay files of their own, without representations.
        assert!(encodings(s, "app.js.br").is_empty());
        if gzip_tool(b"x").is_some() {
            // Committed .gz that matches: used, same bytes and ETag as doc.txt.gz.
            let gz = encodings(s, "doc.txt").get(Coding::Gzip).unwrap();
            assert!(gz.committed);
            let Some(Entry::File { body, etag, .. }) = s.get("doc.txt.gz") else {
                panic!()
            };
            assert_eq!((gz.etag, gz.body.as_bytes()), (*etag, body.as_bytes()));
            assert_eq!(done.stats.committed_gz, 1);
            assert_eq!(done.stats.rejected, 1); // bad.txt.gz
            assert_eq!(done.stats.made, 3);
        }
        assert_eq!(done.stats.committed_br, 1);
        assert_eq!(done.stats.candidates, 4); // index.html app.js doc.txt bad.txt
        let line = alloc::format!("{}", done.stats);
        assert!(line.contains("committed .gz"), "{line}");
    }

    #[test]
    fn result_does_not_depend_on_the_slice_size() {
        let site = sample();
        let a = run(site.clone(), settings(Compression::On), 1).unwrap();
        let b = run(site.clone(), settings(Compression::On), 1 << 30).unwrap();
        let c = run(site, settings(Compression::On), 3000).unwrap();
        assert!(a.stats.slices > b.stats.slices);
        for (path, _) in a.site.iter() {
            let tags = |s: &Site| {
                [Coding::Gzip, Coding::Br]
                    .map(|k| encodings_of(s, path).and_then(|e| e.get(k).map(|r| r.etag)))
            };
            assert_eq!(tags(&a.site), tags(&b.site), "{path}");
            assert_eq!(tags(&a.site), tags(&c.site), "{path}");
        }
    }

    fn encodings_of<'s>(site: &'s Site, path: &str) -> Option<&'s Encodings> {
        match site.get(path) {
            Some(Entry::File { encodings, .. }) => Some(encodings),
            _ => None,
        }
    }

    #[test]
    fn modes_and_budget() {
        assert!(
            Compressor::new(
                Arc::new(sample()),
                settings(Compression::Off),
                &by_type,
                Instant::ZERO
            )
            .is_none()
        );
        // Static: only committed files.
        let done = run(sample(), settings(Compression::Static), SLICE).unwrap();
        assert_eq!(done.stats.made, 0);
        assert!(encodings(&done.site, "index.html").is_empty());
        assert!(encodings(&done.site, "app.js").get(Coding::Br).is_some());
        // Nothing to do at all.
        let mut b = SiteBuilder::new(SiteLimits::default());
        add(&mut b, "a.png", vec![0; 1000]);
        let site = b.finish(SiteMeta::default()).unwrap();
        assert!(
            Compressor::new(
                Arc::new(site),
                settings(Compression::On),
                &by_type,
                Instant::ZERO
            )
            .is_none()
        );
        // A budget for one file only.
        let s = Settings {
            mode: Compression::On,
            max_made_bytes: 4500,
        };
        let done = run(sample(), s, SLICE).unwrap();
        assert!(done.stats.made_bytes <= 4500);
        assert!(done.stats.over_budget >= 1, "{:?}", done.stats);
    }
}
