//! Pulls the site from its Git remote: drives the sans-IO Git client
//! ([`unipi_git::Fetch`]) over a [`Dial`]ed [`Stream`](crate::transport::Stream) (DNS, TCP, TLS for
//! `https://` remotes), with timeouts, retries with backoff at boot, and the
//! conversion of a fetched snapshot into a [`Site`]. The site being served
//! is only replaced once a fetch has completed and been fully verified; on
//! any error the old site stays.
//!
//! Pulls are numbered by *generation*: a webhook asks for a pull and gets
//! the generation whose result answers it ([`Puller::request_pull`]); a
//! pull asked for while one runs is served by the next one, so a commit
//! pushed during a fetch is never missed.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use log::{debug, info, warn};
use rustls::ClientConfig;
use smoltcp::iface::SocketHandle;
use smoltcp::time::{Duration, Instant};
use unipi_git::{
    BaseObjects, Credentials, Fetch, FetchOptions, FetchPhase, FileKind, Io, ObjectId, Outcome,
    Scheme, Snapshot, Url,
};

use crate::config::Config;
use crate::net::Net;
use crate::platform::Platform;
use crate::site::{Body, Site, SiteBuilder, SiteLimits, SiteMeta};
use crate::tls::{LoopClock, client_config, web_pki_client_config};
use crate::transport::{Dial, DialStatus, Security, Target};

/// No bytes moving for this long ends the fetch.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A whole fetch may take at most this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);
/// Retry delays at boot: 1 s, doubling up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// TCP buffers of the client socket (pack data flows in).
const RX_BUFFER: usize = 64 * 1024;
const TX_BUFFER: usize = 16 * 1024;
/// Most Git client steps per event-loop iteration, so serving stays
/// responsive while a large pack streams in.
const STEPS_PER_POLL: usize = 256;

/// How a pull ended.
#[derive(Debug)]
pub enum PullResult {
    /// A new commit is ready to be served.
    Updated {
        /// The new site.
        site: Box<Site>,
        /// Its commit (hex).
        commit: String,
    },
    /// The remote still points at the commit being served.
    Unchanged,
    /// The pull failed; the site being served (if any) stays.
    Failed(String),
}

/// A finished pull: `generation` tells which requests it answers.
#[derive(Debug)]
pub struct Pulled {
    /// Every pull requested with a generation up to this one is answered.
    pub generation: u64,
    /// The result.
    pub result: PullResult,
    /// How long the fetch took.
    pub duration: Duration,
}

/// One fetch in progress.
struct Running {
    fetch: Fetch,
    /// The connection the fetch asked for, once asked.
    link: Option<Dial>,
    started: Instant,
    /// Last time bytes moved.
    active: Instant,
    phase: FetchPhase,
    /// Pull generation this fetch answers.
    generation: u64,
}

/// How the puller authenticates the remote and itself.
struct Clients {
    /// TLS for `https://` remotes.
    tls: Option<Arc<ClientConfig>>,
    /// The key and host-key pin for ssh remotes.
    ssh: SshClients,
}

/// `--ssh-key` and `--ssh-authenticator`.
struct SshClients {
    key: Option<unipi_ssh::Ed25519Key>,
    authenticator: Option<unipi_ssh::Fingerprint>,
}

/// The Git side of the server: fetches at boot (retrying until it works)
/// and whenever a webhook asks for it, one fetch at a time.
pub struct Puller {
    url: Url,
    clients: Clients,
    socket: Option<SocketHandle>,
    current: Option<ObjectId>,
    /// The served commit's objects: the next pull asks only for what changed.
    base: Option<Arc<BaseObjects>>,
    /// Credentials from `--remote-auth` (else those in the URL, if any).
    credentials: Option<Credentials>,
    running: Option<Box<Running>>,
    /// Pulls requested (webhooks) and the generation last started.
    requested: u64,
    started: u64,
    /// Boot: retry until the first success.
    have_site: bool,
    failures: u32,
    next_attempt: Instant,
    limits: SiteLimits,
}

