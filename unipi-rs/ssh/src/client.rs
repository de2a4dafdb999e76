//! The sans-IO client: [`SshClient`] between a TCP connection and one remote command.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sunset::{ChanData, ChanHandle, CliEvent, CliSessionExit, Runner};

use crate::error::{Error, Phase, sanitize};
use crate::fingerprint::Fingerprint;
use crate::keys::Ed25519Key;

/// Resource limits of one session. Each one bounds what the server can make the client hold
/// or process; exceeding one ends the session with a specific [`Error`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Command output (channel stdout) held for the application (default 64 KiB). When it
    /// is full the client stops taking TCP bytes, so the server is throttled by TCP flow
    /// control, not by memory.
    pub max_stdout_buffer: usize,
    /// The command's stderr kept for error messages: its last bytes (default 1 KiB).
    pub max_stderr_bytes: usize,
    /// TCP bytes accepted before the command runs: version, key exchange, banner,
    /// authentication (default 256 KiB; a normal handshake is under 8 KiB).
    pub max_handshake_bytes: usize,
    /// TCP bytes accepted over the whole session (default 512 MiB: room for the git
    /// client's own 320 MiB limit plus SSH framing).
    pub max_received_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stdout_buffer: 64 << 10,
            max_stderr_bytes: 1 << 10,
            max_handshake_bytes: 256 << 10,
            max_received_bytes: 512 << 20,
        }
    }
}

/// What a session does: who logs in with which key, which host key is expected, and which
/// command runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The user name (at most 256 bytes).
    pub user: String,
    /// The client key (`--ssh-key`). Its `Debug` shows only the public fingerprint.
    pub key: Ed25519Key,
    /// The expected host key (`--ssh-authenticator`). `None` accepts any host key and
    /// reports its fingerprint with [`Event::HostKey`]: trust on first use *without
    /// persistence*, so every connection trusts whatever key it is shown. Set a pin.
    pub host_key_pin: Option<Fingerprint>,
    /// The command the server runs, e.g. `git-upload-pack '/srv/site.git'`.
    pub command: String,
    /// Environment variables requested for the command, e.g. `GIT_PROTOCOL=version=2`.
    ///
    /// **Not sent yet**: sunset 0.6, the newest release, has no client-side `env` channel
    /// request (only the server side parses it). The names are logged at debug level and
    /// the command runs without them; for Git this means protocol v0, exactly as with an
    /// OpenSSH server whose `AcceptEnv` does not list `GIT_PROTOCOL`.
    pub env: Vec<(String, String)>,
    /// Resource limits.
    pub limits: Limits,
}

/// How the remote command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(u32),
    /// It was killed by this signal (the name without `SIG`, sanitised).
    Signal(String),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit status {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// What [`SshClient::poll`] reports. Each variant but `Idle` comes at most once, in this
/// order (`Exit` may come before `Eof`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Nothing new: move bytes (TCP in, [`SshClient::output`] out, stdout to the
    /// application) and poll again after any of them moved.
    Idle,
    /// The server's host key was accepted: it matched the pin (`pinned`), or there is no
    /// pin and it was accepted unchecked (log the fingerprint so an operator can pin it).
    HostKey {
        /// The server's host key fingerprint.
        fingerprint: Fingerprint,
        /// Whether it was checked against [`Config::host_key_pin`].
        pinned: bool,
    },
    /// Authenticated, the channel is open and the command was requested: stdin can be
    /// written and stdout arrives. sunset sends the `exec` request without asking for a
    /// reply, so a command the server refuses shows up as an [`Event::Exit`] with its
    /// message in [`SshClient::stderr`] (OpenSSH with a forced command or git-shell), or as
    /// silence until the driver's timeout.
    Ready,
    /// The command's stdout ended (after the bytes already in [`SshClient::stdout`]).
    Eof,
    /// The command ended.
    Exit(ExitStatus),
    /// The channel is closed: the session is over; close the TCP connection. Stdout still
    /// holds what was not consumed.
    Closed,
}

