//! Drivers for the fuzz targets in `fuzz/` (feature `fuzzing`; not API):
//! a whole connection fed client bytes in random pieces, with a serving
//! layer that answers requests, consumes output in random amounts and
//! advances time, checking the buffer bounds after every step.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::{Connection, ErrorCode, Event, Limits, MAX_RESPONSE_HEADER_BLOCK, StreamId, frame};

/// One of four limit sets: defaults, tiny (every limit is hit quickly),
/// large frames and windows, and tight flood limits.
pub fn limits(variant: u8) -> Limits {
    let d = Limits::default();
    match variant % 4 {
        0 => d,
        1 => Limits {
            max_concurrent_streams: 2,
            max_header_list_size: 300,
            header_table_size: 64,
            max_header_block: 400,
            max_continuation_frames: 2,
            stream_window: 100,
            connection_window: 0,
            input_buffer: 0,
            output_buffer: 0,
            max_resets: 3,
            max_pings: 3,
            max_settings: 3,
            max_idle_frames: 3,
            settings_timeout_ms: 500,
            idle_timeout_ms: 700,
            header_timeout_ms: 300,
            stall_timeout_ms: 400,
            send_timeout_ms: 900,
            ..d
        },
        2 => Limits {
            max_frame_size: 65_536,
            stream_window: 1 << 30,
            connection_window: 1 << 30,
            header_table_size: 65_536,
            max_header_list_size: 65_536,
            max_header_block: 200_000,
            max_continuation_frames: 100,
            ..d
        },
        _ => Limits {
            max_resets: 1,
            max_pings: 1,
            max_settings: 1,
            max_idle_frames: 1,
            ..d
        },
    }
}

struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

static BODY: [u8; 70_000] = [0x5a; 70_000];

fn push(conn: &mut Connection, bodies: &mut BTreeMap<StreamId, usize>, stream: StreamId) {
    let Some(left) = bodies.get_mut(&stream) else {
        return;
    };
    match conn.send_data(stream, &BODY[..*left], true) {
        Ok(n) => {
            assert!(n <= *left);
            *left -= n;
            if *left == 0 {
                bodies.remove(&stream);
            }
        }
        Err(_) => {
            bodies.remove(&stream);
        }
    }
}

