//! Logs off the box: RFC 5424 syslog over UDP (RFC 5426) or TCP (RFC 6587
//! octet counting) to `--syslog`.
//!
//! - [`target`]: the `--syslog` value;
//! - [`message`]: one RFC 5424 message, and the TCP framing;
//! - [`queue`]: messages waiting for the transport, bounded;
//! - here: [`Syslog`], which formats access records and log records into
//!   the queue and moves the queue to the network from the event loop.
//!
//! # Never in the way of serving
//!
//! Formatting a message costs one bounded copy into the [`queue::Queue`];
//! what does not fit there is dropped and counted
//! ([`SyslogStats::dropped`]). Sending never waits: each event-loop
//! iteration hands the network what its socket accepts and leaves the
//! rest queued. A TCP connection that fails or closes is retried after 4 s,
//! doubling up to 60 s (reset once a connection has stayed up 10 s); while
//! it is down, messages queue up to the queue's limits, then are dropped.
//! A SYN or datagram that cannot leave within 0.9 s (the collector's
//! address gets no ARP answer) ends the attempt the same way, so that a
//! dead collector never holds smoltcp's one ARP request per second that
//! every client connection may need (`LEAVE_TIMEOUT`).
//!
//! Over TCP, RFC 6587 has no acknowledgements: messages still in the
//! socket when a connection breaks are lost (counted as sent).

pub mod message;
pub mod queue;
pub mod target;

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use log::{info, warn};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use self::message::{Facility, Header, Severity, octet_count_prefix};
use self::queue::{Queue, QueueLimits};
use self::target::{Host, SyslogTarget, Transport};
use crate::net::{Answer, Lookup, Net, UdpBuffers};
use crate::observe::access::AccessRecord;
use crate::transport::{Dial, DialStatus, Security, Target};

/// Largest message over TCP (RFC 5425 §4.3.1 asks receivers for 2 KiB).
pub const TCP_MAX_MESSAGE: usize = 2048;
/// Largest message over UDP: what fits one unfragmented datagram on a
/// 1500-byte MTU (the network stack does not fragment IPv4).
pub const UDP_MAX_MESSAGE: usize = 1500 - 20 - 8;
/// First retry delay; it doubles up to [`MAX_BACKOFF`]. Not shorter: each
/// attempt at a dead collector takes the interface's ARP slot for a second
/// (see [`LEAVE_TIMEOUT`]).
const FIRST_BACKOFF: Duration = Duration::from_secs(4);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A TCP connection that lasted this long resets the retry delay.
const STABLE: Duration = Duration::from_secs(10);
/// A TCP connection (name lookup and handshake) may take this long.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// A SYN, or a datagram, may wait this long to leave. smoltcp sends at
/// most one ARP request per second for the whole interface; a collector
/// on the local network that never answers ARP would take every one of
/// them, and connections from clients whose address is not cached (yet,
/// or any more: entries last a minute) would not be answered. So one ARP
/// request per attempt (smoltcp asks again after a second), then the slot
/// is free until the next attempt.
const LEAVE_TIMEOUT: Duration = Duration::from_millis(900);
/// Data unacknowledged this long ends a TCP connection.
const TCP_TIMEOUT: Duration = Duration::from_secs(30);
/// TCP socket buffers: the send buffer holds several whole messages.
const TCP_RX: usize = 1024;
const TCP_TX: usize = 16 * 1024;
/// UDP socket buffers (datagrams, bytes); nothing is expected in.
const UDP_BUFFERS: UdpBuffers = UdpBuffers {
    rx: (1, 64),
    tx: (16, 16 * 1024),
};

/// Counters (for the metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyslogStats {
    /// Messages queued now, and their bytes.
    pub queued: usize,
    /// Bytes of the queued messages.
    pub queued_bytes: usize,
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages dropped (queue full).
    pub dropped: u64,
    /// Messages cut to the size limit.
    pub truncated: u64,
    /// Messages lost in the socket (a datagram that could not leave).
    pub lost: u64,
    /// TCP connections made.
    pub connects: u64,
    /// The transport can carry messages now (TCP connected; UDP: the
    /// collector's address is known).
    pub up: bool,
}

/// Where the transport is.
enum Link {
    /// Waiting until `at` to start (again).
    Idle { at: Instant },
    /// UDP: looking up the collector's name.
    Resolving(Lookup),
    /// UDP: sending to the collector; `stuck`: since when datagrams wait
    /// in the socket, `waiting`: how many were handed to it since it was
    /// last empty.
    Udp {
        ep: IpEndpoint,
        stuck: Option<Instant>,
        waiting: u64,
    },
    /// TCP: looking up, connecting; started at `since`, SYN sent at `syn`.
    Dialing {
        dial: Dial,
        since: Instant,
        syn: Option<Instant>,
    },
    /// TCP: connected at `since`.
    Open { dial: Dial, since: Instant },
}

