//! The whole application loop (`unipi::run`) in-process, on a simulated
//! Ethernet link to a second smoltcp stack that plays "the world": a DNS
//! server that answers `git.test`, a TCP relay from `git.test:9418` to a real
//! `git daemon` on 127.0.0.1, and an HTTP client. This covers what QEMU's
//! restricted network cannot: resolving the remote's host name.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use common::{Link, dns_answer, link_pair};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};
use unipi::platform::{HeapStats, Platform};

const WORLD_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const APP_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

/// The other side of the link.
struct World {
    iface: Interface,
    link: Link,
    sockets: SocketSet<'static>,
    dns: SocketHandle,
    relay_listen: SocketHandle,
    relay_to: u16,
    relay: Option<TcpStream>,
    client: SocketHandle,
    client_started: bool,
    attempts: u16,
    response: Vec<u8>,
    dns_answered: Vec<String>,
}

impl World {
    fn new(link: Link, git_port: u16) -> World {
        let mut link = link;
        let mut ic = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress([
            2, 0, 0, 0, 0, 1,
        ])));
        ic.random_seed = 7;
        let mut iface = Interface::new(ic, &mut link, Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv4(WORLD_IP), 24)).unwrap();
        });
        let mut sockets = SocketSet::new(vec![]);
        let udp_buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 4096]);
        let mut dns = udp::Socket::new(udp_buf(), udp_buf());
        dns.bind(53).unwrap();
        let dns = sockets.add(dns);
        let tcp_sock = || {
            tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 65536]),
                tcp::SocketBuffer::new(vec![0; 65536]),
            )
        };
        let mut l = tcp_sock();
        l.listen(9418).unwrap();
        let relay_listen = sockets.add(l);
        let client = sockets.add(tcp_sock());
        World {
            iface,
            link,
            sockets,
            dns,
            relay_listen,
            relay_to: git_port,
            relay: None,
            client,
            client_started: false,
            attempts: 0,
            response: Vec::new(),
            dns_answered: Vec::new(),
        }
    }

    /// Runs the world once; true if it did anything.
    fn step(&mut self, now: Instant) -> bool {
        let mut busy = self.iface.poll(now, &mut self.link, &mut self.sockets)
            == smoltcp::iface::PollResult::SocketStateChanged;
        // DNS: answer A queries for git.test.
        let s = self.sockets.get_mut::<udp::Socket>(self.dns);
        while let Ok((q, meta)) = s.recv() {
            let q = q.to_vec();
            if let Some((name, answer)) = dns_answer(&q, &[("git.test", WORLD_IP)]) {
                self.dns_answered.push(name);
                s.send_slice(&answer, meta.endpoint).unwrap();
                busy = true;
            }
        }
        // Relay git.test:9418 <-> git daemon on 127.0.0.1.
        let l = self.sockets.get_mut::<tcp::Socket>(self.relay_listen);
        if l.is_active() && self.relay.is_none() && l.state() == tcp::State::Established {
            let t = TcpStream::connect(("127.0.0.1", self.relay_to)).unwrap();
            t.set_nonblocking(true).unwrap();
            self.relay = Some(t);
        }
        if let Some(t) = &mut self.relay {
            let mut buf = [0u8; 16384];
            while l.can_recv() {
                let n = l.recv_slice(&mut buf).unwrap();
                t.set_nonblocking(false).unwrap();
                t.write_all(&buf[..n]).unwrap();
                t.set_nonblocking(true).unwrap();
                busy = true;
            }
            while l.send_capacity() - l.send_queue() >= buf.len() {
                match t.read(&mut buf) {
                    Ok(0) => {
                        l.close();
                        break;
                    }
                    Ok(n) => {
                        l.send_slice(&buf[..n]).unwrap();
                        busy = true;
                    }
                    Err(_) => break,
                }
            }
            if !l.is_open() {
                self.relay = None;
                l.listen(9418).unwrap();
            }
        }
        busy
    }

    /// Opens a new connection to the application's HTTP port.
    fn connect(&mut self) {
        self.attempts += 1;
        let ctx = self.iface.context();
        let c = self.sockets.get_mut::<tcp::Socket>(self.client);
        c.abort();
        c.connect(
            ctx,
            IpEndpoint::new(IpAddress::Ipv4(APP_IP), 80),
            50000 + self.attempts,
        )
        .unwrap();
        self.client_started = true;
        self.response.clear();
    }

    /// Drives the HTTP client; returns the response once the server closed.
    fn poll_client(&mut self, path: &str) -> Option<Vec<u8>> {
        let c = self.sockets.get_mut::<tcp::Socket>(self.client);
        if c.may_send() && c.send_queue() == 0 && self.response.is_empty() && !c.can_recv() {
            let req = format!("GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n");
            if c.send_slice(req.as_bytes()).is_ok() {
                self.response.push(0); // marker: request sent
            }
        }
        let mut buf = [0u8; 4096];
        while c.can_recv() {
            let n = c.recv_slice(&mut buf).unwrap();
            self.response.extend_from_slice(&buf[..n]);
        }
        if self.client_started && !c.may_recv() && self.response.len() > 1 {
            self.client_started = false;
            c.close();
            return Some(self.response[1..].to_vec());
        }
        None
    }
}

