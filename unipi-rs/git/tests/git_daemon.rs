//! Fetches over git:// from a real `git daemon`, with protocol v2 and with v2 disabled on the
//! server side, compared file by file with gix and `git ls-tree -r`.

mod common;

use common::*;
use unipi_git::{
    Error, Fetch, FetchOptions, Limits, ObjectId, Outcome, ProtocolChoice, ProtocolVersion, Url,
};

fn opts(protocol: ProtocolChoice) -> FetchOptions {
    FetchOptions {
        protocol,
        ..FetchOptions::default()
    }
}

#[test]
fn daemon_with_v2() {
    let repo = site_repo();
    let (daemon, port) = git_daemon(repo.dir.path(), true, repo.dir.path());
    let url = format!("git://127.0.0.1:{port}/site.git");

    let (snap, log) = fetch_snapshot(&url, opts(ProtocolChoice::Auto), None);
    assert_eq!(snap.stats.protocol, Some(ProtocolVersion::V2));
    assert_eq!(log.connects.len(), 1, "git:// uses one connection");
    assert_matches_repo(&snap, &repo.bare, &repo.head);
    assert!(snap.get("vendor/sub").is_none(), "submodule skipped");
    assert!(snap.get("img/big.bin").unwrap().data.len() > 1 << 20);
    assert!(
        snap.stats.deltas > 0,
        "the aggressive repack should give deltas: {:?}",
        snap.stats
    );
    // Memory: the peak is the objects themselves (blobs + trees + commit), no second copy of
    // the big blob, and nothing but the snapshot is left afterwards.
    assert!(snap.stats.peak_object_bytes >= snap.stats.snapshot_bytes);
    assert!(
        snap.stats.peak_object_bytes < snap.stats.snapshot_bytes + (256 << 10),
        "{:?}",
        snap.stats
    );
    let big = &snap.get("img/big.bin").unwrap().data;
    assert_eq!(
        std::sync::Arc::strong_count(big),
        2,
        "the file and Snapshot::base hold it; the pack reader released its reference"
    );
    eprintln!("stats: {:?}", snap.stats);

    let (snap, _) = fetch_snapshot(&format!("{url}#feature"), opts(ProtocolChoice::V2), None);
    assert_matches_repo(&snap, &repo.bare, &repo.feature);
    assert!(snap.get("feature.html").is_some());

    // Client asks for v0 although the server could speak v2.
    let (snap, _) = fetch_snapshot(&url, opts(ProtocolChoice::V0), None);
    assert_eq!(snap.stats.protocol, Some(ProtocolVersion::V0));
    assert_matches_repo(&snap, &repo.bare, &repo.head);

    // Unchanged: no pack is requested.
    let current = ObjectId::from_hex(repo.head.as_bytes()).unwrap();
    let mut f = Fetch::new(
        Url::parse(&url).unwrap(),
        FetchOptions {
            current: Some(current),
            ..FetchOptions::default()
        },
    );
    let (r, _) = drive(&mut f, None);
    assert_eq!(r, Ok(Outcome::Unchanged(current)));
    assert_eq!(f.progress().pack_bytes, 0);
    assert!(f.progress().received_bytes < 4096);
    drop(daemon);
}

#[test]
fn daemon_without_v2() {
    let repo = site_repo();
    let (daemon, port) = git_daemon(repo.dir.path(), false, repo.dir.path());
    let url = format!("git://127.0.0.1:{port}/site.git");

    let (snap, _) = fetch_snapshot(&url, opts(ProtocolChoice::Auto), None);
    assert_eq!(
        snap.stats.protocol,
        Some(ProtocolVersion::V0),
        "server must have spoken v0"
    );
    assert_matches_repo(&snap, &repo.bare, &repo.head);
    let proto_log = std::fs::read_to_string(format!("{}.proto", daemon.log.display())).unwrap();
    assert!(
        proto_log.contains("GIT_PROTOCOL=version=2"),
        "client asked for v2: {proto_log}"
    );

    let (snap, _) = fetch_snapshot(&format!("{url}#feature"), opts(ProtocolChoice::Auto), None);
    assert_matches_repo(&snap, &repo.bare, &repo.feature);

    let e = fetch_err(&url, opts(ProtocolChoice::V2), None);
    assert_eq!(e, Error::V2Unsupported);

    let current = ObjectId::from_hex(repo.feature.as_bytes()).unwrap();
    let mut f = Fetch::new(
        Url::parse(&format!("{url}#feature")).unwrap(),
        FetchOptions {
            current: Some(current),
            ..FetchOptions::default()
        },
    );
    assert_eq!(drive(&mut f, None).0, Ok(Outcome::Unchanged(current)));
}

