//! gzip members (`site::gzip`) and whole-site compression (`site::compress`): a committed
//! `.gz` checked against the bytes it claims, compared with miniz_oxide's one-shot decoder;
//! our own members round-tripped at arbitrary slice sizes; and a small site built from the
//! input compressed in slices, every representation decompressing to its file.
//!
//! Input: `selector (1) | seed (4) | data`.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use smoltcp::time::Instant;
use unipi::config::Compression;
use unipi::site::compress::{Compressor, Settings};
use unipi::site::gzip::{Check, Deflated, Deflater, Member, Progress, parse_header};
use unipi::site::{Body, Coding, Entry, SiteBuilder, SiteLimits, SiteMeta, git_blob_id};
use unipi_fuzz::take_u32;

/// Runs a check to its end with slices of `budget` bytes.
fn check(gz: &[u8], expected: &[u8], budget: usize) -> bool {
    let mut c = Check::new();
    for _ in 0..1_000_000 {
        match c.step(gz, expected, budget) {
            Ok(Progress::More(w)) => assert!(w >= budget),
            Ok(Progress::Done(_)) => return true,
            Err(_) => return false,
        }
    }
    panic!("the check never ends");
}

/// miniz_oxide's one-shot view of a gzip member: the bytes, if the member is one whole
/// deflate stream followed by exactly a matching trailer.
fn reference(gz: &[u8]) -> Option<Vec<u8>> {
    let start = parse_header(gz).ok()?;
    let body = gz.get(start..gz.len().checked_sub(8)?)?;
    let (out, used) = decompress(body)?;
    if used != body.len() {
        return None;
    }
    let t = &gz[gz.len() - 8..];
    let crc = u32::from_le_bytes(t[..4].try_into().ok()?);
    let len = u32::from_le_bytes(t[4..].try_into().ok()?);
    (crc == crc32(&out) && len == out.len() as u32).then_some(out)
}

fn decompress(body: &[u8]) -> Option<(Vec<u8>, usize)> {
    use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};
    thread_local! {
        // One 1 MiB output buffer for all runs (a fresh one per run costs more than the rest).
        static OUT: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 1 << 20]);
    }
    OUT.with(|out| {
        let mut out = out.borrow_mut();
        let mut d = DecompressorOxide::new();
        let (status, used, written) = decompress(
            &mut d,
            body,
            &mut out,
            0,
            inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
        );
        (status == miniz_oxide::inflate::TINFLStatus::Done).then(|| (out[..written].to_vec(), used))
    })
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (seed, data) = take_u32(rest);
    let budget = (seed as usize % 5000) + 1;
    match sel % 3 {
        0 => {
            // A committed .gz against the file it claims to be: the input split in two.
            let cut = (seed >> 16) as usize % (data.len() + 1);
            let (expected, gz) = data.split_at(cut);
            let ok = check(gz, expected, budget);
            if ok {
                assert_eq!(
                    reference(gz).as_deref(),
                    Some(expected),
                    "accepted a bad member"
                );
            } else if let Some(out) = reference(gz) {
                assert_ne!(out, expected, "refused a good member");
            }
            // Its own decompressed bytes are always accepted.
            if let Some(out) = reference(gz) {
                assert!(
                    check(gz, &out, budget),
                    "refused a member miniz_oxide reads"
                );
            }
        }
        1 => {
            // Our members round-trip, whatever the slicing.
            thread_local! {
                // One compressor (about 300 KiB) for all runs, reset per member, as the server does.
                static D: std::cell::RefCell<Deflater> = std::cell::RefCell::new(Deflater::new());
            }
            let gz = D.with(|d| {
                let mut d = d.borrow_mut();
                d.reset();
                deflate_all(&mut d, data, budget)
            });
            assert_eq!(reference(&gz).as_deref(), Some(data));
            assert!(check(&gz, data, budget));
        }
        _ => site(data, seed, budget),
    }
});

fn deflate_all(d: &mut Deflater, data: &[u8], budget: usize) -> Vec<u8> {
    let mut m = Member::new(data.len() + data.len() / 2 + 64);
    loop {
        match d.step(&mut m, data, budget) {
            Deflated::More(_) => {}
            Deflated::Done(gz, _) => break gz,
            Deflated::TooLarge(_) => panic!("deflate exceeded 1.5x + 64"),
        }
    }
}

fn site(data: &[u8], seed: u32, budget: usize) {
    // A small site: files cut from the input at 0xff bytes, named so that some are
    // companions (.gz, .br) of others; compressed in slices.
    let names = [
        "a.html",
        "a.html.gz",
        "b.css",
        "b.css.br",
        "c.txt",
        "c.txt.gz",
        "d.png",
    ];
    let mut b = SiteBuilder::new(SiteLimits::default());
    for (i, part) in data.split(|b| *b == 0xff).take(names.len()).enumerate() {
        let body = if part.len() > 2 && part[0] == b'R' {
            // "R<n>": n KiB of repetitive text, so that gzip pays off.
            let n = usize::from(part[1] % 8) + 1;
            part[2..].iter().cycle().take(n * 1024).copied().collect()
        } else {
            part.to_vec()
        };
        let id = git_blob_id(&body);
        b.add_file(names[i], Body::from(body), id, 0, false)
            .expect("fixture");
    }
    let site = Arc::new(b.finish(SiteMeta::default()).expect("fixture"));
    let settings = Settings {
        mode: if seed & 1 == 0 {
            Compression::On
        } else {
            Compression::Static
        },
        max_made_bytes: (seed >> 8) as usize,
    };
    let compressible = |p: &str| !p.ends_with(".png");
    let Some(mut c) = Compressor::new(site.clone(), settings, &compressible, Instant::ZERO) else {
        return;
    };
    let done = loop {
        if let Some(done) = c.step_with(budget, Instant::ZERO) {
            break done;
        }
    };
    assert!(done.stats.made_bytes <= settings.max_made_bytes);
    assert_eq!(done.site.len(), site.len());
    for (path, e) in done.site.iter() {
        let Entry::File {
            body, encodings, ..
        } = e
        else {
            continue;
        };
        if let Some(gz) = encodings.get(Coding::Gzip) {
            assert_eq!(
                reference(gz.body.as_bytes()).as_deref(),
                Some(body.as_bytes()),
                "{path}"
            );
            assert!(gz.body.len() < body.len());
        }
        if let Some(br) = encodings.get(Coding::Br) {
            assert!(!br.body.is_empty() && br.body.len() < body.len());
        }
    }
}
