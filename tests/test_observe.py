"""Logs and metrics off the box, end to end in QEMU with real peers.

* SyslogTcp: the guest sends RFC 5424 syslog over TCP (RFC 6587 octet
  counting) to 192.168.254.5:601, a guestfwd to a relay into Debian's
  rsyslogd (imtcp on 127.0.0.1, started by the test with its own
  configuration, stopped by pid). QEMU's guestfwd forwards TCP only, which
  is why UDP syslog is tested in-process instead
  (unipi-rs/tests/observe_in_process.rs). A crawl of htdocs with curl must
  arrive as one access line per response with its status and body bytes;
  then rsyslog is stopped and a timed series of requests must still succeed
  (both series are timed and reported, speed is not asserted); once rsyslog
  is back, a new request's line must arrive again (reconnection).
* DeadCollector: a collector address nobody answers; serving must not
  suffer (smoltcp's ARP requests are rate-limited per interface).
* Metrics: --metrics-port mapped by a hostfwd; Prometheus' promtool checks
  every scrape, one of them taken while wrk loads the server, and the
  counters must have moved by at least what the load and curl did.

Everything stays on 127.0.0.1 (restricted user network)."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness as h

CA = h.ROOT / "certs" / "dev" / "ca.pem"
HTDOCS = h.ROOT / "htdocs"
GUEST_IP = "192.168.254.10"
SYSLOG_ADDR = "192.168.254.5"  # .2 git://, .3 QEMU's DNS, .4 test_git's https remote
SERIES = int(os.environ.get("OBSERVE_SERIES", "30"))


def log(msg):
    print(f"[observe] {msg}", flush=True)


def unipi(bootparams):
    """The unipi subject fetching build/site.git over git:// (its commit is
    what the metrics name), with the development certificate."""
    h.require(h.BUILD / "unipi.muen", h.BUILD / "site.git")
    return dict(name="unipi", elf=h.BUILD / "unipi.muen", ram=128, nets=["net0"],
                bootparams=f"--ipv4={GUEST_IP}/24 --remote=git://{h.GIT_ADDR}/site.git {bootparams}",
                memory={"tls_cert": str(h.ROOT / "certs/dev/server.pem"),
                        "tls_key": str(h.ROOT / "certs/dev/server.key")},
                events=[(0, "solo5_exit", "exit"), (1, "net0|notify", "netnotify"), (2, "yield", "yield")])


class Rsyslog:
    """Debian's rsyslogd with a TCP input on 127.0.0.1:port and a file that
    keeps what it parsed of every message."""

    def __init__(self, port):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="unipi-rsyslog-")
        self.out = os.path.join(self.dir, "messages.log")
        self.conf = os.path.join(self.dir, "rsyslog.conf")
        with open(self.conf, "w") as f:
            f.write(f'''global(workDirectory="{self.dir}")
module(load="imtcp")
template(name="parsed" type="string"
         string="%syslogfacility%|%syslogseverity%|%hostname%|%app-name%|%msgid%|%structured-data%|%rawmsg%\\n")
ruleset(name="unipi") {{ action(type="omfile" file="{self.out}" template="parsed") }}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="unipi")
''')
        self.proc = None

    def start(self):
        if shutil.which("rsyslogd") is None:
            raise AssertionError("rsyslogd is missing: apt-get install rsyslog")
        self.proc = subprocess.Popen(["rsyslogd", "-n", "-f", self.conf, "-i", os.path.join(self.dir, "pid")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("rsyslogd did not listen within 15 s")

    def stop(self):
        """Stops it by pid (SIGTERM, then SIGKILL)."""
        h.stop_process(self.proc)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def messages(self):
        """[(facility, severity, hostname, app, msgid, sd, raw, msg)]"""
        try:
            with open(self.out, errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            f = line.split("|", 6)
            if len(f) < 7:
                continue
            msg = f[6].split(" ", 7)[7] if f[6].count(" ") >= 7 else ""
            out.append((int(f[0]), int(f[1]), f[2], f[3], f[4], f[5], f[6], msg))
        return out

    def access(self):
        """[(method, path, status, body bytes, user agent)] of the access lines."""
        rx = re.compile(r'^\S+ - - \[[^\]]+\] "(\S+) (\S+)(?: \S+)?" (\d{3}) (\d+) "[^"]*" "([^"]*)" \d+\.\d{3}')
        out = []
        for m in self.messages():
            if m[4] == "access":
                a = rx.match(m[7])
                if a:
                    out.append((a[1], a[2], int(a[3]), int(a[4]), a[5]))
        return out


def wait_until(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def timed_series(port, n):
    """n sequential HTTPS requests for / (curl, certificate checked); returns
    (seconds, failures, slowest request's seconds)."""
    expected = (HTDOCS / "index.html").read_bytes()
    failures, slowest = 0, 0.0
    t0 = time.monotonic()
    for _ in range(n):
        t1 = time.monotonic()
        r = h.curl(f"https://127.0.0.1:{port}/", "--cacert", str(CA), timeout=10, check=False)
        slowest = max(slowest, time.monotonic() - t1)
        failures += int(r.returncode != 0 or r.stdout != expected)
    return time.monotonic() - t0, failures, slowest


class SyslogTcp(h.QemuTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rsyslog = Rsyslog(h.free_port()).start()
        try:
            system = h.make_system("observe-syslog", [unipi(f"--syslog=tcp://{SYSLOG_ADDR}:601 --frobnicate")])
            cls.port = h.free_port()
            fwd = f"guestfwd=tcp:{SYSLOG_ADDR}:601-cmd:{h.ROOT}/scripts/relay.py {cls.rsyslog.port}"
            net = h.netdev([(cls.port, 4433)], extra=[h.git_guestfwd(), fwd])
            cls.guest = h.start_guest(system, net, r"^unipi\| serving [0-9a-f]{40};")
        except BaseException:
            cls.rsyslog.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()
        cls.rsyslog.cleanup()

    def test_crawl_is_logged_and_serving_ignores_a_dead_collector(self):
        rs = self.rsyslog
        # The boot-parameter warning was forwarded (severity 4, MSGID log).
        warn = wait_until("the boot warning at rsyslog", lambda: [
            m for m in rs.messages() if m[4] == "log" and "unknown option --frobnicate" in m[7]], 60)
        self.assertEqual((warn[0][0], warn[0][1], warn[0][2], warn[0][3]), (16, 4, GUEST_IP, "unipi"))

        files = sorted(p.relative_to(HTDOCS).as_posix() for p in HTDOCS.rglob("*") if p.is_file())
        paths = ["/" + f for f in files] + ["/", "/nope", "/articles"]
        args = ["curl", "-s", "--cacert", str(CA), "--max-time", "60",
                "-w", "%{http_code} %{size_download}\\n"]
        for p in paths:
            args += ["-o", "/dev/null", f"https://127.0.0.1:{self.port}{p}"]
        r = subprocess.run(args, capture_output=True, text=True, check=True)
        got = [tuple(int(x) for x in l.split()) for l in r.stdout.splitlines()]
        self.assertEqual(len(got), len(paths))
        results = dict(zip(paths, got))
        self.assertEqual((results["/nope"][0], results["/articles"][0], results["/"][0]), (404, 301, 200))
        crawl = sorted(("GET", p, status, size) for p, (status, size) in results.items())
        ua = "curl/" + subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]

        def arrived():
            lines = sorted(a[:4] for a in rs.access())
            return lines if all(c in lines for c in crawl) else None
        lines = wait_until("the crawl's access lines at rsyslog", arrived, 60)
        for c in crawl:
            self.assertIn(c, lines, "each response's status and body bytes")
        self.assertTrue(all(a[4] == ua for a in rs.access()), "the user agent is logged")
        for m in rs.messages():
            if m[4] == "access":
                self.assertEqual((m[0], m[1], m[2], m[3], m[5]), (16, 6, GUEST_IP, "unipi", "-"))
                self.assertRegex(m[6], r"^<134>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")

        # Serving goes on with the collector gone: time both series.
        running, fail_running, slow_running = timed_series(self.port, SERIES)
        before_stop = len(rs.access())
        rs.stop()
        time.sleep(1)
        stopped, fail_stopped, slow_stopped = timed_series(self.port, SERIES)
        log(f"syslog/tcp: {SERIES} requests with rsyslog running {running:.2f} s (slowest {slow_running:.2f} s), "
            f"stopped {stopped:.2f} s (slowest {slow_stopped:.2f} s); {fail_running} + {fail_stopped} failures")
        self.assertEqual((fail_running, fail_stopped), (0, 0))

        # Back again: the sender reconnects (retry delay at most 60 s).
        rs.start()
        marker = f"/after-restart-{os.getpid()}"
        t0 = time.monotonic()

        def marker_arrived():
            h.curl(f"https://127.0.0.1:{self.port}{marker}", "--cacert", str(CA), check=False)
            return [a for a in rs.access() if a[1] == marker]
        wait_until("an access line after rsyslog restarted", marker_arrived, 90)
        log(f"syslog/tcp: reconnected within {time.monotonic() - t0:.1f} s; "
            f"{len(rs.access()) - before_stop} access lines arrived after the collector stopped "
            f"(queued while it was down)")
        self.assertRegex(self.guest.log(), r"syslog: tcp://192\.168\.254\.5:601: .*retrying")


class DeadCollector(h.QemuTestCase):
    """A collector address on the guest's network that nobody answers
    (no ARP reply): smoltcp sends one ARP request per second for the whole
    interface, so a sender that kept asking would starve every client whose
    address is not cached. Requests must keep succeeding, over both
    transports; what could not be sent is counted."""

    def serve_with(self, target):
        system = h.make_system("observe-dead", [unipi(f"--syslog={target} --metrics-port=9100")])
        port, mport = h.free_port(), h.free_port()
        net = h.netdev([(port, 4433), (mport, 9100)], extra=[h.git_guestfwd()])
        guest = h.start_guest(system, net, r"^unipi\| serving [0-9a-f]{40};")
        try:
            expected = (HTDOCS / "index.html").read_bytes()
            times, failures = [], 0
            for _ in range(SERIES):
                t0 = time.monotonic()
                r = h.curl(f"https://127.0.0.1:{port}/", "--cacert", str(CA), timeout=10, check=False)
                times.append(time.monotonic() - t0)
                failures += int(r.returncode != 0 or r.stdout != expected)
                time.sleep(0.2)
            log(f"dead collector {target}: {SERIES} requests, {failures} failures, "
                f"worst {max(times):.2f} s, median {sorted(times)[len(times) // 2]:.3f} s")
            self.assertEqual(failures, 0)
            return samples(scrape(mport)[1]), guest.log()
        finally:
            guest.stop()

    def test_tcp(self):
        m, serial = self.serve_with("tcp://192.168.254.6:601")
        self.assertEqual((m["unipi_syslog_up"], m["unipi_syslog_connects_total"]), (0, 0))
        self.assertIn("syslog: tcp://192.168.254.6:601: no connection; retrying", serial)

    def test_udp(self):
        m, serial = self.serve_with("192.168.254.6")
        self.assertGreater(m['unipi_syslog_messages_total{result="dropped"}'], 0)
        self.assertIn("datagrams cannot leave", serial)


def scrape(port):
    r = h.curl(f"http://127.0.0.1:{port}/metrics", "-i", timeout=20)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    return head.decode(), body.decode()


def samples(text):
    """{'name{labels}': float}"""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


class Metrics(h.QemuTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if shutil.which("promtool") is None:
            raise AssertionError("promtool is missing: apt-get install prometheus")
        system = h.make_system("observe-metrics", [unipi("--metrics-port=9100")])
        cls.port, cls.mport = h.free_port(), h.free_port()
        net = h.netdev([(cls.port, 4433), (cls.mport, 9100)], extra=[h.git_guestfwd()])
        cls.guest = h.start_guest(system, net, r"^unipi\| serving [0-9a-f]{40};")

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()

    def check(self, text):
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
        self.assertEqual(p.returncode, 0, f"promtool: {p.stdout.decode()}{p.stderr.decode()}\n{text}")

    def test_exposition_and_counters_under_load(self):
        head, text = scrape(self.mport)
        self.assertRegex(head, r"^HTTP/1.1 200 ")
        self.assertIn("content-type: text/plain; version=0.0.4; charset=utf-8", head.lower())
        self.check(text)
        s0 = samples(text)

        # What the metrics say about the machine.
        commit = subprocess.run(["git", "-C", str(h.BUILD / "site.git"), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(s0.get(f'unipi_site_info{{commit="{commit}",source="git"}}'), 1)
        self.assertGreaterEqual(s0['unipi_git_fetches_total{result="updated"}'], 1)
        not_after = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", str(h.ROOT / "certs/dev/server.pem")],
                                   capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
        expiry = int(subprocess.run(["date", "-u", "-d", not_after, "+%s"], capture_output=True, text=True,
                                    check=True).stdout)
        self.assertEqual(s0["unipi_tls_certificate_expiry_timestamp_seconds"], expiry)
        self.assertGreater(s0["unipi_heap_used_bytes"], 0)
        self.assertGreater(s0["unipi_heap_size_bytes"], s0["unipi_heap_used_bytes"])
        self.assertGreater(s0["unipi_net_rx_frames_total"], 0)

        # A load with wrk, scraped while it runs.
        index = (HTDOCS / "index.html").read_bytes()
        during = []

        def scrape_during():
            time.sleep(1.5)
            during.append(scrape(self.mport)[1])
        t = threading.Thread(target=scrape_during)
        t.start()
        w = subprocess.run(["wrk", "-t", "2", "-c", "4", "-d", "3s", "--timeout", "10s",
                            f"https://127.0.0.1:{self.port}/"], capture_output=True, text=True, timeout=60)
        t.join(30)
        self.assertEqual(w.returncode, 0, w.stderr)
        m = re.search(r"(\d+) requests in", w.stdout)
        self.assertTrue(m, w.stdout)
        requests = int(m[1])
        self.assertNotRegex(w.stdout, r"Non-2xx", w.stdout)
        self.assertEqual(len(during), 1)
        self.check(during[0])
        self.assertGreaterEqual(samples(during[0])['unipi_http_responses_total{class="2xx"}'],
                                s0['unipi_http_responses_total{class="2xx"}'])

        # Two connections from one curl process: the second resumes the first's session
        # (HTTP/1.1: over HTTP/2 curl would send both requests on one connection).
        r = h.curl(f"https://127.0.0.1:{self.port}/", "--http1.1", "--cacert", str(CA), "-H", "Connection: close",
                   "-o", "/dev/null", f"https://127.0.0.1:{self.port}/nope", "-o", "/dev/null")
        self.assertEqual(r.returncode, 0)
        # The metrics port serves /metrics only.
        r = h.curl(f"http://127.0.0.1:{self.mport}/other", "-o", "/dev/null", "-w", "%{http_code}")
        self.assertEqual(r.stdout, b"404")

        head, text = scrape(self.mport)
        self.check(text)
        s1 = samples(text)
        d = {k: s1[k] - s0.get(k, 0) for k in s1}
        shown = ['unipi_http_responses_total{class="2xx"}', "unipi_http_response_body_bytes_total",
                 "unipi_connections_accepted_total", 'unipi_tls_handshakes_total{kind="full"}',
                 'unipi_tls_handshakes_total{kind="resumed"}']
        log(f"metrics: wrk made {requests} requests; deltas: " + ", ".join(f"{k} {d[k]:.0f}" for k in shown))
        self.assertGreaterEqual(d['unipi_http_responses_total{class="2xx"}'], requests + 1)
        self.assertGreaterEqual(d['unipi_http_responses_total{class="4xx"}'], 2)  # /nope, /other
        self.assertGreaterEqual(d["unipi_http_response_body_bytes_total"], (requests + 1) * len(index))
        self.assertGreaterEqual(d["unipi_http_response_bytes_total"], d["unipi_http_response_body_bytes_total"])
        self.assertGreaterEqual(d["unipi_connections_accepted_total"], 4 + 2)
        self.assertGreaterEqual(d['unipi_tls_handshakes_total{kind="full"}'], 4 + 1)
        self.assertGreaterEqual(d['unipi_tls_handshakes_total{kind="resumed"}'], 1)
        self.assertGreater(d["unipi_net_tx_frames_total"], requests)


if __name__ == "__main__":
    unittest.main()
