//! Error codes on the wire (RFC 9113 §7) and the typed errors of this crate.

use core::fmt;

use crate::StreamId;
use crate::hpack::HpackError;

/// An HTTP/2 error code (RFC 9113 §7), as carried by RST_STREAM and
/// GOAWAY. Codes this crate does not know are kept as they came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful shutdown, or a stream no longer needed after a complete
    /// response.
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    /// An unspecific protocol error.
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    /// An unexpected internal error.
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    /// Flow-control limits were violated.
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    /// SETTINGS were not acknowledged in time.
    pub const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    /// A frame arrived after the stream was half-closed.
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    /// A frame had an invalid size.
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    /// The stream was refused before any processing; safe to retry.
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    /// The stream is no longer needed.
    pub const CANCEL: ErrorCode = ErrorCode(0x8);
    /// The header compression context cannot be maintained.
    pub const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    /// A CONNECT tunnel failed.
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    /// The peer behaves in a way that may generate excessive load.
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    /// The transport does not meet security requirements.
    pub const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    /// Use HTTP/1.1 for this request.
    pub const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    /// The RFC's name, or `0x…` for unknown codes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

/// Which flood limit of [`Limits`](crate::Limits) a client exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flood {
    /// Streams reset by the client before their response was complete, plus
    /// streams this side had to reset or refuse (rapid reset,
    /// CVE-2023-44487): [`Limits::max_resets`](crate::Limits::max_resets).
    Resets,
    /// PING frames: [`Limits::max_pings`](crate::Limits::max_pings).
    Pings,
    /// SETTINGS frames: [`Limits::max_settings`](crate::Limits::max_settings).
    Settings,
    /// Frames that do no work (empty DATA or CONTINUATION, PRIORITY,
    /// unknown types, frames for closed streams):
    /// [`Limits::max_idle_frames`](crate::Limits::max_idle_frames).
    IdleFrames,
}

impl fmt::Display for Flood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flood::Resets => "stream resets (rapid reset, CVE-2023-44487)",
            Flood::Pings => "PING frames",
            Flood::Settings => "SETTINGS frames",
            Flood::IdleFrames => "frames that do no work (empty DATA/CONTINUATION, PRIORITY, unknown or for closed streams)",
        })
    }
}

/// Why this side ended the connection. Each one was sent to the client as
/// GOAWAY with [`code`](ConnectionError::code), except
/// [`ConnectionError::OutputStalled`] (nothing can be sent any more).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The client did not start with the HTTP/2 connection preface (it may
    /// speak HTTP/1.1 although ALPN chose `h2`).
    BadPreface,
    /// The client broke a rule of RFC 9113; `what` names it.
    Protocol {
        /// The code sent in GOAWAY.
        code: ErrorCode,
        /// The rule that was broken.
        what: &'static str,
    },
    /// A frame larger than the SETTINGS_MAX_FRAME_SIZE this side advertised.
    FrameTooLarge {
        /// The frame's length.
        size: u32,
        /// The advertised maximum.
        limit: u32,
    },
    /// A header block could not be decoded (COMPRESSION_ERROR).
    Compression(HpackError),
    /// A header block decoded to far more than
    /// [`Limits::max_header_list_size`](crate::Limits::max_header_list_size)
    /// (an HPACK bomb; ENHANCE_YOUR_CALM).
    HpackBomb {
        /// The bound on decoded bytes per block.
        limit: usize,
    },
    /// A header block (HEADERS plus CONTINUATION) longer than
    /// [`Limits::max_header_block`](crate::Limits::max_header_block)
    /// (ENHANCE_YOUR_CALM).
    HeaderBlockTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More CONTINUATION frames in one header block than
    /// [`Limits::max_continuation_frames`](crate::Limits::max_continuation_frames)
    /// (CONTINUATION flood; ENHANCE_YOUR_CALM).
    ContinuationFlood {
        /// The limit.
        limit: u32,
    },
    /// More frames of one kind within
    /// [`Limits::flood_window_ms`](crate::Limits::flood_window_ms) than the
    /// limit allows (ENHANCE_YOUR_CALM).
    Flood {
        /// What was counted.
        kind: Flood,
        /// The limit per window.
        limit: u32,
        /// The window in milliseconds.
        window_ms: u64,
    },
    /// The client did not acknowledge our SETTINGS in time
    /// (SETTINGS_TIMEOUT).
    SettingsTimeout {
        /// The timeout in milliseconds.
        timeout_ms: u64,
    },
    /// A header block was not completed in time (slow CONTINUATION drip;
    /// ENHANCE_YOUR_CALM).
    HeaderTimeout {
        /// The timeout in milliseconds.
        timeout_ms: u64,
    },
    /// The client kept the connection flow-control window at zero while
    /// responses waited (zero-window stall; ENHANCE_YOUR_CALM).
    WindowStalled {
        /// The timeout in milliseconds.
        timeout_ms: u64,
    },
    /// Output was not consumed for too long (the client does not read);
    /// the connection is dropped without GOAWAY.
    OutputStalled {
        /// The timeout in milliseconds.
        timeout_ms: u64,
    },
}

impl ConnectionError {
    /// The code sent (or that would have been sent) in GOAWAY.
    pub fn code(&self) -> ErrorCode {
        match self {
            ConnectionError::BadPreface => ErrorCode::PROTOCOL_ERROR,
            ConnectionError::Protocol { code, .. } => *code,
            ConnectionError::FrameTooLarge { .. } => ErrorCode::FRAME_SIZE_ERROR,
            ConnectionError::Compression(_) => ErrorCode::COMPRESSION_ERROR,
            ConnectionError::SettingsTimeout { .. } => ErrorCode::SETTINGS_TIMEOUT,
            ConnectionError::OutputStalled { .. } => ErrorCode::CANCEL,
            ConnectionError::HpackBomb { .. }
            | ConnectionError::HeaderBlockTooLarge { .. }
            | ConnectionError::ContinuationFlood { .. }
            | ConnectionError::Flood { .. }
            | ConnectionError::HeaderTimeout { .. }
            | ConnectionError::WindowStalled { .. } => ErrorCode::ENHANCE_YOUR_CALM,
        }
    }

