//! HTTP/1.1 framing: one [`Connection`] per TCP (or TLS) connection. See
//! the [module documentation](super) for the driving protocol and the
//! behaviour.
//!
//! - `head`: parsing and checking a request's header block;
//! - bodies (only the webhook's is read) are decoded by `unipi-httpwire`,
//!   the project's one HTTP/1.1 body decoder;
//! - `output`: the queue of response bytes, in request order;
//! - here: the state machine, and writing a [`Response`] as HTTP/1.1.

pub(crate) mod head;
pub(crate) mod output;

#[cfg(test)]
mod observe_tests;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;

use smoltcp::time::Instant;

use self::head::{Framing, bad_version_is_http, in_target};
use self::output::Output;
use super::hook::{Credentials, Verdict};
use super::request::{Method, Request};
use super::response::{Content, Response, reason};
use super::serve::{self, Context, Reply, Scratch};
use super::{Activity, Event, HookOutcome, HttpConfig, MAX_HEADERS, Role, SERVER, Session, date};
use crate::observe::access::{AccessRequest, AccessSink};
use crate::site::Site;
use unipi_httpwire::{BodyDecoder, BodyError, BodyLimits};

/// The facts of a request that its response needs, from the end of its
/// header block until the response is queued.
#[derive(Clone, Debug)]
struct Exchange {
    /// `0` for HTTP/1.0, `1` for HTTP/1.1.
    version: u8,
    keep_alive: bool,
    /// `HEAD`: header block only.
    head_only: bool,
    /// observe: what the access log keeps of the request.
    log: Box<AccessRequest>,
}

/// A response that the connection's owner supplies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaited {
    /// The webhook's: [`Connection::complete_hook`].
    Hook,
    /// The metrics': [`Connection::complete_metrics`].
    Metrics,
}

/// What the connection is doing.
#[derive(Debug)]
enum State {
    /// Waiting for (more of) a request header block; `since`: when its
    /// first byte arrived.
    Head { since: Option<Instant> },
    /// Reading the body of a webhook request (kept, bounded, for its
    /// signature); the pull or a `401`/`403` follows.
    HookBody {
        reader: BodyDecoder,
        body: Vec<u8>,
        credentials: Box<Credentials>,
        exchange: Exchange,
        since: Instant,
    },
    /// The webhook or the metrics were requested; `announced` once
    /// [`Event::HookRequested`] or [`Event::MetricsRequested`] was
    /// returned. Waits for [`Connection::complete_hook`] or
    /// [`Connection::complete_metrics`].
    Awaiting {
        exchange: Exchange,
        announced: bool,
        what: Awaited,
    },
    /// No more requests are read; close once the output has drained.
    Closing,
    /// Close now; nothing more will be sent.
    Dead,
}

/// One HTTP/1.1 server connection. See the [module documentation](super).
pub struct Connection {
    cfg: Arc<HttpConfig>,
    role: Role,
    input: Vec<u8>,
    state: State,
    out: Output,
    /// Latest time seen.
    now: Instant,
    /// Output was consumed since the last time observation.
    progressed: bool,
    /// Last request completion or output progress.
    last_activity: Instant,
    scratch: Scratch,
    /// Wall clock (unix seconds) at monotonic time `.1`, from the latest
    /// call that passed both.
    wall: (u64, Instant),
    /// observe: the client's address, for the access log.
    peer: Option<smoltcp::wire::IpAddress>,
    /// A request has begun (its first byte arrived).
    began: bool,
}

enum Step {
    Progress,
    Stall,
}

impl Connection {
    /// A fresh connection, accepted at `now`.
    pub fn new(config: Arc<HttpConfig>, role: Role, now: Instant) -> Self {
        Connection {
            cfg: config,
            role,
            input: Vec::new(),
            state: State::Head { since: None },
            out: Output::default(),
            now,
            progressed: false,
            last_activity: now,
            scratch: Scratch::default(),
            wall: (0, now),
            peer: None,
            began: false,
        }
    }

    /// observe: sets the client's address the access records name.
    pub fn set_peer(&mut self, peer: Option<smoltcp::wire::IpAddress>) {
        self.peer = peer;
    }

