#!/usr/bin/env python3
"""unipi-rs benchmarks (`make bench`; docs/bench.md). Never a test: nothing
here asserts speed.

Boots build/system.elf-style systems in QEMU (TCG by default, 1 vCPU, the
restricted user network of the Makefile with the site served over git:// by
a guestfwd `cmd:` git daemon) and measures, per run:

  boot      QEMU start -> first `curl -k https://127.0.0.1:PORT/` 200
            (boot + Git fetch of the site: the server answers 503 until then)
  1k-ka     wrk, 1 KiB file, keep-alive: req/s, p99
  1m-ka     wrk, 1 MiB file, keep-alive: transfer rate
  1k-close  wrk, 1 KiB file, `Connection: close`, TLS resumption (tickets)
  1k-full   same, booted with --tls-resumption=off: a full handshake each
  rss       QEMU peak RSS (VmHWM), heap high-water mark (status log)
  capacity  (once per side, after the runs) 1,000 connects at once and as
            fast as slirp accepts them, idle keep-alive TLS connections held
            (up to 10,000, bounded in time) with heap and QEMU RSS per
            connection, a busy client's p99 with none and with 5,000 idle;
            then unipi-rs/tests/capacity.rs in-process (tests/capacity_client.py)

The peer (../shared/bench/peer-nginx: Debian Linux + nginx in the same QEMU
set-up) runs back to back in the same invocation through its own bench.sh;
every figure is printed as a ratio to it. Then the Git section: a 1,000-file
site fetched at boot against `git clone --depth 1` of the same repository
on the host from the same server (git daemon --inetd via the same script),
then a webhook pull of a one-page change against that boot fetch.
Last, the page section: the bytes one load of a page of htdocs/ (HTML, CSS,
images) puts on the wire, from unipi-rs with and without compression and
from nginx with `gzip on` (the peer's GZIP=on build).

All traffic stays on 127.0.0.1 (hostfwd) or inside QEMU (guestfwd cmd:);
every wrk run is bounded by -d and a timeout; processes started here are
stopped by their PID.
"""

import argparse
import collections
import hashlib
import os
import random
import re
import shutil
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
OUT = BUILD / "bench"
GIT_ADDR = "192.168.254.2"
GUEST_IP = "192.168.254.10"
CERTS = ROOT / "certs" / "dev"

# ----------------------------------------------------------------- helpers


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def slug(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def loadavg():
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return ["?"] * 3


def vmhwm_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def tree_digest(paths):
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


# ----------------------------------------------------------------- wrk

UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}
UNITS_B = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def parse_latency(s):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", s or "")
    return float(m.group(1)) * UNITS_MS[m.group(2)] if m else None


def parse_bytes(s):
    m = re.fullmatch(r"([\d.]+)(B|KB|MB|GB)", s or "")
    return float(m.group(1)) * UNITS_B[m.group(2)] if m else None


def parse_wrk(text):
    r = {}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    r["rps"] = float(m.group(1)) if m else None
    m = re.search(r"^Transfer/sec:\s+(\S+)", text, re.M)
    r["bps"] = parse_bytes(m.group(1)) if m else None
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        r[f"p{pct}"] = parse_latency(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+\w+) read", text)
    r["requests"] = int(m.group(1)) if m else None
    r["bytes"] = parse_bytes(m.group(2)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["errors"] = sum(int(x) for x in m.groups()) if m else 0
    for k, v in zip(("connect", "read", "write", "timeout"), m.groups() if m else (0, 0, 0, 0)):
        r[f"err_{k}"] = int(v)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


class Settings:
    def __init__(self, a):
        self.dur = a.dur
        self.threads = a.threads
        self.conns = a.conns
        self.timeout = a.wrk_timeout

    def dur_s(self):
        m = re.fullmatch(r"(\d+)(s|m)?", self.dur)
        if not m:
            raise SystemExit(f"bad duration {self.dur} (use e.g. 10s)")
        return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def wrk(cfg, url, outfile, close=False):
    cmd = ["wrk", f"-t{cfg.threads}", f"-c{cfg.conns}", f"-d{cfg.dur}", "--timeout", cfg.timeout, "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    cmd.append(url)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.dur_s() + 30)
        text = p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode(errors="replace") + "\n(wrk timed out)\n"
    Path(outfile).write_text(" ".join(cmd) + "\n" + text)
    return parse_wrk(text)


def thread_cpu(pid):
    """{thread name: CPU seconds} of a process (QEMU runs with
    debug-threads=on, so the vCPU thread is "CPU 0/TCG")."""
    out = {}
    hz = os.sysconf("SC_CLK_TCK")
    try:
        for t in Path(f"/proc/{pid}/task").iterdir():
            st = (t / "stat").read_text()
            name = st[st.index("(") + 1:st.rindex(")")]
            f = st[st.rindex(")") + 2:].split()
            out[name] = out.get(name, 0) + (int(f[11]) + int(f[12])) / hz
    except (OSError, ValueError):
        pass
    return out


def curl_code(url, max_time):
    p = subprocess.run(["curl", "-k", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(max_time), url],
                       capture_output=True, text=True)
    return p.stdout.strip()


# ----------------------------------------------------------------- our systems


class Variant:
    """A subject ELF + kernel ELF pair to benchmark (default: the build)."""

    def __init__(self, name, subject, kernel, params=""):
        self.name, self.subject, self.kernel, self.params = name, Path(subject), Path(kernel), params


YIELD_EVENT = False
MINOR_FRAME_US = 1000


def make_system(tools, variant, name, bootparams, ram):
    """build/bench/sys/<name>/system.elf with muen-tools (as the Makefile,
    but without the fallback site region: the site comes only from Git, so
    the first 200 really is boot + fetch)."""
    out = OUT / "sys" / slug(name)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    elf = out / "unipi.muen"
    shutil.copyfile(variant.subject, elf)
    run([str(tools), "cspec", "--elf", str(elf), "--name", "unipi", "--ram", str(ram), "--net", "net0",
         "--bootparams", bootparams,
         "--memory", f"tls_cert:{CERTS / 'server.pem'}", "--memory", f"tls_key:{CERTS / 'server.key'}",
         "-o", str(out / "unipi.cspec.xml")], stdout=subprocess.DEVNULL)
    (out / "system.xml").write_text(
        f'<system minorFrameMicros="{MINOR_FRAME_US}" debugExit="true">\n'
        ' <subject name="unipi" cspec="unipi.cspec.xml">\n'
        f'  <memory logical="tls_cert" file="{CERTS / "server.pem"}"/>\n'
        f'  <memory logical="tls_key" file="{CERTS / "server.key"}"/>\n'
        '  <event id="0" logical="solo5_exit" action="exit"/>\n'
        '  <event id="1" logical="net0|notify" action="netnotify"/>\n'
        + ('  <event id="2" logical="yield" action="yield"/>\n' if YIELD_EVENT else '')
        + ' </subject>\n'
        '</system>\n')
    run([str(tools), "pack", "--kernel", str(variant.kernel), "--system", str(out / "system.xml"),
         "-o", str(out / "system.elf")], stdout=subprocess.DEVNULL)
    return out / "system.elf"


class Guest:
    """One QEMU running one of our systems, as `make run` starts it."""

    def __init__(self, system, a, port, git_base, rundir, tag):
        self.system, self.a, self.port, self.git_base = system, a, port, git_base
        self.serial = rundir / f"serial-{tag}.log"
        self.stderr = rundir / f"qemu-stderr-{tag}.log"
        self.proc = None

    def command(self):
        a = self.a
        accel = ["-accel", "kvm", "-cpu", "host"] if a.accel == "kvm" else ["-accel", "tcg", "-cpu", "max"]
        if a.machine == "pc":
            machine, nic = ["-M", "pc"], "virtio-net-pci"
        else:
            machine, nic = ["-M", "microvm,rtc=on"], "virtio-net-device"
        net = ",".join(["user", "id=n0", "restrict=on", "net=192.168.254.0/24", "host=192.168.254.1",
                        f"hostfwd=tcp:127.0.0.1:{self.port}-{GUEST_IP}:4433",
                        f"guestfwd=tcp:{GIT_ADDR}:9418-cmd:{ROOT}/scripts/git-inetd.sh {self.git_base}"])
        return ["qemu-system-x86_64", "-name", "unipi,debug-threads=on", *machine, *accel, "-m", a.mem, "-smp", "1",
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-serial", f"file:{self.serial}", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-netdev", net, "-device", f"{nic},netdev=n0", "-kernel", str(self.system)]

    def boot(self, path="/"):
        """Starts QEMU; returns ms until the first 200 on `path` (None on timeout)."""
        url = f"https://127.0.0.1:{self.port}{path}"
        if curl_code(url, 1) not in ("", "000"):
            raise SystemExit(f"something already answers on 127.0.0.1:{self.port}")
        self.serial.unlink(missing_ok=True)
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.stderr, "w"))
        while time.monotonic() - t0 < self.a.boot_timeout:
            if curl_code(url, 0.2) == "200":
                return (time.monotonic() - t0) * 1000
            if self.proc.poll() is not None:
                log(f"QEMU exited ({self.proc.returncode}) during boot; see {self.serial}")
                return None
            time.sleep(0.005)
        log(f"no 200 within {self.a.boot_timeout}s; see {self.serial}")
        return None

    def log(self):
        try:
            return self.serial.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.findall(pattern, self.log())
            if m:
                return m
            time.sleep(0.1)
        return []

    def rss_kib(self):
        return vmhwm_kib(self.proc.pid) if self.proc else None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


STATUS_RX = (r"status: (\d+) connections open, (\d+) accepted, (?:\d+ refused, \d+ evicted idle, \d+ evicted slow, "
             r"\d+ too slow, )?(\d+) failed; heap (\d+) used, (\d+) peak, (\d+) size")
