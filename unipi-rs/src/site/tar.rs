//! A strict, bounded reader for tar archives (POSIX ustar, with the GNU and
//! pax long-name extensions), and [`load`], which turns an archive held in a
//! read-only memory region into a [`Site`] without copying any file body.
//!
//! What is accepted:
//! - 512-byte headers with the `ustar\0` + `00` (POSIX) or `ustar ` + ` \0`
//!   (GNU) magic; every header checksum is verified (unsigned or signed sum);
//! - numeric fields in octal, or in GNU base-256 for large values;
//! - names from the POSIX `prefix` field, GNU `L`/`K` long-name entries, and
//!   pax `x` extended headers (`path`, `linkpath`, `size`, `mtime`; other
//!   keys ignored). Global pax headers (`g`) are skipped;
//! - the end is two consecutive zero blocks; anything after them is ignored.
//!
//! What is an error: a truncated header or body, a bad checksum or magic, a
//! malformed number or pax record, a lone zero block, an extended header with
//! no entry after it, and names the [`SiteBuilder`] refuses.
//!
//! [`load`] maps entries as follows: regular files become [`Entry::File`]
//! (body borrowed from the archive, ETag from [`git_blob_id`], Last-Modified
//! from the entry's mtime); directories are ignored; symbolic links become
//! redirects; hard links copy the entry they point to (which must come
//! earlier in the archive); device nodes, FIFOs and unknown types are skipped
//! with a log line. A leading `./` is stripped from every name, and entries
//! under a `.git` directory are skipped with a warning.
//!
//! [`Entry::File`]: super::Entry::File

use alloc::string::String;
use core::fmt;

use super::{Body, Entry, Site, SiteBuilder, SiteError, SiteLimits, SiteMeta, git_blob_id};

const BLOCK: usize = 512;
/// Upper bound for the data of a pax or GNU long-name header.
const MAX_EXTENDED_HEADER: u64 = 64 * 1024;

/// Why an archive could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TarError {
    /// The archive ends inside a header or a body, or without the two zero
    /// blocks that terminate it.
    Truncated {
        /// Byte offset of the header being read.
        offset: usize,
    },
    /// The header checksum does not match.
    BadChecksum {
        /// Byte offset of the header.
        offset: usize,
    },
    /// A header or extended header is malformed.
    BadHeader {
        /// Byte offset of the header.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A hard link points to no earlier regular file.
    BadHardLink {
        /// Byte offset of the header.
        offset: usize,
        /// The link's name.
        name: String,
    },
    /// The site builder refused an entry.
    Site {
        /// Byte offset of the header.
        offset: usize,
        /// The builder's reason.
        error: SiteError,
    },
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TarError::Truncated { offset } => write!(f, "archive truncated at offset {}", offset),
            TarError::BadChecksum { offset } => {
                write!(f, "bad header checksum at offset {}", offset)
            }
            TarError::BadHeader { offset, reason } => {
                write!(f, "bad header at offset {}: {}", offset, reason)
            }
            TarError::BadHardLink { offset, name } => {
                write!(f, "hard link {:?} at offset {} has no target", name, offset)
            }
            TarError::Site { offset, error } => write!(f, "entry at offset {}: {}", offset, error),
        }
    }
}

/// The kind of an archive entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Regular file (type `0`, NUL or `7`).
    File,
    /// Hard link to an earlier entry (type `1`).
    HardLink,
    /// Symbolic link (type `2`).
    Symlink,
    /// Directory (type `5`).
    Directory,
    /// Anything else (devices, FIFOs, vendor types), with its type byte.
    Other(u8),
}

/// One entry of an archive, with its data borrowed from the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarEntry<'a> {
    /// Byte offset of the entry's (first) header.
    pub offset: usize,
    /// The full name as stored (after resolving prefix / long-name forms).
    pub name: String,
    /// What the entry is.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, unix seconds (negative times are clamped to 0).
    pub mtime: u64,
    /// The entry's data (empty for everything but regular files).
    pub data: &'a [u8],
    /// The link target for hard and symbolic links.
    pub link: Option<String>,
}

