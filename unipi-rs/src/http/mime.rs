//! Content types: a built-in table keyed by file extension, and the rule for
//! adding `; charset=utf-8`.
//!
//! The charset is added to the text-like types nginx's `charset_types` lists
//! (which Unipi follows: text/html, text/xml, text/plain, text/vnd.wap.wml,
//! application/javascript, application/rss+xml, application/atom+xml), plus
//! text/javascript, text/css, text/csv, text/markdown, application/json,
//! application/manifest+json and image/svg+xml — and only when the type has
//! no parameters yet.

use alloc::string::String;

/// Extension (lowercase) → content type with charset where it applies.
/// Sorted by extension for binary search.
const TABLE: &[(&str, &str)] = &[
    ("7z", "application/x-7z-compressed"),
    ("apng", "image/apng"),
    ("asc", "application/pgp-signature"),
    ("atom", "application/atom+xml; charset=utf-8"),
    ("avif", "image/avif"),
    ("bmp", "image/bmp"),
    ("bz2", "application/x-bzip2"),
    ("css", "text/css; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("diff", "text/x-diff"),
    ("eot", "application/vnd.ms-fontobject"),
    ("epub", "application/epub+zip"),
    ("flac", "audio/flac"),
    ("gif", "image/gif"),
    ("gz", "application/gzip"),
    ("htm", "text/html; charset=utf-8"),
    ("html", "text/html; charset=utf-8"),
    ("ico", "image/x-icon"),
    ("ics", "text/calendar"),
    ("iso", "application/x-iso9660-image"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript; charset=utf-8"),
    ("json", "application/json; charset=utf-8"),
    ("jsonld", "application/ld+json"),
    ("jxl", "image/jxl"),
    ("m4a", "audio/mp4"),
    ("map", "application/json; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("mov", "video/quicktime"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("oga", "audio/ogg"),
    ("ogg", "audio/ogg"),
    ("ogv", "video/ogg"),
    ("opus", "audio/ogg"),
    ("otf", "font/otf"),
    ("patch", "text/x-diff"),
    ("pdf", "application/pdf"),
    ("pem", "application/x-pem-file"),
    ("png", "image/png"),
    ("ps", "application/postscript"),
    ("rss", "application/rss+xml; charset=utf-8"),
    ("rtf", "application/rtf"),
    ("sig", "application/pgp-signature"),
    ("svg", "image/svg+xml; charset=utf-8"),
    ("tar", "application/x-tar"),
    ("tgz", "application/gzip"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("toml", "application/toml"),
    ("ttf", "font/ttf"),
    ("txt", "text/plain; charset=utf-8"),
    ("vtt", "text/vtt"),
    ("wasm", "application/wasm"),
    ("wav", "audio/wav"),
    ("webm", "video/webm"),
    ("webmanifest", "application/manifest+json; charset=utf-8"),
    ("webp", "image/webp"),
    ("wml", "text/vnd.wap.wml; charset=utf-8"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("xhtml", "application/xhtml+xml"),
    ("xml", "text/xml; charset=utf-8"),
    ("xsl", "text/xml; charset=utf-8"),
    ("xz", "application/x-xz"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("zip", "application/zip"),
    ("zst", "application/zstd"),
];

/// Media types (without parameters) that get `; charset=utf-8`.
const CHARSET_TYPES: &[&str] = &[
    "text/html",
    "text/xml",
    "text/plain",
    "text/vnd.wap.wml",
    "application/javascript",
    "text/javascript",
    "application/rss+xml",
    "application/atom+xml",
    "text/css",
    "text/csv",
    "text/markdown",
    "application/json",
    "application/manifest+json",
    "image/svg+xml",
];

/// The built-in content type for a path, decided by the extension of its
/// last component (case-insensitive), already carrying the charset where
/// it applies. `None` if the extension is unknown or absent.
pub fn by_extension(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let (_, ext) = name.rsplit_once('.')?;
    if ext.is_empty() || ext.len() > 16 {
        return None;
    }
    let mut buf = [0u8; 16];
    let lower = &mut buf[..ext.len()];
    lower.copy_from_slice(ext.as_bytes());
    lower.make_ascii_lowercase();
    let lower = core::str::from_utf8(lower).ok()?;
    TABLE
        .binary_search_by(|(e, _)| (*e).cmp(lower))
        .ok()
        .map(|i| TABLE[i].1)
}

/// `ty` with `; charset=utf-8` appended when it is one of the charset types
/// (compared case-insensitively) and has no parameters yet.
pub fn with_charset(ty: &str) -> String {
    let mut s = String::from(ty);
    if !ty.contains(';') && CHARSET_TYPES.iter().any(|c| c.eq_ignore_ascii_case(ty)) {
        s.push_str("; charset=utf-8");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_consistent() {
        for w in TABLE.windows(2) {
            assert!(w[0].0 < w[1].0, "{} !< {}", w[0].0, w[1].0);
        }
        for (ext, ty) in TABLE {
            let essence = ty.split(';').next().unwrap();
            assert_eq!(with_charset(essence), *ty, "{ext}");
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(by_extension("index.html"), Some("text/html; charset=utf-8"));
        assert_eq!(
            by_extension("a/b/INDEX.HTM"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(by_extension("x.tar.gz"), Some("application/gzip"));
        assert_eq!(
            by_extension("logo.svg"),
            Some("image/svg+xml; charset=utf-8")
        );
        assert_eq!(by_extension("f.woff2"), Some("font/woff2"));
        assert_eq!(by_extension("README"), None);
        assert_eq!(by_extension("dir.d/README"), None);
        assert_eq!(by_extension("x."), None);
        assert_eq!(by_extension("x.averyveryverylongextension"), None);
        assert_eq!(by_extension("x.ä"), None);
    }

    #[test]
    fn charset_rule() {
        assert_eq!(with_charset("text/plain"), "text/plain; charset=utf-8");
        assert_eq!(with_charset("TEXT/HTML"), "TEXT/HTML; charset=utf-8");
        assert_eq!(
            with_charset("text/plain;charset=latin1"),
            "text/plain;charset=latin1"
        );
        assert_eq!(with_charset("image/png"), "image/png");
        assert_eq!(
            with_charset("application/javascript"),
            "application/javascript; charset=utf-8"
        );
    }
}