/// What to do with sunset after its event was released.
enum Action {
    None,
    OpenChannel,
}

/// A sans-IO SSH client session running one command, on top of sunset's [`Runner`].
///
/// # Driving protocol
///
/// The driver owns the TCP connection and the clock. Each time it visits the session:
///
/// | step | call | notes |
/// |---|---|---|
/// | TCP bytes arrived | [`receive(bytes)`](Self::receive) → taken | leave the rest in the socket and offer it again later (flow control) |
/// | TCP reached end of stream | [`peer_closed()`](Self::peer_closed) | |
/// | always | [`poll()`](Self::poll) until `Ok(Event::Idle)` | act on each event (table below) |
/// | stdout for the application | [`stdout()`](Self::stdout) + [`consume_stdout(n)`](Self::consume_stdout), or [`read_stdout`](Self::read_stdout) | |
/// | the application has input | [`write_stdin(bytes)`](Self::write_stdin) → taken | after `Ready`; takes what the channel window allows |
/// | bytes to send | [`output()`](Self::output) + [`consume_output(n)`](Self::consume_output) | after every call above |
/// | no progress for too long | [`timeout()`](Self::timeout) | the next `poll` returns `Err(Timeout)` |
///
/// | `poll()` returns | the driver |
/// |---|---|
/// | `Ok(Event::HostKey { fingerprint, pinned })` | logs the fingerprint (and whether it was pinned) |
/// | `Ok(Event::Ready)` | starts the application protocol (git) on stdin/stdout |
/// | `Ok(Event::Eof)` | lets the application read the rest of stdout, then end of stream |
/// | `Ok(Event::Exit(status))` | records the status (non-zero: include [`stderr()`](Self::stderr) in the message) |
/// | `Ok(Event::Closed)` | closes the TCP connection; the session is over |
/// | `Ok(Event::Idle)` | sends `output()`, waits for the socket or the application |
/// | `Err(error)` | logs it, closes the TCP connection; every later `poll` returns it again |
///
/// Nothing in here reads a clock or blocks; work per call is proportional to the bytes
/// passed in. Remote-controlled quantities are bounded by [`Limits`].
///
/// ```no_run
/// use std::io::{Read, Write};
/// use unipi_ssh::{Config, Event, Limits, SshClient, parse_authenticator, parse_ssh_key};
///
/// let config = Config {
///     user: "git".into(),
///     key: parse_ssh_key("ed25519:nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap(),
///     host_key_pin: Some(parse_authenticator("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s").unwrap()),
///     command: "git-upload-pack '/srv/site.git'".into(),
///     env: vec![("GIT_PROTOCOL".into(), "version=2".into())],
///     limits: Limits::default(),
/// };
/// let mut tcp = std::net::TcpStream::connect("127.0.0.1:22").unwrap();
/// let mut ssh = SshClient::new(config).unwrap();
/// let mut buf = vec![0u8; 16 * 1024];
/// let (mut pending, mut pos) = (0, 0);
/// loop {
///     // Flush what the session wants to send.
///     while !ssh.output().is_empty() {
///         let n = tcp.write(ssh.output()).unwrap();
///         ssh.consume_output(n);
///     }
///     match ssh.poll() {
///         Ok(Event::Ready) => { ssh.write_stdin(b"0000").unwrap(); }
///         Ok(Event::Closed) => break,
///         Ok(Event::Idle) => {
///             let out = ssh.stdout().to_vec();
///             ssh.consume_stdout(out.len());
///             std::io::stdout().write_all(&out).unwrap();
///             if !ssh.output().is_empty() { continue; }
///             if pos == pending {
///                 pending = tcp.read(&mut buf).unwrap();
///                 pos = 0;
///                 if pending == 0 { ssh.peer_closed(); continue; }
///             }
///             pos += ssh.receive(&buf[pos..pending]);
///         }
///         Ok(other) => eprintln!("{other:?}"),
///         Err(e) => { eprintln!("{e}"); break; }
///     }
/// }
/// ```
pub struct SshClient {
    runner: Box<Runner<'static, sunset::Client>>,
    config: Config,
    phase: Phase,
    chan: Option<ChanHandle>,
    key_offered: bool,
    host_key: Option<Fingerprint>,
    exit: Option<ExitStatus>,
    eof_reported: bool,
    closed_reported: bool,
    events: VecDeque<Event>,
    stdout: Vec<u8>,
    stdout_read: usize,
    stderr: Vec<u8>,
    received: u64,
    error: Option<Error>,
}

