"""HTTPS end to end: the system `make` builds, booted in QEMU, fetched with
real clients (curl, openssl s_client, Python's ssl) through hostfwd on
127.0.0.1. The guest gets its site from build/site.git over git:// (the
default of `make`), which holds exactly the files of htdocs/."""

import re
import socket
import ssl
import subprocess
import unittest
import zlib

import harness as h

HTDOCS = h.ROOT / "htdocs"
CA = h.ROOT / "certs" / "dev" / "ca.pem"
# Extensions whose content types the server compresses (http/mime.rs).
COMPRESSIBLE = {".html", ".css", ".svg", ".js", ".json", ".txt", ".xml"}
# Logged when the compressed representations of a site are in place.
COMPRESSED = r"^unipi\| site: gzip for (\d+) files"


def gunzip(data):
    """Decodes one gzip member with Python's zlib (the member must end exactly)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = d.decompress(data) + d.flush()
    assert d.eof and not d.unused_data, "not exactly one gzip member"
    return out


class Https(h.QemuTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require(h.BUILD / "system.elf", h.BUILD / "site.git", CA)
        cls.port = h.free_port()
        cls.hport = h.free_port()
        net = h.netdev([(cls.port, 4433), (cls.hport, 80)], extra=[h.git_guestfwd()])
        cls.guest = h.start_guest(h.BUILD / "system.elf", net, r"^unipi\| serving [0-9a-f]{40};")

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"

    def get(self, path, *args):
        """curl with certificate verification against the development CA."""
        return h.curl(self.url(path), "--cacert", str(CA), *args)

    def head_and_body(self, path, *args):
        return h.https_request(self.port, path, *args)

    def test_every_file_is_byte_identical(self):
        files = sorted(p for p in HTDOCS.rglob("*") if p.is_file())
        self.assertGreater(len(files), 5)
        for f in files:
            rel = f.relative_to(HTDOCS).as_posix()
            with self.subTest(path=rel):
                self.assertEqual(self.get("/" + rel).stdout, f.read_bytes())

    def test_index_html_at_any_depth(self):
        self.assertEqual(self.get("/").stdout, (HTDOCS / "index.html").read_bytes())
        self.assertEqual(self.get("/articles/").stdout, (HTDOCS / "articles/index.html").read_bytes())
        status, headers, _ = self.head_and_body("/articles?x=1")
        self.assertEqual(status, 301)
        self.assertEqual(headers["location"], "/articles/?x=1")

    def test_content_types(self):
        for path, ctype in [("/", "text/html; charset=utf-8"), ("/css/site.css", "text/css; charset=utf-8"),
                            ("/img/path.png", "image/png"), ("/img/logo.svg", "image/svg+xml; charset=utf-8")]:
            with self.subTest(path=path):
                self.assertEqual(self.head_and_body(path)[1]["content-type"], ctype)

    def test_head(self):
        status, headers, body = self.head_and_body("/css/site.css", "-I")
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["content-length"]), (HTDOCS / "css/site.css").stat().st_size)
        self.assertEqual(body, b"")
        self.assertRegex(headers["date"], r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")

    def test_304_with_etag_and_date(self):
        status, headers, _ = self.head_and_body("/img/path.png")
        self.assertEqual(status, 200)
        etag = headers["etag"]
        # The strong ETag is the git blob id of the file.
        blob = subprocess.run(["git", "hash-object", str(HTDOCS / "img/path.png")], capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(etag, f'"{blob}"')
        status, headers, body = self.head_and_body("/img/path.png", "-H", f"If-None-Match: W/\"nope\", {etag}")
        self.assertEqual((status, body), (304, b""))
        self.assertEqual(headers["etag"], etag)
        status, _, _ = self.head_and_body("/img/path.png", "-H", f"If-Modified-Since: {headers['last-modified']}")
        self.assertEqual(status, 304)
        status, _, _ = self.head_and_body("/img/path.png", "-H", 'If-None-Match: "other"')
        self.assertEqual(status, 200)

    def test_range(self):
        data = (HTDOCS / "index.html").read_bytes()
        status, headers, body = self.head_and_body("/", "-H", "Range: bytes=10-19")
        self.assertEqual(status, 206)
        self.assertEqual(headers["content-range"], f"bytes 10-19/{len(data)}")
        self.assertEqual(body, data[10:20])
        status, headers, body = self.head_and_body("/", "-H", "Range: bytes=-5")
        self.assertEqual((status, body), (206, data[-5:]))
        status, headers, _ = self.head_and_body("/", "-H", f"Range: bytes={len(data) + 10}-")
        self.assertEqual(status, 416)
        self.assertEqual(headers["content-range"], f"bytes */{len(data)}")

    def test_404_uses_the_sites_page(self):
        status, _, body = self.head_and_body("/no/such/page.html")
        self.assertEqual(status, 404)
        self.assertEqual(body, (HTDOCS / "404.html").read_bytes())

    def test_405_with_allow(self):
        status, headers, _ = self.head_and_body("/", "-X", "POST", "-d", "x=1")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD, OPTIONS")
        status, _, _ = self.head_and_body("/", "-X", "DELETE")
        self.assertEqual(status, 405)

    def test_bad_paths_are_400(self):
        for target in ["/%2e%2e/etc/passwd", "/%zz", "/a%41"]:
            with self.subTest(target=target):
                status, _, _ = self.head_and_body(target, "--path-as-is")
                self.assertEqual(status, 400)

    def test_http_port_redirects_to_https(self):
        r = h.curl(f"http://127.0.0.1:{self.hport}/articles/?q=1", "-i", "-H", "Host: www.example.org:8080")
        head = r.stdout.decode()
        self.assertTrue(head.startswith("HTTP/1.1 301"), head)
        self.assertRegex(head, r"(?mi)^location: https://www\.example\.org:4433/articles/\?q=1\r$")
        # HTTP/1.0 without Host: nothing to redirect to.
        r = h.curl(f"http://127.0.0.1:{self.hport}/", "-i", "-0", "-H", "Host:")
        self.assertTrue(r.stdout.startswith(b"HTTP/1.1 400"), r.stdout[:100])

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        paths = ["/", "/css/site.css", "/img/path.png", "/about.html"]
        r = subprocess.run(["curl", "-s", "--cacert", str(CA), "-w", "%{num_connects} %{http_code}\\n",
                            *[x for p in paths for x in ("-o", "/dev/null", self.url(p))]],
                           capture_output=True, text=True, check=True)
        lines = r.stdout.split()
        self.assertEqual(lines, ["1", "200", "0", "200", "0", "200", "0", "200"], r.stdout)

    def test_pipelining_answers_in_order(self):
        ctx = ssl.create_default_context(cafile=str(CA))
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                req = b"".join(f"GET {p} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode() for p in ["/about.html", "/nope", "/"])
                s.sendall(req + b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        statuses = re.findall(rb"HTTP/1\.1 (\d{3})", data)
        self.assertEqual(statuses, [b"200", b"404", b"200", b"200"])

    def s_client(self, *args):
        return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.port}", "-servername", "localhost",
                               "-CAfile", str(CA), *args], input=b"Q\n", capture_output=True, timeout=30)

    def test_tls_13_and_12_negotiate_and_11_is_refused(self):
        r = self.s_client("-tls1_3", "-alpn", "http/1.1")
        out = r.stdout.decode()
        self.assertRegex(out, r"New, TLSv1\.3, Cipher is TLS_(AES_\d+_GCM_SHA\d+|CHACHA20_POLY1305_SHA256)")
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertIn("ALPN protocol: http/1.1", out)
        r = self.s_client("-tls1_2")
        out = r.stdout.decode()
        self.assertRegex(out, r"New, TLSv1\.2, Cipher is ECDHE-ECDSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)")
        # Let the client offer TLS 1.1 (OpenSSL 3 forbids it at its default
        # security level), so that the refusal is the server's.
        r = self.s_client("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
        out = (r.stdout + r.stderr).decode()
        self.assertNotEqual(r.returncode, 0, out)
        self.assertRegex(out, r"(?i)protocol version|alert|no protocols available|handshake failure", out)
        self.assertNotRegex(out, r"New, TLSv1(\.1)?,")

    def test_session_resumption(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version.name):
                ctx = ssl.create_default_context(cafile=str(CA))
                ctx.minimum_version = ctx.maximum_version = version
                session = None
                reused = []
                for _ in range(2):
                    with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
                        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                            s.sendall(b"GET /about.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                            while s.recv(65536):
                                pass
                            reused.append(s.session_reused)
                            session = s.session
                self.assertEqual(reused, [False, True])

    def wait_compressed(self):
        """The gzip representations of the fetched site are made after it is
        served (site/compress.rs): wait for the line that says they are in."""
        self.guest.wait_for(r"^unipi\| serving [0-9a-f]{40};[\s\S]*" + COMPRESSED[1:], timeout=120)

    def compressible_files(self):
        files = sorted(p for p in HTDOCS.rglob("*") if p.is_file() and p.suffix in COMPRESSIBLE)
        self.assertGreater(len(files), 5)
        return files

    def test_compressed_every_compressible_file(self):
        """curl --compressed (Accept-Encoding: deflate, gzip, br, zstd) gets gzip
        for every compressible file, decodes it to exactly the file, and the
        gzip bytes have their own strong ETag (their git blob id)."""
        self.wait_compressed()
        for f in self.compressible_files():
            rel = "/" + f.relative_to(HTDOCS).as_posix()
            with self.subTest(path=rel):
                status, headers, body = self.head_and_body(rel, "--compressed")
                self.assertEqual(status, 200)
                self.assertEqual(headers.get("content-encoding"), "gzip")
                self.assertEqual(headers.get("vary"), "Accept-Encoding")
                self.assertEqual(body, f.read_bytes())
                # The raw gzip bytes, without curl decoding them.
                status, raw_headers, raw = self.head_and_body(rel, "-H", "Accept-Encoding: gzip")
                self.assertEqual(raw_headers["etag"], headers["etag"])
                self.assertEqual(int(raw_headers["content-length"]), len(raw))
                self.assertLess(len(raw), len(f.read_bytes()) * 0.9)
                self.assertEqual(gunzip(raw), f.read_bytes())
                blob = subprocess.run(["git", "hash-object", "--stdin"], input=raw, capture_output=True,
                                      check=True).stdout.decode().strip()
                self.assertEqual(raw_headers["etag"], f'"{blob}"')
                # Without Accept-Encoding: the file itself, still with Vary.
                status, plain_headers, plain = self.head_and_body(rel)
                self.assertNotIn("content-encoding", plain_headers)
                self.assertEqual(plain_headers.get("vary"), "Accept-Encoding")
                self.assertEqual(plain, f.read_bytes())
        # Images that are already compressed are never negotiated.
        _, headers, body = self.head_and_body("/img/path.png", "--compressed")
        self.assertNotIn("content-encoding", headers)
        self.assertNotIn("vary", headers)
        self.assertEqual(body, (HTDOCS / "img/path.png").read_bytes())

    def test_identity_refused(self):
        """Accept-Encoding refusing identity and gzip: 406 for a negotiated file
        (RFC 9110 §12.5.3); a file that is not negotiated ignores the header."""
        self.wait_compressed()
        refuse = "Accept-Encoding: identity;q=0, gzip;q=0"
        status, headers, _ = self.head_and_body("/about.html", "-H", refuse)
        self.assertEqual(status, 406)
        self.assertEqual(headers.get("vary"), "Accept-Encoding")
        status, headers, body = self.head_and_body("/img/path.png", "-H", refuse)
        self.assertEqual((status, body), (200, (HTDOCS / "img/path.png").read_bytes()))
        # identity refused, gzip fine: gzip.
        status, headers, body = self.head_and_body("/about.html", "-H", "Accept-Encoding: identity;q=0, gzip")
        self.assertEqual((status, headers.get("content-encoding")), (200, "gzip"))
        self.assertEqual(gunzip(body), (HTDOCS / "about.html").read_bytes())

    def test_range_and_304_on_gzip(self):
        """Ranges and validators apply to the representation sent."""
        self.wait_compressed()
        _, headers, gz = self.head_and_body("/index.html", "-H", "Accept-Encoding: gzip")
        self.assertEqual(headers["content-encoding"], "gzip")
        status, rh, part = self.head_and_body("/index.html", "-H", "Accept-Encoding: gzip", "-H", "Range: bytes=10-29")
        self.assertEqual(status, 206)
        self.assertEqual(rh["content-encoding"], "gzip")
        self.assertEqual(rh["content-range"], f"bytes 10-29/{len(gz)}")
        self.assertEqual(rh["vary"], "Accept-Encoding")
        self.assertEqual(part, gz[10:30])
        # The pieces of a ranged download put together decode to the file.
        pieces = b"".join(self.head_and_body("/index.html", "-H", "Accept-Encoding: gzip", "-H",
                                             f"Range: bytes={a}-{a + 299}")[2] for a in range(0, len(gz), 300))
        self.assertEqual(gunzip(pieces), (HTDOCS / "index.html").read_bytes())
        # 304 for the gzip ETag when gzip would be sent, 200 otherwise.
        status, nh, body = self.head_and_body("/index.html", "-H", "Accept-Encoding: gzip", "-H",
                                              f"If-None-Match: {headers['etag']}")
        self.assertEqual((status, body), (304, b""))
        self.assertEqual((nh["etag"], nh["vary"]), (headers["etag"], "Accept-Encoding"))
        status, _, body = self.head_and_body("/index.html", "-H", f"If-None-Match: {headers['etag']}")
        self.assertEqual((status, body), (200, (HTDOCS / "index.html").read_bytes()))
        # HEAD gives the headers of the gzip GET.
        status, hh, body = self.head_and_body("/index.html", "-I", "-H", "Accept-Encoding: gzip")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(int(hh["content-length"]), len(gz))
        self.assertEqual((hh["etag"], hh["content-encoding"]), (headers["etag"], "gzip"))

    def test_request_log_line(self):
        self.get("/about.html")
        self.guest.wait_for(r"^unipi\| GET /about\.html 200 \d+B \d+ms$", timeout=10)


if __name__ == "__main__":
    unittest.main()


class Dhcp(h.QemuTestCase):
    """Without --ipv4 the subject configures itself by DHCP (QEMU's server
    hands out 192.168.254.15 first) and serves the built-in site archive."""

    def test_dhcp_lease_then_https(self):
        h.require(h.BUILD / "unipi.muen", h.BUILD / "site.tar")
        certs = h.ROOT / "certs" / "dev"
        system = h.make_system("dhcp", [dict(
            name="unipi", elf=h.BUILD / "unipi.muen", ram=64, nets=["net0"],
            memory={"site": h.BUILD / "site.tar", "tls_cert": certs / "server.pem", "tls_key": certs / "server.key"},
            events=[(0, "solo5_exit", "exit"), (1, "net0|notify", "netnotify")])])
        port = h.free_port()
        with h.Guest(system, net=h.netdev([(port, 4433)], guest_ip="192.168.254.15"), timeout=60) as g:
            # QEMU's restricted DHCP server offers no router, which is fine here.
            g.wait_for(r"^unipi\| net: DHCP lease 192\.168\.254\.15/24")
            self.assertNotIn("lease lost", g.log())
            h.wait_https(port, timeout=30)
            body = h.curl(f"https://127.0.0.1:{port}/about.html", "--cacert", str(CA)).stdout
        self.assertEqual(body, (HTDOCS / "about.html").read_bytes())


class ArchiveCompression(h.QemuTestCase):
    """The built-in site archive (site region, no remote) is compressed the
    same way; --compression=off turns compression and negotiation off."""

    def boot(self, name, params):
        h.require(h.BUILD / "unipi.muen", h.BUILD / "site.tar")
        certs = h.ROOT / "certs" / "dev"
        system = h.make_system(name, [dict(
            name="unipi", elf=h.BUILD / "unipi.muen", ram=64, nets=["net0"],
            bootparams=f"--ipv4=192.168.254.10/24 {params}".strip(),
            memory={"site": h.BUILD / "site.tar", "tls_cert": certs / "server.pem", "tls_key": certs / "server.key"},
            events=[(0, "solo5_exit", "exit"), (1, "net0|notify", "netnotify")])])
        port = h.free_port()
        return h.Guest(system, net=h.netdev([(port, 4433)]), timeout=90), port

    def test_archive_is_compressed_and_off_switch(self):
        css = (HTDOCS / "css/site.css").read_bytes()
        g, port = self.boot("archive-gzip", "")
        with g:
            g.wait_for(COMPRESSED)
            status, headers, body = h.https_request(port, "/css/site.css", "-H", "Accept-Encoding: gzip")
            self.assertEqual((status, headers.get("content-encoding")), (200, "gzip"))
            self.assertEqual(gunzip(body), css)
        g, port = self.boot("archive-off", "--compression=off")
        with g:
            g.wait_for(r"^unipi\| ready")
            h.wait_https(port, "/css/site.css", timeout=60)
            status, headers, body = h.https_request(port, "/css/site.css", "-H", "Accept-Encoding: gzip")
            self.assertEqual((status, body), (200, css))
            self.assertNotIn("content-encoding", headers)
            self.assertNotIn("vary", headers)
            status, _, _ = h.https_request(port, "/css/site.css", "-H", "Accept-Encoding: identity;q=0")
            self.assertEqual(status, 200)
            self.assertNotRegex(g.log(), COMPRESSED[1:])


class PcMachine(h.QemuTestCase):
    """The same system.elf on `-M pc` (SeaBIOS, virtio-net-pci) serves too."""

    def test_https_on_pc(self):
        h.require(h.BUILD / "system.elf")
        port = h.free_port()
        net = h.netdev([(port, 4433)], extra=[h.git_guestfwd()])
        with h.Guest(h.BUILD / "system.elf", machine="pc", net=net, timeout=90) as g:
            g.wait_for(r"^unipi\| serving [0-9a-f]{40};")
            self.assertRegex(g.log(), r"(?m)^kernel: bridge: 1 subject port\(s\), NIC: virtio-net pci")
            body = h.curl(f"https://127.0.0.1:{port}/css/site.css", "--cacert", str(CA)).stdout
        self.assertEqual(body, (HTDOCS / "css/site.css").read_bytes())
