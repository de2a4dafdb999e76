//! Tests of boot-parameter parsing.

use super::*;

#[test]
fn secrets_are_redacted() {
    assert_eq!(
        redact(
            "--ipv4=1.2.3.4/24 --hook-secret=s3cr3t --hook-secret t0p --remote=https://bob:tok@h/r.git#b"
        ),
        "--ipv4=1.2.3.4/24 --hook-secret=*** --hook-secret *** --remote=https://bob:***@h/r.git#b"
    );
    assert_eq!(
        redact("--remote https://tok@h/x"),
        "--remote https://***@h/x"
    );
    assert_eq!(redact("--remote=git://h/a@b"), "--remote=git://h/a@b");
    assert_eq!(redact("--ssh-key=ed25519:AAAA --x"), "--ssh-key=*** --x");
}
use alloc::vec;

fn ok(cmdline: &str) -> Config {
    let (c, e) = Config::parse(cmdline);
    assert!(e.is_empty(), "{cmdline}: {e:?}");
    c
}

fn err(cmdline: &str) -> (Config, Vec<ConfigError>) {
    let (c, e) = Config::parse(cmdline);
    assert!(!e.is_empty(), "{cmdline} should fail");
    (c, e)
}

#[test]
fn defaults() {
    let c = ok("");
    assert_eq!(c, Config::default());
    assert_eq!(c.port, 80);
    assert_eq!(c.https_port, 4433);
    assert_eq!(c.hook, "/hook");
    assert_eq!(c.remote_ca, "remote_ca");
    assert_eq!(c.site_region, "site");
    assert_eq!(c.tls_cert, "tls_cert");
    assert_eq!(c.tls_key, "tls_key");
    assert_eq!(c.max_connections, None);
    assert_eq!(c.default_mime_type, "application/octet-stream");
    assert_eq!(c.log_level, LevelFilter::Info);
    assert_eq!(ok("   \t "), Config::default());
}

#[test]
fn make_command_line() {
    let c = ok("--ipv4=192.168.254.10/24 --ipv4-gateway=192.168.254.1 \
                --remote=git://192.168.254.2/site.git");
    assert_eq!(
        c.ipv4,
        Some(Ipv4Cidr::new(Ipv4Address::new(192, 168, 254, 10), 24))
    );
    assert_eq!(c.ipv4_gateway, Some(Ipv4Address::new(192, 168, 254, 1)));
    assert_eq!(c.remote.as_deref(), Some("git://192.168.254.2/site.git"));
}

#[test]
fn solo5_options_stripped() {
    let c = ok("--solo5:quiet --solo5:debug --port=8080");
    assert_eq!(c.port, 8080);
    // Only leading ones are Solo5's.
    let (_, e) = err("--port=8080 --solo5:quiet");
    assert!(matches!(e[0], ConfigError::Unknown { .. }));
}

#[test]
fn both_forms() {
    for line in [
        "--hostname=muen.sk --port=8080",
        "--hostname muen.sk --port 8080",
    ] {
        let c = ok(line);
        assert_eq!(c.hostname.as_deref(), Some("muen.sk"));
        assert_eq!(c.port, 8080);
    }
    let (c, e) = err("--hostname --port 81");
    assert_eq!(e, vec![ConfigError::MissingValue { flag: "hostname" }]);
    assert_eq!(c.port, 81);
    assert_eq!(
        err("--port").1,
        vec![ConfigError::MissingValue { flag: "port" }]
    );
    // An empty inline value is a value, and an invalid one.
    assert!(matches!(err("--port=").1[0], ConfigError::Invalid { .. }));
}

#[test]
fn network_flags() {
    let c = ok("--mac=02:00:5e:10:00:01 --dns=9.9.9.9 --dns 1.1.1.1 --dns=9.9.9.9");
    assert_eq!(
        c.mac,
        Some(EthernetAddress([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]))
    );
    assert_eq!(
        c.dns,
        vec![IpAddress::v4(9, 9, 9, 9), IpAddress::v4(1, 1, 1, 1)]
    );
    let c = ok("--dns-servers=udp:8.8.8.8,8.8.4.4:53");
    assert_eq!(c.dns.len(), 2);
    for bad in [
        "--ipv4=1.2.3.4",
        "--ipv4=1.2.3.4/33",
        "--ipv4=1.2.3/24",
        "--ipv4=0.0.0.0/8",
        "--ipv4=224.0.0.1/4",
        "--ipv4=1.2.3.4/x",
        "--ipv4-gateway=300.1.1.1",
        "--dns=tcp:1.1.1.1",
        "--dns=1.1.1.1:54",
        "--dns-servers=1.1.1.1,nope",
        "--mac=01:00:5e:00:00:01",
        "--mac=00:00:00:00:00:00",
        "--mac=02:00:5e:10:00",
        "--mac=02:00:5e:10:00:01:02",
        "--mac=02:00:5e:10:00:zz",
        "--mac=020:00:5e:10:00:1",
    ] {
        let (c, e) = err(bad);
        assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}: {e:?}");
        assert_eq!(c.ipv4, None);
        assert_eq!(c.mac, None);
    }
    let (c, e) = err("--dns=1.1.1.1 --dns=1.1.1.2 --dns=1.1.1.3 --dns=1.1.1.4 --dns=1.1.1.5");
    assert_eq!(c.dns.len(), MAX_DNS_SERVERS);
    assert_eq!(e.len(), 1);
}

