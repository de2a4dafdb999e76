//! A sans-IO HTTP/2 server connection (RFC 9113) with HPACK (RFC 7541),
//! for `no_std` + `alloc`.
//!
//! One [`Connection`] per TLS connection whose ALPN chose `h2`. It never
//! touches a socket or a clock: the caller moves decrypted bytes in with
//! [`Connection::receive`], takes bytes to encrypt from
//! [`Connection::output`], and passes a monotonic time in milliseconds
//! (e.g. `smoltcp::time::Instant::total_millis() as u64`). Requests come
//! out of [`Connection::poll`] as [`Event`]s; responses go in with
//! [`Connection::send_headers`] and [`Connection::send_data`]. Server push
//! is never used; priority signals are parsed and ignored (RFC 9113 §5.3).
//!
//! # Driving protocol
//!
//! Whenever the transport is readable or writable, or the deadline passed:
//!
//! | step | call | what to do with the result |
//! |---|---|---|
//! | 1. input | [`receive(bytes, now)`](Connection::receive) | it returns how many bytes it took (bounded input buffer); keep the rest and offer it again after step 2 |
//! | 2. events | [`poll(now)`](Connection::poll) until `None` | act on each [`Event`] (table below) |
//! | 3. output | [`output()`](Connection::output), [`consume_output(n)`](Connection::consume_output) | encrypt/send a prefix, report it; then go to step 2 again (consuming output resumes parsing and may make streams writable) |
//! | 4. close | [`wants_close()`](Connection::wants_close) | close the transport (TLS close_notify, TCP FIN) and drop the connection |
//! | 5. time | [`deadline()`](Connection::deadline), [`on_timeout(now)`](Connection::on_timeout) | sleep at most until the deadline; when it has passed call `on_timeout`, then step 2 |
//!
//! If the transport fails, call [`Connection::abort`].
//!
//! | `poll` returns | meaning | the caller |
//! |---|---|---|
//! | `Request { stream, head }` | a validated request ([`RequestHead`]: method, scheme, authority, path, fields) | serves it: [`send_headers`](Connection::send_headers), then [`send_data`](Connection::send_data) until all is accepted; if `head.has_body()`, `Data` events follow |
//! | `Data { stream, data, end_stream }` | request body bytes (borrowed; flow-control credit is returned by the connection) | reads them (webhook) or ignores them |
//! | `Writable { stream }` | a stream whose last `send_data` accepted less than offered can send again | calls `send_data` with the rest |
//! | `Reset { stream, .. }` | the stream is gone (client reset, or this side reset it) | drops the response state of that stream |
//! | `GoAway { code }` | the client will open no more streams | nothing (streams in progress finish) |
//! | `Closed { reason }` | the connection is finished; returned once | drops every stream; keeps draining output until `wants_close()` |
//!
//! `send_data` takes as much as the stream and connection windows and the
//! output bound allow and returns how much; keep the rest and offer it
//! again on `Writable`. Only streams that were refused in part are ever
//! reported writable, so nothing scans all streams.
//!
//! ```
//! use unipi_h2::{Connection, Event, Limits};
//!
//! let mut conn = Connection::new(Limits::default(), 0);
//! // What a client sends: preface, SETTINGS, one GET (HPACK: indexed
//! // :method GET, :scheme https, :path /, literal :authority "a").
//! let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
//! input.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
//! input.extend_from_slice(&[0, 0, 6, 1, 5, 0, 0, 0, 1, 0x82, 0x87, 0x84, 0x41, 0x01, b'a']);
//!
//! let taken = conn.receive(&input, 0);
//! assert_eq!(taken, input.len());
//! while let Some(event) = conn.poll(0) {
//!     if let Event::Request { stream, head } = event {
//!         assert_eq!((head.method(), head.path(), head.authority()), ("GET", "/", Some("a")));
//!         conn.send_headers(stream, 200, &[("content-type", b"text/plain")], false).unwrap();
//!         assert_eq!(conn.send_data(stream, b"hello", true), Ok(5));
//!     }
//! }
//! let wire = conn.output().to_vec(); // SETTINGS, SETTINGS ACK, HEADERS, DATA
//! conn.consume_output(wire.len());
//! assert!(wire.ends_with(b"hello"));
//! assert!(!conn.wants_close());
//! ```
//!
//! # Limits
//!
//! Every client-controlled quantity is bounded by [`Limits`] (defaults in
//! its documentation): concurrent streams, header list and block sizes,
//! CONTINUATION frames per block, HPACK table size, frame size, windows,
//! input and output buffers, and per-window counts of resets (rapid reset),
//! PINGs, SETTINGS and frames that do no work. Exceeding one ends the
//! connection with GOAWAY and the code [`ConnectionError::code`] names, or
//! resets one stream where the RFC says so. Work per call is proportional
//! to the bytes passed in plus the bounded buffers.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod connection;
mod error;
mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hpack;
mod limits;
mod request;
#[cfg(test)]
mod tests;

use core::fmt;

pub use connection::{Connection, Stats};
pub use error::{CloseReason, ConnectionError, ErrorCode, Flood, SendError};
pub use limits::Limits;
pub use request::RequestHead;

/// A block decoding to more than this many times
/// [`Limits::max_header_list_size`] ends the connection (HPACK bomb);
/// between one and this many times, the request gets `431`.
pub const BOMB_FACTOR: usize = 4;

/// Largest response header block [`Connection::send_headers`] encodes.
pub const MAX_RESPONSE_HEADER_BLOCK: usize = 64 * 1024;

/// A stream identifier (odd: client-initiated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(u32);

impl StreamId {
    /// The number on the wire.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The stream with number `id` (for tests of the serving layer).
    pub fn new(id: u32) -> Self {
        StreamId(id & 0x7fff_ffff)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What [`Connection::poll`] reports. See the [crate documentation](crate)
/// for what the caller does with each.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete, validated request head.
    Request {
        /// Its stream.
        stream: StreamId,
        /// Method, scheme, authority, path and fields.
        head: RequestHead,
    },
    /// Request body bytes (padding removed), or the end of the body
    /// (`end_stream`, possibly with empty `data`; trailers are validated
    /// and dropped). Only for streams whose response has not ended.
    Data {
        /// Its stream.
        stream: StreamId,
        /// The bytes; valid until the next call on the connection.
        data: &'a [u8],
        /// The body is complete.
        end_stream: bool,
    },
    /// The stream can take more [`Connection::send_data`].
    Writable {
        /// Its stream.
        stream: StreamId,
    },
    /// The stream is gone; drop its response.
    Reset {
        /// Its stream.
        stream: StreamId,
        /// The code of the RST_STREAM.
        code: ErrorCode,
        /// The client reset it (else this side did: a protocol error on the
        /// stream or a stalled window).
        by_peer: bool,
    },
    /// The client sent GOAWAY: no new requests; streams in progress finish.
    GoAway {
        /// The client's code.
        code: ErrorCode,
    },
    /// The connection is finished (returned once). Keep draining output
    /// until [`Connection::wants_close`].
    Closed {
        /// Why.
        reason: CloseReason,
    },
}
