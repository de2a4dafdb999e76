//! IPv6 end to end, in-process: the whole application loop (`unipi::run`)
//! on a simulated Ethernet link to a second smoltcp stack that plays an
//! IPv6 (and IPv4) network. QEMU's user network in Debian 12 (QEMU 7.2)
//! cannot forward a host IPv6 port to the guest, so this is where IPv6 is
//! tested with real peers:
//!
//! - **curl -6** on the host fetches `https://[::1]:PORT/` and
//!   `http://[::1]:PORT/`; the world accepts those connections on `[::1]`
//!   and relays each over IPv6 to the application's address (ports 4433 and
//!   80), so the TLS handshake, the certificate check (`IP:::1`) and the
//!   redirect's `Host: [::1]:8080` are curl's own;
//! - a real **git daemon** on 127.0.0.1 serves the site; the world relays
//!   `git.test:9418` to it and records which address the application came
//!   from;
//! - the world's DNS server answers A and AAAA for `git.test` and records
//!   the questions; it is reached over IPv6 (`--dns=2001:db8::1`);
//! - for SLAAC, the world answers router solicitations with a router
//!   advertisement for 2001:db8::/64;
//! - a remote given as an IPv6 literal (`git://[2001:db8::1]:9418/site`)
//!   needs no DNS.

mod common;

use std::collections::VecDeque;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use common::{GitDaemon, Link, Pipe, Reaped, TYPE_A, TYPE_AAAA, TempDir, dns_answer};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, HardwareAddress, Icmpv6Packet,
    Icmpv6Repr, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, IpProtocol, Ipv4Address,
    Ipv6Address, Ipv6Packet, Ipv6Repr, NdiscPrefixInfoFlags, NdiscPrefixInformation, NdiscRepr,
    NdiscRouterFlags,
};
use unipi::net::{link_local, mac_from_name};
use unipi::platform::{HeapStats, Platform};

const WORLD_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const WORLD_V4: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const APP_V4: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const WORLD_V6: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const APP_V6: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const PREFIX: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0);
const GIT_PORT: u16 = 9418;
const PAGE: &[u8] = b"<h1>over IPv6</h1>\n";

/// The address SLAAC gives the application: PREFIX and the interface
/// identifier of its link-local address (both from its MAC).
fn slaac_address() -> Ipv6Address {
    let ll = link_local(mac_from_name("unipi")).address().octets();
    let mut a = PREFIX.octets();
    a[8..].copy_from_slice(&ll[8..]);
    Ipv6Address::from(a)
}

/// What the world does.
struct Setup {
    /// Answer router solicitations with an advertisement of 2001:db8::/64.
    advertise: bool,
    /// Accept Git connections on IPv6 too (else only on WORLD_V4: an IPv6
    /// SYN to port 9418 is answered with a reset).
    git_on_v6: bool,
    /// The application's IPv6 address the host relays connect to.
    app: Ipv6Address,
    /// The addresses the DNS server gives for git.test.
    records: Vec<IpAddress>,
    /// The host of the application's `--remote` (`git.test`, or a literal).
    remote_host: &'static str,
}

/// The other side of the link.
struct World {
    setup: Setup,
    iface: Interface,
    link: Link,
    sockets: SocketSet<'static>,
    dns: SocketHandle,
    git_listen: SocketHandle,
    git_to: u16,
    git: Option<Pipe>,
    /// Where each Git connection came from.
    git_peers: Vec<IpEndpoint>,
    /// IPv6 SYNs to port 9418 seen on the link.
    git_v6_syns: usize,
    /// Router solicitations seen on the link.
    solicitations: usize,
    /// (name, type) of every DNS question answered.
    dns_asked: Vec<(String, u16)>,
    https: TcpListener,
    http: TcpListener,
    relays: Vec<(SocketHandle, Pipe)>,
    next_port: u16,
}

fn tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 65536]),
        tcp::SocketBuffer::new(vec![0; 65536]),
    )
}

