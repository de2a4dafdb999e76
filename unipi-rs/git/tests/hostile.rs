//! Hostile remotes: a small std server speaking just enough git:// (v0, side-band-64k) or
//! HTTP to serve crafted data, built from real packs made by `git pack-objects`. Every case
//! must end with a specific error, never a panic or a hang.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use unipi_git::wire;
use unipi_git::{Error, Fetch, FetchOptions, FetchPhase, Limits, ResponseError, Url};

/// A real pack made by git from a one-commit repository, and its entries from
/// `git verify-pack -v`: (oid, type, size, size in pack, offset).
struct RealPack {
    _dir: TempDir,
    head: String,
    pack: Vec<u8>,
    entries: Vec<(String, String, u64, u64, u64)>,
}

fn real_pack() -> RealPack {
    let dir = TempDir::new("hostile");
    let work = dir.path().join("w");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("index.html"), b"<h1>hello</h1>\n").unwrap();
    std::fs::write(work.join("sub/blob.bin"), noise(7, 300_000)).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    let base = dir.path().join("p");
    let hash = git_with(
        &work,
        &["pack-objects", "--revs", base.to_str().unwrap()],
        &[],
        Some(b"HEAD\n"),
    );
    let pack = std::fs::read(format!("{}-{hash}.pack", base.display())).unwrap();
    let vp = git(
        &work,
        &[
            "verify-pack",
            "-v",
            &format!("{}-{hash}.idx", base.display()),
        ],
    );
    let entries = vp
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 5 && f[0].len() == 40 {
                Some((
                    f[0].to_string(),
                    f[1].to_string(),
                    f[2].parse().ok()?,
                    f[3].parse().ok()?,
                    f[4].parse().ok()?,
                ))
            } else {
                None
            }
        })
        .collect();
    RealPack {
        _dir: dir,
        head,
        pack,
        entries,
    }
}

fn fix_trailer(pack: &mut [u8]) {
    use sha1::{Digest, Sha1};
    let n = pack.len() - 20;
    let digest: [u8; 20] = Sha1::digest(&pack[..n]).into();
    pack[n..].copy_from_slice(&digest);
}

fn read_pkt(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let n = usize::from_str_radix(std::str::from_utf8(&len).ok()?, 16).ok()?;
    if n < 4 {
        return Some(vec![]);
    }
    let mut payload = vec![0u8; n - 4];
    s.read_exact(&mut payload).ok()?;
    Some(payload)
}

fn pkt(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode(&mut out, payload).unwrap();
    out
}

#[derive(Clone)]
enum Behaviour {
    /// Ref advertisement, then the pack on side-band 1.
    Pack(Vec<u8>),
    /// Send this many bytes of the pack, then close.
    CloseAfter(Vec<u8>, usize),
    /// Send this many bytes of the pack, then stall until the client goes away.
    StallAfter(Vec<u8>, usize),
    /// Answer the request line with an ERR pkt-line.
    Err(&'static str),
    /// Send the pack start, then a fatal side-band 3 message.
    Fatal(Vec<u8>),
    /// Send raw bytes instead of a ref advertisement.
    Raw(Vec<u8>),
}

/// A one-connection git:// server (v0, side-band-64k) that misbehaves as told.
fn git_server(head: &str, behaviour: Behaviour) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let head = head.to_string();
    let h = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _request = read_pkt(&mut s);
        let pack = match behaviour {
            Behaviour::Err(msg) => {
                let _ = s.write_all(&pkt(format!("ERR {msg}\n").as_bytes()));
                return;
            }
            Behaviour::Raw(bytes) => {
                let _ = s.write_all(&bytes);
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            Behaviour::Pack(ref p)
            | Behaviour::CloseAfter(ref p, _)
            | Behaviour::StallAfter(ref p, _)
            | Behaviour::Fatal(ref p) => p.clone(),
        };
        let mut adv = pkt(format!(
            "{head} HEAD\0side-band-64k ofs-delta agent=evil/1 symref=HEAD:refs/heads/main\n"
        )
        .as_bytes());
        adv.extend(pkt(format!("{head} refs/heads/main\n").as_bytes()));
        adv.extend(b"0000");
        s.write_all(&adv).unwrap();
        // Read the request up to "done".
        loop {
            match read_pkt(&mut s) {
                Some(p) if p == b"done\n" => break,
                Some(_) => {}
                None => return,
            }
        }
        s.write_all(&pkt(b"NAK\n")).unwrap();
        let limit = match behaviour {
            Behaviour::CloseAfter(_, n) | Behaviour::StallAfter(_, n) => n,
            Behaviour::Fatal(_) => 100,
            _ => pack.len(),
        };
        for chunk in pack[..limit.min(pack.len())].chunks(65515) {
            let mut payload = vec![1u8];
            payload.extend_from_slice(chunk);
            if s.write_all(&pkt(&payload)).is_err() {
                return;
            }
        }
        match behaviour {
            Behaviour::Pack(_) => {
                let _ = s.write_all(b"0000");
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
            }
            Behaviour::Fatal(_) => {
                let _ = s.write_all(&pkt(b"\x03fatal: the remote disk is on fire\n"));
                std::thread::sleep(Duration::from_millis(200));
            }
            Behaviour::StallAfter(..) => {
                // Hold the connection open without sending anything until the client leaves.
                let mut b = [0u8; 64];
                let _ = s.read(&mut b);
            }
            _ => {}
        }
    });
    (port, h)
}

