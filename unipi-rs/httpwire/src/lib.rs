//! The HTTP/1.1 wire codec of unipi-rs, shared by every part that speaks HTTP: the Git
//! client (smart HTTP), the ACME client and the web server. `no_std` + `alloc`, no `unsafe`,
//! sans-IO: it turns bytes into events and parts into bytes, and never touches a socket.
//!
//! * [`ResponseReader`] reads one response fed in pieces of any size: the status line and
//!   header fields (parsed by [`httparse`]; any field can be looked up by name through
//!   [`ResponseHead`]), then the body, framed by `Content-Length`, chunked coding or the end
//!   of the connection. Every size is bounded by [`ResponseLimits`].
//! * [`BodyDecoder`] is the body half on its own, for requests as well as responses: the
//!   strict chunked decoder (CRLF only, bounded extensions and trailers, sizes parsed by
//!   [`httparse::parse_chunk_size`]) and `Content-Length` bodies, handing decoded bytes out
//!   or dropping them, within a content limit ([`BodyLimits`]).
//! * [`Request`] writes a request head and body from validated parts (nothing a caller
//!   passes can inject a line); [`basic_authorization`] builds an HTTP Basic credential.
//! * [`printable`] makes text a peer sent safe to log.
//!
//! Parsing is httparse's (well fuzzed and used across the Rust HTTP stack); what this crate
//! adds is streaming, framing, limits and the strictness a server needs against request
//! smuggling. Compression, transfer codings other than chunked, protocol upgrades and
//! pipelined responses are not supported and are reported as errors.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod body;
mod request;
mod response;
mod text;

pub use body::{BodyDecoder, BodyError, BodyLimits, Decoded, Framing};
pub use request::{Request, RequestError, basic_authorization};
pub use response::{ResponseError, ResponseEvent, ResponseHead, ResponseLimits, ResponseReader};
pub use text::printable;
