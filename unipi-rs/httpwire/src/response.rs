//! The streaming HTTP/1.1 response reader: status line and header fields (parsed by
//! [`httparse`]), then the body, framed by `Content-Length`, chunked coding or the end of the
//! connection (RFC 9112 §6.3).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use crate::body::{BodyDecoder, BodyError, BodyLimits, Framing};

/// Limits for one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Maximum size of the response head (status line, header fields, empty line) in bytes
    /// (default 16 KiB). Interim (1xx) heads count separately.
    pub max_head_bytes: usize,
    /// Maximum number of header fields (default 64).
    pub max_headers: usize,
    /// Limits of the body.
    pub body: BodyLimits,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_head_bytes: 16 << 10,
            max_headers: 64,
            body: BodyLimits::default(),
        }
    }
}

/// Why a response could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The head is larger than [`ResponseLimits::max_head_bytes`].
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More header fields than [`ResponseLimits::max_headers`].
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The head does not follow HTTP/1.x; the phrase says what is wrong.
    Malformed(&'static str),
    /// The response uses a feature this reader does not implement (compression, transfer
    /// codings other than chunked, protocol upgrades).
    Unsupported(&'static str),
    /// The body is malformed, too large or cut short.
    Body(BodyError),
    /// The connection closed before the response was complete.
    Truncated,
    /// Bytes arrived after the end of the response (nothing was requested).
    DataAfterEnd,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::HeadTooLarge { limit } => {
                write!(f, "HTTP response head larger than {limit} bytes")
            }
            ResponseError::TooManyHeaders { limit } => {
                write!(f, "HTTP response has more than {limit} header fields")
            }
            ResponseError::Malformed(what) => write!(f, "malformed HTTP response: {what}"),
            ResponseError::Unsupported(what) => write!(f, "unsupported HTTP response: {what}"),
            ResponseError::Body(e) => write!(f, "HTTP response body: {e}"),
            ResponseError::Truncated => {
                f.write_str("connection closed before the HTTP response was complete")
            }
            ResponseError::DataAfterEnd => f.write_str("data after the end of the HTTP response"),
        }
    }
}

impl core::error::Error for ResponseError {}

impl From<BodyError> for ResponseError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Truncated => ResponseError::Truncated,
            e => ResponseError::Body(e),
        }
    }
}

/// A parsed response head. Header lookups are ASCII case-insensitive and return the field
/// value without surrounding whitespace, as received (it may contain obs-text bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    status: u16,
    http11: bool,
    raw: Vec<u8>,
    /// Name and value ranges of each field in `raw`.
    fields: Vec<(Range<usize>, Range<usize>)>,
    framing: Framing,
    keep_alive: bool,
}

impl ResponseHead {
    /// The status code (100..=999).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// True for an HTTP/1.1 response, false for HTTP/1.0.
    pub fn is_http11(&self) -> bool {
        self.http11
    }

    /// How the body is delimited.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// True when the connection may carry another request after this response: HTTP/1.1
    /// without `Connection: close` (HTTP/1.0 with `Connection: keep-alive`), and a body
    /// whose end is known without closing.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The value of the first field called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.header_values(name).next()
    }

    /// The value of the first field called `name`, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The media type of `Content-Type`, without parameters (`text/html; charset=utf-8`
    /// gives `text/html`); compare it ASCII case-insensitively.
    pub fn media_type(&self) -> Option<&[u8]> {
        let value = self.header("content-type")?;
        Some(trim(value.split(|&b| b == b';').next().unwrap_or_default()))
    }

    /// The values of every field called `name`, in order (e.g. several `Link` fields).
    pub fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        self.fields.iter().filter_map(move |(n, v)| {
            let field = self.raw.get(n.clone())?;
            field
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| trim(self.raw.get(v.clone()).unwrap_or_default()))
        })
    }

    /// Every field as (name, value), in order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields.iter().map(|(n, v)| {
            (
                self.raw.get(n.clone()).unwrap_or_default(),
                trim(self.raw.get(v.clone()).unwrap_or_default()),
            )
        })
    }
}

/// What [`ResponseReader::feed`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseEvent<'a> {
    /// All input was used; more is needed.
    NeedMore,
    /// The head is complete: see [`ResponseReader::head`].
    Head,
    /// A piece of the (decoded) body.
    Body(&'a [u8]),
    /// The response is complete. Nothing after it was consumed.
    End,
}

