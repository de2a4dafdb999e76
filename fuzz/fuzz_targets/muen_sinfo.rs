//! sinfo parsing: a subject info page (zero-padded to its full size, as the page is) through
//! `Sinfo::parse`, every resource and every lookup the subject runtime does; each decoded
//! resource must survive re-encoding with `SinfoWriter`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use muen_abi::sinfo::{SINFO_SIZE, Sinfo, SinfoWriter};

fuzz_target!(|data: &[u8]| {
    // Short inputs as they are (truncation errors), then as a full page.
    let _ = Sinfo::parse(data);
    let mut page = vec![0u8; SINFO_SIZE];
    let n = data.len().min(SINFO_SIZE);
    page[..n].copy_from_slice(&data[..n]);
    let Ok(s) = Sinfo::parse(&page) else {
        return;
    };
    let _ = (s.version(), s.tsc_khz(), s.name(), s.resource_count());
    for name in [
        "ram",
        "time_info",
        "debuglog",
        "net0|in",
        "net0|out",
        "site",
        "solo5_exit",
    ] {
        let _ = (s.memory(name), s.event(name), s.vector(name), s.find(name));
    }
    let mut out = vec![0u8; SINFO_SIZE];
    let mut w = SinfoWriter::new(&mut out, s.version(), s.name(), s.tsc_khz())
        .expect("a parsed name is writable");
    let mut kept = Vec::new();
    for r in s.resources() {
        match r {
            Ok(r) => {
                let _ = r.data.kind_raw();
                if w.resource(&r).is_ok() {
                    kept.push(r);
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    w.finish();
    let again = Sinfo::parse(&out).expect("a written page parses");
    assert_eq!(again.name(), s.name());
    let back: Vec<_> = again
        .resources()
        .map(|r| r.expect("written records decode"))
        .collect();
    assert_eq!(back, kept, "resources changed in a write/parse round trip");
});
