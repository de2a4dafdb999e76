//! The whole git client: a `Fetch` (git:// or smart HTTP, protocol v2 or v0) driven with
//! arbitrary server bytes after `connected()` — advertisement, ls-refs, negotiation, pack,
//! HTTP framing (chunked, redirects, keep-alive), incremental pulls (thin packs against a
//! base, the fall-back to a full fetch) and the final tree walk.
//!
//! Input: `flags (1) | seed (4) | server bytes`; the marker `\0\0CLOSE\0\0` in the server
//! bytes makes the server close the connection there (the driver reconnects when asked).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_fuzz::{Chunks, take_u32};
use unipi_git::{Fetch, FetchOptions, Io, ObjectId, ProtocolChoice, Url};

const CLOSE: &[u8] = b"\0\0CLOSE\0\0";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (seed, server) = take_u32(rest);
    let url = match flags & 3 {
        0 => "git://192.168.254.2/site.git",
        1 => "git://192.168.254.2:9418/site.git#main",
        2 => "http://git.example/site.git",
        _ => "https://git.example/repo#gh-pages",
    };
    let mut opts = FetchOptions {
        protocol: match (flags >> 2) & 3 {
            1 => ProtocolChoice::V2,
            2 => ProtocolChoice::V0,
            _ => ProtocolChoice::Auto,
        },
        limits: unipi_git::fuzzing::small_limits(),
        remote_progress: flags & 16 != 0,
        ..FetchOptions::default()
    };
    if flags & 32 != 0 {
        opts.current = ObjectId::from_hex(b"0123456789abcdef0123456789abcdef01234567");
    }
    if flags & 64 != 0 {
        // An incremental pull: have/shallow for the base, thin packs against it.
        opts.base = Some(unipi_git::fuzzing::thin_base());
    }
    let mut fetch = Fetch::new(Url::parse(url).expect("fixture URL"), opts);
    // Server bytes per connection, in order.
    let mut streams = Vec::new();
    let mut rest = server;
    while let Some(i) = rest.windows(CLOSE.len()).position(|w| w == CLOSE) {
        streams.push(&rest[..i]);
        rest = &rest[i + CLOSE.len()..];
    }
    streams.push(rest);
    let mut streams = streams.into_iter();
    let mut current: Option<&[u8]> = None;
    let mut chunks = Chunks::new(seed, 1500);
    for _ in 0..1_000_000 {
        match fetch.poll() {
            Io::Connect { .. } | Io::ConnectSsh(_) => {
                current = Some(streams.next().unwrap_or(&[]));
                fetch.connected();
            }
            Io::Send(bytes) => {
                let n = chunks.next_len().min(bytes.len());
                fetch.sent(n);
            }
            Io::Receive => match current.as_mut() {
                Some(s) if !s.is_empty() => {
                    let n = chunks.next_len().min(s.len());
                    fetch.received(&s[..n]);
                    *s = &s[n..];
                }
                Some(_) => {
                    current = None;
                    fetch.peer_closed();
                }
                None => fetch.transport_error("no connection"),
            },
            Io::Close => current = None,
            Io::Done(result) => {
                if let Ok(unipi_git::Outcome::Fetched(snap)) = result {
                    for w in snap.files.windows(2) {
                        assert!(w[0].path < w[1].path);
                    }
                }
                return;
            }
        }
    }
    panic!("the fetch neither finished nor failed");
});
