//! Metrics in Prometheus' text exposition format, version 0.0.4: what
//! `GET /metrics` on `--metrics-port` answers.
//!
//! [`Exposition`] writes the format (`# HELP` and `# TYPE` once per
//! family, label values and help text escaped); [`render`] writes every
//! metric of the server from a [`Snapshot`]. Names start with `unipi_`;
//! counters end in `_total`. The list is in `docs/observability.md`.
//!
//! Written by hand: the `prometheus` and `prometheus-client` crates need
//! std, and the format is a few lines of text.

use alloc::string::String;
use core::fmt::{self, Write as _};

use crate::platform::{HeapStats, NetStats};
use crate::server::ServerStats;

use super::HttpCounters;
use super::syslog::SyslogStats;

/// What a metric family is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts at boot).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// Label values: `\`, `"` and line feeds escaped.
struct LabelValue<'a>(&'a str);

impl fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Help text: `\` and line feeds escaped.
struct Help<'a>(&'a str);

impl fmt::Display for Help<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines. Samples follow
    /// with [`Exposition::sample`].
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = write!(
            self.out,
            "# HELP {name} {}\n# TYPE {name} {kind}\n",
            Help(help)
        );
        self
    }

    /// One sample of the current family: `name{labels} value`.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl fmt::Display,
    ) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", LabelValue(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }

    /// A family with one unlabelled sample.
    pub fn single(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        value: impl fmt::Display,
    ) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Git pulls, as the metrics show them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitCounters {
    /// Pulls that brought a new commit.
    pub updated: u64,
    /// Pulls that found the served commit unchanged.
    pub unchanged: u64,
    /// Pulls that failed.
    pub failed: u64,
    /// Duration of the last pull, milliseconds (any outcome).
    pub last_duration_ms: Option<u64>,
    /// Wall clock of the last successful pull, unix seconds.
    pub last_success_unix: Option<u64>,
}

/// The site being served.
#[derive(Clone, Copy, Debug)]
pub struct SiteInfo<'a> {
    /// Where it came from (`git <commit>` or `archive`).
    pub source: &'a str,
    /// Its commit (hex), if it came from Git.
    pub commit: Option<&'a str>,
    /// Files.
    pub files: usize,
    /// Bytes of all files.
    pub bytes: usize,
}

/// Everything [`render`] writes.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    /// The server's counters.
    pub server: &'a ServerStats,
    /// Open connections.
    pub open_connections: usize,
    /// Responses by status class, bytes.
    pub http: &'a HttpCounters,
    /// Heap.
    pub heap: HeapStats,
    /// Network device counters, if the device keeps them.
    pub net: Option<NetStats>,
    /// Git pulls (`None`: no `--remote`).
    pub git: Option<&'a GitCounters>,
    /// The site served (`None`: none yet).
    pub site: Option<SiteInfo<'a>>,
    /// The served certificate's `notAfter`, unix seconds (`None`: no TLS).
    pub cert_not_after: Option<i64>,
    /// Syslog (`None`: no `--syslog`).
    pub syslog: Option<SyslogStats>,
    /// Wall clock at boot, unix seconds.
    pub boot_unix: u64,
}

/// Status classes, in [`HttpCounters::by_class`] order.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The exposition of `s`.
pub fn render(s: &Snapshot<'_>) -> String {
    use Kind::{Counter, Gauge};
    let mut e = Exposition::default();
    e.family(
        "unipi_build_info",
        Gauge,
        "Version of the running unipi-rs.",
    )
    .sample(
        "unipi_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    e.single(
        "unipi_boot_timestamp_seconds",
        Gauge,
        "Wall clock at boot, unix seconds.",
        s.boot_unix,
    );

    let h = s.http;
    e.family(
        "unipi_http_responses_total",
        Counter,
        "HTTP responses by status class (complete or cut short).",
    );
    for (class, n) in CLASSES.iter().zip(h.by_class) {
        e.sample("unipi_http_responses_total", &[("class", class)], n);
    }
    e.single(
        "unipi_http_responses_aborted_total",
        Counter,
        "HTTP responses whose connection ended before their last byte was sent.",
        h.aborted,
    );
    e.single(
        "unipi_http_response_bytes_total",
        Counter,
        "Bytes of HTTP responses handed to the transport (status line, header block and body).",
        h.bytes,
    );
    e.single(
        "unipi_http_response_body_bytes_total",
        Counter,
        "Body bytes of HTTP responses handed to the transport.",
        h.body_bytes,
    );

    let st = s.server;
    e.single(
        "unipi_connections_open",
        Gauge,
        "Open connections (closing ones included).",
        s.open_connections,
    );
    e.single(
        "unipi_connections_accepted_total",
        Counter,
        "Connections accepted.",
        st.accepted,
    );
    e.single(
        "unipi_connections_refused_total",
        Counter,
        "Connections refused because none could be closed to make room.",
        st.refused,
    );
    e.family(
        "unipi_connections_evicted_total",
        Counter,
        "Connections closed to make room: idle keep-alive ones, or stalled, slow or closing ones.",
    )
    .sample(
        "unipi_connections_evicted_total",
        &[("reason", "idle")],
        st.evicted_idle,
    )
    .sample(
        "unipi_connections_evicted_total",
        &[("reason", "slow")],
        st.evicted_slow,
    );
    e.single(
        "unipi_connections_too_slow_total",
        Counter,
        "Connections dropped for reading below the minimum send rate.",
        st.too_slow,
    );
    e.single(
        "unipi_connections_failed_total",
        Counter,
        "Connections that ended with a TLS or transport error.",
        st.failed,
    );

    let tls = &st.tls;
    e.family(
        "unipi_tls_handshakes_total",
        Counter,
        "Completed TLS handshakes: full, or resumed from a session ticket.",
    )
    .sample("unipi_tls_handshakes_total", &[("kind", "full")], tls.full)
    .sample(
        "unipi_tls_handshakes_total",
        &[("kind", "resumed")],
        tls.resumed,
    );
    e.family(
        "unipi_tls_handshake_failures_total",
        Counter,
        "TLS handshakes that did not complete: a TLS error, the handshake timeout, or the client went away.",
    )
    .sample("unipi_tls_handshake_failures_total", &[("reason", "error")], tls.failed_error)
    .sample("unipi_tls_handshake_failures_total", &[("reason", "timeout")], tls.failed_timeout)
    .sample("unipi_tls_handshake_failures_total", &[("reason", "closed")], tls.failed_closed);
    if let Some(t) = s.cert_not_after {
        e.single(
            "unipi_tls_certificate_expiry_timestamp_seconds",
            Gauge,
            "notAfter of the served certificate, unix seconds.",
            t,
        );
    }

    e.single(
        "unipi_heap_used_bytes",
        Gauge,
        "Heap bytes allocated.",
        s.heap.used,
    );
    e.single(
        "unipi_heap_peak_bytes",
        Gauge,
        "Most heap bytes allocated at once since boot.",
        s.heap.peak,
    );
    e.single(
        "unipi_heap_size_bytes",
        Gauge,
        "Heap bytes available.",
        s.heap.size,
    );

    if let Some(g) = s.git {
        e.family(
            "unipi_git_fetches_total",
            Counter,
            "Git pulls: a new commit, the same commit, or failed (ok = updated + unchanged).",
        )
        .sample(
            "unipi_git_fetches_total",
            &[("result", "updated")],
            g.updated,
        )
        .sample(
            "unipi_git_fetches_total",
            &[("result", "unchanged")],
            g.unchanged,
        )
        .sample("unipi_git_fetches_total", &[("result", "failed")], g.failed);
        if let Some(ms) = g.last_duration_ms {
            e.single(
                "unipi_git_last_fetch_duration_seconds",
                Gauge,
                "Duration of the last Git pull.",
                Seconds(ms),
            );
        }
        if let Some(t) = g.last_success_unix {
            e.single(
                "unipi_git_last_success_timestamp_seconds",
                Gauge,
                "Wall clock of the last successful Git pull, unix seconds.",
                t,
            );
        }
    }
    if let Some(site) = s.site {
        let kind = if site.commit.is_some() {
            "git"
        } else {
            site.source
        };
        e.family(
            "unipi_site_info",
            Gauge,
            "The site being served: its commit, if any.",
        )
        .sample(
            "unipi_site_info",
            &[("commit", site.commit.unwrap_or("")), ("source", kind)],
            1,
        );
        e.single(
            "unipi_site_files",
            Gauge,
            "Files of the site being served.",
            site.files,
        );
        e.single(
            "unipi_site_bytes",
            Gauge,
            "Bytes of the site being served.",
            site.bytes,
        );
    }

    if let Some(n) = s.net {
        e.single(
            "unipi_net_rx_frames_total",
            Counter,
            "Frames received.",
            n.rx_frames,
        );
        e.single(
            "unipi_net_tx_frames_total",
            Counter,
            "Frames sent.",
            n.tx_frames,
        );
        e.single(
            "unipi_net_rx_lost_frames_total",
            Counter,
            "Frames lost on receive (overruns, bad frames).",
            n.rx_lost,
        );
        e.single(
            "unipi_net_rx_epoch_changes_total",
            Counter,
            "Times the network peer restarted its channel.",
            n.rx_epoch_changes,
        );
        e.single(
            "unipi_net_tx_dropped_frames_total",
            Counter,
            "Frames that could not be sent.",
            n.tx_dropped,
        );
    }

    if let Some(l) = s.syslog {
        e.family(
            "unipi_syslog_messages_total",
            Counter,
            "Syslog messages sent, or dropped because the queue was full.",
        )
        .sample("unipi_syslog_messages_total", &[("result", "sent")], l.sent)
        .sample(
            "unipi_syslog_messages_total",
            &[("result", "dropped")],
            l.dropped,
        );
        e.single(
            "unipi_syslog_truncated_total",
            Counter,
            "Syslog messages cut to the size limit.",
            l.truncated,
        );
        e.single(
            "unipi_syslog_queued_messages",
            Gauge,
            "Syslog messages waiting for the transport.",
            l.queued,
        );
        e.single(
            "unipi_syslog_connects_total",
            Counter,
            "TCP connections made to the syslog collector.",
            l.connects,
        );
        e.single(
            "unipi_syslog_up",
            Gauge,
            "1 while the syslog transport can carry messages.",
            u8::from(l.up),
        );
    }
    e.finish()
}

/// Milliseconds written as seconds with three decimals.
struct Seconds(u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn format_and_escaping() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "a \\ b\nc")
            .sample("x_total", &[("a", "q\"\\\n"), ("b", "")], 3)
            .single("y", Kind::Gauge, "y", 1.5);
        assert_eq!(
            e.finish(),
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\nx_total{a=\"q\\\"\\\\\\n\",b=\"\"} 3\n\
             # HELP y y\n# TYPE y gauge\ny 1.5\n"
        );
    }

    /// Every family once, every name prefixed and well-formed, counters
    /// ending in `_total`.
    #[test]
    fn every_family_once() {
        let http = HttpCounters {
            by_class: [0, 5, 1, 2, 0],
            ..HttpCounters::default()
        };
        let git = GitCounters {
            updated: 1,
            last_duration_ms: Some(1234),
            last_success_unix: Some(1_800_000_000),
            ..GitCounters::default()
        };
        let text = render(&Snapshot {
            server: &ServerStats::default(),
            open_connections: 3,
            http: &http,
            heap: HeapStats {
                size: 100,
                used: 10,
                peak: 20,
            },
            net: Some(NetStats::default()),
            git: Some(&git),
            site: Some(SiteInfo {
                source: "git 0123",
                commit: Some("0123"),
                files: 7,
                bytes: 99,
            }),
            cert_not_after: Some(1_900_000_000),
            syslog: Some(SyslogStats::default()),
            boot_unix: 1_800_000_000,
        });
        let mut families = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(!families.contains(&name), "{name} twice");
                families.push(name);
                assert!(name.starts_with("unipi_"), "{name}");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(Some(&name), families.last(), "{line}");
                assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            }
        }
        assert!(text.contains("unipi_http_responses_total{class=\"2xx\"} 5\n"));
        assert!(text.contains("unipi_git_last_fetch_duration_seconds 1.234\n"));
        assert!(text.contains("unipi_site_info{commit=\"0123\",source=\"git\"} 1\n"));
        assert!(text.contains("unipi_connections_open 3\n"));
        assert!(families.len() > 30, "{}", families.len());
    }
}
