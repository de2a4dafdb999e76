//! Incremental pulls against real servers (`git daemon` and `git http-backend` behind
//! lighttpd, protocol v2 and v0): a 1000-file site is fetched in full, one file changes,
//! the pull sends `have`/`shallow` for the served commit and applies the thin pack it gets
//! back; then force pushes, with the old commit still on the server and after it was
//! pruned. Every snapshot is compared with `git archive` of its commit. Bytes and time of
//! the incremental pull and of a full fetch of the same commit are printed (not asserted).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use unipi_git::{BaseObjects, Fetch, FetchOptions, Outcome, ProtocolVersion, Snapshot, Url};

/// One fetch: the snapshot, bytes received, time taken.
fn fetch(url: &str, base: Option<Arc<BaseObjects>>) -> (Snapshot, u64, Duration) {
    let start = Instant::now();
    let mut f = Fetch::new(
        Url::parse(url).unwrap(),
        FetchOptions {
            base,
            ..FetchOptions::default()
        },
    );
    let (r, _) = drive(&mut f, None);
    let elapsed = start.elapsed();
    match r {
        Ok(Outcome::Fetched(s)) => (s, f.progress().received_bytes, elapsed),
        other => panic!("fetch {url}: {other:?}"),
    }
}

/// Changes `file` in the work tree (appends a line), commits (amending when `amend`) and
/// pushes to the served repository (forced when amending). Returns the new commit.
fn change(work: &Path, file: &str, line: &str, amend: bool) -> String {
    let path = work.join(file);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(line);
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    git(work, &["add", "-A"]);
    let mut commit = vec!["commit", "-q", "-m", line];
    if amend {
        commit.push("--amend");
    }
    git_with(
        work,
        &commit,
        &[
            ("GIT_AUTHOR_DATE", "1700000100 +0000"),
            ("GIT_COMMITTER_DATE", "1700000100 +0000"),
        ],
        None,
    );
    git(work, &["push", "-q", "-f", "served", "main"]);
    git(work, &["rev-parse", "HEAD"])
}

/// The whole scenario against one server; `url` is the served repository's URL.
fn scenario(name: &str, url: &str, work: &Path, bare: &Path, protocol: ProtocolVersion) {
    let a_id = git(bare, &["rev-parse", "HEAD"]);
    let (a, _, _) = fetch(url, None);
    assert_eq!(a.stats.protocol, Some(protocol), "{name}");
    assert!(!a.stats.incremental);
    assert_equals_archive(&a, bare, &a_id);
    assert_eq!(a.files.len(), 1000);

    // One file changes.
    let b_id = change(work, "d03/f0013.html", "<p>one more line</p>", false);
    let (b, inc_bytes, inc_time) = fetch(url, Some(a.base.clone()));
    assert_equals_archive(&b, bare, &b_id);
    let s = b.stats;
    assert!(s.incremental, "{name}: {s:?}");
    assert!(
        s.objects <= 4,
        "{name}: only the commit, two trees and a blob changed: {s:?}"
    );
    assert!(s.reused_objects >= 999, "{name}: {s:?}");
    // The changed page arrives as a delta against the page the site already has.
    assert!(s.thin_deltas >= 1, "{name}: {s:?}");
    let shared = b.get("d05/f0015.html").unwrap();
    assert!(
        Arc::ptr_eq(&shared.data, &a.get("d05/f0015.html").unwrap().data),
        "unchanged files share the served site's memory"
    );
    let (full, full_bytes, full_time) = fetch(url, None);
    assert_eq!(
        full.files, b.files,
        "{name}: incremental and full fetch differ"
    );
    eprintln!(
        "{name}: one changed file of 1000: incremental {inc_bytes} bytes received in {} ms \
         (pack {} bytes, {} objects, {} thin deltas, {} reused); full fetch {full_bytes} bytes \
         in {} ms (pack {} bytes, {} objects); site {} bytes; base kept {} bytes ({} trees, \
         {} blobs)",
        inc_time.as_millis(),
        s.pack_bytes,
        s.objects,
        s.thin_deltas,
        s.reused_objects,
        full_time.as_millis(),
        full.stats.pack_bytes,
        full.stats.objects,
        full.stats.snapshot_bytes,
        b.base.kept_bytes(),
        b.base.tree_count(),
        b.base.blob_count(),
    );

    // Force push while the server still has the served commit: still incremental, right site.
    let c_id = change(work, "d07/f0017.html", "<p>rewritten</p>", true);
    let (c, _, _) = fetch(url, Some(b.base.clone()));
    assert_equals_archive(&c, bare, &c_id);
    assert!(
        c.stats.incremental && c.stats.reused_objects >= 998,
        "{name}: {:?}",
        c.stats
    );

    // Force push and prune: the server no longer knows the served commit and sends it all.
    let d_id = change(work, "index.html", "<p>rewritten again</p>", true);
    git(bare, &["reflog", "expire", "--expire=now", "--all"]);
    git(bare, &["gc", "-q", "--prune=now"]);
    assert!(
        git_cmd(bare)
            .args(["cat-file", "-e", &c_id])
            .status()
            .is_ok_and(|s| !s.success()),
        "the served commit was pruned"
    );
    let (d, _, _) = fetch(url, Some(c.base.clone()));
    assert_equals_archive(&d, bare, &d_id);
    assert!(d.stats.incremental, "{name}");
    assert_eq!(
        (d.stats.reused_objects, d.stats.thin_deltas),
        (0, 0),
        "{name}: {:?}",
        d.stats
    );
}

#[test]
fn git_daemon_v2_and_v0() {
    for v2 in [true, false] {
        let dir = TempDir::new("incremental-daemon");
        let (work, bare) = site_of(1000, dir.path());
        let (_daemon, port) = git_daemon(dir.path(), v2, dir.path());
        let (name, protocol) = if v2 {
            ("git daemon, protocol v2", ProtocolVersion::V2)
        } else {
            ("git daemon, protocol v0", ProtocolVersion::V0)
        };
        scenario(
            name,
            &format!("git://127.0.0.1:{port}/site.git"),
            &work,
            &bare,
            protocol,
        );
    }
}

#[test]
fn http_backend_v2_and_v0() {
    for (path, name, protocol) in [
        ("v2", "git http-backend, protocol v2", ProtocolVersion::V2),
        ("v0", "git http-backend, protocol v0", ProtocolVersion::V0),
    ] {
        let dir = TempDir::new("incremental-http");
        let (work, bare) = site_of(1000, dir.path());
        let (_server, port) = lighttpd(dir.path(), dir.path());
        scenario(
            name,
            &format!("http://127.0.0.1:{port}/{path}/site.git"),
            &work,
            &bare,
            protocol,
        );
    }
}
