//! The sans-IO fetch: the driver-facing state machine. It owns the connection state and the
//! output buffer, and routes the remote's bytes to the transport (git:// or smart HTTP,
//! `smart_http.rs`) and from there to the protocol session (`session.rs`).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::base::BaseObjects;
use crate::credentials::Credentials;
use crate::error::Error;
use crate::limits::Limits;
use crate::oid::ObjectId;
use crate::pktline;
use crate::protocol::{self, ProtocolVersion};
use crate::session::{Reaction, Session};
use crate::smart_http::{HttpAction, SmartHttp};
use crate::snapshot::Snapshot;
use crate::url::{DEFAULT_SSH_USER, Scheme, Url};

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
    /// The objects of the commit being served ([`Snapshot::base`] of the last fetch): the
    /// pull then asks only for what changed since that commit and accepts deltas against its
    /// objects (a thin pack), falling back to a full fetch when the remote cannot do that.
    /// Also the commit of the unchanged check when [`current`](Self::current) is `None`.
    pub base: Option<Arc<BaseObjects>>,
    /// Credentials for HTTP(S) remotes, used instead of any in the URL. Sent with HTTP Basic
    /// authentication on every request to the remote's origin (scheme, host, port), and
    /// never after a redirect to another origin.
    pub credentials: Option<Credentials>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            protocol: ProtocolChoice::Auto,
            limits: Limits::default(),
            current: None,
            user_agent: String::from(concat!("git/unipi-rs-", env!("CARGO_PKG_VERSION"))),
            remote_progress: false,
            base: None,
            credentials: None,
        }
    }
}

/// Where a fetch is, for logging and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchPhase {
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

impl fmt::Display for FetchPhase {
    /// A gerund phrase: "connecting", "receiving the pack", ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FetchPhase::Connecting => "connecting",
            FetchPhase::Discovering => "reading the ref advertisement",
            FetchPhase::ListingRefs => "listing refs",
            FetchPhase::Negotiating => "requesting the pack",
            FetchPhase::ReceivingPack => "receiving the pack",
            FetchPhase::Done => "finishing",
        })
    }
}

/// A snapshot of the fetch's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Current phase.
    pub phase: FetchPhase,
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
    /// Open an SSH connection and run a command on it (see [`SshCommand`]); then call
    /// [`Fetch::connected`]. From then on [`Io::Send`] bytes go to the command's standard
    /// input and its standard output comes back through [`Fetch::received`]; the end of its
    /// output is [`Fetch::peer_closed`]. Returned again by every `poll` until `connected()`.
    ConnectSsh(SshCommand<'a>),
    /// Close the current connection (no acknowledgement needed); poll again.
    Close,
    /// The fetch is over. Returned once; close any connection that is still open.
    Done(Result<Outcome, Error>),
}

/// What the driver opens for an SSH remote: a connection to `host:port`, authenticated as
/// `user` (host key checking and the user's key are the driver's business), and a session
/// channel that sets the environment `env` and execs `command`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SshCommand<'a> {
    /// Host name or IPv4 literal.
    pub host: &'a str,
    /// TCP port (22 unless the URL says otherwise).
    pub port: u16,
    /// The login: the URL's, or [`DEFAULT_SSH_USER`](crate::DEFAULT_SSH_USER).
    pub user: &'a str,
    /// `git-upload-pack '<path>'`, quoted for the server's shell.
    pub command: &'a str,
    /// Environment variables to request before the exec: `GIT_PROTOCOL=version=2` when v2
    /// is wanted, else none. A server that refuses them (OpenSSH without `AcceptEnv
    /// GIT_PROTOCOL`) answers with protocol v0, which works as well.
    pub env: &'a [(&'a str, &'a str)],
}

/// The environment that asks `git-upload-pack` for protocol v2.
const V2_ENV: &[(&str, &str)] = &[("GIT_PROTOCOL", "version=2")];

/// The state of the driver's connection, as far as the fetch knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// None open; one is requested when there is something to send.
    Closed,
    /// [`Io::Connect`] was returned; waiting for [`Fetch::connected`].
    Connecting,
    /// Open and usable.
    Open,
    /// Open but not to be used again (a redirect, or the server did not keep it alive): it is
    /// closed before anything else happens.
    Retiring,
}

