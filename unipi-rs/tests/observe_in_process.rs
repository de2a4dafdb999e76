//! Logs and metrics off the box, with the whole application loop
//! (`unipi::run`) in-process on a simulated link to a second smoltcp stack
//! ("the world"; see `app_in_process.rs`):
//!
//! - syslog over UDP to a name (`--syslog=udp://logs.test`): the world
//!   answers the DNS query and relays every datagram arriving on its port
//!   514 to a real rsyslog (Debian's `rsyslogd`, imudp on 127.0.0.1, started
//!   by the test with its own configuration, stopped by pid), which writes
//!   what it parsed to a file;
//! - the world's HTTP client makes a series of requests; every response
//!   must arrive at rsyslog as an RFC 5424 access line with its status and
//!   body bytes, and a boot-parameter warning as a `log` message;
//! - the last request scrapes `--metrics-port`; `promtool check metrics`
//!   (Debian's `prometheus`) validates the exposition, and its counters
//!   must match the responses the client received.

mod common;

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use common::{Link, dns_answer};
use smoltcp::iface::{Config as IfaceConfig, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};
use unipi::platform::{HeapStats, Platform};

const WORLD_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const APP_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const METRICS_PORT: u16 = 9100;
/// Wall clock of the simulated machine at boot.
const BOOT_UNIX: u64 = 1_800_000_000;

/// Warnings and errors the application logged, for `Platform::drain_log`
/// (what the subject runtime's console tap does on Muen).
static CAPTURED: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct TestLogger;

