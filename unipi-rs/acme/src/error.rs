//! The one error type of this crate.

use alloc::string::String;
use core::fmt;

use crate::challenge::ChallengeKind;
use crate::client::Phase;
use crate::problem::{Problem, ProblemType};

/// Why an issuance (or a key or name given to it) failed. Every variant's `Display` says
/// what happened and what to do; server-controlled text is sanitised (control characters
/// replaced) and truncated, so it can go to the log as it is.
///
/// Times (`retry_at`) are on the driver's monotonic clock, in seconds, like the `now`
/// given to [`Client::poll`](crate::Client::poll); [`Error::retry_at`] collects them and
/// [`Backoff`](crate::Backoff) turns any error into the time of the next attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // ---- configuration: fix the boot parameters ----
    /// A name to certify is not a valid DNS name.
    InvalidName {
        /// The name (sanitised).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No name to certify was given.
    NoNames,
    /// More names than [`Limits::max_names`](crate::Limits).
    TooManyNames {
        /// How many were given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A contact e-mail address is unusable.
    InvalidContact {
        /// The address (sanitised).
        contact: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A URL (the configured directory, or one the server handed out) is not a usable
    /// `https://` URL.
    InvalidUrl {
        /// The URL (sanitised).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key seed is too short to give a secret key.
    SeedTooShort {
        /// Its length in bytes.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A key could not be derived, loaded or used.
    Key {
        /// What went wrong.
        reason: &'static str,
    },

    // ---- the driver ----
    /// The driver used the client out of order (e.g. `response()` while no request was
    /// out).
    Usage(&'static str),
    /// `poll()` was called again after the result had been handed out.
    Finished,
    /// The driver could not reach the server (DNS, TCP, TLS, its own timeout), after the
    /// bounded retries of requests that are safe to repeat.
    Transport {
        /// Phase of the issuance.
        phase: Phase,
        /// The driver's description (sanitised).
        detail: String,
    },
    /// The driver could not install a challenge responder.
    Publish {
        /// The driver's description.
        detail: String,
    },

    // ---- the server said no ----
    /// The server answered with a problem document.
    Problem {
        /// Phase of the issuance.
        phase: Phase,
        /// The problem.
        problem: Problem,
        /// The server's `Retry-After`, if any.
        retry_at: Option<u64>,
    },
    /// The server refused because of a rate limit (`rateLimited`, or HTTP 429).
    RateLimited {
        /// Phase of the issuance.
        phase: Phase,
        /// The problem, if the server sent one.
        problem: Option<Problem>,
        /// The server's `Retry-After`, if any: do not try before.
        retry_at: Option<u64>,
    },
    /// The server answered with an error status and no problem document (a proxy or an
    /// outage), after the bounded retries of requests that are safe to repeat.
    HttpStatus {
        /// Phase of the issuance.
        phase: Phase,
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, if any.
        retry_at: Option<u64>,
    },
    /// The server rejected the nonce more often than
    /// [`Limits::max_bad_nonce_retries`](crate::Limits) in a row.
    BadNonce {
        /// Phase of the issuance.
        phase: Phase,
        /// The limit.
        limit: u32,
    },

    // ---- the server's answer is unusable ----
    /// A response does not follow RFC 8555 (missing header, wrong content type,
    /// unparsable JSON, missing field, unknown status...).
    Malformed {
        /// Phase of the issuance.
        phase: Phase,
        /// What is wrong (sanitised).
        reason: String,
    },
    /// A response body is larger than its limit.
    TooLarge {
        /// Phase of the issuance.
        phase: Phase,
        /// The limit in bytes.
        limit: usize,
    },

    // ---- the issuance failed ----
    /// The account exists but is not usable (`deactivated` or `revoked`).
    AccountNotValid {
        /// Its status.
        status: &'static str,
    },
    /// None of the challenges offered for a name is one this client is configured to
    /// answer.
    NoUsableChallenge {
        /// The name.
        name: String,
        /// The challenge types the server offered (sanitised, comma-separated).
        offered: String,
    },
    /// The server could not validate a challenge: the responder is not reachable from the
    /// CA or answered wrongly.
    ChallengeFailed {
        /// The name.
        name: String,
        /// The challenge that was tried.
        kind: ChallengeKind,
        /// The validation error the server reported, if any.
        problem: Option<Problem>,
    },
    /// An authorization ended in a state other than `valid` without a failed challenge
    /// (`deactivated`, `expired`, `revoked`, or `invalid` with no challenge error).
    AuthorizationFailed {
        /// The name.
        name: String,
        /// Its status.
        status: &'static str,
    },
    /// The order became `invalid`.
    OrderFailed {
        /// The order's error, if the server reported one.
        problem: Option<Problem>,
    },
    /// An authorization or order was still not done after
    /// [`Limits::max_polls`](crate::Limits) polls.
    PollLimit {
        /// Phase of the issuance.
        phase: Phase,
        /// The limit.
        limit: u32,
    },
    /// A certificate is unusable: unparsable, or (for a freshly issued one) not for our
    /// key, not for the names ordered, already expired, or its chain out of order.
    BadCertificate {
        /// Why (sanitised).
        reason: String,
    },
}

impl Error {
    /// When the server or the transport said to try again, on the monotonic clock, if they
    /// did.
    pub fn retry_at(&self) -> Option<u64> {
        match self {
            Error::Problem { retry_at, .. }
            | Error::RateLimited { retry_at, .. }
            | Error::HttpStatus { retry_at, .. } => *retry_at,
            _ => None,
        }
    }

    /// True when the error comes from the configuration (names, contacts, URL, keys):
    /// retrying does not help before the boot parameters change.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Error::InvalidName { .. }
                | Error::NoNames
                | Error::TooManyNames { .. }
                | Error::InvalidContact { .. }
                | Error::SeedTooShort { .. }
                | Error::Key { .. }
        )
    }

    /// The problem document behind the error, if there is one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Problem { problem, .. } => Some(problem),
            Error::RateLimited { problem, .. }
            | Error::ChallengeFailed { problem, .. }
            | Error::OrderFailed { problem } => problem.as_ref(),
            _ => None,
        }
    }
}

/// ", retry after <t>" for errors that carry a time.
struct RetryHint(Option<u64>);

impl fmt::Display for RetryHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "; the server asks to retry at t={t}s"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            InvalidName { name, reason } => {
                write!(f, "invalid name '{name}' to certify: {reason}")
            }
            NoNames => f.write_str("no name to certify: set --hostname"),
            TooManyNames { count, limit } => write!(
                f,
                "{count} names to certify, more than the limit of {limit}: split them into several certificates"
            ),
            InvalidContact { contact, reason } => {
                write!(f, "invalid contact address '{contact}': {reason}")
            }
            InvalidUrl { url, reason } => write!(f, "unusable ACME URL '{url}': {reason}"),
            SeedTooShort { len, min } => write!(
                f,
                "key seed of {len} bytes is too short: give at least {min} random bytes"
            ),
            Key { reason } => write!(
                f,
                "key error: {reason}; check the key seed or the stored key"
            ),
            Usage(what) => write!(
                f,
                "ACME client driven incorrectly: {what} (a bug in the driver)"
            ),
            Finished => f.write_str("ACME issuance already finished"),
            Transport { phase, detail } => write!(
                f,
                "ACME server unreachable while {phase}: {detail}; check the network and DNS"
            ),
            Publish { detail } => write!(
                f,
                "could not install the challenge responder: {detail}; check that the HTTP and HTTPS ports are served"
            ),
            Problem {
                phase,
                problem,
                retry_at,
            } => {
                write!(f, "ACME server refused while {phase}: {problem}")?;
                if problem.kind == ProblemType::BadCsr {
                    f.write_str(" (the certificate key or names were not accepted)")?;
                }
                RetryHint(*retry_at).fmt(f)
            }
            RateLimited {
                phase,
                problem,
                retry_at,
            } => {
                write!(f, "ACME rate limit hit while {phase}")?;
                if let Some(p) = problem {
                    write!(f, ": {p}")?;
                }
                match retry_at {
                    Some(t) => write!(f, "; do not retry before t={t}s"),
                    None => f.write_str("; back off before retrying"),
                }
            }
            HttpStatus {
                phase,
                status,
                retry_at,
            } => {
                write!(f, "ACME server answered HTTP {status} while {phase}")?;
                match retry_at {
                    Some(_) => RetryHint(*retry_at).fmt(f),
                    None => f.write_str("; retry later"),
                }
            }
            BadNonce { phase, limit } => write!(
                f,
                "ACME server rejected the anti-replay nonce {limit} times in a row while {phase}; retry later"
            ),
            Malformed { phase, reason } => {
                write!(
                    f,
                    "invalid ACME response while {phase}: {reason}; retry later, and check that the directory URL is an ACME server"
                )
            }
            TooLarge { phase, limit } => write!(
                f,
                "ACME response while {phase} is larger than the limit of {limit} bytes; retry later"
            ),
            AccountNotValid { status } => write!(
                f,
                "the ACME account of this key is {status}: use another --account-seed"
            ),
            NoUsableChallenge { name, offered } => write!(
                f,
                "no usable challenge for {name}: the server offers [{offered}]"
            ),
            ChallengeFailed {
                name,
                kind,
                problem,
            } => {
                write!(f, "{kind} challenge for {name} failed")?;
                if let Some(p) = problem {
                    write!(f, ": {p}")?;
                }
                match kind {
                    ChallengeKind::Http01 => f.write_str(
                        " (is port 80 of this name reachable from the internet and routed here?)",
                    ),
                    ChallengeKind::TlsAlpn01 => f.write_str(
                        " (is port 443 of this name reachable from the internet and routed here?)",
                    ),
                }
            }
            AuthorizationFailed { name, status } => {
                write!(
                    f,
                    "authorization for {name} is {status}; the next attempt starts a new order"
                )
            }
            OrderFailed { problem } => {
                f.write_str("the ACME order failed")?;
                if let Some(p) = problem {
                    write!(f, ": {p}")?;
                }
                f.write_str("; the next attempt starts a new order")
            }
            PollLimit { phase, limit } => write!(
                f,
                "ACME server still not done after {limit} polls while {phase}; retry later"
            ),
            BadCertificate { reason } => write!(f, "the certificate is unusable: {reason}"),
        }
    }
}

