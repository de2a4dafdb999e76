//! Writes the seed corpora of the fuzz targets into `fuzz/seeds/<target>/` (see
//! `docs/fuzzing.md`). Real peers wherever there is one: git exchanges are recorded from
//! `git daemon --inetd` and `git http-backend` answering the project's own git client, packs
//! come from `git pack-objects`, archives from `tar`, TLS hellos from rustls, sinfo and boot
//! info pages from the packer's system image.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml -p unipi-fuzz-seedgen -- [SYSTEM_IMAGE]
//!
//! SYSTEM_IMAGE is the output of `muen-tools image` (optional; `make fuzz-seeds` makes it).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use unipi_git::{Fetch, FetchOptions, Io, Outcome, Url};

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds")
}

/// Writes one seed file.
fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = seeds_dir().join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
    println!("{target}/{name}: {} bytes", bytes.len());
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The fuzz targets' `seed (4)` field: small chunks for streaming parsers.
const SEED: [u8; 4] = 7u32.to_le_bytes();

// ---------------------------------------------------------------- git helpers

fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    git_in(dir, args, None)
}

fn git_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Seed")
        .env("GIT_AUTHOR_EMAIL", "seed@example.org")
        .env("GIT_COMMITTER_NAME", "Seed")
        .env("GIT_COMMITTER_EMAIL", "seed@example.org")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .spawn()
        .expect("git");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?} failed");
    out.stdout
}

