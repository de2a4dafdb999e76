//! The one event loop: it drives smoltcp, TLS, HTTP and the Git client, and
//! idles until the next deadline when nothing moves.
//!
//! ```text
//! boot parameters -> TLS config (tls_cert/tls_key regions) -> fallback site
//! (site region) -> network (static or DHCP) -> listening pools
//! loop: poll interface -> connections -> git fetch -> poll interface -> wait
//! ```

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use log::{error, info, warn};
use smoltcp::time::Duration;

use crate::config::{Config, redact};
use crate::http::hook::Secret;
use crate::http::{HookOutcome, HttpConfig};
use crate::net::{Net, mac_from_name};
use crate::platform::Platform;
use crate::pull::{PullResult, Puller};
use crate::server::{HookRequest, Listen, Server, Tick, default_max_connections};
use crate::site::{Site, SiteLimits, tar};
use crate::tls::{LoopClock, Ticketer, server_config};

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

    // TLS: certificate chain and key come from read-only memory regions.
    let Some(ticketer) = Ticketer::new(clock.get()).map(Arc::new) else {
        error!("no entropy for TLS session tickets; refusing to start");
        return 1;
    };
    let tls = match (p.region(&cfg.tls_cert), p.region(&cfg.tls_key)) {
        (Some(cert), Some(key)) => match server_config(
            cert,
            key,
            clock.clone(),
            cfg.tls_resumption.then(|| ticketer.clone()),
        ) {
            Ok(c) => Some(c),
            Err(e) => {
                error!(
                    "TLS disabled: {e} (regions '{}', '{}')",
                    cfg.tls_cert, cfg.tls_key
                );
                None
            }
        },
        _ => {
            warn!(
                "no '{}'/'{}' memory regions: TLS disabled",
                cfg.tls_cert, cfg.tls_key
            );
            None
        }
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
    };
    let mut server = Server::new(&mut net, http_cfg, listen);

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
    let mut last_status = p.now();
    info!("ready");

    while p.running() {
        let now = p.now();
        let unix = p.unix_time();
        clock.set(unix);
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
                 net rx {} tx {} frames, {} lost, {} epoch changes, {} tx dropped",
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
                net.tx_dropped
            );
        }

        if let Some(dev) = p.device() {
            net.poll_with(now, dev, |net| server.replenish(net, now));
        }

        let polled = server.poll(&mut net, site.as_deref(), &tick);
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

        if let Some(done) = puller.as_mut().and_then(|f| f.poll(&mut net, now)) {
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

        // Flush what the sockets queued, then tell the peer.
        if let Some(dev) = p.device() {
            net.poll_with(now, dev, |net| server.replenish(net, now));
        }
        p.notify();

        if polled.busy || server.has_ready() {
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
