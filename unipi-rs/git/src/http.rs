//! A minimal HTTP/1.1 client codec: request serialisation and a streaming response decoder
//! (Content-Length, chunked, or body until close). No compression, no pipelining.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, sanitize};
use crate::oid::format_decimal;

/// Appends an HTTP/1.1 request. `headers` must not contain CR or LF (the caller only passes
/// validated values); `Content-Length` is added when `body` is `Some`.
pub(crate) fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(body) = body {
        let mut num = [0u8; 20];
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(format_decimal(body.len() as u64, &mut num));
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    UntilClose,
}

/// The parsed status line and the headers this client uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub keep_alive: bool,
    pub framing: Framing,
}

/// What the decoder produced from the input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HttpEvent<'a> {
    /// All input consumed; more is needed.
    NeedMore,
    /// The response head is complete (see [`ResponseReader::head`]).
    Head,
    /// A piece of the (de-chunked) body.
    Body(&'a [u8]),
    /// The body is complete.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataCr,
    DataLf,
    Trailer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

const MAX_CHUNK_LINE: usize = 1024;

/// Streaming decoder for one HTTP response.
#[derive(Debug)]
pub(crate) struct ResponseReader {
    state: State,
    line: Vec<u8>,
    trailer_bytes: usize,
    max_head: usize,
    head: Option<ResponseHead>,
}

impl ResponseReader {
    /// A decoder accepting response heads of up to `max_head` bytes.
    pub fn new(max_head: usize) -> Self {
        ResponseReader {
            state: State::Head,
            line: Vec::new(),
            trailer_bytes: 0,
            max_head,
            head: None,
        }
    }

    /// The response head, once [`HttpEvent::Head`] was returned.
    pub fn head(&self) -> Option<&ResponseHead> {
        self.head.as_ref()
    }

    /// True when the body is complete.
    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True while the head is still incomplete.
    pub fn in_head(&self) -> bool {
        self.state == State::Head
    }

    /// The server closed the connection: ends a body delimited by close, errors otherwise.
    pub fn eof(&mut self) -> Result<(), Error> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(Error::HttpProtocol(
                "connection closed before the response was complete",
            )),
        }
    }

    /// Decodes from `input`, advancing it past what was used, and returns one event.
    pub fn feed<'a>(&mut self, input: &mut &'a [u8]) -> Result<HttpEvent<'a>, Error> {
        loop {
            if input.is_empty() && self.state != State::Done {
                if let State::Length(0) = self.state {
                    self.state = State::Done;
                    return Ok(HttpEvent::End);
                }
                return Ok(HttpEvent::NeedMore);
            }
            match self.state {
                State::Head => {
                    let (&b, rest) = input.split_first().ok_or(Error::Usage("empty"))?;
                    *input = rest;
                    self.line.push(b);
                    if self.line.len() > self.max_head {
                        return Err(Error::HttpHeaderTooLarge {
                            limit: self.max_head,
                        });
                    }
                    if self.line.ends_with(b"\n\n") || self.line.ends_with(b"\r\n\r\n") {
                        let head = parse_head(&self.line)?;
                        self.line.clear();
                        if (100..200).contains(&head.status) {
                            continue; // interim response: read the next head
                        }
                        self.state = match head.framing {
                            Framing::Length(n) => State::Length(n),
                            Framing::Chunked => State::Chunked(Chunk::Size),
                            Framing::UntilClose => State::UntilClose,
                        };
                        self.head = Some(head);
                        return Ok(HttpEvent::Head);
                    }
                }
                State::Length(0) => {
                    self.state = State::Done;
                    return Ok(HttpEvent::End);
                }
                State::Length(n) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(input.len());
                    let (body, rest) = input.split_at(take);
                    *input = rest;
                    self.state = State::Length(n - take as u64);
                    return Ok(HttpEvent::Body(body));
                }
                State::UntilClose => {
                    let body = core::mem::take(input);
                    return Ok(HttpEvent::Body(body));
                }
                State::Chunked(Chunk::Data(n)) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(input.len());
                    let (body, rest) = input.split_at(take);
                    *input = rest;
                    let left = n - take as u64;
                    self.state = State::Chunked(if left == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(HttpEvent::Body(body));
                }
                State::Chunked(Chunk::DataCr) => {
                    let b = input[0];
                    *input = &input[1..];
                    self.state = match b {
                        b'\r' => State::Chunked(Chunk::DataLf),
                        b'\n' => State::Chunked(Chunk::Size),
                        _ => return Err(Error::HttpProtocol("missing CRLF after chunk")),
                    };
                }
                State::Chunked(Chunk::DataLf) => {
                    let b = input[0];
                    *input = &input[1..];
                    if b != b'\n' {
                        return Err(Error::HttpProtocol("missing CRLF after chunk"));
                    }
                    self.state = State::Chunked(Chunk::Size);
                }
                State::Chunked(Chunk::Size) => {
                    let b = input[0];
                    *input = &input[1..];
                    if b != b'\n' {
                        self.line.push(b);
                        if self.line.len() > MAX_CHUNK_LINE {
                            return Err(Error::HttpProtocol("chunk size line too long"));
                        }
                        continue;
                    }
                    let size = parse_chunk_size(&self.line)?;
                    self.line.clear();
                    self.state = State::Chunked(if size == 0 {
                        Chunk::Trailer
                    } else {
                        Chunk::Data(size)
                    });
                }
                State::Chunked(Chunk::Trailer) => {
                    let b = input[0];
                    *input = &input[1..];
                    self.trailer_bytes += 1;
                    if self.trailer_bytes > self.max_head {
                        return Err(Error::HttpHeaderTooLarge {
                            limit: self.max_head,
                        });
                    }
                    if b != b'\n' {
                        self.line.push(b);
                        continue;
                    }
                    let empty = self.line.is_empty() || self.line == b"\r";
                    self.line.clear();
                    if empty {
                        self.state = State::Done;
                        return Ok(HttpEvent::End);
                    }
                }
                State::Done => {
                    if input.is_empty() {
                        return Ok(HttpEvent::NeedMore);
                    }
                    return Err(Error::HttpProtocol("data after the end of the response"));
                }
            }
        }
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let hex = match line.iter().position(|&b| b == b';') {
        Some(i) => &line[..i],
        None => line,
    };
    let hex = trim(hex);
    if hex.is_empty() || hex.len() > 15 {
        return Err(Error::HttpProtocol("invalid chunk size"));
    }
    let mut n = 0u64;
    for &c in hex {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(Error::HttpProtocol("invalid chunk size")),
        };
        n = (n << 4) | u64::from(v);
    }
    Ok(n)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn parse_head(raw: &[u8]) -> Result<ResponseHead, Error> {
    let mut lines = raw
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let (version, rest) = match status_line.iter().position(|&b| b == b' ') {
        Some(i) => (&status_line[..i], &status_line[i + 1..]),
        None => return Err(Error::HttpProtocol("malformed status line")),
    };
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return Err(Error::HttpProtocol("not an HTTP/1.x response")),
    };
    let code = rest
        .get(..3)
        .ok_or(Error::HttpProtocol("malformed status line"))?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return Err(Error::HttpProtocol("malformed status code"));
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Err(Error::HttpProtocol("malformed status code"));
    }
    let mut head = ResponseHead {
        status,
        content_type: None,
        location: None,
        keep_alive: http11,
        framing: Framing::UntilClose,
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(Error::HttpProtocol("obsolete header line folding"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(Error::HttpProtocol("header line without ':'"))?;
        let name = &line[..colon];
        let value = trim(&line[colon + 1..]);
        if name.is_empty() || name.iter().any(|&b| b <= b' ' || b >= 0x7f) {
            return Err(Error::HttpProtocol("invalid header name"));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                return Err(Error::HttpProtocol("invalid Content-Length"));
            }
            let n = value
                .iter()
                .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
            if length.is_some_and(|l| l != n) {
                return Err(Error::HttpProtocol("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value
                .rsplit(|&b| b == b',')
                .next()
                .map(trim)
                .unwrap_or_default();
            if !last.eq_ignore_ascii_case(b"chunked") {
                return Err(Error::HttpProtocol("unsupported Transfer-Encoding"));
            }
            if value.split(|&b| b == b',').map(trim).any(|t| {
                !t.eq_ignore_ascii_case(b"chunked") && !t.eq_ignore_ascii_case(b"identity")
            }) {
                return Err(Error::HttpProtocol("unsupported Transfer-Encoding"));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            if !value.eq_ignore_ascii_case(b"identity") {
                return Err(Error::HttpProtocol("unsupported Content-Encoding"));
            }
        } else if name.eq_ignore_ascii_case(b"content-type") {
            head.content_type = Some(sanitize(value));
        } else if name.eq_ignore_ascii_case(b"location") {
            head.location = Some(String::from_utf8_lossy(value).into());
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    head.keep_alive = true;
                }
            }
        }
    }
    head.framing = if chunked {
        if length.is_some() {
            head.keep_alive = false;
        }
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else if status == 204 || status == 304 {
        Framing::Length(0)
    } else {
        head.keep_alive = false;
        Framing::UntilClose
    };
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn decode_all(resp: &[u8], step: usize) -> Result<(ResponseHead, Vec<u8>, bool), Error> {
        let mut r = ResponseReader::new(1024);
        let mut body = vec![];
        let mut done = false;
        for piece in resp.chunks(step) {
            let mut input = piece;
            loop {
                match r.feed(&mut input)? {
                    HttpEvent::NeedMore => break,
                    HttpEvent::Head => {}
                    HttpEvent::Body(b) => body.extend_from_slice(b),
                    HttpEvent::End => done = true,
                }
            }
        }
        Ok((
            r.head().cloned().ok_or(Error::Usage("no head"))?,
            body,
            done,
        ))
    }

    #[test]
    fn request_format() {
        let mut out = Vec::new();
        write_request(
            &mut out,
            "POST",
            "/r/git-upload-pack",
            "h:8080",
            &[("Git-Protocol", "version=2")],
            Some(b"0000"),
        );
        assert_eq!(
            out,
            b"POST /r/git-upload-pack HTTP/1.1\r\nHost: h:8080\r\nGit-Protocol: version=2\r\nContent-Length: 4\r\n\r\n0000"
        );
        let mut out = Vec::new();
        write_request(&mut out, "GET", "/", "h", &[], None);
        assert_eq!(out, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    }

    #[test]
    fn content_length() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\nContent-Length: 5\r\n\r\nhello";
        for step in [1, 3, 1000] {
            let (head, body, done) = decode_all(resp, step).unwrap();
            assert_eq!(head.status, 200);
            assert_eq!(
                head.content_type.as_deref(),
                Some("application/x-git-upload-pack-advertisement")
            );
            assert!(head.keep_alive);
            assert_eq!(body, b"hello");
            assert!(done);
        }
        let (_, body, done) =
            decode_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 7).unwrap();
        assert!(body.is_empty() && done);
    }

    #[test]
    fn chunked() {
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n";
        for step in [1, 2, 5, 1000] {
            let (head, body, done) = decode_all(resp, step).unwrap();
            assert_eq!(head.framing, Framing::Chunked);
            assert_eq!(body, b"hello0123456789");
            assert!(done);
        }
        // LF-only line endings are tolerated.
        let (_, body, done) = decode_all(
            b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
            1,
        )
        .unwrap();
        assert_eq!(body, b"abc");
        assert!(done);
        for bad in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n",
        ] {
            assert!(
                matches!(decode_all(bad, 1), Err(Error::HttpProtocol(_))),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn until_close_and_interim() {
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nbody bytes";
        let mut r = ResponseReader::new(1024);
        let mut input = &resp[..];
        assert_eq!(r.feed(&mut input).unwrap(), HttpEvent::Head);
        assert_eq!(r.head().unwrap().status, 200);
        assert!(!r.head().unwrap().keep_alive);
        assert_eq!(r.feed(&mut input).unwrap(), HttpEvent::Body(b"body bytes"));
        assert_eq!(r.feed(&mut input).unwrap(), HttpEvent::NeedMore);
        r.eof().unwrap();
        assert!(r.is_done());
        let mut r = ResponseReader::new(1024);
        let mut input = &b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"[..];
        while r.feed(&mut input).unwrap() != HttpEvent::NeedMore {}
        assert!(r.eof().is_err());
    }

    #[test]
    fn head_errors_and_limits() {
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..100 {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(
            decode_all(&big, 100).unwrap_err(),
            Error::HttpHeaderTooLarge { limit: 1024 }
        );
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
            b"garbage\r\n\r\n",
        ] {
            assert!(
                matches!(decode_all(bad, 1), Err(Error::HttpProtocol(_))),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
        let (head, _, _) = decode_all(b"HTTP/1.1 301 Moved\r\nLocation: https://h/x/info/refs?service=git-upload-pack\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 4).unwrap();
        assert_eq!(head.status, 301);
        assert!(!head.keep_alive);
        assert_eq!(
            head.location.as_deref(),
            Some("https://h/x/info/refs?service=git-upload-pack")
        );
    }
}
