//! The per-connection state machine. See the [module documentation](super)
//! for the driving protocol and the behaviour.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;

use smoltcp::time::Instant;

use super::body::{BodyError, BodyReader};
use super::conditional::{self, Compare, RangeOutcome};
use super::output::{LogRecord, Output};
use super::path;
use super::{Event, HookOutcome, HttpConfig, MAX_HEADERS, Role, SERVER, date};
use crate::site::{Body, ETag, Entry, Site};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// What the response to a request needs to remember.
#[derive(Clone, Debug)]
struct ReqInfo {
    version: u8,
    keep_alive: bool,
    /// `HEAD`: headers only.
    head: bool,
    start: Instant,
    log: LogRecord,
}

#[derive(Debug)]
enum State {
    /// Waiting for (more of) a request header block.
    Head,
    /// Discarding a request body; the response is held until it ends
    /// (or, for the hook, the event follows).
    Body { reader: BodyReader, hook: bool },
    /// The hook request is complete; the event has not been returned yet.
    HookReady,
    /// Waiting for [`Connection::complete_hook`].
    AwaitHook,
}

/// What handling a complete header block led to.
enum Outcome {
    /// The response is queued.
    Done { keep_alive: bool },
    /// A body follows; the response (if any) is held.
    Body {
        reader: BodyReader,
        hook: bool,
        info: ReqInfo,
    },
    /// The webhook was requested (no body).
    Hook { info: ReqInfo },
}

enum Step {
    Progress,
    Stall,
}

/// Reusable scratch space, so that serving a request allocates nothing once
/// the buffers have grown.
#[derive(Default)]
struct Scratch {
    decoded: Vec<u8>,
    key: String,
    text: String,
}

/// One HTTP/1.1 server connection. See the [module documentation](super).
pub struct Connection {
    cfg: Arc<HttpConfig>,
    role: Role,
    input: Vec<u8>,
    state: State,
    out: Output,
    /// No more requests will be read; close once output has drained.
    closing: bool,
    /// Close now; nothing more will be sent.
    dead: bool,
    /// Latest time seen.
    now: Instant,
    /// Output was consumed since the last time observation.
    progressed: bool,
    /// Last request completion or output progress.
    last_activity: Instant,
    /// When the first byte of the current request header arrived.
    head_started: Option<Instant>,
    body_started: Instant,
    pending: Option<ReqInfo>,
    scratch: Scratch,
    /// Wall clock (unix seconds) at monotonic time `.1`, from the latest
    /// call that passed both.
    wall: (u64, Instant),
}

impl Connection {
    /// A fresh connection, accepted at `now`.
    pub fn new(config: Arc<HttpConfig>, role: Role, now: Instant) -> Self {
        let mut out = Output::default();
        out.set_quiet(!config.access_log);
        Connection {
            cfg: config,
            role,
            input: Vec::new(),
            state: State::Head,
            out,
            closing: false,
            dead: false,
            now,
            progressed: false,
            last_activity: now,
            head_started: None,
            body_started: now,
            pending: None,
            scratch: Scratch::default(),
            wall: (0, now),
        }
    }

