//! Connection tests: a scripted client feeds frames, the server side is
//! driven exactly as the crate documentation says, and its output is parsed
//! back into frames.

extern crate std;

use alloc::string::String;
use alloc::vec::Vec;
use std::format;

use crate::frame::{self, PREFACE};
use crate::hpack::{self, Decoder};
use crate::*;

// ---- the scripted client ----

fn raw_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    frame::write_header(&mut v, payload.len(), kind, flags, stream);
    v.extend_from_slice(payload);
    v
}

fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut v = Vec::new();
    frame::write_settings(&mut v, params);
    v
}

fn preface_with(params: &[(u16, u32)]) -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(settings(params));
    v
}

fn preface() -> Vec<u8> {
    preface_with(&[])
}

fn settings_ack() -> Vec<u8> {
    raw_frame(frame::SETTINGS, frame::ACK, 0, &[])
}

fn block(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in [
        (":method", method),
        (":scheme", "https"),
        (":authority", "example.org"),
        (":path", path),
    ]
    .iter()
    .chain(extra)
    {
        hpack::encode_literal(&mut b, n.as_bytes(), v.as_bytes());
    }
    b
}

fn get(stream: u32, path: &str) -> Vec<u8> {
    raw_frame(
        frame::HEADERS,
        frame::END_HEADERS | frame::END_STREAM,
        stream,
        &block("GET", path, &[]),
    )
}

fn rst(stream: u32, code: u32) -> Vec<u8> {
    raw_frame(frame::RST_STREAM, 0, stream, &code.to_be_bytes())
}

fn window_update(stream: u32, inc: u32) -> Vec<u8> {
    raw_frame(frame::WINDOW_UPDATE, 0, stream, &inc.to_be_bytes())
}

fn ping(data: u8) -> Vec<u8> {
    raw_frame(frame::PING, 0, 0, &[data; 8])
}

// ---- what the server did ----

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Request(u32, String, String, bool),
    Data(u32, Vec<u8>, bool),
    Writable(u32),
    Reset(u32, ErrorCode, bool),
    GoAway(ErrorCode),
    Closed(CloseReason),
}

#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    fn code(&self) -> u32 {
        let at = if self.kind == frame::GOAWAY { 4 } else { 0 };
        frame::u32_at(&self.payload[at..])
    }
}

fn parse_frames(mut b: &[u8]) -> Vec<Frame> {
    let mut v = Vec::new();
    while let Some(h) = frame::FrameHeader::parse(b) {
        let end = 9 + h.len as usize;
        v.push(Frame {
            kind: h.kind,
            flags: h.flags,
            stream: h.stream,
            payload: b[9..end].to_vec(),
        });
        b = &b[end..];
    }
    assert!(b.is_empty(), "partial frame in output");
    v
}

/// A server connection plus what the test has seen of it.
struct Harness {
    conn: Connection,
    now: u64,
    /// Output not yet parsed into frames.
    wire: Vec<u8>,
    /// Request streams handed to the "application".
    seen: Vec<u32>,
}