impl Puller {
    /// A puller for `--remote`, or `None` without one. HTTPS remotes trust
    /// the CA certificates of the `--remote-ca` region, or else the bundled
    /// Web PKI roots.
    pub fn new<P: Platform>(
        cfg: &Config,
        p: &P,
        clock: Arc<LoopClock>,
    ) -> Result<Option<Puller>, String> {
        let Some(remote) = &cfg.remote else {
            return Ok(None);
        };
        let url = Url::parse(remote)
            .map_err(|e| format!("--remote {}: {e}", unipi_git::redact_credentials(remote)))?;
        let credentials = match &cfg.remote_auth {
            None => None,
            Some(region) => {
                let text = p
                    .region(region)
                    .ok_or_else(|| format!("--remote-auth: no memory region '{region}'"))?;
                let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                let text = core::str::from_utf8(&text[..end])
                    .map_err(|_| format!("--remote-auth region '{region}': not UTF-8 text"))?;
                let c = Credentials::parse(text)
                    .map_err(|e| format!("--remote-auth region '{region}': {e}"))?;
                info!("git: credentials for {} from the '{region}' region", url);
                Some(c)
            }
        };
        let tls = match url.scheme() {
            Scheme::Https => Some(match p.region(&cfg.remote_ca) {
                Some(pem) => {
                    info!(
                        "git: trusting the CA certificates of the '{}' region",
                        cfg.remote_ca
                    );
                    client_config(pem, clock)
                        .map_err(|e| format!("--remote-ca region '{}': {e}", cfg.remote_ca))?
                }
                None => {
                    info!("git: trusting the bundled Web PKI roots");
                    web_pki_client_config(clock).map_err(|e| format!("TLS client: {e}"))?
                }
            }),
            _ => None,
        };
        let ssh = SshClients {
            key: ssh_key(cfg, p)?,
            authenticator: cfg.ssh_authenticator,
        };
        if url.scheme() == Scheme::Ssh && ssh.key.is_none() {
            return Err(String::from(
                "ssh remotes need a client key: set --ssh-key=ed25519:<base64> or --ssh-key-region",
            ));
        }
        Ok(Some(Puller {
            url,
            clients: Clients { tls, ssh },
            socket: None,
            current: None,
            base: None,
            credentials,
            running: None,
            requested: 1,
            started: 0,
            have_site: false,
            failures: 0,
            next_attempt: Instant::ZERO,
            limits: SiteLimits::default(),
        }))
    }

    /// Asks for a pull; returns the generation whose result will answer it.
    /// A pull asked for while one runs is served by the next one, so a
    /// commit pushed during a fetch is never missed.
    pub fn request_pull(&mut self) -> u64 {
        if self.running.is_some() {
            self.requested = self.started + 1;
        } else {
            self.requested = self.requested.max(self.started + 1);
        }
        self.requested
    }

    /// When the puller needs to run again without network input.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.running {
            Some(r) => Some((r.active + STALL_TIMEOUT).min(r.started + FETCH_TIMEOUT)),
            None if self.requested > self.started => Some(self.next_attempt),
            None => None,
        }
    }

    /// Runs the fetch as far as the network allows; `Some` once it is over.
    pub fn poll(&mut self, net: &mut Net, now: Instant) -> Option<Pulled> {
        if self.running.is_none() {
            if self.requested <= self.started || now < self.next_attempt {
                return None;
            }
            self.start(net, now);
        }
        let socket = self.socket?;
        let running = self.running.as_mut()?;
        let done = running.drive(net, socket, &self.clients, now)?;
        let generation = running.generation;
        let elapsed = now - running.started;
        let progress = running.fetch.progress();
        net.tcp(socket).abort();
        self.running = None;
        let result = match done {
            Ok(Outcome::Unchanged(commit)) => {
                info!(
                    "git: {} still at {commit} (checked in {} ms)",
                    self.url,
                    elapsed.total_millis()
                );
                self.succeeded();
                PullResult::Unchanged
            }
            Ok(Outcome::Fetched(snapshot)) => match to_site(&snapshot, &self.limits) {
                Ok(site) => {
                    let s = &snapshot.stats;
                    info!(
                        "git: fetched {} from {}: {} files, {} bytes (pack {} bytes, {} objects, {} deltas, protocol {}{}) in {} ms",
                        snapshot.commit,
                        self.url,
                        site.len(),
                        site.total_bytes(),
                        s.pack_bytes,
                        s.objects,
                        s.deltas,
                        s.protocol
                            .map(|p| format!("{p:?}"))
                            .unwrap_or_else(|| "?".into()),
                        if s.incremental {
                            format!(
                                ", incremental: {} thin deltas, {} objects reused",
                                s.thin_deltas, s.reused_objects
                            )
                        } else {
                            String::new()
                        },
                        elapsed.total_millis()
                    );
                    self.current = Some(snapshot.commit);
                    self.base = Some(snapshot.base.clone());
                    self.succeeded();
                    PullResult::Updated {
                        site: Box::new(site),
                        commit: snapshot.commit.to_string(),
                    }
                }
                Err(e) => self.failed(
                    now,
                    format!("fetched {} but cannot serve it: {e}", snapshot.commit),
                ),
            },
            Err(e) => {
                let what = format!(
                    "{e} (while {}, after {} bytes)",
                    progress.phase, progress.received_bytes
                );
                self.failed(now, what)
            }
        };
        Some(Pulled {
            generation,
            result,
            duration: elapsed,
        })
    }

    fn start(&mut self, net: &mut Net, now: Instant) {
        if self.socket.is_none() {
            self.socket = Some(net.add_tcp(vec![0; RX_BUFFER], vec![0; TX_BUFFER]));
        }
        self.started = self.requested;
        let opts = FetchOptions {
            current: self.current,
            base: self.base.clone(),
            credentials: self.credentials.clone(),
            ..FetchOptions::default()
        };
        info!(
            "git: fetching {}{}",
            self.url,
            if self.failures > 0 {
                format!(" (attempt {})", self.failures + 1)
            } else {
                String::new()
            }
        );
        self.running = Some(Box::new(Running {
            fetch: Fetch::new(self.url.clone(), opts),
            link: None,
            started: now,
            active: now,
            phase: FetchPhase::Connecting,
            generation: self.started,
        }));
    }

    fn succeeded(&mut self) {
        self.have_site = true;
        self.failures = 0;
    }

    fn failed(&mut self, now: Instant, reason: String) -> PullResult {
        self.failures += 1;
        if self.have_site {
            warn!(
                "git: pull failed, still serving {}: {reason}",
                self.current.map(|c| c.to_string()).unwrap_or_default()
            );
        } else {
            // At boot keep trying: 1 s, 2 s, 4 s, ... up to MAX_BACKOFF.
            let delay = Duration::from_secs(1u64 << (self.failures - 1).min(6)).min(MAX_BACKOFF);
            warn!(
                "git: fetch failed: {reason}; retrying in {} s",
                delay.secs()
            );
            self.next_attempt = now + delay;
            self.requested = self.requested.max(self.started + 1);
        }
        PullResult::Failed(reason)
    }
}

