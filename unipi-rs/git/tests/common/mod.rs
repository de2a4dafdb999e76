//! Shared helpers for the integration tests: temp dirs, test repositories built with the
//! `git` CLI, real servers (git daemon, lighttpd + git http-backend, nginx + fcgiwrap), a
//! std driver for the sans-IO `Fetch` (plain TCP and rustls), and the gix reference reader.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use std::time::{Duration, Instant};

use unipi_git::{Error, Fetch, FetchOptions, FileKind, Io, Outcome, Snapshot, Url};

// ---------------------------------------------------------------- tools and temp dirs

/// `git http-backend` of the same git installation as the `git` on PATH.
pub fn http_backend() -> PathBuf {
    let exec_path = git(Path::new("/"), &["--exec-path"]);
    let p = Path::new(&exec_path).join("git-http-backend");
    if p.exists() {
        p
    } else {
        require("git-http-backend", "git")
    }
}

pub use unipi_testkit::{Server, TempDir, free_port, require};

// ---------------------------------------------------------------- git

pub fn git_cmd(dir: &Path) -> Command {
    let git = require("git", "git");
    let mut c = Command::new(git);
    c.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env_remove("GIT_DIR")
        .env_remove("GIT_PROTOCOL");
    c
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with(dir, args, &[], None)
}