impl World {
    fn new(link: Link, git_to: u16, setup: Setup) -> World {
        let mut link = link;
        let mut ic = IfaceConfig::new(HardwareAddress::Ethernet(WORLD_MAC));
        ic.random_seed = 7;
        let mut iface = Interface::new(ic, &mut link, Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::Ipv6(link_local(WORLD_MAC))).unwrap();
            a.push(IpCidr::new(IpAddress::Ipv6(WORLD_V6), 64)).unwrap();
            a.push(IpCidr::new(IpAddress::Ipv4(WORLD_V4), 24)).unwrap();
        });
        let mut sockets = SocketSet::new(vec![]);
        let udp_buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 4096]);
        let mut dns = udp::Socket::new(udp_buf(), udp_buf());
        dns.bind(53).unwrap();
        let dns = sockets.add(dns);
        let git_listen = sockets.add(tcp_socket());
        let listen = |port| {
            let l = TcpListener::bind(("::1", port)).expect("an IPv6 loopback address (::1)");
            l.set_nonblocking(true).unwrap();
            l
        };
        let mut w = World {
            setup,
            iface,
            link,
            sockets,
            dns,
            git_listen,
            git_to,
            git: None,
            git_peers: Vec::new(),
            git_v6_syns: 0,
            solicitations: 0,
            dns_asked: Vec::new(),
            https: listen(0),
            http: listen(0),
            relays: Vec::new(),
            next_port: 50000,
        };
        w.listen_git();
        w
    }

    fn listen_git(&mut self) {
        let ep = if self.setup.git_on_v6 {
            IpListenEndpoint::from(GIT_PORT)
        } else {
            IpListenEndpoint {
                addr: Some(IpAddress::Ipv4(WORLD_V4)),
                port: GIT_PORT,
            }
        };
        self.sockets
            .get_mut::<tcp::Socket>(self.git_listen)
            .listen(ep)
            .unwrap();
    }

    fn port(l: &TcpListener) -> u16 {
        l.local_addr().unwrap().port()
    }

    /// Looks at the frames the application sent before the stack takes
    /// them: counts router solicitations (answering each with an
    /// advertisement when set up to) and IPv6 SYNs to the Git port.
    fn sniff(&mut self) {
        let mut advertise = 0;
        for f in self.link.rx.borrow().iter() {
            if f.get(12..14) != Some(&[0x86, 0xdd]) {
                continue;
            }
            match (f.get(20), f.get(54)) {
                (Some(58), Some(133)) => {
                    self.solicitations += 1;
                    advertise += 1;
                }
                (Some(6), _) => {
                    let dst_port = f.get(56..58).map(|p| u16::from_be_bytes([p[0], p[1]]));
                    let syn = f.get(67).is_some_and(|flags| flags & 0x12 == 0x02);
                    if dst_port == Some(GIT_PORT) && syn {
                        self.git_v6_syns += 1;
                    }
                }
                _ => {}
            }
        }
        if self.setup.advertise {
            for _ in 0..advertise {
                let ra = router_advert();
                self.link.tx.borrow_mut().push_back(ra);
            }
        }
    }

    /// Runs the world once; true if it did anything.
    fn step(&mut self, now: Instant) -> bool {
        self.sniff();
        let mut busy = self.iface.poll(now, &mut self.link, &mut self.sockets)
            == smoltcp::iface::PollResult::SocketStateChanged;
        let s = self.sockets.get_mut::<udp::Socket>(self.dns);
        while let Ok((q, meta)) = s.recv() {
            let q = q.to_vec();
            if let Some((name, qtype, answer)) = dns_answer(&q, "git.test", &self.setup.records) {
                self.dns_asked.push((name, qtype));
                s.send_slice(&answer, meta.endpoint).unwrap();
                busy = true;
            }
        }
        // git.test:9418 <-> git daemon on 127.0.0.1.
        let l = self.sockets.get_mut::<tcp::Socket>(self.git_listen);
        if self.git.is_none() && l.state() == tcp::State::Established {
            self.git_peers.extend(l.remote_endpoint());
            let t = TcpStream::connect(("127.0.0.1", self.git_to)).unwrap();
            self.git = Some(Pipe::new(t));
        }
        let mut relisten = false;
        if let Some(pipe) = &mut self.git {
            busy |= pipe.pump(l);
            relisten = pipe.finished(l) && !l.is_open();
        }
        if relisten {
            self.git = None;
            self.listen_git();
        }
        // [::1]:PORT (curl) -> the application's IPv6 address, 4433 or 80.
        for (listener, app_port) in [(&self.https, 4433), (&self.http, 80)] {
            while let Ok((host, _)) = listener.accept() {
                let mut sock = tcp_socket();
                self.next_port += 1;
                sock.connect(
                    self.iface.context(),
                    IpEndpoint::new(IpAddress::Ipv6(self.setup.app), app_port),
                    self.next_port,
                )
                .unwrap();
                let h = self.sockets.add(sock);
                self.relays.push((h, Pipe::new(host)));
                busy = true;
            }
        }
        let sockets = &mut self.sockets;
        self.relays.retain_mut(|(h, pipe)| {
            let s = sockets.get_mut::<tcp::Socket>(*h);
            busy |= pipe.pump(s);
            if pipe.finished(s) && matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait) {
                sockets.remove(*h);
                false
            } else {
                true
            }
        });
        busy
    }

    /// Connections to real processes are open: time has to pass for them.
    fn waits_for_the_host(&self) -> bool {
        self.git.is_some() || !self.relays.is_empty()
    }
}

