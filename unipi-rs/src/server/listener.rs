//! Listening sockets. smoltcp has no accept queue: an incoming SYN goes to
//! a socket in the `Listen` state, and that socket becomes the connection.
//! A [`Listener`] therefore keeps a *standby* set of listening sockets per
//! port — its backlog — and refills it on every poll, creating sockets (and
//! their buffers) on demand. A burst of connects is taken by the standby
//! sockets and refilled as they are accepted, instead of being reset.
//!
//! Buffers are fixed for a socket's life (smoltcp 0.14 cannot resize them),
//! so the size is chosen when a socket is armed, from the server's memory
//! budget ([`Buffers`]).

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use log::warn;
use rustls::ServerConfig;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};

use crate::http::Role;
use crate::net::Net;

/// A handshake (SYN received, final ACK missing) may take this long before
/// the socket is reset and listens again.
const SYN_TIMEOUT: Duration = Duration::from_secs(10);

/// Sizes of a socket's TCP buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffers {
    /// Receive buffer (the window offered to the client).
    pub rx: usize,
    /// Send buffer (bytes in flight).
    pub tx: usize,
}

impl Buffers {
    /// For bulk transfers while memory is plentiful.
    pub const GENEROUS: Buffers = Buffers {
        rx: 16 * 1024,
        tx: 32 * 1024,
    };
    /// For many mostly idle connections: a TLS record still arrives in a
    /// few windows (the TLS layer empties the receive buffer at every
    /// wake-up into its own, which grows only while it has to), a response
    /// still streams, at a lower rate (2 KiB in flight per round trip).
    /// 4 KiB + 4 KiB held 8,864 idle TLS connections in the default heap;
    /// 2 KiB + 2 KiB hold 10,000 with room to spare
    /// (unipi-rs/tests/capacity.rs, docs/bench.md).
    pub const LEAN: Buffers = Buffers {
        rx: 2 * 1024,
        tx: 2 * 1024,
    };
}

struct Standby {
    socket: SocketHandle,
    buffers: Buffers,
    /// When the socket left `Listen` (SYN received).
    since: Instant,
}

/// A socket that completed the TCP handshake.
pub(super) struct Accepted {
    pub socket: SocketHandle,
    pub buffers: Buffers,
    /// Index of the listener it came from.
    pub listener: usize,
}

/// One listening port.
pub(super) struct Listener {
    /// The TCP port.
    pub port: u16,
    /// What it serves.
    pub role: Role,
    /// TLS, on the HTTPS port.
    pub tls: Option<Arc<ServerConfig>>,
    /// Sockets kept in `Listen`.
    pub backlog: usize,
    /// Sockets in `Listen` (or closed, waiting to listen again).
    listening: Vec<(SocketHandle, Buffers)>,
    /// Sockets that received a SYN: mid-handshake, or done and not yet
    /// harvested.
    pending: Vec<Standby>,
    /// Sockets aborted in this poll: they listen again at the next one,
    /// once the interface has sent their RST (`listen()` forgets the peer,
    /// and with it the pending reset).
    resetting: Vec<SocketHandle>,
}

impl Listener {
    /// A port with `backlog` listening sockets (armed by [`Listener::replenish`]).
    pub fn new(port: u16, role: Role, tls: Option<Arc<ServerConfig>>, backlog: usize) -> Self {
        Listener {
            port,
            role,
            tls,
            backlog: backlog.max(1),
            listening: Vec::new(),
            pending: Vec::new(),
            resetting: Vec::new(),
        }
    }

    /// Sockets mid-handshake or listening.
    pub fn standby(&self) -> usize {
        self.listening.len() + self.pending.len()
    }

    /// Keeps `backlog` sockets listening: sockets that received a SYN move
    /// to the pending set, and new sockets with `buffers` take their place,
    /// as long as the standby sockets stay within `limit`. Cheap (it looks
    /// at the listening sockets only), so the interface calls it after
    /// every packet that changed a socket's state: a burst of SYNs within
    /// one poll finds listening sockets as long as `limit` allows.
    pub fn replenish(&mut self, net: &mut Net, now: Instant, buffers: Buffers, limit: usize) {
        let mut i = 0;
        while i < self.listening.len() {
            let (socket, b) = self.listening[i];
            match net.tcp(socket).state() {
                tcp::State::Listen | tcp::State::Closed | tcp::State::TimeWait => i += 1,
                _ => {
                    self.listening.swap_remove(i);
                    self.pending.push(Standby {
                        socket,
                        buffers: b,
                        since: now,
                    });
                }
            }
        }
        while self.listening.len() < self.backlog && self.standby() < limit {
            let socket = net.add_tcp(vec![0; buffers.rx], vec![0; buffers.tx]);
            let s = net.tcp(socket);
            s.set_nagle_enabled(false);
            s.set_ack_delay(None);
            if s.listen(self.port).is_err() {
                warn!("cannot listen on port {}", self.port);
                net.remove_tcp(socket);
                break;
            }
            self.listening.push((socket, buffers));
        }
    }

    /// Moves the pending sockets that completed a handshake into `into`
    /// (marked as coming from listener `index`);
    /// resets handshakes older than [`SYN_TIMEOUT`] and lets closed
    /// sockets listen again (the RSTs of the previous poll are out).
    pub fn harvest(&mut self, net: &mut Net, now: Instant, index: usize, into: &mut Vec<Accepted>) {
        let resetting = core::mem::take(&mut self.resetting);
        for &(socket, _) in &self.listening {
            if resetting.contains(&socket) {
                continue;
            }
            let s = net.tcp(socket);
            if s.state() == tcp::State::TimeWait {
                s.abort();
            }
            if s.state() == tcp::State::Closed && s.listen(self.port).is_err() {
                warn!("cannot listen on port {}", self.port);
            }
        }
        let mut i = 0;
        while i < self.pending.len() {
            let p = &self.pending[i];
            let s = net.tcp(p.socket);
            match s.state() {
                tcp::State::SynReceived if now < p.since + SYN_TIMEOUT => i += 1,
                tcp::State::SynReceived
                | tcp::State::Listen
                | tcp::State::Closed
                | tcp::State::TimeWait => {
                    // Timed out, or back to listening after a RST.
                    if s.state() == tcp::State::SynReceived {
                        s.abort();
                        self.resetting.push(p.socket);
                    }
                    let p = self.pending.swap_remove(i);
                    self.listening.push((p.socket, p.buffers));
                }
                _ => {
                    let p = self.pending.swap_remove(i);
                    into.push(Accepted {
                        socket: p.socket,
                        buffers: p.buffers,
                        listener: index,
                    });
                }
            }
        }
    }
}