pub fn git_with(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> String {
    let mut c = git_cmd(dir);
    c.args(args).envs(env.iter().copied());
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn git");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

pub fn git_bytes(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut c = git_cmd(dir);
    c.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(input) = stdin {
        let mut si = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || si.write_all(&input));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub struct SiteRepo {
    pub dir: TempDir,
    /// The bare repository, `<dir>/site.git`.
    pub bare: PathBuf,
    pub head: String,
    pub feature: String,
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// Builds the test website: several commits with deltas (`gc --aggressive`), a symlink, an
/// executable, nested directories, an empty file, a >1 MiB binary, a submodule entry, and a
/// `feature` branch. Returns the bare repository.
pub fn site_repo() -> SiteRepo {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("repo");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    let mut date = 1_700_000_000u64;
    let mut commit_with = |msg: &str, add_all: bool| {
        date += 3600;
        let d = format!("{date} +0100");
        if add_all {
            git(&work, &["add", "-A"]);
        }
        git_with(
            &work,
            &["commit", "-q", "-m", msg],
            &[("GIT_AUTHOR_DATE", &d), ("GIT_COMMITTER_DATE", &d)],
            None,
        );
    };
    let page = |n: usize| {
        let mut s = String::from("<!doctype html>\n<html><head><title>Test</title></head><body>\n");
        for i in 0..200 {
            s.push_str(&format!(
                "<p>paragraph {i} of version {n}: lorem ipsum dolor sit amet</p>\n"
            ));
        }
        s.push_str("</body></html>\n");
        s
    };
    let mut big = noise(1, 1_500_000);
    write(&work, "index.html", page(1).as_bytes());
    write(&work, "css/style.css", b"body { color: #333; }\n");
    write(&work, "a/b/c/d/deep.txt", b"deep\n");
    write(&work, "empty", b"");
    write(&work, "img/big.bin", &big);
    write(&work, "run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(work.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("index.html", work.join("latest")).unwrap();
    std::os::unix::fs::symlink("../../index.html", work.join("a/b/up")).unwrap();
    let mut commit = |msg: &str| commit_with(msg, true);
    commit("first");
    for v in 2..=4 {
        write(&work, "index.html", page(v).as_bytes());
        big[1000 * v..1000 * v + 100].copy_from_slice(&noise(v as u64, 100));
        write(&work, "img/big.bin", &big);
        write(&work, &format!("posts/{v}.html"), page(v).as_bytes());
        commit(&format!("version {v}"));
    }
    // A submodule entry (gitlink) without fetching anything for it.
    let head = git(&work, &["rev-parse", "HEAD~1"]);
    git(
        &work,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{head},vendor/sub"),
        ],
    );
    commit_with("add submodule", false);
    git(&work, &["checkout", "-q", "-b", "feature", "HEAD~2"]);
    write(&work, "feature.html", b"<p>feature branch</p>\n");
    write(&work, "index.html", page(99).as_bytes());
    commit_with("feature work", true);
    git(&work, &["checkout", "-q", "main"]);
    let bare = dir.path().join("site.git");
    git(dir.path(), &["clone", "-q", "--bare", "work", "site.git"]);
    git(&bare, &["gc", "-q", "--aggressive", "--prune=now"]);
    let head = git(&bare, &["rev-parse", "HEAD"]);
    let feature = git(&bare, &["rev-parse", "refs/heads/feature"]);
    SiteRepo {
        dir,
        bare,
        head,
        feature,
    }
}

// ---------------------------------------------------------------- reference readers

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct RefFile {
    pub path: String,
    pub kind: FileKind,
    pub oid: String,
    pub data: Vec<u8>,
}

/// The files of `commit` as gix reads them (submodules left out), sorted by path.
pub fn gix_files(repo: &Path, commit: &str) -> Vec<RefFile> {
    use gix::object::tree::EntryKind;
    let repo = gix::open(repo).expect("gix open");
    let id = gix::ObjectId::from_hex(commit.as_bytes()).unwrap();
    let tree = repo.find_commit(id).unwrap().tree().unwrap();
    let mut rec = gix::traverse::tree::Recorder::default();
    tree.traverse().breadthfirst(&mut rec).unwrap();
    let mut out = vec![];
    for e in rec.records {
        let kind = match e.mode.kind() {
            EntryKind::Tree | EntryKind::Commit => continue,
            EntryKind::Blob => FileKind::Regular,
            EntryKind::BlobExecutable => FileKind::Executable,
            EntryKind::Link => FileKind::Symlink,
        };
        let data = repo.find_object(e.oid).unwrap().data.clone();
        out.push(RefFile {
            path: e.filepath.to_string(),
            kind,
            oid: e.oid.to_string(),
            data,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// `git ls-tree -r` of `commit`: (path, mode, oid), submodules included.
pub fn ls_tree(repo: &Path, commit: &str) -> Vec<(String, String, String)> {
    let raw = git_bytes(repo, &["ls-tree", "-r", "-z", commit], None);
    let mut v: Vec<_> = raw
        .split(|&b| b == 0)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let l = String::from_utf8(l.to_vec()).unwrap();
            let (meta, path) = l.split_once('\t').unwrap();
            let mut m = meta.split(' ');
            let mode = m.next().unwrap().to_string();
            let _ty = m.next();
            let oid = m.next().unwrap().to_string();
            (path.to_string(), mode, oid)
        })
        .collect();
    v.sort();
    v
}

/// Checks a snapshot against gix and `git ls-tree -r` for the same commit.
pub fn assert_matches_repo(snap: &Snapshot, repo: &Path, commit: &str) {
    assert_eq!(snap.commit.to_string(), commit);
    let expected_time: i64 = git(repo, &["show", "-s", "--format=%ct", commit])
        .parse()
        .unwrap();
    assert_eq!(snap.commit_time, expected_time);
    let got: Vec<RefFile> = snap
        .files
        .iter()
        .map(|f| RefFile {
            path: f.path.clone(),
            kind: f.kind,
            oid: f.oid.to_string(),
            data: f.data.to_vec(),
        })
        .collect();
    let want = gix_files(repo, commit);
    assert_eq!(got.len(), want.len(), "file count differs from gix");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            (&g.path, g.kind, &g.oid),
            (&w.path, w.kind, &w.oid),
            "entry differs from gix"
        );
        assert!(g.data == w.data, "content of {} differs from gix", g.path);
    }
    let ls: Vec<_> = ls_tree(repo, commit)
        .into_iter()
        .filter(|(_, mode, _)| mode != "160000")
        .collect();
    let mine: Vec<_> = snap
        .files
        .iter()
        .map(|f| {
            let mode = match f.kind {
                FileKind::Regular => "100644",
                FileKind::Executable => "100755",
                FileKind::Symlink => "120000",
            };
            (f.path.clone(), mode.to_string(), f.oid.to_string())
        })
        .collect();
    assert_eq!(mine, ls, "differs from git ls-tree -r");
}

// ---------------------------------------------------------------- servers

/// `git daemon` on 127.0.0.1 serving `base`. With `v2 == false` upload-pack never sees
/// GIT_PROTOCOL (a `git` wrapper first in PATH removes it), i.e. the server speaks v0 like a
/// git daemon older than 2.18.
pub fn git_daemon(base: &Path, v2: bool, scratch: &Path) -> (Server, u16) {
    let git = require("git", "git");
    let port = free_port();
    let log = scratch.join(format!("daemon-{port}.log"));
    // Run the git-daemon program directly: `git daemon` would put git's exec-path first in
    // PATH, hiding the wrapper below.
    let exec_path = self::git(Path::new("/"), &["--exec-path"]);
    let daemon = Path::new(&exec_path).join("git-daemon");
    assert!(
        daemon.exists(),
        "git-daemon not found in {exec_path}: install git"
    );
    let mut cmd = Command::new(&daemon);
    if !v2 {
        let bin = scratch.join(format!("v0bin-{port}"));
        std::fs::create_dir_all(&bin).unwrap();
        let wrapper = bin.join("git");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nif [ \"$1\" = upload-pack ]; then echo \"GIT_PROTOCOL=$GIT_PROTOCOL\" >> {log}.proto; unset GIT_PROTOCOL; fi\nexec {} \"$@\"\n",
                git.display(),
                log = log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path);
    }
    cmd.args([
        "--export-all",
        "--reuseaddr",
        "--informative-errors",
        "--listen=127.0.0.1",
    ])
    .arg(format!("--port={port}"))
    .arg(format!("--base-path={}", base.display()))
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .env("GIT_CONFIG_GLOBAL", "/dev/null")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    let mut server = Server {
        name: "git daemon",
        child: cmd.spawn().unwrap(),
        log,
    };
    server.wait_port(port, Duration::from_secs(10));
    (server, port)
}

/// lighttpd serving `git http-backend` (CGI) for repositories under `root`:
/// `/v2/<repo>` passes the `Git-Protocol` header through (v2), `/v0/<repo>` removes it with
/// mod_setenv, so the backend speaks v0.
pub fn lighttpd(root: &Path, scratch: &Path) -> (Server, u16) {
    let lighttpd = require("lighttpd", "lighttpd");
    let backend = http_backend();
    let port = free_port();
    let conf = scratch.join(format!("lighttpd-{port}.conf"));
    let log = scratch.join(format!("lighttpd-{port}.log"));
    std::fs::write(
        &conf,
        format!(
            r#"server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{log}"
server.modules = ("mod_alias", "mod_setenv", "mod_cgi")
alias.url = ("/v2" => "{backend}", "/v0" => "{backend}")
$HTTP["url"] =~ "^/v[02]/" {{
    cgi.assign = ("" => "")
    setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "1")
}}
$HTTP["url"] =~ "^/v0/" {{
    setenv.set-request-header = ("Git-Protocol" => "")
}}
"#,
            root = root.display(),
            backend = backend.display(),
            log = log.display(),
        ),
    )
    .unwrap();
    let child = Command::new(lighttpd)
        .arg("-D")
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(scratch.join(format!("lighttpd-{port}.stderr"))).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server {
        name: "lighttpd",
        child,
        log,
    };
    server.wait_port(port, Duration::from_secs(10));
    (server, port)
}

pub struct Nginx {
    pub servers: Vec<Server>,
    pub https_port: u16,
    pub http_port: u16,
    pub tls: Arc<rustls::ClientConfig>,
    pub access_log: PathBuf,
}

impl Nginx {
    /// The HTTPS access log so far.
    pub fn access(&self) -> String {
        std::fs::read_to_string(&self.access_log).unwrap_or_default()
    }
}

/// nginx + fcgiwrap + `git http-backend` for repositories under `root`, with TLS from a
/// throw-away CA. HTTPS: `/v2/<repo>` (Git-Protocol passed), `/v0/<repo>`
/// (`fastcgi_pass_request_headers off`: no HTTP_* variables, so v0), `/moved/<repo>` (301 to
/// `/v2/<repo>`), `/loop/...` (redirects to itself), `/auth/<repo>` (HTTP Basic with
/// `<scratch>/htpasswd`, which the test writes), `/authmoved/<repo>` (301 to `/auth/<repo>`).
/// Plain HTTP: everything 301 to https. `Nginx::access_log` has one line per HTTPS request:
/// `<uri> user=<authenticated user or -> status=<status>`.
pub fn nginx(root: &Path, scratch: &Path) -> Nginx {
    let nginx = require("nginx", "nginx");
    let fcgiwrap = require("fcgiwrap", "fcgiwrap");
    let backend = http_backend();
    let https_port = free_port();
    let http_port = free_port();
    let sock = scratch.join(format!("fcgi-{https_port}.sock"));
    let flog = scratch.join(format!("fcgiwrap-{https_port}.log"));
    let fcgi = Command::new(fcgiwrap)
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&flog).unwrap())
        .spawn()
        .unwrap();
    let mut fcgi = Server {
        name: "fcgiwrap",
        child: fcgi,
        log: flog,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        if let Ok(Some(s)) = fcgi.child.try_wait() {
            panic!("fcgiwrap exited ({s}): {}", fcgi.log());
        }
        assert!(
            Instant::now() < deadline,
            "fcgiwrap did not create its socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let (cert_pem, key_pem, tls) = test_pki();
    let cert = scratch.join("cert.pem");
    let key = scratch.join("key.pem");
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let tmp = scratch.join(format!("nginx-tmp-{https_port}"));
    std::fs::create_dir_all(&tmp).unwrap();
    let log = scratch.join(format!("nginx-{https_port}.log"));
    let access_log = scratch.join(format!("nginx-{https_port}.access"));
    let htpasswd = scratch.join("htpasswd");
    let fastcgi = |pass_headers: bool| {
        format!(
            r#"
            fastcgi_pass unix:{sock};
            fastcgi_pass_request_headers {onoff};
            fastcgi_param SCRIPT_FILENAME {backend};
            fastcgi_param PATH_INFO $1;
            fastcgi_param GIT_PROJECT_ROOT {root};
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_buffering off;
"#,
            sock = sock.display(),
            onoff = if pass_headers { "on" } else { "off" },
            backend = backend.display(),
            root = root.display(),
        )
    };
    let conf = scratch.join(format!("nginx-{https_port}.conf"));
    std::fs::write(
        &conf,
        format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {log} info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    log_format who '$request_uri user=$remote_user status=$status';
    client_body_temp_path {tmp}/body;
    fastcgi_temp_path {tmp}/fastcgi;
    proxy_temp_path {tmp}/proxy;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 30;
    server {{
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        access_log {access} who;
        location ~ ^/v2(/.*)$ {{ {v2} }}
        location ~ ^/auth(/.*)$ {{
            auth_basic "git";
            auth_basic_user_file {htpasswd};
            {v2}
        }}
        location ~ ^/authmoved/(.*)$ {{ return 301 /auth/$1$is_args$args; }}
        location ~ ^/v0(/.*)$ {{ {v0} }}
        location ~ ^/moved/(.*)$ {{ return 301 /v2/$1$is_args$args; }}
        location ~ ^/loop/(.*)$ {{ return 302 /loop/$1$is_args$args; }}
        location ~ ^/elsewhere/(.*)$ {{ return 301 https://example.com/$1$is_args$args; }}
    }}
    server {{
        listen 127.0.0.1:{http_port};
        location / {{ return 301 https://127.0.0.1:{https_port}$request_uri; }}
    }}
}}
"#,
            tmp = tmp.display(),
            log = log.display(),
            cert = cert.display(),
            key = key.display(),
            v2 = fastcgi(true),
            v0 = fastcgi(false),
            access = access_log.display(),
            htpasswd = htpasswd.display(),
        ),
    )
    .unwrap();
    let child = Command::new(nginx)
        .arg("-e")
        .arg(&log)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(scratch.join(format!("nginx-{https_port}.stderr"))).unwrap())
        .spawn()
        .unwrap();
    let mut ng = Server {
        name: "nginx",
        child,
        log,
    };
    ng.wait_port(https_port, Duration::from_secs(10));
    ng.wait_port(http_port, Duration::from_secs(10));
    Nginx {
        servers: vec![ng, fcgi],
        https_port,
        http_port,
        tls,
        access_log,
    }
}

/// A throw-away CA and a server certificate for 127.0.0.1; returns (server chain PEM, key
/// PEM, a rustls client config trusting the CA).
pub fn test_pki() -> (String, String, Arc<rustls::ClientConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "unipi-git test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        cert.pem() + &ca_cert.pem(),
        key.serialize_pem(),
        Arc::new(config),
    )
}

// ---------------------------------------------------------------- the std driver

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.as_mut(),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// What the driver saw, besides the result.
#[derive(Debug, Default, Clone)]
pub struct DriveLog {
    pub connects: Vec<(String, u16, bool)>,
    pub closes: usize,
    pub polls: usize,
}

/// Drives `fetch` over real sockets. `read_timeout` is the driver's idle timeout: when it
/// expires the driver calls `Fetch::timeout()`. `overall` bounds the whole fetch.
pub fn drive_with(
    fetch: &mut Fetch,
    tls: Option<Arc<rustls::ClientConfig>>,
    read_timeout: Duration,
    overall: Duration,
) -> (Result<Outcome, Error>, DriveLog) {
    let start = Instant::now();
    let mut log = DriveLog::default();
    let mut conn: Option<Conn> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        log.polls += 1;
        if start.elapsed() > overall {
            fetch.timeout();
        }
        match fetch.poll() {
            Io::Connect {
                host,
                port,
                tls: want_tls,
            } => {
                log.connects.push((host.to_string(), port, want_tls));
                let stream = match TcpStream::connect((host, port)) {
                    Ok(s) => s,
                    Err(e) => {
                        fetch.transport_error(e.to_string());
                        continue;
                    }
                };
                stream.set_read_timeout(Some(read_timeout)).unwrap();
                stream.set_nodelay(true).unwrap();
                if want_tls {
                    let config = tls.clone().expect("TLS config for https");
                    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
                    let c = rustls::ClientConnection::new(config, name).unwrap();
                    conn = Some(Conn::Tls(Box::new(rustls::StreamOwned::new(c, stream))));
                } else {
                    conn = Some(Conn::Plain(stream));
                }
                fetch.connected();
            }
            Io::Send(bytes) => {
                let c = conn.as_mut().expect("send without connection");
                let r = c.io().write(bytes).and_then(|n| c.io().flush().map(|_| n));
                match r {
                    Ok(n) => fetch.sent(n),
                    // A signal (e.g. SIGCHLD from the server's children) interrupted the call.
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => fetch.transport_error(e.to_string()),
                }
            }
            Io::Receive => {
                let c = conn.as_mut().expect("receive without connection");
                match c.io().read(&mut buf) {
                    Ok(0) => fetch.peer_closed(),
                    Ok(n) => fetch.received(&buf[..n]),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        fetch.timeout()
                    }
                    // rustls reports a TCP close without close_notify this way.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => fetch.peer_closed(),
                    // A signal interrupted the read: just read again.
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => fetch.transport_error(e.to_string()),
                }
            }
            Io::ConnectSsh(_) => fetch.transport_error("this driver speaks no SSH"),
            Io::Close => {
                log.closes += 1;
                conn = None;
            }
            Io::Done(result) => return (result, log),
        }
    }
}