    /// observe: hands the access records of the responses finished since
    /// the last call (sent in full, or cut short by [`abort`](Self::abort))
    /// to `sink`, in order. Call it after every [`consume`](Self::consume)
    /// round and after `abort`: a connection keeps at most 64 records.
    pub fn take_access(&mut self, sink: &mut dyn AccessSink) {
        self.out.take_finished(sink);
    }

    /// The exchange of a request whose header block could not be
    /// understood.
    fn unparsed(&self, start: Instant) -> Exchange {
        Exchange {
            version: 1,
            keep_alive: false,
            head_only: false,
            log: AccessRequest::new(self.peer, start),
        }
    }

    /// Wall-clock estimate for timers (which get monotonic time only).
    fn unix_now(&self) -> u64 {
        let (unix, at) = self.wall;
        if self.now > at {
            unix + (self.now - at).secs()
        } else {
            unix
        }
    }

    fn observe(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        if self.progressed {
            self.progressed = false;
            self.last_activity = self.now;
        }
    }

    fn reading(&self) -> bool {
        !matches!(self.state, State::Closing | State::Dead)
    }

    /// Offers received plaintext; returns how many bytes were taken (at most
    /// the free space of the bounded input buffer — keep the rest and offer
    /// it again after [`poll`](Self::poll)). Once the connection is closing,
    /// everything is taken and dropped.
    pub fn receive(&mut self, data: &[u8], now: Instant) -> usize {
        self.observe(now);
        if !self.reading() {
            return data.len();
        }
        let room = self
            .cfg
            .limits
            .input_capacity()
            .saturating_sub(self.input.len());
        let n = room.min(data.len());
        if n > 0
            && self.input.is_empty()
            && let State::Head {
                since: since @ None,
            } = &mut self.state
        {
            *since = Some(self.now);
            self.began = true;
        }
        self.input.extend_from_slice(&data[..n]);
        n
    }

    /// Processes buffered input: parses requests and queues responses, in
    /// order. Call repeatedly until it returns `None`. `site` is the current
    /// snapshot (`None`: not available yet, site requests get `503`);
    /// `unix_time` is the wall clock for `Date` headers.
    pub fn poll(&mut self, site: Option<&Site>, now: Instant, unix_time: u64) -> Option<Event> {
        self.observe(now);
        self.wall = (unix_time, self.now);
        loop {
            let full = self.output_full();
            let step = match &mut self.state {
                State::Closing | State::Dead => return None,
                State::Awaiting {
                    announced, what, ..
                } => {
                    if *announced {
                        return None;
                    }
                    *announced = true;
                    return Some(match what {
                        Awaited::Hook => Event::HookRequested,
                        Awaited::Metrics => Event::MetricsRequested,
                    });
                }
                State::HookBody { .. } => self.step_hook_body(),
                State::Head { .. } if full => {
                    // We are the bottleneck, not the client: the header
                    // clock restarts when parsing resumes.
                    if let State::Head { since: Some(s) } = &mut self.state {
                        *s = self.now;
                    }
                    return None;
                }
                State::Head { .. } => self.step_head(site, unix_time),
            };
            if let Step::Stall = step {
                return None;
            }
        }
    }

    /// Too many responses are queued to parse another request.
    fn output_full(&self) -> bool {
        let limits = &self.cfg.limits;
        self.out.queued_responses() >= limits.max_queued_responses.max(1)
            || self.out.queued_head_bytes() >= limits.input_capacity()
    }

    /// The next contiguous bytes to send; empty when there is nothing to
    /// send right now. Never contains bytes of a response whose request is
    /// still being received.
    pub fn output(&self) -> &[u8] {
        if matches!(self.state, State::Dead) {
            &[]
        } else {
            self.out.peek()
        }
    }

    /// Copies as much pending output as fits into `buf` (across chunk
    /// boundaries) without consuming it; returns the number of bytes
    /// copied. Follow with [`consume`](Self::consume) for what was sent.
    pub fn copy_output(&self, buf: &mut [u8]) -> usize {
        if matches!(self.state, State::Dead) {
            0
        } else {
            self.out.copy_to(buf)
        }
    }

    /// Marks the first `n` bytes of pending output as sent. `n` larger than
    /// what is pending is clamped.
    pub fn consume(&mut self, n: usize) {
        if self.out.consume(n, self.now) > 0 {
            self.progressed = true;
        }
    }

    /// True when the transport should be closed now: the connection decided
    /// to close and all its output has been consumed (or it timed out).
    pub fn wants_close(&self) -> bool {
        match self.state {
            State::Dead => true,
            State::Closing => self.out.is_empty(),
            _ => false,
        }
    }

