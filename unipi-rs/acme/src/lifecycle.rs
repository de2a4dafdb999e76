//! When to try again after a failed issuance. When to renew is
//! [`CertInfo::renew_at`](crate::CertInfo::renew_at); both are the driver's decision, these
//! are the defaults.

use crate::error::Error;

/// Exponential backoff between failed issuance attempts that never retries earlier than
/// the server asked (`Retry-After`, rate limits).
///
/// Let's Encrypt limits failed validations to 5 per hour per account and name, and
/// repeated orders count against weekly limits: the defaults (first retry after 5 minutes,
/// doubling up to a day) stay well inside both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure, seconds (default 300).
    pub first: u64,
    /// Longest wait, seconds (default 86 400); also the wait after a configuration error.
    pub max: u64,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: 300,
            max: 86_400,
            failures: 0,
        }
    }
}

impl Backoff {
    /// The monotonic time of the next attempt after `error` happened at `now`: the later
    /// of our own doubling delay and the server's `retry_at`.
    pub fn next_attempt(&mut self, error: &Error, now: u64) -> u64 {
        let own = if error.is_configuration() {
            self.max
        } else {
            self.first
                .saturating_mul(1u64 << self.failures.min(32))
                .min(self.max)
        };
        self.failures = self.failures.saturating_add(1);
        let ours = now.saturating_add(own);
        error.retry_at().map_or(ours, |t| t.max(ours))
    }

    /// Failures since the last [`reset`](Backoff::reset).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Phase;

    #[test]
    fn doubles_and_honours_retry_after() {
        let mut b = Backoff::default();
        let e = Error::HttpStatus {
            phase: Phase::Directory,
            status: 502,
            retry_at: None,
        };
        assert_eq!(b.next_attempt(&e, 1000), 1300);
        assert_eq!(b.next_attempt(&e, 1000), 1600);
        assert_eq!(b.next_attempt(&e, 1000), 2200);
        for _ in 0..40 {
            b.next_attempt(&e, 0);
        }
        assert_eq!(b.next_attempt(&e, 0), 86_400);
        b.reset();
        let limited = Error::RateLimited {
            phase: Phase::Order,
            problem: None,
            retry_at: Some(50_000),
        };
        assert_eq!(b.next_attempt(&limited, 1000), 50_000);
        assert_eq!(b.failures(), 1);
        assert_eq!(b.next_attempt(&Error::NoNames, 10), 86_410);
    }
}
