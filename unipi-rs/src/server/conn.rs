//! One accepted connection: its [`Stream`] (TCP, TLS on the HTTPS port)
//! and the HTTP connection that reads from and writes to it.

use log::debug;
use smoltcp::time::{Duration, Instant};

use crate::http::{self, Event};
use crate::net::Net;
use crate::site::Site;
use crate::transport::Stream;

/// How long a TLS handshake may take.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may linger before it is reset.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Output below this size is gathered across chunks into one write (one
/// TLS record).
const COALESCE: usize = 4096;
/// Rounds of "process, then write" per visit.
const ROUNDS: usize = 16;

/// What a connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Exchanging requests and responses.
    Open,
    /// We asked to close (TLS close_notify queued, then FIN); dropped once
    /// everything is sent or the linger time is over.
    Closing { since: Instant },
}

/// What the server must do after a visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Visited {
    /// Nothing: the connection goes on.
    Continue,
    /// The connection asked for a webhook pull.
    HookRequested,
    /// The connection is over; `failed` if the transport failed.
    Finished { failed: bool },
}

/// What a visit needs from the server.
pub(super) struct Visit<'v> {
    pub net: &'v mut Net,
    pub site: Option<&'v Site>,
    pub now: Instant,
    pub unix: u64,
    /// Where small output pieces are gathered.
    pub scratch: &'v mut [u8],
}

/// See the module documentation.
pub(super) struct Conn {
    stream: Stream,
    http: http::Connection,
    phase: Phase,
    accepted: Instant,
    /// The transport failed (counted in the server's statistics).
    failed: bool,
}

impl Conn {
    /// A connection accepted at `now`.
    pub fn new(stream: Stream, http: http::Connection, now: Instant) -> Conn {
        Conn {
            stream,
            http,
            phase: Phase::Open,
            accepted: now,
            failed: false,
        }
    }

    /// The stream.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Answers the pending webhook request (see
    /// [`http::Connection::complete_hook`]).
    pub fn complete_hook(&mut self, outcome: http::HookOutcome, now: Instant, unix: u64) {
        self.http.complete_hook(outcome, now, unix);
    }

    /// The earliest time the connection needs attention without input.
    pub fn deadline(&self) -> Option<Instant> {
        let handshake =
            (!self.stream.layer().is_ready()).then(|| self.accepted + HANDSHAKE_TIMEOUT);
        let close = match self.phase {
            Phase::Closing { since } => Some(since + CLOSE_TIMEOUT),
            Phase::Open => None,
        };
        [self.http.deadline(), handshake, close]
            .into_iter()
            .flatten()
            .min()
    }

    /// Moves data between the stream and HTTP as far as it goes.
    pub fn visit(&mut self, v: &mut Visit<'_>) -> Visited {
        if !self.stream.is_open(v.net) {
            // Reset by the peer, or fully closed.
            self.http.abort(v.now);
            return self.finished();
        }
        if let Phase::Closing { since } = self.phase {
            let closed = self.stream.finish_close(v.net);
            return if closed || v.now >= since + CLOSE_TIMEOUT {
                self.finished()
            } else {
                Visited::Continue
            };
        }

        // 1. Input: socket -> (TLS) -> HTTP.
        if let Err(e) = self.stream.exchange(v.net) {
            debug!("{e}");
            return self.fail(v.now);
        }
        if !self.stream.layer().is_ready() && v.now >= self.accepted + HANDSHAKE_TIMEOUT {
            debug!("TLS handshake timed out");
            self.http.abort(v.now);
            return self.finished();
        }
        self.read(v);

        // 2. Process, 3. output, until nothing moves.
        let mut hook = false;
        for _ in 0..ROUNDS {
            while let Some(Event::HookRequested) = self.http.poll(v.site, v.now, v.unix) {
                hook = true;
            }
            match self.write(v) {
                Ok(0) => break,
                Ok(_) => {}
                Err(()) => return self.fail(v.now),
            }
        }
        // Offer what did not fit before processing.
        self.read(v);

        // 4. Time.
        if self.http.deadline().is_some_and(|d| v.now >= d) {
            self.http.on_timeout(v.now);
        }

        // 5. Close.
        let peer_done = self.stream.peer_done(v.net);
        if self.http.wants_close()
            || (peer_done && self.http.output().is_empty() && !self.http.awaiting_hook())
        {
            self.stream.close();
            let _ = self.stream.exchange(v.net);
            self.phase = Phase::Closing { since: v.now };
        }
        if hook {
            Visited::HookRequested
        } else {
            Visited::Continue
        }
    }

    fn read(&mut self, v: &mut Visit<'_>) {
        let (http, now) = (&mut self.http, v.now);
        self.stream.read(v.net, |bytes| http.receive(bytes, now));
    }

    /// Writes pending HTTP output; returns how many bytes were taken.
    fn write(&mut self, v: &mut Visit<'_>) -> Result<usize, ()> {
        let mut moved = 0;
        loop {
            let out = self.http.output();
            if out.is_empty() {
                break;
            }
            let n = if out.len() >= COALESCE {
                self.stream.write(v.net, out)
            } else {
                let len = self.http.copy_output(v.scratch);
                self.stream.write(v.net, &v.scratch[..len])
            };
            match n {
                Ok(0) => break,
                Ok(n) => {
                    self.http.consume(n);
                    moved += n;
                }
                Err(e) => {
                    debug!("{e}");
                    return Err(());
                }
            }
        }
        Ok(moved)
    }

    /// The transport failed: whatever the layer queued (an alert) is sent,
    /// then the connection closes.
    fn fail(&mut self, now: Instant) -> Visited {
        self.failed = true;
        self.http.abort(now);
        self.phase = Phase::Closing { since: now };
        Visited::Continue
    }

    fn finished(&self) -> Visited {
        Visited::Finished {
            failed: self.failed,
        }
    }
}
