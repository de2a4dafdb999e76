//! The sans-IO fetch state machine: connect, discover refs, request a depth-1 pack, read it,
//! and build a [`Snapshot`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::error::{Error, sanitize};
use crate::http::{self, HttpEvent, ResponseReader};
use crate::limits::Limits;
use crate::oid::ObjectId;
use crate::pack::{PackCounters, PackReader};
use crate::pktline::{self, Pkt, PktReader};
use crate::protocol::{
    self, Advertisement, Discovery, FetchEvent, FetchResponse, LsRefs, ProtocolVersion, RefTarget,
    RequestParams, V0Caps, V2Caps,
};
use crate::snapshot::{self, Snapshot, Stats};
use crate::url::{Scheme, Url};

/// Which protocol version to ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// Ask for v2 and fall back to v0/v1 when the server does not speak it (default).
    #[default]
    Auto,
    /// Require v2: a v0-only server ends the fetch with [`Error::V2Unsupported`].
    V2,
    /// Do not ask for v2 (the server answers with v0/v1).
    V0,
}

/// Settings of one fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Protocol version policy.
    pub protocol: ProtocolChoice,
    /// Resource limits.
    pub limits: Limits,
    /// The commit already served: if the remote's ref still points to it, no pack is fetched
    /// and the outcome is [`Outcome::Unchanged`].
    pub current: Option<ObjectId>,
    /// Sent as `agent=` (when the server advertises it) and as HTTP `User-Agent`. Characters
    /// outside printable ASCII and spaces are replaced by `-`.
    pub user_agent: String,
    /// Ask the server for progress messages (logged at debug level); off by default.
    pub remote_progress: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            protocol: ProtocolChoice::Auto,
            limits: Limits::default(),
            current: None,
            user_agent: String::from(concat!("git/unipi-rs-", env!("CARGO_PKG_VERSION"))),
            remote_progress: false,
        }
    }
}

/// Where the fetch is, for logging and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the first connection is up.
    Connecting,
    /// Reading the capability or ref advertisement.
    Discovering,
    /// Waiting for the v2 `ls-refs` answer.
    ListingRefs,
    /// The fetch request is out; waiting for the pack.
    Negotiating,
    /// Pack data is arriving.
    ReceivingPack,
    /// Finished (successfully or not).
    Done,
}

impl fmt::Display for Phase {
    /// A gerund phrase: "connecting", "receiving the pack", ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connecting => "connecting",
            Phase::Discovering => "reading the ref advertisement",
            Phase::ListingRefs => "listing refs",
            Phase::Negotiating => "requesting the pack",
            Phase::ReceivingPack => "receiving the pack",
            Phase::Done => "finishing",
        })
    }
}

/// A snapshot of the fetch's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Current phase.
    pub phase: Phase,
    /// The protocol version the server spoke, once known.
    pub protocol: Option<ProtocolVersion>,
    /// Pack entries read so far.
    pub objects: u32,
    /// Entries the pack announced (0 until its header arrived).
    pub total_objects: u32,
    /// Bytes received from the remote so far (all framing included).
    pub received_bytes: u64,
    /// Bytes of the pack read so far.
    pub pack_bytes: u64,
}

/// The successful result of a fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The remote still points at [`FetchOptions::current`]; nothing was downloaded.
    Unchanged(ObjectId),
    /// The remote's commit was downloaded.
    Fetched(Snapshot),
}

