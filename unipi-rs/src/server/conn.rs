//! One accepted connection: its [`Stream`] (TCP, TLS on the HTTPS port)
//! and the HTTP connection that reads from and writes to it, with the
//! accounting the server needs to keep one client from starving the others.
//!
//! A visit moves bytes until nothing moves any more — socket → TLS → HTTP,
//! then HTTP → TLS → socket, again — or until the visit's budget is spent;
//! then it says so ([`Visited::busy`]) and the server comes back without
//! waiting for input. So data that arrived beyond one buffer's worth is
//! never left waiting for the next idle tick.

use alloc::boxed::Box;
use log::{debug, info};
use smoltcp::time::{Duration, Instant};

use crate::http::{self, Activity, Event, Role, Session};
use crate::net::Net;
use crate::observe::access::AccessSink;
use crate::site::Site;
use crate::transport::Stream;

/// How long a TLS handshake may take.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may linger before it is reset.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The window over which the send rate is measured.
pub(super) const RATE_WINDOW: Duration = Duration::from_secs(10);
/// A send rate is judged only once it has been measured this long.
pub(super) const GRACE: Duration = Duration::from_secs(1);
/// A response streaming for longer than this may make room for a new
/// client when nothing else can.
pub(super) const LONG_RESPONSE: Duration = Duration::from_secs(2);
/// A handshake or request younger than this is not stalled yet.
pub(super) const FRESH: Duration = Duration::from_millis(250);
/// Output below this size is gathered across chunks into one write (one
/// TLS record).
const COALESCE: usize = 4096;
/// Bytes a visit may write before others get their turn.
const VISIT_BUDGET: usize = 256 * 1024;

/// What a connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Exchanging requests and responses.
    Open,
    /// We asked to close (TLS close_notify queued, then FIN); dropped once
    /// everything is sent or the linger time is over.
    Closing { since: Instant },
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// Closed in order (or by the peer).
    Closed,
    /// The transport failed (TLS error, reset).
    Failed,
    /// The client read more slowly than the minimum send rate.
    TooSlow,
}

/// observe: how a connection's TLS handshake went, reported once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handshake {
    /// Completed with a full handshake.
    Full,
    /// Completed by resuming a session (ticket).
    Resumed,
    /// The layer failed during the handshake (alert sent).
    Error,
    /// The handshake took longer than [`HANDSHAKE_TIMEOUT`].
    Timeout,
    /// The client closed or reset the connection first.
    Closed,
}

/// What the server must do after a visit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Visited {
    /// The connection asked for a webhook pull.
    pub hook: bool,
    /// observe: the connection asked for the metrics.
    pub metrics: bool,
    /// observe: the TLS handshake ended (reported once per connection).
    pub handshake: Option<Handshake>,
    /// The visit's budget ran out with work left: visit again soon.
    pub busy: bool,
    /// The connection is over (its socket can go).
    pub end: Option<End>,
}

/// How expendable a connection is when connections or memory run short,
/// most expendable first (oldest first within a kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Standing {
    /// Already closing (its answer is out).
    Closing { since: Instant },
    /// Keep-alive with nothing to do.
    Idle { since: Instant },
    /// A handshake or request still arriving: a legitimate client sends
    /// its request at once, so the oldest of these is the one that
    /// dribbles.
    Stalled { since: Instant },
    /// Reading its response at this many bytes per second (measured over
    /// at least [`GRACE`]).
    Slow { rate: u64 },
    /// A response streaming at a healthy rate for longer than
    /// [`LONG_RESPONSE`], since `since`: taken only when a new client would
    /// otherwise be refused (short requests go first).
    Long { since: Instant },
    /// A response begun less than [`GRACE`] ago (its rate is not known
    /// yet), since `since`: taken only for a new client, oldest first.
    Starting { since: Instant },
    /// A handshake or request that began less than [`FRESH`] ago: most
    /// likely a client about to be served; taken very last, newest first.
    Fresh { since: core::cmp::Reverse<Instant> },
    /// Waiting for a webhook pull: never taken.
    Protected,
}

