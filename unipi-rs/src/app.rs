//! The one event loop: it drives smoltcp, TLS, HTTP and the Git client, and
//! idles until the next deadline when nothing moves.
//!
//! ```text
//! boot parameters -> TLS config (tls_cert/tls_key regions) -> fallback site
//! (site region) -> network (static or DHCP) -> listening pools
//! loop: poll interface -> connections (access records, metrics requests
//!       -> observer) -> git fetch -> a slice of compression -> syslog
//!       -> poll interface -> wait
//! ```
//!
//! A new site (fallback archive, then every fetch) is served at once; its
//! compressed representations are made a slice per iteration
//! (`site/compress.rs`) and the finished site replaces it. A newer fetch
//! drops compression that is still running.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use log::{error, info, warn};
use smoltcp::time::{Duration, Instant};

use crate::acme::CertManager;
use crate::config::{Config, redact};
use crate::http::hook::Secret;
use crate::http::{HookOutcome, HttpConfig};
use crate::http::{Http01, date};
use crate::net::{Net, mac_from_name};
use crate::observe::{MachineState, Observer, PullOutcome};
use crate::platform::{HeapStats, Platform};
use crate::pull::{PullResult, Puller};
use crate::server::{HookRequest, Listen, Server, Tick, default_max_connections};
use crate::site::compress::{self, Compressor};
use crate::site::{Site, SiteLimits, tar};
use crate::tls::{CertStore, LoopClock, Protocols, Ticketer, load_pem, server_config_with};

/// Longest sleep without any deadline (housekeeping, ticket-key rotation).
const MAX_IDLE: Duration = Duration::from_secs(1);