impl fmt::Debug for SshClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshClient")
            .field("user", &self.config.user)
            .field("key", &self.config.key)
            .field("phase", &self.phase)
            .field("host_key", &self.host_key)
            .field("received", &self.received)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// Upper bound of sunset steps per call; sunset needs one per packet or state change, so a
/// call never comes near it unless sunset stops making progress (then it is a bug).
const MAX_STEPS: usize = 100_000;
/// The longest user name sunset accepts (with its `larger` feature).
const MAX_USER: usize = sunset::config::MAX_USERNAME;

impl SshClient {
    /// Starts a session: queues the client's version line and key-exchange offer, which
    /// [`output`](Self::output) then returns. Fails only on an unusable `config`.
    pub fn new(config: Config) -> Result<SshClient, Error> {
        if config.user.is_empty() || config.user.len() > MAX_USER {
            return Err(Error::Config("the user name must be 1 to 256 bytes"));
        }
        if config.command.is_empty() {
            return Err(Error::Config("the command is empty"));
        }
        if config.limits.max_stdout_buffer == 0 {
            return Err(Error::Config("max_stdout_buffer must be at least 1"));
        }
        let mut client = SshClient {
            runner: Box::new(Runner::new_client_owned()),
            config,
            phase: Phase::Handshake,
            chan: None,
            key_offered: false,
            host_key: None,
            exit: None,
            eof_reported: false,
            closed_reported: false,
            events: VecDeque::new(),
            stdout: Vec::new(),
            stdout_read: 0,
            stderr: Vec::new(),
            received: 0,
            error: None,
        };
        client.pump();
        Ok(client)
    }

    /// Takes TCP bytes from the server and processes them; returns how many were taken.
    /// Fewer than offered (possibly 0) means the session holds all it may (stdout buffer
    /// full, or output waiting to be sent): offer the rest again after consuming stdout or
    /// output. Errors are reported by the next [`poll`](Self::poll).
    pub fn receive(&mut self, data: &[u8]) -> usize {
        let mut taken = 0;
        let mut retried = false;
        while self.error.is_none() && taken < data.len() {
            match self.runner.input(&data[taken..]) {
                Ok(0) => {
                    if retried {
                        break;
                    }
                    retried = true;
                    self.pump();
                }
                Ok(n) => {
                    retried = false;
                    taken += n.min(data.len() - taken);
                    self.count_received(n);
                    self.pump();
                }
                Err(e) => {
                    let e = map_sunset(e, self.phase);
                    self.fail(e);
                }
            }
        }
        taken
    }

    /// The TCP connection reached end of stream (the server closed it).
    pub fn peer_closed(&mut self) {
        self.runner.close_input();
        self.pump();
    }

    /// The driver gave up waiting for the server; the next [`poll`](Self::poll) returns
    /// [`Error::Timeout`] (unless the session already failed or closed).
    pub fn timeout(&mut self) {
        if !self.closed_reported {
            self.fail(Error::Timeout { phase: self.phase });
        }
    }