    /// What the connection is doing (see [`Activity`]).
    pub fn activity(&self) -> Activity {
        match self.state {
            State::Closing | State::Dead => Activity::Closing,
            State::Awaiting { .. } => Activity::AwaitingHook,
            _ if !self.out.is_empty() => Activity::Sending,
            State::HookBody { since, .. } | State::Head { since: Some(since) } => {
                Activity::Receiving { since }
            }
            State::Head { since: None } if !self.began => Activity::Waiting,
            State::Head { since: None } => Activity::Idle {
                since: self.last_activity,
            },
        }
    }

    /// Gives back the memory of empty buffers; call when the connection is
    /// idle. An idle connection then holds no buffers at all.
    pub fn trim(&mut self) {
        if self.input.is_empty() {
            self.input = Vec::new();
        }
        self.out.trim();
        self.scratch = Scratch::default();
    }

    /// True while the connection waits for [`complete_hook`](Self::complete_hook)
    /// (or [`complete_metrics`](Self::complete_metrics)).
    pub fn awaiting_hook(&self) -> bool {
        matches!(self.state, State::Awaiting { .. })
    }

    /// The transport is gone: drop pending output (recording unfinished
    /// responses as aborted, see [`take_access`](Self::take_access)).
    /// Afterwards [`wants_close`](Self::wants_close) is true.
    pub fn abort(&mut self, now: Instant) {
        self.observe(now);
        self.out.abandon(self.now);
        self.state = State::Dead;
    }

