//! The one error type of this crate.

use alloc::string::String;
use core::fmt;

use unipi_httpwire::ResponseError;

use crate::fetch::FetchPhase;
use crate::oid::ObjectId;

/// Why a fetch failed. Every variant's `Display` says what happened in words a user can act
/// on; remote-controlled text is sanitised (control characters replaced) and truncated.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // ---- configuration / caller ----
    /// The remote URL could not be parsed or is not supported.
    InvalidUrl {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Credentials break a rule of [`Credentials::new`](crate::Credentials::new).
    InvalidCredentials {
        /// Which rule (never the credentials themselves).
        reason: &'static str,
    },
    /// The driver used the state machine out of order (e.g. `sent()` while nothing was pending).
    Usage(&'static str),
    /// `poll()` was called again after the result had been handed out.
    Finished,

    // ---- transport, reported by the driver ----
    /// The driver reported a transport failure (DNS, TCP, TLS...).
    Transport {
        /// Phase of the fetch when it happened.
        phase: FetchPhase,
        /// The driver's description.
        detail: String,
    },
    /// The driver gave up waiting for the remote.
    Timeout {
        /// Phase of the fetch when it happened.
        phase: FetchPhase,
    },
    /// The remote closed the connection before the response was complete.
    ConnectionClosed {
        /// Phase of the fetch when it happened.
        phase: FetchPhase,
    },

    // ---- HTTP ----
    /// The HTTP server answered 401 or 403 to a request that carried credentials.
    AuthenticationFailed {
        /// The remote, its credentials shown as `user:***`.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// The HTTP server answered with a status that ends the fetch (401, 403, 404, 5xx, ...).
    HttpStatus {
        /// The status code.
        status: u16,
        /// The request path that got it.
        path: String,
    },
    /// The HTTP response is malformed, too large (the head is bounded by
    /// [`Limits::max_http_header_bytes`](crate::Limits)) or uses a feature this client lacks.
    Http(ResponseError),
    /// The response has a `Content-Type` that is not the smart protocol's.
    HttpContentType {
        /// What the server sent (sanitised), empty if none.
        got: String,
        /// What was expected.
        expected: &'static str,
        /// The request path.
        path: String,
    },
    /// More redirects than [`Limits::max_redirects`](crate::Limits).
    TooManyRedirects {
        /// The limit.
        limit: u32,
    },
    /// A redirect that is not followed (other host, https to http, bad location, POST...).
    RedirectRefused {
        /// The `Location` header (sanitised).
        location: String,
        /// Why it is refused.
        reason: &'static str,
    },

    // ---- pkt-line / protocol ----
    /// A malformed pkt-line.
    PktLine(&'static str),
    /// A pkt-line longer than [`Limits::max_pkt_line`](crate::Limits).
    PktLineTooLong {
        /// Announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The remote reported an error (`ERR` pkt-line or side-band channel 3).
    Remote(String),
    /// The remote's answer does not follow the protocol.
    Protocol(String),
    /// Protocol v2 was required but the server only speaks v0/v1.
    V2Unsupported,
    /// The server lacks a capability this client needs.
    MissingCapability(&'static str),
    /// The repository uses a hash other than SHA-1.
    UnsupportedObjectFormat(String),
    /// More refs than [`Limits::max_refs`](crate::Limits).
    TooManyRefs {
        /// The limit.
        limit: usize,
    },
    /// The wanted branch (or HEAD) is not advertised by the remote.
    RefNotFound {
        /// `HEAD` or `refs/heads/<branch>`.
        name: String,
    },
    /// More bytes received than [`Limits::max_received_bytes`](crate::Limits).
    TooMuchData {
        /// The limit.
        limit: u64,
    },

    // ---- pack ----
    /// The pack stream does not start with `PACK`.
    PackSignature,
    /// Unsupported pack version.
    PackVersion(u32),
    /// The pack announces more objects than [`Limits::max_objects`](crate::Limits).
    TooManyObjects {
        /// Announced count.
        count: u32,
        /// The limit.
        limit: u32,
    },
    /// The pack is larger than [`Limits::max_pack_bytes`](crate::Limits).
    PackTooLarge {
        /// The limit.
        limit: u64,
    },
    /// An object (or delta) is larger than [`Limits::max_object_size`](crate::Limits).
    ObjectTooLarge {
        /// Its announced size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Inflating produced more than [`Limits::max_inflated_bytes`](crate::Limits) in total.
    InflatedTooLarge {
        /// The limit.
        limit: u64,
    },
    /// Memory for an object could not be reserved.
    OutOfMemory {
        /// Bytes requested.
        bytes: u64,
    },
    /// A malformed pack entry header.
    PackEntryHeader {
        /// Offset of the entry in the pack.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The zlib data of an entry is corrupt.
    Zlib {
        /// Offset of the entry in the pack.
        offset: u64,
    },
    /// An entry inflated to a size different from its header's.
    SizeMismatch {
        /// Offset of the entry in the pack.
        offset: u64,
        /// Size in the header.
        expected: u64,
        /// Size actually produced (at least).
        actual: u64,
    },
    /// A delta is invalid.
    Delta {
        /// Offset of the delta entry in the pack.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A delta's base object is not in the pack.
    DeltaBaseMissing {
        /// Offset of the delta entry in the pack.
        offset: u64,
        /// The base id, for ref-deltas.
        base: Option<ObjectId>,
    },
    /// A delta chain longer than [`Limits::max_delta_depth`](crate::Limits).
    DeltaTooDeep {
        /// The limit.
        limit: u32,
    },
    /// The pack's trailing SHA-1 does not match its content.
    PackChecksum,
    /// The pack ended before all announced objects and the trailer arrived.
    PackTruncated,
    /// Bytes after the pack trailer.
    PackTrailingData,

    // ---- objects / tree walk ----
    /// An object the tree walk needs is not in the pack.
    ObjectMissing {
        /// Its id.
        oid: ObjectId,
    },
    /// An object has another type than its reference implies.
    WrongObjectType {
        /// Its id.
        oid: ObjectId,
        /// Expected type.
        expected: &'static str,
        /// Actual type.
        actual: &'static str,
    },
    /// A commit object cannot be parsed.
    BadCommit {
        /// Its id.
        oid: ObjectId,
        /// What is wrong.
        reason: &'static str,
    },
    /// A tree object cannot be parsed or is not sorted.
    BadTree {
        /// Its id.
        oid: ObjectId,
        /// What is wrong.
        reason: &'static str,
    },
    /// A tree entry has a mode this client does not accept.
    UnsupportedMode {
        /// Path of the entry (sanitised).
        path: String,
        /// The mode as written in the tree.
        mode: String,
    },
    /// A path in the tree is not allowed (`..`, `.git`, control characters...).
    UnsafePath {
        /// The path (sanitised).
        path: String,
    },
    /// A path is not valid UTF-8.
    NonUtf8Path {
        /// The path with invalid bytes replaced.
        path: String,
    },
    /// A path longer than [`Limits::max_path_len`](crate::Limits).
    PathTooLong {
        /// The limit.
        limit: usize,
    },
    /// A path nested deeper than [`Limits::max_path_depth`](crate::Limits).
    PathTooDeep {
        /// The limit.
        limit: usize,
    },
    /// More files than [`Limits::max_files`](crate::Limits).
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// The tree's paths add up to more than [`Limits::max_path_bytes`](crate::Limits).
    PathsTooLarge {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            InvalidUrl { reason } => write!(f, "invalid remote URL: {reason}"),
            InvalidCredentials { reason } => write!(f, "invalid credentials: {reason}"),
            Usage(what) => write!(f, "git fetch driven incorrectly: {what}"),
            Finished => f.write_str("git fetch already finished"),
            Transport { phase, detail } => write!(f, "transport error while {phase}: {detail}"),
            Timeout { phase } => write!(f, "timed out while {phase}"),
            ConnectionClosed { phase } => {
                write!(f, "remote closed the connection while {phase}")
            }
            AuthenticationFailed { url, status } => write!(
                f,
                "authentication failed: the server refused the credentials for {url} (HTTP {status}); check the user name and token"
            ),
            HttpStatus { status, path } => {
                let what = match status {
                    401 => "authentication required",
                    403 => "access denied",
                    404 | 410 => "repository not found",
                    500..=599 => "server error",
                    _ => "unexpected HTTP status",
                };
                write!(f, "remote: {what} (HTTP {status} for {path})")
            }
            Http(e) => e.fmt(f),
            HttpContentType {
                got,
                expected,
                path,
            } => write!(
                f,
                "remote is not a smart git server: {path} answered with Content-Type '{got}', expected '{expected}'"
            ),
            TooManyRedirects { limit } => write!(f, "more than {limit} HTTP redirects"),
            RedirectRefused { location, reason } => {
                write!(f, "HTTP redirect to '{location}' refused: {reason}")
            }
            PktLine(what) => write!(f, "malformed pkt-line: {what}"),
            PktLineTooLong { len, limit } => {
                write!(f, "pkt-line of {len} bytes exceeds the limit of {limit}")
            }
            Remote(msg) => write!(f, "remote: {msg}"),
            Protocol(msg) => write!(f, "protocol error: {msg}"),
            V2Unsupported => f.write_str("remote does not speak git protocol v2 (v2 was required)"),
            MissingCapability(cap) => write!(f, "remote lacks the '{cap}' capability"),
            UnsupportedObjectFormat(fmt_) => {
                write!(
                    f,
                    "repository uses object format '{fmt_}', only sha1 is supported"
                )
            }
            TooManyRefs { limit } => write!(f, "remote advertises more than {limit} refs"),
            RefNotFound { name } => write!(f, "remote has no {name}"),
            TooMuchData { limit } => write!(f, "remote sent more than {limit} bytes"),
            PackSignature => f.write_str("pack does not start with 'PACK'"),
            PackVersion(v) => write!(f, "unsupported pack version {v}"),
            TooManyObjects { count, limit } => {
                write!(
                    f,
                    "pack has {count} objects, more than the limit of {limit}"
                )
            }
            PackTooLarge { limit } => write!(f, "pack larger than {limit} bytes"),
            ObjectTooLarge { size, limit } => {
                write!(
                    f,
                    "object of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            InflatedTooLarge { limit } => {
                write!(
                    f,
                    "pack inflates to more than {limit} bytes (zip or delta bomb?)"
                )
            }
            OutOfMemory { bytes } => write!(f, "out of memory reserving {bytes} bytes"),
            PackEntryHeader { offset, reason } => {
                write!(f, "bad pack entry header at offset {offset}: {reason}")
            }
            Zlib { offset } => write!(f, "corrupt zlib data in pack entry at offset {offset}"),
            SizeMismatch {
                offset,
                expected,
                actual,
            } => write!(
                f,
                "pack entry at offset {offset} inflates to {actual} bytes, header says {expected}"
            ),
            Delta { offset, reason } => write!(f, "invalid delta at offset {offset}: {reason}"),
            DeltaBaseMissing { offset, base } => match base {
                Some(oid) => write!(
                    f,
                    "delta base {oid} of entry at offset {offset} is not in the pack"
                ),
                None => write!(
                    f,
                    "delta base of entry at offset {offset} is not an entry of the pack"
                ),
            },
            DeltaTooDeep { limit } => write!(f, "delta chain deeper than {limit}"),
            PackChecksum => f.write_str("pack trailer checksum mismatch"),
            PackTruncated => f.write_str("pack ended early"),
            PackTrailingData => f.write_str("unexpected data after the pack trailer"),
            ObjectMissing { oid } => write!(f, "object {oid} is missing from the pack"),
            WrongObjectType {
                oid,
                expected,
                actual,
            } => write!(f, "object {oid} is a {actual}, expected a {expected}"),
            BadCommit { oid, reason } => write!(f, "bad commit {oid}: {reason}"),
            BadTree { oid, reason } => write!(f, "bad tree {oid}: {reason}"),
            UnsupportedMode { path, mode } => {
                write!(f, "unsupported file mode {mode} in tree: {path}")
            }
            UnsafePath { path } => write!(f, "forbidden path in tree: {path}"),
            NonUtf8Path { path } => write!(f, "path is not UTF-8: {path}"),
            PathTooLong { limit } => write!(f, "path in tree longer than {limit} bytes"),
            PathTooDeep { limit } => write!(f, "path in tree nested deeper than {limit}"),
            TooManyFiles { limit } => write!(f, "tree has more than {limit} files"),
            PathsTooLarge { limit } => {
                write!(f, "paths in tree add up to more than {limit} bytes")
            }
        }
    }
}

impl core::error::Error for Error {}

impl From<ResponseError> for Error {
    fn from(e: ResponseError) -> Self {
        Error::Http(e)
    }
}

/// Maximum length of remote-controlled text kept in an error.
const MAX_TEXT: usize = 200;

/// Untrusted bytes as printable text of at most [`MAX_TEXT`] characters
/// ([`unipi_httpwire::printable`]).
pub(crate) fn sanitize(bytes: &[u8]) -> String {
    unipi_httpwire::printable(bytes, MAX_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn display_examples() {
        let e = Error::HttpStatus {
            status: 404,
            path: "/site.git/info/refs".into(),
        };
        assert_eq!(
            e.to_string(),
            "remote: repository not found (HTTP 404 for /site.git/info/refs)"
        );
        assert_eq!(
            Error::PackChecksum.to_string(),
            "pack trailer checksum mismatch"
        );
        assert_eq!(
            Error::DeltaTooDeep { limit: 50 }.to_string(),
            "delta chain deeper than 50"
        );
        assert_eq!(
            Error::UnsafePath {
                path: "../x".into()
            }
            .to_string(),
            "forbidden path in tree: ../x"
        );
    }

    #[test]
    fn sanitize_text() {
        assert_eq!(sanitize(b"bad\x1b[31m\n"), "bad?[31m");
        assert_eq!(sanitize(b"\xff ok"), "\u{fffd} ok");
        let long = [b'a'; 300];
        assert_eq!(sanitize(&long).chars().count(), MAX_TEXT + 1);
    }
}