fn fetch_from(port: u16, opts: FetchOptions) -> Error {
    let mut f = Fetch::new(
        Url::parse(&format!("git://127.0.0.1:{port}/evil.git")).unwrap(),
        opts,
    );
    match drive(&mut f, None).0 {
        Err(e) => e,
        Ok(o) => panic!("expected an error, got {o:?}"),
    }
}

#[test]
fn sanity_real_pack_is_accepted() {
    let rp = real_pack();
    let (port, h) = git_server(&rp.head, Behaviour::Pack(rp.pack.clone()));
    let mut f = Fetch::new(
        Url::parse(&format!("git://127.0.0.1:{port}/evil.git")).unwrap(),
        FetchOptions::default(),
    );
    let (r, _) = drive(&mut f, None);
    let unipi_git::Outcome::Fetched(snap) = r.unwrap() else {
        panic!()
    };
    assert_eq!(snap.files.len(), 2);
    assert_eq!(snap.commit.to_string(), rp.head);
    h.join().unwrap();
}

#[test]
fn corrupted_zlib_data() {
    let rp = real_pack();
    let (_, _, _, in_pack, offset) = rp.entries.iter().find(|e| e.2 == 300_000).unwrap().clone();
    let mut pack = rp.pack.clone();
    pack[(offset + in_pack / 2) as usize] ^= 0x40;
    let (port, h) = git_server(&rp.head, Behaviour::Pack(pack));
    let e = fetch_from(port, FetchOptions::default());
    assert!(
        e == Error::Zlib { offset }
            || matches!(e, Error::SizeMismatch { offset: o, .. } if o == offset),
        "{e:?}"
    );
    eprintln!("corrupted pack: {e}");
    h.join().unwrap();
}

#[test]
fn wrong_trailer() {
    let rp = real_pack();
    let mut pack = rp.pack.clone();
    let n = pack.len();
    pack[n - 3] ^= 1;
    let (port, h) = git_server(&rp.head, Behaviour::Pack(pack));
    let e = fetch_from(port, FetchOptions::default());
    assert_eq!(e, Error::PackChecksum);
    assert_eq!(e.to_string(), "pack trailer checksum mismatch");
    h.join().unwrap();
}

/// Appends a REF_DELTA entry (against the pack's big blob) and fixes count and trailer.
fn with_extra_deltas(rp: &RealPack, deltas: &[Vec<u8>]) -> Vec<u8> {
    use miniz_oxide::deflate::compress_to_vec_zlib;
    let base = rp.entries.iter().find(|e| e.2 == 300_000).unwrap();
    let base_id: Vec<u8> = (0..40)
        .step_by(2)
        .map(|i| u8::from_str_radix(&base.0[i..i + 2], 16).unwrap())
        .collect();
    let mut pack = rp.pack[..rp.pack.len() - 20].to_vec();
    let count = u32::from_be_bytes(pack[8..12].try_into().unwrap()) + deltas.len() as u32;
    pack[8..12].copy_from_slice(&count.to_be_bytes());
    for d in deltas {
        wire::write_entry_header(&mut pack, 7, d.len() as u64); // REF_DELTA
        pack.extend_from_slice(&base_id);
        pack.extend_from_slice(&compress_to_vec_zlib(d, 6));
    }
    pack.extend_from_slice(&[0; 20]);
    fix_trailer(&mut pack);
    pack
}

