//! Real HTTP/2 peers against `unipi_h2` behind rustls on 127.0.0.1: curl
//! (`--http2`), nghttp (framing, small windows), h2load (load), and Python
//! scripts sending crafted frame sequences for each denial-of-service class
//! and protocol error (`tests/h2attack.py`, `h2`/`hpack`/`hyperframe` from
//! PyPI). Every peer runs with a time limit and is killed when it overruns;
//! the server stops when its `TestServer` is dropped, also on panic.
//!
//! A missing tool fails the test with the package to install (curl,
//! nghttp2-client, python3-h2 or `pip install h2`).

mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Report, TestServer};
use unipi_h2::{CloseReason, ConnectionError, ErrorCode, Flood, Limits};

/// Output of a peer that ran to completion within its time limit.
struct Run {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `prog args` for at most `limit`; kills it (by its process id) when
/// it overruns and fails the test.
fn run(prog: &str, args: &[&str], limit: Duration) -> Run {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {prog} ({e}); install it (Debian: curl, nghttp2-client, python3 with `pip install h2`)"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = String::new();
        let _ = err.read_to_string(&mut v);
        v
    });
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{prog} {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("unipi-h2-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The one report a test connection left.
fn only_report(server: &TestServer) -> Report {
    let r = server.reports(1, Duration::from_secs(10));
    assert_eq!(r.len(), 1, "expected one connection: {r:?}");
    r.into_iter().next().unwrap()
}

#[test]
fn curl_fetches_several_files_over_one_connection() {
    let server = TestServer::start(Limits::default());
    let dir = scratch("curl");
    let files = support::files();
    let out = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (a, b, c, d) = (out("index"), out("big"), out("missing"), out("hook"));
    let r = run(
        "curl",
        &[
            "--http2",
            "-k",
            "-sS",
            "--max-time",
            "30",
            "-w",
            "%{http_version} %{response_code} %{size_download} %{num_connects}\\n",
            "-o",
            &a,
            &server.url("/"),
            "-o",
            &b,
            &server.url("/big.bin"),
            "-o",
            &c,
            &server.url("/missing"),
            "--next",
            "--http2",
            "-k",
            "-sS",
            "--max-time",
            "30",
            "-w",
            "%{http_version} %{response_code} %{size_download} %{num_connects}\\n",
            "-o",
            &d,
            "--data-binary",
            "0123456789",
            &server.url("/hook"),
        ],
        Duration::from_secs(40),
    );
    assert!(r.status.success(), "curl failed: {}", r.stderr);
    let lines: Vec<String> = r.text().lines().map(String::from).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], format!("2 200 {} 1", files["/index.html"].len()));
    assert_eq!(
        lines[1],
        format!("2 200 {} 0", 1 << 20),
        "reused the connection"
    );
    assert_eq!(lines[2], "2 404 10 0");
    assert_eq!(lines[3], "2 200 13 0");
    assert_eq!(std::fs::read(&a).unwrap(), files["/index.html"]);
    assert_eq!(std::fs::read(&b).unwrap(), files["/big.bin"]);
    assert_eq!(std::fs::read_to_string(&d).unwrap(), "got 10 bytes\n");
    let rep = only_report(&server);
    // The POST to the hook uses the same connection (curl --data switches
    // method but not connection).
    assert_eq!(rep.served.len(), 4, "{:?}", rep.served);
    assert!(
        !matches!(rep.reason, Some(CloseReason::Error(_))),
        "{:?}",
        rep.reason
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn curl_head_request() {
    let server = TestServer::start(Limits::default());
    let r = run(
        "curl",
        &[
            "--http2",
            "-k",
            "-sS",
            "--max-time",
            "20",
            "-I",
            &server.url("/style.css"),
        ],
        Duration::from_secs(30),
    );
    assert!(r.status.success(), "{}", r.stderr);
    let text = r.text();
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(
        text.contains("content-type: text/css; charset=utf-8"),
        "{text}"
    );
    assert!(text.contains("content-length: 19"), "{text}");
}

#[test]
fn nghttp_checks_framing() {
    let server = TestServer::start(Limits::default());
    let r = run(
        "nghttp",
        &[
            "-nv",
            "-t",
            "20",
            &server.url("/"),
            &server.url("/style.css"),
            &server.url("/big.bin"),
        ],
        Duration::from_secs(30),
    );
    let text = r.text();
    assert!(r.status.success(), "nghttp failed:\n{text}\n{}", r.stderr);
    assert!(text.contains("recv SETTINGS frame"), "{text}");
    assert_eq!(text.matches(":status: 200").count(), 3, "{text}");
    assert!(!text.contains("RST_STREAM"), "{text}");
    // nghttp ends with GOAWAY NO_ERROR from its side; the server never
    // sends an error.
    assert!(!text.contains("recv GOAWAY"), "{text}");
}

/// 2^10-byte stream windows and a 2^16-byte connection window: the
/// 1 MiB file goes out in ~1000 flow-controlled steps.
#[test]
fn nghttp_with_small_windows() {
    let server = TestServer::start(Limits::default());
    let r = run(
        "nghttp",
        &["-w", "10", "-W", "16", "-t", "30", &server.url("/big.bin")],
        Duration::from_secs(40),
    );
    assert!(r.status.success(), "nghttp failed: {}", r.stderr);
    assert_eq!(r.stdout, support::files()["/big.bin"]);
}

#[test]
fn h2load_bounded_load() {
    let server = TestServer::start(Limits::default());
    let r = run(
        "h2load",
        &[
            "-n",
            "2000",
            "-c",
            "4",
            "-m",
            "10",
            "-T",
            "30",
            &server.url("/"),
        ],
        Duration::from_secs(60),
    );
    let text = r.text();
    assert!(r.status.success(), "h2load failed:\n{text}\n{}", r.stderr);
    assert!(
        text.contains(
            "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored"
        ),
        "{text}"
    );
    assert!(text.contains("status codes: 2000 2xx"), "{text}");
    let reports = server.reports(4, Duration::from_secs(10));
    let served: usize = reports.iter().map(|r| r.served.len()).sum();
    assert_eq!(served, 2000);
    for rep in &reports {
        assert!(rep.stats.peak_output_bytes <= Limits::default().output_buffer + 64 * 1024);
    }
}

// ---- crafted frame sequences ----

fn attack(case: &str, limits: Limits) -> (String, Report) {
    let server = TestServer::start(limits);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2attack.py");
    let port = server.port.to_string();
    let r = run("python3", &[script, case, &port], Duration::from_secs(40));
    let text = r.text();
    assert!(
        r.status.success(),
        "{case}: script failed:\n{text}\n{}",
        r.stderr
    );
    let rep = only_report(&server);
    // Whatever the attack, the buffers stayed within their bounds.
    let l = limits.sanitized();
    assert!(
        rep.peak_input <= l.input_buffer,
        "{case}: input {}",
        rep.peak_input
    );
    assert!(
        rep.stats.peak_output_bytes <= l.output_buffer + 64 * 1024,
        "{case}: output {}",
        rep.stats.peak_output_bytes
    );
    assert!(
        rep.peak_table <= l.header_table_size.max(4096) as usize,
        "{case}: table {}",
        rep.peak_table
    );
    (text, rep)
}

fn goaway_code(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix("GOAWAY code="))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|c| c.parse().ok())
}

