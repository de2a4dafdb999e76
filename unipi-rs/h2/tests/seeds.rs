//! Writes the seed corpora of the `h2_*` fuzz targets (fuzz/seeds/) from
//! real traffic: the client plaintext of curl, nghttp, h2load and the
//! crafted Python sequences against the test server, header blocks cut out
//! of that traffic, and RFC 7541 Appendix C. Not part of the normal run:
//!
//!     cargo test -p unipi-h2 --test seeds -- --ignored

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::TestServer;
use unipi_h2::Limits;

/// Largest seed kept (libFuzzer's default max_len is 4096 for new inputs;
/// longer seeds still run).
const SEED_MAX: usize = 4 * 1024;

fn seeds_dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// The header blocks (HEADERS + CONTINUATION payloads, padding and
/// priority removed) in a client byte stream.
fn header_blocks(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    b = b
        .strip_prefix(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".as_slice())
        .unwrap_or(b);
    let mut current: Option<Vec<u8>> = None;
    while b.len() >= 9 {
        let len = (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
        let (kind, flags) = (b[3], b[4]);
        if b.len() < 9 + len {
            break;
        }
        let mut p = &b[9..9 + len];
        b = &b[9 + len..];
        if kind == 1 {
            if flags & 0x8 != 0 && !p.is_empty() {
                let pad = usize::from(p[0]);
                p = &p[1..p.len().saturating_sub(pad).max(1)];
            }
            if flags & 0x20 != 0 && p.len() >= 5 {
                p = &p[5..];
            }
            current = Some(p.to_vec());
        } else if kind == 9 {
            if let Some(c) = current.as_mut() {
                c.extend_from_slice(p);
            }
        } else {
            continue;
        }
        if flags & 0x4 != 0 {
            blocks.extend(current.take());
        }
    }
    blocks
}

fn length_prefixed(flags: u8, blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![flags];
    for b in blocks {
        let n = b.len().min(0xffff);
        v.extend_from_slice(&(n as u16).to_le_bytes());
        v.extend_from_slice(&b[..n]);
    }
    v
}

fn peer(prog: &str, args: &[&str]) {
    let status = Command::new("timeout")
        .arg("60")
        .arg(prog)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run peer");
    assert!(status.code().is_some(), "{prog} did not finish");
}

#[test]
#[ignore = "writes fuzz/seeds/h2_*; run by hand"]
fn write_fuzz_seeds() {
    let rec = std::env::temp_dir().join(format!("unipi-h2-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&rec);
    std::fs::create_dir_all(&rec).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2attack.py");
    let limits = Limits {
        stall_timeout_ms: 500,
        ..Limits::default()
    };
    let mut names = Vec::new();
    let mut record = |name: &str, f: &dyn Fn(&TestServer)| {
        let dir = rec.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let server = TestServer::start_recording(limits, Some(dir.clone()));
        f(&server);
        server.reports(1, Duration::from_secs(10));
        drop(server);
        names.push((String::from(name), dir.join("0.bin")));
    };
    record("curl", &|s| {
        peer(
            "curl",
            &[
                "--http2",
                "-k",
                "-s",
                "-o",
                "/dev/null",
                &s.url("/"),
                "-o",
                "/dev/null",
                &s.url("/style.css"),
                "-I",
                "-o",
                "/dev/null",
                &s.url("/missing"),
            ],
        );
    });
    record("curl-post", &|s| {
        peer(
            "curl",
            &[
                "--http2",
                "-k",
                "-s",
                "-o",
                "/dev/null",
                "--data-binary",
                "hello",
                &s.url("/hook"),
            ],
        );
    });
    record("nghttp", &|s| {
        peer(
            "nghttp",
            &["-n", &s.url("/"), &s.url("/style.css"), &s.url("/nope?q=1")],
        );
    });
    record("nghttp-small-window", &|s| {
        peer(
            "nghttp",
            &["-n", "-w", "10", "-W", "16", &s.url("/big.bin")],
        );
    });
    record("h2load", &|s| {
        peer("h2load", &["-n", "20", "-c", "1", "-m", "5", &s.url("/")]);
    });
    for case in [
        "rapid_reset",
        "continuation_flood",
        "hpack_bomb",
        "big_headers",
        "settings_flood",
        "ping_flood",
        "empty_data_flood",
        "zero_window",
        "hook_body",
        "decreasing_stream",
        "window_overflow",
    ] {
        record(case, &|s| {
            peer("python3", &[script, case, &s.port.to_string()])
        });
    }

    // h2_connection: flags 0x00 (default limits, no preface added), seed 1.
    let conn = seeds_dir("h2_connection");
    let mut blocks = Vec::new();
    for (name, path) in &names {
        let Ok(mut bytes) = std::fs::read(path) else {
            panic!("no traffic recorded for {name}");
        };
        if ["curl", "curl-post", "nghttp", "h2load"].contains(&name.as_str()) {
            blocks.push(header_blocks(&bytes));
        }
        bytes.truncate(SEED_MAX);
        let mut seed = vec![0u8, 1, 0, 0, 0];
        seed.extend_from_slice(&bytes);
        std::fs::write(conn.join(name), seed).unwrap();
    }

    // h2_hpack: blocks of real clients (table 4096, bound 64 KiB), and
    // RFC 7541 C.3, C.4 (requests) and C.5, C.6 (responses, table 256).
    let hpack = seeds_dir("h2_hpack");
    for (i, b) in blocks.iter().enumerate() {
        std::fs::write(hpack.join(format!("client-{i}")), length_prefixed(0x0b, b)).unwrap();
    }
    let c3 = [
        "828684410f7777772e6578616d706c652e636f6d",
        "828684be58086e6f2d6361636865",
        "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
    ];
    let c4 = [
        "828684418cf1e3c2e5f23a6ba0ab90f4ff",
        "828684be5886a8eb10649cbf",
        "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
    ];
    let c6 = [
        "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
        "4883640effc1c0bf",
        "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
    ];
    let blocks = |v: &[&str]| v.iter().map(|h| hex(h)).collect::<Vec<_>>();
    std::fs::write(
        hpack.join("rfc7541-c3"),
        length_prefixed(0x0b, &blocks(&c3)),
    )
    .unwrap();
    std::fs::write(
        hpack.join("rfc7541-c4"),
        length_prefixed(0x0b, &blocks(&c4)),
    )
    .unwrap();
    let mut c6b = vec![hex("3fe101")]; // size update to 256, required first
    c6b.extend(blocks(&c6));
    std::fs::write(hpack.join("rfc7541-c6"), length_prefixed(0x0a, &c6b)).unwrap();
    std::fs::write(
        hpack.join("huffman-www.example.com"),
        hex("0bf1e3c2e5f23a6ba0ab90f4ff"),
    )
    .unwrap();

    // h2_frames: records `kind flags stream len payload`.
    let frames = seeds_dir("h2_frames");
    let get = |stream: u8, flags: u8| vec![0x80, flags, stream, 4, b'i', b'n', b'd', b'x'];
    let post = |stream: u8| vec![0xc0, 0, stream, 4, b'h', b'o', b'o', b'k'];
    let raw = |kind: u8, flags: u8, stream: u8, payload: &[u8]| {
        let mut v = vec![kind, flags, stream, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    };
    let head = |settings: &[(u16, u32)]| {
        let mut v = vec![0u8, 1, 0, 0, 0, settings.len() as u8];
        for (id, val) in settings {
            v.extend_from_slice(&id.to_be_bytes());
            v.extend_from_slice(&val.to_be_bytes());
        }
        v
    };
    let ack = raw(4, 1, 0, &[]);
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("get", vec![head(&[]), ack.clone(), get(1, 5), get(3, 5)]),
        (
            "post-body",
            vec![
                head(&[]),
                ack.clone(),
                post(1),
                raw(0, 0, 1, b"hello"),
                raw(0, 1, 1, b""),
            ],
        ),
        (
            "small-window",
            vec![
                head(&[(4, 10)]),
                ack.clone(),
                get(1, 5),
                raw(8, 0, 1, &[0, 0, 0, 50]),
                raw(8, 0, 0, &[0, 0, 1, 0]),
            ],
        ),
        (
            "reset",
            vec![
                head(&[]),
                ack.clone(),
                get(1, 5),
                raw(3, 0, 1, &[0, 0, 0, 8]),
                get(3, 5),
            ],
        ),
        (
            "ping-goaway",
            vec![
                head(&[]),
                ack.clone(),
                raw(6, 0, 0, b"12345678"),
                raw(7, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0]),
            ],
        ),
        (
            "continuation",
            vec![head(&[]), ack.clone(), get(1, 1), raw(9, 4, 1, &[])],
        ),
        (
            "priority",
            vec![
                head(&[]),
                ack.clone(),
                raw(2, 0, 1, &[0, 0, 0, 3, 16]),
                get(1, 0x25),
            ],
        ),
        (
            "trailers",
            vec![
                head(&[]),
                ack.clone(),
                post(1),
                raw(0, 0, 1, b"x"),
                raw(1, 5, 1, &[0x40, 1, b'a', 1, b'b']),
            ],
        ),
    ];
    for (name, recs) in cases {
        std::fs::write(frames.join(name), recs.concat()).unwrap();
    }
    let _ = std::fs::remove_dir_all(&rec);
}