/// Runs a connection with `limits` on the client bytes `input`; `seed`
/// drives chunking, responses, output consumption and time.
pub fn run_connection(limits: Limits, seed: u32, input: &[u8]) {
    let mut rng = Rng(seed | 1);
    let mut now = 0u64;
    let mut conn = Connection::new(limits, now);
    let l = *conn.limits();
    let mut pending = input;
    let mut bodies: BTreeMap<StreamId, usize> = BTreeMap::new();
    let mut closed = 0;
    for _ in 0..20_000 {
        let offer = (rng.next() % 3000 + 1) as usize;
        let offer = offer.min(pending.len());
        let taken = conn.receive(&pending[..offer], now);
        assert!(taken <= offer);
        pending = &pending[taken..];
        let mut events = 0u32;
        while let Some(e) = conn.poll(now) {
            events += 1;
            assert!(events < 1_000_000, "poll does not converge");
            match e {
                Event::Request { stream, head } => {
                    let _ = (head.method(), head.scheme(), head.authority(), head.path());
                    let _ = (
                        head.header("host"),
                        head.content_length(),
                        head.fields().count(),
                    );
                    let r = rng.next();
                    let status = [200, 204, 206, 301, 304, 404, 416, 503][(r % 8) as usize];
                    let end = r & 8 != 0 || head.method() == "HEAD";
                    let len = alloc::format!("{}", r >> 16);
                    let fields: [(&str, &[u8]); 3] = [
                        ("Content-Type", b"text/plain"),
                        ("Content-Length", len.as_bytes()),
                        ("Connection", b"close"),
                    ];
                    if conn.send_headers(stream, status, &fields, end).is_ok() && !end {
                        bodies.insert(stream, (r >> 8) as usize % BODY.len());
                        push(&mut conn, &mut bodies, stream);
                    }
                    if r.is_multiple_of(23) {
                        conn.reset_stream(stream, ErrorCode::CANCEL);
                        bodies.remove(&stream);
                    }
                    if r.is_multiple_of(101) {
                        conn.shutdown();
                    }
                }
                Event::Data { data, .. } => assert!(data.len() <= l.max_frame_size as usize),
                Event::Writable { stream } => push(&mut conn, &mut bodies, stream),
                Event::Reset { stream, .. } => {
                    bodies.remove(&stream);
                }
                Event::GoAway { .. } => {}
                Event::Closed { .. } => {
                    closed += 1;
                    assert_eq!(closed, 1, "Closed reported twice");
                    bodies.clear();
                }
            }
        }
        let st = conn.stats();
        assert!(st.input_bytes <= l.input_buffer);
        assert!(
            st.output_bytes <= l.output_buffer + MAX_RESPONSE_HEADER_BLOCK + 1024,
            "output {} beyond its bound",
            st.output_bytes
        );
        assert!(st.hpack_table_bytes <= (l.header_table_size as usize).max(4096));
        assert!(st.open_streams <= l.max_concurrent_streams as usize);
        let out = conn.output().len();
        let n = match rng.next() % 4 {
            0 => 0,
            1 => out,
            _ => (rng.next() as usize) % (out + 1),
        };
        conn.consume_output(n);
        if rng.next().is_multiple_of(16) {
            now += u64::from(rng.next() % 5000);
            conn.on_timeout(now);
        }
        if conn.wants_close() {
            assert!(conn.deadline().is_none() || conn.output().is_empty());
            break;
        }
        if taken == 0 && n == 0 && out == 0 {
            // Nothing moves: let time pass to the next deadline.
            match conn.deadline() {
                Some(d) => {
                    now = now.max(d);
                    conn.on_timeout(now);
                }
                None => break,
            }
        }
    }
}

/// Turns records `kind flags stream len payload…` into a client byte
/// stream: the preface, a SETTINGS frame, then one well-framed frame per
/// record. A kind with the high bit set becomes a HEADERS frame carrying a
/// valid request whose path is the payload (so the fuzzer reaches request
/// handling without learning HPACK); otherwise the low nibble is the frame
/// type and the payload is raw.
pub fn frames_input(data: &[u8]) -> Vec<u8> {
    let mut out = frame::PREFACE.to_vec();
    let mut rest = data;
    let settings_len = usize::from(rest.first().copied().unwrap_or(0) % 4) * 6;
    let settings = rest.get(1..1 + settings_len).unwrap_or(&[]);
    frame::write_header(&mut out, settings.len(), frame::SETTINGS, 0, 0);
    out.extend_from_slice(settings);
    rest = rest.get(1 + settings_len..).unwrap_or(&[]);
    while let [kind, flags, stream, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let payload = &tail[..n];
        rest = &tail[n..];
        let stream = u32::from(*stream);
        if kind & 0x80 != 0 {
            let mut block = Vec::new();
            crate::hpack::encode_literal(
                &mut block,
                b":method",
                if kind & 0x40 != 0 { b"POST" } else { b"GET" },
            );
            crate::hpack::encode_literal(&mut block, b":scheme", b"https");
            crate::hpack::encode_literal(&mut block, b":authority", b"fuzz.example");
            let mut path = alloc::vec![b'/'];
            path.extend(payload.iter().map(|b| b'!' + b % 94));
            crate::hpack::encode_literal(&mut block, b":path", &path);
            frame::write_header(
                &mut out,
                block.len(),
                frame::HEADERS,
                flags | frame::END_HEADERS,
                stream,
            );
            out.extend_from_slice(&block);
        } else {
            frame::write_header(&mut out, payload.len(), kind & 0x0f, *flags, stream);
            out.extend_from_slice(payload);
        }
    }
    out
}