impl Harness {
    fn new(limits: Limits) -> Self {
        Harness {
            conn: Connection::new(limits, 0),
            now: 0,
            wire: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// A connection past the preface and the SETTINGS exchange.
    fn open(limits: Limits) -> Self {
        let mut h = Harness::new(limits);
        h.send(&preface());
        h.send(&settings_ack());
        h.frames();
        h
    }

    /// Feeds all of `input` (polling in between, as a driver does), and
    /// returns the events; output is drained into `wire`.
    fn send(&mut self, input: &[u8]) -> Vec<Ev> {
        let mut evs = Vec::new();
        let mut rest = input;
        loop {
            let n = self.conn.receive(rest, self.now);
            rest = &rest[n..];
            self.poll_into(&mut evs);
            let out = self.conn.output().to_vec();
            self.conn.consume_output(out.len());
            self.wire.extend_from_slice(&out);
            self.poll_into(&mut evs);
            if rest.is_empty() || (n == 0 && out.is_empty()) {
                break;
            }
        }
        evs
    }

    fn poll_into(&mut self, evs: &mut Vec<Ev>) {
        while let Some(e) = self.conn.poll(self.now) {
            evs.push(match e {
                Event::Request { stream, head } => {
                    self.seen.push(stream.get());
                    Ev::Request(
                        stream.get(),
                        String::from(head.method()),
                        String::from(head.path()),
                        head.has_body(),
                    )
                }
                Event::Data {
                    stream,
                    data,
                    end_stream,
                } => Ev::Data(stream.get(), data.to_vec(), end_stream),
                Event::Writable { stream } => Ev::Writable(stream.get()),
                Event::Reset {
                    stream,
                    code,
                    by_peer,
                } => Ev::Reset(stream.get(), code, by_peer),
                Event::GoAway { code } => Ev::GoAway(code),
                Event::Closed { reason } => Ev::Closed(reason),
            });
        }
    }

    /// Output frames since the last call (draining the connection first).
    fn frames(&mut self) -> Vec<Frame> {
        let out = self.conn.output().to_vec();
        self.conn.consume_output(out.len());
        self.wire.extend_from_slice(&out);
        parse_frames(&core::mem::take(&mut self.wire))
    }

    fn timeout(&mut self, now: u64) -> Vec<Ev> {
        self.now = now;
        self.conn.on_timeout(now);
        let mut evs = Vec::new();
        self.poll_into(&mut evs);
        evs
    }

    fn goaway(&mut self) -> Option<(u32, u32)> {
        self.frames()
            .iter()
            .find(|f| f.kind == frame::GOAWAY)
            .map(|f| (frame::u31(&f.payload), f.code()))
    }
}

fn status_of(payload: &[u8]) -> String {
    let mut d = Decoder::new(4096);
    let mut status = String::new();
    d.decode(payload, 1 << 16, |n, v| {
        if n == b":status" {
            status = String::from_utf8(v.to_vec()).unwrap();
        }
    })
    .unwrap();
    status
}

fn closed_with(evs: &[Ev]) -> Option<&CloseReason> {
    evs.iter().find_map(|e| match e {
        Ev::Closed(r) => Some(r),
        _ => None,
    })
}

// ---- basics ----

#[test]
fn server_preface_and_settings_exchange() {
    let mut h = Harness::new(Limits::default());
    let f = h.frames();
    assert_eq!(f[0].kind, frame::SETTINGS);
    assert_eq!(f[0].flags, 0);
    let params: Vec<(u16, u32)> = f[0]
        .payload
        .chunks(6)
        .map(|p| (u16::from_be_bytes([p[0], p[1]]), frame::u32_at(&p[2..])))
        .collect();
    assert!(params.contains(&(frame::SETTINGS_MAX_CONCURRENT_STREAMS, 100)));
    assert!(params.contains(&(frame::SETTINGS_MAX_HEADER_LIST_SIZE, 16384)));
    // The connection window is raised to 1 MiB.
    assert_eq!(
        (f[1].kind, f[1].stream, frame::u31(&f[1].payload)),
        (frame::WINDOW_UPDATE, 0, (1 << 20) - 65_535)
    );
    h.send(&preface());
    let f = h.frames();
    assert_eq!((f[0].kind, f[0].flags), (frame::SETTINGS, frame::ACK));
    h.send(&ping(7));
    let f = h.frames();
    assert_eq!(
        (f[0].kind, f[0].flags, &f[0].payload[..]),
        (frame::PING, frame::ACK, &[7u8; 8][..])
    );
}

#[test]
fn get_and_response_with_continuation_split() {
    let mut h = Harness::open(Limits::default());
    let evs = h.send(&get(1, "/index.html"));
    assert_eq!(
        evs,
        [Ev::Request(1, "GET".into(), "/index.html".into(), false)]
    );
    let big = [b'x'; 20_000];
    let fields: [(&str, &[u8]); 3] = [
        ("Content-Type", b"text/html"),
        ("Connection", b"close"),
        ("x-big", &big),
    ];
    h.conn
        .send_headers(StreamId(1), 200, &fields, false)
        .unwrap();
    assert_eq!(h.conn.send_data(StreamId(1), b"<h1>hi</h1>", true), Ok(11));
    let f = h.frames();
    assert_eq!(
        (f[0].kind, f[0].flags & frame::END_HEADERS),
        (frame::HEADERS, 0)
    );
    assert_eq!(
        (f[1].kind, f[1].flags),
        (frame::CONTINUATION, frame::END_HEADERS)
    );
    let mut block = f[0].payload.clone();
    block.extend_from_slice(&f[1].payload);
    let mut fields_seen = Vec::new();
    Decoder::new(4096)
        .decode(&block, 1 << 16, |n, v| {
            fields_seen.push((n.to_vec(), v.len()))
        })
        .unwrap();
    assert_eq!(fields_seen[0], (b":status".to_vec(), 3));
    assert_eq!(fields_seen[1], (b"content-type".to_vec(), 9));
    assert_eq!(
        fields_seen[2],
        (b"x-big".to_vec(), 20_000),
        "connection: close is dropped"
    );
    assert_eq!(
        (f[2].kind, f[2].flags, &f[2].payload[..]),
        (frame::DATA, frame::END_STREAM, &b"<h1>hi</h1>"[..])
    );
    assert_eq!(
        h.conn.send_data(StreamId(1), b"x", false),
        Err(SendError::UnknownStream(StreamId(1)))
    );
    assert_eq!(h.conn.stats().open_streams, 0);
}

#[test]
fn send_errors() {
    let mut h = Harness::open(Limits::default());
    h.send(&get(1, "/"));
    assert_eq!(
        h.conn.send_data(StreamId(1), b"x", false),
        Err(SendError::HeadersNotSent(StreamId(1)))
    );
    assert_eq!(
        h.conn.send_headers(StreamId(1), 100, &[], false),
        Err(SendError::InvalidStatus(100))
    );
    assert_eq!(
        h.conn
            .send_headers(StreamId(1), 302, &[("location", b"/a\r\nx: y")], false),
        Err(SendError::InvalidField { index: 0 })
    );
    assert_eq!(
        h.conn
            .send_headers(StreamId(1), 200, &[("bad name", b"")], false),
        Err(SendError::InvalidField { index: 0 })
    );
    h.conn.send_headers(StreamId(1), 200, &[], false).unwrap();
    assert_eq!(
        h.conn.send_headers(StreamId(1), 200, &[], false),
        Err(SendError::HeadersAlreadySent(StreamId(1)))
    );
    assert_eq!(
        h.conn.send_headers(StreamId(3), 200, &[], false),
        Err(SendError::UnknownStream(StreamId(3)))
    );
    assert_eq!(h.conn.send_data(StreamId(1), b"", true), Ok(0));
    let f = h.frames();
    assert_eq!(status_of(&f[0].payload), "200");
    assert_eq!(
        (f[1].kind, f[1].flags, f[1].payload.len()),
        (frame::DATA, frame::END_STREAM, 0)
    );
}

#[test]
fn request_body_credit_and_content_length() {
    let mut h = Harness::open(Limits::default());
    let hdr = raw_frame(
        frame::HEADERS,
        frame::END_HEADERS,
        1,
        &block("POST", "/hook", &[("content-length", "40000")]),
    );
    assert_eq!(
        h.send(&hdr),
        [Ev::Request(1, "POST".into(), "/hook".into(), true)]
    );
    // Padded DATA: padding is stripped, but counts against the windows.
    let mut padded = alloc::vec![10u8];
    padded.extend_from_slice(&[b'a'; 10_000]);
    padded.extend_from_slice(&[0; 10]);
    let evs = h.send(&raw_frame(frame::DATA, frame::PADDED, 1, &padded));
    assert!(matches!(&evs[..], [Ev::Data(1, d, false)] if d[..] == [b'a'; 10_000]));
    for _ in 0..2 {
        let evs = h.send(&raw_frame(frame::DATA, 0, 1, &[b'b'; 12_500]));
        assert!(matches!(&evs[..], [Ev::Data(1, d, false)] if d.len() == 12_500));
    }
    // 35 011 bytes received: more than half the stream window, so credit
    // is returned for the stream.
    let f = h.frames();
    assert!(f.iter().any(|f| f.kind == frame::WINDOW_UPDATE
        && f.stream == 1
        && frame::u31(&f.payload) == 35_011));
    // 5 000 more with END_STREAM matches content-length 40 000.
    let evs = h.send(&raw_frame(
        frame::DATA,
        frame::END_STREAM,
        1,
        &[b'c'; 5_000],
    ));
    assert!(matches!(&evs[..], [Ev::Data(1, d, true)] if d.len() == 5_000));
    // A mismatch resets the stream.
    let hdr = raw_frame(
        frame::HEADERS,
        frame::END_HEADERS,
        3,
        &block("POST", "/hook", &[("content-length", "3")]),
    );
    h.send(&hdr);
    let evs = h.send(&raw_frame(frame::DATA, frame::END_STREAM, 3, b"ab"));
    assert_eq!(evs, [Ev::Reset(3, ErrorCode::PROTOCOL_ERROR, false)]);
    let f = h.frames();
    assert!(
        f.iter()
            .any(|f| f.kind == frame::RST_STREAM && f.stream == 3 && f.code() == 1)
    );
}

#[test]
fn trailers_end_the_body() {
    let mut h = Harness::open(Limits::default());
    h.send(&raw_frame(
        frame::HEADERS,
        frame::END_HEADERS,
        1,
        &block("POST", "/", &[]),
    ));
    h.send(&raw_frame(frame::DATA, 0, 1, b"abc"));
    let mut t = Vec::new();
    hpack::encode_literal(&mut t, b"x-sum", b"1");
    let evs = h.send(&raw_frame(
        frame::HEADERS,
        frame::END_HEADERS | frame::END_STREAM,
        1,
        &t,
    ));
    assert_eq!(evs, [Ev::Data(1, Vec::new(), true)]);
    // Trailers without END_STREAM are malformed.
    h.send(&raw_frame(
        frame::HEADERS,
        frame::END_HEADERS,
        3,
        &block("POST", "/", &[]),
    ));
    let evs = h.send(&raw_frame(frame::HEADERS, frame::END_HEADERS, 3, &t));
    assert_eq!(evs, [Ev::Reset(3, ErrorCode::PROTOCOL_ERROR, false)]);
}

#[test]
fn response_before_body_end_resets_with_no_error() {
    let mut h = Harness::open(Limits::default());
    h.send(&raw_frame(
        frame::HEADERS,
        frame::END_HEADERS,
        1,
        &block("POST", "/x", &[]),
    ));
    h.conn.send_headers(StreamId(1), 404, &[], true).unwrap();
    let f = h.frames();
    assert_eq!(status_of(&f[0].payload), "404");
    assert_eq!((f[1].kind, f[1].code()), (frame::RST_STREAM, 0));
    // DATA still in flight is ignored (but credited to the connection).
    assert_eq!(h.send(&raw_frame(frame::DATA, 0, 1, b"late")), []);
    assert!(
        h.frames()
            .iter()
            .all(|f| f.kind != frame::RST_STREAM && f.kind != frame::GOAWAY)
    );
}

// ---- flow control ----

#[test]
fn flow_control_blocks_and_resumes() {
    let mut h = Harness::new(Limits::default());
    h.send(&preface_with(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 100)]));
    h.send(&get(1, "/big"));
    h.conn.send_headers(StreamId(1), 200, &[], false).unwrap();
    let body = [b'z'; 1000];
    assert_eq!(h.conn.send_data(StreamId(1), &body, true), Ok(100));
    assert_eq!(h.send(&window_update(1, 50)), [Ev::Writable(1)]);
    assert_eq!(h.conn.send_data(StreamId(1), &body[100..], true), Ok(50));
    // Raising the initial window through SETTINGS also unblocks it.
    assert_eq!(
        h.send(&settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 2000)])),
        [Ev::Writable(1)]
    );
    assert_eq!(h.conn.send_data(StreamId(1), &body[150..], true), Ok(850));
    let data: usize = h
        .frames()
        .iter()
        .filter(|f| f.kind == frame::DATA)
        .map(|f| f.payload.len())
        .sum();
    assert_eq!(data, 1000);
}

