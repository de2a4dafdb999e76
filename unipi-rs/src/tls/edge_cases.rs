//! Crafted ClientHellos and records, against our [`ServerTls`] and against
//! stock rustls (its buffered `ServerConnection`, same version, same
//! configuration), so that every answer we give that differs from what a
//! TLS test suite expects is shown to be rustls' own (docs/tls.md).

use alloc::vec;
use alloc::vec::Vec;
use std::io::Cursor;

use super::test_pki::{make as test_pki, now};
use super::{LoopClock, ServerTls, server_config};
use alloc::sync::Arc;

const HANDSHAKE: u8 = 22;
const ALERT: u8 = 21;
const CCS: u8 = 20;

fn ext(ty: u16, body: &[u8]) -> Vec<u8> {
    let mut e = ty.to_be_bytes().to_vec();
    e.extend_from_slice(&(body.len() as u16).to_be_bytes());
    e.extend_from_slice(body);
    e
}

fn list16(items: &[u16]) -> Vec<u8> {
    let mut v = ((items.len() * 2) as u16).to_be_bytes().to_vec();
    for i in items {
        v.extend_from_slice(&i.to_be_bytes());
    }
    v
}

/// A TLS 1.3 ClientHello (X25519 key share) with `pad` bytes of padding.
fn client_hello(pad: usize, sigalgs: &[u16]) -> Vec<u8> {
    let mut exts = ext(43, &[2, 3, 4]);
    exts.extend(ext(10, &list16(&[0x001d])));
    let mut ks = vec![0x00, 0x1d, 0, 32];
    ks.extend_from_slice(&[7; 32]);
    let mut ks_ext = (ks.len() as u16).to_be_bytes().to_vec();
    ks_ext.extend(ks);
    exts.extend(ext(51, &ks_ext));
    exts.extend(ext(13, &list16(sigalgs)));
    if pad > 0 {
        exts.extend(ext(21, &vec![0; pad]));
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x42; 32]);
    body.push(32);
    body.extend_from_slice(&[0x24; 32]);
    body.extend(list16(&[0x1301, 0x1302, 0x1303]));
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend(exts);
    handshake(1, &body)
}

fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

/// `msg` in records of type `ty` of at most `size` bytes each.
fn records(ty: u8, msg: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for frag in msg.chunks(size) {
        out.extend_from_slice(&[ty, 3, 1]);
        out.extend_from_slice(&(frag.len() as u16).to_be_bytes());
        out.extend_from_slice(frag);
    }
    out
}

/// What a server answered: the content types of its records, and the
/// plaintext alert if one came.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    records: Vec<u8>,
    alert: Option<u8>,
}

impl Answer {
    fn of(wire: &[u8]) -> Answer {
        let (mut records, mut alert, mut i) = (Vec::new(), None, 0);
        while i + 5 <= wire.len() {
            let len = usize::from(u16::from_be_bytes([wire[i + 3], wire[i + 4]]));
            records.push(wire[i]);
            if wire[i] == ALERT && len == 2 && i + 7 <= wire.len() {
                alert = Some(wire[i + 6]);
            }
            i += 5 + len;
        }
        Answer { records, alert }
    }

    fn server_hello(&self) -> bool {
        self.records.first() == Some(&HANDSHAKE)
    }
}

fn config() -> Arc<rustls::ServerConfig> {
    let (chain, key, _) = test_pki();
    let clock = Arc::new(LoopClock::default());
    clock.set(now());
    server_config(&chain, &key, clock, None).unwrap()
}

/// Our session, fed the way the transport feeds it.
fn ours(cfg: &Arc<rustls::ServerConfig>, input: &[u8]) -> Answer {
    let mut s = ServerTls::server(cfg.clone()).unwrap();
    let mut out = Vec::new();
    let mut off = 0;
    for _ in 0..64 {
        let n = (input.len() - off).min(s.receive_capacity());
        s.receive(&input[off..off + n]);
        off += n;
        let r = s.pump(&[]);
        out.extend_from_slice(s.output());
        let sent = s.output().len();
        s.consume_output(sent);
        if r.is_err() || off == input.len() && n == 0 {
            break;
        }
    }
    Answer::of(&out)
}