#[test]
fn ipv6_flags() {
    let c = ok("--ipv6=2001:db8::10/64 --ipv6-gateway=fe80::1 \
                --accept-router-advertisements=false");
    assert_eq!(
        c.ipv6,
        Some(Ipv6Cidr::new(
            Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10),
            64
        ))
    );
    assert_eq!(
        c.ipv6_gateway,
        Some(Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1))
    );
    assert!(!c.accept_router_advertisements);
    assert!(ok("").accept_router_advertisements);
    assert_eq!(ok("").ip_versions, IpVersions::Both);
    assert_eq!(
        ok("--ipv6-gateway [fd00::1] --ipv6 fd00::10/128").ipv6_gateway,
        Some(Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1))
    );
    for bad in [
        "--ipv6=2001:db8::10",
        "--ipv6=2001:db8::10/129",
        "--ipv6=2001:db8::10/x",
        "--ipv6=fe80::1/64",
        "--ipv6=::/0",
        "--ipv6=::1/128",
        "--ipv6=ff02::1/64",
        "--ipv6=::ffff:10.0.0.1/96",
        "--ipv6=10.0.0.1/24",
        "--ipv6=2001:db8::10%eth0/64",
        "--ipv6-gateway=ff02::2",
        "--ipv6-gateway=::",
        "--ipv6-gateway=10.0.0.1",
        "--accept-router-advertisements=maybe",
        "--ipv4-only=1",
    ] {
        let (c, e) = err(bad);
        assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}: {e:?}");
        assert_eq!((c.ipv6, c.ipv6_gateway), (None, None), "{bad}");
    }
}

#[test]
fn ip_versions() {
    assert_eq!(ok("--ipv4-only=true").ip_versions, IpVersions::Ipv4Only);
    assert_eq!(ok("--ipv6-only true").ip_versions, IpVersions::Ipv6Only);
    assert_eq!(ok("--ipv6-only=false").ip_versions, IpVersions::Both);
    assert_eq!(
        ok("--ipv4-only=true --ipv4-only=false").ip_versions,
        IpVersions::Both
    );
    assert!(IpVersions::Ipv4Only.ipv4() && !IpVersions::Ipv4Only.ipv6());
    assert!(!IpVersions::Ipv6Only.ipv4() && IpVersions::Ipv6Only.ipv6());
    assert!(IpVersions::Both.ipv4() && IpVersions::Both.ipv6());
    // Contradictions: the first one stays in force.
    let (c, e) = err("--ipv4-only=true --ipv6-only=true");
    assert_eq!(c.ip_versions, IpVersions::Ipv4Only);
    assert!(matches!(
        e[0],
        ConfigError::Invalid {
            flag: "ipv6-only",
            ..
        }
    ));
    // A family that is off makes its addresses moot, and says so.
    let (c, e) = err("--ipv6-only=true --ipv4=10.0.0.2/24");
    assert_eq!(c.ip_versions, IpVersions::Ipv6Only);
    assert!(matches!(e[0], ConfigError::Conflict { .. }), "{e:?}");
    let (_, e) = err("--ipv6=2001:db8::1/64 --ipv4-only=true");
    assert!(matches!(e[0], ConfigError::Conflict { .. }), "{e:?}");
}

#[test]
fn dns_servers_of_both_versions() {
    let c = ok("--dns=2001:db8::53 --dns=[2001:db8::54]:53 \
                --dns-servers=udp:10.0.0.1:53,udp:[fd00::3]");
    assert_eq!(
        c.dns,
        vec![
            IpAddress::v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53),
            IpAddress::v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x54),
            IpAddress::v4(10, 0, 0, 1),
            IpAddress::v6(0xfd00, 0, 0, 0, 0, 0, 0, 3),
        ]
    );
    for bad in [
        "--dns=[2001:db8::53]:54",
        "--dns=[2001:db8::53]x",
        "--dns=[2001:db8::53",
        "--dns=2001:db8::53:54:55:56:57:58",
        "--dns=ff02::1",
        "--dns=::",
        "--dns=[10.0.0.1]",
        "--dns=0.0.0.0",
        "--dns=tcp:[2001:db8::53]",
    ] {
        let (c, e) = err(bad);
        assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}: {e:?}");
        assert!(c.dns.is_empty(), "{bad}");
    }
}