#[test]
fn connection_window_is_shared() {
    let mut h = Harness::new(Limits {
        output_buffer: 1 << 20,
        ..Limits::default()
    });
    h.send(&preface_with(&[(
        frame::SETTINGS_INITIAL_WINDOW_SIZE,
        1 << 20,
    )]));
    h.send(&get(1, "/a"));
    h.send(&get(3, "/b"));
    for s in [1, 3] {
        h.conn.send_headers(StreamId(s), 200, &[], false).unwrap();
    }
    let body = alloc::vec![0u8; 100_000];
    assert_eq!(h.conn.send_data(StreamId(1), &body, false), Ok(65_535));
    assert_eq!(h.conn.send_data(StreamId(3), &body, false), Ok(0));
    h.frames();
    // Both waiting streams hear of the new credit; they share it.
    assert_eq!(
        h.send(&window_update(0, 1000)),
        [Ev::Writable(1), Ev::Writable(3)]
    );
    assert_eq!(h.conn.send_data(StreamId(3), &body, false), Ok(1000));
    assert_eq!(h.conn.send_data(StreamId(1), &body, false), Ok(0));
    assert_eq!(
        h.send(&window_update(0, 500)),
        [Ev::Writable(3), Ev::Writable(1)]
    );
}

#[test]
fn output_bound_limits_send_data() {
    let limits = Limits {
        output_buffer: 20_000,
        ..Limits::default()
    };
    let mut h = Harness::new(limits);
    h.send(&preface_with(&[(
        frame::SETTINGS_INITIAL_WINDOW_SIZE,
        1 << 20,
    )]));
    h.send(&window_update(0, 1 << 20));
    h.send(&get(1, "/a"));
    h.conn.send_headers(StreamId(1), 200, &[], false).unwrap();
    let body = alloc::vec![0u8; 100_000];
    let n = h.conn.send_data(StreamId(1), &body, false).unwrap();
    assert!(n < 20_000 && n > 19_000, "{n}");
    assert!(h.conn.output().len() <= 20_000);
    // Consuming output makes the stream writable again.
    let out = h.conn.output().len();
    h.conn.consume_output(out);
    assert_eq!(
        h.conn.poll(0),
        Some(Event::Writable {
            stream: StreamId(1)
        })
    );
}

