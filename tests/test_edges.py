"""Edge cases of TLS and HTTP/1.1, end to end (QEMU, 127.0.0.1 only):

* crafted ClientHellos and records, written byte by byte here: large
  ClientHellos (16, 37 and 64 KiB, in full and in 1000-byte records) get
  a ServerHello, broken ones the alert RFC 8446 asks for, each within a
  second (docs/tls.md lists what comes from rustls itself);
* HTTP/1.1 per RFC 9112/9110: bare LF, HTTP/1.x minor versions, unknown
  and unsupported methods, OPTIONS *, transfer codings;
* large input handled at once: a 16 KiB header block and a 500 KB POST are
  answered in well under a second (not at the next idle tick).
"""

import os
import socket
import ssl
import struct
import time
import unittest

import harness as h

CA = h.ROOT / "certs" / "dev" / "ca.pem"
HANDSHAKE, ALERT, CCS = 22, 21, 20
UNEXPECTED_MESSAGE, DECODE_ERROR = 10, 50


def ext(t, body):
    return struct.pack(">HH", t, len(body)) + body


def client_hello(pad=0, sigalgs=(0x0403, 0x0804, 0x0401)):
    """A TLS 1.3 ClientHello (X25519 key share) with `pad` bytes of padding."""
    exts = ext(43, b"\x02\x03\x04") + ext(10, b"\x00\x02\x00\x1d")
    ks = struct.pack(">HH", 0x001d, 32) + os.urandom(32)
    exts += ext(51, struct.pack(">H", len(ks)) + ks)
    exts += ext(13, struct.pack(">H", 2 * len(sigalgs)) + b"".join(struct.pack(">H", a) for a in sigalgs))
    if pad:
        exts += ext(21, b"\0" * pad)
    body = (b"\x03\x03" + os.urandom(32) + b"\x20" + os.urandom(32) + b"\x00\x06\x13\x01\x13\x02\x13\x03"
            + b"\x01\x00" + struct.pack(">H", len(exts)) + exts)
    return handshake(1, body)


def handshake(kind, body):
    return bytes([kind]) + struct.pack(">I", len(body))[1:] + body


def records(msg, kind=HANDSHAKE, size=16384):
    return b"".join(bytes([kind]) + b"\x03\x01" + struct.pack(">H", len(msg[i:i + size])) + msg[i:i + size]
                    for i in range(0, len(msg), size))


def sized_hello(size):
    return client_hello(pad=size - len(client_hello()) - 4)


# An answer, not a timeout: the handshake and header timeouts are 10 s, and
# a loaded TCG guest can take a second for a 64 KiB handshake.
ANSWER_WITHIN = 3.0

class Edges(h.QemuTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require(h.BUILD / "system.elf", h.BUILD / "site.git", CA)
        cls.port, cls.hport = h.free_port(), h.free_port()
        net = h.netdev([(cls.port, 4433), (cls.hport, 80)], extra=[h.git_guestfwd()])
        cls.guest = h.start_guest(h.BUILD / "system.elf", net, r"^unipi\| serving [0-9a-f]{40};")

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()

    def tls_answer(self, data):
        """Sends raw bytes to the TLS port; returns (first record type,
        alert description or None, seconds until the answer)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            t0 = time.monotonic()
            s.sendall(data)
            head = b""
            while len(head) < 7:
                chunk = s.recv(7 - len(head))
                if not chunk:
                    break
                head += chunk
            dt = time.monotonic() - t0
        if not head:
            return None, None, dt
        alert = head[6] if head[0] == ALERT and len(head) == 7 else None
        return head[0], alert, dt

    def test_large_client_hellos_get_a_server_hello(self):
        for size in (16 * 1024, 37 * 1024, 0xffff):
            for record in (16384, 1000):
                with self.subTest(size=size, record=record):
                    kind, _, dt = self.tls_answer(records(sized_hello(size), size=record))
                    self.assertEqual(kind, HANDSHAKE)
                    self.assertLess(dt, ANSWER_WITHIN)

    def test_broken_client_hellos_get_the_alert(self):
        ch = client_hello(pad=3000)
        too_large = handshake(1, b"\0" * 70000)
        cases = [
            ("handshake message over 64 KiB", records(too_large), DECODE_ERROR),
            ("CCS inside a fragmented ClientHello",
             records(ch[:1000]) + records(b"\x01", CCS) + records(ch[1000:]), UNEXPECTED_MESSAGE),
            ("alert inside a fragmented ClientHello",
             records(ch[:1000]) + records(b"\x02\x28", ALERT) + records(ch[1000:]), UNEXPECTED_MESSAGE),
            ("zero-length handshake record", b"\x16\x03\x01\x00\x00" + records(ch), DECODE_ERROR),
            ("truncated ClientHello", records(handshake(1, ch[4:-10])), DECODE_ERROR),
        ]
        for name, data, alert in cases:
            with self.subTest(case=name):
                kind, got, dt = self.tls_answer(data)
                self.assertEqual((kind, got), (ALERT, alert))
                self.assertLess(dt, ANSWER_WITHIN)

    def raw(self, port, data, secure):
        """Sends a request, returns (first line, seconds)."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        s = ssl.create_default_context(cafile=str(CA)).wrap_socket(raw, server_hostname="localhost") \
            if secure else raw
        with s:
            t0 = time.monotonic()
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered (and closed) before all was sent
            buf = b""
            try:
                while b"\r\n" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
            except (ConnectionResetError, ssl.SSLError):
                pass
            return buf.split(b"\r\n", 1)[0], time.monotonic() - t0

    def test_http1_edge_cases(self):
        cases = [
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\nContent-Length: 41\r\n\r\n", b"HTTP/1.1 400"),
            (b"GET / HTTP/1.1\nHost: x\n\n", b"HTTP/1.1 400"),
            (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", b"HTTP/1.1 200"),
            (b"GET / HTTP/1.9\r\nHost: x\r\n\r\n", b"HTTP/1.1 200"),
            (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", b"HTTP/1.1 505"),
            (b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 501"),
            (b"DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 405"),
            (b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", b"HTTP/1.1 405"),
            (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200"),
            (b"POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", b"HTTP/1.1 501"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", b"HTTP/1.1 400"),
        ]
        for secure, port in ((True, self.port), (False, self.hport)):
            for req, want in cases:
                if not secure and (want == b"HTTP/1.1 200" and req.startswith(b"GET")
                                   or req.startswith(b"DELETE")):
                    want = b"HTTP/1.1 301"  # the plain port redirects every method it knows
                with self.subTest(secure=secure, request=req[:40]):
                    line, dt = self.raw(port, req, secure)
                    self.assertTrue(line.startswith(want), line)
                    self.assertLess(dt, ANSWER_WITHIN)

    def test_large_input_is_answered_at_once(self):
        for name, req, want in [
            ("16 KB header", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 16000 + b"\r\n\r\n", b"HTTP/1.1 200"),
            ("500 KB POST", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n" + b"x" * 500000,
             b"HTTP/1.1 405"),
        ]:
            with self.subTest(case=name):
                line, dt = self.raw(self.port, req, True)
                self.assertTrue(line.startswith(want), line)
                self.assertLess(dt, 0.5, f"{name} answered after {dt:.2f} s")


if __name__ == "__main__":
    unittest.main()