/// A small site repository with two commits (so that full packs carry deltas), a
/// subdirectory, an executable and a symlink; returns the bare copy's parent directory.
fn make_repo(tmp: &Path) -> PathBuf {
    let work = tmp.join("work");
    std::fs::create_dir_all(work.join("css")).unwrap();
    std::fs::create_dir_all(work.join("docs")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    let page: String = (0..40)
        .map(|i| format!("<p>paragraph {i} of the muen.sk seed page</p>\n"))
        .collect();
    std::fs::write(work.join("index.html"), format!("<h1>Muen</h1>\n{page}")).unwrap();
    std::fs::write(
        work.join("css/site.css"),
        "body { font-family: sans-serif }\n",
    )
    .unwrap();
    std::fs::write(work.join("docs/index.html"), "<p>docs</p>\n").unwrap();
    std::fs::write(work.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["update-index", "--chmod=+x", "run.sh"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    std::fs::write(
        work.join("index.html"),
        format!("<h1>Muen SK</h1>\n{page}<p>new</p>\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink("index.html", work.join("home.html")).unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "second"]);
    git(tmp, &["clone", "-q", "--bare", "work", "site.git"]);
    tmp.to_path_buf()
}

// ------------------------------------------------------ recording a real fetch

/// One connection's recorded server bytes, split into the answers to each request.
#[derive(Default)]
struct Recording {
    /// Per connection: the server's answers (one per client request burst).
    connections: Vec<Vec<Vec<u8>>>,
}

impl Recording {
    fn stream(&self, i: usize) -> Vec<u8> {
        self.connections[i].concat()
    }
    /// The fuzz-target form: `flags | seed | conn0 CLOSE conn1 ...`.
    fn fetch_seed(&self, flags: u8) -> Vec<u8> {
        let mut out = vec![flags];
        out.extend_from_slice(&SEED);
        for (i, c) in self.connections.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\0\0CLOSE\0\0");
            }
            out.extend_from_slice(&c.concat());
        }
        out
    }
}

trait Server {
    fn send(&mut self, bytes: &[u8]);
    /// Bytes from the server; empty at the end of the stream.
    fn recv(&mut self) -> Vec<u8>;
}

/// `git daemon --inetd` on pipes: one process per connection, as QEMU's guestfwd runs it.
struct Daemon {
    child: Child,
}

impl Daemon {
    fn new(base: &Path) -> Self {
        let exec = String::from_utf8(git(base, &["--exec-path"])).unwrap();
        let child = Command::new(Path::new(exec.trim()).join("git-daemon"))
            .args(["--inetd", "--export-all", "--informative-errors"])
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .env("HOME", base)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("git-daemon");
        Daemon { child }
    }
}

impl Server for Daemon {
    fn send(&mut self, bytes: &[u8]) {
        self.child.stdin.as_mut().unwrap().write_all(bytes).unwrap();
    }
    fn recv(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; 65536];
        let n = self
            .child
            .stdout
            .as_mut()
            .unwrap()
            .read(&mut buf)
            .unwrap_or(0);
        buf.truncate(n);
        buf
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git http-backend` as a CGI behind a minimal HTTP/1.1 server (keep-alive, each response
/// with Content-Length or chunked).
struct Backend {
    root: PathBuf,
    request: Vec<u8>,
    pending: Vec<u8>,
    chunked: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Backend {
    fn answer(&mut self) {
        let Some(end) = find(&self.request, b"\r\n\r\n") else {
            return;
        };
        let head = String::from_utf8(self.request[..end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap().split(' ');
        let method = first.next().unwrap().to_string();
        let target = first.next().unwrap().to_string();
        let mut headers = Vec::new();
        for l in lines {
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
        if self.request.len() < end + 4 + len {
            return;
        }
        let body = self.request[end + 4..end + 4 + len].to_vec();
        self.request.drain(..end + 4 + len);
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut cmd = Command::new("git");
        cmd.args(["http-backend"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("CONTENT_LENGTH", len.to_string())
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(t) = header("content-type") {
            cmd.env("CONTENT_TYPE", t);
        }
        if let Some(p) = header("git-protocol") {
            cmd.env("GIT_PROTOCOL", p);
        }
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&body).unwrap();
        let out = child.wait_with_output().unwrap().stdout;
        let split = find(&out, b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| find(&out, b"\n\n").map(|i| (i, 2)))
            .unwrap();
        let cgi_head = String::from_utf8(out[..split.0].to_vec()).unwrap();
        let cgi_body = &out[split.0 + split.1..];
        let mut status = "200 OK".to_string();
        let mut resp = Vec::new();
        let mut fields = String::new();
        for l in cgi_head.lines() {
            match l.split_once(':') {
                Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
                _ => fields.push_str(&format!("{l}\r\n")),
            }
        }
        resp.extend_from_slice(format!("HTTP/1.1 {status}\r\n{fields}").as_bytes());
        if self.chunked {
            resp.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for piece in cgi_body.chunks(1000) {
                resp.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                resp.extend_from_slice(piece);
                resp.extend_from_slice(b"\r\n");
            }
            resp.extend_from_slice(b"0\r\n\r\n");
        } else {
            resp.extend_from_slice(
                format!("Content-Length: {}\r\n\r\n", cgi_body.len()).as_bytes(),
            );
            resp.extend_from_slice(cgi_body);
        }
        self.pending.extend_from_slice(&resp);
    }
}

impl Server for Backend {
    fn send(&mut self, bytes: &[u8]) {
        self.request.extend_from_slice(bytes);
        self.answer();
    }
    fn recv(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// Runs the project's git client against `connect()`'s servers and records what they say.
fn record(
    url: &str,
    opts: FetchOptions,
    mut connect: impl FnMut() -> Box<dyn Server>,
) -> Recording {
    let mut fetch = Fetch::new(Url::parse(url).unwrap(), opts);
    let mut rec = Recording::default();
    let mut server: Option<Box<dyn Server>> = None;
    let mut sent_since_answer = true;
    loop {
        match fetch.poll() {
            Io::Connect { .. } => {
                server = Some(connect());
                rec.connections.push(Vec::new());
                fetch.connected();
            }
            Io::Send(bytes) => {
                let n = bytes.len();
                server.as_mut().unwrap().send(bytes);
                sent_since_answer = true;
                fetch.sent(n);
            }
            Io::Receive => {
                let data = server.as_mut().unwrap().recv();
                if data.is_empty() {
                    fetch.peer_closed();
                    continue;
                }
                let conn = rec.connections.last_mut().unwrap();
                if sent_since_answer || conn.is_empty() {
                    conn.push(Vec::new());
                    sent_since_answer = false;
                }
                conn.last_mut().unwrap().extend_from_slice(&data);
                fetch.received(&data);
            }
            Io::ConnectSsh(_) => panic!("seedgen fetches no SSH remotes"),
            Io::Close => server = None,
            Io::Done(result) => {
                match result {
                    Ok(Outcome::Fetched(s)) => println!("fetched {url}: {} files", s.files.len()),
                    other => panic!("fetch of {url} failed: {other:?}"),
                }
                return rec;
            }
        }
    }
}

fn git_seeds(tmp: &Path) {
    let base = make_repo(tmp);
    let v2 = FetchOptions::default();
    let v0 = FetchOptions {
        protocol: unipi_git::ProtocolChoice::V0,
        ..FetchOptions::default()
    };

    // git:// (fuzz target flags: bits 0-1 URL, bits 2-3 protocol choice).
    let daemon_v2 = record("git://192.168.254.2/site.git", v2.clone(), || {
        Box::new(Daemon::new(&base))
    });
    put("git_fetch", "daemon-v2", &daemon_v2.fetch_seed(0));
    let daemon_v0 = record("git://192.168.254.2/site.git", v0.clone(), || {
        Box::new(Daemon::new(&base))
    });
    put("git_fetch", "daemon-v0", &daemon_v0.fetch_seed(2 << 2));
    // Smart HTTP.
    let http = |chunked| {
        let root = base.clone();
        move || -> Box<dyn Server> {
            Box::new(Backend {
                root: root.clone(),
                request: Vec::new(),
                pending: Vec::new(),
                chunked,
            })
        }
    };
    let http_v2 = record("http://git.example/site.git", v2.clone(), http(false));
    put("git_fetch", "http-v2", &http_v2.fetch_seed(2));
    let http_v0 = record("http://git.example/site.git", v0.clone(), http(true));
    put(
        "git_fetch",
        "http-v0-chunked",
        &http_v0.fetch_seed(2 | (2 << 2)),
    );

    // pkt-line streams: whole git:// conversations.
    put(
        "git_pktline",
        "daemon-v2",
        &cat(&[&[0], &SEED, &daemon_v2.stream(0)]),
    );
    put(
        "git_pktline",
        "daemon-v0",
        &cat(&[&[0], &SEED, &daemon_v0.stream(0)]),
    );

    // Protocol answers, one parser each (see unipi_git::fuzzing::ProtocolParser::ALL).
    let a = &daemon_v2.connections[0];
    put("git_protocol", "v2-caps", &cat(&[&[0], &a[0]]));
    put("git_protocol", "v2-ls-refs", &cat(&[&[2], &a[1]]));
    put("git_protocol", "v2-fetch", &cat(&[&[3], &a[2]]));
    let b = &daemon_v0.connections[0];
    put("git_protocol", "v0-refs", &cat(&[&[1], &b[0]]));
    put("git_protocol", "v0-fetch-deepen", &cat(&[&[4], &b[1]]));
    let info_refs = &http_v0.connections[0][0];
    let body = &info_refs[find(info_refs, b"\r\n\r\n").unwrap() + 4..];
    put(
        "git_protocol",
        "http-v0-info-refs-chunked",
        &cat(&[&[0], body]),
    );

    // Packs (without the trailer, which the target appends): full history with OFS and
    // with REF deltas, and a depth-1 pack.
    let bare = base.join("site.git");
    let revs = b"main\n";
    let ofs = git_in(
        &bare,
        &[
            "pack-objects",
            "--stdout",
            "--revs",
            "--delta-base-offset",
            "-q",
        ],
        Some(revs),
    );
    put(
        "git_pack",
        "ofs-delta",
        &cat(&[&SEED, &ofs[..ofs.len() - 20]]),
    );
    let refd = git_in(
        &bare,
        &["pack-objects", "--stdout", "--revs", "-q"],
        Some(revs),
    );
    put(
        "git_pack",
        "ref-delta",
        &cat(&[&SEED, &refd[..refd.len() - 20]]),
    );
    let head = git_in(
        &bare,
        &["pack-objects", "--stdout", "--revs", "-q"],
        Some(b"main\n^main~1\n"),
    );
    put(
        "git_pack",
        "one-commit",
        &cat(&[&SEED, &head[..head.len() - 20]]),
    );
}

// ------------------------------------------------------------- other formats

fn delta_seeds() {
    let base = b"<h1>Muen</h1>\n<p>A separation kernel.</p>\n";
    let mut d = Vec::new();
    let result_len = 14 + 9 + base.len() - 14;
    unipi_git::wire::write_delta_header(&mut d, base.len() as u64, result_len as u64);
    d.extend_from_slice(&[0x90, 14]); // copy offset 0, size 14
    d.push(9);
    d.extend_from_slice(b"<p>new</p"); // insert 9 bytes
    d.extend_from_slice(&[0x91, 14, (base.len() - 14) as u8]); // copy offset 14
    let mut s = (base.len() as u16).to_le_bytes().to_vec();
    s.extend_from_slice(base);
    s.extend_from_slice(&d);
    put("git_delta", "copy-insert-copy", &s);
    // A large copy with every offset and size byte present.
    let mut big = vec![0x00, 0x00];
    let mut d = Vec::new();
    unipi_git::wire::write_delta_header(&mut d, 0, 0x10000);
    d.extend_from_slice(&[0x80 | 0x0f | 0x70, 0, 0, 0, 0, 0, 0, 0]);
    big.extend_from_slice(&d);
    put("git_delta", "size-0x10000-copy", &big);
}

fn inflate_seeds() {
    let text: Vec<u8> = (0..3000u32)
        .flat_map(|i| format!("line {} of text\n", i % 97).into_bytes())
        .collect();
    for (name, level) in [("stored", 0u8), ("fast", 1), ("best", 9)] {
        let z = miniz_oxide::deflate::compress_to_vec_zlib(&text[..2000], level);
        put(
            "git_inflate",
            name,
            &cat(&[&2000u16.to_le_bytes(), &SEED, &z]),
        );
    }
    let z = miniz_oxide::deflate::compress_to_vec_zlib(b"", 6);
    put(
        "git_inflate",
        "empty",
        &cat(&[&0u16.to_le_bytes(), &SEED, &z, b"NEXT"]),
    );
}

fn tree_seeds() {
    fn id(i: u8) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0] = i;
        b
    }
    fn entry(mode: &str, name: &str, to: u8) -> Vec<u8> {
        cat(&[mode.as_bytes(), b" ", name.as_bytes(), b"\0", &id(to)])
    }
    fn object(kind: u8, data: &[u8]) -> Vec<u8> {
        cat(&[&[kind], &(data.len() as u16).to_le_bytes(), data])
    }
    let root = cat(&[
        &entry("40000", "docs", 3),
        &entry("100644", "index.html", 2),
        &entry("120000", "link", 4),
        &entry("160000", "module", 9),
        &entry("100755", "run.sh", 2),
    ]);
    let docs = entry("100644", "a b.txt", 2);
    let s = cat(&[
        &object(0, &root),
        &object(1, b"<h1>hi</h1>\n"),
        &object(0, &docs),
        &object(1, b"index.html"),
    ]);
    put("git_tree", "nested", &s);
    put("git_tree", "commit", b"tree 0123456789abcdef0123456789abcdef01234567\nparent 89abcdef0123456789abcdef0123456789abcdef\nauthor A <a@b> 1700000000 +0100\ncommitter C <c@d> 1700000001 -0200\n\nmessage\n");
}

fn tar_seeds(tmp: &Path) {
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let htdocs = repo_root.join("htdocs");
    let tar = |args: &[&str], dir: &Path| -> Vec<u8> {
        let out = Command::new("tar")
            .args([
                "--sort=name",
                "--mtime=@1700000000",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
            ])
            .args(args)
            .arg("-C")
            .arg(dir)
            .args(["-cf", "-", "."])
            .output()
            .unwrap();
        assert!(out.status.success());
        // Keep the two terminating zero blocks, drop tar's padding to a 10 KiB record.
        let mut data = out.stdout;
        let used = data
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i / 512 * 512 + 512);
        data.truncate(used + 1024);
        data
    };
    put(
        "site_tar",
        "htdocs-ustar",
        &tar(&["--format=ustar", "--mode=u+rw,go+r,go-w"], &htdocs),
    );
    // pax and GNU long names, links and a directory, in a tiny tree.
    let d = tmp.join("tar");
    let long = "a-rather-long-directory-name-that-needs-an-extended-header/".repeat(2);
    std::fs::create_dir_all(d.join(&long)).unwrap();
    std::fs::write(d.join(&long).join("f.txt"), "deep\n").unwrap();
    std::fs::write(d.join("index.html"), "<p>x</p>\n").unwrap();
    std::fs::hard_link(d.join("index.html"), d.join("copy.html")).unwrap();
    std::os::unix::fs::symlink("index.html", d.join("home")).unwrap();
    std::fs::write(d.join("caf\u{e9}.txt"), "utf-8\n").unwrap();
    put("site_tar", "pax-links", &tar(&["--format=pax"], &d));
    put("site_tar", "gnu-longname", &tar(&["--format=gnu"], &d));
}

fn http_seeds() {
    let reqs: &[(&str, u8, &[u8])] = &[
        ("get-index", 0, b"GET / HTTP/1.1\r\nHost: localhost:4433\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"),
        ("browser", 0, b"GET /css/site.css HTTP/1.1\r\nHost: muen.sk\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0\r\nAccept: text/css,*/*;q=0.1\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nReferer: https://muen.sk/\r\nIf-None-Match: \"x\", W/\"y\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: keep-alive\r\n\r\n"),
        ("pipelined", 0, b"GET /docs HTTP/1.1\r\nHost: a\r\n\r\nHEAD /docs/ HTTP/1.1\r\nHost: a\r\n\r\nGET /docs/a%20b.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /caf%C3%A9.txt?x=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /old HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        ("range", 0, b"GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=100-199\r\nIf-Range: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=-500\r\n\r\n"),
        ("hook-post-chunked", 0, b"POST /hook HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: y\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("hook-get", 0, b"GET /hook?x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /sec%20ret/h%C3%B6ok HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("http10-absolute", 0, b"GET http://muen.sk/index.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("redirect-role", 2, b"GET /path?q=1 HTTP/1.1\r\nHost: muen.sk:8080\r\n\r\nGET /x HTTP/1.1\r\n\r\n"),
        ("bad", 0, b"GET /../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\nGET /%2e%2e/ HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/2.0\r\n\r\n"),
        ("small-limits", 8 << 2, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"),
        ("no-site", 3, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ];
    for (name, flags, req) in reqs {
        put("http_connection", name, &cat(&[&[*flags], &SEED, req]));
    }
    for (i, t) in [
        "/",
        "/docs/a%20b.txt?q=1;x",
        "/a;v=1/b",
        "http://Muen.SK:443/x?y",
        "HTTPS://h/",
        "/caf%C3%A9.txt",
        "/%2e%2e/x",
        "/a//b/",
        "/%00",
        "/%ZZ",
        "*",
        "/%C3%28",
    ]
    .iter()
    .enumerate()
    {
        put("http_path", &format!("target-{i}"), t.as_bytes());
    }
    let fields: &[(&str, u8, &[u8])] = &[
        ("imf-date", 0, b"Sun, 06 Nov 1994 08:49:37 GMT"),
        ("rfc850-date", 0, b"Sunday, 06-Nov-94 08:49:37 GMT"),
        ("asctime-date", 0, b"Sun Nov  6 08:49:37 1994"),
        ("etags", 1, b"W/\"abc\", \"0123abcd\",, *"),
        ("range", 2, b"bytes=0-499"),
        ("range-suffix", 2, b"bytes = -20 , "),
        (
            "chunked",
            3,
            b"1a;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n",
        ),
    ];
    for (name, sel, v) in fields {
        let seed: &[u8] = if *sel == 3 { &[0x10, 0, 1, 0] } else { &SEED };
        put("http_fields", name, &cat(&[&[*sel], seed, v]));
    }
}

fn accept_encoding_seeds() {
    // `offers (1) | sizes seed (4) | lines`: offers bit 0 gzip, bit 1 br, bit 7 no field.
    let values: &[(&str, u8, &str)] = &[
        ("chromium", 3, "gzip, deflate, br, zstd"),
        ("curl-compressed", 3, "deflate, gzip, br, zstd"),
        ("safari", 3, "gzip, deflate, br"),
        ("gzip-only-client", 1, "gzip"),
        ("identity", 1, "identity"),
        ("empty", 1, ""),
        ("absent", 0x83, ""),
        ("star", 3, "*"),
        ("rfc9110-example", 3, "gzip;q=1.0, identity; q=0.5, *;q=0"),
        ("refuse-all", 1, "identity;q=0, gzip;q=0"),
        (
            "x-gzip-lines",
            3,
            "x-gzip;q=0.5\nbr;q=0.25, identity;q=0.000",
        ),
        ("malformed", 3, "gzip;q=2, br;level=11, ,;q=1, Gzip ; Q=0.9"),
    ];
    for (name, offers, v) in values {
        put(
            "http_accept_encoding",
            name,
            &cat(&[&[*offers], &SEED, v.as_bytes()]),
        );
    }
}

fn gzip_seeds() {
    // The real gzip tool on files of htdocs: `0 | seed | expected | gz` (cut = seed >> 16).
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (name, file, args) in [
        (
            "htdocs-css-9n",
            "htdocs/css/site.css",
            &["-c", "-9", "-n"][..],
        ),
        (
            "htdocs-about-name",
            "htdocs/about.html",
            &["-c", "-1", "--name"][..],
        ),
    ] {
        let path = repo_root.join(file);
        let data = std::fs::read(&path).unwrap();
        let gz = Command::new("gzip").args(args).arg(&path).output().unwrap();
        assert!(gz.status.success());
        let seed = ((data.len() as u32) << 16 | 700).to_le_bytes();
        put("site_gzip", name, &cat(&[&[0], &seed, &data, &gz.stdout]));
    }
    put(
        "site_gzip",
        "roundtrip",
        &cat(&[
            &[1],
            &SEED,
            b"<p>hello, hello, hello</p>\n".repeat(20).as_slice(),
        ]),
    );
    put(
        "site_gzip",
        "site",
        &cat(&[
            &[2],
            &[0, 0, 0, 1],
            b"R\x03<li>item</li>\xff\xffR\x02body{color:red}\xff\xffR\x01text\xff\xff\x89PNG",
        ]),
    );
}

fn boot_seeds() {
    for (i, line) in [
        "--ipv4=192.168.254.10/24 --ipv4-gateway=192.168.254.1 --remote=git://192.168.254.2/site.git",
        "--solo5:quiet --hostname=Muen.SK. --remote=https://git.example/site.git#gh-pages --remote-ca=ca_certs --site=fallback|site --tls-cert=cert --tls-key=key --hook=/secret/abc-123 --default=https://muen.sk/ --hsts=600",
        "--port=8080 --https-port=8080 --dns=udp:9.9.9.9:53 --dns-servers=1.1.1.1,8.8.8.8 --mac=02:00:00:00:00:01 --log-level=debug",
        "--mime-type=/feed:application/rss+xml --default-mime-type=text/plain --header-timeout=3 --idle-timeout=4 --max-header-bytes=2048 --max-connections=64 --tls-resumption=off --status-interval=60",
        "--tls --production --cert-seed=x --ssh-key=rsa:abc --monitor=1.2.3.4 --unknown positional",
        "--remote=http://[::1]:80/x.git --ipv4=0.0.0.0/33",
        "--ipv6=2001:db8::10/64 --ipv6-gateway=fe80::1 --accept-router-advertisements=false --ipv4-only=false --ipv6-only=true --dns=[2001:db8::53]:53 --dns-servers=udp:10.0.0.1:53,2001:db8::55 --ipv4=10.0.0.2/24",
        "--syslog=tcp://logs.example.org:601 --syslog-facility=local3 --metrics-port=9100 --access-log=off",
        "--syslog 10.0.0.1 --syslog=udp://[::1] --syslog-facility=kern --metrics-port=4433",
    ]
    .iter()
    .enumerate()
    {
        put("boot_params", &format!("cmdline-{i}"), line.as_bytes());
    }
}

fn tls_seeds() {
    use unipi::tls::{ClientTls, LoopClock, ServerTls, client_config, server_config};
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let clock = Arc::new(LoopClock::default());
    clock.set(1_700_000_000);
    let cert = key.cert.pem();
    let server_cfg = server_config(
        cert.as_bytes(),
        key.signing_key.serialize_pem().as_bytes(),
        clock.clone(),
        None,
    )
    .unwrap();
    let client_cfg = client_config(cert.as_bytes(), clock).unwrap();
    let mut client = ClientTls::client(client_cfg, "localhost").unwrap();
    let mut server = ServerTls::server(server_cfg).unwrap();
    let mut from_client = Vec::new();
    let mut hello = None;
    for _ in 0..20 {
        client
            .pump(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let out = client.output().to_vec();
        client.consume_output(out.len());
        if hello.is_none() {
            hello = Some(out.clone());
        }
        from_client.extend_from_slice(&out);
        server.receive(&out);
        server.pump(b"").unwrap();
        let back = server.output().to_vec();
        server.consume_output(back.len());
        client.receive(&back);
        let n = server.plaintext().len();
        server.consume_plaintext(n);
        if n > 0 {
            break;
        }
    }
    put(
        "tls_server",
        "client-hello",
        &cat(&[&SEED, &hello.unwrap()]),
    );
    put("tls_server", "client-flight", &cat(&[&SEED, &from_client]));
}

fn channel_seeds() {
    use muen_abi::channel::{ChannelMemory, HEADER_SIZE};
    use muen_abi::{debuglog, muennet};
    // A writer's region, then the fuzz format: sel | header | data len | data | ops.
    let mut region = vec![0u64; 4096 / 8];
    let base = region.as_mut_ptr().cast::<u8>();
    let dump = |sel: u8, ops: &[u8], region: &[u64]| -> Vec<u8> {
        let bytes: Vec<u8> = region.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut data = &bytes[HEADER_SIZE..];
        while let Some((0, rest)) = data.split_last().map(|(l, r)| (*l, r)) {
            data = rest;
        }
        cat(&[
            &[sel],
            &bytes[..HEADER_SIZE],
            &(data.len() as u16).to_le_bytes(),
            data,
            ops,
        ])
    };
    {
        // SAFETY: `region` outlives the writer and is only accessed through it here.
        let mem = unsafe { ChannelMemory::new(base, 4096) }.unwrap();
        let mut w = debuglog::LogWriter::new(mem, 1).unwrap();
        w.write(b"unipi-rs subject runtime 0.1.0 on Muen (sinfo V05)\n", 1);
        w.write(&[b'x'; 700], 2);
        w.write(b"\nready\npartial", 3);
        w.flush(4);
    }
    // Reads, then an epoch change (word 1), then an overrun (wc, word 7).
    let mut ops = vec![7, 7, 7, 0x81];
    ops.extend_from_slice(&2u64.to_le_bytes());
    ops.extend_from_slice(&[7, 0x87]);
    ops.extend_from_slice(&1000u64.to_le_bytes());
    ops.extend_from_slice(&[7, 7]);
    put("muen_channel", "debuglog", &dump(0, &ops, &region));
    region.fill(0);
    let base = region.as_mut_ptr().cast::<u8>();
    {
        // SAFETY: as above.
        let mem = unsafe { ChannelMemory::new(base, 4096) }.unwrap();
        let mut w = muennet::NetWriter::new(mem, 5).unwrap();
        let mut frame = vec![0xffu8; 6];
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        frame.extend_from_slice(&[0u8; 28]);
        w.send(&frame).unwrap();
        w.send(&[0x11; 60]).unwrap();
    }
    put("muen_channel", "muennet", &dump(1, &[7, 7], &region));
    put(
        "muen_channel",
        "raw-announced",
        &dump(3, &[7, 7, 7], &region),
    );
}

fn image_seeds(image: Option<&Path>) {
    use muen_image::{
        Action, Backing, Builder, EventSpec, Image, MappingSpec, Peer, Settings, SubjectRegs,
    };
    let Some(path) = image else {
        println!("no system image given: skipping sinfo, boot info and image seeds");
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let img = Image::parse(&bytes).expect("system image");
    let mut b = Builder::new(Settings {
        minor_frame_us: 1000,
        flags: 0,
    });
    let mut physical_map = Vec::new();
    for p in img.physicals() {
        physical_map.push(b.physical(p.name, p.size, p.peer).unwrap());
    }
    for s in img.subjects() {
        let mut maps = Vec::new();
        for m in img.mappings(&s) {
            let backing = match m.backing {
                Backing::File { offset, len } => {
                    let data = img.file(offset, len);
                    match m.name {
                        "sinfo" => {
                            let mut end = data.len();
                            while end > 0 && data[end - 1] == 0 {
                                end -= 1;
                            }
                            put("muen_sinfo", &format!("{}-packer", s.name), &data[..end]);
                        }
                        n if n.contains("boot_info") || n.contains("bootinfo") => {
                            let cmdline =
                                muen_abi::bootinfo::parse(data).map(|i| i.cmdline.to_string());
                            if let Ok(c) = cmdline {
                                put(
                                    "boot_params",
                                    &format!("{}-packer-cmdline", s.name),
                                    c.as_bytes(),
                                );
                            }
                        }
                        _ => {}
                    }
                    // Keep the image seed small: a few bytes of every file.
                    b.blob(&data[..data.len().min(64)])
                }
                Backing::Physical(i) => Backing::Physical(physical_map[i as usize]),
                other => other,
            };
            maps.push(MappingSpec {
                name: m.name.to_string(),
                va: m.va,
                size: m.size,
                writable: m.writable,
                executable: m.executable,
                backing,
            });
        }
        let events = img
            .events(&s)
            .map(|e| EventSpec {
                name: e.name.to_string(),
                number: e.number,
                action: e.action,
            })
            .collect();
        let regs = SubjectRegs {
            rip: s.rip,
            rsp: s.rsp,
            rdi: s.rdi,
            tsc_khz: s.tsc_khz,
        };
        b.subject(s.name, regs, maps, events).unwrap();
    }
    put("muen_image", "packer-trimmed", &b.finish().unwrap());
    // And one written by hand: one subject, a few mappings and events.
    let mut b = Builder::new(Settings {
        minor_frame_us: 500,
        flags: muen_image::FLAG_DEBUG_EXIT,
    });
    let log = b
        .physical("debuglog", 0x1000, Peer::DebugLog { subject: 0 })
        .unwrap();
    let text = b.blob(b"\xf4");
    let maps = vec![
        MappingSpec {
            name: "text".into(),
            va: 0x200000,
            size: 0x1000,
            writable: false,
            executable: true,
            backing: text,
        },
        MappingSpec {
            name: "ram".into(),
            va: 0x201000,
            size: 0x2000,
            writable: true,
            executable: false,
            backing: Backing::Fill(0),
        },
        MappingSpec {
            name: "debuglog".into(),
            va: 0xf_fff0_0000,
            size: 0x1000,
            writable: true,
            executable: false,
            backing: Backing::Physical(log),
        },
    ];
    let events = vec![EventSpec {
        name: "solo5_exit".into(),
        number: 0,
        action: Action::Exit,
    }];
    let regs = SubjectRegs {
        rip: 0x200000,
        rsp: 0x202ff8,
        rdi: 0x1000,
        tsc_khz: 2_000_000,
    };
    b.subject("hello", regs, maps, events).unwrap();
    put("muen_image", "hand-made", &b.finish().unwrap());
}

/// `observe`: selector byte, then the input of that part (see the target).
fn observe_seeds() {
    for (i, t) in [
        "10.0.0.1",
        "udp://logs.example.org:514",
        "tcp://192.168.254.5:601",
        "TCP://Logs.Example.org.:5514/",
        "local7",
    ]
    .iter()
    .enumerate()
    {
        put(
            "observe",
            &format!("target-{i}"),
            &cat(&[&[0], t.as_bytes()]),
        );
    }
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    put("observe", "cert-rcgen", &cat(&[&[1], key.cert.der()]));
    put(
        "observe",
        "message",
        &cat(&[
            &[2, 0, 2, 0x40, 0x2f, 0x4e, 0x6b],
            "warning: a\nb \u{e4}\u{85}\r\n".as_bytes(),
        ]),
    );
    put(
        "observe",
        "access",
        &cat(&[&[3], b"GET\xff/a b\"c\xff\\https://x/\xff\x01curl/8.0"]),
    );
    put("observe", "label", &cat(&[&[4], b"q\"\\\nx"]));
    put(
        "observe",
        "queue",
        &cat(&[&[5], &[10, 100, 0x80, 127, 127, 127, 0x80, 0x80, 0x80, 5]]),
    );
}

fn main() {
    // SEEDGEN_ONLY=observe writes that group alone (a new target's seeds).
    if std::env::var("SEEDGEN_ONLY").as_deref() == Ok("observe") {
        observe_seeds();
        return;
    }
    let image = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .filter(|p| p.exists());
    let tmp = std::env::temp_dir().join(format!("unipi-seedgen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    git_seeds(&tmp);
    delta_seeds();
    inflate_seeds();
    tree_seeds();
    tar_seeds(&tmp);
    http_seeds();
    accept_encoding_seeds();
    gzip_seeds();
    boot_seeds();
    tls_seeds();
    channel_seeds();
    image_seeds(image.as_deref());
    observe_seeds();
    std::fs::remove_dir_all(&tmp).unwrap();
}