fn closed_by(rep: &Report) -> &ConnectionError {
    match &rep.reason {
        Some(CloseReason::Error(e)) => e,
        other => panic!("connection not closed with an error: {other:?}"),
    }
}

fn flood_kind(rep: &Report) -> Flood {
    match closed_by(rep) {
        ConnectionError::Flood { kind, .. } => *kind,
        e => panic!("not a flood: {e}"),
    }
}

#[test]
fn rapid_reset_gets_enhance_your_calm() {
    let (text, rep) = attack("rapid_reset", Limits::default());
    assert_eq!(
        goaway_code(&text),
        Some(ErrorCode::ENHANCE_YOUR_CALM.0),
        "{text}"
    );
    assert_eq!(flood_kind(&rep), Flood::Resets);
    // Work stopped at the limit, not after 5000 requests.
    assert!(rep.stats.requests <= 101, "{}", rep.stats.requests);
    assert!(text.contains("EOF"));
}

#[test]
fn continuation_flood_gets_enhance_your_calm() {
    for case in ["continuation_flood", "empty_continuation_flood"] {
        let (text, rep) = attack(case, Limits::default());
        assert_eq!(
            goaway_code(&text),
            Some(ErrorCode::ENHANCE_YOUR_CALM.0),
            "{case}: {text}"
        );
        assert!(
            matches!(
                closed_by(&rep),
                ConnectionError::ContinuationFlood { limit: 16 }
            ),
            "{case}: {:?}",
            rep.reason
        );
        assert_eq!(rep.stats.requests, 0);
    }
}

#[test]
fn hpack_bomb_gets_enhance_your_calm() {
    let (text, rep) = attack("hpack_bomb", Limits::default());
    assert_eq!(
        goaway_code(&text),
        Some(ErrorCode::ENHANCE_YOUR_CALM.0),
        "{text}"
    );
    assert!(
        matches!(closed_by(&rep), ConnectionError::HpackBomb { .. }),
        "{:?}",
        rep.reason
    );
}

