//! Content types: a built-in table keyed by file extension, the rule for
//! adding `; charset=utf-8`, and which types are worth compressing.
//!
//! The charset is added to the text-like types nginx's `charset_types` lists
//! (which Unipi follows: text/html, text/xml, text/plain, text/vnd.wap.wml,
//! application/javascript, application/rss+xml, application/atom+xml), plus
//! text/javascript, text/css, text/csv, text/markdown, application/json,
//! application/manifest+json and image/svg+xml — and only when the type has
//! no parameters yet.
//!
//! A type is *compressible* when gzip usually shrinks it: text, markup,
//! scripts, JSON, SVG, fonts without built-in compression (TTF, OTF, EOT)
//! and uncompressed images (BMP, ICO). Already-compressed formats (PNG,
//! JPEG, WOFF2, archives, audio, video, PDF) are not. The built-in table
//! carries the flag per extension; for a type given on the command line
//! (`--mime-type`, `--default-mime-type`), [`is_compressible_type`] decides.
//! Compression itself and the size rules are in `site/compress.rs`.

use alloc::string::String;

/// A content type from the built-in table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaType {
    /// The `Content-Type` value (with `; charset=utf-8` where it applies).
    pub content_type: &'static str,
    /// Worth offering gzip for (see the module documentation).
    pub compressible: bool,
}

/// Extension (lowercase) → content type with charset where it applies, and
/// whether it is compressible. Sorted by extension for binary search.
const TABLE: &[(&str, &str, bool)] = &[
    ("7z", "application/x-7z-compressed", false),
    ("apng", "image/apng", false),
    ("asc", "application/pgp-signature", false),
    ("atom", "application/atom+xml; charset=utf-8", true),
    ("avif", "image/avif", false),
    ("bmp", "image/bmp", true),
    ("bz2", "application/x-bzip2", false),
    ("css", "text/css; charset=utf-8", true),
    ("csv", "text/csv; charset=utf-8", true),
    ("diff", "text/x-diff", true),
    ("eot", "application/vnd.ms-fontobject", true),
    ("epub", "application/epub+zip", false),
    ("flac", "audio/flac", false),
    ("gif", "image/gif", false),
    ("gz", "application/gzip", false),
    ("htm", "text/html; charset=utf-8", true),
    ("html", "text/html; charset=utf-8", true),
    ("ico", "image/x-icon", true),
    ("ics", "text/calendar", true),
    ("iso", "application/x-iso9660-image", false),
    ("jpeg", "image/jpeg", false),
    ("jpg", "image/jpeg", false),
    ("js", "text/javascript; charset=utf-8", true),
    ("json", "application/json; charset=utf-8", true),
    ("jsonld", "application/ld+json", true),
    ("jxl", "image/jxl", false),
    ("m4a", "audio/mp4", false),
    ("map", "application/json; charset=utf-8", true),
    ("md", "text/markdown; charset=utf-8", true),
    ("mjs", "text/javascript; charset=utf-8", true),
    ("mov", "video/quicktime", false),
    ("mp3", "audio/mpeg", false),
    ("mp4", "video/mp4", false),
    ("oga", "audio/ogg", false),
    ("ogg", "audio/ogg", false),
    ("ogv", "video/ogg", false),
    ("opus", "audio/ogg", false),
    ("otf", "font/otf", true),
    ("patch", "text/x-diff", true),
    ("pdf", "application/pdf", false),
    ("pem", "application/x-pem-file", true),
    ("png", "image/png", false),
    ("ps", "application/postscript", true),
    ("rss", "application/rss+xml; charset=utf-8", true),
    ("rtf", "application/rtf", true),
    ("sig", "application/pgp-signature", false),
    ("svg", "image/svg+xml; charset=utf-8", true),
    ("tar", "application/x-tar", false),
    ("tgz", "application/gzip", false),
    ("tif", "image/tiff", false),
    ("tiff", "image/tiff", false),
    ("toml", "application/toml", true),
    ("ttf", "font/ttf", true),
    ("txt", "text/plain; charset=utf-8", true),
    ("vtt", "text/vtt", true),
    ("wasm", "application/wasm", true),
    ("wav", "audio/wav", false),
    ("webm", "video/webm", false),
    (
        "webmanifest",
        "application/manifest+json; charset=utf-8",
        true,
    ),
    ("webp", "image/webp", false),
    ("wml", "text/vnd.wap.wml; charset=utf-8", true),
    ("woff", "font/woff", false),
    ("woff2", "font/woff2", false),
    ("xhtml", "application/xhtml+xml", true),
    ("xml", "text/xml; charset=utf-8", true),
    ("xsl", "text/xml; charset=utf-8", true),
    ("xz", "application/x-xz", false),
    ("yaml", "application/yaml", true),
    ("yml", "application/yaml", true),
    ("zip", "application/zip", false),
    ("zst", "application/zstd", false),
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
    lookup(path).map(|m| m.content_type)
}