    /// The role given at creation.
    pub fn role(&self) -> Role {
        self.role
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

    /// Offers received plaintext; returns how many bytes were taken (at most
    /// the free space of the bounded input buffer — keep the rest and offer
    /// it again after [`poll`](Self::poll)). Once the connection is closing,
    /// everything is taken and dropped.
    pub fn receive(&mut self, data: &[u8], now: Instant) -> usize {
        self.observe(now);
        if self.dead || self.closing {
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
            && self.head_started.is_none()
            && matches!(self.state, State::Head)
        {
            self.head_started = Some(self.now);
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
            if self.dead || self.closing {
                return None;
            }
            let step = match self.state {
                State::HookReady => {
                    self.state = State::AwaitHook;
                    return Some(Event::HookRequested);
                }
                State::AwaitHook => return None,
                State::Body { .. } => self.step_body(unix_time),
                State::Head => {
                    if self.output_full() {
                        // We are the bottleneck, not the client: the header
                        // clock restarts when parsing resumes.
                        if self.head_started.is_some() {
                            self.head_started = Some(self.now);
                        }
                        return None;
                    }
                    self.step_head(site, unix_time)
                }
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
        if self.dead { &[] } else { self.out.peek() }
    }

    /// Copies as much pending output as fits into `buf` (across chunk
    /// boundaries) without consuming it; returns the number of bytes
    /// copied. Follow with [`consume`](Self::consume) for what was sent.
    pub fn copy_output(&self, buf: &mut [u8]) -> usize {
        if self.dead { 0 } else { self.out.copy_to(buf) }
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
        self.dead || (self.closing && self.out.is_empty())
    }

    /// True while the connection waits for [`complete_hook`](Self::complete_hook).
    pub fn awaiting_hook(&self) -> bool {
        matches!(self.state, State::HookReady | State::AwaitHook)
    }

    /// The transport is gone: drop pending output (logging unfinished
    /// responses as aborted). Afterwards [`wants_close`](Self::wants_close)
    /// is true.
    pub fn abort(&mut self, now: Instant) {
        self.observe(now);
        self.out.abandon(self.now);
        self.dead = true;
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
        let mut d: Option<Instant> = None;
        let mut at = |i: Instant| d = Some(d.map_or(i, |x: Instant| x.min(i)));
        if self.out.has_visible() {
            at(activity + t.send);
        }
        match self.state {
            State::Head if !self.closing => {
                if let Some(s) = self.head_started {
                    if !self.output_full() {
                        at(s + t.header);
                    }
                } else if self.out.is_empty() {
                    at(activity + t.idle);
                }
            }
            State::Body { .. } => at(self.body_started + t.body),
            _ => {}
        }
        d
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
            self.dead = true;
            return;
        }
        match self.state {
            State::Head if !self.closing => {
                if let Some(s) = self.head_started {
                    if self.now >= s + t.header && !self.output_full() {
                        self.fail(408, self.unix_now(), s);
                    }
                } else if self.out.is_empty() && self.now >= self.last_activity + t.idle {
                    self.closing = true;
                    self.input.clear();
                }
            }
            State::Body { .. } if self.now >= self.body_started + t.body => {
                self.out.discard_held();
                let info = self.pending.take();
                self.fail_with(408, self.unix_now(), info);
            }
            _ => {}
        }
    }

    /// Answers the pending webhook request: `200 pulled <commit>`, `200
    /// pulled, no changes`, or `500 <reason>`. Ignored (with a warning) when
    /// no hook is pending. Call [`poll`](Self::poll) afterwards: pipelined
    /// requests may be waiting.
    pub fn complete_hook(&mut self, outcome: HookOutcome, now: Instant, unix_time: u64) {
        self.observe(now);
        self.wall = (unix_time, self.now);
        if !self.awaiting_hook() {
            log::warn!("http: complete_hook without a pending hook request");
            return;
        }
        let Some(info) = self.pending.take() else {
            return;
        };
        let (status, text) = match outcome {
            HookOutcome::Updated { commit } => (200, alloc::format!("pulled {}", commit)),
            HookOutcome::Unchanged => (200, String::from("pulled, no changes")),
            HookOutcome::Failed { reason } => (500, reason),
        };
        let mut ctx = self.ctx(unix_time);
        simple(&mut ctx, &info, status, &[], &text);
        self.state = State::Head;
        self.after_response(info.keep_alive);
    }

    fn ctx(&mut self, unix: u64) -> Ctx<'_> {
        Ctx {
            cfg: &self.cfg,
            role: self.role,
            out: &mut self.out,
            unix,
            now: self.now,
        }
    }

    /// Bookkeeping after a response has been queued in full.
    fn after_response(&mut self, keep_alive: bool) {
        if keep_alive {
            self.last_activity = self.now;
            self.head_started = if self.input.is_empty() {
                None
            } else {
                Some(self.now)
            };
        } else {
            self.closing = true;
            self.input.clear();
        }
    }

    /// Sends an error for a request that could not be parsed, and closes.
    fn fail(&mut self, status: u16, unix: u64, start: Instant) {
        let info = ReqInfo {
            version: 1,
            keep_alive: false,
            head: false,
            start,
            log: LogRecord::new("-", "-", start),
        };
        self.fail_with(status, unix, Some(info));
    }

    fn fail_with(&mut self, status: u16, unix: u64, info: Option<ReqInfo>) {
        let mut info = info.unwrap_or_else(|| ReqInfo {
            version: 1,
            keep_alive: false,
            head: false,
            start: self.now,
            log: LogRecord::new("-", "-", self.now),
        });
        info.keep_alive = false;
        let mut ctx = self.ctx(unix);
        error(&mut ctx, &info, status);
        self.state = State::Head;
        self.closing = true;
        self.input.clear();
    }

    fn step_body(&mut self, unix: u64) -> Step {
        let State::Body { reader, hook } = &mut self.state else {
            return Step::Stall;
        };
        let hook = *hook;
        match reader.feed(&self.input, self.cfg.limits.max_body_bytes) {
            Ok(used) => {
                let done = reader.is_done();
                self.input.drain(..used);
                if !done {
                    return Step::Stall;
                }
                if hook {
                    self.state = State::HookReady;
                    return Step::Progress;
                }
                self.state = State::Head;
                self.out.release(self.now);
                let keep_alive = self.pending.take().is_some_and(|i| i.keep_alive);
                self.after_response(keep_alive);
                Step::Progress
            }
            Err(e) => {
                self.out.discard_held();
                let info = self.pending.take();
                let status = match e {
                    BodyError::TooLarge => 413,
                    BodyError::Malformed => 400,
                };
                self.fail_with(status, unix, info);
                Step::Stall
            }
        }
    }

    fn step_head(&mut self, site: Option<&Site>, unix: u64) -> Step {
        // Empty lines before a request line are ignored (RFC 9112 §2.2).
        let blank = self
            .input
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if blank > 0 {
            self.input.drain(..blank);
            if self.input.is_empty() {
                self.head_started = None;
            }
        }
        if self.input.is_empty() {
            return Step::Stall;
        }
        let start = self.head_started.unwrap_or(self.now);
        let limits = self.cfg.limits;
        let capacity = limits.input_capacity();
        let line_limit = limits.max_request_line.clamp(16, capacity);
        let too_long = match self.input.iter().position(|b| *b == b'\n') {
            Some(i) => i + 1 > line_limit,
            None => self.input.len() >= line_limit,
        };
        if too_long {
            let status = if in_target(&self.input) { 414 } else { 400 };
            self.fail(status, unix, start);
            return Step::Stall;
        }

        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let max_headers = limits.max_headers.clamp(1, MAX_HEADERS);
        let mut req = httparse::Request::new(&mut headers[..max_headers]);
        let (consumed, outcome) = match req.parse(&self.input) {
            Ok(httparse::Status::Complete(n)) => {
                let mut ctx = Ctx {
                    cfg: &self.cfg,
                    role: self.role,
                    out: &mut self.out,
                    unix,
                    now: self.now,
                };
                (n, handle(&mut ctx, &req, site, start, &mut self.scratch))
            }
            Ok(httparse::Status::Partial) => {
                if self.input.len() >= capacity {
                    self.fail(431, unix, start);
                }
                return Step::Stall;
            }
            Err(httparse::Error::TooManyHeaders) => {
                self.fail(431, unix, start);
                return Step::Stall;
            }
            Err(httparse::Error::Version) => {
                let status = if bad_version_is_http(&self.input) {
                    505
                } else {
                    400
                };
                self.fail(status, unix, start);
                return Step::Stall;
            }
            Err(_) => {
                self.fail(400, unix, start);
                return Step::Stall;
            }
        };
        self.input.drain(..consumed);
        self.head_started = None;
        match outcome {
            Outcome::Done { keep_alive } => self.after_response(keep_alive),
            Outcome::Body { reader, hook, info } => {
                self.state = State::Body { reader, hook };
                self.pending = Some(info);
                self.body_started = self.now;
            }
            Outcome::Hook { info } => {
                self.state = State::HookReady;
                self.pending = Some(info);
            }
        }
        Step::Progress
    }
}

/// Is the target what makes the (over-long) request line too long (`414`),
/// rather than a garbage method or version (`400`)?
fn in_target(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or(buf);
    let mut spaces = line.iter().enumerate().filter(|(_, b)| **b == b' ');
    let Some((i, _)) = spaces.next() else {
        return false;
    };
    let method_ok = (1..=32).contains(&i) && line[..i].iter().all(u8::is_ascii_alphabetic);
    match spaces.next() {
        // Still inside the target.
        None => method_ok,
        // Target complete: blame it if the version after it is short.
        Some((j, _)) => method_ok && line.len() - j <= 10,
    }
}

/// Does the request line end in `HTTP/<digit>.<digit>` (a version we do not
/// speak, `505`), rather than garbage (`400`)?
fn bad_version_is_http(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(sp) = line.iter().rposition(|b| *b == b' ') else {
        return false;
    };
    matches!(&line[sp + 1..], [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit())
        || matches!(&line[sp + 1..], [b'H', b'T', b'T', b'P', b'/', a] if a.is_ascii_digit())
}

/// Response-writing context.
struct Ctx<'a> {
    cfg: &'a HttpConfig,
    role: Role,
    out: &'a mut Output,
    unix: u64,
    now: Instant,
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

impl Ctx<'_> {
    fn start(&mut self, status: u16) {
        self.out.begin();
        let _ = write!(self.out, "HTTP/1.1 {} {}\r\nDate: ", status, reason(status));
        self.out.write(&date::format(self.unix));
        self.out.write(b"\r\nServer: ");
        self.out.write(SERVER.as_bytes());
        self.out.write(b"\r\n");
    }

    fn header(&mut self, name: &str, value: &str) {
        self.out.write(name.as_bytes());
        self.out.write(b": ");
        self.out.write(value.as_bytes());
        self.out.write(b"\r\n");
    }

    fn header_fmt(&mut self, name: &str, args: core::fmt::Arguments<'_>) {
        self.out.write(name.as_bytes());
        self.out.write(b": ");
        let _ = self.out.write_fmt(args);
        self.out.write(b"\r\n");
    }

    fn header_date(&mut self, name: &str, unix: u64) {
        self.out.write(name.as_bytes());
        self.out.write(b": ");
        self.out.write(&date::format(unix));
        self.out.write(b"\r\n");
    }

    /// Connection management and security headers, then the empty line.
    fn end_headers(&mut self, info: &ReqInfo) {
        if !info.keep_alive {
            self.out.write(b"Connection: close\r\n");
        } else if info.version == 0 {
            self.out.write(b"Connection: keep-alive\r\n");
        }
        if let Role::Site { secure } = self.role {
            if secure && let Some(age) = self.cfg.hsts_max_age {
                let _ = write!(self.out, "Strict-Transport-Security: max-age={}\r\n", age);
            }
            self.out.write(b"X-Content-Type-Options: nosniff\r\n");
        }
        self.out.write(b"\r\n");
    }

    fn finish(&mut self, info: &ReqInfo, status: u16) {
        self.out.finish(info.log.clone(), status, self.now);
    }
}

/// A response with a short generated `text/plain` body (or none).
fn simple(ctx: &mut Ctx<'_>, info: &ReqInfo, status: u16, extra: &[(&str, &str)], body: &str) {
    ctx.start(status);
    for (n, v) in extra {
        ctx.header(n, v);
    }
    if !body.is_empty() {
        ctx.header("Content-Type", "text/plain; charset=utf-8");
    }
    ctx.header_fmt("Content-Length", format_args!("{}", body.len()));
    ctx.end_headers(info);
    if !info.head {
        ctx.out.write(body.as_bytes());
    }
    ctx.finish(info, status);
}

/// An error response: `<status> <reason>` as text.
fn error(ctx: &mut Ctx<'_>, info: &ReqInfo, status: u16) {
    let mut text = [0u8; 64];
    let mut w = Buf {
        buf: &mut text,
        len: 0,
    };
    let _ = writeln!(w, "{} {}", status, reason(status));
    let len = w.len;
    let body = core::str::from_utf8(&text[..len]).unwrap_or("error\n");
    simple(ctx, info, status, &[], body);
}

/// A tiny fixed-size `fmt::Write` target.
struct Buf<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl core::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn redirect(ctx: &mut Ctx<'_>, info: &ReqInfo, status: u16, location: &str) {
    ctx.start(status);
    ctx.header("Location", location);
    ctx.header("Content-Length", "0");
    ctx.end_headers(info);
    ctx.finish(info, status);
}

fn header_values<'h, 'b: 'h>(
    headers: &'h [httparse::Header<'b>],
    name: &'static str,
) -> impl Iterator<Item = &'b [u8]> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// The value of a header that must occur once; `None` if absent or repeated.
fn single<'b>(headers: &[httparse::Header<'b>], name: &'static str) -> Option<&'b [u8]> {
    let mut it = header_values(headers, name);
    match (it.next(), it.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Characters allowed in a `Host` value (reg-name, IP literal, port).
fn valid_host(h: &[u8]) -> bool {
    h.len() <= 262
        && h.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(b))
}

/// `host[:port]` → `host` (IPv6 literals keep their brackets).
fn host_without_port(h: &str) -> Option<&str> {
    let (host, port) = if h.starts_with('[') {
        let end = h.find(']')?;
        let rest = &h[end + 1..];
        let port = if rest.is_empty() {
            ""
        } else {
            rest.strip_prefix(':')?
        };
        (&h[..=end], port)
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host, port),
            None => (h, ""),
        }
    };
    if host.is_empty() || host.contains(['[', ']']) && !host.starts_with('[') {
        return None;
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
        return None;
    }
    Some(host)
}

