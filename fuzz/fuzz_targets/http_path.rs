//! Request targets and percent-decoding: `http::path::{split_target, decode, site_key}` and
//! the encoders used for redirects, with round-trip checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi::http::path::{
    PathError, decode, push_encoded_path, push_uri_safe, site_key, split_target,
};

fuzz_target!(|data: &[u8]| {
    let Ok(target) = core::str::from_utf8(data) else {
        return;
    };
    let mut buf = Vec::new();
    let mut key = String::new();
    // The raw text as a path, whatever the target form says.
    let _ = decode(target, &mut buf);
    // httparse hands on only targets without controls and spaces.
    if target.bytes().any(|b| b < 0x21 || b == 0x7f) {
        return;
    }
    let Some(t) = split_target(target) else {
        return;
    };
    assert!(target.ends_with(t.path_and_query));
    assert!(t.path_and_query.starts_with(t.path));
    assert!(!t.path.contains(['?', ';']));
    if let Some(q) = t.query {
        assert!(t.path_and_query.ends_with(q));
    }
    let decoded = match decode(t.path, &mut buf) {
        Ok(d) => d.to_owned(),
        Err(_) => return,
    };
    assert!(!decoded.contains('\0'), "%00 is refused");
    let dir = match site_key(&decoded, &mut key) {
        Ok(dir) => dir,
        Err(e) => {
            assert_eq!(e, PathError::DotSegment);
            return;
        }
    };
    assert!(!key.starts_with('/') && !key.ends_with('/') && !key.contains("//"));
    assert!(
        key.is_empty()
            || key
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != "..")
    );
    if decoded.is_empty() {
        assert!(dir);
    }
    // Redirects percent-encode the key; decoding that gives the key back.
    let mut encoded = String::new();
    push_encoded_path(&key, &mut encoded);
    assert!(!encoded.starts_with("//"));
    assert!(encoded.bytes().all(|b| (0x21..0x7f).contains(&b)));
    let mut buf2 = Vec::new();
    let again = decode(&encoded, &mut buf2).expect("an encoded key decodes");
    assert_eq!(again.strip_prefix('/'), Some(key.as_str()));
    let mut safe = String::new();
    push_uri_safe(target, &mut safe);
    assert!(safe.bytes().all(|b| (0x21..0x7f).contains(&b)));
});