/// A router advertisement from the world's link-local address to all
/// nodes: default router for 30 minutes, prefix 2001:db8::/64 for SLAAC.
fn router_advert() -> Vec<u8> {
    let src = link_local(WORLD_MAC).address();
    let all_nodes = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        hop_limit: 64,
        flags: NdiscRouterFlags::empty(),
        router_lifetime: Duration::from_secs(1800),
        reachable_time: Duration::ZERO,
        retrans_time: Duration::ZERO,
        lladdr: Some(WORLD_MAC.into()),
        mtu: Some(1500),
        prefix_info: Some(NdiscPrefixInformation {
            prefix_len: 64,
            flags: NdiscPrefixInfoFlags::ON_LINK | NdiscPrefixInfoFlags::ADDRCONF,
            valid_lifetime: Duration::from_secs(86400),
            preferred_lifetime: Duration::from_secs(14400),
            prefix: PREFIX,
        }),
    });
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: all_nodes,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    };
    let eth = EthernetRepr {
        src_addr: WORLD_MAC,
        dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut buf = vec![0; eth.buffer_len() + ip.buffer_len() + icmp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet);
    icmp.emit(
        &src,
        &all_nodes,
        &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// One curl run on the host.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fetch {
    /// `https://[::1]:PORT/index.html`, verified against the test CA.
    Page,
    /// `http://[::1]:PORT/a/b?c=1` with `Host: [::1]:8080`.
    Redirect,
}

struct SimPlatform {
    now: Instant,
    app_link: Link,
    world: World,
    cmdline: String,
    certs: PathBuf,
    tls_cert: &'static [u8],
    tls_key: &'static [u8],
    curl: Option<(Reaped, Fetch)>,
    todo: VecDeque<Fetch>,
    /// Status line and body (Page) or "code url" (Redirect) of each fetch.
    results: Vec<(Fetch, String)>,
    page_attempts: u32,
    /// Loop turns since the application last waited, and the most seen:
    /// virtual time only passes in `wait`, so an event loop that never
    /// idles (a deadline stuck in the past) would spin here.
    turns: u32,
    max_turns: u32,
    stop: bool,
    deadline: StdInstant,
}

impl SimPlatform {
    fn spawn(&self, f: Fetch) -> Reaped {
        let mut c = Command::new("curl");
        c.args(["-6", "--silent", "--show-error", "--max-time", "20"]);
        match f {
            Fetch::Page => c
                .arg("--cacert")
                .arg(self.certs.join("ca.pem"))
                .args(["--write-out", "\n%{http_code}"])
                .arg(format!(
                    "https://[::1]:{}/index.html",
                    World::port(&self.world.https)
                )),
            Fetch::Redirect => c
                .args(["--output", "/dev/null", "--header", "Host: [::1]:8080"])
                .args(["--write-out", "%{http_code} %{redirect_url}"])
                .arg(format!(
                    "http://[::1]:{}/a/b?c=1",
                    World::port(&self.world.http)
                )),
        };
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl is required (apt-get install curl)");
        Reaped(child)
    }

    /// Starts, finishes and retries the curl runs.
    fn drive_curl(&mut self) {
        if let Some((child, f)) = &mut self.curl {
            if child.0.try_wait().unwrap().is_none() {
                return;
            }
            let mut out = String::new();
            if let Some(mut o) = child.0.stdout.take() {
                o.read_to_string(&mut out).unwrap();
            }
            let f = *f;
            self.curl = None;
            // The site is served once the fetch is done: 503 until then.
            if f == Fetch::Page && !out.ends_with("\n200") && self.page_attempts < 100 {
                self.todo.push_front(f);
            } else {
                self.results.push((f, out));
            }
        }
        // Start once the application has fetched the site from Git.
        if self.world.git_peers.is_empty() || self.world.git.is_some() {
            return;
        }
        match self.todo.pop_front() {
            Some(f) => {
                if f == Fetch::Page {
                    self.page_attempts += 1;
                }
                self.curl = Some((self.spawn(f), f));
            }
            None => self.stop = true,
        }
    }
}

impl Platform for SimPlatform {
    type Device = Link;

    fn now(&mut self) -> Instant {
        self.now
    }
    fn unix_time(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
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
    fn region(&self, name: &str) -> Option<&'static [u8]> {
        match name {
            "tls_cert" => Some(self.tls_cert),
            "tls_key" => Some(self.tls_key),
            _ => None,
        }
    }
    fn device(&mut self) -> Option<&mut Link> {
        Some(&mut self.app_link)
    }
    fn wait(&mut self, deadline: Instant) {
        self.turns = 0;
        let mut busy = false;
        for _ in 0..4 {
            busy |= self.world.step(self.now);
        }
        self.drive_curl();
        if !busy && !self.world.waits_for_the_host() && self.curl.is_none() {
            // Nothing outside the simulation to wait for: skip ahead.
            self.now = deadline.min(self.now + Duration::from_millis(50));
        } else if !busy {
            // Waiting for git daemon or curl: a little real time passes.
            std::thread::sleep(StdDuration::from_millis(1));
            self.now += Duration::from_millis(1);
        }
        if StdInstant::now() > self.deadline {
            self.stop = true;
        }
    }
    fn heap(&self) -> HeapStats {
        HeapStats::default()
    }
    fn running(&mut self) -> bool {
        self.turns += 1;
        self.max_turns = self.max_turns.max(self.turns);
        !self.stop && self.turns < 100_000 && StdInstant::now() < self.deadline
    }
}

/// Runs the application with `cmdline` against a world set up as `setup`,
/// until both curl runs are done (or 90 s passed).
/// `name` keeps the temporary directories of tests running in parallel
/// apart.
fn run(name: &str, cmdline: &str, setup: Setup) -> (SimPlatform, Vec<(Fetch, String)>) {
    let tmp = TempDir::new(name);
    let git = GitDaemon::start(&tmp.0, PAGE);
    let certs = tmp.0.join("certs");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let st = Command::new(root.join("certs/gen-dev-cert.sh"))
        .arg(&certs)
        .stdout(Stdio::null())
        .status()
        .expect("openssl is required (apt-get install openssl)");
    assert!(st.success(), "certs/gen-dev-cert.sh failed");
    let read = |f: &str| -> &'static [u8] {
        Box::leak(std::fs::read(certs.join(f)).unwrap().into_boxed_slice())
    };
    let cmdline = format!(
        "{cmdline} --remote=git://{}:{GIT_PORT}/site --dns={WORLD_V6}",
        setup.remote_host
    );
    let (app_link, world_link) = Link::pair();
    let mut p = SimPlatform {
        now: Instant::ZERO,
        app_link,
        world: World::new(world_link, git.port, setup),
        cmdline,
        tls_cert: read("server.pem"),
        tls_key: read("server.key"),
        certs,
        curl: None,
        todo: VecDeque::from([Fetch::Page, Fetch::Redirect]),
        results: Vec::new(),
        page_attempts: 0,
        turns: 0,
        max_turns: 0,
        stop: false,
        deadline: StdInstant::now() + StdDuration::from_secs(90),
    };
    assert_eq!(unipi::run(&mut p), 0);
    assert!(
        p.max_turns < 1000,
        "the event loop ran {} turns without idling",
        p.max_turns
    );
    let results = std::mem::take(&mut p.results);
    (p, results)
}