#[test]
fn window_update_overflow() {
    let mut h = Harness::open(Limits::default());
    h.send(&get(1, "/"));
    let evs = h.send(&window_update(1, 0x7fff_ffff));
    assert_eq!(evs, [Ev::Reset(1, ErrorCode::FLOW_CONTROL_ERROR, false)]);
    let evs = h.send(&window_update(0, 0x7fff_ffff));
    assert!(
        matches!(closed_with(&evs), Some(CloseReason::Error(e)) if e.code() == ErrorCode::FLOW_CONTROL_ERROR)
    );
    assert_eq!(h.goaway().map(|g| g.1), Some(3));
}

#[test]
fn data_beyond_the_stream_window_resets_the_stream() {
    let limits = Limits {
        stream_window: 1000,
        ..Limits::default()
    };
    let mut h = Harness::open(limits);
    h.send(&raw_frame(
        frame::HEADERS,
        frame::END_HEADERS,
        1,
        &block("POST", "/", &[]),
    ));
    let evs = h.send(&raw_frame(frame::DATA, 0, 1, &[0; 1001]));
    assert_eq!(evs, [Ev::Reset(1, ErrorCode::FLOW_CONTROL_ERROR, false)]);
}

// ---- protocol errors ----

fn expect_goaway(input: &[u8], code: ErrorCode) -> ConnectionError {
    let mut h = Harness::new(Limits::default());
    let evs = h.send(input);
    let Some(CloseReason::Error(e)) = closed_with(&evs).cloned() else {
        panic!("not closed: {evs:?}")
    };
    assert_eq!(e.code(), code, "{e}");
    assert_eq!(h.goaway().map(|g| g.1), Some(code.0));
    assert!(h.conn.wants_close());
    // Further input is swallowed, not processed.
    assert_eq!(h.conn.receive(&[0; 100], 0), 100);
    assert_eq!(h.conn.stats().input_bytes, 0);
    e
}