/// What a visit needs from the server.
pub(super) struct Visit<'v> {
    pub net: &'v mut Net,
    pub site: Option<&'v Site>,
    pub now: Instant,
    pub unix: u64,
    /// Where small output pieces are gathered.
    pub scratch: &'v mut [u8],
    /// Minimum bytes per second a client must read while a response waits
    /// for it (0: no minimum).
    pub min_send_rate: u64,
    /// The HTTP settings (for connections that switch to HTTP/2).
    pub http_cfg: &'v alloc::sync::Arc<http::HttpConfig>,
    /// observe: where finished access records go.
    pub access: &'v mut dyn AccessSink,
}

/// See the module documentation.
pub(super) struct Conn {
    stream: Stream,
    /// HTTP/1.1 until the TLS handshake has chosen HTTP/2 by ALPN.
    http: Box<dyn Session>,
    /// The framing is settled (plain HTTP, or the handshake is done).
    framing_chosen: bool,
    phase: Phase,
    accepted: Instant,
    /// The socket's buffers are the generous size.
    pub generous: bool,
    /// The transport failed.
    failed: bool,
    /// Output accounting while output waits to be sent; `None` otherwise.
    sending: Option<Sending>,
    /// observe: the handshake's end was reported ([`Visited::handshake`]).
    handshake_reported: bool,
}

/// What a client has acknowledged since its output began to wait, and in
/// the current window of [`RATE_WINDOW`] (the minimum send rate is checked
/// per window). Acknowledged bytes, not bytes handed to TLS or the socket:
/// a reader with a tiny window still swallows the buffers at first.
#[derive(Clone, Copy, Debug)]
struct Sending {
    since: Instant,
    /// Acknowledged total when the output began to wait.
    start_acked: u64,
    window_start: Instant,
    window_acked: u64,
    /// Acknowledged total as of the last visit.
    acked: u64,
}