    /// Advances the session and returns the next event, or the error that ended it (again
    /// on every later call).
    pub fn poll(&mut self) -> Result<Event, Error> {
        self.pump();
        if let Some(ev) = self.events.pop_front() {
            return Ok(ev);
        }
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(Event::Idle),
        }
    }

    /// Bytes to send to the server (empty once the session failed).
    pub fn output(&mut self) -> &[u8] {
        if self.error.is_some() {
            return &[];
        }
        self.runner.output_buf()
    }

    /// Marks `n` bytes of [`output`](Self::output) as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.runner.consume_output(n);
        self.pump();
    }

    /// The command's stdout received so far and not yet consumed.
    pub fn stdout(&self) -> &[u8] {
        self.stdout.get(self.stdout_read..).unwrap_or_default()
    }

    /// Marks `n` bytes of [`stdout`](Self::stdout) as taken.
    pub fn consume_stdout(&mut self, n: usize) {
        self.stdout_read = (self.stdout_read + n).min(self.stdout.len());
        if self.stdout_read == self.stdout.len() {
            self.stdout.clear();
            self.stdout_read = 0;
        }
        self.pump();
    }

    /// Copies stdout into `buf` and consumes it; returns the number of bytes copied.
    pub fn read_stdout(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.stdout().len());
        buf[..n].copy_from_slice(&self.stdout()[..n]);
        self.consume_stdout(n);
        n
    }

    /// The last bytes the command wrote to stderr (at most
    /// [`Limits::max_stderr_bytes`]); remote-controlled, sanitise before logging.
    pub fn stderr(&self) -> &[u8] {
        &self.stderr
    }

    /// Sends bytes to the command's stdin; returns how many the channel took now (0 when
    /// its window or the output buffer is full: send [`output`](Self::output), then
    /// retry). Only after [`Event::Ready`].
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<usize, Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let Some(chan) = &self.chan else {
            return Err(Error::Usage("write_stdin before Event::Ready"));
        };
        if self.phase != Phase::Running {
            return Err(match self.phase {
                Phase::Closed => Error::ConnectionClosed {
                    phase: Phase::Closed,
                },
                _ => Error::Usage("write_stdin before Event::Ready"),
            });
        }
        match self.runner.write_channel(chan, ChanData::Normal, data) {
            Ok(n) => Ok(n.min(data.len())),
            Err(sunset::Error::ChannelEOF) => Err(Error::ConnectionClosed { phase: self.phase }),
            Err(e) => {
                let e = map_sunset(e, self.phase);
                self.fail(e.clone());
                Err(e)
            }
        }
    }

    /// Where the session is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The server's host key fingerprint, once accepted.
    pub fn host_key(&self) -> Option<Fingerprint> {
        self.host_key
    }

    /// How the command ended, once known.
    pub fn exit_status(&self) -> Option<&ExitStatus> {
        self.exit.as_ref()
    }

    /// TCP bytes taken from the server so far.
    pub fn received_bytes(&self) -> u64 {
        self.received
    }

    fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            log::debug!("ssh: {e}");
            self.error = Some(e);
        }
    }

    fn count_received(&mut self, n: usize) {
        self.received = self.received.saturating_add(n as u64);
        let limits = &self.config.limits;
        if self.received > limits.max_received_bytes {
            let limit = limits.max_received_bytes;
            self.fail(Error::TooMuchData { limit });
        } else if matches!(
            self.phase,
            Phase::Handshake | Phase::Authenticating | Phase::OpeningChannel
        ) && self.received > limits.max_handshake_bytes as u64
        {
            let limit = limits.max_handshake_bytes;
            self.fail(Error::HandshakeTooLarge { limit });
        }
    }

    /// Runs sunset until it has nothing more to do with the bytes it holds.
    fn pump(&mut self) {
        for _ in 0..MAX_STEPS {
            if self.error.is_some() || self.closed_reported {
                return;
            }
            let moved = self.drain_channel();
            let stepped = match self.step() {
                Ok(s) => s,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            };
            if let Err(e) = self.check_channel() {
                self.fail(e);
                return;
            }
            if !moved && !stepped {
                return;
            }
        }
        self.fail(Error::Internal("sunset made no progress"));
    }

    /// One `progress` call of sunset; `Ok(true)` if it did something.
    fn step(&mut self) -> Result<bool, Error> {
        let phase = self.phase;
        let mut action = Action::None;
        // sunset's events borrow the runner (and some resume it when dropped): the block
        // ends that borrow before the runner is used again to open the channel.
        {
            let ev = match self.runner.progress() {
                Ok(ev) => ev,
                Err(e) => return Err(map_sunset(e, phase)),
            };
            let cli = match ev {
                sunset::Event::Cli(cli) => cli,
                sunset::Event::Progressed => return Ok(true),
                sunset::Event::None => return Ok(false),
                sunset::Event::Serv(_) => return Err(Error::Internal("server event in a client")),
            };
            match cli {
                CliEvent::Hostkey(check) => {
                    let offered = check
                        .hostkey()
                        .ok()
                        .and_then(|k| Fingerprint::of_pubkey(&k));
                    let Some(offered) = offered else {
                        let _ = check.reject();
                        return Err(Error::Protocol {
                            phase,
                            detail: "unreadable host key".into(),
                        });
                    };
                    if let Some(expected) = self.config.host_key_pin
                        && expected != offered
                    {
                        // Refused here, before NEWKEYS: the client key is never offered.
                        let _ = check.reject();
                        return Err(Error::HostKeyMismatch { expected, offered });
                    }
                    // Verifies the server's signature over the exchange hash.
                    check.accept().map_err(|e| map_sunset(e, phase))?;
                    self.host_key = Some(offered);
                    self.events.push_back(Event::HostKey {
                        fingerprint: offered,
                        pinned: self.config.host_key_pin.is_some(),
                    });
                }
                CliEvent::Username(req) => {
                    self.phase = Phase::Authenticating;
                    req.username(&self.config.user)
                        .map_err(|e| map_sunset(e, Phase::Authenticating))?;
                }
                CliEvent::Pubkey(req) => {
                    if self.key_offered {
                        // The server answered our key with USERAUTH_FAILURE.
                        return Err(auth_refused(&self.config, true));
                    }
                    self.key_offered = true;
                    req.pubkey(self.config.key.sign_key())
                        .map_err(|e| map_sunset(e, phase))?;
                }
                CliEvent::Password(_) => {
                    // Sunset asks for a password once public keys are exhausted or not offered.
                    return Err(auth_refused(&self.config, self.key_offered));
                }
                CliEvent::AgentSign(_) => return Err(Error::Internal("agent signing requested")),
                CliEvent::Authenticated => {
                    self.phase = Phase::OpeningChannel;
                    action = Action::OpenChannel;
                }
                CliEvent::SessionOpened(mut opener) => {
                    for (name, _) in &self.config.env {
                        log::debug!(
                            "ssh: env {} not sent (sunset has no client env request)",
                            sanitize(name.as_bytes(), 64)
                        );
                    }
                    opener
                        .exec(&self.config.command)
                        .map_err(|e| map_sunset(e, phase))?;
                    self.phase = Phase::Running;
                    self.events.push_back(Event::Ready);
                }
                CliEvent::SessionExit(exit) => {
                    let status = match exit {
                        CliSessionExit::Status(code) => ExitStatus::Code(code),
                        CliSessionExit::Signal(sig) => {
                            ExitStatus::Signal(sanitize(sig.signal.as_bytes(), 32))
                        }
                    };
                    if self.exit.is_none() {
                        self.exit = Some(status.clone());
                        self.events.push_back(Event::Exit(status));
                    }
                }
                CliEvent::Banner(banner) => {
                    log::info!("ssh banner: {}", sanitize(banner.raw_banner().0, 200));
                }
                CliEvent::Defunct => {
                    return match self.phase {
                        Phase::Closed => Ok(false),
                        phase => Err(Error::ConnectionClosed { phase }),
                    };
                }
                CliEvent::PollAgain => {}
            }
        }
        if let Action::OpenChannel = action {
            let chan = self
                .runner
                .open_client_session()
                .map_err(|e| map_sunset(e, Phase::OpeningChannel))?;
            self.chan = Some(chan);
        }
        Ok(true)
    }

    /// Moves channel data out of sunset: stdout into the bounded buffer, stderr into the
    /// kept tail. Returns whether anything moved.
    fn drain_channel(&mut self) -> bool {
        let Some(chan) = &self.chan else {
            return false;
        };
        let mut moved = false;
        // A few packets per call; the caller loops.
        for _ in 0..8 {
            let Some((num, dt, len)) = self.runner.read_channel_ready() else {
                break;
            };
            if num != chan.num() {
                break;
            }
            let result = match dt {
                ChanData::Normal => {
                    if self.stdout_read > 0 {
                        self.stdout.drain(..self.stdout_read);
                        self.stdout_read = 0;
                    }
                    let room = self
                        .config
                        .limits
                        .max_stdout_buffer
                        .saturating_sub(self.stdout.len());
                    if room == 0 {
                        break;
                    }
                    let old = self.stdout.len();
                    self.stdout.resize(old + room.min(len), 0);
                    let r = self
                        .runner
                        .read_channel_either(chan, &mut self.stdout[old..]);
                    let got = r.as_ref().map_or(0, |(n, _)| *n);
                    self.stdout.truncate(old + got);
                    r
                }
                ChanData::Stderr => {
                    let mut tmp = [0u8; 512];
                    let r = self.runner.read_channel_either(chan, &mut tmp);
                    if let Ok((n, _)) = r {
                        keep_tail(
                            &mut self.stderr,
                            tmp.get(..n).unwrap_or_default(),
                            self.config.limits.max_stderr_bytes,
                        );
                    }
                    r
                }
            };
            match result {
                Ok((0, _)) => break,
                Ok(_) => moved = true,
                Err(e) => {
                    let e = map_sunset(e, self.phase);
                    self.fail(e);
                    break;
                }
            }
        }
        moved
    }

    /// Notices channel state changes sunset has no event for: open refused, EOF, close.
    fn check_channel(&mut self) -> Result<(), Error> {
        let Some(chan) = &self.chan else {
            return Ok(());
        };
        match self.phase {
            Phase::OpeningChannel => {
                // A refused channel is dropped by sunset without an event; its send side
                // then reports "closed".
                if let Ok(None) = self.runner.write_channel_ready(chan, ChanData::Normal) {
                    return Err(Error::ChannelRefused);
                }
            }
            Phase::Running => {
                let data_pending = self.runner.read_channel_ready().is_some();
                if !self.eof_reported && !data_pending && self.runner.is_channel_eof(chan) {
                    self.eof_reported = true;
                    self.events.push_back(Event::Eof);
                }
                if !data_pending && self.runner.is_channel_closed(chan) {
                    if !self.eof_reported {
                        self.eof_reported = true;
                        self.events.push_back(Event::Eof);
                    }
                    self.phase = Phase::Closed;
                    self.closed_reported = true;
                    self.events.push_back(Event::Closed);
                }
            }
            Phase::Handshake | Phase::Authenticating | Phase::Closed => {}
        }
        Ok(())
    }
}

