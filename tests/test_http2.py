"""HTTP/2 end to end: the system `make` builds, booted in QEMU, with real
HTTP/2 clients through hostfwd on 127.0.0.1 — curl --http2, nghttp,
h2load — and crafted frame sequences for the known HTTP/2 denial-of-
service classes (unipi-rs/h2/tests/h2attack.py, Python's h2/hpack/
hyperframe; zero-window stalls need a short stall timeout and are tested
against the crate on the host, unipi-rs/h2/tests/peers.rs). Every behaviour of the site must be the same as over
HTTP/1.1 (tests/test_https.py): the serving code is shared."""

import re
import subprocess
import unittest

import harness as h

HTDOCS = h.ROOT / "htdocs"
CA = h.ROOT / "certs" / "dev" / "ca.pem"
ATTACK = h.ROOT / "unipi-rs" / "h2" / "tests" / "h2attack.py"
ENHANCE_YOUR_CALM = 0xB
PROTOCOL_ERROR = 0x1


def run(cmd, timeout=60):
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


class Http2(h.QemuTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require(h.BUILD / "system.elf", h.BUILD / "site.git", CA)
        cls.port = h.free_port()
        net = h.netdev([(cls.port, 4433)], extra=[h.git_guestfwd()])
        cls.guest = h.start_guest(h.BUILD / "system.elf", net, r"^unipi\| serving [0-9a-f]{40};")

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"

    def curl(self, *args):
        return h.curl(self.url(args[-1]), "--http2", "--cacert", str(CA), *args[:-1], check=False)

    def head(self, path, *args):
        """(status, headers) of an HTTP/2 response, from curl -i."""
        r = self.curl("-s", "-i", *args, path)
        text = r.stdout.split(b"\r\n\r\n", 1)[0].decode()
        lines = text.split("\r\n")
        self.assertTrue(lines[0].startswith("HTTP/2 "), lines[0])
        status = int(lines[0].split()[1])
        headers = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
        return status, headers, r.stdout.split(b"\r\n\r\n", 1)[1]

    def test_every_file_is_byte_identical_over_one_connection(self):
        files = sorted(p for p in HTDOCS.rglob("*") if p.is_file())
        args = []
        for i, f in enumerate(files):
            args += ["-o", str(h.BUILD / "tests" / f"h2-{i}"), self.url("/" + f.relative_to(HTDOCS).as_posix())]
        (h.BUILD / "tests").mkdir(parents=True, exist_ok=True)
        r = run(["curl", "-s", "-S", "--http2", "--cacert", str(CA), "-w", "%{http_version} %{num_connects}\n",
                 *args])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().split()
        self.assertEqual(set(lines[0::2]), {"2"}, "every response over HTTP/2")
        self.assertEqual(sum(int(n) for n in lines[1::2]), 1, "all over one connection")
        for i, f in enumerate(files):
            with self.subTest(path=f.name):
                self.assertEqual((h.BUILD / "tests" / f"h2-{i}").read_bytes(), f.read_bytes())

    def test_same_behaviour_as_http1(self):
        status, hd, body = self.head("/")
        self.assertEqual((status, body), (200, (HTDOCS / "index.html").read_bytes()))
        self.assertEqual(hd["content-type"], "text/html; charset=utf-8")
        self.assertEqual(hd["x-content-type-options"], "nosniff")
        etag = hd["etag"]
        self.assertEqual(self.head("/articles?x=1")[:2][0], 301)
        self.assertEqual(self.head("/articles?x=1")[1]["location"], "/articles/?x=1")
        self.assertEqual(self.head("/", "-H", f"If-None-Match: {etag}")[0], 304)
        status, hd, body = self.head("/css/site.css", "-r", "2-5")
        self.assertEqual((status, hd["content-range"].split("/")[0], body), (206, "bytes 2-5",
                                                                          (HTDOCS / "css/site.css").read_bytes()[2:6]))
        status, _, body = self.head("/no/such/page")
        self.assertEqual((status, body), (404, (HTDOCS / "404.html").read_bytes()))
        status, hd, _ = self.head("/", "-X", "DELETE")
        self.assertEqual((status, hd["allow"]), (405, "GET, HEAD, OPTIONS"))
        r = self.curl("-s", "-I", "/css/site.css")
        self.assertTrue(r.stdout.startswith(b"HTTP/2 200"), r.stdout[:40])
        self.assertIn(b"content-length: ", r.stdout)
        status, _, body = self.head("/hook", "-X", "POST", "--data", "{}")
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b"pulled"), body)

    def test_nghttp_framing_and_small_windows(self):
        r = run(["nghttp", "-nv", self.url("/"), self.url("/css/site.css"), self.url("/img/path.png")])
        text = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, text[-2000:])
        self.assertEqual(text.count(":status: 200"), 3, text[-2000:])
        self.assertNotIn("recv GOAWAY", text)
        self.assertNotIn("recv RST_STREAM", text)
        # A 1 KiB window: the server sends in step with WINDOW_UPDATEs.
        r = run(["nghttp", "-w", "10", "-W", "16", self.url("/img/path.png")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, (HTDOCS / "img/path.png").read_bytes())

    def test_h2load(self):
        r = run(["h2load", "-n", "2000", "-c", "4", "-m", "10", self.url("/")], timeout=120)
        text = r.stdout.decode()
        self.assertIn("2000 succeeded, 0 failed", text, text)
        self.assertIn("status codes: 2000 2xx", text, text)

    def attack(self, case):
        r = run(["python3", str(ATTACK), case, str(self.port)], timeout=60)
        text = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, text + r.stderr.decode(errors="replace"))
        m = re.search(r"^GOAWAY code=(\d+)", text, re.M)
        return (int(m.group(1)) if m else None), text

    def test_denial_of_service_classes_end_with_goaway_and_the_server_keeps_serving(self):
        for case, code in [("rapid_reset", ENHANCE_YOUR_CALM), ("continuation_flood", ENHANCE_YOUR_CALM),
                           ("hpack_bomb", ENHANCE_YOUR_CALM), ("settings_flood", ENHANCE_YOUR_CALM),
                           ("ping_flood", ENHANCE_YOUR_CALM), ("empty_data_flood", ENHANCE_YOUR_CALM),
                           ("bad_preface", PROTOCOL_ERROR), ("even_stream", PROTOCOL_ERROR)]:
            with self.subTest(case=case):
                got, text = self.attack(case)
                self.assertEqual(got, code, text[-1500:])
                self.assertEqual(self.curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "/").stdout, b"200")


if __name__ == "__main__":
    unittest.main()