impl Conn {
    /// A connection accepted at `now`: HTTP/1.1, or HTTP/2 if the TLS
    /// handshake picks `h2`.
    pub fn new(stream: Stream, http: http::Connection, now: Instant) -> Conn {
        let framing_chosen = stream.layer().alpn().is_none() && stream.layer().is_ready();
        Conn {
            stream,
            http: Box::new(http),
            framing_chosen,
            phase: Phase::Open,
            accepted: now,
            generous: false,
            failed: false,
            sending: None,
            handshake_reported: false,
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

    /// observe: answers the pending metrics request (see
    /// [`http::Connection::complete_metrics`]).
    pub fn complete_metrics(&mut self, exposition: alloc::string::String, now: Instant, unix: u64) {
        self.http.complete_metrics(exposition, now, unix);
    }

    /// observe: the connection is dropped (evicted): its unfinished
    /// responses go to `access` as aborted.
    pub fn abandon(&mut self, now: Instant, access: &mut dyn AccessSink) {
        self.http.abort(now);
        self.http.take_access(access);
    }

    /// True once the connection is closing.
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. })
    }

    /// The earliest time the connection needs attention without input.
    pub fn deadline(&self) -> Option<Instant> {
        let handshake =
            (!self.stream.layer().is_ready()).then(|| self.accepted + HANDSHAKE_TIMEOUT);
        let close = match self.phase {
            Phase::Closing { since } => Some(since + CLOSE_TIMEOUT),
            Phase::Open => None,
        };
        let rate = self.sending.map(|s| s.window_start + RATE_WINDOW);
        [self.http.deadline(), handshake, close, rate]
            .into_iter()
            .flatten()
            .min()
    }

    /// How expendable the connection is at `now` (see [`Standing`]); a
    /// response read below `healthy_rate` bytes per second is slow.
    pub fn standing(&self, now: Instant, healthy_rate: u64) -> Standing {
        if let Phase::Closing { since } = self.phase {
            return Standing::Closing { since };
        }
        let arriving = |since: Instant| {
            if now >= since + FRESH {
                Standing::Stalled { since }
            } else {
                Standing::Fresh {
                    since: core::cmp::Reverse(since),
                }
            }
        };
        if !self.stream.layer().is_ready() {
            return arriving(self.accepted);
        }
        match self.http.activity() {
            Activity::Closing => Standing::Closing { since: now },
            // Expendable like a handshake in progress, not like a
            // keep-alive connection that has been served.
            Activity::Waiting => arriving(self.accepted),
            Activity::Idle { since } => Standing::Idle { since },
            Activity::Receiving { since } => arriving(since),
            Activity::Sending => match self.sending {
                Some(s) if now >= s.since + GRACE => {
                    let ms = (now - s.since).total_millis().max(1);
                    let rate = (s.acked - s.start_acked) * 1000 / ms;
                    if rate < healthy_rate {
                        Standing::Slow { rate }
                    } else if now >= s.since + LONG_RESPONSE {
                        Standing::Long { since: s.since }
                    } else {
                        Standing::Starting { since: s.since }
                    }
                }
                Some(s) => Standing::Starting { since: s.since },
                None => Standing::Starting { since: now },
            },
            Activity::AwaitingHook => Standing::Protected,
        }
    }

    /// Closes an idle connection in order (TLS close_notify, then FIN), as
    /// its idle timeout would.
    pub fn close_idle(&mut self, net: &mut Net, now: Instant) {
        self.begin_close(net, now);
    }

    /// Moves data between the stream and HTTP as far as it goes.
    pub fn visit(&mut self, v: &mut Visit<'_>) -> Visited {
        let mut visited = self.visit_streams(v);
        // observe: the handshake's outcome, and the finished responses.
        visited.handshake = self.handshake_outcome(&visited, v.now);
        self.http.take_access(v.access);
        visited
    }

    /// observe: the TLS handshake's end, the first time it is seen.
    fn handshake_outcome(&mut self, visited: &Visited, now: Instant) -> Option<Handshake> {
        if self.handshake_reported {
            return None;
        }
        let layer = self.stream.layer();
        let outcome = if layer.is_ready() {
            self.handshake_reported = true;
            match layer.handshake_kind()? {
                rustls::HandshakeKind::Resumed => Handshake::Resumed,
                _ => Handshake::Full,
            }
        } else if self.failed {
            Handshake::Error
        } else if visited.end.is_some() && now >= self.accepted + HANDSHAKE_TIMEOUT {
            Handshake::Timeout
        } else if visited.end.is_some() {
            Handshake::Closed
        } else {
            return None;
        };
        self.handshake_reported = true;
        Some(outcome)
    }

    fn visit_streams(&mut self, v: &mut Visit<'_>) -> Visited {
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
                Visited::default()
            };
        }
        if !self.stream.layer().is_ready() && v.now >= self.accepted + HANDSHAKE_TIMEOUT {
            debug!("TLS handshake timed out");
            self.http.abort(v.now);
            return self.finished();
        }

        let mut visited = Visited::default();
        let mut written = 0;
        loop {
            // Input: socket -> (TLS) -> HTTP.
            let mut moved = match self.stream.exchange(v.net) {
                Ok(moved) => usize::from(moved),
                Err(e) => {
                    debug!("{e}");
                    return self.fail(v.net, v.now);
                }
            };
            // The handshake may have completed just now, with application
            // data right behind it: the framing is chosen before any of it
            // is read.
            if !self.framing_chosen && self.stream.layer().is_ready() {
                self.choose_framing(v);
                if self.is_closing() {
                    return Visited::default();
                }
            }
            moved += self.read(v);
            // Process; output: HTTP -> (TLS) -> socket.
            while let Some(event) = self.http.poll(v.site, v.now, v.unix) {
                match event {
                    Event::HookRequested => visited.hook = true,
                    Event::MetricsRequested => visited.metrics = true,
                }
                moved += 1;
            }
            match self.write(v) {
                Ok(n) => {
                    moved += n;
                    written += n;
                }
                Err(()) => return self.fail(v.net, v.now),
            }
            // observe: at most the queued responses finished in this round.
            self.http.take_access(v.access);
            if moved == 0 {
                break;
            }
            if written >= VISIT_BUDGET {
                visited.busy = true;
                break;
            }
        }

        if self.account_rate(v) {
            info!(
                "closing a connection that reads more slowly than {} B/s",
                v.min_send_rate
            );
            self.http.abort(v.now);
            return Visited {
                end: Some(End::TooSlow),
                ..visited
            };
        }
        if self.http.deadline().is_some_and(|d| v.now >= d) {
            self.http.on_timeout(v.now);
        }

        let peer_done = self.stream.peer_done(v.net);
        if self.http.wants_close()
            || (peer_done && self.http.output().is_empty() && !self.http.awaiting_hook())
        {
            self.begin_close(v.net, v.now);
        } else if matches!(
            self.http.activity(),
            Activity::Idle { .. } | Activity::Waiting
        ) {
            self.http.trim();
            self.stream.trim();
        }
        visited
    }

    /// Once the TLS handshake is done: HTTP/2 if ALPN chose `h2`. (No
    /// application data has arrived yet, so the HTTP/1.1 connection made at
    /// accept has seen nothing.)
    fn choose_framing(&mut self, v: &mut Visit<'_>) {
        self.framing_chosen = true;
        if self.stream.layer().alpn() == Some(crate::tls::ACME_TLS_ALPN) {
            // A TLS-ALPN-01 validation: the handshake was all it wanted
            // (RFC 8737 §3).
            self.http.abort(v.now);
            self.begin_close(v.net, v.now);
            return;
        }
        if self.stream.layer().alpn() == Some(b"h2") {
            let mut h2 =
                http::h2::Connection::new(v.http_cfg.clone(), Role::Site { secure: true }, v.now);
            let peer = v.net.tcp(self.stream.socket()).remote_endpoint();
            h2.set_peer(peer.map(|ep| ep.addr));
            self.http = Box::new(h2);
        }
    }

    /// Updates the send-rate accounting; true when the client reads too
    /// slowly.
    fn account_rate(&mut self, v: &mut Visit<'_>) -> bool {
        let waiting = !self.http.output().is_empty()
            || self.stream.layer().has_output()
            || v.net.tcp(self.stream.socket()).send_queue() > 0;
        if !waiting {
            self.sending = None;
            return false;
        }
        let acked = self.stream.acknowledged(v.net);
        let s = self.sending.get_or_insert(Sending {
            since: v.now,
            start_acked: acked,
            window_start: v.now,
            window_acked: acked,
            acked,
        });
        s.acked = acked;
        if v.now < s.window_start + RATE_WINDOW {
            return false;
        }
        let too_slow = acked - s.window_acked < v.min_send_rate * RATE_WINDOW.secs();
        s.window_start = v.now;
        s.window_acked = acked;
        too_slow
    }

    fn begin_close(&mut self, net: &mut Net, now: Instant) {
        self.stream.close();
        let _ = self.stream.exchange(net);
        self.phase = Phase::Closing { since: now };
        self.sending = None;
        self.http.trim();
    }

    /// Offers received plaintext to HTTP; returns how many bytes it took.
    fn read(&mut self, v: &mut Visit<'_>) -> usize {
        let (http, now) = (&mut self.http, v.now);
        self.stream.read(v.net, |bytes| http.receive(bytes, now))
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
    fn fail(&mut self, net: &mut Net, now: Instant) -> Visited {
        self.failed = true;
        self.http.abort(now);
        let _ = self.stream.finish_close(net);
        self.phase = Phase::Closing { since: now };
        Visited::default()
    }

    fn finished(&self) -> Visited {
        Visited {
            end: Some(if self.failed {
                End::Failed
            } else {
                End::Closed
            }),
            ..Visited::default()
        }
    }
}
