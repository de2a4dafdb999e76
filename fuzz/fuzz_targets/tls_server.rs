//! TLS server: arbitrary bytes as ClientHello and records into a server `TlsConn` (rustls
//! unbuffered API behind the project's buffering glue), pumped until it stalls.
//!
//! Input: `seed (4) | client bytes`.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rustls::ServerConfig;
use unipi::tls::{LoopClock, ServerTls, server_config};
use unipi_fuzz::{Chunks, take_u32};

fn config() -> Arc<ServerConfig> {
    static CFG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CFG.get_or_init(|| {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let clock = Arc::new(LoopClock::default());
        clock.set(1_700_000_000);
        server_config(
            key.cert.pem().as_bytes(),
            key.signing_key.serialize_pem().as_bytes(),
            clock,
            None,
            true,
        )
        .expect("server config")
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let (seed, mut input) = take_u32(data);
    let mut conn = ServerTls::server(config()).expect("server connection");
    let mut chunks = Chunks::new(seed, 2048);
    for _ in 0..10_000 {
        let cap = conn.receive_capacity();
        let n = chunks.next_len().min(input.len()).min(cap);
        conn.receive(&input[..n]);
        input = &input[n..];
        let r = conn.pump(b"HTTP/1.1 200 OK\r\n\r\n");
        let plain = conn.plaintext().len();
        conn.consume_plaintext(plain);
        let out = conn.output().len();
        conn.consume_output(out);
        if r.is_err() || conn.is_closed() || conn.error().is_some() {
            break;
        }
        if n == 0 && out == 0 && plain == 0 {
            break;
        }
    }
});
