//! HTTP/2 framing: the `unipi-h2` connection (frames, HPACK, flow control,
//! the denial-of-service limits) around the same serving code as HTTP/1.1
//! ([`super::serve`]), so every behaviour — index.html, redirects, 304,
//! Range, 404.html, the webhook — is identical on both.
//!
//! Per stream: a request is served at once; its response's content is
//! sent as flow control allows (the rest waits for `Writable`); a webhook
//! request's body is collected (bounded) for its signature, then the pull
//! is asked for. Bodies of other requests are never read: the response
//! ends the stream and unipi-h2 resets what is still in flight.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;

use smoltcp::time::Instant;
use unipi_h2::{ErrorCode, RequestHead, StreamId};

use super::hook::{Credentials, Verdict};
use super::request::{Method, Request};
use super::response::{Content, Response};
use super::serve::{self, Context, Reply, Scratch};
use super::{Activity, Event, HookOutcome, HttpConfig, Role, SERVER, Session, date};
use crate::observe::access::{AccessRecord, AccessRequest, AccessSink, Delivery};
use crate::site::Site;

/// Finished access records kept until the server takes them (it does
/// after every visit); beyond this the oldest are dropped.
const MAX_FINISHED: usize = 64;

/// The access log's view of a stream's request and of what its response
/// has sent so far.
struct Log {
    request: Box<AccessRequest>,
    status: u16,
    /// The response's HEADERS frame, as encoded.
    head_bytes: u64,
}

impl Log {
    fn record(self, body_bytes: u64, now: Instant, delivery: Delivery) -> AccessRecord {
        let start = self.request.start;
        AccessRecord {
            request: self.request,
            status: self.status,
            bytes: self.head_bytes + body_bytes,
            body_bytes,
            duration: if now > start {
                now - start
            } else {
                smoltcp::time::Duration::ZERO
            },
            delivery,
        }
    }
}

/// Most fields a response head carries here (the serving code's plus
/// `date`, `server`, `content-length`, HSTS and `x-content-type-options`).
const MAX_HEAD_FIELDS: usize = super::response::MAX_FIELDS + 5;

/// What a stream is doing.
enum StreamState {
    /// Response content still to send.
    Sending {
        content: Content,
        offset: usize,
        log: Log,
    },
    /// A webhook request's body is arriving.
    HookBody {
        body: Vec<u8>,
        credentials: Box<Credentials>,
        log: Log,
        since: Instant,
    },
    /// Waiting for the pull.
    AwaitHook { log: Log },
}

/// One HTTP/2 connection. See the [module documentation](self).
pub struct Connection {
    conn: unipi_h2::Connection,
    cfg: Arc<HttpConfig>,
    role: Role,
    streams: BTreeMap<StreamId, StreamState>,
    /// Webhook streams waiting for their pull, oldest first.
    hooks: VecDeque<StreamId>,
    /// Webhook streams not yet announced as [`Event::HookRequested`].
    unannounced: usize,
    scratch: Scratch,
    /// Formatted field values of the response being written.
    values: String,
    now: Instant,
    /// Wall clock (unix seconds) at monotonic time `.1`.
    wall: (u64, Instant),
    /// When the last stream ended (for idle accounting).
    idle_since: Instant,
    closed: bool,
    /// The client's address, for the access records.
    peer: Option<smoltcp::wire::IpAddress>,
    /// A request has arrived.
    began: bool,
    /// Records of finished (or abandoned) responses, for [`Session::take_access`].
    finished: VecDeque<AccessRecord>,
}

/// What a `unipi_h2` event asks of us, once its borrowed bytes are copied.
enum Action {
    None,
    Request(StreamId, RequestHead),
    HookBodyDone(StreamId),
    TooLarge(StreamId),
    Send(StreamId),
}

fn millis(t: Instant) -> u64 {
    t.total_millis().max(0) as u64
}

impl Connection {
    /// A connection whose TLS handshake chose `h2`, at `now`.
    pub fn new(cfg: Arc<HttpConfig>, role: Role, now: Instant) -> Connection {
        let mut limits = unipi_h2::Limits::default();
        limits.max_header_list_size = cfg.limits.max_header_bytes as u32;
        limits.idle_timeout_ms = cfg.timeouts.idle.total_millis();
        limits.header_timeout_ms = cfg.timeouts.header.total_millis();
        limits.send_timeout_ms = cfg.timeouts.send.total_millis();
        Connection {
            conn: unipi_h2::Connection::new(limits, millis(now)),
            cfg,
            role,
            streams: BTreeMap::new(),
            hooks: VecDeque::new(),
            unannounced: 0,
            scratch: Scratch::default(),
            values: String::new(),
            now,
            wall: (0, now),
            idle_since: now,
            closed: false,
            peer: None,
            began: false,
            finished: VecDeque::new(),
        }
    }