/// Runs the server until the platform stops it ([`Platform::running`]);
/// returns 0 then, or 1 when it cannot start at all.
pub fn run<P: Platform>(p: &mut P) -> i32 {
    info!("command line: '{}'", redact(p.cmdline()));
    let (cfg, errors) = Config::parse(p.cmdline());
    for e in &errors {
        warn!("boot parameter: {e}");
    }
    log::set_max_level(cfg.log_level);

    let clock = Arc::new(LoopClock::default());
    clock.set(p.unix_time());
    let mut observer = Observer::new(&cfg, clock.get());

    // TLS: certificate chain and key come from read-only memory regions.
    let Some(ticketer) = Ticketer::new(clock.get()).map(Arc::new) else {
        error!("no entropy for TLS session tickets; refusing to start");
        return 1;
    };
    // The certificate: from the tls_cert/tls_key regions now, from ACME
    // once issued (and swapped in again at each renewal).
    let certs = Arc::new(CertStore::default());
    match (p.region(&cfg.tls_cert), p.region(&cfg.tls_key)) {
        (Some(cert), Some(key)) => match load_pem(cert, key, "the tls_cert region") {
            Ok((key, served)) => {
                info!(
                    "certificate for {} from {}, valid until {}",
                    served.subject,
                    served.issuer,
                    date::Display(served.not_after)
                );
                certs.set(key, served);
            }
            Err(e) => error!(
                "certificate regions '{}', '{}' unusable: {e}",
                cfg.tls_cert, cfg.tls_key
            ),
        },
        _ if cfg.acme.enabled => info!(
            "no '{}'/'{}' memory regions: HTTPS answers once ACME has issued a certificate",
            cfg.tls_cert, cfg.tls_key
        ),
        _ => warn!(
            "no '{}'/'{}' memory regions and no --tls: TLS disabled",
            cfg.tls_cert, cfg.tls_key
        ),
    }
    let http01 = Http01::default();
    let mut certificates =
        match CertManager::new(&cfg, p, clock.clone(), certs.clone(), http01.clone()) {
            Ok(m) => m,
            Err(e) => {
                error!("acme: {e}");
                None
            }
        };
    let tls = if certs.served().is_some() || certificates.is_some() {
        let protocols = Protocols {
            http2: cfg.http2,
            acme_tls: certificates.is_some(),
        };
        let ticketer = cfg.tls_resumption.then(|| ticketer.clone());
        match server_config_with(certs.clone(), clock.clone(), ticketer, protocols) {
            Ok(c) => Some(c),
            Err(e) => {
                error!("TLS disabled: {e}");
                None
            }
        }
    } else {
        None
    };

    // The fallback site from the archive region (the offline source).
    let limits = SiteLimits::default();
    let mut site: Option<Arc<Site>> = match p.region(&cfg.site_region) {
        Some(archive) => match tar::load(archive, &limits) {
            Ok(s) => {
                info!(
                    "site: {} files, {} bytes from the '{}' region",
                    s.len(),
                    s.total_bytes(),
                    cfg.site_region
                );
                Some(Arc::new(s))
            }
            Err(e) => {
                error!("site region '{}' unusable: {e}", cfg.site_region);
                None
            }
        },
        None => None,
    };

    let mut seed = [0u8; 8];
    if !p.fill_random(&mut seed) {
        error!("no entropy source");
        return 1;
    }
    let mac = cfg.mac.unwrap_or_else(|| mac_from_name(p.name()));
    let now = p.now();
    let Some(dev) = p.device() else {
        error!("no network device: nothing to serve on");
        return 1;
    };
    let mut net = Net::new(dev, mac, &cfg, now, u64::from_le_bytes(seed));

    let mut http_cfg = HttpConfig::from_config(&cfg);
    http_cfg.http01 = http01;
    if let Some(region) = &cfg.hook_secret_region {
        match p.region(region) {
            Some(bytes) => {
                let secret = bytes
                    .iter()
                    .position(|&b| b == 0)
                    .map_or(bytes, |end| &bytes[..end])
                    .trim_ascii();
                http_cfg.hook_secret = Some(Secret::new(secret));
            }
            None => error!("--hook-secret-region: no memory region '{region}'; webhook disabled"),
        }
    }
    if http_cfg.hook_secret.is_some() {
        info!(
            "webhook requests must be signed (GitHub, Gitea/Forgejo) or carry the token (GitLab)"
        );
    }
    let http_cfg = Arc::new(http_cfg);
    let mut compressing = site
        .as_ref()
        .and_then(|s| start_compression(s, &http_cfg, p.heap(), p.now()));
    let heap = p.heap();
    let max_connections = cfg
        .max_connections
        .unwrap_or_else(|| default_max_connections(heap));
    let listen = Listen {
        port: cfg.port,
        https_port: cfg.https_port,
        tls,
        max_connections,
        min_send_rate: cfg.min_send_rate,
        metrics_port: cfg.metrics_port,
    };
    let mut server = Server::new(&mut net, http_cfg.clone(), listen);

    let mut puller = match Puller::new(&cfg, p, clock.clone()) {
        Ok(f) => f,
        Err(e) => {
            error!("{e}");
            None
        }
    };
    if site.is_none() && puller.is_none() {
        warn!(
            "no site: neither a --remote nor a '{}' region; answering 503",
            cfg.site_region
        );
    }
    // Webhook requests waiting for the pull generation that answers them.
    let mut waiting_hooks: Vec<(u64, HookRequest)> = Vec::new();
    let mut last_rotate = 0;
    let mut expiry_warned = 0;
    let mut last_status = p.now();
    info!("ready");

    while p.running() {
        let now = p.now();
        let unix = p.unix_time();
        clock.set(unix);
        observer.tick(unix, &net);
        if unix.saturating_sub(last_rotate) >= 60 {
            last_rotate = unix;
            ticketer.rotate(unix);
        }

        let tick = Tick {
            now,
            unix,
            heap: p.heap(),
        };
        if cfg.status_interval > 0
            && now >= last_status + Duration::from_secs(u64::from(cfg.status_interval))
        {
            last_status = now;
            let st = server.stats();
            let net = p.net_stats().unwrap_or_default();
            info!(
                "status: {} connections open, {} accepted, {} refused, {} evicted idle, {} evicted slow, \
                 {} too slow, {} failed; heap {} used, {} peak, {} size; \
                 net rx {} tx {} frames, {} lost, {} epoch changes, {} tx dropped{}",
                server.open_connections(),
                st.accepted,
                st.refused,
                st.evicted_idle,
                st.evicted_slow,
                st.too_slow,
                st.failed,
                tick.heap.used,
                tick.heap.peak,
                tick.heap.size,
                net.rx_frames,
                net.tx_frames,
                net.rx_lost,
                net.rx_epoch_changes,
                net.tx_dropped,
                CertLine(certs.served())
            );
        }

        if let Some(dev) = p.device() {
            net.poll_with(now, dev, |net| server.replenish(net, now));
        }

        let polled = server.poll(&mut net, site.as_deref(), &tick, &mut observer);
        if !polled.metrics.is_empty() {
            if let Some(served) = certs.served() {
                observer.set_certificate_expiry(served.not_after as i64);
            }
            let text = observer.exposition(MachineState {
                server: &server,
                heap: tick.heap,
                net: p.net_stats(),
                site: site.as_deref(),
            });
            for m in polled.metrics {
                server.complete_metrics(m, text.clone(), now, unix);
            }
        }
        for h in polled.hooks {
            match &mut puller {
                Some(f) => waiting_hooks.push((f.request_pull(), h)),
                None => server.complete_hook(
                    h,
                    HookOutcome::Failed {
                        reason: String::from("no --remote configured"),
                    },
                    now,
                    unix,
                ),
            }
        }

        if let Some(m) = &mut certificates {
            m.poll(&mut net, now, unix);
        }
        CertManager::check_expiry(&certs, &mut expiry_warned, unix);

        if let Some(done) = puller.as_mut().and_then(|f| f.poll(&mut net, now)) {
            observer.pulled(
                match &done.result {
                    PullResult::Updated { .. } => PullOutcome::Updated,
                    PullResult::Unchanged => PullOutcome::Unchanged,
                    PullResult::Failed(_) => PullOutcome::Failed,
                },
                done.duration,
            );
            let outcome = match done.result {
                PullResult::Updated {
                    site: new_site,
                    commit,
                } => {
                    site = Some(Arc::from(new_site));
                    let heap = p.heap();
                    info!(
                        "serving {commit}; heap {} of {} bytes in use, peak {}",
                        heap.used, heap.size, heap.peak
                    );
                    compressing = site
                        .as_ref()
                        .and_then(|s| start_compression(s, &http_cfg, heap, now));
                    HookOutcome::Updated { commit }
                }
                PullResult::Unchanged => HookOutcome::Unchanged,
                PullResult::Failed(reason) => HookOutcome::Failed { reason },
            };
            waiting_hooks.retain(|&(generation, h)| {
                if generation <= done.generation {
                    server.complete_hook(h, outcome.clone(), now, unix);
                    false
                } else {
                    true
                }
            });
        }

        if let Some(done) = compressing.as_mut().and_then(|c| c.step(now)) {
            compressing = None;
            site = Some(Arc::new(done.site));
            let heap = p.heap();
            info!(
                "site: {}; heap {} of {} bytes in use, peak {}",
                done.stats, heap.used, heap.size, heap.peak
            );
        }
        // Warnings and errors of this iteration, then access lines, off
        // the box.
        if observer.wants_logs() {
            let dropped = p.drain_log(&mut |level, text| observer.log(level, text));
            observer.log_dropped(dropped);
        }
        observer.poll(&mut net, now);

        // Flush what the sockets queued, then tell the peer.
        if let Some(dev) = p.device() {
            net.poll_with(now, dev, |net| server.replenish(net, now));
        }
        p.notify();

        if polled.busy || server.has_ready() || compressing.is_some() {
            // Work left that needs no input: no sleep.
            continue;
        }
        let mut deadline = now + MAX_IDLE;
        if cfg.status_interval > 0 {
            deadline =
                deadline.min(last_status + Duration::from_secs(u64::from(cfg.status_interval)));
        }
        for d in [
            net.poll_at(now),
            server.deadline(),
            puller.as_ref().and_then(|f| f.deadline()),
            certificates.as_ref().and_then(|m| m.deadline()),
            observer.deadline(),
        ]
        .into_iter()
        .flatten()
        {
            deadline = deadline.min(d);
        }
        if deadline > now {
            p.wait(deadline);
        }
    }
    0
}

/// The certificate part of the status line.
struct CertLine(Option<crate::tls::Served>);

impl core::fmt::Display for CertLine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.0 {
            Some(s) => write!(
                f,
                "; certificate {} from {} until {}",
                s.subject,
                s.issuer,
                date::Display(s.not_after)
            ),
            None => f.write_str("; no certificate"),
        }
    }
}

/// Starts making the compressed representations of `site` (`None`: nothing
/// to do). What it makes may take at most a quarter of the heap that is
/// free now.
fn start_compression(
    site: &Arc<Site>,
    http: &HttpConfig,
    heap: HeapStats,
    now: Instant,
) -> Option<Compressor> {
    let settings = compress::Settings {
        mode: http.compression,
        max_made_bytes: heap.size.saturating_sub(heap.used) / 4,
    };
    let c = Compressor::new(site.clone(), settings, &|path| http.compressible(path), now)?;
    info!(
        "site: compressing in the background; heap {} of {} bytes in use, peak {}",
        heap.used, heap.size, heap.peak
    );
    Some(c)
}