/// Iterates over the entries of an archive, validating as it goes.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    finished: bool,
}

#[derive(Default)]
struct Pending {
    offset: Option<usize>,
    path: Option<String>,
    link: Option<String>,
    size: Option<u64>,
    mtime: Option<u64>,
}

impl<'a> Reader<'a> {
    /// A reader over a whole archive.
    pub fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            finished: false,
        }
    }

    /// The next entry, `Ok(None)` after the end-of-archive marker, or an
    /// error (after which the reader stays finished).
    pub fn next_entry(&mut self) -> Result<Option<TarEntry<'a>>, TarError> {
        if self.finished {
            return Ok(None);
        }
        let r = self.read_entry();
        if !matches!(r, Ok(Some(_))) {
            self.finished = true;
        }
        r
    }

    fn block(&self, at: usize) -> Result<&'a [u8], TarError> {
        let end = at
            .checked_add(BLOCK)
            .filter(|e| *e <= self.data.len())
            .ok_or(TarError::Truncated { offset: at })?;
        Ok(&self.data[at..end])
    }

    fn read_entry(&mut self) -> Result<Option<TarEntry<'a>>, TarError> {
        let mut pending = Pending::default();
        loop {
            let offset = self.pos;
            let header = self.block(offset)?;
            if header.iter().all(|b| *b == 0) {
                let next = self.block(offset + BLOCK)?;
                if !next.iter().all(|b| *b == 0) {
                    return Err(TarError::BadHeader {
                        offset,
                        reason: "lone zero block",
                    });
                }
                if pending.offset.is_some() {
                    return Err(TarError::BadHeader {
                        offset,
                        reason: "extended header without entry",
                    });
                }
                self.pos = self.data.len();
                return Ok(None);
            }
            verify_checksum(header, offset)?;
            let posix = match &header[257..265] {
                b"ustar\x0000" => true,
                b"ustar  \0" => false,
                _ => {
                    return Err(TarError::BadHeader {
                        offset,
                        reason: "not a ustar header",
                    });
                }
            };
            let bad = |reason| TarError::BadHeader { offset, reason };
            let typeflag = header[156];
            let header_size = parse_number(&header[124..136]).ok_or(bad("bad size field"))?;
            let size = match typeflag {
                b'x' | b'g' | b'L' | b'K' => header_size,
                _ => pending.size.unwrap_or(header_size),
            };
            let data_start = offset + BLOCK;
            let data_len = usize::try_from(size).map_err(|_| TarError::Truncated { offset })?;
            let data_end = data_start
                .checked_add(data_len)
                .filter(|e| *e <= self.data.len())
                .ok_or(TarError::Truncated { offset })?;
            let padded = data_len.div_ceil(BLOCK) * BLOCK;
            let next = data_start
                .checked_add(padded)
                .ok_or(TarError::Truncated { offset })?;
            if next > self.data.len() {
                return Err(TarError::Truncated { offset });
            }
            let data = &self.data[data_start..data_end];
            self.pos = next;

            match typeflag {
                b'x' | b'g' | b'L' | b'K' if size > MAX_EXTENDED_HEADER => {
                    return Err(bad("extended header too large"));
                }
                b'x' => {
                    pending.offset.get_or_insert(offset);
                    parse_pax(data, &mut pending).map_err(bad)?;
                    continue;
                }
                b'g' => {
                    log::debug!("tar: ignoring global pax header at offset {}", offset);
                    continue;
                }
                b'L' | b'K' => {
                    pending.offset.get_or_insert(offset);
                    let text = c_string(data).ok_or(bad("long name is not UTF-8"))?;
                    if typeflag == b'L' {
                        pending.path.get_or_insert(text);
                    } else {
                        pending.link.get_or_insert(text);
                    }
                    continue;
                }
                _ => {}
            }

            let name = match pending.path.take() {
                Some(p) => p,
                None => {
                    let name = c_string(&header[0..100]).ok_or(bad("name is not UTF-8"))?;
                    let prefix = if posix {
                        c_string(&header[345..500]).ok_or(bad("prefix is not UTF-8"))?
                    } else {
                        String::new()
                    };
                    if prefix.is_empty() {
                        name
                    } else {
                        let mut full = prefix;
                        full.push('/');
                        full.push_str(&name);
                        full
                    }
                }
            };
            let kind = match typeflag {
                b'0' | 0 | b'7' => Kind::File,
                b'1' => Kind::HardLink,
                b'2' => Kind::Symlink,
                b'5' => Kind::Directory,
                other => Kind::Other(other),
            };
            let link = match kind {
                Kind::HardLink | Kind::Symlink => Some(match pending.link.take() {
                    Some(l) => l,
                    None => c_string(&header[157..257]).ok_or(bad("link name is not UTF-8"))?,
                }),
                _ => None,
            };
            let mode = parse_number(&header[100..108]).ok_or(bad("bad mode field"))?;
            let mtime = match pending.mtime {
                Some(m) => m,
                None => parse_number(&header[136..148]).ok_or(bad("bad mtime field"))?,
            };
            return Ok(Some(TarEntry {
                offset: pending.offset.unwrap_or(offset),
                name,
                kind,
                mode: (mode & 0o7777) as u32,
                mtime,
                data: if kind == Kind::File { data } else { &[] },
                link,
            }));
        }
    }
}