#[test]
fn ports_and_numbers() {
    let c = ok(
        "--port=8080 --https-port=443 --hsts=31536000 --max-connections=10 \
                --idle-timeout=5 --header-timeout=2 --max-header-bytes=4096",
    );
    assert_eq!((c.port, c.https_port), (8080, 443));
    assert_eq!(c.hsts, Some(31_536_000));
    assert_eq!(c.max_connections, Some(10));
    assert_eq!((c.idle_timeout, c.header_timeout), (5, 2));
    assert_eq!(c.max_header_bytes, 4096);
    for bad in [
        "--port=0",
        "--port=65536",
        "--port=-1",
        "--port=+80",
        "--port=8o",
        "--https-port=99999999999999999999999",
        "--hsts=-5",
        "--max-connections=0",
        "--idle-timeout=0",
        "--header-timeout=601",
        "--max-header-bytes=100",
    ] {
        let (c, e) = err(bad);
        assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}");
        assert_eq!((c.port, c.https_port), (80, 4433));
    }
}

#[test]
fn port_conflicts() {
    let (c, e) = err("--port=4433");
    assert_eq!((c.port, c.https_port), (4433, 443));
    assert!(matches!(e[0], ConfigError::Conflict { .. }));
    let (c, _) = err("--https-port=80");
    assert_eq!((c.port, c.https_port), (8080, 80));
}

#[test]
fn strings() {
    let c = ok(
        "--hostname=Muen.SK. --name=Unipi-1.muen.sk --remote=https://git.example/site.git#gh-pages \
                --remote-ca=ca_certs --site=fallback|site --tls-cert=cert --tls-key=key \
                --hook=/secret/abc-123 --default=https://muen.sk/ \
                --default-mime-type=text/plain;charset=latin1",
    );
    assert_eq!(c.hostname.as_deref(), Some("muen.sk"));
    assert_eq!(c.name.as_deref(), Some("unipi-1.muen.sk"));
    assert_eq!(
        c.remote.as_deref(),
        Some("https://git.example/site.git#gh-pages")
    );
    assert_eq!(c.remote_ca, "ca_certs");
    assert_eq!(c.site_region, "fallback|site");
    assert_eq!((c.tls_cert.as_str(), c.tls_key.as_str()), ("cert", "key"));
    assert_eq!(c.hook, "/secret/abc-123");
    assert_eq!(c.default_url.as_deref(), Some("https://muen.sk/"));
    assert_eq!(c.default_mime_type, "text/plain;charset=latin1");
    for bad in [
        "--hostname=-bad.sk",
        "--hostname=a..b",
        "--hostname=a_b.sk",
        "--name=a/b",
        "--name=",
        "--remote=nothing",
        "--remote-ca=",
        "--site=a/b",
        "--tls-cert=x!y",
        "--hook=hook",
        "--hook=/a?b",
        "--hook=/a%20",
        "--default-mime-type=text",
        "--default-mime-type=text/plain;x",
        "--default-mime-type=te(t/plain",
        "--mime-type=foo",
        "--mime-type=:text/plain",
        "--mime-type=/x:bad",
        "--log-level=loud",
    ] {
        let (_, e) = err(bad);
        assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}: {e:?}");
    }
    let (c, _) = err("--hook=nope");
    assert_eq!(c.hook, "/hook");
}

#[test]
fn mime_overrides() {
    let c = ok(
        "--mime-type=/feed:application/rss+xml --mime-type=a:b:text/plain \
                --mime-type feed:application/atom+xml",
    );
    assert_eq!(
        c.mime_types,
        vec![
            ("feed".into(), "application/atom+xml".into()),
            ("a:b".into(), "text/plain".into())
        ]
    );
}

#[test]
fn resumption_and_status() {
    assert_eq!(ok("--send-timeout=7").send_timeout, 7);
    assert!(!ok("--access-log=off").access_log);
    assert!(ok("").access_log);
    assert_eq!(ok("").send_timeout, 60);
    let c = ok("--tls-resumption=off --status-interval 5");
    assert!(!c.tls_resumption);
    assert_eq!(c.status_interval, 5);
    assert!(ok("").tls_resumption);
    assert_eq!(ok("").status_interval, 0);
    let (_, errs) = Config::parse("--tls-resumption=maybe --status-interval=-1");
    assert_eq!(errs.len(), 2);
}