/// What the driver must do next; returned by [`Fetch::poll`].
#[derive(Debug, PartialEq, Eq)]
pub enum Io<'a> {
    /// Open a TCP connection to `host:port` (resolving `host` if needed), with a TLS client
    /// handshake for server name `host` when `tls` is set; then call [`Fetch::connected`].
    /// Any previous connection has been closed with [`Io::Close`] before this. Returned again
    /// by every `poll` until `connected()` is called.
    Connect {
        /// Host name or IPv4 literal.
        host: &'a str,
        /// TCP port.
        port: u16,
        /// Whether to run TLS on top.
        tls: bool,
    },
    /// Send these bytes, then report how many were accepted with [`Fetch::sent`].
    Send(&'a [u8]),
    /// Wait for data and pass it to [`Fetch::received`], or report the end of the stream with
    /// [`Fetch::peer_closed`]. Timeouts are the driver's business ([`Fetch::timeout`]).
    Receive,
    /// Close the current connection (no acknowledgement needed); poll again.
    Close,
    /// The fetch is over. Returned once; close any connection that is still open.
    Done(Result<Outcome, Error>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Closed,
    Connecting,
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    InfoRefs,
    Rpc,
}

#[derive(Debug)]
struct HttpState {
    reader: ResponseReader,
    kind: RequestKind,
    /// Path of the request in flight, for error messages.
    path: String,
    /// The request in flight, kept to retry once on a reused connection.
    last_request: Vec<u8>,
    /// The next request, sent once the current response is complete.
    next_request: Option<(RequestKind, String, Vec<u8>)>,
    /// The connection already carried a complete exchange.
    reused: bool,
    /// Response bytes received for the request in flight.
    got_bytes: bool,
    /// The protocol answer in the current body is complete.
    answer_complete: bool,
    keep_alive: bool,
    redirects: u32,
    retried: bool,
}

#[derive(Debug)]
enum Step {
    Discover(Discovery),
    LsRefs(LsRefs),
    Fetch(FetchResponse),
    Idle,
}

enum Event {
    None,
    Advertised(Advertisement),
    Refs(Option<RefTarget>),
    PackEnd,
}

/// The protocol side: consumes pkt-lines, feeds the pack reader.
#[derive(Debug)]
struct Session {
    step: Step,
    pack: Option<PackReader>,
}

impl Session {
    fn on_pkt(&mut self, pkt: Pkt<'_>) -> Result<Event, Error> {
        match &mut self.step {
            Step::Discover(d) => match d.on_pkt(pkt)? {
                Some(ad) => {
                    self.step = Step::Idle;
                    Ok(Event::Advertised(ad))
                }
                None => Ok(Event::None),
            },
            Step::LsRefs(l) => match l.on_pkt(pkt)? {
                Some(target) => {
                    self.step = Step::Idle;
                    Ok(Event::Refs(target))
                }
                None => Ok(Event::None),
            },
            Step::Fetch(r) => match r.on_pkt(pkt)? {
                FetchEvent::None => Ok(Event::None),
                FetchEvent::Pack(data) => {
                    let pack = self
                        .pack
                        .as_mut()
                        .ok_or(Error::Usage("pack reader missing"))?;
                    pack.feed(data)?;
                    Ok(Event::None)
                }
                FetchEvent::Progress(text) => {
                    log::debug!("remote: {}", sanitize(text));
                    Ok(Event::None)
                }
                FetchEvent::End => {
                    self.step = Step::Idle;
                    if let Some(pack) = &self.pack {
                        pack.finish()?;
                    }
                    Ok(Event::PackEnd)
                }
            },
            Step::Idle => match pkt {
                Pkt::ResponseEnd => Ok(Event::None),
                _ => Err(Error::Protocol("unexpected data from the remote".into())),
            },
        }
    }
}

/// A sans-IO fetch of one commit (depth 1) from a git remote.
///
/// # Driving protocol
///
/// Call [`poll`](Fetch::poll) and do what the returned [`Io`] says, then report back:
///
/// | `poll()` returns | driver does | then calls |
/// |---|---|---|
/// | `Connect { host, port, tls }` | resolve, TCP connect, TLS handshake if `tls` | [`connected`](Fetch::connected) |
/// | `Send(bytes)` | write (a prefix of) `bytes` | [`sent(n)`](Fetch::sent) |
/// | `Receive` | read | [`received(data)`](Fetch::received) or [`peer_closed`](Fetch::peer_closed) |
/// | `Close` | close the connection | nothing |
/// | `Done(result)` | close any open connection, use the result | stop |
///
/// Failures the driver sees (DNS, TCP, TLS, its own timeout) are reported with
/// [`transport_error`](Fetch::transport_error) or [`timeout`](Fetch::timeout); the next
/// `poll` then returns `Done(Err(..))`. The state machine never blocks and does work
/// proportional to the bytes passed to it; every remote-controlled quantity is bounded by
/// [`Limits`].
///
/// ```no_run
/// use std::io::{Read, Write};
/// use unipi_git::{Fetch, FetchOptions, Io, Outcome, Url};
///
/// let url = Url::parse("git://127.0.0.1/site.git#main").unwrap();
/// let mut fetch = Fetch::new(url, FetchOptions::default());
/// let mut conn: Option<std::net::TcpStream> = None;
/// let mut buf = vec![0u8; 64 * 1024];
/// let outcome = loop {
///     match fetch.poll() {
///         Io::Connect { host, port, tls: _ } => match std::net::TcpStream::connect((host, port)) {
///             Ok(s) => { conn = Some(s); fetch.connected(); }
///             Err(e) => fetch.transport_error(e.to_string()),
///         },
///         Io::Send(bytes) => match conn.as_mut().unwrap().write(bytes) {
///             Ok(n) => fetch.sent(n),
///             Err(e) => fetch.transport_error(e.to_string()),
///         },
///         Io::Receive => match conn.as_mut().unwrap().read(&mut buf) {
///             Ok(0) => fetch.peer_closed(),
///             Ok(n) => fetch.received(&buf[..n]),
///             Err(e) => fetch.transport_error(e.to_string()),
///         },
///         Io::Close => conn = None,
///         Io::Done(result) => break result,
///     }
/// };
/// match outcome {
///     Ok(Outcome::Fetched(snapshot)) => println!("{} files", snapshot.files.len()),
///     Ok(Outcome::Unchanged(commit)) => println!("still at {commit}"),
///     Err(e) => eprintln!("fetch failed: {e}"),
/// }
/// ```
#[derive(Debug)]
pub struct Fetch {
    url: Url,
    opts: FetchOptions,
    agent: String,
    phase: Phase,
    conn: Conn,
    reconnect: bool,
    close_when_sent: bool,
    out: Vec<u8>,
    out_pos: usize,
    http: Option<HttpState>,
    pkt: PktReader,
    session: Session,
    protocol: Option<ProtocolVersion>,
    target: Option<RefTarget>,
    v2caps: Option<V2Caps>,
    /// Pack counters kept after the pack reader is dropped.
    last_counters: PackCounters,
    result: Option<Result<Outcome, Error>>,
    result_taken: bool,
    received: u64,
}

const ADVERTISEMENT_TYPE: &str = "application/x-git-upload-pack-advertisement";
const RESULT_TYPE: &str = "application/x-git-upload-pack-result";
const INFO_REFS: &str = "/info/refs?service=git-upload-pack";

impl Fetch {
    /// Prepares a fetch of `url` (its `#branch`, or the remote's HEAD). Nothing happens until
    /// the first [`poll`](Fetch::poll).
    pub fn new(url: Url, opts: FetchOptions) -> Fetch {
        let mut agent: String = opts
            .user_agent
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '-' })
            .take(100)
            .collect();
        if agent.is_empty() {
            agent = FetchOptions::default().user_agent;
        }
        let wanted = url.wanted_ref();
        let mut fetch = Fetch {
            pkt: PktReader::new(opts.limits.max_pkt_line),
            session: Session {
                step: Step::Discover(Discovery::new(&wanted, opts.limits.max_refs)),
                pack: None,
            },
            http: None,
            url,
            opts,
            agent,
            phase: Phase::Connecting,
            conn: Conn::Closed,
            reconnect: false,
            close_when_sent: false,
            out: Vec::new(),
            out_pos: 0,
            protocol: None,
            target: None,
            v2caps: None,
            last_counters: PackCounters::default(),
            result: None,
            result_taken: false,
            received: 0,
        };
        if let Err(e) = fetch.start() {
            fetch.fail(e);
        }
        fetch
    }

    fn start(&mut self) -> Result<(), Error> {
        let ask_v2 = self.opts.protocol != ProtocolChoice::V0;
        match self.url.scheme() {
            Scheme::Git => {
                protocol::git_daemon_request(
                    &mut self.out,
                    self.url.path(),
                    &self.url.host_header(),
                    ask_v2,
                )?;
            }
            Scheme::Http | Scheme::Https => {
                let (path, req) = self.info_refs_request();
                self.out = req.clone();
                self.http = Some(HttpState {
                    reader: ResponseReader::new(self.opts.limits.max_http_header_bytes),
                    kind: RequestKind::InfoRefs,
                    path,
                    last_request: req,
                    next_request: None,
                    reused: false,
                    got_bytes: false,
                    answer_complete: false,
                    keep_alive: true,
                    redirects: 0,
                    retried: false,
                });
            }
        }
        Ok(())
    }

    fn repo_base(&self) -> &str {
        match self.url.path() {
            "/" => "",
            p => p,
        }
    }

    fn info_refs_request(&self) -> (String, Vec<u8>) {
        let target = alloc::format!("{}{}", self.repo_base(), INFO_REFS);
        let mut headers: Vec<(&str, &str)> = alloc::vec![
            ("User-Agent", self.agent.as_str()),
            ("Accept", "*/*"),
            ("Pragma", "no-cache"),
        ];
        if self.opts.protocol != ProtocolChoice::V0 {
            headers.push(("Git-Protocol", "version=2"));
        }
        let mut req = Vec::new();
        http::write_request(
            &mut req,
            "GET",
            &target,
            &self.url.host_header(),
            &headers,
            None,
        );
        (target, req)
    }

    fn rpc_request(&self, body: &[u8]) -> (String, Vec<u8>) {
        let target = alloc::format!("{}/git-upload-pack", self.repo_base());
        let mut headers: Vec<(&str, &str)> = alloc::vec![
            ("User-Agent", self.agent.as_str()),
            ("Content-Type", "application/x-git-upload-pack-request"),
            ("Accept", RESULT_TYPE),
        ];
        if self.protocol == Some(ProtocolVersion::V2) {
            headers.push(("Git-Protocol", "version=2"));
        }
        let mut req = Vec::new();
        http::write_request(
            &mut req,
            "POST",
            &target,
            &self.url.host_header(),
            &headers,
            Some(body),
        );
        (target, req)
    }

    /// What the driver must do next. See the [type documentation](Fetch) for the protocol.
    pub fn poll(&mut self) -> Io<'_> {
        if self.result_taken {
            return Io::Done(Err(Error::Finished));
        }
        if matches!(self.result, Some(Err(_))) {
            return self.take_result();
        }
        if self.reconnect {
            self.reconnect = false;
            if self.conn != Conn::Closed {
                self.conn = Conn::Closed;
                return Io::Close;
            }
        }
        if self.out_pos < self.out.len() {
            match self.conn {
                Conn::Closed | Conn::Connecting => {
                    self.conn = Conn::Connecting;
                    return Io::Connect {
                        host: self.url.host(),
                        port: self.url.port(),
                        tls: self.url.scheme() == Scheme::Https,
                    };
                }
                Conn::Open => return Io::Send(&self.out[self.out_pos..]),
            }
        }
        if self.close_when_sent && self.conn != Conn::Closed {
            self.conn = Conn::Closed;
            return Io::Close;
        }
        if self.result.is_some() {
            return self.take_result();
        }
        Io::Receive
    }

    fn take_result(&mut self) -> Io<'_> {
        self.result_taken = true;
        self.phase = Phase::Done;
        match self.result.take() {
            Some(r) => Io::Done(r),
            None => Io::Done(Err(Error::Finished)),
        }
    }

    /// The connection requested by [`Io::Connect`] is up (TLS included).
    pub fn connected(&mut self) {
        if self.conn != Conn::Connecting {
            return self.fail(Error::Usage("connected() without Io::Connect"));
        }
        self.conn = Conn::Open;
        if self.phase == Phase::Connecting {
            self.phase = Phase::Discovering;
        }
        if let Some(h) = &mut self.http {
            h.reused = false;
        }
    }

    /// `n` bytes of the last [`Io::Send`] were sent.
    pub fn sent(&mut self, n: usize) {
        if n > self.out.len() - self.out_pos {
            return self.fail(Error::Usage("sent() more bytes than Io::Send offered"));
        }
        self.out_pos += n;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }

    /// Bytes arrived from the remote. All of `data` is consumed.
    pub fn received(&mut self, data: &[u8]) {
        if self.result.is_some() || self.result_taken {
            return;
        }
        self.received += data.len() as u64;
        if self.received > self.opts.limits.max_received_bytes {
            return self.fail(Error::TooMuchData {
                limit: self.opts.limits.max_received_bytes,
            });
        }
        let r = if self.http.is_some() {
            self.on_http_bytes(data)
        } else {
            self.on_stream(data)
        };
        if let Err(e) = r {
            self.fail(e);
        }
    }

    /// The remote closed the connection (end of stream).
    pub fn peer_closed(&mut self) {
        if self.result.is_some() || self.result_taken {
            return;
        }
        self.conn = Conn::Closed;
        let phase = self.phase;
        let Some(h) = &mut self.http else {
            return self.fail(Error::ConnectionClosed { phase });
        };
        if h.reader.in_head() && !h.got_bytes && h.reused && !h.retried {
            // The server dropped an idle keep-alive connection: send again on a new one.
            log::debug!("keep-alive connection closed by the server; retrying");
            h.retried = true;
            h.reused = false;
            h.reader = ResponseReader::new(self.opts.limits.max_http_header_bytes);
            self.out = h.last_request.clone();
            self.out_pos = 0;
            return;
        }
        let r = match h.reader.eof() {
            Ok(()) => self.on_http_end(),
            Err(_) => Err(Error::ConnectionClosed { phase }),
        };
        if let Err(e) = r {
            self.fail(e);
        }
    }

    /// The driver's transport failed (DNS, TCP, TLS...): ends the fetch with
    /// [`Error::Transport`].
    pub fn transport_error(&mut self, detail: impl Into<String>) {
        let phase = self.phase;
        self.fail(Error::Transport {
            phase,
            detail: detail.into(),
        });
    }

    /// The driver's timeout expired: ends the fetch with [`Error::Timeout`].
    pub fn timeout(&mut self) {
        let phase = self.phase;
        self.fail(Error::Timeout { phase });
    }

    /// Current progress.
    pub fn progress(&self) -> Progress {
        let c = self
            .session
            .pack
            .as_ref()
            .map(|p| p.counters())
            .unwrap_or(self.last_counters);
        Progress {
            phase: self.phase,
            protocol: self.protocol,
            objects: c.objects,
            total_objects: c.total_objects,
            received_bytes: self.received,
            pack_bytes: c.pack_bytes,
        }
    }

    /// The URL being fetched (after redirects).
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn fail(&mut self, e: Error) {
        if self.result.is_none() && !self.result_taken {
            log::debug!("git fetch failed: {e}");
            self.result = Some(Err(e));
            if let Some(pack) = self.session.pack.take() {
                self.last_counters = pack.counters();
            }
            self.out.clear();
            self.out_pos = 0;
        }
    }

    fn on_stream(&mut self, data: &[u8]) -> Result<(), Error> {
        self.pkt.push(data);
        loop {
            if self.result.is_some() {
                return Ok(());
            }
            let event = match self.pkt.next_pkt()? {
                Some(pkt) => {
                    let ev = self.session.on_pkt(pkt)?;
                    if self.phase == Phase::Negotiating
                        && self
                            .session
                            .pack
                            .as_ref()
                            .is_some_and(|p| p.counters().pack_bytes > 0)
                    {
                        self.phase = Phase::ReceivingPack;
                    }
                    ev
                }
                None => return Ok(()),
            };
            self.on_event(event)?;
        }
    }

    fn on_http_bytes(&mut self, mut data: &[u8]) -> Result<(), Error> {
        loop {
            let Some(h) = &mut self.http else {
                return Ok(());
            };
            if !data.is_empty() {
                h.got_bytes = true;
            }
            match h.reader.feed(&mut data)? {
                HttpEvent::NeedMore => return Ok(()),
                HttpEvent::Head => {
                    if !self.on_http_head()? {
                        return Ok(()); // redirected: the rest of this response is ignored
                    }
                }
                HttpEvent::Body(b) => self.on_stream(b)?,
                HttpEvent::End => {
                    self.on_http_end()?;
                    if !data.is_empty() {
                        return Err(Error::HttpProtocol("data after the end of the response"));
                    }
                    return Ok(());
                }
            }
            if self.result.is_some() {
                return Ok(());
            }
        }
    }

    /// Handles a response head; returns false when the rest of the response is to be ignored.
    fn on_http_head(&mut self) -> Result<bool, Error> {
        let Some(h) = &mut self.http else {
            return Ok(false);
        };
        let Some(head) = h.reader.head() else {
            return Err(Error::Usage("no response head"));
        };
        let status = head.status;
        h.keep_alive = head.keep_alive;
        match status {
            200 => {
                let expected = match h.kind {
                    RequestKind::InfoRefs => ADVERTISEMENT_TYPE,
                    RequestKind::Rpc => RESULT_TYPE,
                };
                let got = head.content_type.clone().unwrap_or_default();
                let media = got.split(';').next().unwrap_or("").trim();
                if !media.eq_ignore_ascii_case(expected) {
                    return Err(Error::HttpContentType {
                        got,
                        expected,
                        path: h.path.clone(),
                    });
                }
                self.pkt.clear();
                Ok(true)
            }
            301 | 302 | 303 | 307 | 308 => {
                let location = head.location.clone().unwrap_or_default();
                if h.kind != RequestKind::InfoRefs {
                    return Err(Error::RedirectRefused {
                        location: sanitize(location.as_bytes()),
                        reason: "redirects are only followed for the first request",
                    });
                }
                h.redirects += 1;
                if h.redirects > self.opts.limits.max_redirects {
                    return Err(Error::TooManyRedirects {
                        limit: self.opts.limits.max_redirects,
                    });
                }
                self.url = redirect_target(&self.url, &location)?;
                log::info!("git remote redirected to {}", self.url);
                let (path, req) = self.info_refs_request();
                let Some(h) = &mut self.http else {
                    return Ok(false);
                };
                h.reader = ResponseReader::new(self.opts.limits.max_http_header_bytes);
                h.path = path;
                h.last_request = req.clone();
                h.got_bytes = false;
                h.retried = false;
                self.out = req;
                self.out_pos = 0;
                self.reconnect = true;
                self.pkt.clear();
                Ok(false)
            }
            _ => Err(Error::HttpStatus {
                status,
                path: sanitize(h.path.as_bytes()),
            }),
        }
    }

    fn on_http_end(&mut self) -> Result<(), Error> {
        let phase = self.phase;
        let Some(h) = &mut self.http else {
            return Ok(());
        };
        if !h.answer_complete || !self.pkt.is_empty() {
            return Err(Error::Protocol(alloc::format!(
                "HTTP response for {} ended early while {phase}",
                sanitize(h.path.as_bytes())
            )));
        }
        if self.conn == Conn::Closed {
            h.keep_alive = false;
        }
        match h.next_request.take() {
            Some((kind, path, req)) => {
                h.kind = kind;
                h.path = path;
                h.reader = ResponseReader::new(self.opts.limits.max_http_header_bytes);
                h.last_request = req.clone();
                h.answer_complete = false;
                h.got_bytes = false;
                h.retried = false;
                if h.keep_alive {
                    h.reused = true;
                } else {
                    self.reconnect = true;
                }
                self.out = req;
                self.out_pos = 0;
                self.pkt.clear();
            }
            None => {
                if self.result.is_some() {
                    self.close_when_sent = true;
                }
            }
        }
        Ok(())
    }

    /// Queues the next request: directly on git://, after the current response on HTTP.
    fn send_request(&mut self, body: Vec<u8>) {
        if self.http.is_some() {
            let (path, req) = self.rpc_request(&body);
            if let Some(h) = &mut self.http {
                h.next_request = Some((RequestKind::Rpc, path, req));
            }
        } else {
            self.out.extend_from_slice(&body);
        }
    }

    fn params(&self) -> (String, bool) {
        (self.url.wanted_ref(), !self.opts.remote_progress)
    }

    fn on_event(&mut self, event: Event) -> Result<(), Error> {
        if !matches!(event, Event::None)
            && let Some(h) = &mut self.http
        {
            h.answer_complete = true;
        }
        match event {
            Event::None => Ok(()),
            Event::Advertised(Advertisement::V2(caps)) => self.on_v2_caps(caps),
            Event::Advertised(Advertisement::V0 { caps, wanted }) => self.on_v0_refs(caps, wanted),
            Event::Refs(target) => self.on_v2_refs(target),
            Event::PackEnd => self.on_pack_end(),
        }
    }

    fn on_v2_caps(&mut self, caps: V2Caps) -> Result<(), Error> {
        check_object_format(caps.object_format.as_deref())?;
        if !caps.ls_refs {
            return Err(Error::MissingCapability("ls-refs"));
        }
        if !caps.fetch {
            return Err(Error::MissingCapability("fetch"));
        }
        self.protocol = Some(ProtocolVersion::V2);
        log::debug!("git remote speaks protocol v2");
        let (wanted, no_progress) = self.params();
        let mut body = Vec::new();
        protocol::v2_ls_refs(
            &mut body,
            &caps,
            &RequestParams {
                agent: &self.agent,
                wanted_ref: &wanted,
                no_progress,
            },
        )?;
        self.send_request(body);
        self.session.step = Step::LsRefs(LsRefs::new(&wanted, self.opts.limits.max_refs));
        self.phase = Phase::ListingRefs;
        self.v2caps = Some(caps);
        Ok(())
    }

    fn on_v2_refs(&mut self, target: Option<RefTarget>) -> Result<(), Error> {
        let target = target.ok_or_else(|| Error::RefNotFound {
            name: self.url.wanted_ref(),
        })?;
        let caps = self.v2caps.clone().unwrap_or_default();
        let shallow = caps.fetch_shallow;
        self.request_pack(target, shallow, FetchResponse::v2(), |out, p, want| {
            protocol::v2_fetch(out, &caps, p, want)
        })
    }

    fn on_v0_refs(&mut self, caps: V0Caps, wanted: Option<RefTarget>) -> Result<(), Error> {
        if self.opts.protocol == ProtocolChoice::V2 {
            return Err(Error::V2Unsupported);
        }
        check_object_format(caps.object_format.as_deref())?;
        self.protocol = Some(ProtocolVersion::V0);
        log::debug!("git remote speaks protocol v0/v1");
        let target = wanted.ok_or_else(|| Error::RefNotFound {
            name: self.url.wanted_ref(),
        })?;
        let shallow = caps.shallow;
        self.request_pack(
            target,
            shallow,
            FetchResponse::v0(shallow),
            |out, p, want| protocol::v0_request(out, &caps, p, want),
        )
    }

    /// What both protocol versions do once the wanted ref is known: stop if
    /// it still points at the commit being served, otherwise send the fetch
    /// request `encode` builds and get ready for the pack.
    fn request_pack(
        &mut self,
        target: RefTarget,
        shallow: bool,
        response: FetchResponse,
        encode: impl FnOnce(&mut Vec<u8>, &RequestParams<'_>, ObjectId) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if self.check_unchanged(&target) {
            return Ok(());
        }
        if !shallow {
            log::warn!("git remote does not support shallow fetches; fetching full history");
        }
        let (wanted, no_progress) = self.params();
        let mut body = Vec::new();
        encode(
            &mut body,
            &RequestParams {
                agent: &self.agent,
                wanted_ref: &wanted,
                no_progress,
            },
            target.commit(),
        )?;
        self.target = Some(target);
        self.send_request(body);
        self.session.step = Step::Fetch(response);
        self.session.pack = Some(PackReader::new(self.opts.limits.clone()));
        self.phase = Phase::Negotiating;
        Ok(())
    }

    /// Finishes with `Unchanged` when the remote still points at the current commit.
    fn check_unchanged(&mut self, target: &RefTarget) -> bool {
        let commit = target.commit();
        if self.opts.current != Some(commit) {
            return false;
        }
        log::debug!("git remote unchanged at {commit}");
        if self.http.is_none() {
            pktline::flush(&mut self.out); // end the session politely
        }
        self.close_when_sent = true;
        self.result = Some(Ok(Outcome::Unchanged(commit)));
        true
    }

    fn on_pack_end(&mut self) -> Result<(), Error> {
        let pack = self
            .session
            .pack
            .take()
            .ok_or(Error::Usage("pack reader missing"))?;
        let target = self.target.take().ok_or(Error::Usage("no wanted commit"))?;
        let c = pack.counters();
        self.last_counters = c;
        let stats = Stats {
            pack_bytes: c.pack_bytes,
            objects: c.objects,
            deltas: c.deltas,
            inflated_bytes: c.inflated_bytes,
            peak_object_bytes: c.peak_bytes,
            snapshot_bytes: 0,
            protocol: self.protocol,
        };
        let objects = pack.into_objects();
        let snapshot = snapshot::build(&objects, target.commit(), &self.opts.limits, stats)?;
        drop(objects); // everything not in the snapshot is freed here
        log::debug!(
            "fetched {} ({} files, {} bytes, pack {} bytes, {} objects)",
            snapshot.commit,
            snapshot.files.len(),
            snapshot.stats.snapshot_bytes,
            snapshot.stats.pack_bytes,
            snapshot.stats.objects
        );
        self.result = Some(Ok(Outcome::Fetched(snapshot)));
        self.close_when_sent = true;
        Ok(())
    }
}

