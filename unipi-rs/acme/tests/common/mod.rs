//! Shared helpers for the integration tests: Debian's real pebble ACME server (with
//! pebble-challtestsrv as its DNS), a small std driver for the sans-IO `Client` (rustls +
//! minimal HTTP/1.1), HTTP-01 and TLS-ALPN-01 responders, and the exchange recorder whose
//! output becomes the replay fixtures.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use unipi_acme::{Action, Challenge, Client, Error, HttpRequest, HttpResponse, Issued, Now};

/// Upper bound of one whole issuance in these tests.
pub const ISSUANCE_DEADLINE: Duration = Duration::from_secs(90);
/// Socket timeouts of the driver and the responders.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- tools and temp dirs

pub use unipi_testkit::{Server, TempDir, free_port, require};

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------- pebble

/// Settings of one pebble instance; the defaults are pebble's own.
#[derive(Clone, Debug)]
pub struct PebbleOptions {
    /// `PEBBLE_WFE_NONCEREJECT` (percent of good nonces rejected); pebble's default is 5.
    pub nonce_reject: u32,
    /// `PEBBLE_AUTHZREUSE` (percent of valid authorizations reused); pebble's default is 50.
    pub authz_reuse: u32,
    /// `PEBBLE_ALTERNATE_ROOTS`.
    pub alternate_roots: u32,
}

impl Default for PebbleOptions {
    fn default() -> Self {
        PebbleOptions {
            nonce_reject: 5,
            authz_reuse: 50,
            alternate_roots: 0,
        }
    }
}

/// pebble on 127.0.0.1 with free ports, resolving every name to 127.0.0.1 through
/// pebble-challtestsrv (its other listeners off), validating challenges against the
/// responder ports. Both processes stop on drop.
pub struct Pebble {
    pub dir: TempDir,
    pub acme_port: u16,
    pub mgmt_port: u16,
    pub http01_port: u16,
    pub tlsalpn_port: u16,
    /// The CA of pebble's own HTTPS listener (PEM), generated for this instance.
    pub listener_ca_pem: String,
    // Field order: pebble stops before its DNS server.
    pub pebble: Server,
    pub dns: Server,
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on `http01_port` and TLS-ALPN-01 on `tlsalpn_port`
    /// (bind the responders first, so that nothing else takes their ports).
    pub fn start(opts: PebbleOptions, http01_port: u16, tlsalpn_port: u16) -> Pebble {
        let pebble_bin = require("pebble", "pebble");
        let challtestsrv = require("pebble-challtestsrv", "pebble");
        let dir = TempDir::new("pebble");

        // pebble's listener certificate, from a CA made for this run.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "unipi-acme test listener CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf_params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();

        let acme_port = free_port();
        let mgmt_port = free_port();
        let dns_port = free_port();
        let dns_mgmt_port = free_port();
        let config = json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": dir.path().join("cert.pem").to_str().unwrap(),
            "privateKey": dir.path().join("key.pem").to_str().unwrap(),
            "httpPort": http01_port,
            "tlsPort": tlsalpn_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        std::fs::write(
            dir.path().join("pebble.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();

        let dns_log = dir.path().join("challtestsrv.log");
        let mut dns = Server {
            name: "pebble-challtestsrv",
            child: Command::new(challtestsrv)
                .args([
                    "-defaultIPv4",
                    "127.0.0.1",
                    "-defaultIPv6",
                    "",
                    "-dns01",
                    &format!("127.0.0.1:{dns_port}"),
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-management",
                    &format!("127.0.0.1:{dns_mgmt_port}"),
                ])
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&dns_log).unwrap())
                .stderr(Stdio::from(
                    std::fs::File::options()
                        .append(true)
                        .open(&dns_log)
                        .unwrap(),
                ))
                .spawn()
                .expect("spawn pebble-challtestsrv"),
            log: dns_log,
        };
        dns.wait_port(dns_mgmt_port, Duration::from_secs(20));

        let log = dir.path().join("pebble.log");
        let mut pebble = Server {
            name: "pebble",
            child: Command::new(pebble_bin)
                .arg("-config")
                .arg(dir.path().join("pebble.json"))
                .arg("-dnsserver")
                .arg(format!("127.0.0.1:{dns_port}"))
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_VA_ALWAYS_VALID", "0")
                .env("PEBBLE_WFE_NONCEREJECT", opts.nonce_reject.to_string())
                .env("PEBBLE_AUTHZREUSE", opts.authz_reuse.to_string())
                .env("PEBBLE_ALTERNATE_ROOTS", opts.alternate_roots.to_string())
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::from(
                    std::fs::File::options().append(true).open(&log).unwrap(),
                ))
                .spawn()
                .expect("spawn pebble"),
            log,
        };
        pebble.wait_port(acme_port, Duration::from_secs(20));
        pebble.wait_port(mgmt_port, Duration::from_secs(20));

