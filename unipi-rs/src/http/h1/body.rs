//! Reading request bodies.
//!
//! Only the webhook's body is read (its signature covers it); the server
//! must find where it ends to keep the connection in sync. `Content-Length` bodies are skipped by count; `Transfer-Encoding:
//! chunked` bodies are decoded and dropped. Both are bounded by a maximum
//! content size. The chunked decoder is strict: lines end with CRLF, chunk
//! sizes have at most 15 hex digits, extensions and trailers are bounded.

/// Longest chunk-size line (size + extensions).
const MAX_CHUNK_LINE: usize = 1024;
/// Longest trailer section.
const MAX_TRAILER: usize = 8192;

/// Why a body could not be discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// More content than allowed (`413`).
    TooLarge,
    /// Broken chunked framing (`400`).
    Malformed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Size { digits: u8 },
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// State of a body being skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyReader {
    chunked: bool,
    state: Chunk,
    /// Bytes left in the current chunk (or the whole `Content-Length` body).
    remaining: u64,
    /// Content bytes seen so far.
    total: u64,
    /// Bytes in the current size line or trailer section.
    line: usize,
}

impl BodyReader {
    /// A `Content-Length` body of `len` bytes.
    pub fn with_length(len: u64) -> Self {
        BodyReader {
            chunked: false,
            state: if len == 0 { Chunk::Done } else { Chunk::Data },
            remaining: len,
            total: len,
            line: 0,
        }
    }

    /// A chunked body.
    pub fn chunked() -> Self {
        BodyReader {
            chunked: true,
            state: Chunk::Size { digits: 0 },
            remaining: 0,
            total: 0,
            line: 0,
        }
    }