fn verify_checksum(header: &[u8], offset: usize) -> Result<(), TarError> {
    let stored = parse_octal(&header[148..156]).ok_or(TarError::BadHeader {
        offset,
        reason: "bad checksum field",
    })?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, b) in header.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { *b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).ok() == Some(signed) {
        Ok(())
    } else {
        Err(TarError::BadChecksum { offset })
    }
}

/// A NUL-terminated (or field-filling) UTF-8 string.
fn c_string(field: &[u8]) -> Option<String> {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    core::str::from_utf8(&field[..end]).ok().map(String::from)
}

/// An octal field: optional leading spaces, octal digits, then only NULs or
/// spaces. An all-blank field is 0.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < field.len() && field[i] == b' ' {
        i += 1;
    }
    let mut value: u64 = 0;
    while i < field.len() && (b'0'..=b'7').contains(&field[i]) {
        value = value
            .checked_mul(8)?
            .checked_add(u64::from(field[i] - b'0'))?;
        i += 1;
    }
    if field[i..].iter().all(|b| *b == 0 || *b == b' ') {
        Some(value)
    } else {
        None
    }
}

/// An octal field, or a GNU base-256 field (first byte 0x80, big-endian).
fn parse_number(field: &[u8]) -> Option<u64> {
    match field.first() {
        Some(0x80) => field[1..].iter().try_fold(0u64, |acc, b| {
            if acc >> 56 != 0 {
                None
            } else {
                Some(acc << 8 | u64::from(*b))
            }
        }),
        Some(b) if b & 0x80 != 0 => None, // negative or unknown encoding
        _ => parse_octal(field),
    }
}