impl core::error::Error for Error {}

/// Maximum length of server-controlled text kept in an error, in characters.
pub(crate) const MAX_TEXT: usize = 200;

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
        assert_eq!(
            Error::RateLimited {
                phase: Phase::Order,
                problem: None,
                retry_at: Some(3600)
            }
            .to_string(),
            "ACME rate limit hit while creating the order; do not retry before t=3600s"
        );
        assert_eq!(
            Error::InvalidName {
                name: "a..b".into(),
                reason: "empty label"
            }
            .to_string(),
            "invalid name 'a..b' to certify: empty label"
        );
        let e = Error::ChallengeFailed {
            name: "example.org".into(),
            kind: ChallengeKind::Http01,
            problem: None,
        };
        assert!(
            e.to_string()
                .starts_with("http-01 challenge for example.org failed")
        );
    }

    #[test]
    fn retry_times() {
        let e = Error::HttpStatus {
            phase: Phase::Directory,
            status: 503,
            retry_at: Some(10),
        };
        assert_eq!(e.retry_at(), Some(10));
        assert_eq!(Error::NoNames.retry_at(), None);
        assert!(Error::NoNames.is_configuration());
        assert!(!e.is_configuration());
    }

    #[test]
    fn sanitize_text() {
        assert_eq!(sanitize(b"bad\x1b[31m\n"), "bad?[31m");
        assert_eq!(sanitize(b"\xff ok"), "\u{fffd} ok");
        assert_eq!(sanitize(&[b'a'; 300]).chars().count(), MAX_TEXT + 1);
    }
}