#[test]
fn delta_bombs() {
    let rp = real_pack();
    // A 10-byte delta claiming a 1 TiB result.
    let mut bomb = vec![];
    wire::write_delta_header(&mut bomb, 300_000, 1 << 40);
    bomb.push(0x80); // copy 64 KiB from offset 0
    let (port, h) = git_server(&rp.head, Behaviour::Pack(with_extra_deltas(&rp, &[bomb])));
    let e = fetch_from(port, FetchOptions::default());
    assert_eq!(
        e,
        Error::ObjectTooLarge {
            size: 1 << 40,
            limit: 64 << 20
        }
    );
    eprintln!("delta bomb: {e}");
    h.join().unwrap();

    // Many small deltas that each expand to 1 MiB: the inflated total limit stops them.
    let mut d = vec![];
    wire::write_delta_header(&mut d, 300_000, 16 * 0x10000);
    d.extend(std::iter::repeat_n(0x80, 16));
    let many: Vec<Vec<u8>> = (0..16).map(|_| d.clone()).collect();
    let (port, h) = git_server(&rp.head, Behaviour::Pack(with_extra_deltas(&rp, &many)));
    let limits = Limits {
        max_inflated_bytes: 8 << 20,
        ..Limits::default()
    };
    let e = fetch_from(
        port,
        FetchOptions {
            limits,
            ..FetchOptions::default()
        },
    );
    assert_eq!(e, Error::InflatedTooLarge { limit: 8 << 20 });
    h.join().unwrap();

    // A delta that copies outside its base.
    let mut bad = vec![];
    wire::write_delta_header(&mut bad, 300_000, 10);
    bad.extend_from_slice(&[0x80 | 0x0f | 0x10, 0xff, 0xff, 0xff, 0x00, 10]);
    let (port, h) = git_server(&rp.head, Behaviour::Pack(with_extra_deltas(&rp, &[bad])));
    let e = fetch_from(port, FetchOptions::default());
    assert!(
        matches!(
            e,
            Error::Delta {
                reason: "copy range outside the base",
                ..
            }
        ),
        "{e:?}"
    );
    h.join().unwrap();
}

#[test]
fn oversized_object_and_too_many_objects() {
    let rp = real_pack();
    let (port, h) = git_server(&rp.head, Behaviour::Pack(rp.pack.clone()));
    let limits = Limits {
        max_object_size: 100_000,
        ..Limits::default()
    };
    let e = fetch_from(
        port,
        FetchOptions {
            limits,
            ..FetchOptions::default()
        },
    );
    assert_eq!(
        e,
        Error::ObjectTooLarge {
            size: 300_000,
            limit: 100_000
        }
    );
    h.join().unwrap();
    let (port, h) = git_server(&rp.head, Behaviour::Pack(rp.pack.clone()));
    let limits = Limits {
        max_objects: 2,
        ..Limits::default()
    };
    let e = fetch_from(
        port,
        FetchOptions {
            limits,
            ..FetchOptions::default()
        },
    );
    assert!(matches!(e, Error::TooManyObjects { limit: 2, .. }), "{e:?}");
    h.join().unwrap();
}