/// Stock rustls, buffered API.
fn stock(cfg: &Arc<rustls::ServerConfig>, input: &[u8]) -> Answer {
    let mut c = rustls::ServerConnection::new(cfg.clone()).unwrap();
    let mut cursor = Cursor::new(input);
    let mut out = Vec::new();
    for _ in 0..64 {
        let n = c.read_tls(&mut cursor).unwrap_or(0);
        let r = c.process_new_packets();
        while c.wants_write() {
            c.write_tls(&mut out).unwrap();
        }
        if r.is_err() || n == 0 {
            break;
        }
    }
    Answer::of(&out)
}

const SIGALGS: &[u16] = &[0x0403, 0x0804, 0x0401];
const UNEXPECTED_MESSAGE: u8 = 10;
const DECODE_ERROR: u8 = 50;

#[test]
fn large_client_hellos_are_answered() {
    let cfg = config();
    for size in [16 * 1024, 37 * 1024, 0xffff] {
        let base = client_hello(0, SIGALGS).len();
        let ch = client_hello(size - base - 4, SIGALGS);
        assert_eq!(ch.len(), size);
        let a = ours(&cfg, &records(HANDSHAKE, &ch, 16384));
        assert!(a.server_hello(), "{size}: {a:?}");
        let small = ours(&cfg, &records(HANDSHAKE, &ch, 1000));
        assert!(small.server_hello(), "{size} in small records: {small:?}");
    }
}

#[test]
fn crafted_records_get_the_alert() {
    let cfg = config();
    let ch = client_hello(3000, SIGALGS);
    let mut too_large = handshake(1, &vec![0; 70_000]);
    too_large.truncate(70_004);
    let mut ccs_interleaved = records(HANDSHAKE, &ch[..1000], 16384);
    ccs_interleaved.extend(records(CCS, &[1], 16384));
    ccs_interleaved.extend(records(HANDSHAKE, &ch[1000..], 16384));
    let mut alert_interleaved = records(HANDSHAKE, &ch[..1000], 16384);
    alert_interleaved.extend(records(ALERT, &[2, 40], 16384));
    alert_interleaved.extend(records(HANDSHAKE, &ch[1000..], 16384));
    let mut empty_first = vec![HANDSHAKE, 3, 1, 0, 0];
    empty_first.extend(records(HANDSHAKE, &ch, 16384));
    let truncated = {
        let inner = &ch[4..ch.len() - 10];
        records(HANDSHAKE, &handshake(1, inner), 16384)
    };
    // (case, input, our alert, what stock rustls sends)
    let cases: [(&str, Vec<u8>, u8, Option<u8>); 5] = [
        ("handshake message over 64 KiB", records(HANDSHAKE, &too_large, 16384), DECODE_ERROR, None),
        ("CCS inside a fragmented ClientHello", ccs_interleaved, UNEXPECTED_MESSAGE, None),
        ("alert inside a fragmented ClientHello", alert_interleaved, UNEXPECTED_MESSAGE, None),
        ("zero-length handshake record", empty_first, DECODE_ERROR, Some(DECODE_ERROR)),
        ("truncated ClientHello", truncated, DECODE_ERROR, Some(DECODE_ERROR)),
    ];
    for (name, input, alert, rustls_alert) in cases {
        let got = ours(&cfg, &input);
        let theirs = stock(&cfg, &input);
        std::println!("{name}: ours {got:?}, stock rustls {theirs:?}");
        assert_eq!(got.alert, Some(alert), "{name}");
        assert_eq!(theirs.alert, rustls_alert, "{name}: stock rustls changed");
    }
}

#[test]
fn no_common_signature_scheme_ends_with_an_alert_after_server_hello() {
    // rustls checks the signature schemes only when it signs the
    // CertificateVerify, after its ServerHello: the handshake_failure alert
    // then goes out encrypted (outer type 23), behind the flight.
    let cfg = config();
    let input = records(HANDSHAKE, &client_hello(0, &[0x0201, 0x0203]), 16384);
    let got = ours(&cfg, &input);
    let theirs = stock(&cfg, &input);
    assert!(got.server_hello(), "{got:?}");
    assert_eq!(got.records, theirs.records, "the same records as stock rustls");
    assert!(got.records.len() >= 2, "the alert follows the ServerHello: {got:?}");
}