pub fn drive(
    fetch: &mut Fetch,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> (Result<Outcome, Error>, DriveLog) {
    drive_with(fetch, tls, Duration::from_secs(20), Duration::from_secs(60))
}

/// Fetches `url` with `opts` and returns the snapshot (panics on any other outcome).
pub fn fetch_snapshot(
    url: &str,
    opts: FetchOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> (Snapshot, DriveLog) {
    let mut f = Fetch::new(Url::parse(url).unwrap(), opts);
    let (r, log) = drive(&mut f, tls);
    match r {
        Ok(Outcome::Fetched(s)) => (s, log),
        other => panic!("fetch {url}: unexpected {other:?}"),
    }
}

pub fn fetch_err(url: &str, opts: FetchOptions, tls: Option<Arc<rustls::ClientConfig>>) -> Error {
    let mut f = Fetch::new(Url::parse(url).unwrap(), opts);
    match drive(&mut f, tls).0 {
        Err(e) => e,
        Ok(o) => panic!("fetch {url}: expected an error, got {o:?}"),
    }
}

// ---------------------------------------------------------------- log capture

struct CaptureLogger;

static LOG_LINES: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = format!(
            "{} {}: {}\n",
            record.level(),
            record.target(),
            record.args()
        );
        if let Ok(mut lines) = LOG_LINES.lock() {
            lines.push_str(&line);
        }
    }
    fn flush(&self) {}
}

