//! Message bodies: where one ends (RFC 9112 §6) and the strict chunked decoder (§7.1).
//!
//! A [`BodyDecoder`] is made for one body from its [`Framing`] and is fed the bytes that
//! follow the head, in pieces of any size. It either hands the decoded content out
//! ([`BodyDecoder::decode`]) or drops it ([`BodyDecoder::skip`]); both stop exactly at the
//! end of the body, so whatever follows (the next request or response) stays with the
//! caller. The content is counted against [`BodyLimits::max_content_bytes`].
//!
//! The chunked decoder is strict where leniency has been used to smuggle requests: every
//! line ends with CRLF (a bare LF is an error), the size is hexadecimal and parsed by
//! [`httparse::parse_chunk_size`], extensions and trailer fields contain no control
//! characters besides HTAB, and both are bounded in bytes. Trailer fields are checked with
//! [`httparse::parse_headers`] and dropped.

use alloc::vec::Vec;
use core::fmt;

/// Limits for one body. Every decoded byte and every framing byte that is buffered is
/// counted against one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimits {
    /// Maximum content (decoded body) in bytes (default 16 MiB).
    pub max_content_bytes: u64,
    /// Maximum length of one chunk-size line, extensions and CRLF included (default 1 KiB).
    pub max_size_line_bytes: usize,
    /// Maximum length of the trailer section, final CRLF included (default 8 KiB).
    pub max_trailer_bytes: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_content_bytes: 16 << 20,
            max_size_line_bytes: 1024,
            max_trailer_bytes: 8192,
        }
    }
}

/// At most this many trailer fields are accepted (they are only checked, then dropped).
const MAX_TRAILER_FIELDS: usize = 32;

/// How a body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (responses to HEAD, 1xx, 204, 304; requests without framing headers).
    Empty,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// A response without either: the body ends when the server closes the connection.
    UntilClose,
}

/// Why a body could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// More content than [`BodyLimits::max_content_bytes`] (a server answers `413`).
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Broken chunked framing (a server answers `400`); the phrase says what is wrong.
    Malformed(&'static str),
    /// The connection closed before the body was complete.
    Truncated,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            BodyError::Malformed(what) => write!(f, "malformed chunked body: {what}"),
            BodyError::Truncated => f.write_str("connection closed before the end of the body"),
        }
    }
}

impl core::error::Error for BodyError {}

/// What one [`BodyDecoder::decode`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Bytes of the input used (framing and content).
    pub consumed: usize,
    /// Decoded content: a sub-slice of the consumed input, possibly empty.
    pub data: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// `Content-Length` body: bytes left.
    Length {
        left: u64,
    },
    /// Collecting a chunk-size line in `line`.
    SizeLine,
    /// Inside a chunk: bytes left.
    ChunkData {
        left: u64,
    },
    /// After a chunk's data: expecting CR, then LF.
    ChunkCr,
    ChunkLf,
    /// Collecting the trailer section in `line`.
    Trailer,
    /// Until the connection closes.
    UntilClose,
    Done,
}