    pub(crate) fn protocol(what: &'static str) -> Self {
        ConnectionError::Protocol {
            code: ErrorCode::PROTOCOL_ERROR,
            what,
        }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::BadPreface => f.write_str(
                "the client did not send the HTTP/2 connection preface; it may speak HTTP/1.1 despite ALPN h2",
            ),
            ConnectionError::Protocol { code, what } => {
                write!(f, "client broke RFC 9113: {what} ({code}); a broken or hostile client")
            }
            ConnectionError::FrameTooLarge { size, limit } => write!(
                f,
                "client sent a {size}-byte frame, above the advertised SETTINGS_MAX_FRAME_SIZE {limit}"
            ),
            ConnectionError::Compression(e) => write!(f, "{e}"),
            ConnectionError::HpackBomb { limit } => write!(
                f,
                "header block decodes to more than {limit} bytes (HPACK bomb); raise Limits::max_header_list_size if legitimate"
            ),
            ConnectionError::HeaderBlockTooLarge { limit } => write!(
                f,
                "header block longer than {limit} bytes; raise Limits::max_header_block if legitimate"
            ),
            ConnectionError::ContinuationFlood { limit } => write!(
                f,
                "more than {limit} CONTINUATION frames in one header block (CONTINUATION flood)"
            ),
            ConnectionError::Flood {
                kind,
                limit,
                window_ms,
            } => write!(
                f,
                "more than {limit} {kind} within {window_ms} ms; raise the limit in Limits if legitimate"
            ),
            ConnectionError::SettingsTimeout { timeout_ms } => {
                write!(f, "client did not acknowledge SETTINGS within {timeout_ms} ms")
            }
            ConnectionError::HeaderTimeout { timeout_ms } => {
                write!(f, "header block not completed within {timeout_ms} ms")
            }
            ConnectionError::WindowStalled { timeout_ms } => write!(
                f,
                "client kept the connection window at zero for {timeout_ms} ms while responses waited (zero-window stall)"
            ),
            ConnectionError::OutputStalled { timeout_ms } => write!(
                f,
                "client read nothing for {timeout_ms} ms; connection dropped"
            ),
        }
    }
}

/// Why the connection ended; carried by [`Event::Closed`](crate::Event::Closed).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// No stream was open for [`Limits::idle_timeout_ms`](crate::Limits::idle_timeout_ms);
    /// GOAWAY NO_ERROR was sent.
    Idle,
    /// [`Connection::shutdown`](crate::Connection::shutdown) was called
    /// and every stream has finished.
    Shutdown,
    /// The client sent GOAWAY and every stream has finished.
    PeerGoAway {
        /// The client's code.
        code: ErrorCode,
    },
    /// This side found an error and sent GOAWAY (see [`ConnectionError`]).
    Error(ConnectionError),
    /// [`Connection::abort`](crate::Connection::abort) was called (the
    /// transport is gone).
    Aborted,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Idle => f.write_str("idle timeout"),
            CloseReason::Shutdown => f.write_str("shut down"),
            CloseReason::PeerGoAway { code } => write!(f, "client sent GOAWAY ({code})"),
            CloseReason::Error(e) => write!(f, "{e}"),
            CloseReason::Aborted => f.write_str("transport closed"),
        }
    }
}

/// Why [`Connection::send_headers`](crate::Connection::send_headers) or
/// [`Connection::send_data`](crate::Connection::send_data) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The stream is closed or was reset (an [`Event::Reset`](crate::Event::Reset)
    /// said so, or it never existed): drop the response.
    UnknownStream(StreamId),
    /// `send_headers` was already called for this stream.
    HeadersAlreadySent(StreamId),
    /// `send_data` before `send_headers`.
    HeadersNotSent(StreamId),
    /// The response already ended (`end_stream` was set).
    StreamEnded(StreamId),
    /// The status is outside 200..=599 (informational responses are not
    /// supported).
    InvalidStatus(u16),
    /// Field number `index` has a name that is empty, not a token, or a
    /// value with NUL, CR or LF: HTTP/2 cannot carry it.
    InvalidField {
        /// Position in the `fields` slice.
        index: usize,
    },
    /// The encoded header block exceeds [`MAX_RESPONSE_HEADER_BLOCK`](crate::MAX_RESPONSE_HEADER_BLOCK).
    HeadersTooLarge,
    /// The connection is closing or closed; nothing more is sent.
    ConnectionClosed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::UnknownStream(s) => {
                write!(f, "stream {s} is closed or reset; drop its response")
            }
            SendError::HeadersAlreadySent(s) => {
                write!(f, "headers of stream {s} already sent (serving-layer bug)")
            }
            SendError::HeadersNotSent(s) => write!(
                f,
                "data for stream {s} before its headers (serving-layer bug)"
            ),
            SendError::StreamEnded(s) => write!(
                f,
                "response on stream {s} already ended (serving-layer bug)"
            ),
            SendError::InvalidStatus(c) => write!(f, "status {c} cannot be sent (only 200..=599)"),
            SendError::InvalidField { index } => write!(
                f,
                "response field {index} has an invalid name or a value with NUL/CR/LF"
            ),
            SendError::HeadersTooLarge => f.write_str("response header block too large"),
            SendError::ConnectionClosed => {
                f.write_str("connection is closing; nothing more is sent")
            }
        }
    }
}