#[test]
fn compression() {
    assert_eq!(ok("").compression, Compression::On);
    assert_eq!(ok("--compression=off").compression, Compression::Off);
    assert_eq!(ok("--compression STATIC").compression, Compression::Static);
    assert_eq!(ok("--compression=on").compression, Compression::On);
    let (c, e) = err("--compression=off --compression=br");
    assert_eq!(c.compression, Compression::Off);
    assert!(matches!(e[0], ConfigError::Invalid { .. }), "{e:?}");
}

#[test]
fn observability_flags() {
    use crate::observe::syslog::target::{Host, Transport};
    let c = ok("--syslog=tcp://192.168.254.4:601 --syslog-facility=daemon --metrics-port 9100");
    let t = c.syslog.unwrap();
    assert_eq!(t.transport, Transport::Tcp);
    assert_eq!(t.host, Host::Ip(Ipv4Address::new(192, 168, 254, 4)));
    assert_eq!(t.port, 601);
    assert_eq!(c.syslog_facility, Facility::Daemon);
    assert_eq!(c.metrics_port, Some(9100));
    let c = ok("--syslog logs.example.org");
    assert_eq!(c.syslog.unwrap().transport, Transport::Udp);
    assert_eq!(ok("").syslog, None);
    assert_eq!(ok("").metrics_port, None);
    for bad in [
        "--syslog=http://x",
        "--syslog=x:0",
        "--syslog=[::1]",
        "--syslog-facility=kern",
        "--metrics-port=0",
    ] {
        let (c, e) = err(bad);
        assert!(matches!(e[0], ConfigError::Invalid { .. }), "{bad}: {e:?}");
        assert_eq!((c.syslog, c.metrics_port), (None, None));
    }
    let (c, e) = err("--metrics-port=4433");
    assert_eq!(c.metrics_port, None);
    assert!(matches!(e[0], ConfigError::Conflict { .. }));
}

#[test]
fn log_levels() {
    for (v, l) in [
        ("error", LevelFilter::Error),
        ("warn", LevelFilter::Warn),
        ("INFO", LevelFilter::Info),
        ("debug", LevelFilter::Debug),
        ("trace", LevelFilter::Trace),
    ] {
        assert_eq!(ok(&alloc::format!("--log-level={v}")).log_level, l);
    }
}

#[test]
fn unknown_and_unsupported() {
    let (c, e) = Config::parse(
        "--ssh-password pw --monitor 10.0.0.2 \
         --cert-key-type=ed25519 --cert-bits=4096 --account-key-type=rsa \
         --account-bits=2048 --frobnicate=1 stray --port=81",
    );
    assert_eq!(c.port, 81);
    let unsupported = e
        .iter()
        .filter(|x| matches!(x, ConfigError::Unsupported { .. }))
        .count();
    assert_eq!(unsupported, 4, "{e:?}");
    assert!(e.contains(&ConfigError::Invalid {
        flag: "account-key-type",
        value: "rsa".into(),
        reason: KEY_TYPE,
    }));
    assert!(e.contains(&ConfigError::Unknown {
        flag: "--frobnicate=1".into()
    }));
    assert!(e.contains(&ConfigError::UnexpectedArgument {
        arg: "stray".into()
    }));
    let msg = alloc::format!("{}", e[0]);
    assert!(msg.contains("not supported"), "{msg}");
}

#[test]
fn unipi_acme_flags() {
    let (c, e) = Config::parse(
        "--tls --production --hostname=muen.sk --email=me@muen.sk \
         --cert-seed=YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo= --account-seed=my-account-seed-text \
         --acme-name=www.muen.sk --acme-challenge=tls-alpn-01 --cert-key-type=ecdsa",
    );
    assert!(e.is_empty(), "{e:?}");
    assert!(c.acme.enabled && c.acme.production && c.acme.tls_alpn);
    assert_eq!(
        c.acme.cert_seed.as_deref(),
        Some(&b"abcdefghijklmnopqrstuvwxyz"[..])
    );
    assert_eq!(
        c.acme.account_seed.as_deref(),
        Some(&b"my-account-seed-text"[..])
    );
    assert_eq!(c.acme.extra_names, ["www.muen.sk"]);
    assert!(!alloc::format!("{:?}", c.acme).contains("abcdef"));
    let (c, e) =
        Config::parse("--tls=off --acme-directory=https://ca.example/dir --cert-seed=short");
    assert!(c.acme.enabled, "a directory implies --tls");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        !alloc::format!("{}", e[0]).contains("short"),
        "seeds are not echoed"
    );
}

#[test]
fn errors_display_safely() {
    let (_, e) = Config::parse(&alloc::format!("--port={}", "9".repeat(500)));
    let msg = alloc::format!("{}", e[0]);
    assert!(msg.len() < 120, "{msg}");
    let (_, e) = Config::parse("--hook=/a\u{7}b");
    assert!(!alloc::format!("{}", e[0]).contains('\u{7}'));
}