/// Checks what curl got: the page over HTTPS, the redirect over HTTP.
fn check_curl(results: &[(Fetch, String)]) {
    let page = results.iter().find(|(f, _)| *f == Fetch::Page);
    let page = &page.expect("curl -6 fetched the page within 90 s").1;
    assert_eq!(
        page.as_bytes(),
        [PAGE, b"\n200"].concat(),
        "curl -6 https://[::1]/index.html"
    );
    let redirect = results.iter().find(|(f, _)| *f == Fetch::Redirect);
    let redirect = &redirect.expect("curl -6 fetched the redirect").1;
    assert_eq!(redirect, "301 https://[::1]:4433/a/b?c=1");
}

#[test]
fn static_ipv6_serves_curl_and_fetches_git_over_ipv6() {
    let (p, results) = run(
        "ipv6-static",
        &format!("--ipv4={APP_V4}/24 --ipv6={APP_V6}/64 --accept-router-advertisements=false"),
        Setup {
            advertise: false,
            git_on_v6: true,
            app: APP_V6,
            records: vec![IpAddress::Ipv4(WORLD_V4), IpAddress::Ipv6(WORLD_V6)],
            remote_host: "git.test",
        },
    );
    check_curl(&results);
    let w = &p.world;
    assert_eq!(w.solicitations, 0, "router advertisements are off");
    let mut asked = w.dns_asked.clone();
    asked.sort();
    assert_eq!(
        asked,
        [("git.test".into(), TYPE_A), ("git.test".into(), TYPE_AAAA)],
        "A and AAAA asked once each, over IPv6"
    );
    assert_eq!(
        w.git_peers.first().map(|e| e.addr),
        Some(IpAddress::Ipv6(APP_V6)),
        "dual stack prefers IPv6: {:?}",
        w.git_peers
    );
}