/// Parses pax records (`"<len> <key>=<value>\n"`) into `pending`.
fn parse_pax(mut data: &[u8], pending: &mut Pending) -> Result<(), &'static str> {
    while !data.is_empty() {
        // GNU tar pads the pax data with NULs in some versions.
        if data.iter().all(|b| *b == 0) {
            break;
        }
        let sp = data
            .iter()
            .take(20)
            .position(|b| *b == b' ')
            .ok_or("bad pax record length")?;
        let len_text = core::str::from_utf8(&data[..sp]).map_err(|_| "bad pax record length")?;
        if len_text.is_empty() || !len_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err("bad pax record length");
        }
        let len: usize = len_text.parse().map_err(|_| "bad pax record length")?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("bad pax record");
        }
        let record = &data[sp + 1..len - 1];
        data = &data[len..];
        let eq = record
            .iter()
            .position(|b| *b == b'=')
            .ok_or("pax record without '='")?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let text = || {
            core::str::from_utf8(value)
                .map(String::from)
                .map_err(|_| "pax value is not UTF-8")
        };
        match key {
            b"path" => pending.path = Some(text()?),
            b"linkpath" => pending.link = Some(text()?),
            b"size" => {
                let v = core::str::from_utf8(value).map_err(|_| "bad pax size")?;
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("bad pax size");
                }
                pending.size = Some(v.parse().map_err(|_| "bad pax size")?);
            }
            b"mtime" => {
                let v = core::str::from_utf8(value).map_err(|_| "bad pax mtime")?;
                let int = v.split('.').next().unwrap_or("");
                let (neg, digits) = match int.strip_prefix('-') {
                    Some(d) => (true, d),
                    None => (false, int),
                };
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("bad pax mtime");
                }
                let secs: u64 = digits.parse().map_err(|_| "bad pax mtime")?;
                pending.mtime = Some(if neg { 0 } else { secs });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Strips the leading `./` (or a lone `.`) that `tar -C dir .` produces.
fn normalize_name(name: &str) -> &str {
    let mut n = name;
    while let Some(rest) = n.strip_prefix("./") {
        n = rest;
    }
    if n == "." { "" } else { n }
}

fn under_git_dir(name: &str) -> bool {
    name.split('/').any(|c| c.eq_ignore_ascii_case(".git"))
}

/// Builds a [`Site`] from a tar archive that lives for the whole run (a
/// read-only memory region). File bodies are borrowed ([`Body::Static`]),
/// never copied. The site's metadata says `source: "archive"`, no commit, and
/// `last_modified` = the newest file mtime.
pub fn load(archive: &'static [u8], limits: &SiteLimits) -> Result<Site, TarError> {
    let mut reader = Reader::new(archive);
    let mut builder = SiteBuilder::new(*limits);
    let mut newest: Option<u64> = None;
    while let Some(entry) = reader.next_entry()? {
        let offset = entry.offset;
        let site_err = |error| TarError::Site { offset, error };
        let name = normalize_name(&entry.name);
        if entry.kind == Kind::Directory {
            continue;
        }
        if under_git_dir(name) {
            log::warn!("archive: skipping {:?} (inside .git)", name);
            continue;
        }
        match entry.kind {
            Kind::File => {
                builder
                    .add_file(
                        name,
                        Body::Static(entry.data),
                        git_blob_id(entry.data),
                        entry.mtime,
                        entry.mode & 0o111 != 0,
                    )
                    .map_err(site_err)?;
                newest = Some(newest.map_or(entry.mtime, |n| n.max(entry.mtime)));
            }
            Kind::Symlink => {
                let target = entry.link.as_deref().unwrap_or("");
                builder.add_redirect(name, target).map_err(site_err)?;
            }
            Kind::HardLink => {
                let target = normalize_name(entry.link.as_deref().unwrap_or(""));
                let (body, etag) = match builder.get(target) {
                    Some(Entry::File { body, etag, .. }) => (body.clone(), *etag),
                    _ => {
                        return Err(TarError::BadHardLink {
                            offset,
                            name: String::from(name),
                        });
                    }
                };
                builder
                    .add_file_with_etag(name, body, etag, entry.mtime, entry.mode & 0o111 != 0)
                    .map_err(site_err)?;
                newest = Some(newest.map_or(entry.mtime, |n| n.max(entry.mtime)));
            }
            Kind::Directory => {}
            Kind::Other(t) => {
                log::info!(
                    "archive: skipping {:?} (unsupported entry type {:?})",
                    name,
                    char::from(t)
                );
            }
        }
    }
    let meta = SiteMeta {
        source: String::from("archive"),
        commit: None,
        last_modified: newest,
    };
    builder
        .finish(meta)
        .map_err(|error| TarError::Site { offset: 0, error })
}

/// Writes a ustar archive in memory (used by tests of this module and of the
/// HTTP server; not part of the boot path).
#[cfg(test)]
pub(crate) mod build {
    use alloc::string::String;
    use alloc::vec::Vec;