/// Records every log line of the crate (all levels) from now on, for all tests of this binary.
pub fn capture_logs() {
    static LOGGER: CaptureLogger = CaptureLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

/// The log lines recorded since [`capture_logs`].
pub fn captured_logs() -> String {
    LOG_LINES.lock().map(|l| l.clone()).unwrap_or_default()
}

// ---------------------------------------------------------------- git archive reference

/// Checks a snapshot against `git archive` of `commit`, extracted by `tar`: the same
/// regular files, executables and symlinks with the same contents.
pub fn assert_equals_archive(snap: &Snapshot, repo: &Path, commit: &str) {
    assert_eq!(snap.commit.to_string(), commit);
    let tar = git_bytes(repo, &["archive", "--format=tar", commit], None);
    let dir = TempDir::new("archive");
    let mut child = Command::new(require("tar", "tar"))
        .arg("-x")
        .arg("-C")
        .arg(dir.path())
        .stdin(Stdio::piped())
        .spawn()
        .expect("tar");
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    assert!(child.wait().unwrap().success(), "tar -x failed");
    let mut want = Vec::new();
    collect_tree(dir.path(), "", &mut want);
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let got: Vec<(String, FileKind, Vec<u8>)> = snap
        .files
        .iter()
        .map(|f| (f.path.clone(), f.kind, f.data.to_vec()))
        .collect();
    assert_eq!(got.len(), want.len(), "file count differs from git archive");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((&g.0, g.1), (&w.0, w.1), "entry differs from git archive");
        assert!(g.2 == w.2, "content of {} differs from git archive", g.0);
    }
}