    fn observe(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn unix_now(&self) -> u64 {
        let (unix, at) = self.wall;
        unix + if self.now > at {
            (self.now - at).secs()
        } else {
            0
        }
    }

    /// Takes the next `unipi_h2` event and turns it into an [`Action`].
    fn next_action(&mut self) -> Option<Action> {
        let limit = self.cfg.limits.max_body_bytes;
        let action = match self.conn.poll(millis(self.now))? {
            unipi_h2::Event::Request { stream, head } => Action::Request(stream, head),
            unipi_h2::Event::Data {
                stream,
                data,
                end_stream,
            } => match self.streams.get_mut(&stream) {
                Some(StreamState::HookBody { body, .. }) => {
                    if body.len() as u64 + data.len() as u64 > limit {
                        Action::TooLarge(stream)
                    } else {
                        body.extend_from_slice(data);
                        if end_stream {
                            Action::HookBodyDone(stream)
                        } else {
                            Action::None
                        }
                    }
                }
                _ => Action::None,
            },
            unipi_h2::Event::Writable { stream } => Action::Send(stream),
            unipi_h2::Event::Reset { stream, .. } => {
                if let Some(state) = self.streams.remove(&stream) {
                    self.drop_stream(state);
                }
                self.hooks.retain(|s| *s != stream);
                self.unannounced = self.unannounced.min(self.hooks.len());
                Action::None
            }
            unipi_h2::Event::GoAway { .. } => Action::None,
            unipi_h2::Event::Closed { reason } => {
                log::debug!("http/2: connection closed: {reason}");
                self.closed = true;
                for (_, state) in core::mem::take(&mut self.streams) {
                    self.drop_stream(state);
                }
                self.hooks.clear();
                self.unannounced = 0;
                Action::None
            }
        };
        Some(action)
    }

    fn request(&mut self, stream: StreamId, head: RequestHead, site: Option<&Site>, unix: u64) {
        self.began = true;
        let fields: Vec<httparse::Header<'_>> = head
            .fields()
            .map(|(name, value)| httparse::Header { name, value })
            .collect();
        let req = Request {
            method_token: head.method(),
            method: Method::parse(head.method()),
            target: head.path(),
            host: head.authority(),
            fields: &fields,
        };
        let mut request = req.access(self.peer, self.now, "HTTP/2.0");
        let cfg = self.cfg.clone();
        let cx = Context {
            cfg: &cfg,
            role: self.role,
            site,
            unix,
        };
        let served = serve::serve(&cx, &req, &mut self.scratch);
        if served.secret_path {
            request.set_request(req.method_token, "<hook>", "HTTP/2.0");
        }
        let log = Log {
            request,
            status: 0,
            head_bytes: 0,
        };
        match served.reply {
            Reply::Respond(response) => {
                let head_only = req.method == Method::Head;
                self.respond(stream, head_only, &response, log);
            }
            Reply::Hook => {
                let credentials = Box::new(Credentials::of(&req));
                if head.has_body() {
                    let state = StreamState::HookBody {
                        body: Vec::new(),
                        credentials,
                        log,
                        since: self.now,
                    };
                    self.streams.insert(stream, state);
                } else {
                    self.hook_or_refuse(stream, &credentials, &[], log);
                }
            }
            // Metrics are served on their own plain-HTTP port only.
            Reply::Metrics => self.respond(stream, false, &Response::error(404), log),
        }
    }

    /// A complete webhook request: waits for the pull, or `401`/`403`.
    fn hook_or_refuse(
        &mut self,
        stream: StreamId,
        credentials: &Credentials,
        body: &[u8],
        log: Log,
    ) {
        let verdict = match &self.cfg.hook_secret {
            None => Verdict::Accepted,
            Some(secret) => credentials.verify(secret.as_bytes(), body),
        };
        let status = match verdict {
            Verdict::Accepted => {
                self.streams.insert(stream, StreamState::AwaitHook { log });
                self.hooks.push_back(stream);
                self.unannounced += 1;
                return;
            }
            Verdict::Missing => 401,
            Verdict::Wrong => 403,
        };
        log::warn!("http/2: webhook request refused ({status}): missing or wrong signature");
        self.respond(stream, false, &Response::error(status), log);
    }

    /// Sends `response` on `stream`: the head now, the content as flow
    /// control allows.
    fn respond(
        &mut self,
        stream: StreamId,
        head_only: bool,
        response: &Response<'_>,
        mut log: Log,
    ) {
        let status = response.status;
        log.status = status;
        let before = self.conn.output().len();
        let mut values = core::mem::take(&mut self.values);
        values.clear();
        let mut spans: heapless::Vec<(&'static str, usize, usize), MAX_HEAD_FIELDS> =
            heapless::Vec::new();
        let mut field = |name: &'static str, args: core::fmt::Arguments<'_>| {
            let start = values.len();
            let _ = values.write_fmt(args);
            let _ = spans.push((name, start, values.len()));
        };
        let date = date::format(self.unix_now());
        field(
            "date",
            format_args!("{}", core::str::from_utf8(&date).unwrap_or("")),
        );
        field("server", format_args!("{SERVER}"));
        for (name, value) in response.fields() {
            field(name, format_args!("{value}"));
        }
        if response.has_content_length() {
            field("content-length", format_args!("{}", response.content.len()));
        }
        if let Role::Site { secure } = self.role {
            if secure && let Some(age) = self.cfg.hsts_max_age {
                field("strict-transport-security", format_args!("max-age={age}"));
            }
            field("x-content-type-options", format_args!("nosniff"));
        }
        let fields: heapless::Vec<(&str, &[u8]), MAX_HEAD_FIELDS> = spans
            .iter()
            .map(|&(name, start, end)| (name, &values.as_bytes()[start..end]))
            .collect();
        let end = head_only || response.content.is_empty();
        let sent = self.conn.send_headers(stream, status, &fields, end);
        drop(fields);
        self.values = values;
        log.head_bytes = self.conn.output().len().saturating_sub(before) as u64;
        if let Err(e) = sent {
            log::debug!("http/2: response head not sent: {e}");
            self.finish(log.record(0, self.now, Delivery::Aborted));
            return;
        }
        if end {
            self.finish(log.record(0, self.now, Delivery::Complete));
            self.stream_done();
            return;
        }
        let state = StreamState::Sending {
            content: response.content.clone(),
            offset: 0,
            log,
        };
        self.streams.insert(stream, state);
        self.send(stream);
    }

    /// Sends as much of `stream`'s remaining content as flow control takes.
    fn send(&mut self, stream: StreamId) {
        let Some(StreamState::Sending {
            content, offset, ..
        }) = self.streams.get_mut(&stream)
        else {
            return;
        };
        let bytes: &[u8] = match content {
            Content::Empty => &[],
            Content::Text(t) => t.as_bytes(),
            Content::File { body, start, end } => &body.as_bytes()[*start..*end],
        };
        let rest = &bytes[(*offset).min(bytes.len())..];
        let total = bytes.len();
        let result = self.conn.send_data(stream, rest, true);
        match result {
            Ok(n) => {
                *offset += n;
                if *offset < total {
                    return;
                }
                if let Some(StreamState::Sending { log, .. }) = self.streams.remove(&stream) {
                    self.finish(log.record(total as u64, self.now, Delivery::Complete));
                }
                self.stream_done();
            }
            Err(e) => {
                log::debug!("http/2: response cut short: {e}");
                if let Some(state) = self.streams.remove(&stream) {
                    self.drop_stream(state);
                }
            }
        }
    }

    fn stream_done(&mut self) {
        if self.streams.is_empty() {
            self.idle_since = self.now;
        }
    }

    /// Keeps a finished record for [`Session::take_access`].
    fn finish(&mut self, record: AccessRecord) {
        if self.finished.len() >= MAX_FINISHED {
            self.finished.pop_front();
        }
        self.finished.push_back(record);
    }

    /// Records a stream that went away without finishing as aborted.
    fn drop_stream(&mut self, state: StreamState) {
        let record = match state {
            StreamState::Sending { offset, log, .. } => {
                log.record(offset as u64, self.now, Delivery::Aborted)
            }
            StreamState::HookBody { log, .. } | StreamState::AwaitHook { log } => {
                log.record(0, self.now, Delivery::Aborted)
            }
        };
        self.finish(record);
    }
}

impl Session for Connection {
    fn receive(&mut self, data: &[u8], now: Instant) -> usize {
        self.observe(now);
        self.conn.receive(data, millis(self.now))
    }

    fn poll(&mut self, site: Option<&Site>, now: Instant, unix_time: u64) -> Option<Event> {
        self.observe(now);
        self.wall = (unix_time, self.now);
        loop {
            if self.unannounced > 0 {
                self.unannounced -= 1;
                return Some(Event::HookRequested);
            }
            match self.next_action()? {
                Action::None => {}
                Action::Request(stream, head) => self.request(stream, head, site, unix_time),
                Action::Send(stream) => self.send(stream),
                Action::TooLarge(stream) => {
                    if let Some(StreamState::HookBody { log, .. }) = self.streams.remove(&stream) {
                        self.respond(stream, false, &Response::error(413), log);
                    }
                }
                Action::HookBodyDone(stream) => {
                    if let Some(StreamState::HookBody {
                        body,
                        credentials,
                        log,
                        ..
                    }) = self.streams.remove(&stream)
                    {
                        self.hook_or_refuse(stream, &credentials, &body, log);
                    }
                }
            }
        }
    }

    fn output(&self) -> &[u8] {
        self.conn.output()
    }

    fn copy_output(&self, buf: &mut [u8]) -> usize {
        let out = self.conn.output();
        let n = out.len().min(buf.len());
        buf[..n].copy_from_slice(&out[..n]);
        n
    }

    fn consume(&mut self, n: usize) {
        self.conn.consume_output(n);
    }

    fn wants_close(&self) -> bool {
        self.conn.wants_close()
    }

    fn awaiting_hook(&self) -> bool {
        !self.hooks.is_empty()
    }

    fn abort(&mut self, now: Instant) {
        self.observe(now);
        self.conn.abort();
        for (_, state) in core::mem::take(&mut self.streams) {
            self.drop_stream(state);
        }
        self.hooks.clear();
        self.unannounced = 0;
        self.closed = true;
    }

    fn deadline(&self) -> Option<Instant> {
        let conn = self
            .conn
            .deadline()
            .map(|ms| Instant::from_millis(ms as i64));
        let body = self
            .streams
            .values()
            .filter_map(|s| match s {
                StreamState::HookBody { since, .. } => Some(*since + self.cfg.timeouts.body),
                _ => None,
            })
            .min();
        [conn, body].into_iter().flatten().min()
    }

    fn on_timeout(&mut self, now: Instant) {
        self.observe(now);
        self.conn.on_timeout(millis(self.now));
        let limit = self.cfg.timeouts.body;
        let late: Vec<StreamId> = self
            .streams
            .iter()
            .filter_map(|(id, s)| match s {
                StreamState::HookBody { since, .. } if self.now >= *since + limit => Some(*id),
                _ => None,
            })
            .collect();
        for stream in late {
            if let Some(state) = self.streams.remove(&stream) {
                self.drop_stream(state);
            }
            self.conn.reset_stream(stream, ErrorCode::CANCEL);
        }
    }

    fn complete_hook(&mut self, outcome: HookOutcome, now: Instant, unix_time: u64) {
        self.observe(now);
        self.wall = (unix_time, self.now);
        let Some(stream) = self.hooks.pop_front() else {
            log::warn!("http/2: complete_hook without a pending hook request");
            return;
        };
        self.unannounced = self.unannounced.min(self.hooks.len());
        if let Some(StreamState::AwaitHook { log }) = self.streams.remove(&stream) {
            self.respond(stream, false, &serve::hook_response(outcome), log);
        }
    }

    fn activity(&self) -> Activity {
        if self.closed || self.conn.wants_close() {
            return Activity::Closing;
        }
        if !self.hooks.is_empty() {
            return Activity::AwaitingHook;
        }
        if !self.conn.output().is_empty()
            || self
                .streams
                .values()
                .any(|s| matches!(s, StreamState::Sending { .. }))
        {
            return Activity::Sending;
        }
        let receiving = self
            .streams
            .values()
            .filter_map(|s| match s {
                StreamState::HookBody { since, .. } => Some(*since),
                _ => None,
            })
            .min();
        match receiving {
            Some(since) => Activity::Receiving { since },
            // The preface and SETTINGS come first; a request should follow
            // at once (a header block in progress counts as waiting too).
            None if !self.began => Activity::Waiting,
            None => Activity::Idle {
                since: self.idle_since,
            },
        }
    }

    fn trim(&mut self) {
        if self.streams.is_empty() {
            self.conn.trim();
            self.scratch = Scratch::default();
            self.values = String::new();
        }
        if self.finished.is_empty() {
            self.finished = VecDeque::new();
        }
    }

    fn set_peer(&mut self, peer: Option<smoltcp::wire::IpAddress>) {
        self.peer = peer;
    }

    fn take_access(&mut self, sink: &mut dyn AccessSink) {
        for record in self.finished.drain(..) {
            sink.record(&record);
        }
    }

    fn complete_metrics(&mut self, _: String, _: Instant, _: u64) {
        // Never asked for: metrics are not served over HTTP/2.
    }
}
