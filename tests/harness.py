"""Shared helpers for the end-to-end tests: build small systems with the real
tools, boot them in QEMU (TCG by default) and talk to them through QEMU's
restricted user network (hostfwd on 127.0.0.1 only).

Run from the repository root after `make all subjects` (what `make test-e2e`
does):  python3 -m unittest discover -s tests -p 'test_*.py' -v
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
TOOLS = ROOT / "target" / "release" / "muen-tools"
KERNEL = BUILD / "muen-kernel.elf"
SUBJECTS = BUILD / "subjects"
ACCEL = os.environ.get("ACCEL", "tcg")

# QEMU exit statuses (docs/kernel.md, "Ending").
EXIT_ALL_EXITED = 33
EXIT_KERNEL_FAILED = 35
EXIT_HALTED = 37
EXIT_FAULTED = 39


def require(*paths):
    """Fails (not skips) with a clear message when a build product is missing."""
    for p in paths:
        if not Path(p).exists():
            raise AssertionError(f"{p} is missing: run 'make all subjects' first")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_system(name, subjects, minor_frame_us=1000, debug_exit=True):
    """Builds build/tests/<name>/system.elf from subject descriptions:
    dicts with keys name, elf, and optionally bootparams, ram (MiB),
    nets (list), memory ({logical: file}), events ([(id, logical, action)]).
    Returns the path of system.elf."""
    require(TOOLS, KERNEL)
    out = BUILD / "tests" / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    lines = [f'<system minorFrameMicros="{minor_frame_us}" debugExit="{str(debug_exit).lower()}">']
    for s in subjects:
        elf = out / f"{s['name']}.elf"
        shutil.copyfile(s["elf"], elf)
        cmd = [str(TOOLS), "cspec", "--elf", str(elf), "--name", s["name"],
               "--ram", str(s.get("ram", 16)), "-o", str(out / f"{s['name']}.cspec.xml")]
        for n in s.get("nets", []):
            cmd += ["--net", n]
        for logical, f in s.get("memory", {}).items():
            cmd += ["--memory", f"{logical}:{f}"]
        subprocess.run(cmd, check=True)
        lines.append(f' <subject name="{s["name"]}" cspec="{s["name"]}.cspec.xml">')
        if s.get("bootparams"):
            lines.append(f'  <bootparams>{s["bootparams"]}</bootparams>')
        for logical, f in s.get("memory", {}).items():
            lines.append(f'  <memory logical="{logical}" file="{Path(f).resolve()}"/>')
        for ev in s.get("events", []):
            lines.append(f'  <event id="{ev[0]}" logical="{ev[1]}" action="{ev[2]}"/>')
        lines.append(" </subject>")
    lines.append("</system>")
    (out / "system.xml").write_text("\n".join(lines) + "\n")
    subprocess.run([str(TOOLS), "pack", "--kernel", str(KERNEL), "--system", str(out / "system.xml"),
                    "-o", str(out / "system.elf")], check=True)
    return out / "system.elf"


GIT_ADDR = "192.168.254.2"


def git_guestfwd(base=BUILD):
    """The guestfwd option that lets the guest reach `git daemon --inetd`
    serving the repositories below `base` at git://192.168.254.2/ (a command,
    started per connection; the netdev itself is restricted, see netdev)."""
    return f"guestfwd=tcp:{GIT_ADDR}:9418-cmd:{ROOT}/scripts/git-inetd.sh {base}"


def netdev(forwards, guest_ip="192.168.254.10", extra=()):
    """A restricted user netdev: forwards is a list of (host_port, guest_port)."""
    opts = ["user", "id=n0", "restrict=on", "net=192.168.254.0/24", "host=192.168.254.1"]
    opts += [f"hostfwd=tcp:127.0.0.1:{h}-{guest_ip}:{g}" for h, g in forwards]
    opts += list(extra)
    return ",".join(opts)


class Guest:
    """One QEMU process running a system image; use as a context manager."""

    def __init__(self, system, machine="microvm", mem="256M", net=None, timeout=120, extra_args=()):
        self.system = Path(system)
        self.machine = machine
        self.mem = mem
        self.net = net
        self.timeout = timeout
        self.extra_args = list(extra_args)
        self.dir = Path(tempfile.mkdtemp(prefix="unipi-guest-"))
        self.serial = self.dir / "serial.log"
        self.proc = None
        self.t0 = None

    def command(self):
        accel = ["-accel", "kvm", "-cpu", "host"] if ACCEL == "kvm" else ["-accel", "tcg", "-cpu", "max"]
        if self.machine == "pc":
            machine, nic = ["-M", "pc"], "virtio-net-pci"
        else:
            machine, nic = ["-M", "microvm,rtc=on"], "virtio-net-device"
        cmd = ["qemu-system-x86_64", *machine, *accel, "-m", self.mem, "-smp", "1",
               "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
               "-serial", f"file:{self.serial}",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
        if self.net:
            cmd += ["-netdev", self.net, "-device", f"{nic},netdev=n0"]
        if self.system.suffix == ".iso":
            cmd += ["-cdrom", str(self.system)]
        else:
            cmd += ["-kernel", str(self.system)]
        return cmd + self.extra_args

    def start(self):
        require(self.system)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        try:
            return self.serial.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, pattern, timeout=None):
        """Waits until `pattern` (a regex) appears in the serial log; returns the match."""
        deadline = time.monotonic() + (timeout or self.timeout)
        rx = re.compile(pattern, re.M)
        while time.monotonic() < deadline:
            m = rx.search(self.log())
            if m:
                return m
            if self.proc.poll() is not None:
                m = rx.search(self.log())
                if m:
                    return m
                raise AssertionError(f"QEMU exited ({self.proc.returncode}) before /{pattern}/ appeared:\n{self.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"/{pattern}/ did not appear within {timeout or self.timeout}s:\n{self.tail()}")

    def wait_exit(self, timeout=None):
        """Waits for QEMU to exit by itself; returns its exit status."""
        try:
            return self.proc.wait(timeout or self.timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"QEMU did not exit within {timeout or self.timeout}s:\n{self.tail()}")

    def tail(self, n=60):
        lines = self.log().splitlines()
        out = self.proc.stdout.read1().decode(errors="replace") if self.proc and self.proc.poll() is not None else ""
        return "\n".join(lines[-n:]) + (f"\n[qemu output] {out}" if out else "")

    def stop(self):
        stop_process(self.proc)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def elapsed(self):
        return time.monotonic() - self.t0


def report(topic, msg):
    """A measured figure, printed beside the test's result (stderr)."""
    print(f"{topic}: {msg}", file=sys.stderr, flush=True)