SERVING_RX = r"serving ([0-9a-f]{40}); heap (\d+) of (\d+) bytes in use, peak (\d+)"
FETCHED_RX = r"git: fetched [0-9a-f]{40} from \S+: (\d+) files, (\d+) bytes \(pack (\d+) bytes.*?\) in (\d+) ms"
# The compression pass after a fetch (site/compress.rs, app.rs): started, done.
COMPRESSING_RX = r"site: compressing in the background; heap (\d+) of (\d+) bytes in use, peak (\d+)"
COMPRESSED_RX = (r"site: gzip for (\d+) files \((\d+) made here, (\d+) committed \.gz\), br for (\d+) "
                 r"\(committed \.br\); (\d+) -> (\d+) bytes.*?, (\d+) bytes of heap made; .*? (\d+) ms in (\d+) "
                 r"slices; heap (\d+) of (\d+) bytes in use, peak (\d+)")


def latency_probe(port, path, n):
    """n GETs of `path` over one keep-alive connection (curl); the seconds
    each took."""
    cmd = ["curl", "-k", "-s", "--max-time", "60"]
    for _ in range(n):
        cmd += ["-o", "/dev/null", "-w", "%{time_total}\\n", f"https://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=90).stdout
    return [float(x) for x in out.split()]


def compression_figures(guest, timeout):
    """Waits for the end of the compression pass; returns its figures (the
    last pass in the log), or None."""
    done = guest.wait_for(COMPRESSED_RX, timeout)
    if not done:
        return None
    d = [int(x) for x in done[-1]]
    started = re.findall(COMPRESSING_RX, guest.log())
    before = [int(x) for x in started[-1]] if started else [None] * 3
    return {"files": d[0], "made": d[1], "committed_gz": d[2], "committed_br": d[3], "identity": d[4],
            "gzip": d[5], "made_bytes": d[6], "ms": d[7], "slices": d[8], "heap_used": d[9],
            "heap_peak": d[11], "heap_used_before": before[0], "heap_peak_before": before[2]}


def heap_peak(guest, settle):
    """Waits for one more status line (written after the load) and returns
    the highest heap peak reported."""
    n = len(re.findall(STATUS_RX, guest.log()))
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline and len(re.findall(STATUS_RX, guest.log())) <= n:
        time.sleep(0.1)
    peaks = [int(m[4]) for m in re.findall(STATUS_RX, guest.log())]
    return max(peaks) if peaks else None


def check_content(port, htdocs, rundir):
    """Sanity: the guest serves the exact bytes of 1k.bin and 1m.bin."""
    for f in ("1k.bin", "1m.bin"):
        p = subprocess.run(["curl", "-k", "-s", "--max-time", "60", f"https://127.0.0.1:{port}/{f}"],
                           capture_output=True)
        if p.stdout != (htdocs / f).read_bytes():
            (rundir / f"bad-{f}").write_bytes(p.stdout)
            log(f"WARNING: /{f} served by the guest differs from {htdocs / f}")
            return False
    return True


def cpu_note(r, before, after, elapsed):
    """Adds the QEMU CPU seconds of a wrk run: vCPU thread and the rest
    (main loop with slirp, I/O). Meaningful as a cost only when the guest
    idles instead of spinning."""
    vcpu = sum(v - before.get(k, 0) for k, v in after.items() if "TCG" in k or "KVM" in k)
    rest = sum(v - before.get(k, 0) for k, v in after.items() if not ("TCG" in k or "KVM" in k))
    r["cpu_vcpu"], r["cpu_rest"], r["wall"] = vcpu, rest, elapsed


def bridge_drops(text):
    """The kernel's last bridge report (it logs one at most every 5 s when
    frames were dropped): {kind: count}, empty when nothing was dropped."""
    m = re.findall(r"bridge: .*?dropped (\d+) \(([^)]*)\)", text)
    if not m:
        return {}
    return {k.strip(): int(v) for v, k in (x.rsplit(" ", 1)[::-1] for x in m[-1][1].split(", ")) if int(v)}


def run_ours(a, cfg, variant, systems, htdocs, rundir, tag):
    """One run of our side: resumption system (boot, 3 wrk runs), then the
    --tls-resumption=off system (1 KiB conn-close)."""
    r = {}
    port = free_port()
    g = Guest(systems["resume"], a, port, OUT / "git", rundir, f"{tag}-resume")
    try:
        r["boot_ms"] = g.boot()
        if r["boot_ms"] is None:
            return r
        m = g.wait_for(SERVING_RX, 10)
        if m:
            r["heap_after_fetch"] = int(m[-1][3])
        check_content(port, htdocs, rundir)
        base = f"https://127.0.0.1:{port}"
        for test in a.tests:
            c0, t0 = thread_cpu(g.proc.pid), time.monotonic()
            if test == "1k-keepalive":
                r[test] = wrk(cfg, f"{base}/1k.bin", rundir / f"wrk-{tag}-{test}.txt")
            elif test == "1m-keepalive":
                r[test] = wrk(cfg, f"{base}/1m.bin", rundir / f"wrk-{tag}-{test}.txt")
            elif test == "1k-conn-close":
                r[test] = wrk(cfg, f"{base}/1k.bin", rundir / f"wrk-{tag}-{test}.txt", close=True)
            else:
                continue
            cpu_note(r[test], c0, thread_cpu(g.proc.pid), time.monotonic() - t0)
        r["rss_kib"] = g.rss_kib()
        r["heap_peak"] = heap_peak(g, 3)
        r["bridge"] = bridge_drops(g.log())
    finally:
        g.stop()
    if "1k-conn-close-full" in a.tests:
        port = free_port()
        g = Guest(systems["full"], a, port, OUT / "git", rundir, f"{tag}-full")
        try:
            if g.boot() is not None:
                c0, t0 = thread_cpu(g.proc.pid), time.monotonic()
                r["1k-conn-close-full"] = wrk(cfg, f"https://127.0.0.1:{port}/1k.bin",
                                              rundir / f"wrk-{tag}-1k-conn-close-full.txt", close=True)
                cpu_note(r["1k-conn-close-full"], c0, thread_cpu(g.proc.pid), time.monotonic() - t0)
                r["rss_full_kib"] = g.rss_kib()
                r["heap_peak_full"] = heap_peak(g, 3)
        finally:
            g.stop()
    return r


# ----------------------------------------------------------------- capacity

sys.path.insert(0, str(ROOT / "tests"))
import capacity_client as cc  # noqa: E402  (tests/capacity_client.py, shared with tests/test_capacity.py)

CAP_STATUS_RX = (r"status: (\d+) connections open, (\d+) accepted, (\d+) refused, (\d+) evicted idle, "
                 r"(\d+) evicted slow, (\d+) too slow, (\d+) failed; heap (\d+) used, (\d+) peak, (\d+) size")


def last_status(guest):
    m = re.findall(CAP_STATUS_RX, guest.log()) if guest else []
    return [int(x) for x in m[-1]] if m else None


def capacity_load(a, port, pid, guest=None):
    """The capacity figures against whatever listens on 127.0.0.1:port
    (QEMU pid `pid`; `guest`: ours, for the status lines): a burst of
    --cap-burst connects at once, the keep-alive p99 with no idle
    connection, idle keep-alive connections opened up to --cap-latency-at,
    the p99 again, then up to --cap-idle; each step bounded."""
    r = {"listen_backlog": cc.listen_backlog(port)}
    cc.raise_file_limit(a.cap_idle + a.cap_burst + 512)
    r["burst"] = cc.burst(port, a.cap_burst, timeout=a.cap_burst_seconds)
    time.sleep(2)
    r["burst_paced"] = cc.burst(port, a.cap_burst, timeout=a.cap_burst_seconds, waiting=2)
    time.sleep(2)
    st = last_status(guest)
    r["status_after_burst"] = st
    try:
        r["lat0"] = cc.keepalive_latency(port, a.cap_requests, timeout=30, path="/1k.bin")
    except (OSError, ValueError) as e:
        r["lat0"] = {"requests": 0, "error": str(e)}
    time.sleep(1.5)
    base_status, base_rss = last_status(guest), cc.rss_kib(pid)
    idle = cc.Idle(port, "/1k.bin")
    try:
        deadline = time.monotonic() + a.cap_seconds
        if 0 < a.cap_latency_small < a.cap_latency_at:
            # As many as the peer's nginx holds (worker_connections 1024).
            idle.open(a.cap_latency_small, timeout=max(5, deadline - time.monotonic()))
            r["idle_at_small"] = idle.alive()
            try:
                r["lat_small"] = cc.keepalive_latency(port, a.cap_requests, timeout=30, path="/1k.bin")
            except (OSError, ValueError) as e:
                r["lat_small"] = {"requests": 0, "error": str(e)}
        idle.open(a.cap_latency_at - len(idle.conns), timeout=max(5, deadline - time.monotonic()))
        r["idle_at_latency"] = idle.alive()
        try:
            r["lat_idle"] = cc.keepalive_latency(port, a.cap_requests, timeout=30, path="/1k.bin")
        except (OSError, ValueError) as e:
            r["lat_idle"] = {"requests": 0, "error": str(e)}
        if a.cap_idle > a.cap_latency_at:
            idle.open(a.cap_idle - len(idle.conns), timeout=max(5, deadline - time.monotonic()))
        time.sleep(1.5)
        r["idle_opened"] = len(idle.conns)
        r["idle_held"] = idle.alive()
        r["idle_seconds"] = idle.seconds
        st, rss = last_status(guest), cc.rss_kib(pid)
        lost = re.findall(r"frames, (\d+) lost", guest.log()) if guest else []
        r["frames_lost"] = int(lost[-1]) if lost else None
        if st and base_status and r["idle_held"]:
            r["heap_per_idle"] = (st[7] - base_status[7]) / r["idle_held"]
            r["server_open"], r["heap_used"], r["heap_size"] = st[0], st[7], st[9]
            r["refused"], r["evicted_idle"] = st[2], st[3]
        if rss and base_rss and r["idle_held"]:
            r["rss_per_idle_kib"] = (rss - base_rss) / r["idle_held"]
    finally:
        idle.close()
    return r


def run_capacity_ours(a, systems, rundir):
    port = free_port()
    g = Guest(systems["capacity"], a, port, OUT / "git", rundir, "capacity")
    try:
        if g.boot() is None:
            return {}
        m = re.findall(r"up to (\d+) connections", g.log())
        r = capacity_load(a, port, g.proc.pid, g)
        r["max_connections"] = int(m[-1]) if m else None
        return r
    finally:
        g.stop()


def run_capacity_peer(a, rundir):
    """The peer's guest, started with the QEMU command line its bench.sh
    wrote when it was built (only the port and the serial file differ)."""
    import shlex
    cmdfile = a.peer_out / "build-run" / "qemu-cmdline-build-resume.txt"
    if not cmdfile.exists():
        log(f"capacity: no {cmdfile}; peer skipped")
        return {}
    port = free_port()
    cmd = shlex.split(cmdfile.read_text())
    cmd = [re.sub(r"hostfwd=tcp:127\.0\.0\.1:\d+-", f"hostfwd=tcp:127.0.0.1:{port}-", x) for x in cmd]
    cmd = [f"file:{rundir / 'serial-capacity-nginx.log'}" if x.startswith("file:") else x for x in cmd]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < a.boot_timeout and curl_code(f"https://127.0.0.1:{port}/", 0.5) != "200":
            if p.poll() is not None:
                return {}
            time.sleep(0.1)
        return capacity_load(a, port, p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_capacity_inprocess(a, rundir):
    """unipi-rs/tests/capacity.rs (the whole server in-process, native):
    returns its JSON result."""
    import json
    env = dict(os.environ, UNIPI_CAP_IDLE=str(a.cap_inprocess_idle), UNIPI_CAP_BURST=str(a.cap_burst),
               UNIPI_CAP_LATENCY_AT=str(a.cap_latency_at), UNIPI_CAP_TIMEOUT="300")
    p = subprocess.run(["cargo", "test", "--locked", "-q", "-p", "unipi", "--test", "capacity", "--", "--ignored",
                        "--nocapture", "capacity"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    (rundir / "capacity-inprocess.txt").write_text(p.stdout + p.stderr)
    m = re.search(r"^capacity-result: (.*)$", p.stdout + p.stderr, re.M)
    return json.loads(m.group(1)) if m else {}


def capacity_report(a, cap):
    lines = []
    p = lines.append
    ours, peer, inp = cap.get("ours") or {}, cap.get("peer") or {}, cap.get("inprocess") or {}
    p("## Capacity (issue 14)\n")
    p(f"Through QEMU (one boot per side, same invocation, bounded: burst {a.cap_burst_seconds} s, idle connections "
      f"opened with at most 2 unanswered at a time for at most {a.cap_seconds} s, {a.cap_requests} keep-alive requests per p99). QEMU's "
      f"user network listens on the hostfwd port with a backlog of {ours.get('listen_backlog', '?')} (ss), and "
      "opens one host socket per guest connection; connects the host drops at that backlog wait in SYN retries "
      "(`unfinished`), on both sides alike. nginx runs the peer's configuration (`worker_connections 1024`).\n")
    p("| figure | unipi-rs | nginx | ratio unipi/nginx |")
    p("|---|---:|---:|---:|")

    def ratio(x, y):
        return f"{x / y:.2f}×" if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y else "—"

    def num(r, k, sub=None):
        x = r.get(k)
        if sub:
            x = (x or {}).get(sub) if (x or {}).get("requests", 1) else None
        return x

    def b(r, k="burst"):
        x = r.get(k) or {}
        return (f"{x.get('served', '—')} / {x.get('reset', '—')} / {x.get('failed', '—')} / "
                f"{x.get('unfinished', '—')}") if x else "—"

    def lat(r, k):
        x = r.get(k) or {}
        return fmt(x.get("p99_ms")) if x.get("requests") else "—"

    p(f"| {a.cap_burst} connects at once: served / reset / failed / unfinished | {b(ours)} | {b(peer)} | — |")
    p(f"| {a.cap_burst} connects as fast as slirp accepts them (≤ 2 unanswered): served / reset / failed / "
      f"unfinished | {b(ours, 'burst_paced')} | {b(peer, 'burst_paced')} | — |")
    p(f"| idle keep-alive TLS connections held (opened) | {ours.get('idle_held', '—')} ({ours.get('idle_opened', '—')}) | "
      f"{peer.get('idle_held', '—')} ({peer.get('idle_opened', '—')}) | "
      f"{ratio(ours.get('idle_held'), peer.get('idle_held'))} |")
    p(f"| heap per idle connection (bytes, status line) | {fmt(ours.get('heap_per_idle'))} | n/a | — |")
    p(f"| QEMU RSS growth per idle connection (KiB) | {fmt(ours.get('rss_per_idle_kib'))} | "
      f"{fmt(peer.get('rss_per_idle_kib'))} | {ratio(ours.get('rss_per_idle_kib'), peer.get('rss_per_idle_kib'))} |")
    p(f"| keep-alive p99, no idle connection (ms) | {lat(ours, 'lat0')} | {lat(peer, 'lat0')} | "
      f"{ratio(num(ours, 'lat0', 'p99_ms'), num(peer, 'lat0', 'p99_ms'))} |")
    p(f"| keep-alive p99 with idle connections open (ms) | {lat(ours, 'lat_small')} "
      f"({ours.get('idle_at_small', '—')} idle) | {lat(peer, 'lat_small')} ({peer.get('idle_at_small', '—')} idle) | "
      f"{ratio(num(ours, 'lat_small', 'p99_ms'), num(peer, 'lat_small', 'p99_ms'))} |")
    p(f"| keep-alive p99 with idle connections open (ms) | {lat(ours, 'lat_idle')} "
      f"({ours.get('idle_at_latency', '—')} idle) | {lat(peer, 'lat_idle')} ({peer.get('idle_at_latency', '—')} idle) | "
      f"{ratio(num(ours, 'lat_idle', 'p99_ms'), num(peer, 'lat_idle', 'p99_ms'))} |")
    p(f"| keep-alive p50, no idle / idle connections open (ms) | {fmt(num(ours, 'lat0', 'p50_ms'))} / "
      f"{fmt(num(ours, 'lat_idle', 'p50_ms'))} | {fmt(num(peer, 'lat0', 'p50_ms'))} / "
      f"{fmt(num(peer, 'lat_idle', 'p50_ms'))} | — |")
    p(f"| default capacity (connections) | {ours.get('max_connections', '—')} | 1,024 (worker_connections) | — |")
    if ours.get("frames_lost"):
        p(f"\nFrames the subject lost on its network channel during the capacity boot (overruns while its loop "
          f"was busy; each one costs a retransmission): {ours['frames_lost']:,}.")
    if inp:
        p("\nIn-process (unipi-rs/tests/capacity.rs: the whole server natively, smoltcp clients and rustls on a "
          "simulated link, heap counted per side, real time):\n")
        p("| figure | value |")
        p("|---|---:|")
        p(f"| idle TLS connections held / opened | {inp.get('idle_held')} / {inp.get('idle_opened')} |")
        p(f"| heap per idle connection: average / marginal (bytes) | {inp.get('heap_per_idle')} / "
          f"{inp.get('heap_per_idle_marginal')} |")
        p(f"| idle connections that fit in the subject's heap ({inp.get('heap_size', 0) / 2**20:.0f} MiB) at that cost "
          f"| {inp.get('idle_fit_in_heap')} |")
        p(f"| {inp.get('burst')} connects at once: served / reset | {inp.get('burst_served')} / "
          f"{inp.get('burst_resets')} |")
        for idle_n, p50, p99, it in inp.get("latency") or []:
            p(f"| keep-alive p50 / p99 with {int(idle_n)} idle connections (ms); server loop µs per iteration | "
              f"{p50:.3f} / {p99:.3f}; {it:.0f} |")
    p("")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------- the peer

PEER_ROW = re.compile(r"^\| (\S+) \| (\S+) \| (\S+) \| (\S+) \| (\S+) \| (\S+) \| (.*) \|$", re.M)


def peer_env(a, cfg, out, run_dir, label, port, **extra):
    env = dict(os.environ, NOBUILD="1", ACCEL=a.accel, OUT=str(out), RUN=str(run_dir), LABEL=label,
               DUR=cfg.dur, THREADS=str(cfg.threads), CONNS=str(cfg.conns), WRK_TIMEOUT=cfg.timeout,
               PORT=str(port), NATIVE_PORT=str(free_port()), VM="1", NATIVE="0",
               MEM=str(mem_mib(a.mem)), VCPUS="1", BOOT_TIMEOUT=str(a.boot_timeout))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def mem_mib(mem):
    m = re.fullmatch(r"(\d+)([MG]?)", mem)
    if not m:
        raise SystemExit(f"bad --mem {mem}")
    return int(m.group(1)) * (1024 if m.group(2) == "G" else 1)


def run_peer_script(a, env, htdocs, timeout, logfile):
    """Runs peer-nginx/bench.sh in its own process group (stopped by that
    group's id if it overruns); returns its stdout."""
    p = subprocess.Popen([str(a.peer / "bench.sh"), str(htdocs)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)
        out, _ = p.communicate()
        out += "\n(peer bench.sh timed out)\n"
    Path(logfile).write_text(out)
    return out


def parse_peer(text):
    r = {}
    m = re.search(r"boot_ms=(\d+)", text)
    r["boot_ms"] = float(m.group(1)) if m else None
    m = re.search(r"VmHWM (\d+) kB", text)
    r["rss_kib"] = int(m.group(1)) if m else None
    for row in PEER_ROW.findall(text):
        _, test, rps, xfer, p50, p99, errs = row
        if test == "test":
            continue
        n2 = re.search(r"non2xx=(\d+)", errs)
        kinds = dict((k, int(v)) for k, v in re.findall(r"(connect|read|write|timeout)(\d+)", errs))
        r[test] = {"rps": None if rps == "FAIL" else float(rps), "bps": parse_bytes(xfer),
                   "p50": parse_latency(p50), "p99": parse_latency(p99),
                   "errors": sum(kinds.values()), "non2xx": int(n2.group(1)) if n2 else 0,
                   **{f"err_{k}": v for k, v in kinds.items()}}
    return r


def run_peer(a, cfg, htdocs, rundir, tag):
    budget = 3 * (cfg.dur_s() + 35) + a.boot_timeout + 60
    port = free_port()
    env = peer_env(a, cfg, a.peer_out / "resume", rundir / "peer", f"{tag}-resume", port,
                   TESTS=" ".join(t for t in a.tests if t != "1k-conn-close-full"))
    r = parse_peer(run_peer_script(a, env, htdocs, budget, rundir / f"peer-{tag}-resume.txt"))
    if "1k-conn-close-full" in a.tests:
        env = peer_env(a, cfg, a.peer_out / "full", rundir / "peer", f"{tag}-full", free_port(),
                       TESTS="1k-conn-close", SSL_RESUME="off")
        f = parse_peer(run_peer_script(a, env, htdocs, budget, rundir / f"peer-{tag}-full.txt"))
        r["1k-conn-close-full"] = f.get("1k-conn-close")
        r["rss_full_kib"] = f.get("rss_kib")
    return r


def ensure_peer_builds(a, htdocs):
    """Builds the peer guest twice when its inputs changed: with session
    resumption (nginx default) and with SSL_RESUME=off (bench.sh bakes the
    ssl_* lines into the initramfs at build time). Uses the peer's own
    scripts, never copies of them."""
    digest = tree_digest([htdocs, a.peer / "build.sh", a.peer / "init", a.peer / "nginx.conf.in"])
    for kind in ("resume", "full"):
        out = a.peer_out / kind
        stamp = out / "bench-inputs.sha256"
        if stamp.exists() and stamp.read_text().strip() == digest and (out / "initrd.img").exists():
            continue
        log(f"building the peer guest ({kind}) in {out} with {a.peer}/bench.sh (BOOT_ONLY=1) ...")
        out.mkdir(parents=True, exist_ok=True)
        first = a.peer_out / "resume"
        if kind == "full":
            # Reuse the downloaded kernel and the TLS key of the first build.
            for d in ("kernel", "dl", "tls"):
                if (first / d).exists() and not (out / d).exists():
                    shutil.copytree(first / d, out / d, copy_function=os.link)
        env = peer_env(a, Settings(a), out, a.peer_out / "build-run", f"build-{kind}", free_port(),
                       BOOT_ONLY="1", **({"SSL_RESUME": "off"} if kind == "full" else {}))
        del env["NOBUILD"]
        text = run_peer_script(a, env, htdocs, 1800, a.peer_out / f"build-{kind}.txt")
        if not (out / "initrd.img").exists() or "boot_ms=" not in text:
            raise SystemExit(f"peer build failed; see {a.peer_out / f'build-{kind}.txt'}")
        stamp.write_text(digest + "\n")


# ----------------------------------------------------------------- sites


def ensure_htdocs(a):
    """The document root both sides serve: the peer's make-htdocs.sh when the
    peer is present (index.html, 1k.bin, 1m.bin), else the same layout here.
    Kept across invocations so the peer builds stay valid."""
    d = OUT / "htdocs"
    if all((d / f).exists() for f in ("index.html", "1k.bin", "1m.bin")):
        return d
    if a.peer:
        run([str(a.peer / "make-htdocs.sh"), str(d)], stdout=subprocess.DEVNULL)
    else:
        d.mkdir(parents=True, exist_ok=True)
        (d / "index.html").write_text("<!doctype html>\n<html><head><title>bench</title></head>"
                                      "<body><h1>bench</h1></body></html>\n")
        (d / "1k.bin").write_bytes(os.urandom(1024))
        (d / "1m.bin").write_bytes(os.urandom(1 << 20))
    return d


def make_site_1000(n):
    """A deterministic n-file site (text pages and a few binaries, 10
    directories, sizes 200 B .. 16 KiB) plus an index.html."""
    d = OUT / f"site{n}"
    stamp = OUT / f"site{n}.complete"
    if stamp.exists() and d.is_dir():
        return d
    shutil.rmtree(d, ignore_errors=True)
    rng = random.Random(n)
    words = ("muen separation kernel subject channel unikernel rust smoltcp rustls git pack delta "
             "object tree blob commit memory region event scheduling minor frame major plan").split()
    (d).mkdir(parents=True)
    (d / "index.html").write_text("<!doctype html><title>1000 files</title><p>index</p>\n")
    for i in range(n - 1):
        sub = d / f"d{i % 10:02d}"
        sub.mkdir(exist_ok=True)
        size = int(rng.lognormvariate(8.0, 0.9)) % 16384 + 200
        if i % 50 == 7:
            (sub / f"f{i:04d}.bin").write_bytes(rng.randbytes(size))
        else:
            text = []
            while sum(len(t) for t in text) < size:
                text.append(" ".join(rng.choice(words) for _ in range(12)) + "\n")
            (sub / f"f{i:04d}.html").write_text(f"<!doctype html><title>page {i}</title>\n" + "".join(text))
    stamp.write_text("")
    return d


def site_repo(site, name):
    repo = OUT / "git" / f"{name}.git"
    repo.parent.mkdir(parents=True, exist_ok=True)
    run([str(ROOT / "scripts" / "site-repo.sh"), str(site), str(repo)], stdout=subprocess.DEVNULL,
        env=dict(os.environ, SOURCE_DATE_EPOCH="1700000000"))
    return repo


def one_file_change(repo, n):
    """Commits a one-line change of one page to the bare repository's HEAD
    branch (through a scratch clone); returns the old and the new commit."""
    work = OUT / "git-change"
    shutil.rmtree(work, ignore_errors=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@unipi.test",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@unipi.test")
    rev = lambda d: run(["git", "-C", str(d), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    old = rev(repo)
    run(["git", "clone", "-q", str(repo), str(work)], env=env)
    page = work / "d00" / "f0000.html"
    page.write_text(page.read_text() + f"<!-- change {n} -->\n")
    run(["git", "-C", str(work), "commit", "-qam", f"change {n}"], env=env)
    run(["git", "-C", str(work), "push", "-q", "origin", "HEAD"], env=env)
    new = rev(work)
    shutil.rmtree(work, ignore_errors=True)
    return old, new


def hook_pull(guest, commit):
    """POSTs the webhook and reads the pull of `commit` from the subject's
    log: (pack bytes, incremental?, fetch ms from the log, ms to the hook's
    answer), or None."""
    t0 = time.monotonic()
    r = subprocess.run(["curl", "-k", "-s", "--max-time", "120", "-X", "POST",
                        f"https://127.0.0.1:{guest.port}/hook"], capture_output=True, text=True, timeout=150)
    answered = (time.monotonic() - t0) * 1000
    if r.stdout.strip() != f"pulled {commit}":
        log(f"WARNING: hook answered {r.stdout.strip()!r}")
        return None
    m = re.search(rf"git: fetched {commit} from \S+: .*?\(pack (\d+) bytes[^)]*?(, incremental: [^)]*)?\) in (\d+) ms",
                  guest.log())
    if not m:
        return None
    return int(m.group(1)), m.group(2) is not None, int(m.group(3)), answered


def host_clone(repo_name, dest):
    """`git clone --depth 1` from the same server the guest uses: git daemon
    --inetd started by scripts/git-inetd.sh (over git's ext:: transport with
    a git:// request header, %G). Returns ms."""
    shutil.rmtree(dest, ignore_errors=True)
    url = f"ext::{ROOT}/scripts/git-inetd.sh {OUT / 'git'} %G/{repo_name}"
    t0 = time.monotonic()
    run(["git", "-c", "protocol.ext.allow=always", "clone", "-q", "--depth", "1", url, str(dest)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    ms = (time.monotonic() - t0) * 1000
    shutil.rmtree(dest, ignore_errors=True)
    return ms


# ----------------------------------------------------------------- page bytes


class PageLinks(HTMLParser):
    """The resources a page loads: stylesheets, icons, images, scripts."""

    def __init__(self):
        super().__init__()
        self.paths = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        url = None
        if tag == "link" and set((a.get("rel") or "").split()) & {"stylesheet", "icon"}:
            url = a.get("href")
        elif tag in ("img", "script"):
            url = a.get("src")
        if url and "://" not in url and not url.startswith("//"):
            path = url if url.startswith("/") else "/" + url
            if path not in self.paths:
                self.paths.append(path)


def page_paths(site):
    """`/` and everything its index.html loads, in document order."""
    parser = PageLinks()
    parser.feed((site / "index.html").read_text(errors="replace"))
    return ["/"] + parser.paths


class CountingRelay:
    """A TCP relay on 127.0.0.1 to 127.0.0.1:port that counts the bytes in
    each direction: what a page load puts on the wire above TCP (TLS
    records, the handshake included). Closed with close()."""

    def __init__(self, port):
        self.target = port
        self.down = self.up = self.connections = 0
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.stopping = False
        self.threads = [threading.Thread(target=self.accept, daemon=True)]
        self.threads[0].start()

    def accept(self):
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            u = socket.create_connection(("127.0.0.1", self.target), timeout=60)
            c.settimeout(60)
            with self.lock:
                self.connections += 1
            for src, dst, attr in ((c, u, "up"), (u, c, "down")):
                t = threading.Thread(target=self.pump, args=(src, dst, attr), daemon=True)
                t.start()
                self.threads.append(t)

    def pump(self, src, dst, attr):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    setattr(self, attr, getattr(self, attr) + len(data))
                dst.sendall(data)
        except OSError:
            pass
        for sock in (dst, src):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stopping = True
        for t in self.threads:
            t.join(5)
        self.srv.close()


def page_load(port, paths, logfile):
    """One load of `paths` by curl --compressed over one keep-alive TLS
    connection through a CountingRelay: per resource (status, header bytes,
    body bytes, Content-Encoding), and the TLS bytes each way."""
    relay = CountingRelay(port)
    cmd = ["curl", "-k", "-s", "--compressed", "--max-time", "60", "--raw"]
    for path in paths:
        cmd += ["-o", "/dev/null", "-w", "%{http_code} %{size_header} %{size_download} [%header{content-encoding}]\\n",
                f"https://127.0.0.1:{relay.port}{path}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=90).stdout
    finally:
        time.sleep(0.2)
        relay.close()
    Path(logfile).write_text(" ".join(cmd) + "\n" + out)
    resources = []
    for path, line in zip(paths, out.splitlines()):
        m = re.fullmatch(r"(\d+) (\d+) (\d+) \[(.*)\]", line.strip())
        if m:
            resources.append({"path": path, "status": int(m.group(1)), "header": int(m.group(2)),
                              "body": int(m.group(3)), "encoding": m.group(4) or "identity"})
    return {"resources": resources, "http": sum(r["header"] + r["body"] for r in resources),
            "bodies": sum(r["body"] for r in resources), "down": relay.down, "up": relay.up,
            "connections": relay.connections}


def ensure_peer_page_build(a, site):
    """The peer guest built with GZIP=on (nginx `gzip on`, level 6, text
    types, gzip_vary) and `site` as its document root, by the peer's own
    scripts; returns the QEMU command line its bench.sh recorded."""
    return ensure_peer_variant(a, site, "page-gzip", GZIP="on", SMALL="index.html", LARGE="index.html")


def ensure_peer_variant(a, site, label, **settings):
    """A boot-only peer guest built by the peer's own scripts with `settings`
    (bench.sh variables such as GZIP=on, H2=on) and `site` as its document
    root; returns the QEMU command line its bench.sh recorded."""
    out = a.peer_out / label
    digest = tree_digest([site, a.peer / "build.sh", a.peer / "init", a.peer / "nginx.conf.in",
                          a.peer / "bench.sh"]) + " " + " ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    stamp = out / "bench-inputs.sha256"
    cmdline = a.peer_out / "build-run" / f"qemu-cmdline-build-{label}.txt"
    if stamp.exists() and stamp.read_text().strip() == digest and (out / "initrd.img").exists() \
            and cmdline.exists():
        return cmdline
    log(f"building the peer guest ({settings}, {site}) in {out} with {a.peer}/bench.sh (BOOT_ONLY=1) ...")
    out.mkdir(parents=True, exist_ok=True)
    first = a.peer_out / "resume"
    for d in ("kernel", "dl", "tls"):
        if (first / d).exists() and not (out / d).exists():
            shutil.copytree(first / d, out / d, copy_function=os.link)
    # bench.sh wants its wrk files to exist even when it only boots.
    env = peer_env(a, Settings(a), out, a.peer_out / "build-run", f"build-{label}", free_port(),
                   BOOT_ONLY="1", **settings)
    del env["NOBUILD"]
    text = run_peer_script(a, env, site, 1800, a.peer_out / f"build-{label}.txt")
    if not (out / "initrd.img").exists() or "boot_ms=" not in text or not cmdline.exists():
        raise SystemExit(f"peer build failed; see {a.peer_out / f'build-{label}.txt'}")
    stamp.write_text(digest + "\n")
    return cmdline


def peer_page_load(a, cmdline, paths, rundir):
    """Boots the peer's GZIP=on guest, loads the page once, stops it."""
    return with_peer_guest(a, cmdline, rundir, "page-nginx",
                           lambda port: page_load(port, paths, rundir / "page-nginx.txt"))


def with_peer_guest(a, cmdline, rundir, label, work):
    """Boots a peer guest with the QEMU command line its bench.sh used
    (another free port, our serial log), returns `work(port)` once it
    answers (None if it never does), and stops it (by its process group,
    which we started)."""
    port = free_port()
    cmd = shlex.split(cmdline.read_text())
    cmd = [re.sub(r"hostfwd=tcp:127\.0\.0\.1:\d+-", f"hostfwd=tcp:127.0.0.1:{port}-", x) for x in cmd]
    cmd = [f"file:{rundir / f'serial-{label}.log'}" if x.startswith("file:") else x for x in cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(rundir / f"qemu-stderr-{label}.log", "w"), start_new_session=True)
    try:
        t0 = time.monotonic()
        while curl_code(f"https://127.0.0.1:{port}/", 0.5) != "200":
            if proc.poll() is not None or time.monotonic() - t0 > a.boot_timeout:
                log(f"the peer's guest ({label}) did not answer; see serial-{label}.log")
                return None
            time.sleep(0.05)
        return work(port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run_page(a, tools, variant, rundir):
    """The page section: our server with and without compression, then the
    peer with GZIP=on, each loading `a.page_site` once."""
    site = Path(a.page_site).resolve()
    paths = page_paths(site)
    site_repo(site, "page")
    res = {"site": str(site), "paths": paths, "sizes": {}, "sides": {}}
    for path in paths:
        f = site / ("index.html" if path == "/" else path.lstrip("/"))
        res["sizes"][path] = f.stat().st_size if f.exists() else None
    for name, extra in (("unipi-rs", ""), ("unipi-rs --compression=off", "--compression=off")):
        params = f"--ipv4={GUEST_IP}/24 --remote=git://{GIT_ADDR}/page.git {extra}".strip()
        system = make_system(tools, variant, f"{variant.name}-page-{'off' if extra else 'on'}", params, a.ram)
        g = Guest(system, a, free_port(), OUT / "git", rundir, slug(f"page-{name}"))
        try:
            if g.boot("/") is None:
                continue
            if extra:
                g.wait_for(SERVING_RX, 10)
            else:
                res["compression"] = compression_figures(g, 120)
            res["sides"][name] = page_load(g.port, paths, rundir / f"page-{slug(name)}.txt")
        finally:
            g.stop()
    if a.peer:
        cmdline = ensure_peer_page_build(a, site)
        r = peer_page_load(a, cmdline, paths, rundir)
        if r:
            res["sides"]["nginx GZIP=on"] = r
    return res


# ----------------------------------------------------------------- HTTP/2

H2_RX = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s.*?requests: (\d+) total, \d+ started, (\d+) done, "
                   r"(\d+) succeeded, (\d+) failed", re.S)


def h2load(port, path, n, logfile):
    """h2load over HTTP/2 (ALPN h2): `n` requests (count-bounded, and a
    time limit), 4 connections, 10 streams each; req/s and failures."""
    cmd = ["h2load", "-n", str(n), "-c", "4", "-m", "10", "-t", "1", f"https://127.0.0.1:{port}{path}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        out += "\n[timed out after 180 s]"
    Path(logfile).write_text(" ".join(cmd) + "\n" + out)
    m = H2_RX.search(out)
    if not m or "h2" not in out:
        return None
    return {"rps": float(m.group(1)), "done": int(m.group(3)), "ok": int(m.group(4)), "failed": int(m.group(5))}


def run_h2(a, systems, htdocs, rundir):
    """1 KiB over HTTP/2: our server and the peer built with H2=on, each
    booted per run, alternated; h2load -n H2_REQUESTS -c 4 -m 10."""
    res = {"ours": [], "peer": [], "n": a.h2_requests}
    cmdline = ensure_peer_variant(a, htdocs, "h2", H2="on") if a.peer else None
    for i in range(a.runs):
        g = Guest(systems["resume"], a, free_port(), OUT / "git", rundir, f"h2-r{i + 1}")
        try:
            if g.boot() is not None:
                res["ours"].append(h2load(g.port, "/1k.bin", a.h2_requests, rundir / f"h2-ours-r{i + 1}.txt"))
        finally:
            g.stop()
        if cmdline:
            res["peer"].append(with_peer_guest(
                a, cmdline, rundir, f"h2-nginx-r{i + 1}",
                lambda port: h2load(port, "/1k.bin", a.h2_requests, rundir / f"h2-nginx-r{i + 1}.txt")))
    return res


def report_h2(h2):
    lines = ["---\n", "## HTTP/2: 1 KiB requests\n",
             f"`h2load -n {h2['n']} -c 4 -m 10` (4 connections, 10 concurrent streams each, count-bounded) on "
             "`/1k.bin`; our server as built (ALPN h2, the default) against the peer built with `H2=on` "
             "(nginx `listen … ssl http2`), each booted fresh per run, alternated; median (min–max).\n",
             "| figure | unipi-rs | nginx H2=on | ratio unipi/nginx |", "|---|---:|---:|---:|"]
    ov = [r["rps"] for r in h2["ours"] if r]
    pv = [r["rps"] for r in h2["peer"] if r]
    mo, mp = median(ov), median(pv)
    ratio = f"{mo / mp:.2f}×" if mo and mp else "—"
    lines.append(f"| 1 KiB over HTTP/2 (req/s) | {cell(ov)} | {cell(pv)} | {ratio} |")
    fo = sum(r["failed"] for r in h2["ours"] if r)
    fp = sum(r["failed"] for r in h2["peer"] if r)
    lines.append(f"\nFailed requests over all runs: unipi-rs {fo}, nginx {fp}.\n")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------- report


def fmt(x, unit="", digits=None):
    if x is None:
        return "—"
    if digits is None:
        digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
    return f"{x:,.{digits}f}{unit}"


# (key, label, unit, getter, better) — better: "higher" or "lower"
def figures():
    def w(test, field, scale=1.0):
        return lambda r: (r.get(test) or {}).get(field) * scale if (r.get(test) or {}).get(field) is not None else None

    return [
        ("boot", "QEMU start → first HTTPS 200 (ms)", "", lambda r: r.get("boot_ms"), "lower"),
        ("ka_rps", "1 KiB keep-alive (req/s)", "", w("1k-keepalive", "rps"), "higher"),
        ("ka_p99", "1 KiB keep-alive p99 (ms)", "", w("1k-keepalive", "p99"), "lower"),
        ("close_rps", "1 KiB `Connection: close`, resumed TLS (req/s)", "", w("1k-conn-close", "rps"), "higher"),
        ("full_rps", "1 KiB `Connection: close`, full handshake (req/s)", "", w("1k-conn-close-full", "rps"),
         "higher"),
        ("mb_rate", "1 MiB keep-alive transfer (MiB/s)", "", w("1m-keepalive", "bps", 1 / 1024**2), "higher"),
        ("rss", "QEMU peak RSS (MiB)", "", lambda r: r["rss_kib"] / 1024 if r.get("rss_kib") else None, "lower"),
        ("heap", "subject heap high-water mark (KiB)", "",
         lambda r: r["heap_peak"] / 1024 if r.get("heap_peak") else None, "lower"),
    ]


def cell(vals):
    m = median(vals)
    lo, hi = spread(vals)
    if m is None:
        return "—"
    return f"{fmt(m)} ({fmt(lo)}–{fmt(hi)})"


def report(a, cfg, ours, peer, git, images, meta, page=None, cap=None):
    lines = []
    p = lines.append
    p(f"# unipi-rs benchmarks ({meta['date']})\n")
    p(f"- host: {meta['host']}; load average before {meta['load_before']}, after {meta['load_after']}")
    p(f"- QEMU: {meta['qemu']}; accel={a.accel}, machine={a.machine} (peer: -M pc, virtio-net-pci, SeaBIOS + "
      f"bzImage), 1 vCPU, -m {a.mem}, subject RAM {a.ram} MiB; user net restrict=on, hostfwd on 127.0.0.1")
    p(f"- wrk: -t{cfg.threads} -c{cfg.conns} -d{cfg.dur} --timeout {cfg.timeout} --latency; "
      f"{a.runs} run(s) per side, sides alternated back to back; median (min–max)")
    p(f"- tree: {meta['commit']}")
    for v in ours:
        p(f"- {v}: boot parameters `{meta['params'][v]}`")
    if not a.peer:
        p(f"- **peer not run** ({'--no-peer' if a.no_peer else a.peer_arg + ' missing'}): nginx columns are empty")
    p("")
    for v in ours:
        runs = ours[v]
        p(f"## {v} vs Linux + nginx (peer-nginx)\n")
        p("| figure | unipi-rs | nginx | ratio unipi/nginx | better |")
        p("|---|---:|---:|---:|---|")
        for key, label, unit, get, better in figures():
            ov = [get(r) for r in runs]
            pv = [get(r) for r in peer] if peer else []
            mo, mp = median(ov), median(pv)
            ratio = f"{mo / mp:.2f}×" if mo is not None and mp else "—"
            p(f"| {label} | {cell(ov)} | {cell(pv) if key != 'heap' else 'n/a'} | "
              f"{ratio if key != 'heap' else 'n/a'} | {better} |")
        errs = sum(((r.get(t) or {}).get("errors", 0) + (r.get(t) or {}).get("non2xx", 0))
                   for r in runs for t in ("1k-keepalive", "1m-keepalive", "1k-conn-close", "1k-conn-close-full"))
        perrs = sum(((r.get(t) or {}).get("errors", 0) + (r.get(t) or {}).get("non2xx", 0))
                    for r in peer for t in ("1k-keepalive", "1m-keepalive", "1k-conn-close", "1k-conn-close-full"))
        def kinds_of(rs):
            kinds = collections.Counter()
            for r in rs:
                for t in ("1k-keepalive", "1m-keepalive", "1k-conn-close", "1k-conn-close-full"):
                    w = r.get(t) or {}
                    for k in ("connect", "read", "write", "timeout"):
                        if w.get(f"err_{k}"):
                            kinds[f"{t} {k}"] += w[f"err_{k}"]
            return ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        kinds, pkinds = kinds_of(runs), kinds_of(peer)
        heap_fetch = [r["heap_after_fetch"] / 1024 for r in runs if r.get("heap_after_fetch")]
        drops = collections.Counter()
        for r in runs:
            drops.update(r.get("bridge") or {})
        p("\nFrames the minimal kernel's bridge dropped during the resumption boots (all runs): "
          + (", ".join(f"{k} {v}" for k, v in sorted(drops.items())) if drops else "none") + ".")
        p(f"\nwrk socket errors + non-2xx over all runs: unipi-rs {errs}"
          + (f" ({kinds})" if kinds else "") + f", nginx {perrs}" + (f" ({pkinds})" if pkinds else "")
          + ". A 1 MiB response that takes longer than wrk's 2 s timeout counts as a timeout (its bytes "
            "still count in the transfer rate); with 32 connections sharing a few MiB/s that is the usual "
            "case, the more so the more evenly the server interleaves the connections."
          + (f" Heap in use after the boot fetch: {cell(heap_fetch)} KiB." if heap_fetch else "") + "\n")
    p("## Image sizes\n")
    p("| image | bytes |")
    p("|---|---:|")
    for k, v in images.items():
        p(f"| {k} | {v:,} |")
    if "peer vmlinuz + initrd.img" in images and "unipi-rs system.elf (kernel + subject + certs)" in images:
        p(f"\nratio system.elf / (vmlinuz + initrd) = "
          f"{images['unipi-rs system.elf (kernel + subject + certs)'] / images['peer vmlinuz + initrd.img']:.3f}")
    p("")
    p("## Per-run figures\n")
    p("| side | run | boot ms | 1k ka req/s | p99 ms | 1k close req/s | 1k full req/s | 1m MiB/s | RSS MiB | heap KiB |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    get = {k: g for k, _, _, g, _ in figures()}
    sides = [(v, rs) for v, rs in ours.items()] + ([("nginx", peer)] if peer else [])
    for name, rs in sides:
        for i, r in enumerate(rs):
            p(f"| {name} | {i + 1} | " + " | ".join(fmt(get[k](r)) for k in
              ("boot", "ka_rps", "ka_p99", "close_rps", "full_rps", "mb_rate", "rss", "heap")) + " |")
    p("")
    p("## Host CPU per unit of work (diagnostic, unipi-rs only)\n")
    p("QEMU thread CPU time during each wrk run divided by its requests (1 MiB: by MiB): vCPU thread / "
      "the other threads (main loop with slirp). The vCPU figure is a cost only when the subject idles "
      "instead of busy-polling (otherwise it is simply the CPU share the thread got).\n")
    p("| variant | test | vCPU ms/unit | other ms/unit |")
    p("|---|---|---:|---:|")
    for v, runs in ours.items():
        for t in ("1k-keepalive", "1m-keepalive", "1k-conn-close", "1k-conn-close-full"):
            units = []
            for r in runs:
                w = r.get(t) or {}
                n = (w.get("bytes") or 0) / 1024**2 if t == "1m-keepalive" else w.get("requests")
                if n and w.get("cpu_vcpu") is not None:
                    units.append((w["cpu_vcpu"] * 1000 / n, w["cpu_rest"] * 1000 / n))
            if units:
                p(f"| {v} | {t} | {cell([u[0] for u in units])} | {cell([u[1] for u in units])} |")
    p("")
    if cap:
        p(capacity_report(a, cap))
    if git:
        p("---\n")
        p(f"## Git: a {git['files']}-file site fetched at boot (for the Git issue's closing note)\n")
        p(f"Repository: {git['repo']} ({git['site_bytes']:,} bytes in {git['files']} files; "
          f"pack {fmt(median(git['pack']))} bytes). The guest fetches it over git:// from `git daemon --inetd` "
          f"(scripts/git-inetd.sh via guestfwd cmd:); the host clones the same repository from the same "
          f"script over git's ext:: transport (`git clone --depth 1`). Same invocation, alternated, "
          f"{len(git['clone'])} run(s); median (min–max).\n")
        p("| figure | value |")
        p("|---|---:|")
        p(f"| guest: QEMU start → first 200 of the fetched site (ms) | {cell(git['boot'])} |")
        p(f"| guest: Git fetch + site build, from the subject's log (ms) | {cell(git['fetch'])} |")
        p(f"| host: `git clone --depth 1` (ms) | {cell(git['clone'])} |")
        mb, mf, mc = median(git["boot"]), median(git["fetch"]), median(git["clone"])
        if mf and mc:
            p(f"| ratio fetch / clone | {mf / mc:.1f}× |")
        if mb and mc:
            p(f"| ratio boot-to-serve / clone | {mb / mc:.1f}× |")
        pulls = [x for x in git.get("pull", []) if x]
        if pulls:
            p(f"| webhook pull after a one-page change: pack bytes | {cell([x[0] for x in pulls])} "
              f"({sum(x[1] for x in pulls)} of {len(pulls)} incremental) |")
            p(f"| … fetch + site build, from the subject's log (ms) | {cell([x[2] for x in pulls])} |")
            p(f"| … POST /hook → its answer (ms) | {cell([x[3] for x in pulls])} |")
            mp = median([x[0] for x in pulls])
            if mp and median(git["pack"]):
                p(f"| ratio pull pack / boot-fetch pack | {mp / median(git['pack']):.5f} |")
            if median(git["fetch"]):
                p(f"| ratio pull time / boot-fetch time | {median([x[2] for x in pulls]) / median(git['fetch']):.3f} |")
        p(f"| subject heap peak after the fetch (KiB) | {cell([x / 1024 for x in git['heap_peak']])} |")
        p(f"| heap in use while serving (KiB) | {cell([x / 1024 for x in git['heap_used']])} |")
        p(f"| site size (KiB) | {fmt(git['site_bytes'] / 1024)} |")
        hp = median(git["heap_peak"])
        if hp:
            p(f"| heap peak / site size | {hp / git['site_bytes']:.2f} |")
        bp, bu = median(git["base_peak"]), median(git["base_used"])
        if hp and bp:
            p(f"| same server with a 1-file site: heap peak / in use (KiB) | {fmt(bp / 1024)} / {fmt(bu / 1024)} |")
            p(f"| (heap peak − 1-file heap peak) / site size | {(hp - bp) / git['site_bytes']:.2f} |")
            p(f"| (heap in use − 1-file heap in use) / site size | "
              f"{(median(git['heap_used']) - bu) / git['site_bytes']:.2f} |")
        p(f"| QEMU peak RSS (MiB) | {cell([x / 1024 for x in git['rss'] if x])} |")
        comp = [c for c in git.get("compression", []) if c]
        if comp:
            k = lambda key: [c[key] for c in comp if c.get(key) is not None]
            p(f"| compression after the fetch, guest time while serving (ms) | {cell(k('ms'))} |")
            p(f"| … in slices of 8 KiB of work (event-loop iterations) | {cell(k('slices'))} |")
            c0 = comp[-1]
            p(f"| files with gzip / compressible candidates | {c0['files']} |")
            p(f"| their bytes: identity → gzip (KiB) | {fmt(c0['identity'] / 1024)} → {fmt(c0['gzip'] / 1024)} "
              f"({c0['gzip'] / max(c0['identity'], 1):.2f}) |")
            p(f"| heap taken by the gzip bytes (KiB) | {cell([x / 1024 for x in k('made_bytes')])} |")
            p(f"| heap in use before → after compression (KiB) | "
              f"{cell([x / 1024 for x in k('heap_used_before')])} → {cell([x / 1024 for x in k('heap_used')])} |")
            p(f"| heap peak before → after compression (KiB) | "
              f"{cell([x / 1024 for x in k('heap_peak_before')])} → {cell([x / 1024 for x in k('heap_peak')])} |")
            during = [x * 1000 for run in git.get("latency_during", []) for x in run]
            after = [x * 1000 for run in git.get("latency_after", []) for x in run]
            if during and after:
                q = lambda xs, f: sorted(xs)[min(len(xs) - 1, int(len(xs) * f))]
                p(f"| keep-alive GET of a page while compressing: n, median, p99, max (ms) | {len(during)}, "
                  f"{fmt(median(during))}, {fmt(q(during, 0.99))}, {fmt(max(during))} |")
                p(f"| the same after compression: n, median, p99, max (ms) | {len(after)}, {fmt(median(after))}, "
                  f"{fmt(q(after, 0.99))}, {fmt(max(after))} |")
        p("")
    if page:
        p("---\n")
        p(f"## Page load: bytes on the wire ({page['site']})\n")
        p(f"One load of {', '.join(f'`{x}`' for x in page['paths'])} by `curl --compressed` (`Accept-Encoding: "
          f"deflate, gzip, br, zstd`) over one keep-alive TLS connection, through a relay on 127.0.0.1 that "
          f"counts the bytes in each direction. HTTP bytes are header blocks plus bodies as curl counts them "
          f"(chunk framing, which nginx uses for gzip, not included); TLS bytes are everything on the "
          f"connection, handshake and record overhead included. nginx: the peer's `GZIP=on` build (`gzip on; "
          f"gzip_comp_level 6; gzip_min_length 256; gzip_vary on;` text types) with the same document root. "
          f"Bytes do not depend on load: one load each.\n")
        ng = page["sides"].get("nginx GZIP=on")
        p("| server | HTTP bytes | of which bodies | TLS bytes server → client | client → server | "
          "ratio to nginx (HTTP) | ratio to nginx (TLS s→c) |")
        p("|---|---:|---:|---:|---:|---:|---:|")
        for name, r in page["sides"].items():
            rh = f"{r['http'] / ng['http']:.2f}×" if ng and ng["http"] else "—"
            rt = f"{r['down'] / ng['down']:.2f}×" if ng and ng["down"] else "—"
            p(f"| {name} | {r['http']:,} | {r['bodies']:,} | {r['down']:,} | {r['up']:,} | {rh} | {rt} |")
        p("")
        names = list(page["sides"])
        p("| resource | file bytes | " + " | ".join(f"{n}: body (coding)" for n in names) + " |")
        p("|---|---:|" + "---:|" * len(names))
        for path in page["paths"]:
            cells = []
            for n in names:
                r = next((x for x in page["sides"][n]["resources"] if x["path"] == path), None)
                cells.append(f"{r['body']:,} ({r['encoding']})" if r else "—")
            size = page["sizes"].get(path)
            p(f"| `{path}` | {size:,} | " if size is not None else f"| `{path}` | — | ")
            lines[-1] += " | ".join(cells) + " |"
        c = page.get("compression")
        if c:
            p(f"\nCompression of this site after its fetch (subject log): gzip for {c['files']} files, "
              f"{c['identity']:,} → {c['gzip']:,} bytes, {c['made_bytes']:,} bytes of heap, {c['ms']:,} ms in "
              f"{c['slices']} slices; heap in use {c['heap_used_before']:,} → {c['heap_used']:,} bytes, "
              f"peak {c['heap_peak_before']:,} → {c['heap_peak']:,}.")
        p("")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------- main


def rerender(a):
    import json
    rundir = Path(a.rerender)
    data = json.loads((rundir / "results.json").read_text())
    meta, args = data["meta"], data["meta"].get("args") or {}
    for k, v in args.items():
        setattr(a, k, v)
    a.tests = a.tests.split() if isinstance(a.tests, str) else a.tests
    peer = []
    for f in sorted(rundir.glob("peer-r*-nginx-resume.txt"), key=lambda f: int(re.search(r"r(\d+)", f.name).group(1))):
        r = parse_peer(f.read_text())
        full = f.with_name(f.name.replace("-resume.txt", "-full.txt"))
        if full.exists():
            pf = parse_peer(full.read_text())
            r["1k-conn-close-full"] = pf.get("1k-conn-close")
            r["rss_full_kib"] = pf.get("rss_kib")
        peer.append(r)
    a.peer = Path(a.peer) if peer else None
    a.peer_arg = str(a.peer)
    text = report(a, Settings(a), data["ours"], peer, data["git"], data["images"], meta, data.get("page"),
                  data.get("cap"))
    if data.get("h2"):
        text += report_h2(data["h2"])
    Path(a.out).write_text(text)
    print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dur", default="10s", help="wrk -d per run (bounded)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--wrk-timeout", default="2s")
    ap.add_argument("--tests", default="1k-keepalive 1m-keepalive 1k-conn-close 1k-conn-close-full",
                    help="1k-conn-close-full boots a second system with --tls-resumption=off")
    ap.add_argument("--accel", default="tcg", choices=["tcg", "kvm"])
    ap.add_argument("--machine", default="microvm", choices=["microvm", "pc"])
    ap.add_argument("--mem", default="256M")
    ap.add_argument("--ram", type=int, default=128, help="subject RAM (MiB)")
    ap.add_argument("--boot-timeout", type=int, default=180)
    ap.add_argument("--peer", default=str(ROOT.parent / "shared" / "bench" / "peer-nginx"))
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--git-files", type=int, default=1000, help="0: skip the Git section")
    ap.add_argument("--page-site", default=str(ROOT / "htdocs"),
                    help="document root for the page section (bytes on the wire of one page load, with and "
                         "without compression, vs nginx GZIP=on); empty: skip it")
    ap.add_argument("--h2-requests", type=int, default=4000,
                    help="requests per h2load run in the HTTP/2 section (needs h2load); 0: skip it")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=SUBJECT_ELF[,KERNEL_ELF[,EXTRA BOOT PARAMETERS]] (repeatable; default: "
                         "build/unipi.muen, build/muen-kernel.elf)")
    ap.add_argument("--bootparams", default="", help="extra boot parameters for every variant")
    ap.add_argument("--quiet-params", default="--access-log=off",
                    help="boot parameters of the second default variant, without the per-request access log "
                         "(nginx runs with access_log off); empty: no second variant")
    ap.add_argument("--minor-frame", type=int, default=1000,
                    help="minor frame in microseconds (the Makefile's MINOR_FRAME)")
    ap.add_argument("--yield-event", action="store_true",
                    help="give the subject a 'yield' event (action yield) in the system description")
    ap.add_argument("--cap-idle", type=int, default=10000, help="idle connections to open through QEMU (0: no "
                    "capacity section)")
    ap.add_argument("--cap-latency-at", type=int, default=5000, help="idle connections open for the second p99")
    ap.add_argument("--cap-latency-small", type=int, default=900,
                    help="idle connections open for a p99 both sides reach (nginx: worker_connections 1024)")
    ap.add_argument("--cap-burst", type=int, default=1000, help="connects at once")
    ap.add_argument("--cap-burst-seconds", type=int, default=30)
    ap.add_argument("--cap-seconds", type=int, default=150, help="bound on opening idle connections, per side")
    ap.add_argument("--cap-requests", type=int, default=300, help="keep-alive requests per p99")
    ap.add_argument("--cap-inprocess-idle", type=int, default=10000, help="idle connections in-process (0: skip)")
    ap.add_argument("--tools", default=str(ROOT / "target" / "release" / "muen-tools"))
    ap.add_argument("--out", default=str(BUILD / "bench.md"))
    ap.add_argument("--rerender", metavar="RUNDIR",
                    help="re-render the report of an earlier invocation (its results.json; the peer's "
                         "reports are parsed again) to --out, without running anything")
    a = ap.parse_args()
    if a.rerender:
        rerender(a)
        return
    a.tests = a.tests.split()
    global YIELD_EVENT, MINOR_FRAME_US
    YIELD_EVENT = a.yield_event
    MINOR_FRAME_US = a.minor_frame
    cfg = Settings(a)
    cfg.dur_s()

    for tool in ("qemu-system-x86_64", "wrk", "curl", "git"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing (Debian: qemu-system-x86 wrk curl git)")
    variants = []
    for v in a.variant:
        name, _, spec = v.partition("=")
        subj, _, rest = spec.partition(",")
        kern, _, params = rest.partition(",")
        variants.append(Variant(name, subj or BUILD / "unipi.muen", kern or BUILD / "muen-kernel.elf", params))
    if not variants:
        variants = [Variant("unipi-rs", BUILD / "unipi.muen", BUILD / "muen-kernel.elf")]
        if a.quiet_params:
            # nginx runs with access_log off; this is our closest setting.
            variants.append(Variant("unipi-rs quiet", BUILD / "unipi.muen", BUILD / "muen-kernel.elf",
                                    a.quiet_params))
    tools = Path(a.tools)
    for f in [tools, CERTS / "server.pem", CERTS / "server.key"] + [x for v in variants for x in (v.subject, v.kernel)]:
        if not Path(f).exists():
            raise SystemExit(f"{f} is missing: run 'make all' first")

    a.peer_arg = a.peer
    a.peer = None if a.no_peer else Path(a.peer)
    if a.peer and not (a.peer / "bench.sh").exists():
        log(f"peer NOT available: {a.peer} has no bench.sh; measuring unipi-rs only (no ratios)")
        a.peer = None
    a.peer_out = OUT / "peer"
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rundir = OUT / "runs" / stamp
    (rundir / "peer").mkdir(parents=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_before": " ".join(loadavg()),
            "host": f"{os.cpu_count()} CPUs",
            "qemu": subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                                   text=True).stdout.splitlines()[0]}
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        meta["commit"] = head + (" + uncommitted changes" if dirty else "")
    except OSError:
        meta["commit"] = "?"
    log(f"load average {meta['load_before']}; results in {rundir}")

    htdocs = ensure_htdocs(a)
    site_repo(htdocs, "site")
    if a.peer:
        ensure_peer_builds(a, htdocs)

    systems = {}
    for v in variants:
        common = f"--ipv4={GUEST_IP}/24 --remote=git://{GIT_ADDR}/site.git --status-interval=1 {a.bootparams} {v.params}"
        common = " ".join(common.split())
        systems[v.name] = {
            "capacity": make_system(tools, v, f"{v.name}-capacity",
                                    common + " --access-log=off --idle-timeout=600", a.ram),
            "resume": make_system(tools, v, f"{v.name}-resume", common, a.ram),
            "full": make_system(tools, v, f"{v.name}-full", common + " --tls-resumption=off", a.ram),
        }

    meta["params"] = {v.name: " ".join(f"--ipv4={GUEST_IP}/24 --remote=git://{GIT_ADDR}/site.git "
                                       f"--status-interval=1 {a.bootparams} {v.params}".split()) for v in variants}
    ours = {v.name: [] for v in variants}
    peer = []
    for i in range(a.runs):
        order = [("ours", v) for v in variants] + ([("peer", None)] if a.peer else [])
        if i % 2 == 1:
            order.reverse()
        for side, v in order:
            tag = slug(f"r{i + 1}-{v.name if v else 'nginx'}")
            log(f"run {i + 1}/{a.runs}: {v.name if v else 'nginx (peer)'} (load {' '.join(loadavg())})")
            if side == "ours":
                ours[v.name].append(run_ours(a, cfg, v, systems[v.name], htdocs, rundir, tag))
            else:
                peer.append(run_peer(a, cfg, htdocs, rundir, tag))

    cap = None
    if a.cap_idle > 0:
        cap = {}
        log(f"capacity: unipi-rs through QEMU (up to {a.cap_idle} idle connections, {a.cap_seconds} s)")
        cap["ours"] = run_capacity_ours(a, systems[variants[0].name], rundir)
        log(f"capacity: {cap['ours']}")
        if a.peer:
            log("capacity: nginx through QEMU")
            cap["peer"] = run_capacity_peer(a, rundir)
            log(f"capacity: {cap['peer']}")
        if a.cap_inprocess_idle > 0:
            log(f"capacity: in-process ({a.cap_inprocess_idle} idle connections)")
            cap["inprocess"] = run_capacity_inprocess(a, rundir)

    git = None
    if a.git_files > 0:
        log(f"Git: {a.git_files}-file site")
        site = make_site_1000(a.git_files)
        name = f"site{a.git_files}"
        repo = site_repo(site, name)
        v = variants[0]
        system = make_system(tools, v, f"{v.name}-git{a.git_files}",
                             f"--ipv4={GUEST_IP}/24 --remote=git://{GIT_ADDR}/{name}.git", a.ram)
        files = [f for f in site.rglob("*") if f.is_file()]
        tiny = OUT / "site-tiny"
        tiny.mkdir(exist_ok=True)
        (tiny / "index.html").write_text("<!doctype html><title>tiny</title>\n")
        site_repo(tiny, "tiny")
        base_system = make_system(tools, v, f"{v.name}-tiny", f"--ipv4={GUEST_IP}/24 --remote=git://{GIT_ADDR}/tiny.git",
                                  a.ram)
        git = {"files": len(files), "site_bytes": sum(f.stat().st_size for f in files),
               "repo": f"build/bench/git/{name}.git", "boot": [], "fetch": [], "clone": [], "pack": [],
               "heap_peak": [], "heap_used": [], "rss": [], "base_peak": [], "base_used": [],
               "compression": [], "latency_during": [], "latency_after": [], "pull": []}
        for i in range(a.runs):
            git["clone"].append(host_clone(f"{name}.git", OUT / "clone-tmp"))
            g = Guest(system, a, free_port(), OUT / "git", rundir, f"git{a.git_files}-r{i + 1}")
            try:
                boot = g.boot("/index.html")
                if boot is not None:
                    git["boot"].append(boot)
                    fetched = g.wait_for(FETCHED_RX, 10)
                    serving = g.wait_for(SERVING_RX, 10)
                    if fetched:
                        git["fetch"].append(int(fetched[-1][3]))
                        git["pack"].append(int(fetched[-1][2]))
                        if int(fetched[-1][0]) != git["files"]:
                            log(f"WARNING: guest reports {fetched[-1][0]} files, expected {git['files']}")
                    if serving:
                        git["heap_used"].append(int(serving[-1][1]))
                        git["heap_peak"].append(int(serving[-1][3]))
                    # Requests while the site is being compressed, then after.
                    during = []
                    while not re.search(COMPRESSED_RX, g.log()) and len(during) < 2000:
                        during += latency_probe(g.port, "/d00/f0000.html", 20)
                    git["latency_during"].append(during)
                    git["compression"].append(compression_figures(g, 300))
                    git["latency_after"].append(latency_probe(g.port, "/d00/f0000.html", 100))
                    # One page changes: the webhook's pull asks only for that.
                    old, new = one_file_change(repo, i + 1)
                    try:
                        git["pull"].append(hook_pull(g, new))
                    finally:
                        run(["git", "-C", str(repo), "update-ref", "HEAD", old])
                    git["rss"].append(g.rss_kib())
            finally:
                g.stop()
            # The same server with a one-file site: the heap that is not the site's.
            g = Guest(base_system, a, free_port(), OUT / "git", rundir, f"tiny-r{i + 1}")
            try:
                if g.boot("/index.html") is not None:
                    serving = g.wait_for(SERVING_RX, 10)
                    if serving:
                        git["base_used"].append(int(serving[-1][1]))
                        git["base_peak"].append(int(serving[-1][3]))
            finally:
                g.stop()

    page = None
    if a.page_site:
        log(f"page: one load of {a.page_site}/index.html and what it references")
        page = run_page(a, tools, variants[0], rundir)

    h2 = None
    if a.h2_requests and shutil.which("h2load"):
        log(f"HTTP/2: h2load -n {a.h2_requests} against both sides")
        h2 = run_h2(a, systems[variants[0].name], htdocs, rundir)
    elif a.h2_requests:
        log("h2load is missing (Debian: nghttp2-client): no HTTP/2 section")

    images = {
        "unipi-rs subject (unipi.muen, stripped)": variants[0].subject.stat().st_size,
        "unipi-rs minimal kernel (muen-kernel.elf, stripped)": variants[0].kernel.stat().st_size,
        "unipi-rs system.elf (kernel + subject + certs)":
            (OUT / "sys" / slug(f"{variants[0].name}-resume") / "system.elf").stat().st_size,
    }
    if a.peer:
        pv = a.peer_out / "resume"
        images["peer vmlinuz (Debian cloud kernel)"] = (pv / "vmlinuz").stat().st_size
        images["peer initrd.img (busybox + nginx + libs + modules + htdocs)"] = (pv / "initrd.img").stat().st_size
        images["peer vmlinuz + initrd.img"] = (pv / "vmlinuz").stat().st_size + (pv / "initrd.img").stat().st_size

    meta["load_after"] = " ".join(loadavg())
    meta["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()
                    if k in ("runs", "dur", "threads", "conns", "wrk_timeout", "tests", "accel", "machine", "mem",
                             "ram", "no_peer", "peer")}
    import json
    (rundir / "results.json").write_text(json.dumps({"ours": ours, "peer": peer, "git": git, "images": images,
                                                     "meta": meta, "page": page, "h2": h2, "cap": cap},
                                                    indent=1, default=str))
    text = report(a, cfg, ours, peer, git, images, meta, page, cap)
    if h2:
        text += report_h2(h2)
    Path(a.out).write_text(text)
    (rundir / "bench.md").write_text(text)
    print(text)
    log(f"wrote {a.out} (raw output in {rundir})")


if __name__ == "__main__":
    main()