#[test]
fn bad_preface() {
    let e = expect_goaway(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ErrorCode::PROTOCOL_ERROR,
    );
    assert_eq!(e, ConnectionError::BadPreface);
    let mut v = PREFACE.to_vec();
    v.extend(ping(1));
    expect_goaway(&v, ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn frames_on_wrong_streams() {
    for bad in [
        raw_frame(frame::DATA, 0, 0, b"x"),
        raw_frame(
            frame::HEADERS,
            frame::END_HEADERS,
            0,
            &block("GET", "/", &[]),
        ),
        get(2, "/"),
        raw_frame(frame::SETTINGS, 0, 1, &[]),
        raw_frame(frame::PING, 0, 1, &[0; 8]),
        raw_frame(frame::RST_STREAM, 0, 0, &[0; 4]),
        raw_frame(frame::PRIORITY, 0, 0, &[0; 5]),
        raw_frame(frame::DATA, 0, 5, b"idle"),
        raw_frame(frame::CONTINUATION, frame::END_HEADERS, 1, &[]),
        raw_frame(frame::PUSH_PROMISE, frame::END_HEADERS, 1, &[0, 0, 0, 2]),
        raw_frame(frame::GOAWAY, 0, 1, &[0; 8]),
        rst(9, 0),
        window_update(9, 1),
        window_update(0, 0),
    ] {
        let mut input = preface();
        input.extend(bad);
        expect_goaway(&input, ErrorCode::PROTOCOL_ERROR);
    }
}

#[test]
fn decreasing_and_reused_stream_ids() {
    let mut input = preface();
    input.extend(get(5, "/"));
    input.extend(get(3, "/"));
    let e = expect_goaway(&input, ErrorCode::PROTOCOL_ERROR);
    assert!(format!("{e}").contains("not above"));
    // HEADERS on a stream that ended normally: STREAM_CLOSED.
    let mut h = Harness::open(Limits::default());
    h.send(&get(1, "/"));
    h.conn.send_headers(StreamId(1), 204, &[], true).unwrap();
    let evs = h.send(&get(1, "/"));
    assert!(
        matches!(closed_with(&evs), Some(CloseReason::Error(e)) if e.code() == ErrorCode::STREAM_CLOSED)
    );
}

#[test]
fn frame_size_errors() {
    let mut input = preface();
    input.extend(raw_frame(frame::DATA, 0, 1, &[0; 16_385]));
    let e = expect_goaway(&input, ErrorCode::FRAME_SIZE_ERROR);
    assert_eq!(
        e,
        ConnectionError::FrameTooLarge {
            size: 16_385,
            limit: 16_384
        }
    );
    for bad in [
        raw_frame(frame::PING, 0, 0, &[0; 7]),
        raw_frame(frame::SETTINGS, 0, 0, &[0; 5]),
        raw_frame(frame::SETTINGS, frame::ACK, 0, &[0; 6]),
        raw_frame(frame::WINDOW_UPDATE, 0, 0, &[0; 5]),
        raw_frame(frame::GOAWAY, 0, 0, &[0; 7]),
    ] {
        let mut input = preface();
        input.extend(bad);
        expect_goaway(&input, ErrorCode::FRAME_SIZE_ERROR);
    }
    // The frame header alone decides: the 16 MiB payload is never awaited.
    let mut h = Harness::new(Limits::default());
    let mut input = preface();
    input.extend_from_slice(&[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]);
    let evs = h.send(&input);
    assert!(closed_with(&evs).is_some());
}

#[test]
fn invalid_settings_values() {
    for (id, value, code) in [
        (frame::SETTINGS_ENABLE_PUSH, 2, ErrorCode::PROTOCOL_ERROR),
        (
            frame::SETTINGS_INITIAL_WINDOW_SIZE,
            1 << 31,
            ErrorCode::FLOW_CONTROL_ERROR,
        ),
        (
            frame::SETTINGS_MAX_FRAME_SIZE,
            16_383,
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            frame::SETTINGS_MAX_FRAME_SIZE,
            1 << 24,
            ErrorCode::PROTOCOL_ERROR,
        ),
    ] {
        expect_goaway(&preface_with(&[(id, value)]), code);
    }
    // Unknown settings are ignored; ENABLE_PUSH 0/1 is fine.
    let mut h = Harness::new(Limits::default());
    let evs = h.send(&preface_with(&[
        (0x99, 7),
        (frame::SETTINGS_ENABLE_PUSH, 1),
    ]));
    assert!(closed_with(&evs).is_none());
}

#[test]
fn malformed_requests_are_stream_errors() {
    let mut h = Harness::open(Limits::default());
    let b = block("GET", "/", &[("connection", "keep-alive")]);
    assert_eq!(h.send(&raw_frame(frame::HEADERS, 5, 1, &b)), []);
    let b = block("GET", "/", &[("te", "gzip")]);
    assert_eq!(h.send(&raw_frame(frame::HEADERS, 5, 3, &b)), []);
    let f = h.frames();
    let resets: Vec<(u32, u32)> = f
        .iter()
        .filter(|f| f.kind == frame::RST_STREAM)
        .map(|f| (f.stream, f.code()))
        .collect();
    assert_eq!(resets, [(1, 1), (3, 1)]);
    // The connection goes on.
    assert_eq!(h.send(&get(5, "/")).len(), 1);
}

#[test]
fn connect_gets_501() {
    let mut h = Harness::open(Limits::default());
    let mut b = Vec::new();
    hpack::encode_literal(&mut b, b":method", b"CONNECT");
    hpack::encode_literal(&mut b, b":authority", b"example.org:443");
    assert_eq!(
        h.send(&raw_frame(frame::HEADERS, frame::END_HEADERS, 1, &b)),
        []
    );
    let f = h.frames();
    assert_eq!(status_of(&f[0].payload), "501");
    assert_eq!((f[1].kind, f[1].code()), (frame::RST_STREAM, 0));
}

#[test]
fn priority_is_parsed_and_ignored() {
    let mut h = Harness::open(Limits::default());
    // HEADERS with the PRIORITY flag, then a PRIORITY frame.
    let mut p = alloc::vec![0, 0, 0, 0, 16];
    p.extend(block("GET", "/", &[]));
    let evs = h.send(&raw_frame(
        frame::HEADERS,
        frame::END_HEADERS | frame::END_STREAM | frame::PRIORITY_FLAG,
        1,
        &p,
    ));
    assert_eq!(evs.len(), 1);
    assert_eq!(
        h.send(&raw_frame(frame::PRIORITY, 0, 3, &[0, 0, 0, 1, 16])),
        []
    );
    // Depending on itself is a stream error; a wrong length too.
    let mut p = alloc::vec![0, 0, 0, 5, 16];
    p.extend(block("GET", "/", &[]));
    h.send(&raw_frame(
        frame::HEADERS,
        frame::END_HEADERS | frame::END_STREAM | frame::PRIORITY_FLAG,
        5,
        &p,
    ));
    h.send(&raw_frame(frame::PRIORITY, 0, 7, &[0, 0, 0, 1]));
    let resets: Vec<(u32, u32)> = h
        .frames()
        .iter()
        .filter(|f| f.kind == frame::RST_STREAM)
        .map(|f| (f.stream, f.code()))
        .collect();
    assert_eq!(resets, [(5, 1), (7, 6)]);
}

// ---- limits and the DoS classes ----

#[test]
fn concurrency_limit_refuses_streams() {
    let limits = Limits {
        max_concurrent_streams: 2,
        ..Limits::default()
    };
    let mut h = Harness::open(limits);
    let mut input = Vec::new();
    for s in [1, 3, 5] {
        input.extend(get(s, "/"));
    }
    let evs = h.send(&input);
    assert_eq!(evs.len(), 2);
    let f = h.frames();
    assert!(f.iter().any(|f| f.kind == frame::RST_STREAM
        && f.stream == 5
        && f.code() == ErrorCode::REFUSED_STREAM.0));
    h.conn.send_headers(StreamId(1), 204, &[], true).unwrap();
    assert_eq!(h.send(&get(7, "/")).len(), 1, "a slot is free again");
}

/// CVE-2023-44487: HEADERS + RST_STREAM pairs.
#[test]
fn rapid_reset_ends_the_connection() {
    let mut h = Harness::open(Limits::default());
    let mut input = Vec::new();
    for i in 0..1000u32 {
        let s = 2 * i + 1;
        input.extend(get(s, "/"));
        input.extend(rst(s, ErrorCode::CANCEL.0));
    }
    let evs = h.send(&input);
    let requests = evs.iter().filter(|e| matches!(e, Ev::Request(..))).count();
    assert_eq!(requests, 101, "work stops at the limit");
    assert!(matches!(
        closed_with(&evs),
        Some(CloseReason::Error(ConnectionError::Flood {
            kind: Flood::Resets,
            limit: 100,
            ..
        }))
    ));
    assert_eq!(
        h.goaway().map(|g| g.1),
        Some(ErrorCode::ENHANCE_YOUR_CALM.0)
    );
    // Spread over time the same number is fine.
    let mut h = Harness::open(Limits::default());
    for round in 0..3u32 {
        h.now = u64::from(round) * 10_001;
        let mut input = Vec::new();
        for i in 0..90u32 {
            let s = 2 * (round * 90 + i) + 1;
            input.extend(get(s, "/"));
            input.extend(rst(s, 8));
        }
        let evs = h.send(&input);
        assert!(closed_with(&evs).is_none());
    }
}

/// Streams the server refuses count too.
#[test]
fn refused_and_malformed_streams_count_as_resets() {
    let limits = Limits {
        max_concurrent_streams: 1,
        max_resets: 10,
        ..Limits::default()
    };
    let mut h = Harness::open(limits);
    let mut input = get(1, "/");
    for i in 1..20u32 {
        input.extend(get(2 * i + 1, "/"));
    }
    let evs = h.send(&input);
    assert!(matches!(
        closed_with(&evs),
        Some(CloseReason::Error(ConnectionError::Flood {
            kind: Flood::Resets,
            ..
        }))
    ));
}

#[test]
fn continuation_flood() {
    let mut input = preface();
    input.extend(raw_frame(frame::HEADERS, 0, 1, &block("GET", "/", &[])));
    for _ in 0..1000 {
        input.extend(raw_frame(
            frame::CONTINUATION,
            0,
            1,
            &[0x40, 1, b'a', 1, b'b'],
        ));
    }
    let e = expect_goaway(&input, ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(e, ConnectionError::ContinuationFlood { limit: 16 });
    // Few but large CONTINUATION frames hit the block size limit.
    let mut input = preface();
    input.extend(raw_frame(frame::HEADERS, 0, 1, &block("GET", "/", &[])));
    for _ in 0..3 {
        input.extend(raw_frame(frame::CONTINUATION, 0, 1, &[0x20; 16_000]));
    }
    let e = expect_goaway(&input, ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(e, ConnectionError::HeaderBlockTooLarge { limit: 32 * 1024 });
}

#[test]
fn header_block_must_complete_in_time() {
    let mut h = Harness::open(Limits::default());
    h.send(&raw_frame(frame::HEADERS, 0, 1, &block("GET", "/", &[])));
    assert_eq!(h.conn.deadline(), Some(10_000));
    let evs = h.timeout(10_000);
    assert_eq!(
        closed_with(&evs),
        Some(&CloseReason::Error(ConnectionError::HeaderTimeout {
            timeout_ms: 10_000
        }))
    );
}

/// One large dynamic-table entry, referenced again and again.
#[test]
fn hpack_bomb() {
    let mut b = Vec::new();
    hpack::encode_integer(&mut b, 0, 6, 0x40);
    hpack::encode_string(&mut b, b"x-bomb");
    hpack::encode_integer(&mut b, 4000, 7, 0);
    b.resize(b.len() + 4000, b'a');
    b.extend(block("GET", "/", &[]));
    b.resize(b.len() + 10_000, 0xbe);
    let mut input = preface();
    let half = b.len() / 2;
    input.extend(raw_frame(frame::HEADERS, frame::END_STREAM, 1, &b[..half]));
    input.extend(raw_frame(
        frame::CONTINUATION,
        frame::END_HEADERS,
        1,
        &b[half..],
    ));
    let e = expect_goaway(&input, ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(
        e,
        ConnectionError::HpackBomb {
            limit: 4 * 16 * 1024
        }
    );
}

#[test]
fn hpack_table_size_update_beyond_settings() {
    let mut b = Vec::new();
    hpack::encode_integer(&mut b, 1 << 20, 5, 0x20);
    b.extend(block("GET", "/", &[]));
    let mut input = preface();
    input.extend(raw_frame(frame::HEADERS, frame::END_HEADERS, 1, &b));
    let e = expect_goaway(&input, ErrorCode::COMPRESSION_ERROR);
    assert!(matches!(
        e,
        ConnectionError::Compression(hpack::HpackError::SizeUpdateTooLarge { .. })
    ));
    // A smaller advertised table is enforced once acknowledged.
    let limits = Limits {
        header_table_size: 256,
        ..Limits::default()
    };
    let mut h = Harness::open(limits);
    let mut b = Vec::new();
    hpack::encode_integer(&mut b, 512, 5, 0x20);
    b.extend(block("GET", "/", &[]));
    let evs = h.send(&raw_frame(frame::HEADERS, 5, 1, &b));
    assert!(matches!(
        closed_with(&evs),
        Some(CloseReason::Error(ConnectionError::Compression(_)))
    ));
}

#[test]
fn oversized_header_list_gets_431() {
    let mut h = Harness::open(Limits::default());
    let big = "v".repeat(20_000);
    let b = block("GET", "/", &[("x-big", &big)]);
    let mut input = raw_frame(frame::HEADERS, frame::END_STREAM, 1, &b[..16_000]);
    input.extend(raw_frame(
        frame::CONTINUATION,
        frame::END_HEADERS,
        1,
        &b[16_000..],
    ));
    assert_eq!(h.send(&input), []);
    let f = h.frames();
    assert_eq!(status_of(&f[0].payload), "431");
    assert!(h.send(&get(3, "/")).len() == 1, "the connection goes on");
}

#[test]
fn settings_flood() {
    let mut input = preface();
    for _ in 0..100 {
        input.extend(settings(&[]));
    }
    let e = expect_goaway(&input, ErrorCode::ENHANCE_YOUR_CALM);
    assert!(matches!(
        e,
        ConnectionError::Flood {
            kind: Flood::Settings,
            limit: 50,
            ..
        }
    ));
}

#[test]
fn ping_flood() {
    let mut input = preface();
    for i in 0..10_000 {
        input.extend(ping(i as u8));
    }
    let mut h = Harness::new(Limits::default());
    let evs = h.send(&input);
    assert!(matches!(
        closed_with(&evs),
        Some(CloseReason::Error(ConnectionError::Flood {
            kind: Flood::Pings,
            ..
        }))
    ));
    let acks = h.frames().iter().filter(|f| f.kind == frame::PING).count();
    assert_eq!(acks, 50);
}

#[test]
fn ping_flood_without_reading_stalls_input() {
    // The client never reads: output reaches its bound, then input is no
    // longer parsed, and the input buffer stops taking bytes.
    let limits = Limits {
        max_pings: u32::MAX,
        output_buffer: 16_384 + 9,
        ..Limits::default()
    };
    let mut conn = Connection::new(limits, 0);
    let mut input = preface();
    for _ in 0..20_000 {
        input.extend(ping(0));
    }
    let mut fed = 0;
    loop {
        let n = conn.receive(&input[fed..], 0);
        fed += n;
        while conn.poll(0).is_some() {}
        if n == 0 {
            break;
        }
    }
    assert!(conn.output().len() < 16_384 + 9 + 17);
    assert!(fed < 16_384 + 9 + 32 * 1024 + 17 + 24 + 9);
}

#[test]
fn empty_frame_flood() {
    let mut h = Harness::open(Limits::default());
    h.send(&raw_frame(
        frame::HEADERS,
        frame::END_HEADERS,
        1,
        &block("POST", "/", &[]),
    ));
    let mut input = Vec::new();
    for _ in 0..1000 {
        input.extend(raw_frame(frame::DATA, 0, 1, &[]));
    }
    let evs = h.send(&input);
    assert!(matches!(
        closed_with(&evs),
        Some(CloseReason::Error(ConnectionError::Flood {
            kind: Flood::IdleFrames,
            limit: 500,
            ..
        }))
    ));
    // Unknown frame types count too.
    let mut input = preface();
    for _ in 0..600 {
        input.extend(raw_frame(0xfa, 0, 0, b"x"));
    }
    expect_goaway(&input, ErrorCode::ENHANCE_YOUR_CALM);
}

/// A client that announces a zero window and never opens it.
#[test]
fn zero_stream_window_stall_resets_the_stream() {
    let mut h = Harness::new(Limits::default());
    h.send(&preface_with(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 0)]));
    h.send(&settings_ack());
    h.send(&get(1, "/big"));
    h.now = 1000;
    assert_eq!(h.conn.poll(1000), None);
    h.conn.send_headers(StreamId(1), 200, &[], false).unwrap();
    assert_eq!(h.conn.send_data(StreamId(1), &[0; 100], true), Ok(0));
    assert_eq!(h.conn.deadline(), Some(31_000));
    assert_eq!(h.timeout(30_999), []);
    assert_eq!(h.timeout(31_000), [Ev::Reset(1, ErrorCode::CANCEL, false)]);
    assert!(
        h.frames()
            .iter()
            .any(|f| f.kind == frame::RST_STREAM && f.code() == ErrorCode::CANCEL.0)
    );
}

#[test]
fn zero_connection_window_stall_ends_the_connection() {
    let mut h = Harness::new(Limits {
        output_buffer: 1 << 20,
        ..Limits::default()
    });
    h.send(&preface_with(&[(
        frame::SETTINGS_INITIAL_WINDOW_SIZE,
        1 << 20,
    )]));
    h.send(&settings_ack());
    h.send(&get(1, "/big"));
    h.conn.send_headers(StreamId(1), 200, &[], false).unwrap();
    let body = alloc::vec![0u8; 100_000];
    assert_eq!(h.conn.send_data(StreamId(1), &body, true), Ok(65_535));
    h.frames();
    let evs = h.timeout(30_000);
    assert_eq!(
        closed_with(&evs),
        Some(&CloseReason::Error(ConnectionError::WindowStalled {
            timeout_ms: 30_000
        }))
    );
    assert_eq!(
        h.goaway().map(|g| g.1),
        Some(ErrorCode::ENHANCE_YOUR_CALM.0)
    );
}

#[test]
fn settings_ack_timeout() {
    let mut h = Harness::new(Limits::default());
    h.send(&preface());
    assert_eq!(h.conn.deadline(), Some(10_000));
    let evs = h.timeout(10_000);
    assert_eq!(
        closed_with(&evs),
        Some(&CloseReason::Error(ConnectionError::SettingsTimeout {
            timeout_ms: 10_000
        }))
    );
    assert_eq!(h.goaway().map(|g| g.1), Some(ErrorCode::SETTINGS_TIMEOUT.0));
}

#[test]
fn idle_timeout_closes_gracefully() {
    let mut h = Harness::open(Limits::default());
    h.send(&get(1, "/"));
    h.now = 5000;
    assert_eq!(h.conn.poll(5000), None);
    h.conn.send_headers(StreamId(1), 204, &[], true).unwrap();
    // PINGs do not keep a connection alive.
    h.now = 20_000;
    h.send(&ping(1));
    assert_eq!(h.conn.deadline(), Some(35_000));
    let evs = h.timeout(35_000);
    assert_eq!(closed_with(&evs), Some(&CloseReason::Idle));
    assert_eq!(h.goaway(), Some((1, 0)));
    assert!(h.conn.wants_close());
}

#[test]
fn unread_output_drops_the_connection() {
    let mut h = Harness::open(Limits::default());
    h.send(&get(1, "/"));
    h.conn.send_headers(StreamId(1), 200, &[], false).unwrap();
    h.conn.send_data(StreamId(1), &[0; 1000], false).unwrap();
    // The test never consumes this output.
    assert_eq!(h.conn.deadline(), Some(60_000));
    h.conn.on_timeout(60_000);
    assert!(h.conn.wants_close());
    assert_eq!(h.conn.output(), b"");
    assert_eq!(
        h.conn.close_reason(),
        Some(&CloseReason::Error(ConnectionError::OutputStalled {
            timeout_ms: 60_000
        }))
    );
}

#[test]
fn input_back_pressure() {
    let mut conn = Connection::new(Limits::default(), 0);
    let big = alloc::vec![0u8; 100_000];
    let n = conn.receive(&big, 0);
    assert_eq!(n, 32 * 1024);
    assert_eq!(conn.receive(&big, 0), 0);
}

// ---- shutdown ----

#[test]
fn graceful_shutdown_waits_for_streams() {
    let mut h = Harness::open(Limits::default());
    h.send(&get(1, "/"));
    h.conn.shutdown();
    assert_eq!(h.goaway(), Some((1, 0)));
    // A stream opened after GOAWAY is ignored.
    assert_eq!(h.send(&get(3, "/")), []);
    h.conn.send_headers(StreamId(1), 204, &[], true).unwrap();
    let mut evs = Vec::new();
    h.poll_into(&mut evs);
    assert_eq!(evs, [Ev::Closed(CloseReason::Shutdown)]);
    h.frames();
    assert!(h.conn.wants_close());
}

#[test]
fn peer_goaway_finishes_open_streams() {
    let mut h = Harness::open(Limits::default());
    h.send(&get(1, "/"));
    let evs = h.send(&raw_frame(frame::GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]));
    assert_eq!(evs, [Ev::GoAway(ErrorCode::NO_ERROR)]);
    h.conn.send_headers(StreamId(1), 200, &[], false).unwrap();
    h.conn.send_data(StreamId(1), b"bye", true).unwrap();
    let mut evs = Vec::new();
    h.poll_into(&mut evs);
    assert_eq!(
        evs,
        [Ev::Closed(CloseReason::PeerGoAway {
            code: ErrorCode::NO_ERROR
        })]
    );
    let f = h.frames();
    assert_eq!(f.last().map(|f| f.kind), Some(frame::GOAWAY));
}

#[test]
fn client_reset_is_reported() {
    let mut h = Harness::open(Limits::default());
    h.send(&get(1, "/"));
    assert_eq!(h.send(&rst(1, 8)), [Ev::Reset(1, ErrorCode::CANCEL, true)]);
    assert_eq!(
        h.conn.send_headers(StreamId(1), 200, &[], false),
        Err(SendError::UnknownStream(StreamId(1)))
    );
    // Frames for it afterwards are ignored.
    assert_eq!(h.send(&window_update(1, 5)), []);
    assert_eq!(h.send(&rst(1, 8)), []);
    assert!(h.frames().iter().all(|f| f.kind != frame::GOAWAY));
}

#[test]
fn abort_stops_everything() {
    let mut h = Harness::open(Limits::default());
    h.send(&get(1, "/"));
    h.conn.abort();
    assert!(h.conn.wants_close());
    assert_eq!(h.conn.poll(0), None);
    assert_eq!(h.conn.deadline(), None);
    assert_eq!(
        h.conn.send_headers(StreamId(1), 200, &[], true),
        Err(SendError::ConnectionClosed)
    );
}
