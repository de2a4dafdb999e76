//! The bounded queue of formatted messages waiting for the transport.
//!
//! Bounded by count and by bytes; a message that does not fit is dropped
//! (and counted) instead of waiting: logging never holds up serving. The
//! bytes live in one buffer of at most twice the byte limit: sent messages
//! are cut off its front when it would grow beyond that, which moves at
//! most the limit's worth of bytes once per limit's worth of messages.
//! Queuing a message allocates nothing once the buffer has grown.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Limits of a [`Queue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most messages queued.
    pub messages: usize,
    /// Most bytes queued (all messages together).
    pub bytes: usize,
}

impl Default for QueueLimits {
    /// 256 messages, 64 KiB.
    fn default() -> Self {
        QueueLimits {
            messages: 256,
            bytes: 64 * 1024,
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Queue {
    limits: QueueLimits,
    /// Messages back to back; those before `start` were sent.
    data: Vec<u8>,
    start: usize,
    lens: VecDeque<usize>,
    dropped: u64,
}

impl Queue {
    /// An empty queue with `limits`.
    pub fn new(limits: QueueLimits) -> Queue {
        Queue {
            limits,
            ..Queue::default()
        }
    }

    /// Appends `msg`; false (and counted as dropped) when it does not fit.
    pub fn push(&mut self, msg: &[u8]) -> bool {
        if self.lens.len() >= self.limits.messages || self.bytes() + msg.len() > self.limits.bytes {
            self.dropped += 1;
            return false;
        }
        if self.data.len() + msg.len() > 2 * self.limits.bytes {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(msg);
        self.lens.push_back(msg.len());
        true
    }

    /// Copies the oldest message into `out` (cleared first); false when
    /// the queue is empty.
    pub fn front(&self, out: &mut Vec<u8>) -> bool {
        out.clear();
        let Some(&len) = self.lens.front() else {
            return false;
        };
        let end = (self.start + len).min(self.data.len());
        out.extend_from_slice(&self.data[self.start..end]);
        true
    }

    /// Removes the oldest message.
    pub fn pop(&mut self) {
        if let Some(len) = self.lens.pop_front() {
            self.start = (self.start + len).min(self.data.len());
            if self.lens.is_empty() {
                self.data.clear();
                self.start = 0;
            }
        }
    }

    /// Drops every queued message (counted as dropped).
    pub fn clear(&mut self) {
        self.dropped += self.lens.len() as u64;
        self.lens.clear();
        self.data.clear();
        self.start = 0;
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.data.len() - self.start
    }

    /// Messages dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_within_bounds() {
        let mut q = Queue::new(QueueLimits {
            messages: 3,
            bytes: 10,
        });
        assert!(q.push(b"abc"));
        assert!(q.push(b"defg"));
        assert!(!q.push(b"hijk"), "11 bytes > 10");
        assert!(q.push(b"hij"));
        assert!(!q.push(b""), "4 messages > 3");
        assert_eq!((q.len(), q.bytes(), q.dropped()), (3, 10, 2));
        let mut out = Vec::new();
        for want in [&b"abc"[..], b"defg", b"hij"] {
            assert!(q.front(&mut out));
            assert_eq!(out, want);
            q.pop();
        }
        assert!(!q.front(&mut out));
        assert!(q.is_empty());
        q.pop();
        assert!(q.push(b"0123456789"));
        q.clear();
        assert_eq!((q.len(), q.bytes(), q.dropped()), (0, 0, 3));
    }

    #[test]
    fn wraps_around() {
        let mut q = Queue::new(QueueLimits {
            messages: 4,
            bytes: 16,
        });
        let mut out = Vec::new();
        for i in 0..100u8 {
            let m = [i; 5];
            assert!(q.push(&m));
            assert!(q.push(&m));
            assert!(q.front(&mut out));
            assert_eq!(out, m);
            q.pop();
            q.pop();
        }
        assert_eq!(q.dropped(), 0);
    }
}
