//! A small HTTPS server on 127.0.0.1 for the real-peer tests: rustls
//! (ALPN `h2` only, self-signed certificate from rcgen), one thread per
//! connection, driving `unipi_h2::Connection` exactly as its crate
//! documentation says, and serving a few in-memory files. It stands in for
//! the serving layer of the application; `examples/serve.rs` runs it by
//! hand.
//!
//! Dropping the [`TestServer`] stops the listener and every connection
//! thread and joins them, so a failing test cannot leave threads behind.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use unipi_h2::{CloseReason, Connection, Event, Limits, Stats, StreamId};

/// What a finished connection left behind.
#[derive(Clone, Debug)]
pub struct Report {
    /// Why the HTTP/2 connection closed (`None`: the transport went first).
    pub reason: Option<CloseReason>,
    /// Its final counters.
    pub stats: Stats,
    /// Largest input backlog the connection held.
    pub peak_input: usize,
    /// Largest HPACK dynamic table seen.
    pub peak_table: usize,
    /// Requests served, as "METHOD path status".
    pub served: Vec<String>,
}

/// The files served. `big.bin` is 1 MiB of a byte pattern.
pub fn files() -> BTreeMap<String, Vec<u8>> {
    let mut f = BTreeMap::new();
    f.insert(
        "/index.html".into(),
        b"<!doctype html><h1>unipi h2</h1>\n".to_vec(),
    );
    f.insert("/style.css".into(), b"h1 { color: teal }\n".to_vec());
    f.insert(
        "/big.bin".into(),
        (0..1 << 20).map(|i: u32| (i % 251) as u8).collect(),
    );
    f
}

/// A running server; dropping it stops everything.
pub struct TestServer {
    /// The port on 127.0.0.1.
    pub port: u16,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    reports: Arc<Mutex<Vec<Report>>>,
}

impl TestServer {
    /// Starts a server with `limits` on an ephemeral port.
    pub fn start(limits: Limits) -> TestServer {
        TestServer::start_recording(limits, None)
    }