#[test]
fn stall_mid_pack_ends_by_driver_timeout() {
    let rp = real_pack();
    let half = rp.pack.len() / 2;
    let (port, h) = git_server(&rp.head, Behaviour::StallAfter(rp.pack.clone(), half));
    let mut f = Fetch::new(
        Url::parse(&format!("git://127.0.0.1:{port}/evil.git")).unwrap(),
        FetchOptions::default(),
    );
    let start = Instant::now();
    let (r, _) = drive_with(
        &mut f,
        None,
        Duration::from_millis(500),
        Duration::from_secs(30),
    );
    assert_eq!(
        r,
        Err(Error::Timeout {
            phase: FetchPhase::ReceivingPack
        })
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(f.progress().pack_bytes > 0);
    assert_eq!(
        r.unwrap_err().to_string(),
        "timed out while receiving the pack"
    );
    drop(f); // the driver dropped the connection: the server sees EOF and ends
    h.join().unwrap();
}

#[test]
fn peer_closed_mid_pack() {
    let rp = real_pack();
    let (port, h) = git_server(
        &rp.head,
        Behaviour::CloseAfter(rp.pack.clone(), rp.pack.len() / 2),
    );
    let e = fetch_from(port, FetchOptions::default());
    assert_eq!(
        e,
        Error::ConnectionClosed {
            phase: FetchPhase::ReceivingPack
        }
    );
    assert_eq!(
        e.to_string(),
        "remote closed the connection while receiving the pack"
    );
    h.join().unwrap();
}

#[test]
fn err_line_and_fatal_sideband() {
    let (port, h) = git_server(&"1".repeat(40), Behaviour::Err("access denied: go away"));
    let e = fetch_from(port, FetchOptions::default());
    assert_eq!(e, Error::Remote("access denied: go away".into()));
    assert_eq!(e.to_string(), "remote: access denied: go away");
    h.join().unwrap();

    let rp = real_pack();
    let (port, h) = git_server(&rp.head, Behaviour::Fatal(rp.pack.clone()));
    let e = fetch_from(port, FetchOptions::default());
    assert_eq!(e, Error::Remote("fatal: the remote disk is on fire".into()));
    h.join().unwrap();
}

#[test]
fn malformed_framing() {
    let (port, h) = git_server("x", Behaviour::Raw(b"HTTP/1.1 200 OK\r\n\r\n".to_vec()));
    assert!(matches!(
        fetch_from(port, FetchOptions::default()),
        Error::PktLine(_)
    ));
    h.join().unwrap();
    let mut huge = b"ffff".to_vec();
    huge.extend(vec![b'a'; 70_000]);
    let (port, h) = git_server("x", Behaviour::Raw(huge));
    assert_eq!(
        fetch_from(port, FetchOptions::default()),
        Error::PktLineTooLong {
            len: 65535,
            limit: 65520
        }
    );
    h.join().unwrap();
    // A remote that closes right away.
    let (port, h) = git_server("x", Behaviour::Raw(vec![]));
    assert_eq!(
        fetch_from(port, FetchOptions::default()),
        Error::ConnectionClosed {
            phase: FetchPhase::Discovering
        }
    );
    h.join().unwrap();
}

/// A one-connection HTTP server answering every request with `response`.
fn http_server(response: Vec<u8>) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).unwrap_or(0) == 0 {
                return;
            }
            head.push(b[0]);
        }
        let _ = s.write_all(&response);
        std::thread::sleep(Duration::from_millis(100));
    });
    (port, h)
}

fn http_fetch(port: u16) -> Error {
    let mut f = Fetch::new(
        Url::parse(&format!("http://127.0.0.1:{port}/site.git")).unwrap(),
        FetchOptions::default(),
    );
    drive(&mut f, None).0.unwrap_err()
}

#[test]
fn http_errors() {
    let (port, h) = http_server(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\noops!".to_vec());
    let e = http_fetch(port);
    assert_eq!(
        e,
        Error::HttpStatus {
            status: 500,
            path: "/site.git/info/refs?service=git-upload-pack".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "remote: server error (HTTP 500 for /site.git/info/refs?service=git-upload-pack)"
    );
    h.join().unwrap();

    let (port, h) = http_server(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=x\r\nContent-Length: 0\r\n\r\n".to_vec());
    assert!(
        http_fetch(port)
            .to_string()
            .starts_with("remote: authentication required (HTTP 401")
    );
    h.join().unwrap();

    let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
    for _ in 0..1000 {
        big.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let (port, h) = http_server(big);
    assert_eq!(
        http_fetch(port),
        Error::Http(ResponseError::HeadTooLarge { limit: 16 << 10 })
    );
    h.join().unwrap();

    // A dumb server (or a web page) instead of a smart git server.
    let (port, h) = http_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\n<p/>".to_vec(),
    );
    assert!(matches!(http_fetch(port), Error::HttpContentType { .. }));
    h.join().unwrap();

    // Truncated chunked body.
    let (port, h) = http_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n001e# service=g".to_vec(),
    );
    assert!(matches!(http_fetch(port), Error::ConnectionClosed { .. }));
    h.join().unwrap();
}