#[test]
fn daemon_errors_and_limits() {
    let repo = site_repo();
    let (_daemon, port) = git_daemon(repo.dir.path(), true, repo.dir.path());
    let base = format!("git://127.0.0.1:{port}");

    let e = fetch_err(&format!("{base}/nope.git"), FetchOptions::default(), None);
    match &e {
        Error::Remote(msg) => assert!(msg.contains("no such repository"), "{msg}"),
        other => panic!("expected ERR from the daemon, got {other:?}"),
    }
    eprintln!("missing repo: {e}");

    let e = fetch_err(
        &format!("{base}/site.git#no-such-branch"),
        FetchOptions::default(),
        None,
    );
    assert_eq!(
        e,
        Error::RefNotFound {
            name: "refs/heads/no-such-branch".into()
        }
    );
    assert_eq!(e.to_string(), "remote has no refs/heads/no-such-branch");

    // The >1 MiB blob exceeds a 1 MiB object limit.
    let limits = Limits {
        max_object_size: 1 << 20,
        ..Limits::default()
    };
    for protocol in [ProtocolChoice::V2, ProtocolChoice::V0] {
        let e = fetch_err(
            &format!("{base}/site.git"),
            FetchOptions {
                limits: limits.clone(),
                protocol,
                ..FetchOptions::default()
            },
            None,
        );
        assert!(
            matches!(e, Error::ObjectTooLarge { limit: 1048576, .. }),
            "{e:?}"
        );
    }
    let limits = Limits {
        max_files: 5,
        ..Limits::default()
    };
    let e = fetch_err(
        &format!("{base}/site.git"),
        FetchOptions {
            limits,
            ..FetchOptions::default()
        },
        None,
    );
    assert_eq!(e, Error::TooManyFiles { limit: 5 });
    let limits = Limits {
        max_pack_bytes: 100_000,
        ..Limits::default()
    };
    let e = fetch_err(
        &format!("{base}/site.git"),
        FetchOptions {
            limits,
            ..FetchOptions::default()
        },
        None,
    );
    assert_eq!(e, Error::PackTooLarge { limit: 100_000 });
}

/// Trees crafted with `git hash-object --literally` containing `..` and `.git`, served by the
/// real daemon.
#[test]
fn daemon_unsafe_trees() {
    let dir = TempDir::new("forbidden");
    for (name, entries, expected) in [
        ("dotdot.git", vec![("40000", "..", true)], "../x"),
        ("dotgit.git", vec![("40000", ".git", true)], ".git"),
        (
            "dotgit-upper.git",
            vec![("40000", ".GIT", true), ("100644", "ok.txt", false)],
            ".GIT",
        ),
    ] {
        let bare = dir.path().join(name);
        git(dir.path(), &["init", "-q", "--bare", name]);
        let blob = git_with(
            &bare,
            &["hash-object", "-w", "--stdin"],
            &[],
            Some(b"[core]\n"),
        );
        let blob_raw = hex(&blob);
        // inner tree with "x" and "config"
        let mut inner = Vec::new();
        for n in ["config", "x"] {
            inner.extend_from_slice(format!("100644 {n}\0").as_bytes());
            inner.extend_from_slice(&blob_raw);
        }
        let inner_id = git_with(
            &bare,
            &["hash-object", "-t", "tree", "--literally", "-w", "--stdin"],
            &[],
            Some(&inner),
        );
        let mut root = Vec::new();
        for (mode, n, is_tree) in &entries {
            root.extend_from_slice(format!("{mode} {n}\0").as_bytes());
            root.extend_from_slice(&hex(if *is_tree { &inner_id } else { &blob }));
        }
        let root_id = git_with(
            &bare,
            &["hash-object", "-t", "tree", "--literally", "-w", "--stdin"],
            &[],
            Some(&root),
        );
        let commit = git_with(&bare, &["commit-tree", &root_id, "-m", "evil"], &[], None);
        git(&bare, &["update-ref", "refs/heads/main", &commit]);
        git(&bare, &["symbolic-ref", "HEAD", "refs/heads/main"]);
        let _ = expected;
    }
    let (_daemon, port) = git_daemon(dir.path(), true, dir.path());
    for (name, want) in [
        ("dotdot.git", "../config"),
        ("dotgit.git", ".git"),
        ("dotgit-upper.git", ".GIT"),
    ] {
        let e = fetch_err(
            &format!("git://127.0.0.1:{port}/{name}"),
            FetchOptions::default(),
            None,
        );
        match &e {
            Error::UnsafePath { path } => {
                assert!(path.starts_with(want) || path == "..", "{name}: {path}")
            }
            other => panic!("{name}: expected UnsafePath, got {other:?}"),
        }
        eprintln!("{name}: {e}");
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
