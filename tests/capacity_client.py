"""Capacity load from the host: many TLS connections at once through QEMU's
user network (hostfwd on 127.0.0.1 only), for bench/bench.py (the capacity
rows) and tests/test_capacity.py. Real TLS (Python's ssl, OpenSSL), real
HTTP/1.1 requests; every function is bounded in count and time.

- open_idle: keep-alive connections, each with one request answered, then
  left idle (what a browser leaves behind);
- burst: n connects at once (or paced to slirp's accept rate), each one
  request with `Connection: close`; counts the ones reset or refused;
- keepalive_latency: one busy client, sequential requests on one
  connection, latency percentiles;
- listen_backlog: the backlog of QEMU's listening hostfwd socket (ss).
"""

import errno
import re
import resource
import selectors
import socket
import ssl
import subprocess
import time

RESET_ERRNOS = {errno.ECONNRESET, errno.ECONNREFUSED, errno.EPIPE, errno.ECONNABORTED}


def raise_file_limit(want):
    """Raises RLIMIT_NOFILE towards `want` (bounded by the hard limit);
    returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, want), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def context():
    """A client context that resumes sessions (TLS 1.3 tickets) as browsers
    do; the certificate is not checked (both sides' test certificates)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def request(path, close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


def response_length(buf):
    """Length of the complete response at the start of buf, or None; raises
    ValueError on a non-200 status."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1").lower()
    if not head.startswith("http/1.1 200"):
        raise ValueError(head.split("\r\n")[0])
    m = re.search(r"^content-length:\s*(\d+)", head, re.M)
    if not m:
        raise ValueError("no content-length")
    n = end + 4 + int(m.group(1))
    return n if len(buf) >= n else None


class Conn:
    """One non-blocking TLS connection: connect, handshake, one request,
    read the response; then idle (keep-alive) or closed."""

    def __init__(self, port, ctx, path, close, session=None):
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.raw.setblocking(False)
        # wrap_socket detaches `raw`: the descriptor is what stays.
        self.fd = self.raw.fileno()
        self.port, self.ctx, self.path, self.close, self.session = port, ctx, path, close, session
        self.tls = None
        self.state = "connecting"
        self.buf = b""
        self.out = b""
        self.error = None
        self.t0 = time.monotonic()
        err = self.raw.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            self.fail(err)

    def fileno(self):
        return self.fd

    def fail(self, err):
        self.state = "reset" if err in RESET_ERRNOS or err == "eof" else "failed"
        self.error = err

    def events(self):
        if self.state == "connecting":
            return selectors.EVENT_WRITE
        if self.out:
            return selectors.EVENT_WRITE | selectors.EVENT_READ
        return selectors.EVENT_READ

    def step(self):
        """Advances as far as possible without blocking."""
        try:
            if self.state == "connecting":
                err = self.raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    return self.fail(err)
                self.tls = self.ctx.wrap_socket(self.raw, do_handshake_on_connect=False,
                                                session=self.session)
                self.state = "handshake"
            if self.state == "handshake":
                self.tls.do_handshake()
                self.state = "request"
                self.out = request(self.path, self.close)
            if self.out:
                n = self.tls.send(self.out)
                self.out = self.out[n:]
            if self.state == "request":
                while True:
                    chunk = self.tls.recv(65536)
                    if not chunk:
                        return self.fail("eof")
                    self.buf += chunk
                    n = response_length(self.buf)
                    if n is not None:
                        self.buf = self.buf[n:]
                        self.state = "served"
                        self.session = self.tls.session
                        return
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except ssl.SSLError as e:
            return self.fail("eof" if "EOF" in str(e) or "reset" in str(e).lower() else str(e))
        except OSError as e:
            return self.fail(e.errno)
        except ValueError as e:
            return self.fail(str(e))

    def drop(self):
        try:
            (self.tls or self.raw).close()
        except OSError:
            pass


def finished(c):
    return c.state in ("served", "reset", "failed")


def open_many(port, ctx, path, n, deadline, close, concurrency, waiting, session=None):
    """Opens n connections (one request each), at most `concurrency` at a
    time and at most `waiting` of them not yet answered by the server (TCP
    or TLS handshake pending), until `deadline`. Returns the connections
    (finished or not) and the session to resume next time.

    QEMU's hostfwd socket listens with a backlog of 1: the host queues at
    most two connections slirp has not accepted and drops further SYNs,
    which the client retries only after 1, 3, 7 ... s. `waiting=2` keeps
    every connect out of those retries (a connect is "waiting" until the
    server's first TLS flight arrives), so the guest gets them as fast as
    slirp accepts them; `waiting=n` is a burst of n connects at once."""
    sel = selectors.DefaultSelector()
    conns, live = [], {}
    while (len(conns) < n or live) and time.monotonic() < deadline:
        pending = sum(1 for c in live.values() if c.state in ("connecting", "handshake"))
        while len(conns) < n and len(live) < concurrency and pending < waiting:
            c = Conn(port, ctx, path, close, session)
            conns.append(c)
            pending += 1
            if not finished(c):
                sel.register(c.fd, c.events(), c)
                live[c.fd] = c
        for key, _ in sel.select(timeout=0.05):
            c = key.data
            c.step()
            if finished(c):
                sel.unregister(c.fd)
                live.pop(c.fd, None)
                if c.state == "served" and session is None:
                    session = c.session
            else:
                sel.modify(c.fd, c.events(), c)
    sel.close()
    return conns, session


def burst(port, n, timeout, path="/", waiting=None):
    """n connects, each one request with `Connection: close`: all at once
    (`waiting=None`), or `waiting` unanswered at a time (see open_many).
    Returns {served, reset, failed, unfinished, seconds}."""
    t0 = time.monotonic()
    conns, _ = open_many(port, context(), path, n, t0 + timeout, True, n, waiting or n)
    r = {"served": 0, "reset": 0, "failed": 0, "unfinished": n - len(conns)}
    for c in conns:
        r[c.state if c.state in r else "unfinished"] += 1
        c.drop()
    r["seconds"] = time.monotonic() - t0
    r["errors"] = sorted({str(c.error) for c in conns if c.error})[:5]
    return r


class Idle:
    """Keep-alive connections opened and left idle (close() drops them)."""

    def __init__(self, port, path="/"):
        self.port, self.path = port, path
        self.conns = []
        self.ctx = context()
        self.session = None
        self.seconds = 0.0

    def open(self, n, timeout, concurrency=64, waiting=2):
        """Opens up to n more connections within `timeout` seconds (see
        open_many); returns how many of them were served."""
        t0 = time.monotonic()
        conns, self.session = open_many(self.port, self.ctx, self.path, n, t0 + timeout, False, concurrency,
                                        waiting, self.session)
        got = 0
        for c in conns:
            if c.state == "served":
                got += 1
                self.conns.append(c)
            else:
                c.drop()
        self.seconds += time.monotonic() - t0
        return got

    def alive(self):
        """Connections the server has not closed: nothing to read on them
        (a close_notify, FIN or RST would be)."""
        n = 0
        for c in self.conns:
            s = socket.socket(fileno=c.fd)
            try:
                s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                n += 1
            except OSError:
                pass
            finally:
                s.detach()
        return n

    def close(self):
        for c in self.conns:
            c.drop()
        self.conns = []


def keepalive_latency(port, count, timeout, path="/1k.bin"):
    """One connection, `count` sequential requests (bounded by timeout);
    returns {requests, p50_ms, p99_ms, max_ms}."""
    ctx = context()
    deadline = time.monotonic() + timeout
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
    s.settimeout(10)
    lat = []
    buf = b""
    req = request(path)
    try:
        while len(lat) < count and time.monotonic() < deadline:
            t0 = time.monotonic()
            s.sendall(req)
            while True:
                n = response_length(buf)
                if n is not None:
                    buf = buf[n:]
                    break
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed by the server")
                buf += chunk
            lat.append((time.monotonic() - t0) * 1000)
    finally:
        s.close()
    lat.sort()
    if not lat:
        return {"requests": 0}
    return {"requests": len(lat), "p50_ms": lat[len(lat) // 2],
            "p99_ms": lat[min(len(lat) - 1, len(lat) * 99 // 100)], "max_ms": lat[-1]}


def listen_backlog(port):
    """The backlog of the socket listening on 127.0.0.1:port (ss's Send-Q
    of a listening socket), or None."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 3 and f[0] == "LISTEN":
            return int(f[2])
    return None


def rss_kib(pid):
    """VmRSS of a process (KiB)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None
