//! The site archive parser: a ustar/pax/GNU tar image through `site::tar::load` (the boot
//! path for the fallback site region) and the raw entry reader, then every resulting entry
//! looked up and served once through an HTTP connection.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use smoltcp::time::Instant;
use unipi::http::{Connection, HttpConfig, Role};
use unipi::site::SiteLimits;
use unipi::site::tar::{Reader, load};

fuzz_target!(|data: &[u8]| {
    let mut reader = Reader::new(data);
    let mut n = 0;
    while let Ok(Some(e)) = reader.next_entry() {
        assert!(e.offset < data.len());
        n += 1;
        if n > 100_000 {
            panic!("more entries than 512-byte blocks");
        }
    }
    // `load` wants the archive for the whole run (a memory region); the input lives until
    // this closure returns and the site is dropped before that.
    // SAFETY: `site` and everything borrowed from it is dropped at the end of this block,
    // while `data` is still alive.
    let archive: &'static [u8] = unsafe { std::slice::from_raw_parts(data.as_ptr(), data.len()) };
    let limits = SiteLimits {
        max_files: 256,
        max_total_bytes: 1 << 20,
        max_path_len: 256,
        max_depth: 16,
    };
    let Ok(site) = load(archive, &limits) else {
        return;
    };
    assert!(site.len() <= limits.max_files);
    assert!(site.total_bytes() <= limits.max_total_bytes);
    let cfg = Arc::new(HttpConfig::default());
    let now = Instant::from_secs(1);
    let mut conn = Connection::new(cfg, Role::Site { secure: true }, now);
    for (path, _) in site.iter().take(16) {
        let mut req = String::from("GET ");
        unipi::http::path::push_encoded_path(path, &mut req);
        req.push_str(" HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut rest = req.as_bytes();
        for _ in 0..64 {
            let n = conn.receive(rest, now);
            rest = &rest[n..];
            while conn.poll(Some(&site), now, 1_700_000_000).is_some() {}
            while !conn.output().is_empty() {
                let n = conn.output().len();
                conn.consume(n);
            }
            if rest.is_empty() || conn.wants_close() {
                break;
            }
        }
        if conn.wants_close() {
            break;
        }
    }
    drop(conn);
    drop(site);
});