/// Handles a complete header block: validates framing, queues the response
/// (held if a body follows) or reports the hook.
fn handle(
    ctx: &mut Ctx<'_>,
    req: &httparse::Request<'_, '_>,
    site: Option<&Site>,
    start: Instant,
    scratch: &mut Scratch,
) -> Outcome {
    let method_str = req.method.unwrap_or("-");
    let target = req.path.unwrap_or("");
    let version = req.version.unwrap_or(1);
    let method = match method_str {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    };
    let log_path = target.split(['?', ';']).next().unwrap_or("");
    let mut info = ReqInfo {
        version,
        keep_alive: false,
        head: method == Method::Head,
        start,
        log: LogRecord::new(method_str, log_path, start),
    };

    let mut hosts = 0usize;
    let mut host: Option<&[u8]> = None;
    let (mut close, mut keep_alive) = (false, false);
    let mut content_length: Option<u64> = None;
    let mut bad_length = false;
    let mut te = false;
    let mut chunked_count = 0usize;
    let mut chunked_last = false;
    let mut expect: Option<&[u8]> = None;
    let mut expects = 0usize;
    for h in req.headers.iter() {
        let n = h.name;
        if n.eq_ignore_ascii_case("host") {
            hosts += 1;
            host = Some(h.value.trim_ascii());
        } else if n.eq_ignore_ascii_case("connection") {
            for t in tokens(h.value) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if n.eq_ignore_ascii_case("content-length") {
            let mut any = false;
            for t in tokens(h.value) {
                any = true;
                let ok = t.len() <= 18 && t.iter().all(u8::is_ascii_digit);
                let v = if ok {
                    t.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'))
                } else {
                    0
                };
                if !ok || content_length.is_some_and(|c| c != v) {
                    bad_length = true;
                } else {
                    content_length = Some(v);
                }
            }
            if !any {
                bad_length = true;
            }
        } else if n.eq_ignore_ascii_case("transfer-encoding") {
            te = true;
            for t in tokens(h.value) {
                chunked_last = t.eq_ignore_ascii_case(b"chunked");
                if chunked_last {
                    chunked_count += 1;
                }
            }
        } else if n.eq_ignore_ascii_case("expect") {
            expects += 1;
            expect = Some(h.value.trim_ascii());
        }
    }
    info.keep_alive = if version == 1 {
        !close
    } else {
        keep_alive && !close
    };

    let bad_framing = bad_length
        || (te && content_length.is_some())
        || (te && (version == 0 || !chunked_last || chunked_count != 1));
    let bad_host =
        hosts > 1 || (version == 1 && hosts == 0) || host.is_some_and(|h| !valid_host(h));
    let framing_error = if bad_framing || bad_host {
        Some(400)
    } else if content_length.is_some_and(|l| l > ctx.cfg.limits.max_body_bytes) {
        Some(413)
    } else if version == 1
        && expect.is_some()
        && (expects > 1 || !expect.is_some_and(|e| e.eq_ignore_ascii_case(b"100-continue")))
    {
        Some(417)
    } else {
        None
    };
    if let Some(status) = framing_error {
        info.keep_alive = false;
        error(ctx, &info, status);
        return Outcome::Done { keep_alive: false };
    }

    let reader = if te {
        Some(BodyReader::chunked())
    } else {
        match content_length {
            Some(l) if l > 0 => Some(BodyReader::with_length(l)),
            _ => None,
        }
    };
    if reader.is_some() {
        if version == 1 && expect.is_some() {
            ctx.out.write(b"HTTP/1.1 100 Continue\r\n\r\n");
            ctx.out.flush();
        }
        ctx.out.hold();
    }

    let hook = match ctx.role {
        Role::Redirect => {
            let host = host.and_then(|h| core::str::from_utf8(h).ok());
            redirect_role(ctx, &info, target, host, scratch);
            false
        }
        Role::Site { .. } => serve(ctx, &mut info, method, target, req.headers, site, scratch),
    };
    match (hook, reader) {
        (false, None) => Outcome::Done {
            keep_alive: info.keep_alive,
        },
        (hook, Some(reader)) => {
            if hook {
                ctx.out.release(ctx.now);
            }
            Outcome::Body { reader, hook, info }
        }
        (true, None) => Outcome::Hook { info },
    }
}

/// The plain-HTTP port: everything goes to the HTTPS site.
fn redirect_role(
    ctx: &mut Ctx<'_>,
    info: &ReqInfo,
    target: &str,
    host_header: Option<&str>,
    scratch: &mut Scratch,
) {
    let Some(t) = path::split_target(target) else {
        error(ctx, info, 400);
        return;
    };
    let host = match (&ctx.cfg.hostname, t.authority, host_header) {
        (Some(h), _, _) => Some(h.as_str()),
        (None, Some(a), _) => host_without_port(a).filter(|h| valid_host(h.as_bytes())),
        (None, None, Some(h)) => host_without_port(h),
        (None, None, None) => None,
    };
    let Some(host) = host else {
        error(ctx, info, 400);
        return;
    };
    let loc = &mut scratch.text;
    loc.clear();
    loc.push_str("https://");
    loc.push_str(host);
    if ctx.cfg.https_port != 443 {
        let _ = write!(loc, ":{}", ctx.cfg.https_port);
    }
    if !t.path_and_query.starts_with('/') {
        loc.push('/');
    }
    path::push_uri_safe(t.path_and_query, loc);
    redirect(ctx, info, 301, loc);
}

/// Constant-time equality (the time depends on the lengths only).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    core::hint::black_box(diff) == 0
}

