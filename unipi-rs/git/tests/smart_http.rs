//! Fetches over smart HTTP from `git http-backend` behind lighttpd (plain HTTP) and behind
//! nginx + fcgiwrap (HTTPS with a test CA, redirects), with protocol v2 and with the
//! `Git-Protocol` header withheld by the web server (v0), compared with gix and ls-tree.

mod common;

use common::*;
use unipi_git::{
    Error, Fetch, FetchOptions, Limits, ObjectId, Outcome, ProtocolChoice, ProtocolVersion, Url,
};

#[test]
fn lighttpd_http_v2_and_v0() {
    let repo = site_repo();
    let (_server, port) = lighttpd(repo.dir.path(), repo.dir.path());

    let (snap, log) = fetch_snapshot(
        &format!("http://127.0.0.1:{port}/v2/site.git"),
        FetchOptions::default(),
        None,
    );
    assert_eq!(snap.stats.protocol, Some(ProtocolVersion::V2));
    assert_matches_repo(&snap, &repo.bare, &repo.head);
    eprintln!(
        "lighttpd v2: {} connections, stats {:?}",
        log.connects.len(),
        snap.stats
    );

    let (snap, _) = fetch_snapshot(
        &format!("http://127.0.0.1:{port}/v2/site.git/#feature"),
        FetchOptions::default(),
        None,
    );
    assert_matches_repo(&snap, &repo.bare, &repo.feature);

    let (snap, log) = fetch_snapshot(
        &format!("http://127.0.0.1:{port}/v0/site.git"),
        FetchOptions::default(),
        None,
    );
    assert_eq!(
        snap.stats.protocol,
        Some(ProtocolVersion::V0),
        "lighttpd must withhold Git-Protocol"
    );
    assert_matches_repo(&snap, &repo.bare, &repo.head);
    eprintln!("lighttpd v0: {} connections", log.connects.len());

    let (snap, _) = fetch_snapshot(
        &format!("http://127.0.0.1:{port}/v0/site.git#feature"),
        FetchOptions::default(),
        None,
    );
    assert_matches_repo(&snap, &repo.bare, &repo.feature);

    let e = fetch_err(
        &format!("http://127.0.0.1:{port}/v0/site.git"),
        FetchOptions {
            protocol: ProtocolChoice::V2,
            ..FetchOptions::default()
        },
        None,
    );
    assert_eq!(e, Error::V2Unsupported);

    for path in ["v2", "v0"] {
        let current = ObjectId::from_hex(repo.head.as_bytes()).unwrap();
        let mut f = Fetch::new(
            Url::parse(&format!("http://127.0.0.1:{port}/{path}/site.git")).unwrap(),
            FetchOptions {
                current: Some(current),
                ..FetchOptions::default()
            },
        );
        assert_eq!(drive(&mut f, None).0, Ok(Outcome::Unchanged(current)));
        assert_eq!(f.progress().pack_bytes, 0);
    }

    let e = fetch_err(
        &format!("http://127.0.0.1:{port}/v2/missing.git"),
        FetchOptions::default(),
        None,
    );
    assert!(matches!(e, Error::HttpStatus { status: 404, .. }), "{e:?}");
    eprintln!("missing repo over HTTP: {e}");
    assert_eq!(
        e.to_string(),
        "remote: repository not found (HTTP 404 for /v2/missing.git/info/refs?service=git-upload-pack)"
    );
    // A plain file server is not a smart git server.
    let e = fetch_err(
        &format!("http://127.0.0.1:{port}/site.git"),
        FetchOptions::default(),
        None,
    );
    assert!(
        matches!(
            e,
            Error::HttpStatus { status: 404, .. } | Error::HttpContentType { .. }
        ),
        "{e:?}"
    );
}

#[test]
fn nginx_https_v2_v0_and_redirects() {
    let repo = site_repo();
    let ng = nginx(repo.dir.path(), repo.dir.path());
    let https = format!("https://127.0.0.1:{}", ng.https_port);
    let tls = Some(ng.tls.clone());

    let (snap, log) = fetch_snapshot(
        &format!("{https}/v2/site.git"),
        FetchOptions::default(),
        tls.clone(),
    );
    assert_eq!(snap.stats.protocol, Some(ProtocolVersion::V2));
    assert_matches_repo(&snap, &repo.bare, &repo.head);
    assert_eq!(
        log.connects.len(),
        1,
        "keep-alive: GET + 2 POSTs on one connection: {log:?}"
    );

    let (snap, _) = fetch_snapshot(
        &format!("{https}/v2/site.git#feature"),
        FetchOptions::default(),
        tls.clone(),
    );
    assert_matches_repo(&snap, &repo.bare, &repo.feature);

    let (snap, log) = fetch_snapshot(
        &format!("{https}/v0/site.git"),
        FetchOptions::default(),
        tls.clone(),
    );
    assert_eq!(
        snap.stats.protocol,
        Some(ProtocolVersion::V0),
        "nginx must withhold Git-Protocol"
    );
    assert_matches_repo(&snap, &repo.bare, &repo.head);
    assert_eq!(log.connects.len(), 1, "{log:?}");

    let (snap, _) = fetch_snapshot(
        &format!("{https}/v2/site.git#feature"),
        FetchOptions {
            protocol: ProtocolChoice::V0,
            ..FetchOptions::default()
        },
        tls.clone(),
    );
    assert_eq!(snap.stats.protocol, Some(ProtocolVersion::V0));
    assert_matches_repo(&snap, &repo.bare, &repo.feature);

    // http -> https redirect on the same host, then a same-origin redirect.
    let (snap, log) = fetch_snapshot(
        &format!("http://127.0.0.1:{}/moved/site.git", ng.http_port),
        FetchOptions::default(),
        tls.clone(),
    );
    assert_matches_repo(&snap, &repo.bare, &repo.head);
    assert_eq!(
        log.connects[0],
        ("127.0.0.1".to_string(), ng.http_port, false)
    );
    assert!(
        log.connects
            .iter()
            .skip(1)
            .all(|c| c.2 && c.1 == ng.https_port),
        "{log:?}"
    );

    let e = fetch_err(
        &format!("{https}/loop/site.git"),
        FetchOptions::default(),
        tls.clone(),
    );
    assert_eq!(e, Error::TooManyRedirects { limit: 5 });
    let e = fetch_err(
        &format!("{https}/elsewhere/site.git"),
        FetchOptions::default(),
        tls.clone(),
    );
    assert!(
        matches!(
            e,
            Error::RedirectRefused {
                reason: "redirect to another host",
                ..
            }
        ),
        "{e:?}"
    );
    eprintln!("{e}");

    let e = fetch_err(
        &format!("{https}/v2/missing.git"),
        FetchOptions::default(),
        tls.clone(),
    );
    assert!(matches!(e, Error::HttpStatus { status: 404, .. }), "{e:?}");

    // Limits apply over HTTPS as well.
    let limits = Limits {
        max_object_size: 1 << 20,
        ..Limits::default()
    };
    let e = fetch_err(
        &format!("{https}/v0/site.git"),
        FetchOptions {
            limits,
            ..FetchOptions::default()
        },
        tls.clone(),
    );
    assert!(matches!(e, Error::ObjectTooLarge { .. }), "{e:?}");

    // A TLS failure (client does not trust the server) is the driver's error.
    let (_, _, untrusting) = test_pki();
    let mut f = Fetch::new(
        Url::parse(&format!("{https}/v2/site.git")).unwrap(),
        FetchOptions::default(),
    );
    let (r, _) = drive(&mut f, Some(untrusting));
    assert!(matches!(r, Err(Error::Transport { .. })), "{r:?}");
}