#[test]
fn slaac_address_from_a_router_advertisement() {
    let app = slaac_address();
    let (p, results) = run(
        "ipv6-slaac",
        "--ipv6-only=true",
        Setup {
            advertise: true,
            git_on_v6: true,
            app,
            records: vec![IpAddress::Ipv4(WORLD_V4), IpAddress::Ipv6(WORLD_V6)],
            remote_host: "git.test",
        },
    );
    check_curl(&results);
    let w = &p.world;
    assert!(w.solicitations >= 1, "the application asked for a router");
    assert_eq!(
        w.dns_asked,
        [("git.test".into(), TYPE_AAAA)],
        "IPv6 only: no A question"
    );
    assert_eq!(
        w.git_peers.first().map(|e| e.addr),
        Some(IpAddress::Ipv6(app)),
        "Git over the SLAAC address"
    );
}

#[test]
fn falls_back_to_ipv4_when_ipv6_is_refused() {
    let (p, results) = run(
        "ipv6-fallback",
        &format!("--ipv4={APP_V4}/24 --ipv6={APP_V6}/64"),
        Setup {
            advertise: false,
            git_on_v6: false,
            app: APP_V6,
            records: vec![IpAddress::Ipv6(WORLD_V6), IpAddress::Ipv4(WORLD_V4)],
            remote_host: "git.test",
        },
    );
    check_curl(&results);
    let w = &p.world;
    assert!(w.git_v6_syns >= 1, "IPv6 was tried first");
    assert_eq!(
        w.git_peers.first().map(|e| e.addr),
        Some(IpAddress::Ipv4(APP_V4)),
        "then IPv4: {:?}",
        w.git_peers
    );
}

#[test]
fn ipv6_literal_remote() {
    let (p, results) = run(
        "ipv6-literal",
        &format!("--ipv6={APP_V6}/64 --ipv6-only=true"),
        Setup {
            advertise: false,
            git_on_v6: true,
            app: APP_V6,
            records: vec![],
            remote_host: "[2001:db8::1]",
        },
    );
    check_curl(&results);
    let w = &p.world;
    assert!(w.dns_asked.is_empty(), "a literal needs no DNS");
    assert_eq!(
        w.git_peers.first().map(|e| e.addr),
        Some(IpAddress::Ipv6(APP_V6))
    );
}