fn auth_refused(config: &Config, publickey_offered: bool) -> Error {
    Error::AuthenticationRefused {
        user: sanitize(config.user.as_bytes(), 64),
        key: config.key.fingerprint(),
        publickey_offered,
    }
}

/// Appends `data` to `tail`, keeping only the last `max` bytes.
fn keep_tail(tail: &mut Vec<u8>, data: &[u8], max: usize) {
    tail.extend_from_slice(data);
    if tail.len() > max {
        let cut = tail.len() - max;
        tail.drain(..cut);
    }
}

/// Maps sunset's error to this crate's, with the phase for context.
fn map_sunset(e: sunset::Error, phase: Phase) -> Error {
    use sunset::Error as S;
    match e {
        S::NoAuthMethods => Error::Protocol {
            phase,
            detail: "the server offers no authentication method this client has".into(),
        },
        S::AlgoNoMatch { algo } => Error::NoCommonAlgorithm { what: algo },
        S::NotSSH => Error::NotSsh,
        S::SessionEOF => Error::ConnectionClosed { phase },
        S::Bug => Error::Internal("sunset reported a bug"),
        other => Error::Protocol {
            phase,
            detail: format!("{other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::parse_ssh_key;
    use alloc::vec;

    fn config() -> Config {
        Config {
            user: "git".into(),
            key: parse_ssh_key("ed25519:nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap(),
            host_key_pin: None,
            command: "git-upload-pack '/x'".into(),
            env: vec![],
            limits: Limits::default(),
        }
    }

    #[test]
    fn starts_with_version_line() {
        let mut c = SshClient::new(config()).unwrap();
        assert!(c.output().starts_with(b"SSH-2.0-"), "{:?}", c.output());
        assert_eq!(c.poll(), Ok(Event::Idle));
    }

    #[test]
    fn debug_output_has_no_key_material() {
        let cfg = config();
        let seed_b64 = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
        let shown = alloc::format!("{cfg:?}");
        assert!(!shown.contains(&seed_b64[..10]), "{shown}");
        assert!(shown.contains("Ed25519Key(SHA256:"), "{shown}");
        let client = SshClient::new(cfg).unwrap();
        let shown = alloc::format!("{client:?}");
        assert!(!shown.contains(&seed_b64[..10]), "{shown}");
        assert!(!shown.contains("157, 97, 177"), "{shown}");
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut cfg = config();
        cfg.user = String::new();
        assert!(matches!(SshClient::new(cfg), Err(Error::Config(_))));
        let mut cfg = config();
        cfg.user = "u".repeat(300);
        assert!(matches!(SshClient::new(cfg), Err(Error::Config(_))));
        let mut cfg = config();
        cfg.command = String::new();
        assert!(matches!(SshClient::new(cfg), Err(Error::Config(_))));
    }

    /// Sends (discards) everything the client wants to send.
    fn flush(c: &mut SshClient) {
        for _ in 0..100 {
            let n = c.output().len();
            if n == 0 {
                return;
            }
            c.consume_output(n);
        }
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let mut c = SshClient::new(config()).unwrap();
        let garbage = b"HTTP/1.1 200 OK\r\n\r\n".repeat(2000);
        let mut taken = 0;
        for _ in 0..100 {
            flush(&mut c);
            let t = c.receive(&garbage[taken..]);
            taken += t;
            if t == 0 {
                break;
            }
        }
        let e = c.poll().unwrap_err();
        assert_eq!(e, Error::NotSsh);
        // Sticky.
        assert_eq!(c.poll().unwrap_err(), e);
        assert!(c.output().is_empty());
        // A version line followed by garbage packets: a protocol error.
        let mut c = SshClient::new(config()).unwrap();
        flush(&mut c);
        let mut stream = b"SSH-2.0-OpenSSH_9.2\r\n".to_vec();
        stream.extend_from_slice(&[0xff; 64]);
        c.receive(&stream);
        assert!(
            matches!(
                c.poll(),
                Err(Error::Protocol {
                    phase: Phase::Handshake,
                    ..
                })
            ),
            "{:?}",
            c.poll()
        );
    }

    #[test]
    fn early_close_is_reported_with_the_phase() {
        let mut c = SshClient::new(config()).unwrap();
        c.peer_closed();
        assert_eq!(
            c.poll(),
            Err(Error::ConnectionClosed {
                phase: Phase::Handshake
            })
        );
    }

    #[test]
    fn write_before_ready_is_a_usage_error() {
        let mut c = SshClient::new(config()).unwrap();
        assert!(matches!(c.write_stdin(b"x"), Err(Error::Usage(_))));
    }

    #[test]
    fn stderr_tail_is_bounded() {
        let mut t = Vec::new();
        keep_tail(&mut t, b"hello ", 8);
        keep_tail(&mut t, b"world", 8);
        assert_eq!(t, b"lo world");
    }
}