impl log::Log for TestLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        eprintln!("{}: {}", r.level(), r.args());
        if r.level() <= log::Level::Warn {
            CAPTURED
                .lock()
                .unwrap()
                .push((r.level(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static LOGGER: TestLogger = TestLogger;

/// A real rsyslogd with a UDP input on 127.0.0.1 and a file output that
/// keeps what it parsed of every message.
struct Rsyslog {
    child: Child,
    out: PathBuf,
    port: u16,
}

/// One message as rsyslog parsed it.
#[derive(Debug, Clone)]
struct Parsed {
    facility: u8,
    severity: u8,
    hostname: String,
    app: String,
    msgid: String,
    sd: String,
    msg: String,
    raw: String,
}

impl Rsyslog {
    fn start(dir: &Path) -> Rsyslog {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = dir.join("messages.log");
        let conf = dir.join("rsyslog.conf");
        fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{dir}")
module(load="imudp")
template(name="parsed" type="string"
         string="%syslogfacility%|%syslogseverity%|%hostname%|%app-name%|%msgid%|%structured-data%|%rawmsg%\n")
ruleset(name="unipi") {{ action(type="omfile" file="{out}" template="parsed") }}
input(type="imudp" address="127.0.0.1" port="{port}" ruleset="unipi")
"#,
                dir = dir.display(),
                out = out.display()
            ),
        )
        .unwrap();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd is required (apt-get install rsyslog)");
        let r = Rsyslog { child, out, port };
        // Ready once a probe comes out at the other end.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let t0 = StdInstant::now();
        while !r.messages().iter().any(|m| m.app == "probe") {
            assert!(
                t0.elapsed() < StdDuration::from_secs(15),
                "rsyslogd did not start"
            );
            probe
                .send_to(b"<14>1 - - probe - - - ready", ("127.0.0.1", port))
                .unwrap();
            std::thread::sleep(StdDuration::from_millis(100));
        }
        r
    }

    fn messages(&self) -> Vec<Parsed> {
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.splitn(7, '|').collect();
                let raw = *f.get(6)?;
                // RFC 5424: MSG follows the seven header fields (SD is `-`).
                let msg = raw.splitn(8, ' ').nth(7).unwrap_or("");
                Some(Parsed {
                    facility: f[0].parse().ok()?,
                    severity: f[1].parse().ok()?,
                    hostname: f[2].into(),
                    app: f[3].into(),
                    msgid: f[4].into(),
                    sd: f[5].into(),
                    msg: msg.into(),
                    raw: raw.into(),
                })
            })
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request the world's client makes and what came back.
struct Done {
    method: String,
    path: String,
    status: u16,
    body: Vec<u8>,
}

/// The other side of the link: DNS, the syslog relay, an HTTP client.
struct World {
    iface: Interface,
    link: Link,
    sockets: SocketSet<'static>,
    dns: SocketHandle,
    syslog_in: SocketHandle,
    relay: std::net::UdpSocket,
    rsyslog_port: u16,
    relayed: usize,
    client: SocketHandle,
    next_port: u16,
    /// (port, method, path, request bytes) still to make.
    plan: VecDeque<(u16, String, String, String)>,
    current: Option<(String, String, Vec<u8>, bool)>,
    done: Vec<Done>,
}

impl World {
    fn new(
        mut link: Link,
        rsyslog_port: u16,
        plan: VecDeque<(u16, String, String, String)>,
    ) -> World {
        let mut ic = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress([
            2, 0, 0, 0, 0, 1,
        ])));
        ic.random_seed = 11;
        let mut iface = Interface::new(ic, &mut link, Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv4(WORLD_IP), 24)).unwrap();
        });
        let mut sockets = SocketSet::new(vec![]);
        let udp_buf =
            || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 65536]);
        let mut dns = udp::Socket::new(udp_buf(), udp_buf());
        dns.bind(53).unwrap();
        let dns = sockets.add(dns);
        let mut syslog_in = udp::Socket::new(udp_buf(), udp_buf());
        syslog_in.bind(514).unwrap();
        let syslog_in = sockets.add(syslog_in);
        let client = sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 65536]),
            tcp::SocketBuffer::new(vec![0; 65536]),
        ));
        World {
            iface,
            link,
            sockets,
            dns,
            syslog_in,
            relay: std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            rsyslog_port,
            relayed: 0,
            client,
            next_port: 50000,
            plan,
            current: None,
            done: Vec::new(),
        }
    }

    /// Runs the world once; true if it did anything.
    fn step(&mut self, now: Instant) -> bool {
        let mut busy = self.iface.poll(now, &mut self.link, &mut self.sockets)
            == PollResult::SocketStateChanged;
        let s = self.sockets.get_mut::<udp::Socket>(self.dns);
        while let Ok((q, meta)) = s.recv() {
            let q = q.to_vec();
            if let Some((_, _, answer)) = dns_answer(&q, "logs.test", &[IpAddress::Ipv4(WORLD_IP)])
            {
                s.send_slice(&answer, meta.endpoint).unwrap();
                busy = true;
            }
        }
        let s = self.sockets.get_mut::<udp::Socket>(self.syslog_in);
        while let Ok((datagram, _)) = s.recv() {
            self.relay
                .send_to(datagram, ("127.0.0.1", self.rsyslog_port))
                .unwrap();
            self.relayed += 1;
            busy = true;
        }
        busy | self.drive_client()
    }

    /// One request per connection (`Connection: close`), in plan order.
    fn drive_client(&mut self) -> bool {
        if self.current.is_none() {
            let Some((port, method, path, request)) = self.plan.pop_front() else {
                return false;
            };
            self.next_port += 1;
            let ctx = self.iface.context();
            let c = self.sockets.get_mut::<tcp::Socket>(self.client);
            c.abort();
            c.connect(
                ctx,
                IpEndpoint::new(IpAddress::Ipv4(APP_IP), port),
                self.next_port,
            )
            .unwrap();
            self.current = Some((method, path, request.into_bytes(), false));
            return true;
        }
        let c = self.sockets.get_mut::<tcp::Socket>(self.client);
        let Some((_, _, request, sent)) = &mut self.current else {
            return false;
        };
        let mut busy = false;
        if !*sent && c.may_send() {
            c.send_slice(request).unwrap();
            request.clear();
            *sent = true;
            busy = true;
        }
        let mut buf = [0u8; 8192];
        while c.can_recv() {
            let n = c.recv_slice(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
            busy = true;
        }
        if *sent && !c.may_recv() && c.state() != tcp::State::SynSent {
            let (method, path, response, _) = self.current.take().unwrap();
            c.close();
            let split = response
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("a whole response");
            let head = String::from_utf8_lossy(&response[..split]).into_owned();
            let status = head.split(' ').nth(1).unwrap().parse().unwrap();
            self.done.push(Done {
                method,
                path,
                status,
                body: response[split + 4..].to_vec(),
            });
            busy = true;
        }
        busy
    }

    fn finished(&self) -> bool {
        self.plan.is_empty() && self.current.is_none()
    }
}

struct SimPlatform {
    now: Instant,
    app_link: Link,
    world: World,
    cmdline: String,
    site: &'static [u8],
    rsyslog: Rsyslog,
    /// Access lines rsyslog must have before the loop stops.
    want_access: usize,
    stop: bool,
    deadline: StdInstant,
}

impl Platform for SimPlatform {
    type Device = Link;

