#!/usr/bin/env python3
"""Profiles the hot path of one unipi-rs system under a wrk load (see
docs/bench.md, "Profiling"). Not part of `make bench`'s figures.

Two views, taken during the same load:

- guest: the vCPU's RIP sampled through QEMU's human monitor (`info
  registers` on a unix socket) and resolved against the *unstripped*
  subject and kernel ELFs (addresses in the upper half are the kernel's).
  Under TCG the RIP is the start of the translation block being run, so
  this is a per-function profile of the guest;
- host: `perf record` (cpu-clock) of the QEMU process, split into
  generated code (TCG), QEMU's helpers, slirp, chardev and the kernel.

  bench/profile.py [--test 1k-keepalive|1m-keepalive|1k-conn-close] [--dur 10s]
      [--subject-sym target/release/unipi] [--kernel-sym target/release/muen-kernel]
      [--bootparams "..."] [--no-perf]
"""

import argparse
import bisect
import collections
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as b  # noqa: E402


def symbols(elf, strip_prefix=""):
    """[(addr, size, name)] of the functions of an ELF (nm -C)."""
    out = subprocess.run(["nm", "-C", "--defined-only", "-S", "-n", str(elf)], capture_output=True,
                         text=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            syms.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    syms.sort()
    return syms


def short(name):
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    name = re.sub(r"<impl [^>]*>", "<impl>", name)
    return name if len(name) < 110 else name[:107] + "..."


class Resolver:
    def __init__(self, syms):
        self.syms = syms
        self.addrs = [s[0] for s in syms]

    def __call__(self, addr):
        i = bisect.bisect_right(self.addrs, addr) - 1
        if i >= 0:
            a, size, name = self.syms[i]
            if addr < a + max(size, 1) or size == 0:
                return short(name)
        return f"?{addr:#x}"


class Monitor:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        for _ in range(100):
            try:
                self.s.connect(str(path))
                break
            except OSError:
                time.sleep(0.05)
        self.s.settimeout(2)
        self.buf = b""
        self.read_prompt()

    def read_prompt(self):
        while b"(qemu) " not in self.buf:
            self.buf += self.s.recv(65536)
        out, _, self.buf = self.buf.partition(b"(qemu) ")
        return out.decode(errors="replace")

    def cmd(self, c):
        self.s.sendall(c.encode() + b"\n")
        return self.read_prompt()


def sample_guest(mon_path, stop, samples):
    mon = Monitor(mon_path)
    rx = re.compile(r"RIP=([0-9a-f]{16})")
    while not stop.is_set():
        try:
            m = rx.search(mon.cmd("info registers"))
        except (OSError, socket.timeout):
            break
        if m:
            samples.append(int(m.group(1), 16))
        time.sleep(0.001)


def thread_times(pid):
    """{tid: (name, utime+stime in clock ticks)} of a process."""
    out = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            st = (t / "stat").read_text()
            name = st[st.index("(") + 1:st.rindex(")")]
            f = st[st.rindex(")") + 2:].split()
            out[t.name] = (name, int(f[11]) + int(f[12]))
        except (OSError, ValueError):
            pass
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", default="1k-keepalive", choices=["1k-keepalive", "1m-keepalive", "1k-conn-close"])
    ap.add_argument("--dur", default="10s")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--subject-sym", default=str(b.ROOT / "target" / "release" / "unipi"))
    ap.add_argument("--kernel-sym", default=str(b.ROOT / "target" / "release" / "muen-kernel"))
    ap.add_argument("--tools", default=str(b.ROOT / "target" / "release" / "muen-tools"))
    ap.add_argument("--bootparams", default="")
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--machine", default="microvm")
    ap.add_argument("--mem", default="256M")
    ap.add_argument("--ram", type=int, default=128)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--no-perf", action="store_true")
    ap.add_argument("--yield-event", action="store_true", help="as bench.py --yield-event")
    ap.add_argument("--minor-frame", type=int, default=1000, help="as bench.py --minor-frame")
    a = ap.parse_args()
    a.boot_timeout = 120
    b.YIELD_EVENT = a.yield_event
    b.MINOR_FRAME_US = a.minor_frame
    a.wrk_timeout = "2s"
    cfg = b.Settings(a)

    work = Path(tempfile.mkdtemp(prefix="unipi-profile-"))
    strip = work / "unipi.muen"
    kstrip = work / "muen-kernel.elf"
    subprocess.run(["strip", "--strip-all", "-o", str(strip), a.subject_sym], check=True)
    subprocess.run(["strip", "--strip-all", "-o", str(kstrip), a.kernel_sym], check=True)
    v = b.Variant("profile", strip, kstrip)
    b.OUT.mkdir(parents=True, exist_ok=True)
    htdocs = b.ensure_htdocs(argparse.Namespace(peer=Path(b.ROOT.parent / "shared/bench/peer-nginx")
                                                if (b.ROOT.parent / "shared/bench/peer-nginx/make-htdocs.sh").exists()
                                                else None))
    b.site_repo(htdocs, "site")
    params = f"--ipv4={b.GUEST_IP}/24 --remote=git://{b.GIT_ADDR}/site.git {a.bootparams}"
    system = b.make_system(Path(a.tools), v, "profile", params, a.ram)

    mon = work / "monitor.sock"
    port = b.free_port()
    g = b.Guest(system, a, port, b.OUT / "git", work, "profile")
    cmd = g.command
    g.command = lambda: cmd() + ["-monitor", f"unix:{mon},server=on,wait=off"]
    samples = []
    stop = threading.Event()
    perf = None
    try:
        boot = g.boot()
        print(f"boot to first 200: {boot:.0f} ms; serial log {g.serial}")
        t = threading.Thread(target=sample_guest, args=(mon, stop, samples))
        t.start()
        if not a.no_perf and shutil.which("perf"):
            perf = subprocess.Popen(["perf", "record", "-q", "-F", "499", "-g", "-o", str(work / "perf.data"),
                                     "-p", str(g.proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"https://127.0.0.1:{port}/" + ("1m.bin" if a.test == "1m-keepalive" else "1k.bin")
        before, t0 = thread_times(g.proc.pid), time.monotonic()
        ru0 = os.times()
        r = b.wrk(cfg, url, work / "wrk.txt", close=a.test == "1k-conn-close")
        ru1 = os.times()
        after, el = thread_times(g.proc.pid), time.monotonic() - t0
        print(f"wrk {a.test}: {r}")
        hz = os.sysconf("SC_CLK_TCK")
        print(f"CPU use over {el:.1f} s (1.0 = one core): wrk "
              f"{(ru1.children_user + ru1.children_system - ru0.children_user - ru0.children_system) / el:.2f}; "
              "QEMU threads: " + ", ".join(
                  f"{after[t][0]}[{t}] {(after[t][1] - before.get(t, (0, 0))[1]) / hz / el:.2f}"
                  for t in sorted(after) if after[t][1] - before.get(t, (0, 0))[1] > 0))
        print(f"load average: {' '.join(b.loadavg())}")
        if perf:
            perf.send_signal(2)
            perf.wait(30)
        stop.set()
        t.join(5)
    finally:
        stop.set()
        g.stop()

    ksyms = Resolver(symbols(a.kernel_sym))
    ssyms = Resolver(symbols(a.subject_sym))
    by_fn = collections.Counter()
    by_side = collections.Counter()
    for rip in samples:
        if rip >= 0xFFFF_8000_0000_0000:
            by_fn["kernel: " + ksyms(rip)] += 1
            by_side["kernel"] += 1
        else:
            by_fn["subject: " + ssyms(rip)] += 1
            by_side["subject"] += 1
    (work / "rip-samples.txt").write_text("".join(f"{r:#x}\n" for r in samples))
    n = max(len(samples), 1)
    print("top guest addresses: " + ", ".join(f"{r:#x} {c * 100 / n:.1f}%"
                                               for r, c in collections.Counter(samples).most_common(8)))
    print(f"\nguest RIP samples: {len(samples)}; " + ", ".join(f"{k} {v * 100 / n:.0f}%" for k, v in by_side.items()))
    for name, c in by_fn.most_common(a.top):
        print(f"{c * 100 / n:6.1f}%  {name}")

    if perf and (work / "perf.data").exists():
        rep = subprocess.run(["perf", "report", "-i", str(work / "perf.data"), "--no-children", "--sort", "dso,sym",
                              "--stdio", "-g", "none", "--percent-limit", "0.7"], capture_output=True, text=True).stdout
        print("\nhost perf (QEMU process, cpu-clock):")
        print("\n".join(l for l in rep.splitlines() if l and not l.startswith("#"))[:6000])
        rep = subprocess.run(["perf", "report", "-i", str(work / "perf.data"), "--no-children", "--sort", "comm",
                              "--stdio", "-g", "none"], capture_output=True, text=True).stdout
        print("\nhost perf by thread:")
        print("\n".join(l for l in rep.splitlines() if l and not l.startswith("#")))
    print(f"\n(files in {work})")


if __name__ == "__main__":
    main()