/// A streaming decoder for one message body: strict chunked coding, `Content-Length` or
/// until the connection closes, handing decoded bytes out or dropping them, within
/// [`BodyLimits`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyDecoder {
    state: State,
    limits: BodyLimits,
    /// The size line or trailer section being collected (bounded by the limits).
    line: Vec<u8>,
    /// Content bytes announced or seen so far.
    content: u64,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`. A `Content-Length` above the content limit
    /// is reported by the first [`decode`](Self::decode) or [`skip`](Self::skip) call, before
    /// any byte is taken.
    pub fn new(framing: Framing, limits: BodyLimits) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length { left: n },
            Framing::Chunked => State::SizeLine,
            Framing::UntilClose => State::UntilClose,
        };
        let content = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        BodyDecoder {
            state,
            limits,
            line: Vec::new(),
            content,
        }
    }

    /// True once the whole body has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Content bytes so far (for `Content-Length` bodies: the announced length).
    pub fn content_bytes(&self) -> u64 {
        self.content
    }

    /// The connection closed: ends a body delimited by the close, and is
    /// [`BodyError::Truncated`] for any other body that is not complete.
    pub fn peer_closed(&mut self) -> Result<(), BodyError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(BodyError::Truncated),
        }
    }

    /// Drops body bytes from the front of `input`; returns how many belonged to the body
    /// (fewer than `input.len()` only when the body ended inside it).
    pub fn skip(&mut self, input: &[u8]) -> Result<usize, BodyError> {
        let mut used = 0;
        while used < input.len() && !self.is_done() {
            used += self.decode(&input[used..])?.consumed;
        }
        Ok(used)
    }

    /// Decodes from the front of `input`: consumes framing and at most one run of content,
    /// which it returns. Call again with the rest of the input until it is used up or the
    /// body [is done](Self::is_done); every call on non-empty input before the end consumes
    /// at least one byte.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Decoded<'a>, BodyError> {
        let nothing = Decoded {
            consumed: 0,
            data: &[],
        };
        if self.content > self.limits.max_content_bytes {
            return Err(BodyError::TooLarge {
                limit: self.limits.max_content_bytes,
            });
        }
        let Some(&first) = input.first() else {
            return Ok(nothing);
        };
        match self.state {
            State::Done => Ok(nothing),
            State::Length { left } => {
                let (data, left) = take(input, left);
                self.state = if left == 0 {
                    State::Done
                } else {
                    State::Length { left }
                };
                Ok(Decoded {
                    consumed: data.len(),
                    data,
                })
            }
            State::UntilClose => {
                self.content += input.len() as u64;
                if self.content > self.limits.max_content_bytes {
                    return Err(BodyError::TooLarge {
                        limit: self.limits.max_content_bytes,
                    });
                }
                Ok(Decoded {
                    consumed: input.len(),
                    data: input,
                })
            }
            State::ChunkData { left } => {
                let (data, left) = take(input, left);
                self.state = if left == 0 {
                    State::ChunkCr
                } else {
                    State::ChunkData { left }
                };
                Ok(Decoded {
                    consumed: data.len(),
                    data,
                })
            }
            State::ChunkCr | State::ChunkLf => {
                let want = if self.state == State::ChunkCr {
                    b'\r'
                } else {
                    b'\n'
                };
                if first != want {
                    return Err(BodyError::Malformed("chunk data not followed by CRLF"));
                }
                self.state = if want == b'\r' {
                    State::ChunkLf
                } else {
                    State::SizeLine
                };
                Ok(Decoded {
                    consumed: 1,
                    data: &[],
                })
            }
            State::SizeLine => {
                let consumed = self.collect_line(input, self.limits.max_size_line_bytes)?;
                if self.line.last() == Some(&b'\n') {
                    self.end_size_line()?;
                }
                Ok(Decoded {
                    consumed,
                    data: &[],
                })
            }
            State::Trailer => {
                let consumed = self.collect_line(input, self.limits.max_trailer_bytes)?;
                if self.line.last() == Some(&b'\n') {
                    self.end_trailer_line()?;
                }
                Ok(Decoded {
                    consumed,
                    data: &[],
                })
            }
        }
    }

    /// Appends `input` up to and including the first LF to `line`, within `max` bytes.
    fn collect_line(&mut self, input: &[u8], max: usize) -> Result<usize, BodyError> {
        let n = match input.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => input.len(),
        };
        if self.line.len() + n > max {
            return Err(BodyError::Malformed(if self.state == State::Trailer {
                "trailer section too long"
            } else {
                "chunk size line too long"
            }));
        }
        self.line.extend_from_slice(&input[..n]);
        Ok(n)
    }

    /// A complete chunk-size line (ending in LF) is in `line`.
    fn end_size_line(&mut self) -> Result<(), BodyError> {
        let line = &self.line;
        let Some(text) = line.strip_suffix(b"\r\n") else {
            return Err(BodyError::Malformed("chunk size line ends with a bare LF"));
        };
        if !text.first().is_some_and(u8::is_ascii_hexdigit) {
            return Err(BodyError::Malformed("chunk size is not hexadecimal"));
        }
        if text.iter().any(|&b| is_control(b)) {
            return Err(BodyError::Malformed("control character in chunk extension"));
        }
        let size = match httparse::parse_chunk_size(line) {
            Ok(httparse::Status::Complete((used, size))) if used == line.len() => size,
            _ => return Err(BodyError::Malformed("invalid chunk size")),
        };
        self.line.clear();
        if size == 0 {
            self.state = State::Trailer;
            return Ok(());
        }
        self.content = self.content.saturating_add(size);
        if self.content > self.limits.max_content_bytes {
            return Err(BodyError::TooLarge {
                limit: self.limits.max_content_bytes,
            });
        }
        self.state = State::ChunkData { left: size };
        Ok(())
    }

    /// The trailer section in `line` got another line (ending in LF).
    fn end_trailer_line(&mut self) -> Result<(), BodyError> {
        if !self.line.ends_with(b"\r\n") {
            return Err(BodyError::Malformed("trailer line ends with a bare LF"));
        }
        let last_line_empty = self.line.len() == 2 || self.line.ends_with(b"\n\r\n");
        if !last_line_empty {
            return Ok(());
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
        match httparse::parse_headers(&self.line, &mut fields) {
            Ok(httparse::Status::Complete((used, _))) if used == self.line.len() => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(BodyError::Malformed("too many trailer fields"));
            }
            _ => return Err(BodyError::Malformed("invalid trailer field")),
        }
        self.line = Vec::new();
        self.state = State::Done;
        Ok(())
    }
}

/// Control characters other than HTAB (CR and LF included).
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Splits off at most `left` bytes of `input`; returns them and what is left after.
fn take(input: &[u8], left: u64) -> (&[u8], u64) {
    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
    (&input[..n], left - n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn limits(max: u64) -> BodyLimits {
        BodyLimits {
            max_content_bytes: max,
            ..BodyLimits::default()
        }
    }

    /// Decodes `input` in pieces of `step` bytes; returns (content, bytes used, done).
    fn run(
        framing: Framing,
        input: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, usize, bool), BodyError> {
        let mut d = BodyDecoder::new(framing, limits(1000));
        let mut out = vec![];
        let mut used = 0;
        while used < input.len() && !d.is_done() {
            let end = (used + step).min(input.len());
            let mut piece = &input[used..end];
            while !piece.is_empty() && !d.is_done() {
                let r = d.decode(piece)?;
                assert!(r.consumed > 0, "no progress");
                out.extend_from_slice(r.data);
                piece = &piece[r.consumed..];
                used += r.consumed;
            }
        }
        Ok((out, used, d.is_done()))
    }

    #[test]
    fn content_length() {
        let (out, used, done) = run(Framing::Length(5), b"helloGET", 3).unwrap();
        assert_eq!((out.as_slice(), used, done), (&b"hello"[..], 5, true));
        assert!(BodyDecoder::new(Framing::Length(0), limits(0)).is_done());
        assert!(BodyDecoder::new(Framing::Empty, limits(0)).is_done());
        let mut d = BodyDecoder::new(Framing::Length(1001), limits(1000));
        assert_eq!(d.skip(b"x"), Err(BodyError::TooLarge { limit: 1000 }));
        let mut d = BodyDecoder::new(Framing::Length(3), limits(1000));
        assert_eq!(d.skip(b"ab"), Ok(2));
        assert_eq!(d.peer_closed(), Err(BodyError::Truncated));
    }

    #[test]
    fn until_close() {
        let mut d = BodyDecoder::new(Framing::UntilClose, limits(10));
        assert_eq!(d.skip(b"0123456789"), Ok(10));
        assert!(!d.is_done());
        assert_eq!(d.peer_closed(), Ok(()));
        assert!(d.is_done());
        let mut d = BodyDecoder::new(Framing::UntilClose, limits(10));
        assert_eq!(
            d.skip(b"0123456789a"),
            Err(BodyError::TooLarge { limit: 10 })
        );
    }

    #[test]
    fn chunked_every_split() {
        let body =
            b"5\r\nhello\r\n1a;ext=1;q=\"x y\"\r\nabcdefghijklmnopqrstuvwxyz\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\nY:\t2\r\n\r\nGET";
        for step in 1..body.len() {
            let (out, used, done) = run(Framing::Chunked, body, step).unwrap();
            assert_eq!(out, b"helloabcdefghijklmnopqrstuvwxyz0123456789", "{step}");
            assert_eq!((used, done), (body.len() - 3, true), "{step}");
        }
        let mut d = BodyDecoder::new(Framing::Chunked, limits(1000));
        assert_eq!(d.skip(b"0\r\n\r\nX"), Ok(5));
        assert!(d.is_done());
        assert_eq!(d.content_bytes(), 0);
    }

    #[test]
    fn chunked_errors() {
        for (bad, why) in [
            (&b"\r\n"[..], "chunk size is not hexadecimal"),
            (b";x\r\n", "chunk size is not hexadecimal"),
            (b"g\r\n", "chunk size is not hexadecimal"),
            (b"5\nhello\r\n", "chunk size line ends with a bare LF"),
            (b"5\r\nhelloX", "chunk data not followed by CRLF"),
            (b"5\r\nhello\n", "chunk data not followed by CRLF"),
            (b"5\r\nhello\r\r", "chunk data not followed by CRLF"),
            (b"12345678901234567\r\n", "invalid chunk size"),
            (b"5 6\r\n", "invalid chunk size"),
            (b"5;a\x01\r\n", "control character in chunk extension"),
            (b"5;a\nb\r\n", "chunk size line ends with a bare LF"),
            (b"5;a\rb\r\n", "control character in chunk extension"),
            (b"0\r\nX: 1\n\r\n", "trailer line ends with a bare LF"),
            (b"0\r\n\n", "trailer line ends with a bare LF"),
            (b"0\r\nno colon\r\n\r\n", "invalid trailer field"),
            (b"0\r\nX: a\x01\r\n\r\n", "invalid trailer field"),
        ] {
            let mut d = BodyDecoder::new(Framing::Chunked, limits(1 << 40));
            assert_eq!(d.skip(bad), Err(BodyError::Malformed(why)), "{bad:?}");
        }
        let mut d = BodyDecoder::new(Framing::Chunked, limits(1000));
        assert_eq!(d.skip(b"3e9\r\n"), Err(BodyError::TooLarge { limit: 1000 }));
        let mut d = BodyDecoder::new(Framing::Chunked, limits(1000));
        assert_eq!(d.skip(b"1f4\r\n").map(|_| ()), Ok(()));
        assert_eq!(d.skip(&[b'x'; 500]), Ok(500));
        assert_eq!(
            d.skip(b"\r\n1f5\r\n"),
            Err(BodyError::TooLarge { limit: 1000 })
        );
        // The largest size httparse accepts fails on the content limit, without overflow.
        let mut d = BodyDecoder::new(Framing::Chunked, limits(u64::MAX - 1));
        assert_eq!(
            d.skip(b"1\r\nx\r\nffffffffffffffff\r\n"),
            Err(BodyError::TooLarge {
                limit: u64::MAX - 1
            })
        );
        let mut d = BodyDecoder::new(Framing::Chunked, limits(1000));
        assert_eq!(d.skip(b"1;"), Ok(2));
        assert_eq!(
            d.skip(&[b'a'; 2000]),
            Err(BodyError::Malformed("chunk size line too long"))
        );
        let mut d = BodyDecoder::new(Framing::Chunked, limits(1000));
        let mut trailer = b"0\r\n".to_vec();
        for _ in 0..1000 {
            trailer.extend_from_slice(b"X-Filler: 1234567890\r\n");
        }
        assert_eq!(
            d.skip(&trailer),
            Err(BodyError::Malformed("trailer section too long"))
        );
        let mut d = BodyDecoder::new(Framing::Chunked, limits(1000));
        let mut many = b"0\r\n".to_vec();
        for _ in 0..40 {
            many.extend_from_slice(b"X: 1\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            d.skip(&many),
            Err(BodyError::Malformed("too many trailer fields"))
        );
        let mut d = BodyDecoder::new(Framing::Chunked, limits(1000));
        assert_eq!(d.skip(b"5\r\nhel"), Ok(6));
        assert_eq!(d.peer_closed(), Err(BodyError::Truncated));
    }
}