fn check_object_format(format: Option<&str>) -> Result<(), Error> {
    match format {
        None | Some("sha1") => Ok(()),
        Some(other) => Err(Error::UnsupportedObjectFormat(String::from(other))),
    }
}

/// Computes where a redirect of `info/refs` leads: the same origin, or http to https on the
/// same host. The location must end with `/info/refs?service=git-upload-pack`.
fn redirect_target(current: &Url, location: &str) -> Result<Url, Error> {
    let refuse = |reason| Error::RedirectRefused {
        location: sanitize(location.as_bytes()),
        reason,
    };
    let base = location
        .strip_suffix(INFO_REFS)
        .ok_or_else(|| refuse("location does not end with /info/refs?service=git-upload-pack"))?;
    if base.contains('#') {
        return Err(refuse("location contains a fragment"));
    }
    let (scheme, port, path) = if base.starts_with('/') {
        if base.starts_with("//") {
            return Err(refuse("network-path references are not followed"));
        }
        (current.scheme(), current.port(), String::from(base))
    } else {
        let with_path = if base.contains("://") && base.matches('/').count() < 3 {
            alloc::format!("{base}/")
        } else {
            String::from(base)
        };
        let u = Url::parse(&with_path).map_err(|_| refuse("malformed location"))?;
        if !u.host().eq_ignore_ascii_case(current.host()) {
            return Err(refuse("redirect to another host"));
        }
        match (current.scheme(), u.scheme()) {
            (Scheme::Https, Scheme::Http) => return Err(refuse("https to http downgrade")),
            (a, b) if a == b && u.port() != current.port() => {
                return Err(refuse("redirect to another port"));
            }
            (Scheme::Http | Scheme::Https, Scheme::Http | Scheme::Https) => {}
            _ => return Err(refuse("unsupported scheme")),
        }
        (u.scheme(), u.port(), String::from(u.path()))
    };
    if path
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b >= 0x80)
    {
        return Err(refuse("malformed location"));
    }
    let mut path = path;
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(current.with_location(scheme, port, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oid::hash_object;
    use crate::pack::tests::{RawEntry, build_pack};
    use alloc::string::ToString;
    use alloc::vec;

    struct Site {
        pack: Vec<u8>,
        commit: ObjectId,
    }

    fn site() -> Site {
        let blob = b"<h1>hi</h1>\n".to_vec();
        let blob_id = hash_object("blob", &blob);
        let mut tree = b"100644 index.html\0".to_vec();
        tree.extend_from_slice(&blob_id.0);
        let tree_id = hash_object("tree", &tree);
        let commit = alloc::format!(
            "tree {tree_id}\nauthor a <a@b> 1600000000 +0000\ncommitter c <c@d> 1600000042 +0000\n\nsite\n"
        )
        .into_bytes();
        let commit_id = hash_object("commit", &commit);
        let pack = build_pack(&[
            RawEntry {
                ty: 1,
                base: vec![],
                data: commit,
            },
            RawEntry {
                ty: 2,
                base: vec![],
                data: tree,
            },
            RawEntry {
                ty: 3,
                base: vec![],
                data: blob,
            },
        ]);
        Site {
            pack,
            commit: commit_id,
        }
    }

    fn pkt(out: &mut Vec<u8>, s: &[u8]) {
        pktline::encode(out, s).unwrap();
    }

    fn sideband_pack(out: &mut Vec<u8>, pack: &[u8]) {
        for chunk in pack.chunks(100) {
            let mut p = vec![1u8];
            p.extend_from_slice(chunk);
            pkt(out, &p);
        }
        pkt(out, b"\x02progress 50%\r");
        pktline::flush(out);
    }

    /// Polls and returns what was asked to send (acknowledging it), skipping connects.
    fn expect_send(f: &mut Fetch) -> Vec<u8> {
        loop {
            match f.poll() {
                Io::Connect { .. } => f.connected(),
                Io::Send(b) => {
                    let b = b.to_vec();
                    f.sent(b.len());
                    return b;
                }
                other => panic!("expected Send, got {other:?}"),
            }
        }
    }

    fn feed_bytewise(f: &mut Fetch, data: &[u8]) {
        for b in data {
            assert_eq!(f.poll(), Io::Receive);
            f.received(core::slice::from_ref(b));
        }
    }

    fn finish(f: &mut Fetch) -> Result<Outcome, Error> {
        loop {
            match f.poll() {
                Io::Close => {}
                Io::Done(r) => return r,
                other => panic!("expected Close/Done, got {other:?}"),
            }
        }
    }

    fn check_snapshot(r: Result<Outcome, Error>, s: &Site) {
        let Ok(Outcome::Fetched(snap)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(snap.commit, s.commit);
        assert_eq!(snap.commit_time, 1_600_000_042);
        assert_eq!(snap.files.len(), 1);
        assert_eq!(&*snap.get("index.html").unwrap().data, b"<h1>hi</h1>\n");
    }

    #[test]
    fn git_v0_conversation_bytewise() {
        let s = site();
        let url = Url::parse("git://h/repo.git").unwrap();
        let mut f = Fetch::new(url, FetchOptions::default());
        assert_eq!(
            f.poll(),
            Io::Connect {
                host: "h",
                port: 9418,
                tls: false
            }
        );
        assert_eq!(f.progress().phase, Phase::Connecting);
        f.connected();
        let req = expect_send(&mut f);
        assert_eq!(req, b"0030git-upload-pack /repo.git\0host=h\0\0version=2\0");
        let mut adv = Vec::new();
        pkt(&mut adv, alloc::format!("{} HEAD\0side-band-64k ofs-delta shallow no-progress agent=x symref=HEAD:refs/heads/main\n", s.commit).as_bytes());
        pkt(
            &mut adv,
            alloc::format!("{} refs/heads/main\n", s.commit).as_bytes(),
        );
        pktline::flush(&mut adv);
        feed_bytewise(&mut f, &adv);
        let want = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(want.contains(&alloc::format!(
            "want {} side-band-64k ofs-delta shallow no-progress agent=git/unipi-rs-",
            s.commit
        )));
        assert!(want.ends_with("000ddeepen 1\n00000009done\n"));
        assert_eq!(f.progress().protocol, Some(ProtocolVersion::V0));
        let mut resp = Vec::new();
        pkt(
            &mut resp,
            alloc::format!("shallow {}\n", s.commit).as_bytes(),
        );
        pktline::flush(&mut resp);
        pkt(&mut resp, b"NAK\n");
        sideband_pack(&mut resp, &s.pack);
        feed_bytewise(&mut f, &resp);
        let p = f.progress();
        assert_eq!((p.objects, p.total_objects), (3, 3));
        check_snapshot(finish(&mut f), &s);
        assert_eq!(f.poll(), Io::Done(Err(Error::Finished)));
        f.received(b"late data is ignored");
    }

    #[test]
    fn git_v2_unchanged_sends_flush_and_closes() {
        let s = site();
        let url = Url::parse("git://h:1234/repo.git#main").unwrap();
        let opts = FetchOptions {
            current: Some(s.commit),
            ..FetchOptions::default()
        };
        let mut f = Fetch::new(url, opts);
        let req = expect_send(&mut f);
        assert!(req.ends_with(b"host=h:1234\0\0version=2\0"));
        let mut caps = Vec::new();
        for l in [
            &b"version 2\n"[..],
            b"agent=git/2\n",
            b"ls-refs=unborn\n",
            b"fetch=shallow\n",
        ] {
            pkt(&mut caps, l);
        }
        pktline::flush(&mut caps);
        f.received(&caps);
        let ls = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(ls.starts_with("0014command=ls-refs\n"));
        assert!(ls.contains("ref-prefix refs/heads/main\n"));
        let mut refs = Vec::new();
        pkt(
            &mut refs,
            alloc::format!("{} refs/heads/main\n", s.commit).as_bytes(),
        );
        pktline::flush(&mut refs);
        f.received(&refs);
        assert_eq!(expect_send(&mut f), b"0000");
        assert_eq!(finish(&mut f), Ok(Outcome::Unchanged(s.commit)));
    }

    fn chunked(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in body.chunks(7) {
            out.extend_from_slice(alloc::format!("{:x}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    #[test]
    fn http_v2_keep_alive_then_close_delimited() {
        let s = site();
        let url = Url::parse("http://h:8080/r.git").unwrap();
        let mut f = Fetch::new(url, FetchOptions::default());
        assert_eq!(
            f.poll(),
            Io::Connect {
                host: "h",
                port: 8080,
                tls: false
            }
        );
        f.connected();
        let get = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(get.starts_with(
            "GET /r.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: h:8080\r\n"
        ));
        assert!(get.contains("Git-Protocol: version=2\r\n"));
        assert!(!get.contains("Accept-Encoding"));
        let mut caps = Vec::new();
        for l in [
            &b"version 2\n"[..],
            b"ls-refs\n",
            b"fetch=shallow\n",
            b"object-format=sha1\n",
        ] {
            pkt(&mut caps, l);
        }
        pktline::flush(&mut caps);
        let mut resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        resp.extend(chunked(&caps));
        feed_bytewise(&mut f, &resp);
        // Same connection: no Connect before the POST.
        let post = match f.poll() {
            Io::Send(b) => b.to_vec(),
            other => panic!("{other:?}"),
        };
        f.sent(post.len());
        let post = String::from_utf8(post).unwrap();
        assert!(post.starts_with("POST /r.git/git-upload-pack HTTP/1.1\r\n"));
        assert!(post.contains("Content-Type: application/x-git-upload-pack-request\r\n"));
        assert!(post.ends_with("0000"));
        assert!(post.contains("0017object-format=sha1\n"));
        let mut refs = Vec::new();
        pkt(
            &mut refs,
            alloc::format!("{} HEAD symref-target:refs/heads/main\n", s.commit).as_bytes(),
        );
        pktline::flush(&mut refs);
        let mut resp = alloc::format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-result\r\nContent-Length: {}\r\n\r\n",
            refs.len()
        )
        .into_bytes();
        resp.extend_from_slice(&refs);
        f.received(&resp);
        let fetch_req = match f.poll() {
            Io::Send(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        };
        f.sent(10);
        f.sent(fetch_req.len() - 10);
        assert!(fetch_req.contains("command=fetch"));
        assert!(fetch_req.contains(&alloc::format!("want {}\n", s.commit)));
        let mut body = Vec::new();
        pkt(&mut body, b"shallow-info\n");
        pkt(
            &mut body,
            alloc::format!("shallow {}\n", s.commit).as_bytes(),
        );
        pktline::delim(&mut body);
        pkt(&mut body, b"packfile\n");
        sideband_pack(&mut body, &s.pack);
        let mut resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-result\r\nConnection: close\r\n\r\n".to_vec();
        resp.extend_from_slice(&body);
        // The body is delimited by close, but the protocol's final flush already ends it.
        f.received(&resp);
        check_snapshot(finish(&mut f), &s);
    }

    #[test]
    fn http_retry_on_stale_keep_alive_and_truncation() {
        let s = site();
        let mut f = Fetch::new(
            Url::parse("http://h/r").unwrap(),
            FetchOptions {
                protocol: ProtocolChoice::V0,
                ..FetchOptions::default()
            },
        );
        let get = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(!get.contains("Git-Protocol"));
        let mut adv = Vec::new();
        pkt(&mut adv, b"# service=git-upload-pack\n");
        pktline::flush(&mut adv);
        pkt(
            &mut adv,
            alloc::format!("{} HEAD\0side-band-64k ofs-delta\n", s.commit).as_bytes(),
        );
        pktline::flush(&mut adv);
        let mut resp = alloc::format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\nContent-Length: {}\r\n\r\n",
            adv.len()
        )
        .into_bytes();
        resp.extend_from_slice(&adv);
        f.received(&resp);
        let post1 = expect_send(&mut f);
        // The server had closed the idle connection: retry once on a new one.
        f.peer_closed();
        assert_eq!(
            f.poll(),
            Io::Connect {
                host: "h",
                port: 80,
                tls: false
            }
        );
        f.connected();
        let post2 = expect_send(&mut f);
        assert_eq!(post1, post2);
        let body = String::from_utf8_lossy(&post2).into_owned();
        assert!(
            body.contains("want ") && !body.contains("deepen"),
            "no shallow capability: no deepen"
        );
        // Response cut short inside the pack.
        let mut r = Vec::new();
        pkt(&mut r, b"NAK\n");
        let mut p = vec![1u8];
        p.extend_from_slice(&s.pack[..40]);
        pkt(&mut r, &p);
        let mut resp = alloc::format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-result\r\nContent-Length: {}\r\n\r\n",
            r.len() + 100
        )
        .into_bytes();
        resp.extend_from_slice(&r);
        f.received(&resp);
        f.peer_closed();
        assert_eq!(
            finish(&mut f),
            Err(Error::ConnectionClosed {
                phase: Phase::ReceivingPack
            })
        );
    }

    #[test]
    fn misuse_and_driver_errors() {
        let mut f = Fetch::new(Url::parse("git://h/r").unwrap(), FetchOptions::default());
        f.connected();
        assert_eq!(
            f.poll(),
            Io::Done(Err(Error::Usage("connected() without Io::Connect")))
        );
        let mut f = Fetch::new(Url::parse("git://h/r").unwrap(), FetchOptions::default());
        let _ = f.poll();
        f.connected();
        f.sent(10_000);
        assert!(matches!(f.poll(), Io::Done(Err(Error::Usage(_)))));
        let mut f = Fetch::new(Url::parse("git://h/r").unwrap(), FetchOptions::default());
        let _ = f.poll();
        f.transport_error("connection refused");
        let Io::Done(Err(e)) = f.poll() else { panic!() };
        assert_eq!(
            e.to_string(),
            "transport error while connecting: connection refused"
        );
        let mut f = Fetch::new(Url::parse("git://h/r").unwrap(), FetchOptions::default());
        let _ = f.poll();
        f.connected();
        let _ = expect_send(&mut f);
        f.received(b"zzzz");
        assert!(matches!(f.poll(), Io::Done(Err(Error::PktLine(_)))));
        // the received-bytes limit
        let limits = Limits {
            max_received_bytes: 10,
            ..Limits::default()
        };
        let mut f = Fetch::new(
            Url::parse("git://h/r").unwrap(),
            FetchOptions {
                limits,
                ..FetchOptions::default()
            },
        );
        let _ = expect_send(&mut f);
        f.received(b"0008abcd0008abcd");
        assert_eq!(f.poll(), Io::Done(Err(Error::TooMuchData { limit: 10 })));
    }

    #[test]
    fn redirects() {
        let http = Url::parse("http://h/repo.git#b").unwrap();
        let https = Url::parse("https://h:8443/repo.git").unwrap();
        let q = INFO_REFS;
        let t = |u: &Url, loc: &str| redirect_target(u, &alloc::format!("{loc}{q}"));
        let u = t(&http, "https://H/new.git").unwrap();
        assert_eq!(u.to_string(), "https://h/new.git#b");
        let u = t(&http, "/moved/repo.git/").unwrap();
        assert_eq!(u.to_string(), "http://h/moved/repo.git#b");
        assert_eq!(t(&https, "https://h:8443/x").unwrap().path(), "/x");
        assert_eq!(t(&http, "https://h:8443").unwrap().path(), "/");
        for (u, loc, why) in [
            (&https, "http://h:8443/x", "https to http downgrade"),
            (&http, "http://evil/x", "redirect to another host"),
            (&https, "https://h:9999/x", "redirect to another port"),
            (&http, "git://h/x", "unsupported scheme"),
            (
                &http,
                "//evil/x",
                "network-path references are not followed",
            ),
            (&http, "https://user@h/x", "malformed location"),
            (&http, "/a b", "malformed location"),
            (&http, "/x#frag", "location contains a fragment"),
        ] {
            match t(u, loc) {
                Err(Error::RedirectRefused { reason, .. }) => assert_eq!(reason, why, "{loc}"),
                other => panic!("{loc}: {other:?}"),
            }
        }
        assert!(matches!(
            redirect_target(&http, "https://h/elsewhere"),
            Err(Error::RedirectRefused { .. })
        ));
        let e =
            redirect_target(&http, "http://evil/x/info/refs?service=git-upload-pack").unwrap_err();
        assert_eq!(
            e.to_string(),
            "HTTP redirect to 'http://evil/x/info/refs?service=git-upload-pack' refused: redirect to another host"
        );
        let _ = ToString::to_string(&1);
    }
}