        Pebble {
            dir,
            acme_port,
            mgmt_port,
            http01_port,
            tlsalpn_port,
            listener_ca_pem: ca.pem(),
            pebble,
            dns,
        }
    }

    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    /// A rustls client configuration that trusts pebble's listener.
    pub fn tls_client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.listener_ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }

    /// A rustls client configuration that trusts nothing (for servers never reached).
    pub fn unused_tls_client() -> Arc<rustls::ClientConfig> {
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
    }

    /// GET on the management interface (e.g. `/roots/0`).
    pub fn management_get(&self, path: &str) -> Vec<u8> {
        let resp = https_exchange(
            &self.tls_client(),
            "127.0.0.1",
            self.mgmt_port,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.mgmt_port
            ),
            b"",
            false,
        )
        .unwrap();
        assert_eq!(resp.status, 200, "management {path}");
        resp.body
    }
}

// ---------------------------------------------------------------- minimal HTTP/1.1 over TLS

pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// One request on a fresh TLS connection (`Connection: close`), the whole response read.
pub fn https_exchange(
    config: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    head: &str,
    body: &[u8],
    head_request: bool,
) -> Result<RawResponse, String> {
    let tcp = TcpStream::connect((host, port)).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("name: {e}"))?;
    let conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(head.as_bytes())
        .and_then(|_| tls.write_all(body))
        .and_then(|_| tls.flush())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // Go may close without close_notify after a complete response.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("read: {e}")),
        }
        if raw.len() > 4 << 20 {
            return Err("response too large".into());
        }
    }
    parse_response(&raw, head_request)
}

pub fn parse_response(raw: &[u8], head_request: bool) -> Result<RawResponse, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw).map_err(|e| format!("http: {e}"))? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Err("truncated response head".into()),
    };
    let status = resp.code.ok_or("no status")?;
    let headers: Vec<(String, Vec<u8>)> = resp
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    let rest = &raw[head_len..];
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| String::from_utf8_lossy(v).to_string())
    };
    let body = if head_request || status == 204 || status == 304 {
        Vec::new()
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = get("content-length") {
        let len: usize = len.trim().parse().map_err(|_| "bad content-length")?;
        rest.get(..len).ok_or("truncated body")?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .map_err(|_| "bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or("truncated chunk")?);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

// ---------------------------------------------------------------- responders

/// What the responders serve, shared with the driver.
#[derive(Default, Debug)]
pub struct Published {
    /// HTTP-01: token → body.
    pub http01: HashMap<String, String>,
    /// TLS-ALPN-01: SNI → certificate and key.
    pub tlsalpn: HashMap<String, Arc<rustls::sign::CertifiedKey>>,
    /// Validation requests seen.
    pub http01_hits: usize,
    pub tlsalpn_hits: usize,
}

pub type Shared = Arc<Mutex<Published>>;

/// A thread serving connections until dropped.
pub struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds a responder's listener on a free port.
pub fn listen() -> (TcpListener, u16) {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", free_port())) {
            let port = l.local_addr().unwrap().port();
            return (l, port);
        }
    }
    panic!("could not bind a responder port");
}

fn serve(listener: TcpListener, handler: impl Fn(TcpStream) + Send + 'static) -> Responder {
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                    handler(s);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    Responder {
        stop,
        thread: Some(thread),
    }
}

/// The HTTP-01 responder: `GET /.well-known/acme-challenge/<token>`.
pub fn http01_responder(listener: TcpListener, shared: Shared) -> Responder {
    serve(listener, move |mut s| {
        let mut req = Vec::new();
        let mut buf = [0u8; 2048];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut headers);
        let path = match parsed.parse(&req) {
            Ok(_) => parsed.path.unwrap_or("").to_string(),
            Err(_) => return,
        };
        let answer = {
            let mut p = shared.lock().unwrap();
            p.http01_hits += 1;
            path.strip_prefix(unipi_acme::HTTP01_PATH_PREFIX)
                .and_then(|t| p.http01.get(t).cloned())
        };
        let resp = match answer {
            Some(body) => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
            None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string(),
        };
        let _ = s.write_all(resp.as_bytes());
    })
}

