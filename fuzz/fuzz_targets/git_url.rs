//! Remote URLs: `unipi_git::Url::parse` (git://, http(s):// with credentials, ssh:// and
//! scp-like `user@host:path`, `#branch`) and `redact_credentials` on arbitrary text. A URL
//! that parses prints (credentials as `user:***`) to text that parses to the same URL and
//! promises its invariants; an SSH remote's command, read back as a POSIX shell reads it,
//! is `git-upload-pack` and exactly its path.
//!
//! Input: the URL text (UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_git::{Scheme, Url, redact_credentials};

/// One shell word made of single-quoted strings and backslash escapes, as `sh` reads it;
/// `None` for anything else (an unquoted character the shell could interpret).
fn sh_unquote(word: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '\\' => out.push(chars.next()?),
            _ => return None,
        }
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let redacted = redact_credentials(text);
    assert!(redacted.len() <= text.len() + 3 * text.matches("://").count());
    let Ok(url) = Url::parse(text) else {
        return;
    };
    assert!(!url.host().is_empty());
    assert!(url.host().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'));
    assert!(url.port() != 0);
    if url.scheme() == Scheme::Ssh {
        assert!(url.credentials().is_none());
        assert!(!url.path().is_empty() && !url.path().chars().any(|c| c.is_control() || c == '#'));
        let command = url.ssh_command().expect("SSH command");
        let word = command.strip_prefix("git-upload-pack ").expect("runs git-upload-pack");
        assert_eq!(sh_unquote(word).as_deref(), Some(url.path()), "{command}");
        if let Some(user) = url.ssh_user() {
            assert!(!user.starts_with('-') && !user.is_empty());
        }
    } else {
        assert!(url.ssh_command().is_none() && url.ssh_user().is_none());
        assert!(url.path().starts_with('/'));
        assert!(!url.path().bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#'));
    }
    if let Some(branch) = url.branch() {
        assert!(url.wanted_ref().ends_with(branch));
    }
    let shown = url.to_string();
    let again = Url::parse(&shown).expect("a URL's Display parses");
    assert_eq!(again.scheme(), url.scheme());
    assert_eq!((again.host(), again.port(), again.path()), (url.host(), url.port(), url.path()));
    assert_eq!(again.branch(), url.branch());
    assert_eq!(again.host_header(), url.host_header());
    match (url.credentials(), again.credentials()) {
        (None, None) => {}
        (Some(c), Some(d)) => {
            assert_eq!(c.user(), d.user());
            assert_ne!(url.scheme(), Scheme::Git);
            assert!(shown.contains(":***@"));
            let debug = format!("{url:?} {c:?} {c}");
            assert!(debug.contains("***"));
        }
        (a, b) => panic!("credentials lost in {shown}: {a:?} {b:?}"),
    }
    assert_eq!(redact_credentials(&shown), redact_credentials(&redact_credentials(&shown)));
});
