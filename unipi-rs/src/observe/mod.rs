//! Observability: the access log, logs off the box and metrics.
//!
//! - [`access`]: the record of one response, whatever the framing;
//! - [`syslog`]: RFC 5424 over UDP or TCP to `--syslog`, bounded, never
//!   blocking;
//! - [`metrics`]: the Prometheus text exposition for `--metrics-port`
//!   (the certificate expiry it exports comes from [`crate::tls::CertStore`]);
//! - [`time`]: wall-clock time as the logs write it;
//! - here: [`Observer`], the one place the event loop hands what it
//!   observes — access records ([`AccessSink`]), log records, pulls — and
//!   asks for the metrics.
//!
//! ```text
//! http (h1, h2) --AccessRecord--> Observer --count--> HttpCounters --> metrics
//!                                          --console line (--access-log)
//!                                          --access line--> Syslog queue --> UDP / TCP
//! platform logger --warn/error (Platform::drain_log)--> Observer --log line--> Syslog queue
//! ```
//!
//! `docs/observability.md` describes the flags, the messages and every
//! metric.

pub mod access;
pub mod metrics;
pub mod syslog;
pub mod time;

use alloc::string::String;

use log::info;
use smoltcp::time::{Duration, Instant};

use self::access::{AccessRecord, AccessSink, Delivery};
use self::metrics::{GitCounters, SiteInfo, Snapshot};
use self::syslog::queue::QueueLimits;
use self::syslog::{Syslog, SyslogConfig};
use crate::config::Config;
use crate::net::Net;
use crate::platform::{HeapStats, NetStats};
use crate::server::Server;
use crate::site::Site;

/// HTTP responses as the metrics count them (from the access records).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpCounters {
    /// Responses by status class: `1xx` … `5xx`.
    pub by_class: [u64; 5],
    /// Responses cut short (also counted in their class).
    pub aborted: u64,
    /// Bytes handed to the transport (status lines, header blocks, bodies).
    pub bytes: u64,
    /// Of those, body bytes.
    pub body_bytes: u64,
}

impl HttpCounters {
    /// Counts one response.
    pub fn count(&mut self, r: &AccessRecord) {
        if let Some(i) = r.status_class()
            && let Some(n) = self.by_class.get_mut(i)
        {
            *n += 1;
        }
        if r.delivery == Delivery::Aborted {
            self.aborted += 1;
        }
        self.bytes += r.bytes;
        self.body_bytes += r.body_bytes;
    }
}

/// How a Git pull ended, as the metrics count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullOutcome {
    /// A new commit is served.
    Updated,
    /// The served commit is still the newest.
    Unchanged,
    /// The pull failed.
    Failed,
}

/// The machine's state the metrics show, besides what the [`Observer`]
/// keeps itself.
#[derive(Clone, Copy)]
pub struct MachineState<'a> {
    /// The server (connections, TLS).
    pub server: &'a Server,
    /// Heap figures.
    pub heap: HeapStats,
    /// Network device counters.
    pub net: Option<NetStats>,
    /// The site served now.
    pub site: Option<&'a Site>,
}

/// See the module documentation.
pub struct Observer {
    /// Access lines on the console (`--access-log`).
    console_access: bool,
    http: HttpCounters,
    syslog: Option<Syslog>,
    git: Option<GitCounters>,
    cert_not_after: Option<i64>,
    boot_unix: u64,
    /// Wall clock of the current event-loop iteration.
    unix: u64,
    /// Log records the platform could not keep for us.
    log_dropped: u64,
}

impl Observer {
    /// The observer the boot parameters ask for, at wall-clock time
    /// `unix`.
    pub fn new(cfg: &Config, unix: u64) -> Observer {
        let syslog = cfg.syslog.as_ref().map(|target| {
            Syslog::new(SyslogConfig {
                target: target.clone(),
                facility: cfg.syslog_facility,
                hostname: cfg.name.clone().or_else(|| cfg.hostname.clone()),
                limits: QueueLimits::default(),
            })
        });
        Observer {
            console_access: cfg.access_log,
            http: HttpCounters::default(),
            syslog,
            git: cfg.remote.as_ref().map(|_| GitCounters::default()),
            cert_not_after: None,
            boot_unix: unix,
            unix,
            log_dropped: 0,
        }
    }

    /// Starts an event-loop iteration: the wall clock for what is
    /// observed next, and the interface's address (syslog's HOSTNAME
    /// without `--hostname`).
    pub fn tick(&mut self, unix: u64, net: &Net) {
        self.unix = unix;
        if let Some(s) = &mut self.syslog {
            s.update_hostname(net);
        }
    }

    /// True when log records go off the box (`--syslog`): only then
    /// [`Observer::log`] does anything.
    pub fn wants_logs(&self) -> bool {
        self.syslog.is_some()
    }

    /// A warning or error the platform's logger wrote (to the console
    /// already): sent to syslog.
    pub fn log(&mut self, level: log::Level, text: &str) {
        if let Some(s) = &mut self.syslog {
            s.log(level, text, self.unix);
        }
    }

    /// Counts log records the platform had to drop before they reached
    /// [`Observer::log`].
    pub fn log_dropped(&mut self, n: u64) {
        self.log_dropped += n;
    }

    /// The served certificate's `notAfter` (unix seconds).
    pub fn set_certificate_expiry(&mut self, not_after: i64) {
        self.cert_not_after = Some(not_after);
    }

    /// A Git pull ended after `took`.
    pub fn pulled(&mut self, outcome: PullOutcome, took: Duration) {
        let unix = self.unix;
        let g = self.git.get_or_insert_with(GitCounters::default);
        match outcome {
            PullOutcome::Updated => g.updated += 1,
            PullOutcome::Unchanged => g.unchanged += 1,
            PullOutcome::Failed => g.failed += 1,
        }
        if outcome != PullOutcome::Failed {
            g.last_success_unix = Some(unix);
        }
        g.last_duration_ms = Some(took.total_millis());
    }

    /// Moves queued syslog messages to the network.
    pub fn poll(&mut self, net: &mut Net, now: Instant) {
        if let Some(s) = &mut self.syslog {
            s.poll(net, now);
        }
    }

    /// When [`Observer::poll`] must run again without network input.
    pub fn deadline(&self) -> Option<Instant> {
        self.syslog.as_ref().and_then(Syslog::deadline)
    }

    /// Responses counted so far.
    pub fn http(&self) -> &HttpCounters {
        &self.http
    }

    /// The metrics exposition (Prometheus text format 0.0.4).
    pub fn exposition(&self, m: MachineState<'_>) -> String {
        let site = m.site.map(|s| SiteInfo {
            source: &s.meta().source,
            commit: s.meta().commit.as_deref(),
            files: s.len(),
            bytes: s.total_bytes(),
        });
        let mut syslog = self.syslog.as_ref().map(Syslog::stats);
        if let Some(s) = &mut syslog {
            s.dropped += self.log_dropped;
        }
        metrics::render(&Snapshot {
            server: &m.server.stats(),
            open_connections: m.server.open_connections(),
            http: &self.http,
            heap: m.heap,
            net: m.net,
            git: self.git.as_ref(),
            site,
            cert_not_after: self.cert_not_after,
            syslog,
            boot_unix: self.boot_unix,
        })
    }
}

impl AccessSink for Observer {
    fn record(&mut self, r: &AccessRecord) {
        self.http.count(r);
        if self.console_access {
            info!("{}", r.console());
        }
        if let Some(s) = &mut self.syslog {
            s.access(r, self.unix);
        }
    }
}