struct SimPlatform {
    now: Instant,
    app_link: Link,
    world: World,
    cmdline: String,
    stop: bool,
    result: Option<Vec<u8>>,
    deadline: StdInstant,
}

impl Platform for SimPlatform {
    type Device = Link;

    fn now(&mut self) -> Instant {
        self.now
    }
    fn unix_time(&mut self) -> u64 {
        1_800_000_000 + self.now.secs() as u64
    }
    fn fill_random(&mut self, buf: &mut [u8]) -> bool {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        true
    }
    fn cmdline(&self) -> &str {
        &self.cmdline
    }
    fn name(&self) -> &str {
        "unipi"
    }
    fn region(&self, _: &str) -> Option<&'static [u8]> {
        None
    }
    fn device(&mut self) -> Option<&mut Link> {
        Some(&mut self.app_link)
    }
    fn wait(&mut self, deadline: Instant) {
        // Let the world run; advance virtual time only when nothing moves.
        let mut busy = false;
        for _ in 0..4 {
            busy |= self.world.step(self.now);
        }
        if !busy && self.world.relay.is_none() {
            self.now = deadline.min(self.now + Duration::from_millis(50));
        } else if !busy {
            // Waiting for the real git daemon: a little real time passes.
            std::thread::sleep(StdDuration::from_millis(1));
            self.now += Duration::from_millis(1);
        }
        // Once the site is up, ask for the page.
        if self.now > Instant::from_secs(1) && !self.world.client_started && self.result.is_none() {
            self.world.connect();
        }
        if self.world.client_started
            && let Some(resp) = self.world.poll_client("/index.html")
            && resp.starts_with(b"HTTP/1.1 200")
        {
            self.result = Some(resp);
            self.stop = true;
        }
        if StdInstant::now() > self.deadline {
            self.stop = true;
        }
    }
    fn heap(&self) -> HeapStats {
        HeapStats::default()
    }
    fn running(&mut self) -> bool {
        !self.stop
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
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

#[test]
fn fetches_from_a_host_name_and_serves_it() {
    let tmp = std::env::temp_dir().join(format!("unipi-app-in-process-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let repo = tmp.join("site");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("index.html"), b"<h1>resolved and fetched</h1>\n").unwrap();
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
        .arg(format!("--base-path={}", tmp.display()))
        .arg(&tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git-daemon");
    let _daemon = Daemon(daemon);
    let t0 = StdInstant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < StdDuration::from_secs(10),
            "git daemon did not start"
        );
        std::thread::sleep(StdDuration::from_millis(20));
    }

    let (app_link, world_link) = link_pair();
    let mut p = SimPlatform {
        now: Instant::ZERO,
        app_link,
        world: World::new(world_link, port),
        cmdline: format!(
            "--ipv4={APP_IP}/24 --dns={WORLD_IP} --remote=git://git.test:9418/site --port=80"
        ),
        stop: false,
        result: None,
        deadline: StdInstant::now() + StdDuration::from_secs(60),
    };
    assert_eq!(unipi::run(&mut p), 0);
    let _ = std::fs::remove_dir_all(&tmp);

    assert_eq!(
        p.world.dns_answered,
        ["git.test"],
        "the remote's name was resolved through DNS"
    );
    let resp = p.result.expect("the page was served within 60 s");
    let text = String::from_utf8_lossy(&resp);
    assert!(text.ends_with("<h1>resolved and fetched</h1>\n"), "{text}");
    assert!(text.contains("\r\nETag: \""), "{text}");
}