    /// When [`on_timeout`](Self::on_timeout) must be called next, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        if self.wants_close() {
            return None;
        }
        let t = &self.cfg.timeouts;
        let activity = if self.progressed {
            self.now
        } else {
            self.last_activity
        };
        let send = self.out.has_visible().then(|| activity + t.send);
        let state = match self.state {
            State::Head { since: Some(s) } if !self.output_full() => Some(s + t.header),
            State::Head { since: None } if self.out.is_empty() => Some(activity + t.idle),
            State::HookBody { since, .. } => Some(since + t.body),
            _ => None,
        };
        [send, state].into_iter().flatten().min()
    }

    /// Applies every timeout that has expired at `now`: a stalled request
    /// header or body gets `408` and the connection closes; an idle
    /// connection closes silently; stalled output drops the connection.
    /// Calling it early is harmless.
    pub fn on_timeout(&mut self, now: Instant) {
        self.observe(now);
        if self.wants_close() {
            return;
        }
        let t = self.cfg.timeouts;
        if self.out.has_visible() && self.now >= self.last_activity + t.send {
            log::info!("http: output stalled, dropping connection");
            self.out.abandon(self.now);
            self.state = State::Dead;
            return;
        }
        match self.state {
            State::Head { since: Some(s) } if self.now >= s + t.header && !self.output_full() => {
                self.fail(408, self.unparsed(s));
            }
            State::Head { since: None }
                if self.out.is_empty() && self.now >= self.last_activity + t.idle =>
            {
                self.close_after_output();
            }
            State::HookBody { since, .. } if self.now >= since + t.body => {
                let State::HookBody { exchange, .. } =
                    core::mem::replace(&mut self.state, State::Closing)
                else {
                    return;
                };
                self.fail(408, exchange);
            }
            _ => {}
        }
    }

    /// Answers the pending webhook request: `200 pulled <commit>`, `200
    /// pulled, no changes`, or `500 <reason>`. Ignored (with a warning) when
    /// no hook is pending. Call [`poll`](Self::poll) afterwards: pipelined
    /// requests may be waiting.
    pub fn complete_hook(&mut self, outcome: HookOutcome, now: Instant, unix_time: u64) {
        if !self.take_awaited(Awaited::Hook, now, unix_time, || {
            serve::hook_response(outcome)
        }) {
            log::warn!("http: complete_hook without a pending hook request");
        }
    }

    /// Answers the pending metrics request with `exposition` (Prometheus
    /// text format, see `observe/metrics.rs`). Ignored when no metrics
    /// request is pending. Call [`poll`](Self::poll) afterwards.
    pub fn complete_metrics(
        &mut self,
        exposition: alloc::string::String,
        now: Instant,
        unix_time: u64,
    ) {
        self.take_awaited(Awaited::Metrics, now, unix_time, || {
            serve::metrics_response(exposition)
        });
    }

    /// Answers the awaited response `what` with `respond`'s; false when
    /// the connection is not waiting for it.
    fn take_awaited(
        &mut self,
        what: Awaited,
        now: Instant,
        unix_time: u64,
        respond: impl FnOnce() -> Response<'static>,
    ) -> bool {
        self.observe(now);
        self.wall = (unix_time, self.now);
        if !matches!(self.state, State::Awaiting { what: w, .. } if w == what) {
            return false;
        }
        let State::Awaiting { exchange, .. } =
            core::mem::replace(&mut self.state, State::Head { since: None })
        else {
            return false;
        };
        let response = respond();
        let keep_alive = exchange.keep_alive;
        self.write(exchange, &response);
        self.after_response(keep_alive);
        true
    }

    /// Bookkeeping after a response has been queued in full.
    fn after_response(&mut self, keep_alive: bool) {
        if keep_alive {
            self.last_activity = self.now;
            self.state = State::Head {
                since: (!self.input.is_empty()).then_some(self.now),
            };
        } else {
            self.close_after_output();
        }
    }

    /// No more requests: what is queued is sent, then the connection closes.
    fn close_after_output(&mut self) {
        self.state = State::Closing;
        self.input = Vec::new();
    }

    /// Sends an error for a request that could not be handled, and closes.
    fn fail(&mut self, status: u16, mut exchange: Exchange) {
        exchange.keep_alive = false;
        self.write(exchange, &Response::error(status));
        self.close_after_output();
    }

    /// Queues `response` to the request `exchange` describes.
    fn write(&mut self, exchange: Exchange, response: &Response<'_>) {
        let cx = WriteContext {
            cfg: &self.cfg,
            role: self.role,
            unix: self.unix_now(),
            now: self.now,
        };
        write_response(&mut self.out, &cx, exchange, response);
    }

    fn step_hook_body(&mut self) -> Step {
        let State::HookBody { reader, body, .. } = &mut self.state else {
            return Step::Stall;
        };
        let mut fed = Ok(0);
        while let Ok(used) = fed {
            if used == self.input.len() || reader.is_done() {
                break;
            }
            fed = reader.decode(&self.input[used..]).map(|d| {
                body.extend_from_slice(d.data);
                used + d.consumed
            });
        }
        match fed {
            Ok(used) => {
                let done = reader.is_done();
                self.input.drain(..used);
                if !done {
                    return Step::Stall;
                }
                let State::HookBody {
                    body,
                    credentials,
                    exchange,
                    ..
                } = core::mem::replace(&mut self.state, State::Head { since: None })
                else {
                    return Step::Stall;
                };
                self.hook_or_refuse(exchange, &credentials, &body);
                Step::Progress
            }
            Err(e) => {
                let State::HookBody { exchange, .. } =
                    core::mem::replace(&mut self.state, State::Closing)
                else {
                    return Step::Stall;
                };
                let status = match e {
                    BodyError::TooLarge { .. } => 413,
                    _ => 400,
                };
                self.fail(status, exchange);
                Step::Stall
            }
        }
    }

    /// A complete webhook request: checks its credentials against the
    /// configured secret (if any), then waits for the pull or answers
    /// `401`/`403`.
    fn hook_or_refuse(&mut self, exchange: Exchange, credentials: &Credentials, body: &[u8]) {
        let verdict = match &self.cfg.hook_secret {
            None => Verdict::Accepted,
            Some(secret) => credentials.verify(secret.as_bytes(), body),
        };
        let status = match verdict {
            Verdict::Accepted => {
                self.state = State::Awaiting {
                    exchange,
                    announced: false,
                    what: Awaited::Hook,
                };
                return;
            }
            Verdict::Missing => 401,
            Verdict::Wrong => 403,
        };
        log::warn!("http: webhook request refused ({status}): missing or wrong signature");
        let keep_alive = exchange.keep_alive;
        self.write(exchange, &Response::error(status));
        self.after_response(keep_alive);
    }

    fn step_head(&mut self, site: Option<&Site>, unix: u64) -> Step {
        // Empty lines (CRLF) before a request line are ignored (RFC 9112
        // §2.2); a bare LF is not a line ending here either.
        let blank = self
            .input
            .chunks(2)
            .take_while(|pair| *pair == b"\r\n")
            .count()
            * 2;
        if blank > 0 {
            self.input.drain(..blank);
            if self.input.is_empty() {
                self.state = State::Head { since: None };
            }
        }
        if self.input.is_empty() || self.input == b"\r" {
            return Step::Stall;
        }
        let start = match self.state {
            State::Head { since: Some(s) } => s,
            _ => self.now,
        };
        let limits = self.cfg.limits;
        let capacity = limits.input_capacity();
        let line_limit = limits.max_request_line.clamp(16, capacity);
        let too_long = match self.input.iter().position(|b| *b == b'\n') {
            Some(i) => i + 1 > line_limit,
            None => self.input.len() >= line_limit,
        };
        if too_long {
            let status = if in_target(&self.input) { 414 } else { 400 };
            self.fail(status, self.unparsed(start));
            return Step::Stall;
        }

        head::serve_minor_versions_as_1_1(&mut self.input);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let max_headers = limits.max_headers.clamp(1, MAX_HEADERS);
        let mut req = httparse::Request::new(&mut headers[..max_headers]);
        let consumed = match req.parse(&self.input) {
            Ok(httparse::Status::Complete(n)) if head::has_bare_lf(&self.input[..n]) => {
                // httparse takes a bare LF as a line break; behind a proxy
                // that does not, `X-A: a\nContent-Length: 5` smuggles a
                // second framing into the request (RFC 9112 §2.2).
                self.fail(400, self.unparsed(start));
                return Step::Stall;
            }
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if self.input.len() >= capacity {
                    self.fail(431, self.unparsed(start));
                }
                return Step::Stall;
            }
            Err(e) => {
                let status = match e {
                    httparse::Error::TooManyHeaders => 431,
                    httparse::Error::Version if bad_version_is_http(&self.input) => 505,
                    _ => 400,
                };
                self.fail(status, self.unparsed(start));
                return Step::Stall;
            }
        };
        let method_token = req.method.unwrap_or("-");
        let target = req.path.unwrap_or("");
        let version = req.version.unwrap_or(1);
        let request = Request {
            method_token,
            method: Method::parse(method_token),
            target,
            host: super::request::values(req.headers, "host")
                .next()
                .and_then(|h| core::str::from_utf8(h.trim_ascii()).ok()),
            fields: req.headers,
        };
        let protocol = if version == 0 { "HTTP/1.0" } else { "HTTP/1.1" };
        let log = request.access(self.peer, start, protocol);
        let mut exchange = Exchange {
            version,
            keep_alive: false,
            head_only: request.method == Method::Head,
            log,
        };
        let framing = match Framing::check(version, req.headers) {
            Ok(f) => f,
            Err(status) => {
                self.fail(status, exchange);
                return Step::Stall;
            }
        };
        exchange.keep_alive = framing.keep_alive;

        let cfg = self.cfg.clone();
        let cx = Context {
            cfg: &cfg,
            role: self.role,
            site,
            unix,
        };
        let served = serve::serve(&cx, &request, &mut self.scratch);
        if served.secret_path {
            exchange.log.set_request(method_token, "<hook>", protocol);
        }
        match served.reply {
            Reply::Respond(response) => {
                // A body is only ever read for the webhook: any other
                // request gets its answer at once, and the connection
                // closes instead of waiting for (and discarding) a body
                // that may never end.
                if framing.body.is_some() {
                    exchange.keep_alive = false;
                }
                let wcx = WriteContext {
                    cfg: &cfg,
                    role: self.role,
                    unix,
                    now: self.now,
                };
                let keep_alive = exchange.keep_alive;
                write_response(&mut self.out, &wcx, exchange, &response);
                self.input.drain(..consumed);
                self.after_response(keep_alive);
            }
            Reply::Hook => {
                let credentials = Box::new(Credentials::of(&request));
                self.input.drain(..consumed);
                if framing
                    .content_length
                    .is_some_and(|l| l > limits.max_body_bytes)
                {
                    self.fail(413, exchange);
                    return Step::Stall;
                }
                match framing.body {
                    Some(framing_of_body) => {
                        let reader = BodyDecoder::new(
                            framing_of_body,
                            BodyLimits {
                                max_content_bytes: limits.max_body_bytes,
                                ..BodyLimits::default()
                            },
                        );
                        if framing.continue_expected {
                            self.out.write(b"HTTP/1.1 100 Continue\r\n\r\n");
                            self.out.flush();
                        }
                        self.state = State::HookBody {
                            reader,
                            body: Vec::new(),
                            credentials,
                            exchange,
                            since: self.now,
                        };
                    }
                    None => self.hook_or_refuse(exchange, &credentials, &[]),
                }
            }
            Reply::Metrics => {
                // No body is read: the connection closes after the answer.
                if framing.body.is_some() {
                    exchange.keep_alive = false;
                }
                self.input.drain(..consumed);
                self.state = State::Awaiting {
                    exchange,
                    announced: false,
                    what: Awaited::Metrics,
                };
            }
        }
        Step::Progress
    }
}

