"""Hostile clients and faults, end to end (QEMU, bounded in time and count).

* HostileClients: slowloris, a connection flood beyond --max-connections,
  oversized headers, invalid TLS records and clients that never read, each
  while a well-behaved client (curl --cacert certs/dev/ca.pem) keeps
  fetching pages and a 256 KiB file; the subject's heap, logged every
  second (--status-interval=1), must stay bounded and return to its
  baseline.
* ChannelRestart: the kernel restarts its network channel to the subject
  with a new epoch every 1.5 s (netRestartMillis, docs/kernel.md) while
  the client downloads; the subject resynchronises and keeps serving.
* TestSSL: Debian's testssl against the HTTPS port (full output in
  build/testssl.txt).
* RogueSubject: platform-muen/testsubjects/src/bin/rogue.rs attacks kernel
  memory, the web server's regions and the kernel's emulation paths next
  to the real web server, which keeps serving.

Every guest uses QEMU's restricted user network with hostfwd on 127.0.0.1
only; no traffic goes anywhere but loopback.
"""

import collections
import hashlib
import json
import os
import re
import select
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness as h

HTDOCS = h.ROOT / "htdocs"
CA = h.ROOT / "certs" / "dev" / "ca.pem"
GUEST_IP = "192.168.254.10"
MAX_CONNECTIONS = 64
HEADER_TIMEOUT = 5
# unipi-rs/src/server.rs: a TLS handshake must finish within 10 s.
HANDSHAKE_TIMEOUT = 10
BIG = 256 * 1024
# Scenarios that take a moment per connection repeat for this long, so
# that the well-behaved client runs alongside.
ATTACK_SECONDS = 4
# What one connection may cost at most: TLS input (37 KiB), plaintext
# (32 KiB) and output (64 KiB) buffers, the HTTP header buffer (16 KiB) and
# rustls' own state (unipi-rs/src/tls.rs, http/). The heap may grow by at
# most this much per concurrent connection of a scenario.
PER_CONNECTION = 192 * 1024

STATUS = re.compile(
    r"^unipi\| status: (\d+) connections open, (\d+) accepted, (\d+) refused, (\d+) evicted idle, "
    r"(\d+) evicted slow, (\d+) too slow, (\d+) failed; "
    r"heap (\d+) used, (\d+) peak, (\d+) size; "
    r"net rx (\d+) tx (\d+) frames, (\d+) lost, (\d+) epoch changes, (\d+) tx dropped(?:; .*)?$", re.M)
Status = collections.namedtuple("Status", "open accepted refused evicted_idle evicted_slow too_slow failed "
                                          "used peak size rx tx lost epochs tx_dropped")


def log(msg):
    print(f"hostile: {msg}", file=sys.stderr, flush=True)


def big_bytes():
    """256 KiB of deterministic, incompressible bytes."""
    out, block = bytearray(), b"unipi-rs hostile test"
    while len(out) < BIG:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:BIG])


def site_tar():
    """build/tests/hostile-site.tar: htdocs plus big.bin."""
    out = h.BUILD / "tests" / "hostile-site.tar"
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(HTDOCS, d, dirs_exist_ok=True)
        with open(os.path.join(d, "big.bin"), "wb") as f:
            f.write(big_bytes())
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "--format=ustar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
                        "-C", d, "-cf", str(out), "."], check=True)
    return out


def unipi(bootparams="", ram=128):
    h.require(h.BUILD / "unipi.muen")
    return dict(name="unipi", elf=h.BUILD / "unipi.muen", ram=ram, nets=["net0"],
                bootparams=f"--ipv4={GUEST_IP}/24 --status-interval=1 {bootparams}".strip(),
                memory={"site": str(site_tar()), "tls_cert": str(h.ROOT / "certs/dev/server.pem"),
                        "tls_key": str(h.ROOT / "certs/dev/server.key")},
                events=[(0, "solo5_exit", "exit"), (1, "net0|notify", "netnotify")])


def repack(system, **attrs):
    """Adds attributes to <system> of an image built by h.make_system and packs it again."""
    xml = system.parent / "system.xml"
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    xml.write_text(xml.read_text().replace("<system ", f"<system{extra} ", 1))
    subprocess.run([str(h.TOOLS), "pack", "--kernel", str(h.KERNEL), "--system", str(xml), "-o", str(system)],
                   check=True)
    return system


def tls_context():
    return ssl.create_default_context(cafile=str(CA))