/// How the remote is reached.
#[derive(Debug)]
enum Transport {
    /// git:// — one TCP connection; requests and answers are plain pkt-lines.
    Daemon(Url),
    /// ssh:// — one SSH channel running `git-upload-pack`; plain pkt-lines as over git://,
    /// without the daemon's request line.
    Ssh {
        url: Url,
        command: String,
        env: &'static [(&'static str, &'static str)],
    },
    /// Smart HTTP(S): one HTTP exchange per request.
    Http(Box<SmartHttp>),
}

/// Whether the result is out.
#[derive(Debug)]
enum Finish {
    Running,
    Ready(Result<Outcome, Error>),
    /// [`Io::Done`] was returned.
    Taken,
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
///         Io::ConnectSsh(_) => fetch.transport_error("no SSH in this example"),
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
pub struct Fetch {
    transport: Transport,
    session: Session,
    link: Link,
    /// Connections opened so far.
    connections: u32,
    out: Vec<u8>,
    out_pos: usize,
    received: u64,
    max_received: u64,
    finish: Finish,
    /// For an incremental fetch: the remote and the options of the full fetch it falls back
    /// to when the server's answer lacks objects.
    start_over: Option<(Url, FetchOptions)>,
}

/// The transport, session, first output and state of a fetch of `url`.
fn begin(url: Url, opts: &FetchOptions) -> (Transport, Session, Vec<u8>, Finish) {
    let mut agent: String = opts
        .user_agent
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '-' })
        .take(100)
        .collect();
    if agent.is_empty() {
        agent = FetchOptions::default().user_agent;
    }
    let session = Session::new(url.wanted_ref(), agent.clone(), opts);
    let mut out = Vec::new();
    let ask_v2 = opts.protocol != ProtocolChoice::V0;
    let started = match url.scheme() {
        Scheme::Git => {
            protocol::git_daemon_request(&mut out, url.path(), &url.host_header(), ask_v2)
                .map(|()| Transport::Daemon(url.clone()))
        }
        Scheme::Ssh => {
            let command = url.ssh_command().unwrap_or_default();
            Ok(Transport::Ssh {
                url: url.clone(),
                command,
                env: if ask_v2 { V2_ENV } else { &[] },
            })
        }
        Scheme::Http | Scheme::Https => {
            SmartHttp::start(url.clone(), agent, opts).map(|(http, request)| {
                out = request;
                Transport::Http(Box::new(http))
            })
        }
    };
    match started {
        Ok(t) => (t, session, out, Finish::Running),
        Err(e) => (Transport::Daemon(url), session, out, Finish::Ready(Err(e))),
    }
}

impl fmt::Debug for Fetch {
    /// The state, without buffered bytes (requests may carry credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetch")
            .field("url", self.url())
            .field("phase", &self.phase())
            .field("link", &self.link)
            .field("connections", &self.connections)
            .field("pending_output", &(self.out.len() - self.out_pos))
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Fetch {
    /// Prepares a fetch of `url` (its `#branch`, or the remote's HEAD). Nothing happens until
    /// the first [`poll`](Fetch::poll).
    pub fn new(url: Url, opts: FetchOptions) -> Fetch {
        let start_over = opts.base.is_some().then(|| {
            let full = FetchOptions {
                base: None,
                ..opts.clone()
            };
            (url.clone(), full)
        });
        let max_received = opts.limits.max_received_bytes;
        let (transport, session, out, finish) = begin(url, &opts);
        Fetch {
            transport,
            session,
            link: Link::Closed,
            connections: 0,
            out,
            out_pos: 0,
            received: 0,
            max_received,
            finish,
            start_over,
        }
    }

    /// What the driver must do next. See the [type documentation](Fetch) for the protocol.
    pub fn poll(&mut self) -> Io<'_> {
        match &self.finish {
            Finish::Taken => return Io::Done(Err(Error::Finished)),
            Finish::Ready(Err(_)) => return self.take_result(),
            _ => {}
        }
        if self.link == Link::Retiring {
            self.link = Link::Closed;
            return Io::Close;
        }
        let to_send = self.out_pos < self.out.len();
        // Over SSH the server speaks first: the channel is opened with nothing to send.
        let server_first = matches!(self.transport, Transport::Ssh { .. })
            && self.session.phase() == FetchPhase::Discovering;
        if to_send && self.link == Link::Open {
            return Io::Send(&self.out[self.out_pos..]);
        }
        if (to_send || server_first) && self.link != Link::Open {
            self.link = Link::Connecting;
            if let Transport::Ssh { url, command, env } = &self.transport {
                return Io::ConnectSsh(SshCommand {
                    host: url.host(),
                    port: url.port(),
                    user: url.ssh_user().unwrap_or(DEFAULT_SSH_USER),
                    command,
                    env,
                });
            }
            let url = self.url();
            return Io::Connect {
                host: url.host(),
                port: url.port(),
                tls: url.scheme() == Scheme::Https,
            };
        }
        if let Finish::Ready(_) = self.finish {
            if self.link != Link::Closed {
                self.link = Link::Closed;
                return Io::Close;
            }
            return self.take_result();
        }
        Io::Receive
    }

