//! The system image the minimal kernel loads: `muen_image::Image::parse` and every accessor
//! the kernel uses afterwards (which must not fail once parsing succeeded).
#![no_main]

use libfuzzer_sys::fuzz_target;
use muen_image::{Backing, Image};

fuzz_target!(|data: &[u8]| {
    let img = match Image::parse(data) {
        Ok(i) => i,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = img.settings();
    let physicals = img.physical_count();
    assert_eq!(img.physicals().count(), physicals);
    assert_eq!(img.subjects().count(), img.subject_count());
    for s in img.subjects() {
        for m in img.mappings(&s) {
            match m.backing {
                Backing::File { offset, len } => {
                    assert!(img.file(offset, len).len() as u64 <= m.size.max(len));
                }
                Backing::Physical(i) => assert!((i as usize) < physicals),
                _ => {}
            }
        }
        for e in img.events(&s) {
            let _ = (e.name, e.number, e.action);
        }
    }
});