#[derive(Debug)]
struct BySni(Shared);

impl rustls::server::ResolvesServerCert for BySni {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let name = hello.server_name()?.to_string();
        let mut p = self.0.lock().unwrap();
        p.tlsalpn_hits += 1;
        p.tlsalpn.get(&name).cloned()
    }
}

/// The TLS-ALPN-01 responder: rustls with ALPN `acme-tls/1`, the certificate by SNI.
pub fn tlsalpn_responder(listener: TcpListener, shared: Shared) -> Responder {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(BySni(shared)));
    cfg.alpn_protocols = vec![unipi_acme::ACME_TLS_ALPN_PROTOCOL.to_vec()];
    let cfg = Arc::new(cfg);
    serve(listener, move |mut s| {
        let Ok(mut conn) = rustls::ServerConnection::new(cfg.clone()) else {
            return;
        };
        while conn.is_handshaking() {
            if conn.complete_io(&mut s).is_err() {
                return;
            }
        }
        conn.send_close_notify();
        let _ = conn.complete_io(&mut s);
    })
}

pub fn certified_key(cert_der: &[u8], key_pkcs8: &[u8]) -> Arc<rustls::sign::CertifiedKey> {
    let key = rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
        key_pkcs8.to_vec().into(),
    ))
    .unwrap();
    Arc::new(rustls::sign::CertifiedKey::new(
        vec![CertificateDer::from(cert_der.to_vec())],
        key,
    ))
}

// ---------------------------------------------------------------- the driver

/// How the driver misbehaves on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tamper {
    #[default]
    None,
    /// Serve a wrong key authorization (HTTP-01) or a certificate without the
    /// acmeIdentifier extension (TLS-ALPN-01).
    WrongAnswer,
}

/// What the driver saw, in order.
#[derive(Debug, Default)]
pub struct Log {
    /// `METHOD URL` per request.
    pub requests: Vec<String>,
    /// `publish <kind> <name>` / `unpublish <kind> <name>` / `wait <secs>`.
    pub events: Vec<String>,
    /// The exchanges as JSON, for fixtures.
    pub exchanges: Vec<Value>,
}

pub struct Driver {
    pub tls: Arc<rustls::ClientConfig>,
    pub shared: Shared,
    pub tamper: Tamper,
    pub start: Instant,
    pub log: Log,
}

impl Driver {
    pub fn new(tls: Arc<rustls::ClientConfig>, shared: Shared) -> Driver {
        Driver {
            tls,
            shared,
            tamper: Tamper::None,
            start: Instant::now(),
            log: Log::default(),
        }
    }

    pub fn now(&self) -> Now {
        Now {
            monotonic: self.start.elapsed().as_secs(),
            unix: unix_now(),
        }
    }

