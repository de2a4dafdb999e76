//! A response as the serving code decides it, before any framing: status,
//! the fields that depend on the request, and the content.
//!
//! HTTP/1.1 writes it as a status line and header block ([`super::h1`]);
//! HTTP/2 as a HEADERS frame. Both add the same connection-independent
//! fields (`Date`, `Server`, HSTS, `X-Content-Type-Options`) and derive
//! `Content-Length` from the content, except for `304`.

use alloc::borrow::Cow;
use alloc::string::String;
use core::fmt::{self, Write as _};

use super::date;
use crate::site::{Body, ETag};

/// Most fields a response carries (the file response is the largest).
pub const MAX_FIELDS: usize = 10;

/// A field value. Numbers, dates and tags are formatted when written, so
/// building a response allocates only for generated text.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    /// A text from the configuration or the code.
    Str(&'a str),
    /// A computed text (e.g. a `Location`).
    Text(String),
    /// A decimal number.
    Number(u64),
    /// An HTTP date (IMF-fixdate) from unix seconds.
    Date(u64),
    /// An entity tag, with its quotes.
    ETag(ETag),
    /// `bytes first-last/len` (`Content-Range` of a `206`).
    Range {
        /// First byte.
        first: u64,
        /// Last byte (inclusive).
        last: u64,
        /// Length of the whole representation.
        len: u64,
    },
    /// `bytes */len` (`Content-Range` of a `416`).
    Unsatisfied {
        /// Length of the whole representation.
        len: u64,
    },
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Text(s) => f.write_str(s),
            Value::Number(n) => write!(f, "{n}"),
            Value::Date(t) => f.write_str(core::str::from_utf8(&date::format(*t)).unwrap_or("")),
            Value::ETag(e) => f.write_str(e.as_str()),
            Value::Range { first, last, len } => write!(f, "bytes {first}-{last}/{len}"),
            Value::Unsatisfied { len } => write!(f, "bytes */{len}"),
        }
    }
}

/// What follows the header block.
#[derive(Clone, Debug)]
pub enum Content {
    /// Nothing (`Content-Length: 0`, or none at all for `304`).
    Empty,
    /// A short generated text.
    Text(Cow<'static, str>),
    /// `body[start..end]`, shared with the site (never copied).
    File {
        /// The file's bytes.
        body: Body,
        /// First byte sent.
        start: usize,
        /// One past the last byte sent.
        end: usize,
    },
}

impl Content {
    /// The number of content bytes (what `Content-Length` says).
    pub fn len(&self) -> usize {
        match self {
            Content::Empty => 0,
            Content::Text(t) => t.len(),
            Content::File { start, end, .. } => end.saturating_sub(*start),
        }
    }

    /// True when there are no content bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Response<'a> {
    /// The status code.
    pub status: u16,
    fields: heapless::Vec<(&'static str, Value<'a>), MAX_FIELDS>,
    /// The content.
    pub content: Content,
}

impl<'a> Response<'a> {
    /// A response with no fields and no content yet.
    pub fn new(status: u16) -> Response<'a> {
        Response {
            status,
            fields: heapless::Vec::new(),
            content: Content::Empty,
        }
    }

    /// Adds a field. Responses are built by this crate's serving code with
    /// at most [`MAX_FIELDS`] fields; a further one is dropped (and a debug
    /// build says so).
    pub fn field(mut self, name: &'static str, value: Value<'a>) -> Response<'a> {
        let pushed = self.fields.push((name, value)).is_ok();
        debug_assert!(pushed, "more than MAX_FIELDS fields");
        self
    }

    /// Sets the content.
    pub fn content(mut self, content: Content) -> Response<'a> {
        self.content = content;
        self
    }

    /// The fields, in order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &Value<'a>)> {
        self.fields.iter().map(|(n, v)| (*n, v))
    }

    /// Whether a `Content-Length` field goes with this response: always,
    /// except for `304` (whose length would be the selected
    /// representation's, which RFC 9110 §8.6 makes optional) and `1xx`.
    pub fn has_content_length(&self) -> bool {
        self.status != 304 && self.status >= 200
    }

    /// A response with a short `text/plain` body (or none).
    pub fn text(status: u16, text: impl Into<Cow<'static, str>>) -> Response<'a> {
        let text = text.into();
        let r = Response::new(status);
        if text.is_empty() {
            r
        } else {
            r.field("Content-Type", Value::Str("text/plain; charset=utf-8"))
                .content(Content::Text(text))
        }
    }

    /// An error: `<status> <reason>` as text.
    pub fn error(status: u16) -> Response<'a> {
        let mut text = String::new();
        let _ = writeln!(text, "{} {}", status, reason(status));
        Response::text(status, text)
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: String) -> Response<'a> {
        Response::new(status).field("Location", Value::Text(location))
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn values_format() {
        assert_eq!(Value::Number(42).to_string(), "42");
        assert_eq!(
            Value::Date(1_600_000_000).to_string(),
            "Sun, 13 Sep 2020 12:26:40 GMT"
        );
        assert_eq!(
            Value::Range {
                first: 0,
                last: 9,
                len: 100
            }
            .to_string(),
            "bytes 0-9/100"
        );
        assert_eq!(Value::Unsatisfied { len: 5 }.to_string(), "bytes */5");
    }

    #[test]
    fn error_text() {
        let r = Response::error(404);
        assert_eq!(r.content.len(), "404 Not Found\n".len());
        assert!(r.has_content_length());
        assert!(!Response::new(304).has_content_length());
    }
}