/// [`by_extension`] with the compressible flag of the table.
pub fn lookup(path: &str) -> Option<MediaType> {
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
        .binary_search_by(|(e, _, _)| (*e).cmp(lower))
        .ok()
        .map(|i| MediaType {
            content_type: TABLE[i].1,
            compressible: TABLE[i].2,
        })
}

/// The media type without parameters, trimmed (`text/html` of
/// `text/html; charset=utf-8`).
fn essence(ty: &str) -> &str {
    ty.split(';').next().unwrap_or(ty).trim()
}

/// Whether a content type (possibly with parameters) is compressible: any
/// `text/*`, any `+xml` or `+json` type, and every type the built-in table
/// marks compressible (compared case-insensitively, parameters ignored).
pub fn is_compressible_type(ty: &str) -> bool {
    let e = essence(ty).as_bytes();
    let n = e.len();
    let starts = |p: &str| n > p.len() && e[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    let ends = |s: &str| n > s.len() && e[n - s.len()..].eq_ignore_ascii_case(s.as_bytes());
    starts("text/")
        || ends("+xml")
        || ends("+json")
        || TABLE
            .iter()
            .any(|(_, t, c)| *c && essence(t).as_bytes().eq_ignore_ascii_case(e))
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
        for (ext, ty, compressible) in TABLE {
            let essence = ty.split(';').next().unwrap();
            assert_eq!(with_charset(essence), *ty, "{ext}");
            // The flag belongs to the type: the rule for configured types
            // gives the same answer for every extension of the table.
            assert_eq!(is_compressible_type(ty), *compressible, "{ext}");
        }
    }

    #[test]
    fn compressible_types() {
        for (path, expected) in [
            ("index.html", true),
            ("a/site.CSS", true),
            ("app.js", true),
            ("data.json", true),
            ("logo.svg", true),
            ("feed.xml", true),
            ("font.ttf", true),
            ("favicon.ico", true),
            ("img.png", false),
            ("photo.jpg", false),
            ("font.woff2", false),
            ("x.tar.gz", false),
            ("x.br", false),
            ("README", false),
        ] {
            assert_eq!(
                lookup(path).is_some_and(|m| m.compressible),
                expected,
                "{path}"
            );
        }
        for (ty, expected) in [
            ("text/plain", true),
            ("TEXT/X-Whatever;charset=latin1", true),
            ("application/rss+xml", true),
            ("application/vnd.api+JSON", true),
            ("application/json", true),
            ("application/wasm", true),
            ("image/svg+xml; charset=utf-8", true),
            ("application/octet-stream", false),
            ("image/png", false),
            ("text/", false),
            ("+xml", false),
            ("xml", false),
            ("", false),
            ("ä/ü", false),
        ] {
            assert_eq!(is_compressible_type(ty), expected, "{ty}");
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