    fn send(&mut self, req: &HttpRequest) -> Result<RawResponse, String> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            req.method.as_str(),
            req.url.path_and_query(),
            req.url.host_header(),
            req.body.len()
        );
        for (k, v) in &req.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let resp = https_exchange(
            &self.tls,
            req.url.host(),
            req.url.port(),
            &head,
            &req.body,
            req.method == unipi_acme::Method::Head,
        )?;
        self.log
            .requests
            .push(format!("{} {}", req.method.as_str(), req.url));
        self.log.exchanges.push(json!({
            "method": req.method.as_str(),
            "url": req.url.as_str(),
            "status": resp.status,
            "headers": resp.headers.iter().map(|(k, v)| json!([k, String::from_utf8_lossy(v)])).collect::<Vec<_>>(),
            "body": String::from_utf8_lossy(&resp.body),
        }));
        Ok(resp)
    }

    fn publish(&mut self, c: &Challenge) {
        let mut p = self.shared.lock().unwrap();
        match c {
            Challenge::Http01 {
                token,
                key_authorization,
                ..
            } => {
                let body = match self.tamper {
                    Tamper::None => key_authorization.clone(),
                    Tamper::WrongAnswer => format!("{key_authorization}x"),
                };
                p.http01.insert(token.clone(), body);
            }
            Challenge::TlsAlpn01 {
                name,
                certificate,
                private_key,
            } => {
                let ck = match self.tamper {
                    Tamper::None => certified_key(certificate, private_key),
                    Tamper::WrongAnswer => {
                        // A plain self-signed certificate for the name: no acmeIdentifier.
                        let key = rcgen::KeyPair::generate().unwrap();
                        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
                            .unwrap()
                            .self_signed(&key)
                            .unwrap();
                        certified_key(cert.der(), &key.serialize_der())
                    }
                };
                p.tlsalpn.insert(name.to_string(), ck);
            }
        }
        self.log
            .events
            .push(format!("publish {} {}", c.kind(), c.name()));
    }

    fn unpublish(&mut self, c: &Challenge) {
        let mut p = self.shared.lock().unwrap();
        match c {
            Challenge::Http01 { token, .. } => {
                assert!(
                    p.http01.remove(token).is_some(),
                    "unpublish of unknown token"
                );
            }
            Challenge::TlsAlpn01 { name, .. } => {
                assert!(
                    p.tlsalpn.remove(name.as_str()).is_some(),
                    "unpublish of unknown name"
                );
            }
        }
        self.log
            .events
            .push(format!("unpublish {} {}", c.kind(), c.name()));
    }

    /// Drives `client` to the end, within [`ISSUANCE_DEADLINE`].
    pub fn run(&mut self, client: &mut Client) -> Result<Issued, Error> {
        let deadline = Instant::now() + ISSUANCE_DEADLINE;
        loop {
            assert!(
                Instant::now() < deadline,
                "issuance took too long: {:?}",
                self.log
            );
            let now = self.now();
            match client.poll(now) {
                Action::Request(req) => match self.send(&req) {
                    Ok(resp) => {
                        let headers: Vec<(&str, &[u8])> = resp
                            .headers
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_slice()))
                            .collect();
                        client.response(HttpResponse {
                            status: resp.status,
                            headers: &headers,
                            body: &resp.body,
                        });
                    }
                    Err(e) => {
                        self.log.requests.push(format!(
                            "{} {} -> {e}",
                            req.method.as_str(),
                            req.url
                        ));
                        client.transport_error(&e);
                    }
                },
                Action::Publish(c) => {
                    self.publish(&c);
                    client.published();
                }
                Action::Unpublish(c) => {
                    self.unpublish(&c);
                    client.unpublished();
                }
                Action::WaitUntil(t) => {
                    self.log
                        .events
                        .push(format!("wait {}", t.saturating_sub(now.monotonic)));
                    let wait = Duration::from_secs(t).saturating_sub(self.start.elapsed());
                    std::thread::sleep(
                        wait.min(deadline.saturating_duration_since(Instant::now())),
                    );
                }
                Action::Pending => panic!("the test driver answers at once"),
                Action::Done(result) => {
                    let p = self.shared.lock().unwrap();
                    assert!(p.http01.is_empty(), "HTTP-01 answer left published");
                    assert!(
                        p.tlsalpn.is_empty(),
                        "TLS-ALPN-01 certificate left published"
                    );
                    return result;
                }
            }
        }
    }
}

// ---------------------------------------------------------------- openssl

pub fn openssl(args: &[&str], stdin: Option<&[u8]>) -> (bool, String) {
    let mut c = Command::new(require("openssl", "openssl"));
    c.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn openssl");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `-----BEGIN label-----` PEM of DER bytes (test side, via rcgen's pem crate dependency
/// would be overkill: openssl reads DER directly where it can).
pub fn der_to_pem(label: &str, der: &[u8]) -> String {
    let (ok, out) = openssl(&["base64", "-e"], Some(der));
    assert!(ok);
    format!("-----BEGIN {label}-----\n{out}-----END {label}-----\n")
}