/// The settings of a [`Syslog`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogConfig {
    /// The collector.
    pub target: SyslogTarget,
    /// The facility of every message.
    pub facility: Facility,
    /// HOSTNAME; `None`: the interface's address.
    pub hostname: Option<String>,
    /// Queue limits.
    pub limits: QueueLimits,
}

/// See the module documentation.
pub struct Syslog {
    cfg: SyslogConfig,
    /// HOSTNAME as written, and the address it was made from.
    hostname: String,
    address: Option<Ipv4Address>,
    queue: Queue,
    link: Link,
    socket: Option<SocketHandle>,
    backoff: Duration,
    /// A failure was reported since the last success (one warning each).
    failing: bool,
    max_message: usize,
    scratch: Vec<u8>,
    stats: SyslogStats,
}

impl Syslog {
    /// A sender for `cfg`; it starts at the first [`Syslog::poll`].
    pub fn new(cfg: SyslogConfig) -> Syslog {
        let max_message = match cfg.target.transport {
            Transport::Udp => UDP_MAX_MESSAGE,
            Transport::Tcp => TCP_MAX_MESSAGE,
        };
        info!(
            "syslog: sending access lines, warnings and errors to {} (RFC 5424, {})",
            cfg.target,
            match cfg.target.transport {
                Transport::Udp => "one message per datagram",
                Transport::Tcp => "octet-counted",
            }
        );
        Syslog {
            hostname: cfg.hostname.clone().unwrap_or_else(|| "-".to_string()),
            address: None,
            queue: Queue::new(cfg.limits),
            link: Link::Idle { at: Instant::ZERO },
            socket: None,
            backoff: FIRST_BACKOFF,
            failing: false,
            max_message,
            scratch: Vec::new(),
            stats: SyslogStats::default(),
            cfg,
        }
    }

    /// Counters.
    pub fn stats(&self) -> SyslogStats {
        SyslogStats {
            queued: self.queue.len(),
            queued_bytes: self.queue.bytes(),
            dropped: self.queue.dropped() + self.stats.lost,
            up: matches!(self.link, Link::Udp { .. } | Link::Open { .. }),
            ..self.stats
        }
    }

    /// Queues the access line of `record` (MSGID `access`, severity
    /// informational) at wall-clock time `unix`.
    pub fn access(&mut self, record: &AccessRecord, unix: u64) {
        self.enqueue(
            Severity::Informational,
            "access",
            unix,
            format_args!("{}", record.combined(unix)),
        );
    }

    /// Queues a log record (MSGID `log`) at wall-clock time `unix`.
    pub fn log(&mut self, level: log::Level, text: &str, unix: u64) {
        self.enqueue(level.into(), "log", unix, format_args!("{text}"));
    }

    fn enqueue(
        &mut self,
        severity: Severity,
        msgid: &'static str,
        unix: u64,
        msg: fmt::Arguments<'_>,
    ) {
        let header = Header {
            facility: self.cfg.facility,
            severity,
            unix,
            hostname: &self.hostname,
            msgid,
        };
        if message::format(&header, msg, self.max_message, &mut self.scratch) {
            self.stats.truncated += 1;
        }
        self.queue.push(&self.scratch);
    }

