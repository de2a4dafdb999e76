//! HTTP request parsing and routing: arbitrary client bytes through `http::Connection`
//! (every role), with chunked input, partial output consumption, webhook and metrics
//! completion and timeouts; every access record must write as printable ASCII.
//!
//! Input: `flags (1) | seed (4) | request bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smoltcp::time::{Duration, Instant};
use unipi::http::{Connection, Event, HookOutcome, Role};
use unipi::observe::access::{AccessRecord, AccessSink};
use unipi_fuzz::{Chunks, http_config, site, take_u32};

/// Checks that every record's lines are printable ASCII (they go to syslog and the
/// console unchanged).
struct Printable(u64);

impl AccessSink for Printable {
    fn record(&mut self, r: &AccessRecord) {
        let line = format!("{} | {}", r.combined(self.0), r.console());
        assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)), "{line:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (seed, input) = take_u32(rest);
    let role = match flags & 3 {
        0 => Role::Site { secure: true },
        1 => Role::Site { secure: false },
        2 if seed & 1 == 1 => Role::Metrics,
        2 => Role::Redirect,
        _ => Role::Site { secure: true },
    };
    // flags & 3 == 3: the site is not available yet (503).
    let site = (flags & 3 != 3).then(site);
    let cfg = http_config(flags >> 2);
    let unix = [1_700_000_000u64, 0, 4_000_000_000][usize::from(seed as u8 % 3)];
    let mut now = Instant::from_secs(1);
    let mut conn = Connection::new(cfg, role, now);
    let mut chunks = Chunks::new(seed, 700);
    let mut pending = input;
    let mut head = Vec::new();
    let mut hooks = 0u32;
    let mut idle_rounds = 0;
    // Every round either takes input, produces output or advances time to a deadline; the
    // bound turns a livelock into a finding instead of a hang.
    for _ in 0..100_000 {
        let offer = chunks.next_len().min(pending.len());
        let taken = conn.receive(&pending[..offer], now);
        assert!(taken <= offer);
        pending = &pending[taken..];
        while let Some(event) = conn.poll(site, now, unix) {
            match event {
                Event::HookRequested => {
                    assert!(conn.awaiting_hook());
                    hooks += 1;
                    let outcome = match hooks % 3 {
                        0 => HookOutcome::Unchanged,
                        1 => HookOutcome::Updated {
                            commit: "89abcdef0123456789abcdef0123456789abcdef".into(),
                        },
                        _ => HookOutcome::Failed {
                            reason: "remote said \"no\"\r\n".into(),
                        },
                    };
                    conn.complete_hook(outcome, now, unix);
                }
                Event::MetricsRequested => {
                    assert!(conn.awaiting_hook());
                    conn.complete_metrics("# HELP x y\n# TYPE x gauge\nx 1\n".into(), now, unix);
                }
            }
        }
        let mut progressed = taken > 0;
        let mut budget = chunks.next_len() * 40;
        while !conn.output().is_empty() && budget > 0 {
            let chunk = conn.output();
            let n = chunk.len().min(budget);
            let keep = n.min(16 - head.len().min(16));
            head.extend_from_slice(&chunk[..keep]);
            conn.consume(n);
            budget -= n;
            progressed = true;
        }
        conn.take_access(&mut Printable(unix));
        if conn.wants_close() {
            break;
        }
        if progressed {
            idle_rounds = 0;
            now += Duration::from_millis(u64::from(seed >> 24));
            continue;
        }
        idle_rounds += 1;
        if idle_rounds > 3 {
            // Nothing moves without time: jump to the next deadline.
            match conn.deadline() {
                Some(d) => {
                    now = now.max(d);
                    conn.on_timeout(now);
                }
                None => break,
            }
        }
    }
    if !head.is_empty() && !head.starts_with(b"HTTP/1.1 ") {
        panic!("output does not start with a status line: {head:?}");
    }
});