    /// Like [`start`](Self::start); with `record`, each connection's client
    /// plaintext is written to `record/<n>.bin` (fuzz seeds).
    pub fn start_recording(limits: Limits, record: Option<PathBuf>) -> TestServer {
        let tls = tls_config();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let reports: Arc<Mutex<Vec<Report>>> = Arc::default();
        let files = Arc::new(files());
        let accept = {
            let (stop, conns, reports) = (stop.clone(), conns.clone(), reports.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((sock, _)) => {
                            let (stop, reports, tls, files) =
                                (stop.clone(), reports.clone(), tls.clone(), files.clone());
                            let record = record.as_ref().map(|d| d.join(format!("{}.bin", n)));
                            n += 1;
                            let h = std::thread::spawn(move || {
                                let report = serve(sock, tls, limits, &files, &stop, record);
                                reports.lock().unwrap().push(report);
                            });
                            conns.lock().unwrap().push(h);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        TestServer {
            port,
            stop,
            accept: Some(accept),
            conns,
            reports,
        }
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{}", self.port, path)
    }

    /// Reports of the connections finished so far, waiting up to `wait`
    /// for at least `n` of them.
    pub fn reports(&self, n: usize, wait: Duration) -> Vec<Report> {
        let end = Instant::now() + wait;
        loop {
            let r = self.reports.lock().unwrap().clone();
            if r.len() >= n || Instant::now() >= end {
                return r;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let handles: Vec<_> = self.conns.lock().unwrap().drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("self-signed certificate");
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(cfg)
}

/// The serving layer: what the application does with events.
struct App<'f> {
    files: &'f BTreeMap<String, Vec<u8>>,
    /// Bodies still to send: (file, offset).
    sending: HashMap<StreamId, (&'f [u8], usize)>,
    /// Webhook requests reading their body: bytes so far.
    hooks: HashMap<StreamId, usize>,
    served: Vec<String>,
}

impl<'f> App<'f> {
    fn request(&mut self, c: &mut Connection, stream: StreamId, head: &unipi_h2::RequestHead) {
        let path = head.path().split('?').next().unwrap_or("/");
        let path = if path == "/" { "/index.html" } else { path };
        let method = head.method();
        if path == "/hook" {
            if head.has_body() {
                self.hooks.insert(stream, 0);
            } else {
                self.text(c, stream, 200, "got 0 bytes\n".into());
            }
            self.served.push(format!("{method} {path} hook"));
            return;
        }
        match (method, self.files.get(path)) {
            ("GET" | "HEAD", Some(body)) => {
                let ct: &[u8] = if path.ends_with(".html") {
                    b"text/html; charset=utf-8"
                } else if path.ends_with(".css") {
                    b"text/css; charset=utf-8"
                } else {
                    b"application/octet-stream"
                };
                let len = body.len().to_string();
                let head_only = method == "HEAD";
                let fields: [(&str, &[u8]); 3] = [
                    ("Content-Type", ct),
                    ("Content-Length", len.as_bytes()),
                    ("Server", b"unipi-h2-test"),
                ];
                if c.send_headers(stream, 200, &fields, head_only).is_ok() && !head_only {
                    self.sending.insert(stream, (body, 0));
                    self.push(c, stream);
                }
                self.served.push(format!("{method} {path} 200"));
            }
            ("GET" | "HEAD", None) => {
                self.text(c, stream, 404, "not found\n".into());
                self.served.push(format!("{method} {path} 404"));
            }
            _ => {
                self.text(c, stream, 405, "method not allowed\n".into());
                self.served.push(format!("{method} {path} 405"));
            }
        }
    }

    fn text(&mut self, c: &mut Connection, stream: StreamId, status: u16, text: String) {
        let len = text.len().to_string();
        let fields: [(&str, &[u8]); 2] = [
            ("content-type", b"text/plain; charset=utf-8"),
            ("content-length", len.as_bytes()),
        ];
        if c.send_headers(stream, status, &fields, false).is_ok() {
            let body: &'static [u8] = Box::leak(text.into_bytes().into_boxed_slice());
            self.sending.insert(stream, (body, 0));
            self.push(c, stream);
        }
    }

    /// Sends as much of the stream's body as the connection takes.
    fn push(&mut self, c: &mut Connection, stream: StreamId) {
        let Some((body, off)) = self.sending.get_mut(&stream) else {
            return;
        };
        match c.send_data(stream, &body[*off..], true) {
            Ok(n) => {
                *off += n;
                if *off == body.len() {
                    self.sending.remove(&stream);
                }
            }
            Err(_) => {
                self.sending.remove(&stream);
            }
        }
    }

    fn event(&mut self, c: &mut Connection, e: Owned) {
        match e {
            Owned::Request(stream, head) => self.request(c, stream, &head),
            Owned::Data(stream, len, end) => {
                if let Some(n) = self.hooks.get_mut(&stream) {
                    *n += len;
                    if end {
                        let n = *n;
                        self.hooks.remove(&stream);
                        self.text(c, stream, 200, format!("got {n} bytes\n"));
                    }
                }
            }
            Owned::Writable(stream) => self.push(c, stream),
            Owned::Reset(stream) => {
                self.sending.remove(&stream);
                self.hooks.remove(&stream);
            }
            Owned::Other => {}
        }
    }
}

/// An event without the borrow of the connection.
enum Owned {
    Request(StreamId, unipi_h2::RequestHead),
    Data(StreamId, usize, bool),
    Writable(StreamId),
    Reset(StreamId),
    Other,
}

impl From<Event<'_>> for Owned {
    fn from(e: Event<'_>) -> Owned {
        match e {
            Event::Request { stream, head } => Owned::Request(stream, head),
            Event::Data {
                stream,
                data,
                end_stream,
            } => Owned::Data(stream, data.len(), end_stream),
            Event::Writable { stream } => Owned::Writable(stream),
            Event::Reset { stream, .. } => Owned::Reset(stream),
            _ => Owned::Other,
        }
    }
}

/// Plaintext read from TLS but not yet taken by the connection.
const PLAIN_MAX: usize = 64 * 1024;
/// Ciphertext read from the socket but not yet taken by rustls.
const CIPHER_MAX: usize = 64 * 1024;

/// One connection, from the TLS handshake to the close.
fn serve(
    mut sock: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    limits: Limits,
    files: &BTreeMap<String, Vec<u8>>,
    stop: &AtomicBool,
    record_to: Option<PathBuf>,
) -> Report {
    let start = Instant::now();
    let now = || start.elapsed().as_millis() as u64;
    let mut report = Report {
        reason: None,
        stats: Stats::default(),
        peak_input: 0,
        peak_table: 0,
        served: Vec::new(),
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(2)));
    let _ = sock.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = sock.set_nodelay(true);
    let Ok(mut tls) = rustls::ServerConnection::new(tls) else {
        return report;
    };
    let mut h2: Option<Connection> = None;
    let mut app = App {
        files,
        sending: HashMap::new(),
        hooks: HashMap::new(),
        served: Vec::new(),
    };
    let mut plain: Vec<u8> = Vec::new();
    let mut record: Option<Vec<u8>> = record_to.as_ref().map(|_| Vec::new());
    let mut cipher: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut eof = false;
    let mut busy = false;
    // Bounded: no test connection lives longer than this.
    let give_up = start + Duration::from_secs(60);
    'conn: while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
        // Ciphertext in: from the socket into a bounded buffer, from there
        // into rustls as far as its plaintext buffer has room (read_tls
        // refuses more until the plaintext is taken).
        if !eof && cipher.len() < CIPHER_MAX {
            // Wait for input (2 ms) only when the last round had nothing to send.
            let _ = sock.set_nonblocking(busy);
            match sock.read(&mut buf) {
                Ok(0) => eof = true,
                Ok(n) => cipher.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
            // Writes block (up to the write timeout).
            let _ = sock.set_nonblocking(false);
        }
        while !cipher.is_empty() {
            let mut rd = &cipher[..];
            match tls.read_tls(&mut rd) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    cipher.drain(..n);
                }
            }
            if tls.process_new_packets().is_err() {
                let _ = tls.write_tls(&mut sock);
                break 'conn;
            }
        }
        if h2.is_none() && !tls.is_handshaking() {
            if tls.alpn_protocol() != Some(b"h2") {
                break;
            }
            h2 = Some(Connection::new(limits, now()));
        }
        if let Some(c) = h2.as_mut() {
            // Plaintext in, bounded.
            while plain.len() < PLAIN_MAX {
                let mut tmp = [0u8; 16 * 1024];
                match tls.reader().read(&mut tmp) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        plain.extend_from_slice(&tmp[..n]);
                        if let Some(r) = record.as_mut() {
                            r.extend_from_slice(&tmp[..n]);
                        }
                    }
                    Err(_) => break,
                }
            }
            let t = now();
            busy = false;
            loop {
                let n = c.receive(&plain, t);
                plain.drain(..n);
                report.peak_input = report.peak_input.max(c.stats().input_bytes);
                let mut progressed = n > 0;
                while let Some(e) = c.poll(t) {
                    let e = Owned::from(e);
                    app.event(c, e);
                }
                report.peak_table = report.peak_table.max(c.stats().hpack_table_bytes);
                // Plaintext out, into rustls' bounded send buffer.
                while !c.output().is_empty() {
                    match tls.writer().write(c.output()) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            c.consume_output(n);
                            progressed = true;
                            busy = true;
                        }
                    }
                }
                while tls.wants_write() {
                    match tls.write_tls(&mut sock) {
                        Ok(_) => {}
                        Err(_) => break 'conn,
                    }
                }
                if !progressed || plain.is_empty() && c.output().is_empty() {
                    break;
                }
            }
            if c.wants_close() {
                tls.send_close_notify();
                let _ = tls.write_tls(&mut sock);
                break;
            }
            if c.deadline().is_some_and(|d| now() >= d) {
                c.on_timeout(now());
            }
            if eof && plain.is_empty() && cipher.is_empty() {
                c.abort();
                break;
            }
        } else if eof {
            break;
        }
        while tls.wants_write() {
            if tls.write_tls(&mut sock).is_err() {
                break 'conn;
            }
        }
    }
    // Lingering close: a socket closed with unread input sends RST, and the
    // client may then lose our last frames (GOAWAY) before reading them.
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let linger = Instant::now() + Duration::from_secs(2);
    while Instant::now() < linger && !stop.load(Ordering::Relaxed) {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    if let (Some(path), Some(r)) = (record_to, record) {
        let _ = std::fs::write(path, r);
    }
    if let Some(c) = h2.as_mut() {
        report.reason = c.close_reason().cloned();
        report.stats = c.stats();
    }
    report.served = app.served;
    report
}