def client_hello():
    """The bytes of a real ClientHello (Python's TLS stack)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_context().wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def read_until_closed(sock, timeout):
    """Reads until the peer closes; returns (closed, data, seconds)."""
    t0 = time.monotonic()
    data = b""
    sock.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return True, data, time.monotonic() - t0
        except ssl.SSLError:
            return True, data, time.monotonic() - t0
        if not chunk:
            return True, data, time.monotonic() - t0
        data += chunk
    return False, data, time.monotonic() - t0


def send_quietly(sock, data):
    """Sends, ignoring a peer that already closed (it may refuse early)."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, ssl.SSLError, OSError):
        return False


class GoodClient(threading.Thread):
    """A well-behaved client: curl with certificate verification, one
    request per connection, cycling through pages and the 256 KiB file,
    checking every status and body byte."""

    def __init__(self, port, pause=0.05, paths=("/", "/big.bin", "/css/site.css", "/about.html")):
        super().__init__(daemon=True)
        self.port = port
        self.pause = pause
        self.expected = {p: (big_bytes() if p == "/big.bin" else (HTDOCS / p.lstrip("/")).read_bytes()
                             if p != "/" else (HTDOCS / "index.html").read_bytes()) for p in paths}
        self.paths = paths
        self.results = []  # (start, path, ok, seconds, detail)
        self.stopping = threading.Event()
        self.dir = tempfile.mkdtemp(prefix="unipi-good-")

    def run(self):
        i = 0
        while not self.stopping.is_set():
            path = self.paths[i % len(self.paths)]
            i += 1
            body = os.path.join(self.dir, "body")
            t0 = time.monotonic()
            r = subprocess.run(["curl", "-s", "-S", "--max-time", "15", "--cacert", str(CA), "-o", body,
                                "-w", "%{http_code}", f"https://127.0.0.1:{self.port}{path}"],
                               capture_output=True, text=True)
            dt = time.monotonic() - t0
            got = b""
            if os.path.exists(body):
                with open(body, "rb") as f:
                    got = f.read()
            ok = r.returncode == 0 and r.stdout == "200" and got == self.expected[path]
            detail = "" if ok else f"curl rc={r.returncode} status={r.stdout!r} {len(got)}B {r.stderr.strip()}"
            self.results.append((t0, path, ok, dt, detail))
            if os.path.exists(body):
                os.unlink(body)
            self.stopping.wait(self.pause)

    def stop(self):
        self.stopping.set()
        self.join(30)
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.summary()

    def summary(self):
        times = [r[3] for r in self.results]
        return dict(requests=len(self.results), failed=[r for r in self.results if not r[2]],
                    median=statistics.median(times) if times else 0, max=max(times) if times else 0,
                    big=sum(1 for r in self.results if r[1] == "/big.bin" and r[2]))