    /// True once the whole body has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Consumes body bytes from the front of `input`, handing the content
    /// (de-chunked) to `content` piece by piece; returns how many bytes were
    /// part of the body (the rest belongs to the next request). `max`
    /// bounds the total content size.
    pub fn feed(
        &mut self,
        input: &[u8],
        max: u64,
        mut content: impl FnMut(&[u8]),
    ) -> Result<usize, BodyError> {
        if !self.chunked {
            if self.total > max {
                return Err(BodyError::TooLarge);
            }
            let n = self.remaining.min(input.len() as u64);
            content(&input[..n as usize]);
            self.remaining -= n;
            if self.remaining == 0 {
                self.state = Chunk::Done;
            }
            return Ok(n as usize);
        }
        let mut i = 0;
        while i < input.len() && self.state != Chunk::Done {
            let b = input[i];
            match self.state {
                Chunk::Size { digits } => {
                    self.line += 1;
                    if let Some(d) = (b as char).to_digit(16) {
                        if digits >= 15 {
                            return Err(BodyError::Malformed);
                        }
                        self.remaining = self.remaining << 4 | u64::from(d);
                        self.state = Chunk::Size { digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(BodyError::Malformed);
                    } else if b == b'\r' {
                        self.state = Chunk::SizeLf;
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        self.state = Chunk::Ext;
                    } else {
                        return Err(BodyError::Malformed);
                    }
                    i += 1;
                }
                Chunk::Ext => {
                    self.line += 1;
                    if self.line > MAX_CHUNK_LINE {
                        return Err(BodyError::Malformed);
                    }
                    if b == b'\r' {
                        self.state = Chunk::SizeLf;
                    } else if (b < 0x20 && b != b'\t') || b == 0x7f {
                        return Err(BodyError::Malformed);
                    }
                    i += 1;
                }
                Chunk::SizeLf => {
                    if b != b'\n' {
                        return Err(BodyError::Malformed);
                    }
                    i += 1;
                    self.line = 0;
                    if self.remaining == 0 {
                        self.state = Chunk::TrailerStart;
                    } else {
                        self.total = self.total.saturating_add(self.remaining);
                        if self.total > max {
                            return Err(BodyError::TooLarge);
                        }
                        self.state = Chunk::Data;
                    }
                }
                Chunk::Data => {
                    let n = self.remaining.min((input.len() - i) as u64);
                    content(&input[i..i + n as usize]);
                    self.remaining -= n;
                    i += n as usize;
                    if self.remaining == 0 {
                        self.state = Chunk::DataCr;
                    }
                }
                Chunk::DataCr => {
                    if b != b'\r' {
                        return Err(BodyError::Malformed);
                    }
                    self.state = Chunk::DataLf;
                    i += 1;
                }
                Chunk::DataLf => {
                    if b != b'\n' {
                        return Err(BodyError::Malformed);
                    }
                    self.state = Chunk::Size { digits: 0 };
                    self.line = 0;
                    i += 1;
                }
                Chunk::TrailerStart => {
                    self.state = if b == b'\r' {
                        Chunk::EndLf
                    } else {
                        Chunk::TrailerLine
                    };
                    self.line += 1;
                    i += 1;
                }
                Chunk::TrailerLine => {
                    self.line += 1;
                    if self.line > MAX_TRAILER {
                        return Err(BodyError::Malformed);
                    }
                    if b == b'\r' {
                        self.state = Chunk::TrailerLf;
                    } else if (b < 0x20 && b != b'\t') || b == 0x7f {
                        return Err(BodyError::Malformed);
                    }
                    i += 1;
                }
                Chunk::TrailerLf => {
                    if b != b'\n' {
                        return Err(BodyError::Malformed);
                    }
                    self.state = Chunk::TrailerStart;
                    i += 1;
                }
                Chunk::EndLf => {
                    if b != b'\n' {
                        return Err(BodyError::Malformed);
                    }
                    self.state = Chunk::Done;
                    i += 1;
                }
                Chunk::Done => {}
            }
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns (consumed, done).
    fn run(r: &mut BodyReader, input: &[u8], step: usize) -> Result<(usize, bool), BodyError> {
        let mut used = 0;
        while used < input.len() && !r.is_done() {
            let before = used;
            let end = (used + step).min(input.len());
            let n = r.feed(&input[used..end], 1000, |_| {})?;
            used += n;
            if !r.is_done() {
                assert_eq!(n, end - before, "reader must take everything until done");
            }
        }
        Ok((used, r.is_done()))
    }

    #[test]
    fn content_length() {
        let mut r = BodyReader::with_length(5);
        assert_eq!(r.feed(b"abc", 1000, |_| {}), Ok(3));
        assert!(!r.is_done());
        assert_eq!(r.feed(b"deGET", 1000, |_| {}), Ok(2));
        assert!(r.is_done());
        assert!(BodyReader::with_length(0).is_done());
    }

    #[test]
    fn chunked_all_splits() {
        let body =
            b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nGET";
        for step in 1..body.len() {
            let mut r = BodyReader::chunked();
            assert_eq!(
                run(&mut r, body, step),
                Ok((body.len() - 3, true)),
                "{step}"
            );
        }
        let mut r = BodyReader::chunked();
        assert_eq!(r.feed(b"0\r\n\r\n", 1000, |_| {}), Ok(5));
        assert!(r.is_done());
    }

    #[test]
    fn chunked_errors() {
        for bad in [
            &b"\r\n"[..],
            b"g\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloX",
            b"5\r\nhello\r\r",
            b"1234567890abcdef0\r\n",
            b"0\r\nX\x01\r\n",
            b"0\r\n\rX",
            b"1;\x00\r\n",
        ] {
            let mut r = BodyReader::chunked();
            assert_eq!(
                r.feed(bad, 1 << 40, |_| {}),
                Err(BodyError::Malformed),
                "{bad:?}"
            );
        }
        let mut r = BodyReader::chunked();
        assert_eq!(r.feed(b"3e9\r\n", 1000, |_| {}), Err(BodyError::TooLarge));
        let mut r = BodyReader::chunked();
        assert_eq!(r.feed(b"1f4\r\n", 1000, |_| {}).map(|_| ()), Ok(()));
        assert_eq!(r.feed(&[b'x'; 500], 1000, |_| {}), Ok(500));
        assert_eq!(
            r.feed(b"\r\n1f5\r\n", 1000, |_| {}),
            Err(BodyError::TooLarge)
        );
        let mut r = BodyReader::chunked();
        let long_ext = [b'a'; 2000];
        assert_eq!(r.feed(b"1;", 1000, |_| {}), Ok(2));
        assert_eq!(r.feed(&long_ext, 1000, |_| {}), Err(BodyError::Malformed));
    }
}