    fn take_result(&mut self) -> Io<'_> {
        match core::mem::replace(&mut self.finish, Finish::Taken) {
            Finish::Ready(r) => Io::Done(r),
            _ => Io::Done(Err(Error::Finished)),
        }
    }

    /// The connection requested by [`Io::Connect`] is up (TLS included).
    pub fn connected(&mut self) {
        if self.link != Link::Connecting {
            return self.fail(Error::Usage("connected() without Io::Connect"));
        }
        self.link = Link::Open;
        self.connections += 1;
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
        if !matches!(self.finish, Finish::Running) {
            return;
        }
        self.received += data.len() as u64;
        if self.received > self.max_received {
            return self.fail(Error::TooMuchData {
                limit: self.max_received,
            });
        }
        match &mut self.transport {
            Transport::Http(http) => {
                let action = http.received(data, &mut self.session);
                self.on_http_action(action);
            }
            Transport::Daemon(_) | Transport::Ssh { .. } => match self.session.on_bytes(data) {
                Ok(Some(reaction)) => self.on_reaction(reaction),
                Ok(None) => {}
                Err(e) => self.fail(e),
            },
        }
    }

    /// The remote closed the connection (end of stream).
    pub fn peer_closed(&mut self) {
        if !matches!(self.finish, Finish::Running) {
            return;
        }
        self.link = Link::Closed;
        match &mut self.transport {
            Transport::Http(http) => {
                let action = http.peer_closed(&mut self.session);
                self.on_http_action(action);
            }
            Transport::Daemon(_) | Transport::Ssh { .. } => self.fail(Error::ConnectionClosed {
                phase: self.phase(),
            }),
        }
    }

    /// The driver's transport failed (DNS, TCP, TLS...): ends the fetch with
    /// [`Error::Transport`].
    pub fn transport_error(&mut self, detail: impl Into<String>) {
        let phase = self.phase();
        self.fail(Error::Transport {
            phase,
            detail: detail.into(),
        });
    }

    /// The driver's timeout expired: ends the fetch with [`Error::Timeout`].
    pub fn timeout(&mut self) {
        let phase = self.phase();
        self.fail(Error::Timeout { phase });
    }

    /// Current progress.
    pub fn progress(&self) -> Progress {
        let c = self.session.counters();
        Progress {
            phase: self.phase(),
            protocol: self.session.protocol(),
            objects: c.objects,
            total_objects: c.total_objects,
            received_bytes: self.received,
            pack_bytes: c.pack_bytes,
        }
    }

    /// The URL being fetched (after redirects).
    pub fn url(&self) -> &Url {
        match &self.transport {
            Transport::Daemon(url) | Transport::Ssh { url, .. } => url,
            Transport::Http(http) => http.url(),
        }
    }

    fn phase(&self) -> FetchPhase {
        if !matches!(self.finish, Finish::Running) {
            FetchPhase::Done
        } else if self.connections == 0 {
            FetchPhase::Connecting
        } else {
            self.session.phase()
        }
    }

    fn fail(&mut self, e: Error) {
        if matches!(self.finish, Finish::Running) {
            log::debug!("git fetch failed: {e}");
            self.finish = Finish::Ready(Err(e));
            self.session.abandon();
            self.out.clear();
            self.out_pos = 0;
        }
    }

    /// git:// and ssh://: the session's reaction goes out on the same connection.
    fn on_reaction(&mut self, reaction: Reaction) {
        match reaction {
            Reaction::Send(request) => self.out.extend_from_slice(&request),
            Reaction::Finish(outcome) => {
                if let Outcome::Unchanged(_) = outcome {
                    pktline::flush(&mut self.out); // end the session politely
                }
                self.finish = Finish::Ready(Ok(outcome));
            }
            Reaction::StartOverFull { why } => self.start_over_full(why),
        }
    }

    /// The incremental fetch failed with `why`: the same fetch again without a base, on a
    /// new connection.
    fn start_over_full(&mut self, why: Error) {
        let Some((url, opts)) = self.start_over.take() else {
            return self.fail(why);
        };
        log::warn!("git: the incremental fetch failed ({why}); fetching everything");
        let (transport, session, out, finish) = begin(url, &opts);
        self.transport = transport;
        self.session = session;
        self.out = out;
        self.out_pos = 0;
        self.finish = finish;
        if self.link != Link::Closed {
            self.link = Link::Retiring;
        }
    }

    fn on_http_action(&mut self, action: Result<HttpAction, Error>) {
        match action {
            Err(e) => self.fail(e),
            Ok(HttpAction::Continue) => {}
            Ok(HttpAction::Send {
                bytes,
                new_connection,
            }) => {
                if new_connection && self.link != Link::Closed {
                    self.link = Link::Retiring;
                }
                self.out = bytes;
                self.out_pos = 0;
            }
            Ok(HttpAction::Finish(outcome)) => self.finish = Finish::Ready(Ok(outcome)),
            Ok(HttpAction::StartOverFull { why }) => self.start_over_full(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectKind;
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
        let blob_id = hash_object(ObjectKind::Blob, &blob);
        let mut tree = b"100644 index.html\0".to_vec();
        tree.extend_from_slice(&blob_id.0);
        let tree_id = hash_object(ObjectKind::Tree, &tree);
        let commit = alloc::format!(
            "tree {tree_id}\nauthor a <a@b> 1600000000 +0000\ncommitter c <c@d> 1600000042 +0000\n\nsite\n"
        )
        .into_bytes();
        let commit_id = hash_object(ObjectKind::Commit, &commit);
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

    /// The pkt-lines `list`, then a flush.
    fn lines(list: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in list {
            pkt(&mut out, l);
        }
        pktline::flush(&mut out);
        out
    }

    /// A v0 answer to a fetch request with `deepen`: the shallow list, NAK, then `pack`.
    fn shallow_nak_pack(shallow: ObjectId, pack: &[u8]) -> Vec<u8> {
        let mut resp = lines(&[alloc::format!("shallow {shallow}\n").as_bytes()]);
        pkt(&mut resp, b"NAK\n");
        sideband_pack(&mut resp, pack);
        resp
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
        assert_eq!(f.progress().phase, FetchPhase::Connecting);
        f.connected();
        let req = expect_send(&mut f);
        assert_eq!(req, b"0030git-upload-pack /repo.git\0host=h\0\0version=2\0");
        let adv = lines(&[
            alloc::format!("{} HEAD\0side-band-64k ofs-delta shallow no-progress agent=x symref=HEAD:refs/heads/main\n", s.commit).as_bytes(),
            alloc::format!("{} refs/heads/main\n", s.commit).as_bytes(),
        ]);
        feed_bytewise(&mut f, &adv);
        let want = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(want.contains(&alloc::format!(
            "want {} side-band-64k ofs-delta shallow no-progress agent=git/unipi-rs-",
            s.commit
        )));
        assert!(want.ends_with("000ddeepen 1\n00000009done\n"));
        assert_eq!(f.progress().protocol, Some(ProtocolVersion::V0));
        feed_bytewise(&mut f, &shallow_nak_pack(s.commit, &s.pack));
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
        f.received(&lines(&[
            b"version 2\n",
            b"agent=git/2\n",
            b"ls-refs=unborn\n",
            b"fetch=shallow\n",
        ]));
        let ls = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(ls.starts_with("0014command=ls-refs\n"));
        assert!(ls.contains("ref-prefix refs/heads/main\n"));
        f.received(&lines(&[
            alloc::format!("{} refs/heads/main\n", s.commit).as_bytes()
        ]));
        assert_eq!(expect_send(&mut f), b"0000");
        assert_eq!(finish(&mut f), Ok(Outcome::Unchanged(s.commit)));
    }

    /// A complete `200 OK` response with `Content-Length`.
    fn response(content_type: &str, body: &[u8]) -> Vec<u8> {
        let mut resp = alloc::format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        resp.extend_from_slice(body);
        resp
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
        let caps = lines(&[
            b"version 2\n",
            b"ls-refs\n",
            b"fetch=shallow\n",
            b"object-format=sha1\n",
        ]);
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
        let refs = lines(&[
            alloc::format!("{} HEAD symref-target:refs/heads/main\n", s.commit).as_bytes(),
        ]);
        let resp = response("application/x-git-upload-pack-result", &refs);
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
        let mut adv = lines(&[b"# service=git-upload-pack\n"]);
        adv.extend(lines(&[alloc::format!(
            "{} HEAD\0side-band-64k ofs-delta\n",
            s.commit
        )
        .as_bytes()]));
        let resp = response("application/x-git-upload-pack-advertisement", &adv);
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
                phase: FetchPhase::ReceivingPack
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
    fn http_basic_auth_per_origin() {
        // "alice:zq9-token" in base64
        let basic = "Authorization: Basic YWxpY2U6enE5LXRva2Vu\r\n";
        let mut f = Fetch::new(
            Url::parse("http://alice:zq9-token@h/r").unwrap(),
            FetchOptions::default(),
        );
        let get = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(get.contains(basic), "{get}");
        let debug = alloc::format!("{f:?}");
        assert!(!debug.contains("zq9") && !debug.contains("YWxp"), "{debug}");
        // Same-origin redirect: still sent. To https (another origin): dropped.
        f.received(b"HTTP/1.1 302 Found\r\nLocation: /moved/r/info/refs?service=git-upload-pack\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(f.poll(), Io::Close);
        let get = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(
            get.starts_with("GET /moved/r/info/refs") && get.contains(basic),
            "{get}"
        );
        f.received(b"HTTP/1.1 301 Moved\r\nLocation: https://h/r/info/refs?service=git-upload-pack\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(f.poll(), Io::Close);
        assert_eq!(
            f.poll(),
            Io::Connect {
                host: "h",
                port: 443,
                tls: true
            }
        );
        let get = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(!get.contains("Authorization"), "{get}");
        // Without credentials a 401 is the plain status error.
        f.received(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
        assert!(matches!(
            finish(&mut f),
            Err(Error::HttpStatus { status: 401, .. })
        ));

        // Options override the URL's credentials; a refusal is the typed error, redacted.
        let mut f = Fetch::new(
            Url::parse("https://old:gone@h:8443/r#main").unwrap(),
            FetchOptions {
                credentials: Some(Credentials::parse("alice:zq9-token\n").unwrap()),
                ..FetchOptions::default()
            },
        );
        let get = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(get.contains(basic), "{get}");
        f.received(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        let e = finish(&mut f).unwrap_err();
        assert_eq!(
            e,
            Error::AuthenticationFailed {
                url: "https://alice:***@h:8443/r#main".into(),
                status: 403
            }
        );
        assert_eq!(
            e.to_string(),
            "authentication failed: the server refused the credentials for https://alice:***@h:8443/r#main (HTTP 403); check the user name and token"
        );
    }

    #[test]
    fn ssh_server_speaks_first_v0() {
        let s = site();
        let mut f = Fetch::new(
            Url::parse("deploy@h:sites/it's.git#main").unwrap(),
            FetchOptions::default(),
        );
        let expected = Io::ConnectSsh(SshCommand {
            host: "h",
            port: 22,
            user: "deploy",
            command: "git-upload-pack 'sites/it'\\''s.git'",
            env: &[("GIT_PROTOCOL", "version=2")],
        });
        assert_eq!(f.poll(), expected);
        assert_eq!(f.poll(), expected, "repeated until connected()");
        assert_eq!(f.progress().phase, FetchPhase::Connecting);
        f.connected();
        // Nothing to send: no daemon request line over SSH.
        assert_eq!(f.poll(), Io::Receive);
        let adv = lines(&[alloc::format!(
            "{} refs/heads/main\0side-band-64k ofs-delta shallow\n",
            s.commit
        )
        .as_bytes()]);
        feed_bytewise(&mut f, &adv);
        let want = String::from_utf8(expect_send(&mut f)).unwrap();
        assert!(
            want.contains(&alloc::format!("want {} side-band-64k", s.commit)),
            "{want}"
        );
        f.received(&shallow_nak_pack(s.commit, &s.pack));
        check_snapshot(finish(&mut f), &s);

        // v0 requested: no environment.
        let mut f = Fetch::new(
            Url::parse("ssh://h:2222/~/x").unwrap(),
            FetchOptions {
                protocol: ProtocolChoice::V0,
                ..FetchOptions::default()
            },
        );
        let Io::ConnectSsh(cmd) = f.poll() else {
            panic!()
        };
        assert_eq!(
            (cmd.port, cmd.user, cmd.env),
            (2222, DEFAULT_SSH_USER, &[][..])
        );
        assert_eq!(cmd.command, "git-upload-pack '~/x'");
    }
    /// A v0 git:// conversation up to the fetch request, answered by `pack` (after the
    /// shallow list and an ACK); returns the request the client sent.
    fn v0_fetch_with(f: &mut Fetch, advertised: ObjectId, caps: &str, pack: &[u8]) -> String {
        let _daemon_request = expect_send(f);
        f.received(&lines(&[
            alloc::format!("{advertised} HEAD\0{caps}\n").as_bytes()
        ]));
        let request = String::from_utf8(expect_send(f)).unwrap();
        f.received(&shallow_nak_pack(advertised, pack));
        request
    }

    #[test]
    fn incremental_thin_pack_and_fallback() {
        use crate::pack::tests::{delta, entry_header};
        use miniz_oxide::deflate::compress_to_vec_zlib;
        // The site being served, fetched in full.
        let s = site();
        let caps = "side-band-64k ofs-delta shallow thin-pack";
        let mut f = Fetch::new(Url::parse("git://h/r").unwrap(), FetchOptions::default());
        v0_fetch_with(&mut f, s.commit, caps, &s.pack);
        let Ok(Outcome::Fetched(old)) = finish(&mut f) else {
            panic!()
        };
        assert!(!old.stats.incremental);
        let base = old.base.clone();
        assert_eq!(
            (base.commit(), base.tree_count(), base.blob_count()),
            (s.commit, 1, 1)
        );

        // The next commit: index.html unchanged (not sent), b.txt a REF_DELTA against the
        // base's blob (thin), c.txt an OFS_DELTA against b.txt.
        let old_blob = b"<h1>hi</h1>\n";
        let old_blob_id = hash_object(ObjectKind::Blob, old_blob);
        let b = b"<h1>hi</h1>\nmore\n";
        let c = b"<h1>";
        let mut tree = Vec::new();
        for (name, id) in [
            ("b.txt", hash_object(ObjectKind::Blob, b)),
            ("c.txt", hash_object(ObjectKind::Blob, c)),
            ("index.html", old_blob_id),
        ] {
            tree.extend_from_slice(alloc::format!("100644 {name}\0").as_bytes());
            tree.extend_from_slice(&id.0);
        }
        let tree_id = hash_object(ObjectKind::Tree, &tree);
        let commit = alloc::format!(
            "tree {tree_id}\nparent {}\nauthor a <a@b> 1 +0000\ncommitter c <c@d> 1600000100 +0000\n\nv2\n",
            s.commit
        )
        .into_bytes();
        let commit_id = hash_object(ObjectKind::Commit, &commit);
        let delta_b = delta(12, 17, &[0x90, 12, 5, b'm', b'o', b'r', b'e', b'\n']);
        let delta_c = delta(17, 4, &[0x90, 4]);
        let b_entry_len = entry_header(7, delta_b.len() as u64).len()
            + 20
            + compress_to_vec_zlib(&delta_b, 6).len();
        let entries = |with_tree: bool| {
            let mut e = vec![RawEntry {
                ty: 1,
                base: vec![],
                data: commit.clone(),
            }];
            if with_tree {
                e.push(RawEntry {
                    ty: 2,
                    base: vec![],
                    data: tree.clone(),
                });
            }
            e.push(RawEntry {
                ty: 7,
                base: old_blob_id.0.to_vec(),
                data: delta_b.clone(),
            });
            e.push(RawEntry {
                ty: 6,
                base: crate::pack::tests::ofs(b_entry_len as u64),
                data: delta_c.clone(),
            });
            e
        };
        let thin = build_pack(&entries(true));
        let opts = || FetchOptions {
            base: Some(base.clone()),
            ..FetchOptions::default()
        };
        let mut f = Fetch::new(Url::parse("git://h/r").unwrap(), opts());
        let request = v0_fetch_with(&mut f, commit_id, caps, &thin);
        assert!(request.contains(" thin-pack"), "{request}");
        assert!(
            request.contains(&alloc::format!(
                "shallow {}\n000ddeepen 1\n00000032have {}\n0009done\n",
                s.commit,
                s.commit
            )),
            "{request}"
        );
        let Ok(Outcome::Fetched(new)) = finish(&mut f) else {
            panic!()
        };
        let st = new.stats;
        assert!(st.incremental);
        assert_eq!((st.objects, st.thin_deltas, st.reused_objects), (4, 1, 1));
        assert_eq!(&*new.get("b.txt").unwrap().data, b);
        assert_eq!(&*new.get("c.txt").unwrap().data, c);
        assert!(Arc::ptr_eq(
            &new.get("index.html").unwrap().data,
            &old.get("index.html").unwrap().data
        ));
        assert_eq!(new.base.blob_count(), 3);

        // Unchanged: the base's commit is the current one.
        let mut f = Fetch::new(Url::parse("git://h/r").unwrap(), opts());
        let _ = expect_send(&mut f);
        f.received(&lines(&[
            alloc::format!("{} HEAD\0{caps}\n", s.commit).as_bytes()
        ]));
        assert_eq!(expect_send(&mut f), b"0000");
        assert_eq!(finish(&mut f), Ok(Outcome::Unchanged(s.commit)));

        // A server without thin packs gets a full request.
        let mut f = Fetch::new(Url::parse("git://h/r").unwrap(), opts());
        let request = v0_fetch_with(&mut f, commit_id, "side-band-64k ofs-delta shallow", &thin);
        assert!(
            !request.contains("have ") && !request.contains("thin-pack"),
            "{request}"
        );
        // (the thin pack then misses its base: no base was given to the reader)
        let r = finish(&mut f);
        assert!(
            matches!(r, Err(Error::DeltaBaseMissing { base: Some(id), .. }) if id == old_blob_id),
            "{r:?}"
        );

        // A thin pack that leaves out the new tree: start over with a full fetch.
        let mut f = Fetch::new(Url::parse("git://h/r").unwrap(), opts());
        v0_fetch_with(&mut f, commit_id, caps, &build_pack(&entries(false)));
        assert_eq!(f.poll(), Io::Close);
        assert!(matches!(f.poll(), Io::Connect { .. }));
        let mut full_tree_pack = entries(true);
        full_tree_pack.insert(
            2,
            RawEntry {
                ty: 3,
                base: vec![],
                data: old_blob.to_vec(),
            },
        );
        let full = build_pack(&full_tree_pack);
        let request = v0_fetch_with(&mut f, commit_id, caps, &full);
        assert!(!request.contains("have "), "{request}");
        let Ok(Outcome::Fetched(new)) = finish(&mut f) else {
            panic!()
        };
        assert!(!new.stats.incremental);
        assert_eq!(&*new.get("c.txt").unwrap().data, c);
    }
}