#[derive(Clone, Debug)]
enum State {
    Head,
    Body(BodyDecoder),
    Done,
}

/// Streaming reader for one HTTP/1.1 response, fed in pieces of any size.
///
/// ```
/// use unipi_httpwire::{ResponseEvent, ResponseLimits, ResponseReader};
///
/// let mut reader = ResponseReader::new(ResponseLimits::default());
/// let mut input = &b"HTTP/1.1 201 Created\r\nLocation: /acct/1\r\nContent-Length: 2\r\n\r\nok"[..];
/// let mut body = Vec::new();
/// loop {
///     match reader.feed(&mut input).unwrap() {
///         ResponseEvent::Head => {}
///         ResponseEvent::Body(b) => body.extend_from_slice(b),
///         ResponseEvent::End | ResponseEvent::NeedMore => break,
///     }
/// }
/// let head = reader.head().unwrap();
/// assert_eq!((head.status(), head.header("location")), (201, Some(&b"/acct/1"[..])));
/// assert_eq!(body, b"ok");
/// ```
#[derive(Clone, Debug)]
pub struct ResponseReader {
    limits: ResponseLimits,
    head_request: bool,
    state: State,
    /// The head being collected.
    buf: Vec<u8>,
    head: Option<ResponseHead>,
    /// Bytes received so far (head and body framing included).
    received: u64,
}

impl ResponseReader {
    /// A reader for the response to any request but HEAD.
    pub fn new(limits: ResponseLimits) -> Self {
        ResponseReader {
            limits,
            head_request: false,
            state: State::Head,
            buf: Vec::new(),
            head: None,
            received: 0,
        }
    }

    /// A reader for the response to a HEAD request: it has no body, whatever its header
    /// fields say.
    pub fn for_head_request(limits: ResponseLimits) -> Self {
        ResponseReader {
            head_request: true,
            ..ResponseReader::new(limits)
        }
    }

    /// The head, once [`ResponseEvent::Head`] was returned.
    pub fn head(&self) -> Option<&ResponseHead> {
        self.head.as_ref()
    }

    /// True until the (final) head is complete.
    pub fn in_head(&self) -> bool {
        matches!(self.state, State::Head)
    }

    /// True once the response is complete.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Bytes consumed so far.
    pub fn received_bytes(&self) -> u64 {
        self.received
    }

    /// The connection closed: completes a body delimited by the close, and is
    /// [`ResponseError::Truncated`] for a response that is not complete otherwise.
    pub fn peer_closed(&mut self) -> Result<(), ResponseError> {
        match &mut self.state {
            State::Head => Err(ResponseError::Truncated),
            State::Body(body) => {
                body.peer_closed()?;
                self.state = State::Done;
                Ok(())
            }
            State::Done => Ok(()),
        }
    }