class Guest:
    """Status lines of a running unipi guest."""

    def __init__(self, guest):
        self.g = guest

    def statuses(self):
        return [Status(*(int(x) for x in m.groups())) for m in STATUS.finditer(self.g.log())]

    def wait_status(self, pred, timeout=30, after=0):
        """Waits for a status line (index >= after) satisfying pred; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for s in self.statuses()[after:]:
                if pred(s):
                    return s
            time.sleep(0.2)
        raise AssertionError(f"no matching status line within {timeout}s; last: {self.statuses()[-3:]}\n"
                             f"{self.g.tail(30)}")

    def wait_idle(self, timeout=30):
        """Waits until the server reports no open connection (a fresh line)."""
        n = len(self.statuses())
        return self.wait_status(lambda s: s.open == 0, timeout, after=n)

    def wait_settled(self, timeout=30):
        """The status line after the first idle one: the sockets of
        connections that ended just before a status line are freed after
        the next interface poll, so the first idle line may still count
        their buffers (48 KiB each)."""
        self.wait_idle(timeout)
        return self.wait_idle(timeout)


class HostileClients(h.QemuTestCase):
    """One guest for all hostile-client scenarios (each leaves it idle)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require(CA)
        system = h.make_system("hostile", [unipi(f"--max-connections={MAX_CONNECTIONS} "
                                                 f"--header-timeout={HEADER_TIMEOUT}")])
        cls.port, cls.hport = h.free_port(), h.free_port()
        cls.guest = h.Guest(system, net=h.netdev([(cls.port, 4433), (cls.hport, 80)]), timeout=60).start()
        try:
            cls.guest.wait_for(r"^unipi\| ready$")
            h.wait_https(cls.port, timeout=30)
            cls.st = Guest(cls.guest)
            # Warm up (first handshakes, session tickets), then the baseline.
            good = GoodClient(cls.port)
            good.start()
            time.sleep(2)
            good.stop()
            cls.baseline = cls.st.wait_idle().used
            cls.heap_size = cls.st.statuses()[-1].size
            log(f"heap baseline {cls.baseline} bytes in use of {cls.heap_size}")
        except Exception:
            cls.guest.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()

    def setUp(self):
        self.assertIsNone(self.guest.proc.poll(), "the guest died")
        self.st.wait_idle()
        self.mark = len(self.st.statuses())

    def tearDown(self):
        self.assertNotIn("KERNEL PANIC", self.guest.log())

    def good_client(self):
        g = GoodClient(self.port)
        g.start()
        return g

    def check_good(self, name, summary, max_latency=5.0):
        log(f"{name}: good client {summary['requests']} requests ({summary['big']} x 256 KiB), "
            f"median {summary['median'] * 1000:.0f} ms, max {summary['max'] * 1000:.0f} ms, "
            f"{len(summary['failed'])} failed")
        self.assertGreaterEqual(summary["requests"], 5, summary)
        self.assertEqual(summary["failed"], [], "the well-behaved client must be served throughout")
        self.assertLess(summary["max"], max_latency, summary)

    def check_heap(self, name, connections):
        """Peak since setUp within `connections` x PER_CONNECTION over the
        baseline; back to the baseline once idle."""
        during = self.st.statuses()[self.mark:]
        idle = self.st.wait_settled()
        peak_used = max(s.used for s in during + [idle])
        log(f"{name}: heap in use peaked at {peak_used} (baseline {self.baseline}, "
            f"+{(peak_used - self.baseline) // 1024} KiB), {idle.used} once idle; "
            f"{idle.accepted} accepted, {idle.failed} failed so far")
        self.assertLessEqual(peak_used - self.baseline, PER_CONNECTION * connections,
                             f"heap grew beyond {connections} x {PER_CONNECTION} bytes")
        # No growth; less than the baseline is fine (the listener's standby
        # sockets may have been re-made with lean buffers).
        self.assertLessEqual(idle.used - self.baseline, 64 * 1024,
                             "heap in use must return to its baseline once the attack is over")
        return peak_used

    # --- scenarios ------------------------------------------------------------

    def test_slowloris(self):
        """48 connections (out of a pool of 64) dribble a byte every 2 s for
        20 s: half a ClientHello, half a request header after the
        handshake, opened over the first 4 s and reopened 0.5 s after the
        server ends one. The server ends each at its timeout (handshake
        10 s, header 5 s -> 408) and the good client is served throughout."""
        n_raw, n_tls, duration, interval = 24, 24, 20.0, 2.0
        hello = client_hello()
        ctx = tls_context()
        good = self.good_client()
        conns = []  # dict(kind, sock, opened, closed, data, pos)
        refused = []

        def open_one(kind):
            try:
                raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                c = dict(kind=kind, opened=time.monotonic(), closed=None, data=b"", pos=0)
                if kind == "tls":
                    s = ctx.wrap_socket(raw, server_hostname="localhost")
                    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                    c["opened"] = time.monotonic()  # the header clock starts now
                    c["sock"] = s
                else:
                    c["sock"] = raw
            except (OSError, ssl.SSLError):
                # The pool is momentarily full (old ones still closing):
                # an attacker just tries again.
                refused.append(kind)
                return False
            c["sock"].setblocking(False)
            conns.append(c)
            return True

        t0 = time.monotonic()
        t_end = t0 + duration
        # (when, kind): staggered start, then reconnects.
        schedule = [(t0 + 4.0 * i / (n_raw + n_tls), "raw" if i % 2 else "tls") for i in range(n_raw + n_tls)]
        next_send = time.monotonic()
        while time.monotonic() < t_end:
            now = time.monotonic()
            due = [x for x in schedule if x[0] <= now]
            schedule = [x for x in schedule if x[0] > now]
            for _, kind in due:
                if not open_one(kind) and now < t_end - 1:
                    schedule.append((now + 0.5, kind))
            live = [c for c in conns if c["closed"] is None]
            if now >= next_send:
                next_send = now + interval
                for c in live:
                    byte = hello[c["pos"]:c["pos"] + 1] if c["kind"] == "raw" else b"a"
                    c["pos"] += 1
                    try:
                        c["sock"].send(byte or b"\x00")
                    except (ssl.SSLWantWriteError, BlockingIOError):
                        pass
                    except (OSError, ssl.SSLError):
                        pass  # closed: noticed below
            readable, _, _ = select.select([c["sock"] for c in live], [], [], 0.1) if live else ([], [], [])
            for c in live:
                if c["sock"] not in readable:
                    continue
                try:
                    chunk = c["sock"].recv(4096)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except (OSError, ssl.SSLError):
                    chunk = b""
                if chunk:
                    c["data"] += chunk
                    continue
                c["closed"] = time.monotonic()
                c["sock"].close()
                # A slowloris attacker reconnects.
                if c["closed"] < t_end - 1:
                    schedule.append((c["closed"] + 0.5, c["kind"]))
        summary = good.stop()
        for c in conns:
            if c["closed"] is None:
                c["sock"].close()
        self.check_good("slowloris", summary)

        ended = [c for c in conns if c["closed"] is not None]
        lifetimes = {k: [c["closed"] - c["opened"] for c in ended if c["kind"] == k] for k in ("raw", "tls")}
        log(f"slowloris: {len(conns)} connections opened ({len(refused)} reconnects refused while the pool "
            f"was full), {len(ended)} ended by the server; lifetimes "
            + ", ".join(f"{k} {min(v):.1f}-{max(v):.1f} s" for k, v in lifetimes.items() if v))
        # Every connection old enough to have timed out was ended by the server.
        for c in conns:
            # Slack: slirp listens with a backlog of 1, so the guest may see a
            # host connect a second (or three) after it completed.
            limit = (HANDSHAKE_TIMEOUT if c["kind"] == "raw" else HEADER_TIMEOUT) + 4
            if c["opened"] + limit < t_end:
                self.assertIsNotNone(c["closed"], f"a {c['kind']} slowloris connection outlived {limit} s")
                self.assertLessEqual(c["closed"] - c["opened"], limit)
        self.assertGreaterEqual(len(lifetimes["raw"]), n_raw)
        self.assertGreaterEqual(len(lifetimes["tls"]), 2 * n_tls)
        # The header dribblers got a 408 (decrypted by the TLS socket).
        self.assertTrue(all(c["data"].startswith(b"HTTP/1.1 408 Request Timeout") for c in ended
                            if c["kind"] == "tls"), [c["data"][:40] for c in ended if c["kind"] == "tls"][:3])
        self.check_heap("slowloris", n_raw + n_tls)

    def test_connection_flood_does_not_lock_out_clients(self):
        """200 connections, opened 20 ms apart, each sending a ClientHello
        and then nothing: more than --max-connections (64). Every one gets
        its ServerHello: handshakes stalled for over a second are reset to
        make room for new ones (fresh ones are protected, so the pool holds
        50 new connections a second of this kind); a good client is served
        throughout and the server counts the evictions. (slirp listens with
        a backlog of 1, so a burst of host connects would only trickle in;
        the pacing keeps the flood honest.)"""
        n = 200
        hello = client_hello()
        evicted_before = self.st.statuses()[-1].evicted_slow
        good = self.good_client()
        socks = []
        t0 = time.monotonic()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            send_quietly(s, hello)
            s.setblocking(False)
            socks.append(s)
            time.sleep(0.02)
        t_opened = time.monotonic() - t0
        # Classify: a ServerHello (served), or EOF/reset without one.
        state = {s: None for s in socks}
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and any(v is None for v in state.values()):
            waiting = [s for s, v in state.items() if v is None]
            r, _, _ = select.select(waiting, [], [], 0.2)
            for s in r:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                state[s] = "served" if data[:1] == b"\x16" else "refused"
        served = [s for s, v in state.items() if v == "served"]
        summary = good.stop()
        for s in socks:
            s.close()
        # A status line written after the flood (the counters are cumulative).
        status = self.st.wait_status(lambda s: True, timeout=5, after=len(self.st.statuses()))
        evicted = status.evicted_slow - evicted_before
        log(f"flood: {n} connections opened in {t_opened:.1f} s: {len(served)} got a ServerHello; "
            f"server: {evicted} stalled connections reset to make room, {status.refused} refused")
        self.check_good("flood", summary)
        self.assertEqual(len(served), n, "every connection gets its handshake answered")
        self.assertGreaterEqual(evicted, n - MAX_CONNECTIONS - 16)
        self.check_heap("flood", MAX_CONNECTIONS + 16)

    def test_oversized_headers(self):
        """Header blocks beyond the limits get 431/414/400 and a close, over
        HTTPS and on the plain-HTTP port; a 1 MiB header stream does not
        grow the heap."""
        cases = [
            ("20 KiB header field", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
            ("9 KiB request target", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
            ("100 header fields", b"GET / HTTP/1.1\r\nHost: x\r\n"
             + b"".join(b"X-%d: y\r\n" % i for i in range(100)) + b"\r\n", b"431"),
            ("1 MiB without a line end", b"G" * (1 << 20), b"400"),
            ("1 MiB of header lines", b"GET / HTTP/1.1\r\n" + b"X-Long: zzzzzzzzzzzzzzzzzzzzzz\r\n" * 32768, b"431"),
        ]
        good = self.good_client()
        ctx = tls_context()
        results = []
        t0 = time.monotonic()
        rounds = 0
        while rounds == 0 or time.monotonic() - t0 < ATTACK_SECONDS:
            rounds += 1
            for secure in (True, False):
                for name, req, want in cases:
                    raw = socket.create_connection(("127.0.0.1", self.port if secure else self.hport), timeout=10)
                    s = ctx.wrap_socket(raw, server_hostname="localhost") if secure else raw
                    send_quietly(s, req)
                    closed, data, dt = read_until_closed(s, 10)
                    s.close()
                    if rounds == 1:
                        results.append((secure, name, data[:12], closed, dt))
                    with self.subTest(secure=secure, case=name):
                        self.assertTrue(data.startswith(b"HTTP/1.1 " + want), data[:80])
                        self.assertIn(b"Connection: close", data)
                        self.assertTrue(closed, "the server must close after a framing error")
        summary = good.stop()
        log(f"oversized headers ({rounds} rounds): " + "; ".join(
            f"{'https' if r[0] else 'http'} {r[1]} -> {r[2].decode(errors='replace')!r} closed in {r[4]:.1f} s"
            for r in results))
        self.check_good("oversized headers", summary)
        self.check_heap("oversized headers", 8)

    def test_invalid_tls_records(self):
        """Garbage where TLS records belong, before and after the handshake,
        repeated for a few seconds: the server answers with an alert or
        nothing and closes at once; it never holds the connection until a
        timeout, never answers in plaintext, never crashes."""
        good = self.good_client()
        results = []
        t0 = time.monotonic()
        rounds = 0
        while rounds == 0 or time.monotonic() - t0 < ATTACK_SECONDS:
            rounds += 1
            results += self.invalid_tls_round()
        summary = good.stop()
        cases = len(results) // rounds
        log(f"invalid TLS: {rounds} rounds of {cases} connections")
        for i, (name, closed, reply, dt) in enumerate(results):
            if i < cases:
                log(f"invalid TLS: {name}: {'closed' if closed else 'OPEN'} after {dt:.2f} s, "
                    f"{len(reply)} bytes back" + (" (an alert record)" if reply[:1] == b"\x15" else ""))
            with self.subTest(case=name, round=i // cases):
                self.assertTrue(closed, "the server must drop a connection that breaks TLS")
                self.assertLess(dt, 5, "dropped at once, not at a timeout")
                self.assertNotIn(b"HTTP/1.1", reply, "no plaintext answer on the TLS port")
        self.check_good("invalid TLS records", summary)
        self.check_heap("invalid TLS records", 8)

    def invalid_tls_round(self):
        """One connection per kind of invalid input; returns
        [(name, closed, reply, seconds)]."""
        hello = client_hello()
        ctx = tls_context()

        def record(ctype, body, version=b"\x03\x03"):
            return bytes([ctype]) + version + len(body).to_bytes(2, "big") + body

        before = [
            ("plaintext HTTP request", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            ("record length 0xffff", b"\x16\x03\x01\xff\xff" + os.urandom(1024)),
            ("8 KiB of random bytes", os.urandom(8192)),
            ("SSLv2 ClientHello", bytes.fromhex("802e0100020015000000100100800700c0030080060040020080")
             + os.urandom(16)),
            ("heartbeat before the handshake", record(24, b"\x01\x40\x00" + b"A" * 16)),
            ("ClientHello, then record type 0x99", hello + record(0x99, b"x" * 32)),
            ("ClientHello, then application data in clear", hello + record(23, b"GET / HTTP/1.1\r\n\r\n")),
            ("ClientHello claiming 16 MiB, 80 KiB sent",
             b"".join(record(22, (b"\x01\xff\xff\xff" + os.urandom(16380)) if i == 0 else os.urandom(16384),
                             b"\x03\x01") for i in range(5))),
            ("ClientHello in 1-byte records, then garbage",
             b"".join(record(22, hello[5 + i:6 + i], b"\x03\x01") for i in range(min(60, len(hello) - 5)))
             + os.urandom(600)),
        ]
        after = [
            ("forged application-data record", lambda: record(23, os.urandom(64))),
            ("oversized record (18 KiB)", lambda: record(23, os.urandom(18 * 1024))),
            ("unknown record type", lambda: record(0x42, os.urandom(32))),
            ("alert record of 100 bytes", lambda: record(21, os.urandom(100))),
        ]
        results = []
        for name, data in before:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            send_quietly(s, data)
            closed, reply, dt = read_until_closed(s, 8)
            s.close()
            results.append((name, closed, reply, dt))
        for name, make in after:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    s.sendall(out.read())
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, "handshake cut short")
                    inc.write(chunk)
            s.sendall(out.read())  # Finished
            send_quietly(s, make())
            closed, reply, dt = read_until_closed(s, 8)
            s.close()
            results.append((name + " after a TLS 1.3 handshake", closed, reply, dt))
        return results

    def test_clients_that_never_read(self):
        """16 clients pipeline 24 requests for the 256 KiB file each and
        never read. The server stops producing once its bounded buffers
        are full: the heap does not grow while they wait, and the good
        client is served."""
        n, requests, hold = 16, 24, 8.0
        ctx = tls_context()
        socks = []
        for _ in range(n):
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.settimeout(10)
            raw.connect(("127.0.0.1", self.port))
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n" * requests)
            socks.append(s)
        good = self.good_client()
        t0 = time.monotonic()
        mark = len(self.st.statuses())
        time.sleep(hold / 2)
        mid = len(self.st.statuses())
        time.sleep(hold / 2)
        summary = good.stop()
        samples = self.st.statuses()
        first_half = [s.used for s in samples[mark:mid]]
        second_half = [s.used for s in samples[mid:]]
        open_now = samples[-1].open
        for s in socks:
            s.close()
        log(f"never-reading clients: {n} x {requests} pipelined 256 KiB requests held {time.monotonic() - t0:.0f} s; "
            f"heap in use {min(first_half + second_half)}..{max(first_half + second_half)}; "
            f"{open_now} connections open at the end")
        self.check_good("never-reading clients", summary)
        self.assertGreaterEqual(open_now, n, "stalled connections are kept while they made progress in "
                                             "their last 10-s window (the minimum send rate)")
        # Stalled output costs no more memory over time. Compare the floors:
        # the good client's own downloads (~140 KiB each) and its socket
        # buffers (48 KiB) come and go, so one sample may dip that much.
        self.assertLessEqual(min(second_half) - min(first_half), 64 * 1024, (first_half, second_half))
        self.check_heap("never-reading clients", n + 2)


class ChannelRestart(h.QemuTestCase):
    """The kernel (the NIC side of the channel) restarts the channel to the
    subject with a new epoch every 1.5 s while the client downloads."""

    PERIOD_MS = 1500

    def test_subject_resynchronises_after_epoch_changes(self):
        h.require(CA)
        system = repack(h.make_system("hostile-restart", [unipi()]), netRestartMillis=self.PERIOD_MS)
        port = h.free_port()
        with h.Guest(system, net=h.netdev([(port, 4433)]), timeout=60) as g:
            g.wait_for(r"^unipi\| ready$")
            h.wait_https(port, timeout=30)
            g.wait_for(rf"^kernel: bridge: channels to subjects restart with a new epoch every {self.PERIOD_MS} ms$")
            restarts = re.compile(r"^kernel: bridge: port 0 \(unipi_net0_in\): channel restarted, "
                                  r"epoch (0x[0-9a-f]+) -> (0x[0-9a-f]+)$", re.M)
            before = len(restarts.findall(g.log()))
            good = GoodClient(port, pause=0.0, paths=("/big.bin", "/", "/big.bin", "/about.html"))
            good.start()
            time.sleep(12)
            summary = good.stop()
            epochs = restarts.findall(g.log())
            during = len(epochs) - before
            log(f"channel restart: {during} restarts while the client ran; good client {summary['requests']} "
                f"requests ({summary['big']} x 256 KiB), median {summary['median'] * 1000:.0f} ms, "
                f"max {summary['max'] * 1000:.0f} ms, {len(summary['failed'])} failed")
            self.assertGreaterEqual(during, 6)
            self.assertTrue(all(a != b and b != "0x0" for a, b in epochs), "every restart takes a new epoch")
            # The subject itself saw every restart (its reader resynchronised
            # to each new epoch): status field 9 counts epoch changes, the
            # first one being the initial synchronisation.
            statuses = [tuple(int(x) for x in m.groups()) for m in STATUS.finditer(g.log())]
            self.assertTrue(statuses, "no status line")
            self.assertGreaterEqual(statuses[-1][9], len(epochs), statuses[-1])
            self.assertEqual(summary["failed"], [], "every request must succeed across the restarts")
            self.assertGreaterEqual(summary["big"], 10)
            self.assertLess(summary["max"], 8.0)
            self.assertIsNone(g.proc.poll())
            self.assertNotIn("KERNEL PANIC", g.log())


class TestSSL(h.QemuTestCase):
    """testssl (Debian's package) against the HTTPS port."""

    def test_protocols_ciphers_and_curves(self):
        binary = shutil.which("testssl") or shutil.which("testssl.sh")
        if binary is None:
            raise AssertionError("testssl is missing: apt-get install testssl.sh")
        system = h.make_system("hostile-testssl", [unipi()])
        port = h.free_port()
        out = h.BUILD / "testssl.txt"
        js = h.BUILD / "tests" / "testssl.json"
        if js.exists():
            js.unlink()
        with h.Guest(system, net=h.netdev([(port, 4433)]), timeout=60) as g:
            g.wait_for(r"^unipi\| ready$")
            h.wait_https(port, timeout=30)
            # Loopback only: --ip pins the address, --nodns none avoids DNS,
            # and --phone-out (CRL/OCSP) stays off.
            r = subprocess.run([binary, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
                                "--ip", "127.0.0.1", "--connect-timeout", "10", "--openssl-timeout", "10",
                                "-p", "-s", "-f", "-E", "--jsonfile", str(js), f"127.0.0.1:{port}"],
                               capture_output=True, text=True, timeout=240)
            out.write_text(r.stdout + r.stderr)
            self.assertNotIn("KERNEL PANIC", g.log())
        try:
            results = {e["id"]: e["finding"] for e in json.loads(js.read_text())}
        except (OSError, ValueError) as e:
            self.fail(f"testssl left no usable JSON ({e}); exit {r.returncode}; output tail:\n"
                      + "\n".join((r.stdout + r.stderr).splitlines()[-30:]))
        summary = [line for line in r.stdout.splitlines()
                   if re.match(r"^ (SSLv2|SSLv3|TLS 1(\.\d)?|NULL|Anonymous|Export|LOW|Triple|Obsolete|Strong|"
                               r"PFS is|FS is|Elliptic)", line)]
        log("testssl summary:\n" + "\n".join(summary))
        for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
            self.assertEqual(results.get(proto), "not offered", proto)
        self.assertEqual(results.get("TLS1_2"), "offered")
        self.assertTrue(results.get("TLS1_3", "").startswith("offered"), results.get("TLS1_3"))
        for cat in ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"):
            self.assertEqual(results.get(f"cipherlist_{cat}"), "not offered", cat)
        self.assertEqual(results.get("cipherlist_STRONG"), "offered")
        fs = results.get("PFS", results.get("FS"))
        self.assertEqual(fs, "offered")
        curves = set((results.get("PFS_ECDHE_curves") or results.get("FS_ECDHE_curves", "")).split())
        self.assertTrue(curves, results)
        self.assertLessEqual(curves, {"X25519", "prime256v1", "secp384r1"})
        ciphers = [v for k, v in results.items() if k.startswith("cipher-")]
        self.assertTrue(ciphers)
        for c in ciphers:
            # Every suite: TLS 1.2 ECDHE with an AEAD, or a TLS 1.3 suite.
            self.assertRegex(c, r"^TLS 1\.(2 +x\w+ +ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)"
                                r"|3 +x130[1-3] +TLS_(AES_\d+_GCM_SHA\d+|CHACHA20_POLY1305_SHA256))\b")


class RogueSubject(h.QemuTestCase):
    """A rogue subject next to the web server: every attempt on kernel
    memory, on the server's regions and through the kernel's emulation is
    contained, each stopping attempt ends with a report, and the server
    keeps serving."""

    # --final=NAME -> the kernel's reason for stopping that subject.
    FINALS = {
        "cr3": r"unhandled trap: mov to cr3",
        "port-f4": r"unhandled trap: out to port 0xf4",
        "outs": r"unhandled trap: string I/O \(ins/outs\)",
        "idt-kernel": r"cannot deliver exception 3: IDT not mapped \(address 0xffffffff80100030\)",
        "tss-kernel": r"cannot deliver exception 3: TSS not mapped \(no ltr\?\) \(address 0xffffffff80100024\)",
        "gate-kernel": r"cannot deliver exception 3: handler address outside the subject's half "
                       r"\(address 0xffffffff80100000\)",
        "sysenter": r"unhandled trap: sysenter",
        "swapgs": r"unhandled trap: swapgs",
        "debuglog": r"unhandled trap: mov to cr3",
    }

    def test_rogue_is_contained_and_the_server_keeps_serving(self):
        h.require(h.SUBJECTS / "rogue.muen", CA)
        server = unipi()
        # Addresses only the server maps: its TLS key and its net channels.
        cspec = h.BUILD / "tests" / "hostile-rogue-probe.cspec.xml"
        cmd = [str(h.TOOLS), "cspec", "--elf", str(h.BUILD / "unipi.muen"), "--name", "unipi", "--ram", "128",
               "--net", "net0", "-o", str(cspec)]
        for logical, f in server["memory"].items():
            cmd += ["--memory", f"{logical}:{f}"]
        subprocess.run(cmd, check=True)
        text = cspec.read_text()

        def va(logical):
            m = re.search(rf'logical="{re.escape(logical)}" virtualAddress="16#([0-9a-f_]+)#"', text)
            return int(m.group(1).replace("_", ""), 16)

        victims = [va("tls_key"), va("net0|in"), va("net0|out")]
        rogues = [dict(name="rogue", elf=h.SUBJECTS / "rogue.muen",
                       bootparams="--victim=" + ",".join(hex(a) for a in victims) + " --final=cr3")]
        rogues += [dict(name=f"rogue-{f}", elf=h.SUBJECTS / "rogue.muen", bootparams=f"--no-probes --final={f}")
                   for f in self.FINALS if f != "cr3"]
        system = h.make_system("hostile-rogue", [server] + rogues)
        port = h.free_port()
        with h.Guest(system, net=h.netdev([(port, 4433)]), timeout=90) as g:
            g.wait_for(r"^unipi\| ready$", timeout=60)
            good = GoodClient(port)
            good.start()
            for f in self.FINALS:
                name = "rogue" if f == "cr3" else f"rogue-{f}"
                g.wait_for(rf"^kernel: subject {re.escape(name)} stopped: ", timeout=60)
            time.sleep(3)  # the server alone again
            summary = good.stop()
            self.assertIsNone(g.proc.poll(), "QEMU must keep running: the server is still alive")
            log_text = g.log()
        log(f"rogue: good client {summary['requests']} requests, median {summary['median'] * 1000:.0f} ms, "
            f"max {summary['max'] * 1000:.0f} ms, {len(summary['failed'])} failed")
        self.assertNotIn("KERNEL PANIC", log_text)
        self.assertNotIn("ISOLATION BROKEN", log_text)
        m = re.search(r"^rogue\| TEST PASS: rogue: (\d+) attempts, (\d+) contained, 0 broke isolation$", log_text, re.M)
        self.assertIsNotNone(m, log_text[-4000:])
        self.assertGreaterEqual(int(m.group(1)), 70)
        contained = re.findall(r"^rogue\| probe (.+?): contained: (.+)$", log_text, re.M)
        self.assertEqual(len(contained), int(m.group(1)))
        for a in victims:
            self.assertIn(f"probe read another subject's region at {a:#x}: contained: exception 14 (#PF) "
                          f"addr={a:#x}", log_text)
        # Each stopping attempt: the kernel's reason and the full report.
        for f, why in self.FINALS.items():
            name = "rogue" if f == "cr3" else f"rogue-{f}"
            with self.subTest(final=f):
                self.assertRegex(log_text, rf"(?m)^kernel: subject {re.escape(name)} stopped: {why}$")
                self.assertRegex(log_text, rf"(?m)^kernel:   {re.escape(name)}: vector \d+ \(.+\) rip=0x")
                self.assertRegex(log_text, rf"(?m)^kernel:   regions: .*debuglog 0xffff00000-0xffff1ffff RW- "
                                           rf"phys {re.escape(name)}_debuglog")
        self.assertIn("kernel: debuglog of rogue-debuglog: incompatible channel header, not forwarded", log_text)
        # Nothing a subject writes can pass for a kernel line.
        self.assertNotRegex(log_text, r"(?m)^kernel: subject unipi stopped")
        self.assertIn("rogue| kernel: subject unipi stopped: FORGED", log_text)
        self.assertIn("rogue| com1: kernel: subject unipi stopped: FORGED COM1", log_text)
        # The server never stopped and served throughout.
        self.assertNotRegex(log_text, r"(?m)^kernel: summary:")
        self.assertEqual(summary["failed"], [])
        self.assertGreaterEqual(summary["requests"], 5)


if __name__ == "__main__":
    unittest.main()