    fn now(&mut self) -> Instant {
        self.now
    }
    fn unix_time(&mut self) -> u64 {
        BOOT_UNIX + self.now.secs() as u64
    }
    fn fill_random(&mut self, buf: &mut [u8]) -> bool {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(41).wrapping_add(3);
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
        (name == "site").then_some(self.site)
    }
    fn device(&mut self) -> Option<&mut Link> {
        Some(&mut self.app_link)
    }
    fn wait(&mut self, deadline: Instant) {
        let mut busy = false;
        for _ in 0..4 {
            busy |= self.world.step(self.now);
        }
        if !busy {
            self.now = deadline.min(self.now + Duration::from_millis(50));
        }
        if self.world.finished() {
            // Real time for rsyslog to write what was relayed.
            std::thread::sleep(StdDuration::from_millis(20));
            let access = self
                .rsyslog
                .messages()
                .iter()
                .filter(|m| m.msgid == "access")
                .count();
            self.stop |= access >= self.want_access;
        }
        self.stop |= StdInstant::now() > self.deadline;
    }
    fn heap(&self) -> HeapStats {
        HeapStats::default()
    }
    fn drain_log(&mut self, sink: &mut dyn FnMut(log::Level, &str)) -> u64 {
        for (level, text) in CAPTURED.lock().unwrap().drain(..) {
            sink(level, &text);
        }
        0
    }
    fn running(&mut self) -> bool {
        !self.stop
    }
}