    /// Reads from `input`, advancing it past what was used, and returns one event.
    pub fn feed<'a>(&mut self, input: &mut &'a [u8]) -> Result<ResponseEvent<'a>, ResponseError> {
        loop {
            match &mut self.state {
                State::Head => {
                    if input.is_empty() {
                        return Ok(ResponseEvent::NeedMore);
                    }
                    if !self.collect_head(input)? {
                        return Ok(ResponseEvent::NeedMore);
                    }
                    let head = self.parse_head()?;
                    self.buf.clear();
                    if (100..200).contains(&head.status) {
                        if head.status == 101 {
                            return Err(ResponseError::Unsupported("protocol upgrade (101)"));
                        }
                        continue; // an interim response: the final one follows
                    }
                    self.state = State::Body(BodyDecoder::new(head.framing, self.limits.body));
                    self.buf = Vec::new();
                    self.head = Some(head);
                    return Ok(ResponseEvent::Head);
                }
                State::Body(body) => {
                    if body.is_done() {
                        self.state = State::Done;
                        return Ok(ResponseEvent::End);
                    }
                    let data: &'a [u8] = input;
                    if data.is_empty() {
                        return Ok(ResponseEvent::NeedMore);
                    }
                    let d = body.decode(data)?;
                    self.received += d.consumed as u64;
                    *input = &data[d.consumed..];
                    if !d.data.is_empty() {
                        return Ok(ResponseEvent::Body(d.data));
                    }
                }
                State::Done => {
                    return if input.is_empty() {
                        Ok(ResponseEvent::NeedMore)
                    } else {
                        Err(ResponseError::DataAfterEnd)
                    };
                }
            }
        }
    }

    /// Moves head bytes from `input` into `buf`, stopping after the empty line that ends the
    /// head; returns whether it was found.
    fn collect_head(&mut self, input: &mut &[u8]) -> Result<bool, ResponseError> {
        for (i, &b) in input.iter().enumerate() {
            self.buf.push(b);
            if self.buf.len() > self.limits.max_head_bytes {
                return Err(ResponseError::HeadTooLarge {
                    limit: self.limits.max_head_bytes,
                });
            }
            if b == b'\n' && (self.buf.ends_with(b"\n\n") || self.buf.ends_with(b"\n\r\n")) {
                *input = &input[i + 1..];
                self.received += i as u64 + 1;
                return Ok(true);
            }
        }
        self.received += input.len() as u64;
        *input = &[];
        Ok(false)
    }

    /// Parses the complete head in `buf`.
    fn parse_head(&self) -> Result<ResponseHead, ResponseError> {
        let raw = &self.buf;
        let mut fields = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut response = httparse::Response::new(&mut fields);
        match response.parse(raw) {
            Ok(httparse::Status::Complete(n)) if n == raw.len() => {}
            Ok(_) => return Err(ResponseError::Malformed("incomplete response head")),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ResponseError::TooManyHeaders {
                    limit: self.limits.max_headers,
                });
            }
            Err(e) => return Err(ResponseError::Malformed(httparse_reason(e))),
        }
        let status = response.code.unwrap_or(0);
        if status < 100 {
            return Err(ResponseError::Malformed("status code below 100"));
        }
        let http11 = response.version == Some(1);
        // Field positions as offsets into `raw` (httparse hands out sub-slices of it).
        let base = raw.as_ptr() as usize;
        let offset = |s: &[u8]| {
            let start = (s.as_ptr() as usize).wrapping_sub(base);
            start..start + s.len()
        };
        let fields: Vec<_> = response
            .headers
            .iter()
            .map(|h| (offset(h.name.as_bytes()), offset(h.value)))
            .collect();
        let mut head = ResponseHead {
            status,
            http11,
            raw: raw.clone(),
            fields,
            framing: Framing::UntilClose,
            keep_alive: http11,
        };
        self.frame(&mut head)?;
        Ok(head)
    }

    /// Decides the framing and persistence of `head` (RFC 9112 §6.3, §9.3).
    fn frame(&self, head: &mut ResponseHead) -> Result<(), ResponseError> {
        let connection = |option: &[u8]| {
            head.header_values("connection")
                .flat_map(list)
                .any(|t| t.eq_ignore_ascii_case(option))
        };
        let keep_alive = if head.http11 {
            !connection(b"close")
        } else {
            connection(b"keep-alive") && !connection(b"close")
        };
        head.keep_alive = keep_alive;
        for value in head.header_values("content-encoding") {
            if list(value).any(|c| !c.eq_ignore_ascii_case(b"identity")) {
                return Err(ResponseError::Unsupported("content coding (compression)"));
            }
        }
        let mut codings = 0usize;
        let mut chunked_last = false;
        for value in head.header_values("transfer-encoding") {
            for coding in list(value) {
                codings += 1;
                chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                if !chunked_last && !coding.eq_ignore_ascii_case(b"identity") {
                    return Err(ResponseError::Unsupported(
                        "transfer coding other than chunked",
                    ));
                }
            }
        }
        let chunked_count = head
            .header_values("transfer-encoding")
            .flat_map(list)
            .filter(|c| c.eq_ignore_ascii_case(b"chunked"))
            .count();
        let mut length: Option<u64> = None;
        for value in head.header_values("content-length") {
            let n =
                parse_decimal(value).ok_or(ResponseError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(ResponseError::Malformed(
                    "conflicting Content-Length fields",
                ));
            }
            length = Some(n);
        }
        let no_body = self.head_request || head.status == 204 || head.status == 304;
        head.framing = if no_body {
            Framing::Empty
        } else if codings > 0 {
            if !chunked_last || chunked_count != 1 {
                return Err(ResponseError::Malformed(
                    "chunked is not the final transfer coding",
                ));
            }
            if length.is_some() {
                head.keep_alive = false; // both framings: never reuse the connection
            }
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            head.keep_alive = false;
            Framing::UntilClose
        };
        Ok(())
    }
}

