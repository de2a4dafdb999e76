"""Slow clients against a small pool: Debian's slowhttptest in its three
modes, each with more attacking connections than the server may open,
while a well-behaved client fetches the home page every 0.5 s.

* -H (slowloris): request headers dribbled, a field every few seconds;
* -B (slow body): POSTs whose bodies dribble;
* -X (slow read): GET /1m.bin through a tiny TCP window, read a few bytes
  at a time.

The guest runs with --max-connections=64; each attack opens 200
connections and lasts SLOW_SECONDS (default 60). Reported per mode: the
good client's requests, failures and worst latency, and the server's
counters (docs/bench.md has the table before and after the defences).
UNIPI_ELF=path/to/unipi.muen runs the same attacks against another build
of the subject (e.g. an older commit) for comparison.

Everything stays on 127.0.0.1 (restricted user network, hostfwd only)."""

import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unittest

import harness as h
import test_hostile as hostile

SECONDS = int(os.environ.get("SLOW_SECONDS", "60"))
ATTACKERS = 200
MAX_CONNECTIONS = 64
CA = h.ROOT / "certs" / "dev" / "ca.pem"


def site_tar():
    """htdocs plus a 1 MiB file (the slow reader's target)."""
    out = h.BUILD / "tests" / "slow-site.tar"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    d = tempfile.mkdtemp(prefix="unipi-slow-site-")
    try:
        shutil.copytree(h.ROOT / "htdocs", d, dirs_exist_ok=True)
        with open(os.path.join(d, "1m.bin"), "wb") as f:
            f.write(bytes(range(256)) * 4096)
        with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as t:
            t.add(d, arcname=".")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return out


class Poller(threading.Thread):
    """The well-behaved client: GET / every 0.5 s (curl, certificate
    checked, 10 s limit); a failure is any answer but the page."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.expected = (h.ROOT / "htdocs" / "index.html").read_bytes()
        self.results = []  # (ok, seconds)
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            t0 = time.monotonic()
            r = subprocess.run(["curl", "-s", "--max-time", "10", "--cacert", str(CA),
                                f"https://127.0.0.1:{self.port}/"], capture_output=True)
            self.results.append((r.returncode == 0 and r.stdout == self.expected, time.monotonic() - t0))
            self.stopping.wait(max(0.0, 0.5 - (time.monotonic() - t0)))

    def stop(self):
        self.stopping.set()
        self.join(30)
        times = [t for _, t in self.results]
        return dict(requests=len(self.results), failures=sum(1 for ok, _ in self.results if not ok),
                    worst=max(times) if times else 0.0, median=statistics.median(times) if times else 0.0)


class SlowClients(h.QemuTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not shutil.which("slowhttptest"):
            raise unittest.SkipTest("slowhttptest is missing (make deps installs it)")
        subject = hostile.unipi(f"--max-connections={MAX_CONNECTIONS}")
        subject["elf"] = os.environ.get("UNIPI_ELF", subject["elf"])
        subject["memory"]["site"] = str(site_tar())
        system = h.make_system("slow-clients", [subject])
        cls.port = h.free_port()
        cls.guest = h.Guest(system, net=h.netdev([(cls.port, 4433)]), timeout=60).start()
        try:
            cls.guest.wait_for(r"^unipi\| ready$")
            h.wait_https(cls.port, timeout=30)
        except Exception:
            cls.guest.stop()
            raise
        cls.table = []

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()
        if cls.table:
            hostile.log("slow clients: mode | attackers | good-client requests | failures | worst | median")
            for row in cls.table:
                hostile.log("slow clients: " + " | ".join(str(x) for x in row))

    def attack(self, name, args):
        poller = Poller(self.port)
        poller.start()
        time.sleep(1)
        cmd = ["slowhttptest", *args, "-c", str(ATTACKERS), "-r", str(ATTACKERS), "-l", str(SECONDS),
               "-p", "5", "-v", "0"]
        log = h.BUILD / "tests" / f"slowhttptest-{name.split()[0].strip('-')}.log"
        t0 = time.monotonic()
        with open(log, "wb") as out:
            attacker = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                attacker.wait(SECONDS + 30)
            except subprocess.TimeoutExpired:
                os.killpg(attacker.pid, 9)
                attacker.wait()
        # slowhttptest ends early once the server has closed every attacking
        # connection; the good client keeps polling for the whole period.
        time.sleep(max(0.0, t0 + SECONDS - time.monotonic()))
        summary = poller.stop()
        row = (name, ATTACKERS, summary["requests"], summary["failures"],
               f"{summary['worst'] * 1000:.0f} ms", f"{summary['median'] * 1000:.0f} ms")
        self.table.append(row)
        statuses = hostile.Guest(self.guest).statuses()
        if statuses:
            s = statuses[-1]
            hostile.log(f"slow clients {name}: server {s.open} open, {s.evicted_idle} evicted idle, "
                        f"{s.evicted_slow} evicted slow, {s.too_slow} too slow, {s.refused} refused")
        hostile.log(f"slow clients {name}: {summary}")
        return summary

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"

    def test_1_slow_headers(self):
        s = self.attack("-H slowloris", ["-H", "-i", "5", "-x", "24", "-t", "GET", "-u", self.url("/")])
        self.assertGreater(s["requests"], SECONDS * 1.2)
        self.assertEqual(s["failures"], 0, s)

    def test_2_slow_body(self):
        s = self.attack("-B slow body", ["-B", "-i", "5", "-x", "10", "-s", "8192", "-t", "POST",
                                         "-u", self.url("/")])
        self.assertGreater(s["requests"], SECONDS * 1.2)
        self.assertEqual(s["failures"], 0, s)

    def test_3_slow_read(self):
        s = self.attack("-X slow read", ["-X", "-w", "10", "-y", "20", "-n", "5", "-z", "32", "-k", "3",
                                         "-u", self.url("/1m.bin")])
        self.assertGreater(s["requests"], SECONDS * 1.2)
        self.assertEqual(s["failures"], 0, s)


if __name__ == "__main__":
    unittest.main()