def stop_process(proc, grace=10):
    """Stops a process we started, by its pid: SIGTERM, then SIGKILL after
    `grace` seconds; reaps it. None or an exited process is fine."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def curl(url, *args, timeout=20, check=True):
    """Runs curl (the real client) and returns the CompletedProcess (bytes)."""
    cmd = ["curl", "--silent", "--show-error", "--max-time", str(timeout), *args, url]
    return subprocess.run(cmd, capture_output=True, check=check)


CA = ROOT / "certs" / "dev" / "ca.pem"


def https_request(port, path, *args, ca=CA):
    """GET (or whatever *args say) https://127.0.0.1:port/path with curl,
    verifying against `ca`; returns (status, {lower-case header: value}, body)."""
    r = curl(f"https://127.0.0.1:{port}{path}", "--cacert", str(ca), "-i", *args, check=False)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    if not lines[0].startswith("HTTP/"):
        raise AssertionError(f"no HTTP response for {path}: {r.stderr.decode(errors='replace')}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def start_guest(system, net, ready, timeout=90, **kw):
    """Starts a Guest for a whole test class and waits for the `ready`
    pattern; stops it again if that fails, so setUpClass never leaks QEMU."""
    g = Guest(system, net=net, timeout=timeout, **kw).start()
    try:
        g.wait_for(ready)
    except BaseException:
        g.stop()
        raise
    return g


def wait_https(port, path="/", timeout=120, insecure=True):
    """Polls https://127.0.0.1:port/path until it answers; returns seconds waited."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        args = ["-k"] if insecure else []
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", *args,
                            f"https://127.0.0.1:{port}{path}"], capture_output=True)
        if r.returncode == 0 and r.stdout.strip() not in (b"", b"000"):
            return time.monotonic() - t0
        time.sleep(0.2)
    raise AssertionError(f"no HTTPS answer on 127.0.0.1:{port} within {timeout}s")


class QemuTestCase(unittest.TestCase):
    """Base class: checks QEMU and the build products once."""

    @classmethod
    def setUpClass(cls):
        if shutil.which("qemu-system-x86_64") is None:
            raise AssertionError("qemu-system-x86_64 is missing: run 'make deps'")
        require(TOOLS, KERNEL)