    /// When [`Syslog::poll`] must run again without network input.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.link {
            Link::Idle { at } => Some(*at),
            Link::Dialing { since, syn, .. } => {
                let dial = *since + DIAL_TIMEOUT;
                Some(syn.map_or(dial, |t| dial.min(t + LEAVE_TIMEOUT)))
            }
            Link::Udp { stuck: Some(t), .. } => Some(*t + LEAVE_TIMEOUT),
            _ => None,
        }
    }

    /// Moves the transport along and hands it what its socket accepts.
    pub fn poll(&mut self, net: &mut Net, now: Instant) {
        let link = core::mem::replace(&mut self.link, Link::Idle { at: now });
        self.link = match link {
            Link::Idle { at } if now < at => Link::Idle { at },
            Link::Idle { .. } => self.start(net, now),
            Link::Resolving(lookup) => match net.answer(lookup) {
                Answer::Pending(l) => Link::Resolving(l),
                // IPv6 first when the interface has a routable IPv6 address.
                Answer::Done(Ok(addrs)) => match addrs.first() {
                    Some(&ip) => {
                        self.failing = false;
                        info!("syslog: {} is {ip}", self.cfg.target.host);
                        Link::Udp {
                            ep: IpEndpoint::new(ip, self.cfg.target.port),
                            stuck: None,
                            waiting: 0,
                        }
                    }
                    None => self.retry(now, format_args!("cannot resolve: no address")),
                },
                Answer::Done(Err(e)) => self.retry(now, format_args!("cannot resolve: {e}")),
            },
            Link::Udp { ep, stuck, waiting } => self.send_udp(net, now, ep, stuck, waiting),
            Link::Dialing {
                mut dial,
                since,
                mut syn,
            } => match dial.poll(net) {
                Ok(DialStatus::Open) => {
                    self.stats.connects += 1;
                    self.failing = false;
                    info!("syslog: connected to {}", self.cfg.target);
                    self.send_tcp(net, dial, now, now)
                }
                Ok(DialStatus::Pending) => {
                    if let Some(h) = self.socket
                        && net.tcp(h).state() == tcp::State::SynSent
                    {
                        syn.get_or_insert(now);
                    }
                    if now >= since + DIAL_TIMEOUT || syn.is_some_and(|t| now >= t + LEAVE_TIMEOUT)
                    {
                        self.abort(net);
                        self.retry(now, format_args!("no connection"))
                    } else {
                        Link::Dialing { dial, since, syn }
                    }
                }
                Err(e) => {
                    self.abort(net);
                    self.retry(now, format_args!("{e}"))
                }
            },
            Link::Open { dial, since } => self.send_tcp(net, dial, since, now),
        };
    }

    /// The HOSTNAME follows the interface's address unless `--name` or
    /// `--hostname` fixed it; call before queuing.
    pub fn update_hostname(&mut self, net: &Net) {
        if self.cfg.hostname.is_some() {
            return;
        }
        let address = net.ipv4().map(|c| c.address());
        if address != self.address {
            self.address = address;
            self.hostname = address.map_or_else(|| "-".to_string(), |a| a.to_string());
        }
    }

    fn start(&mut self, net: &mut Net, now: Instant) -> Link {
        let target = &self.cfg.target;
        match target.transport {
            Transport::Udp => {
                let h = *self.socket.get_or_insert_with(|| net.add_udp(UDP_BUFFERS));
                if !net.udp(h).is_open()
                    && let Err(e) = net.bind_udp(h)
                {
                    return self.retry(now, format_args!("{e}"));
                }
                match &target.host {
                    Host::Ip(ip) => Link::Udp {
                        ep: IpEndpoint::new(IpAddress::Ipv4(*ip), target.port),
                        stuck: None,
                        waiting: 0,
                    },
                    Host::Name(name) => match net.resolve(name) {
                        Ok(l) => Link::Resolving(l),
                        Err(e) => self.retry(now, format_args!("cannot resolve: {e}")),
                    },
                }
            }
            Transport::Tcp => {
                let socket = *self
                    .socket
                    .get_or_insert_with(|| net.add_tcp(vec![0; TCP_RX], vec![0; TCP_TX]));
                let t = Target {
                    host: target.host.to_string(),
                    port: target.port,
                    security: Security::Plain,
                };
                match Dial::start(net, socket, t) {
                    Ok(dial) => {
                        net.tcp(socket).set_timeout(Some(TCP_TIMEOUT));
                        Link::Dialing {
                            dial,
                            since: now,
                            syn: None,
                        }
                    }
                    Err(e) => self.retry(now, format_args!("{e}")),
                }
            }
        }
    }

    /// Hands queued messages to the UDP socket; datagrams that cannot
    /// leave within [`LEAVE_TIMEOUT`] (no ARP answer) are dropped and the
    /// sender waits before trying again.
    fn send_udp(
        &mut self,
        net: &mut Net,
        now: Instant,
        ep: IpEndpoint,
        mut stuck: Option<Instant>,
        mut waiting: u64,
    ) -> Link {
        let Some(h) = self.socket else {
            return Link::Idle { at: now };
        };
        if net.udp(h).send_queue() == 0 {
            stuck = None;
            waiting = 0;
        } else if stuck.is_some_and(|t| now >= t + LEAVE_TIMEOUT) {
            // Closing drops what waits in the socket; `start` binds again.
            net.udp(h).close();
            self.stats.sent -= waiting.min(self.stats.sent);
            self.stats.lost += waiting;
            return self.retry(now, format_args!("datagrams cannot leave (no ARP answer?)"));
        } else {
            stuck.get_or_insert(now);
        }
        while self.queue.front(&mut self.scratch) {
            match net.udp(h).send_slice(&self.scratch, ep) {
                Ok(()) => {
                    self.stats.sent += 1;
                    waiting += 1;
                }
                // Full: the rest waits for the next poll.
                Err(udp::SendError::BufferFull) => break,
                // Cannot happen for a checked endpoint; never loop on it.
                Err(udp::SendError::Unaddressable) => self.stats.lost += 1,
            }
            self.queue.pop();
        }
        Link::Udp { ep, stuck, waiting }
    }

    /// Writes whole framed messages while the socket has room; ends the
    /// connection when the collector closed it.
    fn send_tcp(&mut self, net: &mut Net, mut dial: Dial, since: Instant, now: Instant) -> Link {
        let Some(stream) = dial.stream() else {
            self.abort(net);
            return self.retry(now, format_args!("connection lost"));
        };
        // The collector sends nothing; whatever comes is discarded.
        stream.read(net, |b| b.len());
        if !stream.is_open(net) || stream.peer_done(net) {
            if now >= since + STABLE {
                self.backoff = FIRST_BACKOFF;
            }
            self.abort(net);
            return self.retry(now, format_args!("the collector closed the connection"));
        }
        let mut prefix = [0u8; 21];
        while self.queue.front(&mut self.scratch) {
            let n = octet_count_prefix(self.scratch.len(), &mut prefix);
            let s = net.tcp(stream.socket());
            if s.send_capacity() - s.send_queue() < n + self.scratch.len() {
                break;
            }
            let wrote = stream
                .write(net, &prefix[..n])
                .and_then(|a| stream.write(net, &self.scratch).map(|b| a + b));
            if wrote != Ok(n + self.scratch.len()) {
                break;
            }
            self.queue.pop();
            self.stats.sent += 1;
        }
        Link::Open { dial, since }
    }

    /// Ends the TCP connection. A socket that never got an answer is
    /// dropped instead of aborted: smoltcp's abort leaves a RST to send,
    /// and a RST to an address without ARP answer would ask for it every
    /// second, for ever (see [`LEAVE_TIMEOUT`]). The next attempt makes a
    /// new socket.
    fn abort(&mut self, net: &mut Net) {
        let (Some(h), Transport::Tcp) = (self.socket, self.cfg.target.transport) else {
            return;
        };
        let s = net.tcp(h);
        if matches!(s.state(), tcp::State::SynSent | tcp::State::Closed) {
            net.remove_tcp(h);
            self.socket = None;
        } else {
            s.abort();
        }
    }

    /// Reports a failure (once until the next success) and waits before
    /// the next attempt.
    fn retry(&mut self, now: Instant, why: fmt::Arguments<'_>) -> Link {
        let delay = self.backoff;
        if !self.failing {
            self.failing = true;
            warn!(
                "syslog: {}: {why}; retrying in {} s (messages wait in the queue until it is full)",
                self.cfg.target,
                delay.secs()
            );
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Link::Idle { at: now + delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::access::{AccessRequest, Delivery};
    use alloc::string::ToString;

    fn syslog(transport: Transport, limits: QueueLimits) -> Syslog {
        Syslog::new(SyslogConfig {
            target: SyslogTarget {
                transport,
                host: Host::Ip(Ipv4Address::new(10, 0, 0, 1)),
                port: 514,
            },
            facility: Facility::default(),
            hostname: Some("muen.sk".to_string()),
            limits,
        })
    }

    /// Without a transport (never polled), messages queue up to the
    /// limits, then are dropped and counted; nothing blocks.
    #[test]
    fn a_full_queue_drops_and_counts() {
        let mut s = syslog(
            Transport::Tcp,
            QueueLimits {
                messages: 10,
                bytes: 64 * 1024,
            },
        );
        let mut q = AccessRequest::new(None, Instant::ZERO);
        q.set_request("GET", "/", "HTTP/1.1");
        let r = AccessRecord {
            request: q,
            status: 200,
            bytes: 10,
            body_bytes: 5,
            duration: Duration::from_millis(1),
            delivery: Delivery::Complete,
        };
        for _ in 0..25 {
            s.access(&r, 1_800_000_000);
        }
        let st = s.stats();
        assert_eq!((st.queued, st.dropped, st.sent, st.up), (10, 15, 0, false));
        assert!(st.queued_bytes > 10 * 60);
    }

    #[test]
    fn long_messages_are_cut_to_the_transport_limit() {
        for (transport, max) in [
            (Transport::Udp, UDP_MAX_MESSAGE),
            (Transport::Tcp, TCP_MAX_MESSAGE),
        ] {
            let mut s = syslog(transport, QueueLimits::default());
            s.log(log::Level::Error, &"x".repeat(5000), 1_800_000_000);
            s.log(log::Level::Warn, "short", 1_800_000_000);
            let st = s.stats();
            assert_eq!((st.queued, st.truncated), (2, 1));
            let mut out = Vec::new();
            assert!(s.queue.front(&mut out));
            assert_eq!(out.len(), max);
            assert!(out.starts_with(b"<131>1 2027-01-15T08:00:00Z muen.sk unipi - log - xxx"));
            assert!(out.ends_with(message::TRUNCATED.as_bytes()));
            s.queue.pop();
            assert!(s.queue.front(&mut out));
            assert_eq!(
                core::str::from_utf8(&out).unwrap(),
                "<132>1 2027-01-15T08:00:00Z muen.sk unipi - log - short"
            );
        }
    }
}