/// Serves a request on the site role; returns `true` for the webhook.
fn serve(
    ctx: &mut Ctx<'_>,
    info: &mut ReqInfo,
    method: Method,
    target: &str,
    headers: &[httparse::Header<'_>],
    site: Option<&Site>,
    scratch: &mut Scratch,
) -> bool {
    let Some(t) = path::split_target(target) else {
        error(ctx, info, 400);
        return false;
    };
    let Ok(decoded) = path::decode(t.path, &mut scratch.decoded) else {
        error(ctx, info, 400);
        return false;
    };
    if ct_eq(decoded.as_bytes(), ctx.cfg.hook_path.as_bytes()) {
        let method_str = match method {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Head => "HEAD",
            Method::Other => "-",
        };
        info.log = LogRecord::new(method_str, "<hook>", info.start);
        if matches!(method, Method::Get | Method::Post) {
            return true;
        }
        simple(
            ctx,
            info,
            405,
            &[("Allow", "GET, POST")],
            "405 Method Not Allowed\n",
        );
        return false;
    }
    if !matches!(method, Method::Get | Method::Head) {
        simple(
            ctx,
            info,
            405,
            &[("Allow", "GET, HEAD")],
            "405 Method Not Allowed\n",
        );
        return false;
    }
    let Some(site) = site else {
        simple(
            ctx,
            info,
            503,
            &[("Retry-After", "5")],
            "503 Service Unavailable: the site is being fetched\n",
        );
        return false;
    };
    let key = &mut scratch.key;
    let Ok(dir) = path::site_key(decoded, key) else {
        error(ctx, info, 400);
        return false;
    };
    if dir {
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str("index.html");
    }
    match site.get(key) {
        Some(Entry::File {
            body,
            etag,
            last_modified,
            ..
        }) => serve_file(ctx, info, method, headers, key, body, etag, *last_modified),
        Some(Entry::Redirect { target }) => redirect(ctx, info, 301, target),
        None => {
            if !dir {
                let len = key.len();
                key.push_str("/index.html");
                let is_dir = site.get(key).is_some();
                key.truncate(len);
                if is_dir {
                    let loc = &mut scratch.text;
                    loc.clear();
                    path::push_encoded_path(key, loc);
                    loc.push('/');
                    if let Some(q) = t.query {
                        loc.push('?');
                        path::push_uri_safe(q, loc);
                    }
                    redirect(ctx, info, 301, loc);
                    return false;
                }
            }
            not_found(ctx, info, site);
        }
    }
    false
}

fn not_found(ctx: &mut Ctx<'_>, info: &ReqInfo, site: &Site) {
    if let Some(url) = &ctx.cfg.default_url {
        redirect(ctx, info, 302, url);
        return;
    }
    if let Some(Entry::File { body, .. }) = site.get("404.html") {
        ctx.start(404);
        ctx.header("Content-Type", ctx.cfg.content_type("404.html"));
        ctx.header_fmt("Content-Length", format_args!("{}", body.len()));
        ctx.end_headers(info);
        if !info.head {
            ctx.out.push_body(body, 0, body.len());
        }
        ctx.finish(info, 404);
        return;
    }
    simple(ctx, info, 404, &[], "404 Not Found\n");
}

#[allow(clippy::too_many_arguments)]
fn serve_file(
    ctx: &mut Ctx<'_>,
    info: &ReqInfo,
    method: Method,
    headers: &[httparse::Header<'_>],
    key: &str,
    body: &Body,
    etag: &ETag,
    last_modified: u64,
) {
    let now = ctx.unix;
    // Never claim a modification in the future (RFC 9110 §8.8.2.1), unless
    // the wall clock is obviously unset.
    let lm = if now >= 1_000_000_000 {
        last_modified.min(now)
    } else {
        last_modified
    };
    let opaque = etag.opaque();

    // RFC 9110 §13.2.2, steps 1-4.
    let precondition_failed = if header_values(headers, "if-match").next().is_some() {
        !conditional::etag_list_matches(header_values(headers, "if-match"), opaque, Compare::Strong)
    } else if let Some(v) = single(headers, "if-unmodified-since") {
        date::parse(v, now).is_some_and(|t| lm as i64 > t)
    } else {
        false
    };
    if precondition_failed {
        simple(ctx, info, 412, &[], "412 Precondition Failed\n");
        return;
    }
    let not_modified = if header_values(headers, "if-none-match").next().is_some() {
        conditional::etag_list_matches(
            header_values(headers, "if-none-match"),
            opaque,
            Compare::Weak,
        )
    } else if let Some(v) = single(headers, "if-modified-since") {
        date::parse(v, now).is_some_and(|t| lm as i64 <= t)
    } else {
        false
    };
    if not_modified {
        ctx.start(304);
        ctx.header("ETag", etag.as_str());
        ctx.header_date("Last-Modified", lm);
        ctx.end_headers(info);
        ctx.finish(info, 304);
        return;
    }

    // Step 5: Range, for GET only, subject to If-Range.
    let len = body.len() as u64;
    let mut range = RangeOutcome::Full;
    if method == Method::Get
        && let Some(r) = single(headers, "range")
    {
        let if_range_ok = match header_values(headers, "if-range").next() {
            None => true,
            Some(_) => single(headers, "if-range")
                .is_some_and(|v| conditional::if_range_matches(v, opaque, lm, now)),
        };
        if if_range_ok {
            range = conditional::evaluate_range(r, len);
        }
    }
    let (status, start, end) = match range {
        RangeOutcome::Full => (200, 0, len),
        RangeOutcome::Partial { start, end } => (206, start, end + 1),
        RangeOutcome::Unsatisfiable => {
            ctx.start(416);
            ctx.header_fmt("Content-Range", format_args!("bytes */{}", len));
            ctx.header("Content-Length", "0");
            ctx.end_headers(info);
            ctx.finish(info, 416);
            return;
        }
    };
    ctx.start(status);
    ctx.header("Content-Type", ctx.cfg.content_type(key));
    ctx.header_fmt("Content-Length", format_args!("{}", end - start));
    if status == 206 {
        ctx.header_fmt(
            "Content-Range",
            format_args!("bytes {}-{}/{}", start, end - 1, len),
        );
    }
    ctx.header("ETag", etag.as_str());
    ctx.header_date("Last-Modified", lm);
    ctx.header("Accept-Ranges", "bytes");
    ctx.end_headers(info);
    if !info.head {
        ctx.out.push_body(body, start as usize, end as usize);
    }
    ctx.finish(info, status);
}