/// httparse's errors in words.
fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token",
        httparse::Error::Version => "not an HTTP/1.x response",
        httparse::Error::TooManyHeaders => "too many header fields",
    }
}

/// The non-empty elements of a comma-separated list value, trimmed.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
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

/// A decimal number of 1 to 19 digits (always fits in u64).
fn parse_decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        value
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ResponseLimits {
        ResponseLimits {
            max_head_bytes: 1024,
            ..ResponseLimits::default()
        }
    }

    /// Reads `resp` in pieces of `step`; returns (head, body, complete).
    fn read(resp: &[u8], step: usize) -> Result<(ResponseHead, Vec<u8>, bool), ResponseError> {
        let mut r = ResponseReader::new(limits());
        let mut body = Vec::new();
        for piece in resp.chunks(step) {
            let mut input = piece;
            loop {
                match r.feed(&mut input)? {
                    ResponseEvent::NeedMore => break,
                    ResponseEvent::Head => {}
                    ResponseEvent::Body(b) => body.extend_from_slice(b),
                    ResponseEvent::End => break,
                }
            }
        }
        let done = r.is_complete();
        Ok((
            r.head().cloned().ok_or(ResponseError::Truncated)?,
            body,
            done,
        ))
    }

    #[test]
    fn content_length_and_lookup() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\nReplay-Nonce:  abc-_DEF \r\nLink: <a>;rel=\"up\"\r\nlink: <b>;rel=\"index\"\r\nContent-Length: 5\r\n\r\nhello";
        for step in [1, 3, 1000] {
            let (head, body, done) = read(resp, step).unwrap();
            assert_eq!(head.status(), 200);
            assert!(head.is_http11() && head.keep_alive());
            assert_eq!(
                head.header_str("content-type"),
                Some("application/x-git-upload-pack-advertisement")
            );
            assert_eq!(head.header("REPLAY-NONCE"), Some(&b"abc-_DEF"[..]));
            let links: Vec<_> = head.header_values("Link").collect();
            assert_eq!(links, [&b"<a>;rel=\"up\""[..], b"<b>;rel=\"index\""]);
            assert_eq!(head.header("Retry-After"), None);
            assert_eq!(
                head.media_type(),
                Some(&b"application/x-git-upload-pack-advertisement"[..])
            );
            assert_eq!(head.headers().count(), 5);
            assert_eq!(head.framing(), Framing::Length(5));
            assert_eq!(body, b"hello");
            assert!(done);
        }
        let (_, body, done) = read(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 7).unwrap();
        assert!(body.is_empty() && done);
    }

    #[test]
    fn chunked_and_lf_heads() {
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n";
        for step in [1, 2, 5, 1000] {
            let (head, body, done) = read(resp, step).unwrap();
            assert_eq!(head.framing(), Framing::Chunked);
            assert_eq!(body, b"hello0123456789");
            assert!(done);
        }
        // LF-only line endings are tolerated in the head, never in the chunked framing.
        let (_, body, done) = read(
            b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\r\nabc\r\n0\r\n\r\n",
            1,
        )
        .unwrap();
        assert_eq!((body.as_slice(), done), (&b"abc"[..], true));
        assert_eq!(
            read(
                b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
                1
            )
            .unwrap_err(),
            ResponseError::Body(BodyError::Malformed("chunk size line ends with a bare LF"))
        );
        // chunked wins over Content-Length, and the connection is not reused
        let (head, body, _) = read(
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
            4,
        )
        .unwrap();
        assert_eq!((body.as_slice(), head.keep_alive()), (&b"x"[..], false));
    }

    #[test]
    fn until_close_interim_and_head_requests() {
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nbody bytes";
        let mut r = ResponseReader::new(limits());
        let mut input = &resp[..];
        assert_eq!(r.feed(&mut input).unwrap(), ResponseEvent::Head);
        assert_eq!(r.head().unwrap().status(), 200);
        assert!(!r.head().unwrap().keep_alive());
        assert_eq!(
            r.feed(&mut input).unwrap(),
            ResponseEvent::Body(b"body bytes")
        );
        assert_eq!(r.feed(&mut input).unwrap(), ResponseEvent::NeedMore);
        assert!(!r.is_complete());
        r.peer_closed().unwrap();
        assert!(r.is_complete());
        let mut r = ResponseReader::new(limits());
        let mut input = &b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"[..];
        while r.feed(&mut input).unwrap() != ResponseEvent::NeedMore {}
        assert_eq!(r.peer_closed(), Err(ResponseError::Truncated));
        // HEAD: no body despite Content-Length; the next bytes are not this response's.
        let mut r = ResponseReader::for_head_request(limits());
        let mut input = &b"HTTP/1.1 200 OK\r\nReplay-Nonce: n1\r\nContent-Length: 9\r\n\r\nX"[..];
        assert_eq!(r.feed(&mut input).unwrap(), ResponseEvent::Head);
        assert_eq!(r.feed(&mut input).unwrap(), ResponseEvent::End);
        assert_eq!(input, b"X");
        assert_eq!(r.feed(&mut input), Err(ResponseError::DataAfterEnd));
        assert_eq!(r.head().unwrap().header("replay-nonce"), Some(&b"n1"[..]));
        // 204 and 304 have no body either; HTTP/1.0 keep-alive is honoured.
        let mut r = ResponseReader::new(limits());
        let mut input =
            &b"HTTP/1.0 304 Not Modified\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n"[..];
        assert_eq!(r.feed(&mut input).unwrap(), ResponseEvent::Head);
        assert!(r.head().unwrap().keep_alive());
        assert_eq!(r.feed(&mut input).unwrap(), ResponseEvent::End);
    }

    #[test]
    fn errors_and_limits() {
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..100 {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(
            read(&big, 100).unwrap_err(),
            ResponseError::HeadTooLarge { limit: 1024 }
        );
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..65 {
            many.extend_from_slice(b"X: 1\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            read(&many, 100).unwrap_err(),
            ResponseError::TooManyHeaders { limit: 64 }
        );
        for (bad, want) in [
            (&b"HTTP/2 200 OK\r\n\r\n"[..], ResponseError::Malformed("not an HTTP/1.x response")),
            (b"HTTP/1.1 2x0 OK\r\n\r\n", ResponseError::Malformed("invalid status line")),
            (b"HTTP/1.1 099 Low\r\n\r\n", ResponseError::Malformed("status code below 100")),
            (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", ResponseError::Malformed("invalid header name")),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ResponseError::Malformed("conflicting Content-Length fields"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                ResponseError::Malformed("invalid Content-Length"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                ResponseError::Malformed("invalid Content-Length"),
            ),
            (b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", ResponseError::Malformed("invalid header name")),
            (b"garbage\r\n\r\n", ResponseError::Malformed("not an HTTP/1.x response")),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                ResponseError::Unsupported("transfer coding other than chunked"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
                ResponseError::Malformed("chunked is not the final transfer coding"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                ResponseError::Malformed("chunked is not the final transfer coding"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n",
                ResponseError::Unsupported("content coding (compression)"),
            ),
            (b"HTTP/1.1 101 Switching\r\n\r\n", ResponseError::Unsupported("protocol upgrade (101)")),
        ] {
            assert_eq!(
                read(bad, 1).unwrap_err(),
                want,
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
        let (head, _, _) = read(b"HTTP/1.1 200 OK\r\nContent-Type: Text/HTML ; charset=utf-8\r\nContent-Length: 0\r\n\r\n", 9).unwrap();
        assert_eq!(head.media_type(), Some(&b"Text/HTML"[..]));
        let (head, _, _) = read(b"HTTP/1.1 301 Moved\r\nLocation: https://h/x/info/refs?service=git-upload-pack\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 4).unwrap();
        assert_eq!(head.status(), 301);
        assert!(!head.keep_alive());
        assert_eq!(
            head.header_str("location"),
            Some("https://h/x/info/refs?service=git-upload-pack")
        );
        // The body limit applies to every framing.
        let mut r = ResponseReader::new(ResponseLimits {
            body: BodyLimits {
                max_content_bytes: 3,
                ..BodyLimits::default()
            },
            ..limits()
        });
        let mut input = &b"HTTP/1.1 200 OK\r\n\r\nabcd"[..];
        assert_eq!(r.feed(&mut input).unwrap(), ResponseEvent::Head);
        assert_eq!(
            r.feed(&mut input),
            Err(ResponseError::Body(BodyError::TooLarge { limit: 3 }))
        );
    }
}
