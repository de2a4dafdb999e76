"""A real browser opens the site: headless Chromium (Debian's chromium and
chromium-driver), driven through the W3C WebDriver protocol, loads
https://127.0.0.1:PORT/ from the unikernel through hostfwd. The test checks
the title, that the stylesheet was applied and that the images decoded,
that the HTML and the CSS arrived gzip-compressed (the response headers
from Chromium's own network log, and its Resource Timing sizes), and
saves a screenshot as build/screenshot.png."""

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request

import harness as h

HTDOCS = h.ROOT / "htdocs"


class WebDriver:
    def __init__(self):
        for tool in ("chromedriver", "chromium"):
            if shutil.which(tool) is None:
                raise AssertionError(f"{tool} is missing: run 'make deps' (Debian packages chromium, chromium-driver)")
        self.port = h.free_port()
        self.profile = tempfile.mkdtemp(prefix="unipi-chromium-")
        self.proc = subprocess.Popen(["chromedriver", f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.session = None
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.call("GET", "/status")["value"]["ready"]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise AssertionError("chromedriver did not become ready")
            time.sleep(0.1)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)

    def start(self):
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={self.profile}", "--window-size=1200,900"]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "acceptInsecureCerts": True,
            # The DevTools network events (with the response headers as
            # received) go to the "performance" log.
            "goog:loggingPrefs": {"performance": "ALL"},
            "goog:chromeOptions": {"binary": shutil.which("chromium"), "args": args}}}}
        self.session = self.call("POST", "/session", caps)["value"]["sessionId"]

    def cmd(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)["value"]

    def response_headers(self):
        """{url: {lower-case header: value}} of every response Chromium
        received, from its DevTools network events."""
        out = {}
        for entry in self.cmd("POST", "/se/log", {"type": "performance"}):
            msg = json.loads(entry["message"])["message"]
            if msg["method"] == "Network.responseReceived":
                r = msg["params"]["response"]
                out.setdefault(r["url"], {}).update({k.lower(): v for k, v in r["headers"].items()})
        return out

    def close(self):
        try:
            if self.session:
                self.call("DELETE", f"/session/{self.session}")
        except OSError:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


PAGE_STATE = """
const header = document.querySelector('header');
const img = document.getElementById('diagram');
const logo = document.querySelector('header img');
return {
  headerBackground: getComputedStyle(header).backgroundColor,
  bodyFont: getComputedStyle(document.body).fontFamily,
  sheets: Array.from(document.styleSheets).map(s => s.href),
  diagram: [img.complete, img.naturalWidth, img.naturalHeight],
  logo: [logo.complete, logo.naturalWidth],
  protocols: performance.getEntries()
    .filter(e => e.nextHopProtocol !== undefined && e.name.startsWith('https://'))
    .map(e => [new URL(e.name).pathname, e.nextHopProtocol]),
  sizes: [performance.getEntriesByType('navigation')[0]]
    .concat(performance.getEntriesByType('resource'))
    .map(e => [new URL(e.name).pathname, e.encodedBodySize, e.decodedBodySize]),
};
"""


class Browser(h.QemuTestCase):
    def test_chromium_renders_the_site(self):
        h.require(h.BUILD / "system.elf", h.BUILD / "site.git")
        port = h.free_port()
        net = h.netdev([(port, 4433)], extra=[h.git_guestfwd()])
        with h.Guest(h.BUILD / "system.elf", net=net, timeout=90) as g:
            # Served at once after the fetch; gzip representations follow
            # (site/compress.rs).
            g.wait_for(r"^unipi\| serving [0-9a-f]{40};[\s\S]*^unipi\| site: gzip for")
            wd = WebDriver()
            try:
                wd.start()
                wd.cmd("POST", "/url", {"url": f"https://127.0.0.1:{port}/"})
                title = wd.cmd("GET", "/title")
                state = wd.cmd("POST", "/execute/sync", {"script": PAGE_STATE, "args": []})
                headers = wd.response_headers()
                png = base64.b64decode(wd.cmd("GET", "/screenshot"))
            finally:
                wd.close()
            shot = h.BUILD / "screenshot.png"
            shot.write_bytes(png)
            log = g.log()
        self.assertEqual(title, "unipi-rs: a web server as a Muen subject")
        # site.css sets the header to --ink (#1d2733): the stylesheet was applied.
        self.assertEqual(state["headerBackground"], "rgb(29, 39, 51)", state)
        self.assertEqual(state["sheets"], [f"https://127.0.0.1:{port}/css/site.css"])
        self.assertEqual(state["diagram"], [True, 640, 200], state)
        self.assertEqual(state["logo"], [True, 64], state)
        # The page and its resources came over HTTP/2 (ALPN h2).
        protocols = dict(state["protocols"])
        self.assertEqual(protocols.get("/"), "h2", state["protocols"])
        self.assertEqual(protocols.get("/css/site.css"), "h2", state["protocols"])
        self.assertTrue(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10000, f"screenshot of {len(png)} bytes")
        for path in ("/", "/css/site.css", "/img/path.png", "/img/logo.svg"):
            self.assertRegex(log, rf"(?m)^unipi\| GET {path} 200 ")
        # The HTML and the CSS came gzip-compressed: the headers as Chromium
        # received them, and its Resource Timing (bytes on the wire below the
        # decoded size); the PNG was sent as it is.
        base = f"https://127.0.0.1:{port}"
        for path in ("/", "/css/site.css"):
            with self.subTest(path=path):
                self.assertEqual(headers[base + path].get("content-encoding"), "gzip", headers.get(base + path))
                self.assertEqual(headers[base + path].get("vary"), "Accept-Encoding")
        self.assertNotIn("content-encoding", headers[base + "/img/path.png"])
        sizes = {p: (enc, dec) for p, enc, dec in state["sizes"]}
        for path, f in (("/", "index.html"), ("/css/site.css", "css/site.css")):
            enc, dec = sizes[path]
            self.assertEqual(dec, (HTDOCS / f).stat().st_size, state["sizes"])
            self.assertLess(enc, dec * 0.9, state["sizes"])
        self.assertEqual(sizes["/img/path.png"][0], sizes["/img/path.png"][1])
