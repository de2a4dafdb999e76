"""Capacity end to end (QEMU, bounded in time and count): a burst of
connects is queued and served, not reset, and thousands of idle keep-alive
TLS connections are held (none refused or evicted) while a busy client on
one more connection keeps being served. Speed is not asserted.

Everything goes through QEMU's user network (hostfwd on 127.0.0.1): slirp
opens one host socket per guest connection and listens with a backlog of 1
(the test logs what `ss` reports), so the host drops connects beyond the
two it queues for slirp, into SYN retries 1, 3, 7 ... s later. The burst
therefore comes as fast as slirp takes it (at most two connects waiting
for the server's answer, tests/capacity_client.py). The simultaneous burst
of 1,000 and 10,000 idle connections are measured in-process
(unipi-rs/tests/capacity.rs) and by `make bench` (docs/bench.md).
"""

import sys
import time

import capacity_client as cc
import harness as h
import test_hostile as hostile

BURST = 500
IDLE = 2000
BUDGET_SECONDS = 100


def log(msg):
    print(f"capacity: {msg}", file=sys.stderr, flush=True)


class Capacity(h.QemuTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cc.raise_file_limit(IDLE + BURST + 256)
        system = h.make_system("capacity", [hostile.unipi("--idle-timeout=300 --access-log=off")])
        cls.port = h.free_port()
        cls.guest = h.Guest(system, net=h.netdev([(cls.port, 4433)]), timeout=60).start()
        try:
            cls.guest.wait_for(r"^unipi\| ready$")
            h.wait_https(cls.port, timeout=30)
            cls.st = hostile.Guest(cls.guest)
        except Exception:
            cls.guest.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()

    def test_burst_then_idle_connections_while_a_client_stays_served(self):
        t0 = time.monotonic()
        m = self.guest.wait_for(r"up to (\d+) connections")
        limit = int(m.group(1))
        log(f"default capacity {limit} connections; QEMU's hostfwd listen backlog "
            f"{cc.listen_backlog(self.port)}")
        self.assertGreaterEqual(limit, 10000, "the default heap holds 10,000 idle connections")

        before = self.st.wait_status(lambda s: True, timeout=10)
        b = cc.burst(self.port, BURST, timeout=40, waiting=2)
        after = self.st.wait_status(lambda s: s.open == 0, timeout=20, after=len(self.st.statuses()))
        log(f"burst of {BURST} connects as fast as slirp takes them: {b}; server: {after.accepted - before.accepted} accepted, "
            f"{after.refused - before.refused} refused")
        self.assertEqual(b["reset"] + b["failed"] + b["unfinished"], 0, b)
        self.assertEqual(b["served"], BURST, b)
        self.assertEqual(after.refused, before.refused)
        self.assertEqual(after.accepted - before.accepted, BURST)

        base = self.st.wait_idle()
        idle = cc.Idle(self.port)
        try:
            got = idle.open(IDLE, timeout=max(20, BUDGET_SECONDS - (time.monotonic() - t0)))
            alive = idle.alive()
            s = self.st.wait_status(lambda s: s.open >= alive, timeout=10, after=len(self.st.statuses()))
            per = (s.used - base.used) / max(alive, 1)
            log(f"{got} idle connections opened in {idle.seconds:.1f} s, {alive} alive; server: {s.open} open, "
                f"heap {s.used} used ({per:.0f} bytes per idle connection)")
            lat = cc.keepalive_latency(self.port, 200, timeout=20, path="/")
            log(f"busy client with {alive} idle connections open: {lat}")
            self.assertGreaterEqual(alive, 500, "hundreds of idle connections at the very least")
            self.assertEqual(alive, got, "every idle connection opened is still held")
            self.assertEqual(lat["requests"], 200, lat)
            self.assertEqual(s.refused, 0, s)
            self.assertEqual(s.evicted_idle, 0, s)
        finally:
            idle.close()
        self.st.wait_idle(timeout=30)
