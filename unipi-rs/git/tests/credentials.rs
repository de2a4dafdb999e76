//! `https://user:token@host/…` remotes and `FetchOptions::credentials` against nginx with
//! `auth_basic` in front of `git http-backend`: the right token fetches, a wrong one is the
//! typed error, credentials never leave their origin, and the token appears in no log line,
//! no error and no Debug output.

mod common;

use common::*;
use unipi_git::{Credentials, Error, Fetch, FetchOptions, Url, redact_credentials};

/// The token; no log line, error or Debug output may contain it (nor its base64).
const TOKEN: &str = "zq9-s3cret-Token";
const TOKEN_BASE64_PART: &str = "enE5LXMzY3JldC1Ub2tlbg";

fn write_htpasswd(scratch: &std::path::Path) {
    let out = std::process::Command::new(require("openssl", "openssl"))
        .args(["passwd", "-apr1", TOKEN])
        .output()
        .expect("openssl passwd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap();
    std::fs::write(scratch.join("htpasswd"), format!("alice:{}", hash.trim())).unwrap();
}

fn assert_no_secret(text: &str) {
    assert!(
        !text.contains(TOKEN) && !text.contains(TOKEN_BASE64_PART) && !text.contains("zq9"),
        "secret leaked: {text}"
    );
}

/// Polls `done` for up to 5 s.
fn wait_for(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn https_basic_auth() {
    capture_logs();
    let repo = site_repo();
    write_htpasswd(repo.dir.path());
    let ng = nginx(repo.dir.path(), repo.dir.path());
    let tls = Some(ng.tls.clone());
    let https = format!("127.0.0.1:{}", ng.https_port);

    // Credentials in the URL.
    let url = format!("https://alice:{TOKEN}@{https}/auth/site.git");
    let (snap, log) = fetch_snapshot(&url, FetchOptions::default(), tls.clone());
    assert_matches_repo(&snap, &repo.bare, &repo.head);
    assert_eq!(log.connects.len(), 1, "{log:?}");
    let access = ng.access();
    assert!(
        access.contains("/auth/site.git/info/refs?service=git-upload-pack user=alice status=200"),
        "{access}"
    );
    assert!(
        access.contains("/auth/site.git/git-upload-pack user=alice status=200"),
        "{access}"
    );
    let parsed = Url::parse(&url).unwrap();
    assert_no_secret(&format!("{parsed} {parsed:?}"));
    assert_eq!(
        parsed.to_string(),
        format!("https://alice:***@{https}/auth/site.git")
    );

    // Credentials from outside the URL (the app's --remote-auth region), same-origin redirect.
    let (snap, _) = fetch_snapshot(
        &format!("https://{https}/authmoved/site.git#feature"),
        FetchOptions {
            credentials: Some(Credentials::parse(&format!("alice:{TOKEN}\n")).unwrap()),
            ..FetchOptions::default()
        },
        tls.clone(),
    );
    assert_matches_repo(&snap, &repo.bare, &repo.feature);

    // A wrong token is the typed error, with the URL redacted.
    let e = fetch_err(
        &format!("https://alice:wrong-{TOKEN}@{https}/auth/site.git"),
        FetchOptions::default(),
        tls.clone(),
    );
    assert_eq!(
        e,
        Error::AuthenticationFailed {
            url: format!("https://alice:***@{https}/auth/site.git"),
            status: 401
        }
    );
    eprintln!("{e}");
    assert_no_secret(&format!("{e} {e:?}"));

    // No credentials: the server's 401 as a status error.
    let e = fetch_err(
        &format!("https://{https}/auth/other.git"),
        FetchOptions::default(),
        tls.clone(),
    );
    assert!(matches!(e, Error::HttpStatus { status: 401, .. }), "{e:?}");

    // http -> https is another origin: the credentials stay behind, the server refuses.
    // (nginx writes its log line after the response: wait for the previous one.)
    wait_for(|| ng.access().contains("/auth/other.git/"));
    let before = ng.access().lines().count();
    let mut f = Fetch::new(
        Url::parse(&format!(
            "http://alice:{TOKEN}@127.0.0.1:{}/auth/site.git",
            ng.http_port
        ))
        .unwrap(),
        FetchOptions::default(),
    );
    let (r, log) = drive(&mut f, tls.clone());
    assert!(
        matches!(r, Err(Error::HttpStatus { status: 401, .. })),
        "{r:?}"
    );
    assert_eq!(log.connects.len(), 2, "{log:?}");
    wait_for(|| ng.access().lines().count() > before);
    let access = ng.access();
    let after: Vec<&str> = access.lines().skip(before).collect();
    assert_eq!(
        after,
        ["/auth/site.git/info/refs?service=git-upload-pack user=- status=401"],
        "{access}"
    );
    assert_no_secret(&format!("{f:?}"));

    let logs = captured_logs();
    assert!(logs.contains("alice:***"), "{logs}");
    assert_no_secret(&logs);
    assert_eq!(
        redact_credentials(&format!("--remote=https://alice:{TOKEN}@h/x")),
        "--remote=https://***@h/x"
    );
}
