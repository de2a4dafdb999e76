//! Everything observability parses or writes from outside input: the `--syslog` value
//! (`SyslogTarget::parse`, with a display round trip), `--syslog-facility`, RFC 5424
//! messages of arbitrary text at any size limit, access-record fields, metric label values,
//! and the syslog queue's bounds. (Certificates are read by `unipi_acme::CertInfo`, fuzzed
//! by `acme_certificate`.)
//!
//! Input: `selector (1) | data`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smoltcp::time::{Duration, Instant};
use unipi::observe::access::{AccessRecord, AccessRequest, Delivery};
use unipi::observe::metrics::{Exposition, Kind};
use unipi::observe::syslog::message::{self, Facility, Header, Severity, TRUNCATED};
use unipi::observe::syslog::queue::{Queue, QueueLimits};
use unipi::observe::syslog::target::SyslogTarget;

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => {
            let Ok(s) = core::str::from_utf8(data) else {
                return;
            };
            if let Ok(t) = SyslogTarget::parse(s) {
                assert_ne!(t.port, 0);
                let again = SyslogTarget::parse(&t.to_string())
                    .expect("a target displays as a valid value");
                assert_eq!(again, t);
            }
            let _ = Facility::parse(s).map(Facility::code);
        }
        1 => {
            // Selector 1 once read certificates; now another message size.
            let h = Header {
                facility: Facility::Local(0),
                severity: Severity::Informational,
                unix: 0,
                hostname: message::hostname_field(""),
                msgid: "log",
            };
            let mut out = Vec::new();
            let _ = message::format(&h, format_args!("{}", text(data)), 64, &mut out);
            assert!(out.len() <= 64);
        }
        2 => {
            // max (2 bytes) | unix (4 bytes) | message text
            if data.len() < 6 {
                return;
            }
            let max = usize::from(u16::from_le_bytes([data[0], data[1]])) % 4096 + 64;
            let unix = u64::from(u32::from_le_bytes([data[2], data[3], data[4], data[5]])) * 4;
            let msg = text(&data[6..]);
            let h = Header {
                facility: Facility::Local(data[0] % 8),
                severity: Severity::Warning,
                unix,
                hostname: message::hostname_field(msg.split(' ').next().unwrap_or("")),
                msgid: "log",
            };
            let mut out = Vec::new();
            let cut = message::format(&h, format_args!("{msg}"), max, &mut out);
            assert!(out.len() <= max, "{} > {max}", out.len());
            let s = core::str::from_utf8(&out).expect("messages are UTF-8");
            assert!(!s.chars().any(char::is_control), "{s:?}");
            if cut {
                assert!(s.ends_with(TRUNCATED), "{s:?}");
            }
        }
        3 => {
            // Four fields separated by 0xff: method, path, referer, user agent.
            let mut f = data.split(|&b| b == 0xff);
            let method = text(f.next().unwrap_or(b""));
            let path = text(f.next().unwrap_or(b""));
            let mut q = AccessRequest::new(None, Instant::ZERO);
            q.set_request(&method, &path, "HTTP/1.1");
            q.set_fields(f.next(), f.next());
            let r = AccessRecord {
                request: q,
                status: 200,
                bytes: data.len() as u64,
                body_bytes: 0,
                duration: Duration::from_millis(data.len() as u64),
                delivery: Delivery::Aborted,
            };
            let line = format!("{} {}", r.combined(u64::MAX), r.console());
            assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)), "{line:?}");
            assert_eq!(line.matches('"').count(), 6, "{line}");
        }
        4 => {
            let v = text(data);
            let mut e = Exposition::default();
            e.family("unipi_x", Kind::Gauge, &v)
                .sample("unipi_x", &[("v", &v)], 1);
            let out = e.finish();
            assert_eq!(out.lines().count(), 3, "{out}");
        }
        _ => {
            // Pushes and pops: a byte below 0x80 pushes that many bytes, others pop.
            let mut q = Queue::new(QueueLimits {
                messages: 8,
                bytes: 300,
            });
            let mut model = std::collections::VecDeque::new();
            let mut out = Vec::new();
            for (i, &b) in data.iter().enumerate() {
                if b < 0x80 {
                    let msg = vec![i as u8; usize::from(b)];
                    let fits = model.len() < 8
                        && model.iter().map(Vec::len).sum::<usize>() + msg.len() <= 300;
                    assert_eq!(q.push(&msg), fits);
                    if fits {
                        model.push_back(msg);
                    }
                } else {
                    assert_eq!(q.front(&mut out), !model.is_empty());
                    if let Some(m) = model.pop_front() {
                        assert_eq!(out, m);
                    }
                    q.pop();
                }
                assert_eq!(q.len(), model.len());
            }
        }
    }
});
