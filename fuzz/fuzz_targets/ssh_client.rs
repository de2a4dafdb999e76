//! The SSH client (`unipi_ssh::SshClient` over sunset) fed arbitrary server bytes, in
//! chunks, with the application writing to stdin once the command runs, until it stalls,
//! fails or closes.
//!
//! cargo-fuzz builds with `--cfg fuzzing`, under which sunset skips decryption, MAC and
//! signature checks (a signature starting with `bad` fails), so inputs can reach
//! authentication and the channel. In framed mode the harness writes the version line and
//! wraps each payload into an SSH binary packet (cleartext framing, then after a NEWKEYS
//! payload chacha20-poly1305 framing with a dummy tag), so mutations keep the framing.
//!
//! Input: `flags (1) | seed (4) | body`. Flags bit 0: framed (body is `len (2, LE) |
//! payload` records), else raw stream; bit 1: the TCP connection ends after the body;
//! bit 2: pin a host key (then the host key check fails unless the input's key matches
//! the fixed pin).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_fuzz::{Chunks, take_u32};
use unipi_ssh::{Config, Event, Fingerprint, Limits, SshClient, parse_ssh_key};

const NEWKEYS: u8 = 21;

/// Frames `payload` as an SSH binary packet: cleartext (block 8, no MAC) or, after
/// NEWKEYS, chacha20-poly1305 (length not counted in the block, 16-byte tag).
fn frame(out: &mut Vec<u8>, payload: &[u8], aead: bool) {
    let counted = if aead {
        1 + payload.len()
    } else {
        4 + 1 + payload.len()
    };
    let mut pad = 8 - counted % 8;
    if pad < 4 {
        pad += 8;
    }
    let packet_len = 1 + payload.len() + pad;
    out.extend_from_slice(&(packet_len as u32).to_be_bytes());
    out.push(pad as u8);
    out.extend_from_slice(payload);
    out.extend(std::iter::repeat_n(0u8, pad));
    if aead {
        out.extend_from_slice(&[0u8; 16]);
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = b"SSH-2.0-OpenSSH_9.2\r\n".to_vec();
    let mut aead = false;
    let mut rest = body;
    while rest.len() >= 2 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        let take = len.min(rest.len() - 2);
        let payload = &rest[2..2 + take];
        frame(&mut out, payload, aead);
        if payload.first() == Some(&NEWKEYS) {
            aead = true;
        }
        rest = &rest[2 + take..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (seed, body) = take_u32(rest);
    let stream = if flags & 1 == 1 {
        framed(body)
    } else {
        body.to_vec()
    };
    let config = Config {
        user: "git".into(),
        key: parse_ssh_key("ed25519:nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap(),
        host_key_pin: (flags & 4 != 0).then(|| Fingerprint::from_bytes([7; 32])),
        command: "git-upload-pack '/site.git'".into(),
        env: vec![("GIT_PROTOCOL".into(), "version=2".into())],
        limits: Limits {
            max_stdout_buffer: 4096,
            max_handshake_bytes: 64 << 10,
            ..Limits::default()
        },
    };
    let mut client = SshClient::new(config).expect("valid config");
    let mut chunks = Chunks::new(seed, 4096);
    let mut input = &stream[..];
    let mut closed = false;
    let mut wrote = false;
    for _ in 0..20_000 {
        let out = client.output().len();
        client.consume_output(out);
        let mut progressed = out > 0;
        match client.poll() {
            Ok(Event::Idle) => {}
            Ok(Event::Closed) | Err(_) => break,
            Ok(Event::Ready) => progressed = true,
            Ok(_) => progressed = true,
        }
        let n = client.stdout().len();
        client.consume_stdout(n);
        if !wrote && client.phase() == unipi_ssh::Phase::Running {
            wrote = client.write_stdin(b"0014command=ls-refs\n0000").is_ok();
        }
        let len = chunks.next_len().min(input.len());
        let taken = client.receive(&input[..len]);
        input = &input[taken..];
        progressed |= taken > 0 || n > 0;
        if !progressed {
            if flags & 2 != 0 && !closed {
                closed = true;
                client.peer_closed();
                continue;
            }
            break;
        }
    }
    if let Err(e) = client.poll() {
        assert!(!e.to_string().is_empty());
    }
});