    /// One entry to write.
    pub struct Item<'a> {
        pub name: &'a str,
        pub typeflag: u8,
        pub data: &'a [u8],
        pub link: &'a str,
        pub mtime: u64,
        pub mode: u32,
    }

    pub fn file<'a>(name: &'a str, data: &'a [u8]) -> Item<'a> {
        Item {
            name,
            typeflag: b'0',
            data,
            link: "",
            mtime: 1_700_000_000,
            mode: 0o644,
        }
    }

    fn octal(field: &mut [u8], v: u64) {
        let w = field.len() - 1;
        let s = alloc::format!("{:0w$o}", v, w = w);
        field[..w].copy_from_slice(s.as_bytes());
        field[w] = 0;
    }

    pub fn header(item: &Item<'_>, size: u64) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..item.name.len()].copy_from_slice(item.name.as_bytes());
        octal(&mut h[100..108], u64::from(item.mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], item.mtime);
        h[156] = item.typeflag;
        h[157..157 + item.link.len()].copy_from_slice(item.link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        fix_checksum(&mut h);
        h
    }

    pub fn fix_checksum(h: &mut [u8; 512]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        let s = alloc::format!("{:06o}\0 ", sum);
        h[148..156].copy_from_slice(s.as_bytes());
    }

    pub fn push(out: &mut Vec<u8>, item: &Item<'_>) {
        out.extend_from_slice(&header(item, item.data.len() as u64));
        out.extend_from_slice(item.data);
        let pad = (512 - item.data.len() % 512) % 512;
        out.resize(out.len() + pad, 0);
    }

    pub fn pax(out: &mut Vec<u8>, records: &[(&str, &str)]) {
        let mut data = String::new();
        for (k, v) in records {
            let body_len = k.len() + v.len() + 3; // ' ' '=' '\n'
            let mut len = body_len + 1;
            while alloc::format!("{}", len).len() + body_len != len {
                len += 1;
            }
            data.push_str(&alloc::format!("{} {}={}\n", len, k, v));
        }
        let item = Item {
            name: "PaxHeaders/x",
            typeflag: b'x',
            data: data.as_bytes(),
            link: "",
            mtime: 0,
            mode: 0o644,
        };
        push(out, &item);
    }

    pub fn archive(items: &[Item<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for i in items {
            push(&mut out, i);
        }
        finish(&mut out);
        out
    }

    pub fn finish(out: &mut Vec<u8>) {
        out.resize(out.len() + 1024, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec;
    use alloc::vec::Vec;

    fn leak(v: Vec<u8>) -> &'static [u8] {
        Box::leak(v.into_boxed_slice())
    }

    fn body_of<'s>(site: &'s Site, path: &str) -> &'s [u8] {
        match site.get(path) {
            Some(Entry::File { body, .. }) => body.as_bytes(),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn basic_archive() {
        let mut dir = file("./css/", b"");
        dir.typeflag = b'5';
        let mut link = file("./old.html", b"");
        link.typeflag = b'2';
        link.link = "index.html";
        let mut fifo = file("./fifo", b"");
        fifo.typeflag = b'6';
        let mut exe = file("./run.sh", b"#!/bin/sh\n");
        exe.mode = 0o755;
        exe.mtime = 1_800_000_000;
        let data = leak(archive(&[
            {
                let mut d = file("./", b"");
                d.typeflag = b'5';
                d
            },
            dir,
            file("./css/site.css", b"body{}"),
            file("./index.html", &[b'x'; 1000]),
            link,
            fifo,
            exe,
        ]));
        let site = load(data, &SiteLimits::default()).unwrap();
        assert_eq!(site.len(), 4);
        assert_eq!(body_of(&site, "css/site.css"), b"body{}");
        assert_eq!(body_of(&site, "index.html").len(), 1000);
        // Bodies are borrowed from the archive, not copied.
        match site.get("index.html") {
            Some(Entry::File {
                body: Body::Static(s),
                etag,
                last_modified,
                executable,
                encodings,
            }) => {
                assert!(encodings.is_empty());
                let base = data.as_ptr() as usize;
                let p = s.as_ptr() as usize;
                assert!(p >= base && p < base + data.len());
                assert_eq!(etag.opaque().len(), 40);
                assert_eq!(*last_modified, 1_700_000_000);
                assert!(!executable);
            }
            other => panic!("{other:?}"),
        }
        match site.get("run.sh") {
            Some(Entry::File { executable, .. }) => assert!(*executable),
            other => panic!("{other:?}"),
        }
        match site.get("old.html") {
            Some(Entry::Redirect { target }) => assert_eq!(target, "index.html"),
            other => panic!("{other:?}"),
        }
        assert_eq!(site.meta().source, "archive");
        assert_eq!(site.meta().last_modified, Some(1_800_000_000));
    }

    #[test]
    fn hard_links_copy() {
        let mut hl = file("b.txt", b"");
        hl.typeflag = b'1';
        hl.link = "./a.txt";
        let data = leak(archive(&[file("./a.txt", b"same"), hl]));
        let site = load(data, &SiteLimits::default()).unwrap();
        assert_eq!(body_of(&site, "b.txt"), b"same");

        let mut dangling = file("b.txt", b"");
        dangling.typeflag = b'1';
        dangling.link = "nope";
        let data = leak(archive(&[dangling]));
        assert!(matches!(
            load(data, &SiteLimits::default()),
            Err(TarError::BadHardLink { .. })
        ));
    }

    #[test]
    fn prefix_and_long_names() {
        let long_dir = "d".repeat(120);
        // POSIX prefix field.
        let mut out = Vec::new();
        let item = file("f.txt", b"p");
        let mut h = header(&item, 1);
        h[345..345 + long_dir.len()].copy_from_slice(long_dir.as_bytes());
        fix_checksum(&mut h);
        out.extend_from_slice(&h);
        out.extend_from_slice(b"p");
        out.resize(out.len() + 511, 0);
        // pax path + mtime.
        let pax_name = alloc::format!("{}/{}", "e".repeat(150), "g".repeat(100));
        pax(
            &mut out,
            &[("path", &pax_name), ("mtime", "1234.5"), ("comment", "x")],
        );
        push(&mut out, &file("ignored-short-name", b"q"));
        // GNU long name.
        let gnu_name = alloc::format!("{}/long.txt", "h".repeat(200));
        let mut l = file("././@LongLink", gnu_name.as_bytes());
        l.typeflag = b'L';
        push(&mut out, &l);
        push(&mut out, &file("trunc", b"r"));
        finish(&mut out);
        let site = load(leak(out), &SiteLimits::default()).unwrap();
        assert_eq!(body_of(&site, &alloc::format!("{long_dir}/f.txt")), b"p");
        assert_eq!(body_of(&site, &pax_name), b"q");
        assert_eq!(body_of(&site, &gnu_name), b"r");
        match site.get(&pax_name) {
            Some(Entry::File { last_modified, .. }) => assert_eq!(*last_modified, 1234),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pax_size_override_and_base256() {
        let mut out = Vec::new();
        pax(&mut out, &[("size", "3")]);
        let item = file("a", b"abc");
        let mut h = header(&item, 0); // header says 0, pax says 3
        h[124] = 0x80;
        h[125..136].fill(0);
        fix_checksum(&mut h);
        out.extend_from_slice(&h);
        out.extend_from_slice(b"abc");
        out.resize(out.len() + 509, 0);
        finish(&mut out);
        let site = load(leak(out), &SiteLimits::default()).unwrap();
        assert_eq!(body_of(&site, "a"), b"abc");
        assert_eq!(parse_number(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(parse_number(&[0xff, 0xff]), None);
        assert_eq!(parse_number(b"  17 \0"), Some(0o17));
        assert_eq!(parse_number(b"\0\0\0"), Some(0));
        assert_eq!(parse_number(b"18"), None);
        assert_eq!(parse_number(b"7x"), None);
        assert_eq!(parse_octal(b"7777777777777777777777777"), None);
    }

    #[test]
    fn strictness() {
        let good = archive(&[file("a", b"hello")]);
        assert!(load(leak(good.clone()), &SiteLimits::default()).is_ok());

        // Checksum.
        let mut bad = good.clone();
        bad[0] = b'b';
        assert_eq!(
            load(leak(bad), &SiteLimits::default()).unwrap_err(),
            TarError::BadChecksum { offset: 0 }
        );
        // Magic.
        let mut bad = good.clone();
        bad[257] = b'X';
        let mut h: [u8; 512] = bad[..512].try_into().unwrap();
        fix_checksum(&mut h);
        bad[..512].copy_from_slice(&h);
        assert!(matches!(
            load(leak(bad), &SiteLimits::default()),
            Err(TarError::BadHeader { .. })
        ));
        // Truncations at every length.
        for cut in 0..good.len() {
            let r = load(leak(good[..cut].to_vec()), &SiteLimits::default());
            assert!(
                matches!(r, Err(TarError::Truncated { .. })),
                "cut {cut}: {r:?}"
            );
        }
        // Lone zero block followed by garbage.
        let mut bad = good[..1024].to_vec();
        bad.extend_from_slice(&[0; 512]);
        bad.extend_from_slice(&[1; 512]);
        assert!(matches!(
            load(leak(bad), &SiteLimits::default()),
            Err(TarError::BadHeader { .. })
        ));
        // Huge size.
        let mut h = header(&file("a", b""), 0);
        h[124..136].copy_from_slice(b"77777777777\0");
        fix_checksum(&mut h);
        let mut bad = h.to_vec();
        finish(&mut bad);
        assert!(matches!(
            load(leak(bad), &SiteLimits::default()),
            Err(TarError::Truncated { .. })
        ));
        // Dangling extended header.
        let mut bad = Vec::new();
        pax(&mut bad, &[("path", "x")]);
        finish(&mut bad);
        assert!(load(leak(bad), &SiteLimits::default()).is_err());
        // Malformed pax.
        let mut p = Pending::default();
        assert!(parse_pax(b"5 a=b\n", &mut p).is_err());
        assert!(parse_pax(b"99 a=b\n", &mut p).is_err());
        assert!(parse_pax(b"x a=b\n", &mut p).is_err());
        assert!(parse_pax(b"6 ab\nx", &mut p).is_err());
        assert!(parse_pax(b"12 size=1x\n", &mut p).is_err());
        assert!(parse_pax(b"6 a=b\n\0\0\0", &mut p).is_ok());
        // Bad names.
        for name in ["/etc/passwd", "a/../b", "a//b"] {
            let r = load(leak(archive(&[file(name, b"x")])), &SiteLimits::default());
            assert!(matches!(r, Err(TarError::Site { .. })), "{name}: {r:?}");
        }
        // Duplicates.
        let r = load(
            leak(archive(&[file("a", b"x"), file("./a", b"y")])),
            &SiteLimits::default(),
        );
        assert!(matches!(r, Err(TarError::Site { .. })));
        // .git content is skipped, not fatal.
        let site = load(
            leak(archive(&[file("./.git/config", b"x"), file("./a", b"y")])),
            &SiteLimits::default(),
        )
        .unwrap();
        assert_eq!(site.len(), 1);
        // Non-UTF-8 name.
        let mut h = header(&file("a", b""), 0);
        h[0] = 0xff;
        fix_checksum(&mut h);
        let mut bad = h.to_vec();
        finish(&mut bad);
        assert!(load(leak(bad), &SiteLimits::default()).is_err());
        // Limits apply.
        let limits = SiteLimits {
            max_total_bytes: 4,
            ..SiteLimits::default()
        };
        assert!(matches!(
            load(leak(good), &limits),
            Err(TarError::Site {
                error: SiteError::TooLarge { .. },
                ..
            })
        ));
    }

    #[test]
    fn empty_archive() {
        let site = load(leak(vec![0; 10240]), &SiteLimits::default()).unwrap();
        assert!(site.is_empty());
        assert_eq!(site.meta().last_modified, None);
        assert!(load(leak(Vec::new()), &SiteLimits::default()).is_err());
    }

    #[test]
    fn mutated_archives_never_panic() {
        let base = archive(&[
            file("./a.html", b"<p>hi</p>"),
            file("./b/c.css", &[b'c'; 700]),
            {
                let mut l = file("./d", b"");
                l.typeflag = b'2';
                l.link = "a.html";
                l
            },
        ]);
        let mut seed: u64 = 0x1234_5678_9abc_def0;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut m = base.clone();
            for _ in 0..(rnd() % 4 + 1) {
                let i = (rnd() as usize) % m.len();
                m[i] = rnd() as u8;
                if rnd() % 3 == 0 {
                    // Keep the checksum valid so deeper code runs.
                    let blk = i / 512 * 512;
                    let mut h: [u8; 512] = m[blk..blk + 512].try_into().unwrap();
                    fix_checksum(&mut h);
                    m[blk..blk + 512].copy_from_slice(&h);
                }
            }
            if rnd() % 5 == 0 {
                let cut = (rnd() as usize) % m.len();
                m.truncate(cut);
            }
            let _ = load(leak(m), &SiteLimits::default());
        }
    }

    /// Runs the real GNU tar exactly like the build does and parses its output.
    #[test]
    fn gnu_tar_output() {
        extern crate std;
        use std::process::Command;
        let dir =
            std::env::temp_dir().join(alloc::format!("unipi-tar-test-{}", std::process::id()));
        let htdocs = dir.join("htdocs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(htdocs.join("css")).unwrap();
        std::fs::create_dir_all(htdocs.join("empty")).unwrap();
        let deep = htdocs.join("x".repeat(60)).join("y".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(htdocs.join("index.html"), b"<h1>hi</h1>\n").unwrap();
        std::fs::write(htdocs.join("css/site.css"), vec![b'a'; 5000]).unwrap();
        std::fs::write(htdocs.join("empty.txt"), b"").unwrap();
        std::fs::write(deep.join("deep.txt"), b"deep").unwrap();
        std::os::unix::fs::symlink("index.html", htdocs.join("home.html")).unwrap();
        std::fs::hard_link(htdocs.join("index.html"), htdocs.join("copy.html")).unwrap();
        let tarball = dir.join("site.tar");
        let status = Command::new("tar")
            .args([
                "--format=ustar",
                "--sort=name",
                "--mtime=@1700000000",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "-C",
            ])
            .arg(&htdocs)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .status();
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                std::eprintln!("skipping: cannot run tar: {e}");
                return;
            }
        };
        assert!(status.success());
        let bytes = std::fs::read(&tarball).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let site = load(leak(bytes), &SiteLimits::default()).unwrap();
        assert_eq!(body_of(&site, "index.html"), b"<h1>hi</h1>\n");
        assert_eq!(body_of(&site, "copy.html"), b"<h1>hi</h1>\n");
        assert_eq!(body_of(&site, "css/site.css").len(), 5000);
        assert_eq!(body_of(&site, "empty.txt"), b"");
        let deep_path = alloc::format!("{}/{}/deep.txt", "x".repeat(60), "y".repeat(60));
        assert_eq!(body_of(&site, &deep_path), b"deep");
        match site.get("home.html") {
            Some(Entry::Redirect { target }) => assert_eq!(target, "index.html"),
            other => panic!("{other:?}"),
        }
        match site.get("index.html") {
            Some(Entry::File {
                etag,
                last_modified,
                ..
            }) => {
                assert_eq!(*last_modified, 1_700_000_000);
                // `printf '<h1>hi</h1>\n' | git hash-object --stdin`
                let id = git_blob_id(b"<h1>hi</h1>\n");
                assert_eq!(*etag, super::super::ETag::from_blob_id(&id));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(site.len(), 6);
        assert_eq!(site.meta().last_modified, Some(1_700_000_000));
    }
}