impl Running {
    /// Starts dialing `target`; false (and the fetch told) when that fails.
    fn open(
        &mut self,
        net: &mut Net,
        socket: SocketHandle,
        target: Result<Target, String>,
    ) -> bool {
        match target.and_then(|t| Dial::start(net, socket, t).map_err(|e| e.to_string())) {
            Ok(d) => {
                self.link = Some(d);
                true
            }
            Err(e) => {
                self.fetch.transport_error(e);
                false
            }
        }
    }

    /// Takes the next steps of the connection being set up; true while it
    /// waits for the network.
    fn dial(&mut self, net: &mut Net, now: Instant) -> bool {
        let Some(dial) = self.link.as_mut() else {
            return false;
        };
        match dial.poll(net) {
            Ok(DialStatus::Open) => {
                self.active = now;
                self.fetch.connected();
                false
            }
            Ok(DialStatus::Pending) => true,
            Err(e) => {
                self.link = None;
                self.fetch.transport_error(e.to_string());
                false
            }
        }
    }

    /// Advances the fetch; `Some(result)` once it is over.
    fn drive(
        &mut self,
        net: &mut Net,
        socket: SocketHandle,
        clients: &Clients,
        now: Instant,
    ) -> Option<Result<Outcome, unipi_git::Error>> {
        let (tls, ssh) = (clients.tls.as_ref(), &clients.ssh);
        if now >= self.started + FETCH_TIMEOUT || now >= self.active + STALL_TIMEOUT {
            self.fetch.timeout();
        }
        let progress = self.fetch.progress();
        if progress.phase != self.phase {
            self.phase = progress.phase;
            debug!("git: {}", self.phase);
        }
        for _ in 0..STEPS_PER_POLL {
            match self.fetch.poll() {
                Io::Done(result) => {
                    self.link = None;
                    return Some(result);
                }
                Io::Close => {
                    net.tcp(socket).abort();
                    self.link = None;
                }
                Io::ConnectSsh(cmd) => {
                    let target = self.link.is_none().then(|| ssh_target(&cmd, ssh));
                    if let Some(target) = target
                        && !self.open(net, socket, target)
                    {
                        continue;
                    }
                    if self.dial(net, now) {
                        return None;
                    }
                }
                Io::Connect {
                    host,
                    port,
                    tls: secure,
                } => {
                    let security = match (secure, tls) {
                        (false, _) => Ok(Security::Plain),
                        (true, Some(cfg)) => Ok(Security::Tls(cfg.clone())),
                        (true, None) => Err(String::from("no TLS client configuration")),
                    };
                    let target = security.map(|security| Target {
                        host: host.into(),
                        port,
                        security,
                    });
                    if self.link.is_none() && !self.open(net, socket, target) {
                        continue;
                    }
                    if self.dial(net, now) {
                        return None;
                    }
                }
                Io::Send(bytes) => {
                    let Some(stream) = self.link.as_mut().and_then(Dial::stream) else {
                        self.fetch.transport_error("connection lost");
                        continue;
                    };
                    let n = match stream.write(net, bytes) {
                        Ok(n) => n,
                        Err(e) => {
                            self.fetch.transport_error(e.to_string());
                            continue;
                        }
                    };
                    if !stream.is_open(net) {
                        self.fetch
                            .transport_error("connection closed by the remote while sending");
                        continue;
                    }
                    if n == 0 {
                        return None;
                    }
                    self.fetch.sent(n);
                    self.active = now;
                }
                Io::Receive => {
                    let Some(stream) = self.link.as_mut().and_then(Dial::stream) else {
                        self.fetch.transport_error("connection lost");
                        continue;
                    };
                    if let Err(e) = stream.exchange(net) {
                        self.fetch.transport_error(e.to_string());
                        continue;
                    }
                    let fetch = &mut self.fetch;
                    let got = stream.read(net, |bytes| {
                        fetch.received(bytes);
                        bytes.len()
                    });
                    if got > 0 {
                        self.active = now;
                    } else if stream.peer_done(net) {
                        self.fetch.peer_closed();
                    } else {
                        return None;
                    }
                }
            }
        }
        None
    }
}