/// What writing a response needs besides the response.
struct WriteContext<'a> {
    cfg: &'a HttpConfig,
    role: Role,
    unix: u64,
    now: Instant,
}

/// Queues `response` as HTTP/1.1: status line, `Date`, `Server`, the
/// response's fields, `Content-Length`, connection management and the
/// site's security fields, the empty line, then the content (unless the
/// request was `HEAD`).
fn write_response(
    out: &mut Output,
    cx: &WriteContext<'_>,
    exchange: Exchange,
    response: &Response<'_>,
) {
    let status = response.status;
    out.begin();
    let _ = write!(out, "HTTP/1.1 {} {}\r\nDate: ", status, reason(status));
    out.write(&date::format(cx.unix));
    out.write(b"\r\nServer: ");
    out.write(SERVER.as_bytes());
    out.write(b"\r\n");
    for (name, value) in response.fields() {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if response.has_content_length() {
        let _ = write!(out, "Content-Length: {}\r\n", response.content.len());
    }
    if !exchange.keep_alive {
        out.write(b"Connection: close\r\n");
    } else if exchange.version == 0 {
        out.write(b"Connection: keep-alive\r\n");
    }
    if let Role::Site { secure } = cx.role {
        if secure && let Some(age) = cx.cfg.hsts_max_age {
            let _ = write!(out, "Strict-Transport-Security: max-age={}\r\n", age);
        }
        out.write(b"X-Content-Type-Options: nosniff\r\n");
    }
    out.write(b"\r\n");
    out.end_head();
    if !exchange.head_only {
        match &response.content {
            Content::Empty => {}
            Content::Text(t) => out.write(t.as_bytes()),
            Content::File { body, start, end } => out.push_body(body, *start, *end),
        }
    }
    out.finish(exchange.log, status, cx.now);
}

impl Session for Connection {
    fn receive(&mut self, data: &[u8], now: Instant) -> usize {
        Connection::receive(self, data, now)
    }
    fn poll(&mut self, site: Option<&Site>, now: Instant, unix_time: u64) -> Option<Event> {
        Connection::poll(self, site, now, unix_time)
    }
    fn output(&self) -> &[u8] {
        Connection::output(self)
    }
    fn copy_output(&self, buf: &mut [u8]) -> usize {
        Connection::copy_output(self, buf)
    }
    fn consume(&mut self, n: usize) {
        Connection::consume(self, n)
    }
    fn wants_close(&self) -> bool {
        Connection::wants_close(self)
    }
    fn awaiting_hook(&self) -> bool {
        Connection::awaiting_hook(self)
    }
    fn abort(&mut self, now: Instant) {
        Connection::abort(self, now)
    }
    fn deadline(&self) -> Option<Instant> {
        Connection::deadline(self)
    }
    fn on_timeout(&mut self, now: Instant) {
        Connection::on_timeout(self, now)
    }
    fn complete_hook(&mut self, outcome: HookOutcome, now: Instant, unix_time: u64) {
        Connection::complete_hook(self, outcome, now, unix_time)
    }
    fn activity(&self) -> Activity {
        Connection::activity(self)
    }
    fn trim(&mut self) {
        Connection::trim(self)
    }
    fn set_peer(&mut self, peer: Option<smoltcp::wire::IpAddress>) {
        Connection::set_peer(self, peer)
    }
    fn take_access(&mut self, sink: &mut dyn AccessSink) {
        Connection::take_access(self, sink)
    }
    fn complete_metrics(&mut self, exposition: alloc::string::String, now: Instant, unix: u64) {
        Connection::complete_metrics(self, exposition, now, unix)
    }
}