/// A ustar archive of a small site (the `site` region).
fn site_archive(dir: &Path) -> &'static [u8] {
    let root = dir.join("site");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("index.html"), b"<h1>observed</h1>\n").unwrap();
    fs::write(root.join("a.txt"), vec![b'a'; 1000]).unwrap();
    let tar = dir.join("site.tar");
    let st = Command::new("tar")
        .args(["--format=ustar", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    Box::leak(fs::read(&tar).unwrap().into_boxed_slice())
}

fn get(method: &str, target: &str, fields: &str) -> String {
    format!("{method} {target} HTTP/1.1\r\nHost: app.test\r\n{fields}Connection: close\r\n\r\n")
}

/// The value of the sample `name` (with its labels) in an exposition.
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn access_lines_and_warnings_reach_rsyslog_and_metrics_match() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    let dir = std::env::temp_dir().join(format!("unipi-observe-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let rsyslog = Rsyslog::start(&dir);

    let referer = r#"https://example.org/"q""#;
    let plan: VecDeque<_> = [
        (
            "GET",
            "/index.html",
            "/index.html",
            format!("User-Agent: curl/8.0\r\nReferer: {referer}\r\n"),
        ),
        ("GET", "/a.txt", "/a.txt", String::new()),
        ("HEAD", "/a.txt", "/a.txt", String::new()),
        ("GET", "/missing", "/missing", String::new()),
        (
            "GET",
            "/a.txt",
            "/a.txt",
            "Range: bytes=0-9\r\n".to_string(),
        ),
        ("GET", "/a.txt?token=secret", "/a.txt", String::new()),
    ]
    .into_iter()
    .map(|(m, target, path, fields)| (80, m.to_string(), path.to_string(), get(m, target, &fields)))
    .chain([(
        METRICS_PORT,
        "GET".to_string(),
        "/metrics".to_string(),
        get("GET", "/metrics", ""),
    )])
    .collect();
    let want_access = plan.len();

    let (app_link, world_link) = Link::pair();
    let mut p = SimPlatform {
        now: Instant::ZERO,
        app_link,
        world: World::new(world_link, rsyslog.port, plan),
        cmdline: format!(
            "--ipv4={APP_IP}/24 --dns={WORLD_IP} --port=80 --hostname=app.test --name=unipi-1.app.test \
             --syslog=udp://logs.test --metrics-port={METRICS_PORT} --frobnicate=1"
        ),
        site: site_archive(&dir),
        rsyslog,
        want_access,
        stop: false,
        deadline: StdInstant::now() + StdDuration::from_secs(60),
    };
    assert_eq!(unipi::run(&mut p), 0);
    let messages = p.rsyslog.messages();
    let done = &p.world.done;
    assert_eq!(done.len(), want_access, "every request was answered");

    // Every response arrived as an RFC 5424 access line: facility local0,
    // severity informational, our HOSTNAME, APP-NAME and MSGID.
    let access: Vec<&Parsed> = messages.iter().filter(|m| m.msgid == "access").collect();
    assert_eq!(access.len(), done.len(), "{messages:#?}");
    let mut logged = Vec::new();
    for m in &access {
        assert_eq!(
            (
                m.facility,
                m.severity,
                m.hostname.as_str(),
                m.app.as_str(),
                m.sd.as_str()
            ),
            (16, 6, "unipi-1.app.test", "unipi", "-"),
            "{m:?}"
        );
        // <134>1 2027-01-15T08:00:0xZ unipi-1.app.test unipi - access - ... (`--name`)
        let head: Vec<&str> = m.raw.splitn(8, ' ').collect();
        assert_eq!(head[0], "<134>1");
        assert!(
            head[1].starts_with("2027-01-15T08:0") && head[1].ends_with('Z'),
            "{}",
            head[1]
        );
        assert_eq!(&head[2..7], ["unipi-1.app.test", "unipi", "-", "access", "-"]);
        // nginx combined + request time.
        let parts: Vec<&str> = m.msg.split('"').collect();
        assert_eq!(parts.len(), 7, "{}", m.msg);
        assert!(
            parts[0].starts_with(&format!("{WORLD_IP} - - [15/Jan/2027:08:0")),
            "{}",
            m.msg
        );
        let (method, rest) = parts[1].split_once(' ').unwrap();
        let (path, protocol) = rest.rsplit_once(' ').unwrap();
        assert_eq!(protocol, "HTTP/1.1");
        let mut numbers = parts[2].split_whitespace();
        let status: u16 = numbers.next().unwrap().parse().unwrap();
        let bytes: usize = numbers.next().unwrap().parse().unwrap();
        let time = parts[6].trim();
        assert!(
            time.len() >= 5 && time.as_bytes()[time.len() - 4] == b'.',
            "{time}"
        );
        logged.push((
            method.to_string(),
            path.to_string(),
            status,
            bytes,
            parts[3].to_string(),
            parts[5].to_string(),
        ));
    }
    let mut sent: Vec<_> = done
        .iter()
        .map(|d| (d.method.clone(), d.path.clone(), d.status, d.body.len()))
        .collect();
    let mut got: Vec<_> = logged
        .iter()
        .map(|l| (l.0.clone(), l.1.clone(), l.2, l.3))
        .collect();
    sent.sort();
    got.sort();
    assert_eq!(
        got, sent,
        "access lines name each response's status and body bytes"
    );
    assert!(
        !m_contains(&access, "secret"),
        "queries stay out of the log"
    );
    let first = logged.iter().find(|l| l.1 == "/index.html").unwrap();
    assert_eq!(first.4, r"https://example.org/\x22q\x22");
    assert_eq!(first.5, "curl/8.0");

    // The boot-parameter warning arrived as a log message (severity 4).
    let warning = messages
        .iter()
        .find(|m| m.msgid == "log" && m.msg.contains("unknown option --frobnicate=1"))
        .unwrap_or_else(|| panic!("no warning in {messages:#?}"));
    assert_eq!((warning.facility, warning.severity), (16, 4));

    // The metrics: promtool accepts them, and they count what the client saw.
    let metrics = &done.last().unwrap();
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body.clone()).unwrap();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required (apt-get install prometheus)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let before = &done[..done.len() - 1];
    let class = |c: u16| before.iter().filter(|d| d.status / 100 == c).count() as u64;
    assert_eq!(
        sample(&text, r#"unipi_http_responses_total{class="2xx"}"#),
        class(2)
    );
    assert_eq!(
        sample(&text, r#"unipi_http_responses_total{class="4xx"}"#),
        class(4)
    );
    assert_eq!(
        sample(&text, "unipi_http_response_body_bytes_total"),
        before.iter().map(|d| d.body.len() as u64).sum::<u64>()
    );
    assert_eq!(
        sample(&text, "unipi_connections_accepted_total"),
        done.len() as u64
    );
    assert!(sample(&text, r#"unipi_syslog_messages_total{result="sent"}"#) >= before.len() as u64);
    assert_eq!(
        sample(&text, r#"unipi_syslog_messages_total{result="dropped"}"#),
        0
    );
    assert_eq!(sample(&text, "unipi_syslog_up"), 1);
    assert!(
        text.contains("unipi_site_info{commit=\"\",source=\"archive\"} 1\n"),
        "{text}"
    );
    assert!(
        p.world.relayed > access.len(),
        "the warning was relayed too"
    );
    let _ = fs::remove_dir_all(&dir);
}

fn m_contains(messages: &[&Parsed], needle: &str) -> bool {
    messages.iter().any(|m| m.raw.contains(needle))
}
