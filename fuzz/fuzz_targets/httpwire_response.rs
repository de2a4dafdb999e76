//! `unipi_httpwire::ResponseReader`: one response (status line, header fields, interim 1xx
//! heads, body framed by Content-Length, chunked coding or the end of the connection) fed in
//! pieces, then the connection closed. The same input fed in one piece must give the same
//! head, body and result; header lookups run on every head.
//!
//! Input: `flags (1) | seed (4) | server bytes`; flag bit 0: the response to a HEAD request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_fuzz::{Chunks, take_u32};
use unipi_httpwire::{
    BodyLimits, ResponseError, ResponseEvent, ResponseHead, ResponseLimits, ResponseReader,
};

fn limits() -> ResponseLimits {
    ResponseLimits {
        max_head_bytes: 4096,
        max_headers: 16,
        body: BodyLimits {
            max_content_bytes: 1 << 16,
            max_size_line_bytes: 256,
            max_trailer_bytes: 1024,
        },
    }
}

/// What a reader made of the input: head, body, whether it completed, error.
type Seen = (Option<ResponseHead>, Vec<u8>, bool, Option<ResponseError>, u64);

fn read(data: &[u8], head_request: bool, pieces: Vec<&[u8]>) -> Seen {
    let mut r = if head_request {
        ResponseReader::for_head_request(limits())
    } else {
        ResponseReader::new(limits())
    };
    let mut body = Vec::new();
    let mut used = 0usize;
    let mut error = None;
    'outer: for piece in pieces {
        let mut input = piece;
        loop {
            let before = input.len();
            match r.feed(&mut input) {
                Ok(ResponseEvent::NeedMore) => {
                    assert!(input.is_empty(), "NeedMore with input left");
                    used += before;
                    break;
                }
                Ok(ResponseEvent::Head) => {
                    let head = r.head().expect("head after Head");
                    let _ = head.header("content-type");
                    let _ = head.header_str("location");
                    let _ = head.media_type();
                    assert!(head.header_values("link").count() <= head.headers().count());
                    assert!((200..1000).contains(&head.status()));
                }
                Ok(ResponseEvent::Body(b)) => body.extend_from_slice(b),
                Ok(ResponseEvent::End) => {
                    used += before - input.len();
                    break 'outer;
                }
                Err(e) => {
                    error = Some(e);
                    break 'outer;
                }
            }
            used += before - input.len();
        }
    }
    assert!(used <= data.len());
    if error.is_none() && !r.is_complete() {
        if let Err(e) = r.peer_closed() {
            error = Some(e);
        }
    }
    if error.is_none() {
        assert!(r.is_complete());
        assert_eq!(r.received_bytes(), used as u64);
    }
    (r.head().cloned(), body, r.is_complete(), error, r.received_bytes())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (seed, server) = take_u32(rest);
    let head_request = flags & 1 != 0;
    let whole = read(server, head_request, vec![server]);
    let split = read(server, head_request, Chunks::new(seed, 64).split(server));
    assert_eq!(whole.3.is_some(), split.3.is_some(), "result depends on the split");
    if whole.3.is_none() {
        assert_eq!(whole.0, split.0, "head depends on the split");
        assert_eq!(whole.1, split.1, "body depends on the split");
        assert_eq!(whole.2, split.2);
        assert_eq!(whole.4, split.4);
    }
});
