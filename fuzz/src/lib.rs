//! Shared fixtures of the fuzz targets (see `docs/fuzzing.md`).

use std::sync::{Arc, OnceLock};

use unipi::http::HttpConfig;
use unipi::site::{Body, Site, SiteBuilder, SiteLimits, SiteMeta, git_blob_id};

pub use unipi_git::fuzzing::Chunks;

/// Splits a fuzz input into a little-endian `u32` taken from its first four bytes (zero
/// padded) and the rest.
pub fn take_u32(data: &[u8]) -> (u32, &[u8]) {
    let n = data.len().min(4);
    let mut b = [0u8; 4];
    b[..n].copy_from_slice(&data[..n]);
    (u32::from_le_bytes(b), &data[n..])
}

static BIG: OnceLock<Vec<u8>> = OnceLock::new();
static GUIDE: OnceLock<Vec<u8>> = OnceLock::new();

/// 3 KB of HTML that gzip shrinks well.
fn guide() -> &'static [u8] {
    GUIDE.get_or_init(|| {
        (0..100)
            .flat_map(|i| format!("<p>section {i}: the guide</p>\n").into_bytes())
            .collect()
    })
}

fn big() -> &'static [u8] {
    BIG.get_or_init(|| (0..70_000u32).map(|i| (i % 251) as u8).collect())
}

fn file(b: &mut SiteBuilder, path: &str, data: &'static [u8], mtime: u64) {
    b.add_file(path, Body::Static(data), git_blob_id(data), mtime, false)
        .expect("fixture file");
}

/// A small site with the shapes the router distinguishes: the index, a directory with an
/// index, a custom 404 page, a redirect, names that need escaping, a body large enough
/// for several output chunks and ranges, and text with a gzip representation (made by a
/// whole compression pass, as the server does after a fetch).
pub fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let settings = unipi::site::compress::Settings {
            mode: unipi::config::Compression::On,
            max_made_bytes: usize::MAX,
        };
        let cfg = HttpConfig::default();
        let site = Arc::new(plain_site());
        let Some(mut c) = unipi::site::compress::Compressor::new(
            site.clone(),
            settings,
            &|p| cfg.compressible(p),
            smoltcp::time::Instant::ZERO,
        ) else {
            return (*site).clone();
        };
        loop {
            if let Some(done) = c.step(smoltcp::time::Instant::ZERO) {
                return done.site;
            }
        }
    })
}

fn plain_site() -> Site {
    let mut b = SiteBuilder::new(SiteLimits::default());
    file(&mut b, "index.html", b"<h1>home</h1>\n", 1_600_000_000);
    file(&mut b, "docs/index.html", b"<p>docs</p>\n", 1_600_000_100);
    file(&mut b, "docs/a b.txt", b"space\n", 1_600_000_200);
    file(&mut b, "404.html", b"<p>not here</p>\n", 0);
    file(&mut b, "css/site.css", b"body{}\n", 1_700_000_000);
    file(&mut b, "caf\u{e9}.txt", b"utf-8 name\n", 1);
    file(&mut b, "empty", b"", 2);
    file(&mut b, "big.bin", big(), 1_650_000_000);
    file(&mut b, "docs/guide.html", guide(), 1_650_000_000);
    b.add_redirect("old", "/docs/").expect("fixture redirect");
    b.add_redirect("ext", "https://example.org/x?y=1")
        .expect("fixture redirect");
    b.finish(SiteMeta {
        source: "fuzz".into(),
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        last_modified: Some(1_700_000_000),
    })
    .expect("fixture site")
}

/// HTTP settings chosen by `variant` (hostname or not, default URL or not, HSTS, small
/// limits so that the 413/414/431 paths are reachable with short inputs).
pub fn http_config(variant: u8) -> Arc<HttpConfig> {
    let mut c = HttpConfig::default();
    if variant & 1 != 0 {
        c.hostname = Some("muen.sk".into());
        c.https_port = 443;
    }
    if variant & 2 != 0 {
        c.default_url = Some("https://muen.sk/".into());
    }
    if variant & 4 != 0 {
        c.hsts_max_age = Some(31_536_000);
    }
    if variant & 8 != 0 {
        c.limits.max_header_bytes = 512;
        c.limits.max_request_line = 256;
        c.limits.max_headers = 8;
        c.limits.max_body_bytes = 300;
        c.limits.max_queued_responses = 2;
    }
    if variant & 16 != 0 {
        c.hook_path = "/sec ret/h\u{f6}ok".into();
        c.add_mime_type("/docs/a b.txt", "text/markdown");
        c.set_default_mime_type("text/plain");
    }
    Arc::new(c)
}
