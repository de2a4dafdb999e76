//! Serves the test files over HTTPS with ALPN `h2` on 127.0.0.1, for
//! pointing real clients at `unipi_h2` by hand:
//!
//!     cargo run -p unipi-h2 --example serve -- [SECONDS]
//!     nghttp -nv https://127.0.0.1:<port>/
//!
//! Prints the port, serves for SECONDS (default 60), then prints one line
//! per connection (close reason and counters) and exits.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

fn main() {
    let secs = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let server = support::TestServer::start(unipi_h2::Limits::default());
    println!("https://127.0.0.1:{}/ for {secs} s", server.port);
    std::thread::sleep(Duration::from_secs(secs));
    for r in server.reports(0, Duration::ZERO) {
        println!("{:?} {:?} served {:?}", r.reason, r.stats, r.served);
    }
}