/// The client key for ssh remotes: `--ssh-key`, else an OpenSSH private
/// key file in the `--ssh-key-region` region.
fn ssh_key<P: Platform>(cfg: &Config, p: &P) -> Result<Option<unipi_ssh::Ed25519Key>, String> {
    if let Some(key) = &cfg.ssh_key {
        return Ok(Some(key.clone()));
    }
    let Some(region) = &cfg.ssh_key_region else {
        return Ok(None);
    };
    let bytes = p
        .region(region)
        .ok_or_else(|| format!("--ssh-key-region: no memory region '{region}'"))?;
    unipi_ssh::parse_openssh_private_key(bytes)
        .map(Some)
        .map_err(|e| format!("--ssh-key-region '{region}': {e}"))
}

/// Turns a verified snapshot into a site: blobs become files (ETag = blob
/// id, Last-Modified = commit time), symlinks become redirects.
pub fn to_site(snapshot: &Snapshot, limits: &SiteLimits) -> Result<Site, String> {
    let time = u64::try_from(snapshot.commit_time).unwrap_or(0);
    let mut b = SiteBuilder::new(*limits);
    for f in &snapshot.files {
        let r = match f.kind {
            FileKind::Regular | FileKind::Executable => b.add_file(
                &f.path,
                Body::Shared(f.data.clone()),
                *f.oid.as_bytes(),
                time,
                f.kind == FileKind::Executable,
            ),
            FileKind::Symlink => match core::str::from_utf8(&f.data) {
                Ok(target) => b.add_redirect(&f.path, target),
                Err(_) => {
                    warn!("git: symlink {} has a non-UTF-8 target; skipped", f.path);
                    continue;
                }
            },
        };
        if let Err(e) = r {
            return Err(format!("{}: {e}", f.path));
        }
    }
    let commit = snapshot.commit.to_string();
    b.finish(SiteMeta {
        source: format!("git {commit}"),
        commit: Some(commit),
        last_modified: Some(time),
    })
    .map_err(|e| e.to_string())
}

/// Where an ssh remote's `git-upload-pack` runs, as the transport dials it.
fn ssh_target(cmd: &unipi_git::SshCommand<'_>, ssh: &SshClients) -> Result<Target, String> {
    let Some(key) = &ssh.key else {
        return Err(String::from(
            "ssh remotes need a client key: set --ssh-key or --ssh-key-region",
        ));
    };
    let config = unipi_ssh::Config {
        user: cmd.user.into(),
        key: key.clone(),
        host_key_pin: ssh.authenticator,
        command: cmd.command.into(),
        env: cmd
            .env
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        limits: unipi_ssh::Limits::default(),
    };
    Ok(Target {
        host: cmd.host.into(),
        port: cmd.port,
        security: Security::Ssh(Box::new(config)),
    })
}
