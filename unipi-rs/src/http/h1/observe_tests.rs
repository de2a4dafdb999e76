//! observe: what HTTP/1.1 gives the access log and the metrics port.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, Ipv4Address};

use super::Connection;
use crate::http::{Event, HookOutcome, HttpConfig, Role};
use crate::observe::access::{AccessRecord, Delivery};
use crate::site::{Body, Site, SiteBuilder, SiteLimits, SiteMeta, git_blob_id};

const UNIX: u64 = 1_800_000_000;

fn site() -> Site {
    let mut b = SiteBuilder::new(SiteLimits::default());
    b.add_file(
        "a.txt",
        Body::Static(b"0123456789"),
        git_blob_id(b"0123456789"),
        0,
        false,
    )
    .unwrap();
    b.finish(SiteMeta::default()).unwrap()
}

/// Feeds `input`, answers events (metrics with `exposition`), drains the
/// output (at most `limit` bytes); returns (output, events, records).
fn run(
    role: Role,
    input: &[u8],
    limit: usize,
    exposition: &str,
) -> (String, Vec<Event>, Vec<AccessRecord>, Connection) {
    let site = site();
    let now = Instant::from_millis(10);
    let mut c = Connection::new(Arc::new(HttpConfig::default()), role, Instant::ZERO);
    c.set_peer(Some(IpAddress::Ipv4(Ipv4Address::new(10, 0, 2, 2))));
    assert_eq!(c.receive(input, now), input.len());
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut records = Vec::new();
    for _ in 0..10 {
        while let Some(e) = c.poll(Some(&site), now, UNIX) {
            events.push(e);
            match e {
                Event::MetricsRequested => c.complete_metrics(exposition.into(), now, UNIX),
                Event::HookRequested => c.complete_hook(HookOutcome::Unchanged, now, UNIX),
            }
        }
        while out.len() < limit && !c.output().is_empty() {
            let chunk = c.output();
            let n = chunk.len().min(limit - out.len());
            out.extend_from_slice(&chunk[..n]);
            c.consume(n);
        }
        c.take_access(&mut records);
    }
    (String::from_utf8(out).unwrap(), events, records, c)
}

#[test]
fn records_carry_the_request_and_the_bytes_sent() {
    let (out, _, records, _) = run(
        Role::Site { secure: true },
        b"GET /a.txt?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: t/1\r\nReferer: https://r/\r\n\r\n\
          HEAD /a.txt HTTP/1.0\r\n\r\n",
        usize::MAX,
        "",
    );
    assert_eq!(records.len(), 2, "{out}");
    let (get, head) = (&records[0], &records[1]);
    assert_eq!(
        (
            get.request.method(),
            get.request.path(),
            get.request.protocol()
        ),
        ("GET", "/a.txt", "HTTP/1.1")
    );
    assert_eq!(
        (get.request.user_agent(), get.request.referer()),
        ("t/1", "https://r/")
    );
    assert_eq!(
        get.request.peer,
        Some(IpAddress::Ipv4(Ipv4Address::new(10, 0, 2, 2)))
    );
    assert_eq!(
        (get.status, get.body_bytes, get.delivery),
        (200, 10, Delivery::Complete)
    );
    assert_eq!((head.request.protocol(), head.body_bytes), ("HTTP/1.0", 0));
    assert_eq!(get.bytes + head.bytes, out.len() as u64);
}

#[test]
fn an_aborted_response_records_what_was_sent() {
    let (_, _, records, mut c) = run(
        Role::Site { secure: true },
        b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n",
        20,
        "",
    );
    assert!(records.is_empty());
    c.abort(Instant::from_millis(30));
    let mut records = Vec::new();
    c.take_access(&mut records);
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].bytes, records[0].body_bytes), (20, 0));
    assert_eq!(records[0].delivery, Delivery::Aborted);
}

#[test]
fn the_metrics_role_serves_only_metrics() {
    let (out, events, records, _) = run(
        Role::Metrics,
        b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n\
          POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n\
          GET /hook HTTP/1.1\r\nHost: h\r\n\r\n",
        usize::MAX,
        "m 1\n",
    );
    assert_eq!(events, [Event::MetricsRequested]);
    let statuses: Vec<u16> = records.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 404, 405, 404]);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert!(out.contains("\r\n\r\nm 1\n"));
    assert!(!out.contains("Strict-Transport-Security"));
}

#[test]
fn metrics_are_never_served_on_the_site() {
    let (_, events, records, _) = run(
        Role::Site { secure: true },
        b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n",
        usize::MAX,
        "",
    );
    assert!(events.is_empty());
    assert_eq!(records[0].status, 404);
}
