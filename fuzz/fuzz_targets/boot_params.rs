//! Boot parameters: the Solo5 boot info page (`muen_abi::bootinfo::parse`) and the command
//! line through `Config::parse`, then everything the boot derives from it (HTTP settings,
//! the git remote URL, error messages).
//!
//! Input: a command line; also tried as the boot info page's command-line area.
#![no_main]

use libfuzzer_sys::fuzz_target;
use muen_abi::bootinfo;
use unipi::config::Config;
use unipi::http::HttpConfig;

fn check(cmdline: &str) {
    let (cfg, errors) = Config::parse(cmdline);
    for e in &errors {
        let _ = e.to_string();
    }
    assert_ne!(cfg.port, cfg.https_port);
    let http = HttpConfig::from_config(&cfg);
    assert!(http.limits.max_request_line <= http.limits.max_header_bytes);
    let _ = http.content_type("index.html");
    if let Some(remote) = &cfg.remote {
        if let Ok(url) = unipi_git::Url::parse(remote) {
            let _ = (
                url.host(),
                url.port(),
                url.path(),
                url.wanted_ref(),
                url.host_header(),
            );
            let mut fetch = unipi_git::Fetch::new(url, unipi_git::FetchOptions::default());
            let _ = fetch.poll();
        }
    }
    if let Some(d) = &cfg.default_url {
        assert!(!d.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = core::str::from_utf8(data) {
        check(s);
        let _ = unipi_git::Url::parse(s);
    }
    // The same bytes as the command line of a boot info page built the way Muen does.
    let mut page = [0u8; bootinfo::BOOT_INFO_SIZE];
    page[bootinfo::CMDLINE_PTR_OFFSET..bootinfo::CMDLINE_PTR_OFFSET + 8]
        .copy_from_slice(&0x1028u64.to_le_bytes());
    let n = data
        .len()
        .min(bootinfo::BOOT_INFO_SIZE - bootinfo::CMDLINE_OFFSET);
    page[bootinfo::CMDLINE_OFFSET..bootinfo::CMDLINE_OFFSET + n].copy_from_slice(&data[..n]);
    if let Ok(info) = bootinfo::parse(&page) {
        assert!(info.cmdline.len() <= bootinfo::CMDLINE_MAX);
        check(info.cmdline);
    }
    // And as a whole page (header fields included), possibly short.
    if let Err(e) = bootinfo::parse(data) {
        let _ = e.to_string();
    }
});