fn collect_tree(root: &Path, prefix: &str, out: &mut Vec<(String, FileKind, Vec<u8>)>) {
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<_> = std::fs::read_dir(root.join(prefix))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().into_string().unwrap();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(e.path()).unwrap();
            out.push((
                rel,
                FileKind::Symlink,
                target.into_os_string().into_encoded_bytes(),
            ));
        } else if meta.is_dir() {
            collect_tree(root, &rel, out);
        } else {
            let kind = if meta.permissions().mode() & 0o111 != 0 {
                FileKind::Executable
            } else {
                FileKind::Regular
            };
            out.push((rel, kind, std::fs::read(e.path()).unwrap()));
        }
    }
}

/// A deterministic site of `n` files like the benchmark's (`bench/bench.py`,
/// `make_site_1000`): an `index.html` and `n - 1` files in ten directories, text pages of
/// 200 B to 16 KiB and every 50th a binary. Returns the work tree (a repository on `main`
/// with one commit) and the bare clone `<dir>/site.git`.
pub fn site_of(n: usize, dir: &Path) -> (PathBuf, PathBuf) {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(
        work.join("index.html"),
        format!("<!doctype html><title>{n} files</title><p>index</p>\n"),
    )
    .unwrap();
    let words = [
        "muen",
        "separation",
        "kernel",
        "subject",
        "channel",
        "unikernel",
        "rust",
        "smoltcp",
        "rustls",
        "git",
        "pack",
        "delta",
        "object",
        "tree",
        "blob",
        "commit",
        "memory",
        "region",
    ];
    let mut rng = noise(n as u64, 8 * n);
    for i in 0..n - 1 {
        let r = u64::from_le_bytes(rng[8 * i..8 * i + 8].try_into().unwrap());
        let size = 200 + (r % 4096) as usize * (1 + (r >> 40) as usize % 4);
        let sub = work.join(format!("d{:02}", i % 10));
        std::fs::create_dir_all(&sub).unwrap();
        if i % 50 == 7 {
            std::fs::write(sub.join(format!("f{i:04}.bin")), noise(r, size)).unwrap();
        } else {
            let mut text = format!("<!doctype html><title>page {i}</title>\n");
            let mut w = r;
            while text.len() < size {
                for _ in 0..12 {
                    w = w
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    text.push_str(words[(w >> 33) as usize % words.len()]);
                    text.push(' ');
                }
                text.push('\n');
            }
            std::fs::write(sub.join(format!("f{i:04}.html")), text).unwrap();
        }
    }
    rng.clear();
    git(&work, &["add", "-A"]);
    git_with(
        &work,
        &["commit", "-q", "-m", "site"],
        &[
            ("GIT_AUTHOR_DATE", "1700000000 +0000"),
            ("GIT_COMMITTER_DATE", "1700000000 +0000"),
        ],
        None,
    );
    let bare = dir.join("site.git");
    git(dir, &["clone", "-q", "--bare", "work", "site.git"]);
    git(&work, &["remote", "add", "served", bare.to_str().unwrap()]);
    (work, bare)
}