#[test]
fn hpack_table_size_beyond_settings_is_compression_error() {
    let (text, rep) = attack("hpack_table_size", Limits::default());
    assert_eq!(
        goaway_code(&text),
        Some(ErrorCode::COMPRESSION_ERROR.0),
        "{text}"
    );
    assert!(matches!(closed_by(&rep), ConnectionError::Compression(_)));
}

#[test]
fn oversized_header_list_gets_431_and_the_connection_goes_on() {
    let (text, rep) = attack("big_headers", Limits::default());
    assert!(text.contains("HEADERS stream=1 status=431"), "{text}");
    assert!(text.contains("DATA stream=3 len=19 end=1"), "{text}");
    assert_eq!(rep.served, ["GET /style.css 200"]);
}

#[test]
fn settings_flood_gets_enhance_your_calm() {
    let (text, rep) = attack("settings_flood", Limits::default());
    assert_eq!(
        goaway_code(&text),
        Some(ErrorCode::ENHANCE_YOUR_CALM.0),
        "{text}"
    );
    assert_eq!(flood_kind(&rep), Flood::Settings);
    assert!(text.matches("SETTINGS ack").count() <= 51, "{text}");
}

#[test]
fn ping_flood_gets_enhance_your_calm() {
    let (text, rep) = attack("ping_flood", Limits::default());
    assert_eq!(
        goaway_code(&text),
        Some(ErrorCode::ENHANCE_YOUR_CALM.0),
        "{text}"
    );
    assert_eq!(flood_kind(&rep), Flood::Pings);
    assert_eq!(text.matches("PING ack").count(), 50);
}

#[test]
fn empty_frame_floods_get_enhance_your_calm() {
    for case in ["empty_data_flood", "priority_flood"] {
        let (text, rep) = attack(case, Limits::default());
        assert_eq!(
            goaway_code(&text),
            Some(ErrorCode::ENHANCE_YOUR_CALM.0),
            "{case}: {text}"
        );
        assert_eq!(flood_kind(&rep), Flood::IdleFrames, "{case}");
    }
}

fn short_stall() -> Limits {
    Limits {
        stall_timeout_ms: 1000,
        ..Limits::default()
    }
}

#[test]
fn zero_stream_window_is_reset_and_the_connection_goes_on() {
    let (text, rep) = attack("zero_window", short_stall());
    assert!(text.contains("RST stream=1 code=8"), "{text}");
    assert!(text.contains("DATA stream=3 len=19 end=1"), "{text}");
    assert!(!text.contains("GOAWAY"), "{text}");
    assert_eq!(rep.served, ["GET /big.bin 200", "GET /style.css 200"]);
}

#[test]
fn zero_connection_window_ends_the_connection() {
    let (text, rep) = attack("connection_zero_window", short_stall());
    assert_eq!(
        goaway_code(&text),
        Some(ErrorCode::ENHANCE_YOUR_CALM.0),
        "{text}"
    );
    assert!(matches!(
        closed_by(&rep),
        ConnectionError::WindowStalled { .. }
    ));
    let data: usize = text
        .lines()
        .filter_map(|l| l.strip_prefix("DATA stream=1 len="))
        .map(|l| l.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(data, 65_535, "exactly the default connection window");
}

#[test]
fn protocol_errors_end_the_connection() {
    for (case, code) in [
        ("bad_preface", ErrorCode::PROTOCOL_ERROR),
        ("data_on_stream_0", ErrorCode::PROTOCOL_ERROR),
        ("even_stream", ErrorCode::PROTOCOL_ERROR),
        ("decreasing_stream", ErrorCode::PROTOCOL_ERROR),
        ("oversized_frame", ErrorCode::FRAME_SIZE_ERROR),
        ("window_overflow", ErrorCode::FLOW_CONTROL_ERROR),
    ] {
        let (text, rep) = attack(case, Limits::default());
        assert_eq!(goaway_code(&text), Some(code.0), "{case}: {text}");
        assert_eq!(closed_by(&rep).code(), code, "{case}");
        assert!(text.contains("EOF"), "{case}: the server closes");
    }
}

#[test]
fn webhook_body_is_read_with_flow_control() {
    let (text, rep) = attack("hook_body", Limits::default());
    assert!(text.contains("HEADERS stream=1 status=200"), "{text}");
    assert!(
        text.contains("WINDOW_UPDATE stream=1"),
        "credit returned: {text}"
    );
    assert_eq!(rep.served, ["POST /hook hook"]);
}
