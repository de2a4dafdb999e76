//! Shared pieces of the in-process tests (`app_in_process.rs`, `capacity.rs`,
//! `ipv6_in_process.rs`, `observe_in_process.rs`): a simulated Ethernet link between the application
//! and a second smoltcp stack, a real `git daemon` serving a one-file site,
//! a DNS responder for that stack, and a relay that copies bytes between a
//! smoltcp socket and a host TCP connection.

#![allow(dead_code)] // Each test file uses a different part.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;

pub type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of an in-memory Ethernet link.
pub struct Link {
    pub rx: Queue,
    pub tx: Queue,
}

impl Link {
    /// Both ends of a new link.
    pub fn pair() -> (Link, Link) {
        let a: Queue = Rc::default();
        let b: Queue = Rc::default();
        (
            Link {
                rx: a.clone(),
                tx: b.clone(),
            },
            Link { rx: b, tx: a },
        )
    }
}

pub struct Rx(Vec<u8>);
pub struct Tx(Queue);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        self.0.borrow_mut().push_back(buf);
        r
    }
}

impl Device for Link {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
        let frame = self.rx.borrow_mut().pop_front()?;
        Some((Rx(frame), Tx(self.tx.clone())))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx> {
        Some(Tx(self.tx.clone()))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
}

/// A child process killed and reaped when dropped.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .status()
        .expect("git is required (apt-get install git)");
    assert!(st.success(), "git {args:?}");
}

/// A temporary directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("unipi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A real `git daemon` on 127.0.0.1 serving `<dir>/site`, a repository with
/// one commit holding `index.html` = `page`.
pub struct GitDaemon {
    pub port: u16,
    _daemon: Reaped,
}

impl GitDaemon {
    pub fn start(dir: &Path, page: &[u8]) -> GitDaemon {
        let repo = dir.join("site");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::write(repo.join("index.html"), page).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-qm", "site"]);

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let exec_path = String::from_utf8(
            Command::new("git")
                .arg("--exec-path")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let daemon = Command::new(format!("{}/git-daemon", exec_path.trim()))
            .args([
                "--export-all",
                "--reuseaddr",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
            ])
            .arg(format!("--base-path={}", dir.display()))
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git-daemon");
        let daemon = Reaped(daemon);
        let t0 = StdInstant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < StdDuration::from_secs(10),
                "git daemon did not start"
            );
            std::thread::sleep(StdDuration::from_millis(20));
        }
        GitDaemon {
            port,
            _daemon: daemon,
        }
    }
}

/// DNS record types the responder knows.
pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;

/// Answers a DNS query `q` for `name` from `records` (A for IPv4, AAAA for
/// IPv6 entries; an empty answer, NODATA, when the name has none of the
/// asked type). Returns the question (name, type) and the response, or
/// None for any other name or type.
pub fn dns_answer(q: &[u8], name: &str, records: &[IpAddress]) -> Option<(String, u16, Vec<u8>)> {
    if q.len() < 12 || q[4..6] != [0, 1] {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    while i < q.len() && q[i] != 0 {
        let l = q[i] as usize;
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + l)?).into_owned());
        i += 1 + l;
    }
    let qtype = u16::from_be_bytes([*q.get(i + 1)?, *q.get(i + 2)?]);
    let qend = i + 5; // zero label + type + class
    let asked = labels.join(".");
    if asked != name || !matches!(qtype, TYPE_A | TYPE_AAAA) {
        return None;
    }
    let mut r = q.get(..qend)?.to_vec();
    r[2] = 0x81; // response, recursion desired
    r[3] = 0x80; // recursion available, no error
    let mut count = 0u16;
    for ip in records {
        match (qtype, ip) {
            (TYPE_A, IpAddress::Ipv4(a)) => {
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&a.octets());
            }
            (TYPE_AAAA, IpAddress::Ipv6(a)) => {
                r.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
                r.extend_from_slice(&a.octets());
            }
            _ => continue,
        }
        count += 1;
    }
    r[6..8].copy_from_slice(&count.to_be_bytes());
    Some((asked, qtype, r))
}

/// Copies bytes both ways between a smoltcp TCP socket and a host TCP
/// connection, and passes each side's end of stream on to the other.
pub struct Pipe {
    pub host: TcpStream,
    /// The host side sent everything (EOF seen, FIN passed on).
    host_done: bool,
    /// The smoltcp side sent everything (its FIN passed on).
    sock_done: bool,
}

impl Pipe {
    pub fn new(host: TcpStream) -> Pipe {
        host.set_nonblocking(true).unwrap();
        Pipe {
            host,
            host_done: false,
            sock_done: false,
        }
    }

    /// Moves what can move; returns true if any byte or end of stream did.
    pub fn pump(&mut self, s: &mut tcp::Socket) -> bool {
        let mut busy = false;
        let mut buf = [0u8; 16384];
        while s.can_recv() {
            let n = s.recv_slice(&mut buf).unwrap();
            self.host.set_nonblocking(false).unwrap();
            let ok = self.host.write_all(&buf[..n]).is_ok();
            self.host.set_nonblocking(true).unwrap();
            if !ok {
                s.abort();
                return true;
            }
            busy = true;
        }
        let peer_finished = matches!(
            s.state(),
            tcp::State::CloseWait
                | tcp::State::LastAck
                | tcp::State::Closing
                | tcp::State::TimeWait
                | tcp::State::Closed
        );
        if !self.sock_done && peer_finished {
            self.sock_done = true;
            let _ = self.host.shutdown(std::net::Shutdown::Write);
            busy = true;
        }
        while !self.host_done && s.may_send() && s.send_capacity() - s.send_queue() >= buf.len() {
            match self.host.read(&mut buf) {
                Ok(0) => {
                    self.host_done = true;
                    s.close();
                    busy = true;
                }
                Ok(n) => {
                    s.send_slice(&buf[..n]).unwrap();
                    busy = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    s.abort();
                    return true;
                }
            }
        }
        busy
    }

    /// Both directions are finished, or the connection is gone.
    pub fn finished(&self, s: &tcp::Socket) -> bool {
        !s.is_open() || self.host_done && self.sock_done
    }
}
