//! What the host integration tests of the unipi crates share when they run
//! real servers (git daemon, nginx, pebble, sshd): finding the tool,
//! a temporary directory, the server process stopped by its PID on every
//! path out of a test, a free port and waiting for it to listen.
//!
//! Test-only (a dev-dependency); std.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The path of `tool` (standard directories, git's exec directory, then
/// `PATH`); fails (not skips) the test with an install hint when missing.
pub fn require(tool: &str, package: &str) -> PathBuf {
    let fixed = [
        "/usr/local/bin",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib/git-core",
    ];
    let path = std::env::var("PATH").unwrap_or_default();
    fixed
        .into_iter()
        .chain(path.split(':').filter(|d| !d.is_empty()))
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("required tool '{tool}' not found: install it with `apt-get install {package}`")
        })
}

/// A directory of its own under the system's temporary directory, removed
/// on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `unipi-<tag>-<pid>-<n>`, created empty.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "unipi-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server process killed (by its PID) and reaped on drop, so that every
/// path out of a test, panics included, stops it; `log` is where its output
/// goes.
pub struct Server {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// What the server wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `within`) until something accepts connections on
    /// 127.0.0.1:`port`; fails the test with the server's log when it
    /// exits first or never listens.
    pub fn wait_port(&mut self, port: u16, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited early ({status}): {}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} did not listen on {port}: {}", self.name, self.log());
    }
}

/// A port free now on 127.0.0.1, outside Linux's ephemeral range
/// (32768–60999), so that the outgoing connections of tests running in
/// parallel cannot take it before the server binds it.
pub fn free_port() -> u16 {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = (u64::from(std::process::id()) << 16)
        ^ (N.fetch_add(1, Ordering::SeqCst) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ u64::from(nanos);
    for _ in 0..1000 {
        // xorshift: a different candidate each round.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20_000 + (x % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-31999");
}
