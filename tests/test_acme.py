"""Certificates from ACME, end to end: the guest gets its HTTPS certificate
from Debian's pebble (a real RFC 8555 server) and renews it by itself.

pebble listens on 127.0.0.1 with a listener certificate made for this run
(its CA reaches the guest in the `acme_ca` region); the guest reaches it at
https://192.168.254.5:14000/dir through a guestfwd relay to that port.
pebble-challtestsrv is pebble's DNS: every name is 127.0.0.1, so pebble
validates HTTP-01 and TLS-ALPN-01 against the host ports QEMU forwards to
the guest's ports 80 and 4433. Clients check the served chain against
pebble's root (from its management interface) with the real name, so a
certificate that is not pebble's, or a chain without its intermediate,
fails.

Cases: HTTP-01 issuance with no certificate at boot, then a renewal while
a keep-alive connection stays up; TLS-ALPN-01 with the HTTP port not
reachable at all; a renewal whose challenge fails (the name points
elsewhere) keeps the served certificate and succeeds on a later try;
pebble down at boot (the built-in certificate is served, the issuance is
retried until pebble is up); and a certificate in the regions that covers
the name and is not due yet (no issuance at boot). The time from QEMU's start to the first
verified 200 is reported."""

import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

import harness as h
import test_hostile as hostile

ACME_ADDR = "192.168.254.5"
ACME_PORT = 14000
NAME = "www.unipi.test"
SERVING = r"^unipi\| acme: serving the new certificate for (\S+) from .*; renewal (.*)$"


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class Pebble:
    """pebble + pebble-challtestsrv on loopback; validation ports given by the caller."""

    def __init__(self, dir, listener, http_port, tls_port, acme_port=None):
        self.dir = dir
        self.acme_port = acme_port or h.free_port()
        self.mgmt_port = h.free_port()
        self.dns_port = h.free_port()
        self.dns_mgmt_port = h.free_port()
        (dir / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{self.acme_port}",
            "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
            "certificate": str(listener / "listener.pem"),
            "privateKey": str(listener / "listener.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}))
        self.listener_ca = listener / "listener-ca.pem"
        self.procs = []

    def start(self):
        d = self.dir
        with open(d / "challtestsrv.log", "ab") as dns_log:
            self.procs.append(subprocess.Popen(
            ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                 "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                 "-management", f"127.0.0.1:{self.dns_mgmt_port}"],
                stdin=subprocess.DEVNULL, stdout=dns_log, stderr=subprocess.STDOUT))
        self.wait_port(self.dns_mgmt_port)
        # Authorizations are never reused, so every issuance is validated.
        env = {"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0"}
        with open(d / "pebble.log", "ab") as log:
            self.procs.append(subprocess.Popen(
                ["pebble", "-config", str(d / "pebble.json"), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env))
        self.wait_port(self.acme_port)
        self.wait_port(self.mgmt_port)
        ctx = ssl.create_default_context(cafile=str(self.listener_ca))
        with urllib.request.urlopen(f"https://127.0.0.1:{self.mgmt_port}/roots/0", context=ctx) as r:
            (d / "root.pem").write_bytes(r.read())
        return self

    def wait_port(self, port):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise AssertionError(f"{p.args[0]} exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"nothing listens on {port}: {self.log()}")

    def dns(self, op, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.dns_mgmt_port}/{op}", method="POST",
                                     data=json.dumps(body).encode())
        urllib.request.urlopen(req, timeout=5).read()

    def log(self):
        p = self.dir / "pebble.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []


def listener_certificate(d):
    """A CA for this run and pebble's listener certificate for the address the guest dials."""
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(d / "listener-ca.key"), "-out", str(d / "listener-ca.pem"), "-days", "2",
        "-subj", "/CN=unipi test ACME listener CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(d / "listener.key"), "-out", str(d / "listener.csr"), "-subj", "/CN=pebble")
    (d / "ext").write_text(f"subjectAltName=IP:{ACME_ADDR},IP:127.0.0.1\n"
                           "extendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", str(d / "listener.csr"), "-CA", str(d / "listener-ca.pem"),
        "-CAkey", str(d / "listener-ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(d / "ext"),
        "-out", str(d / "listener.pem"))


def certificate_for(d, ca, name, days=2):
    """A certificate for `name` from the run's CA: (cert, key) paths."""
    key, csr, cert = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca / "listener-ca.pem"),
        "-CAkey", str(ca / "listener-ca.key"), "-CAcreateserial", "-days", str(days),
        "-extfile", str(d / f"{name}.ext"), "-out", str(cert))
    return cert, key


def served(port, root):
    """(serial, issuer CN) of the certificate served for NAME, verified against `root`."""
    ctx = ssl.create_default_context(cafile=str(root))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=NAME) as t:
            cert = t.getpeercert()
    issuer = dict(x[0] for x in cert["issuer"])
    return cert["serialNumber"], issuer.get("commonName")


class Loopback(http.client.HTTPSConnection):
    """A keep-alive HTTPS connection to 127.0.0.1 that verifies the certificate for NAME."""

    def __init__(self, port, root):
        super().__init__(NAME, port, context=ssl.create_default_context(cafile=str(root)), timeout=20)
        self.root = root

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=NAME)


def get(port, root, path="/"):
    r = h.curl(f"https://{NAME}:{port}{path}", "--cacert", str(root), "--resolve", f"{NAME}:{port}:127.0.0.1",
               "-o", "/dev/null", "-w", "%{http_code}", check=False)
    return r.stdout.decode(), r.stderr.decode(errors="replace")


class Acme(h.QemuTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for tool in ("pebble", "pebble-challtestsrv", "openssl"):
            if not shutil.which(tool):
                raise AssertionError(f"{tool} is missing: run 'make deps' (pebble, openssl)")
        h.require(h.BUILD / "unipi.muen")
        cls.dir = Path(tempfile.mkdtemp(prefix="unipi-acme-"))
        listener_certificate(cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.https = h.free_port()
        self.http = h.free_port()
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"{self._testMethodName}-", dir=self.dir))
        self.pebble = None

    def tearDown(self):
        if self.pebble:
            self.pebble.stop()

    def start_pebble(self, http_port=None, acme_port=None):
        self.pebble = Pebble(self.run_dir, self.dir, http_port or self.http, self.https, acme_port).start()
        return self.pebble

    def boot(self, name, flags, acme_port, builtin_cert=False, forward_http=True, cert=None):
        subject = hostile.unipi(f"--hostname={NAME} --email=admin@unipi.test "
                                f"--acme-directory=https://{ACME_ADDR}:{ACME_PORT}/dir {flags}")
        mem = subject["memory"]
        if cert:
            mem["tls_cert"], mem["tls_key"] = map(str, cert)
        elif not builtin_cert:
            del mem["tls_cert"], mem["tls_key"]
        mem["acme_ca"] = str(self.dir / "listener-ca.pem")
        system = h.make_system(f"acme-{name}", [subject])
        forwards = [(self.https, 4433)] + ([(self.http, 80)] if forward_http else [])
        # A relay per connection (a guestfwd to a tcp: chardev would be one stream for all).
        relay = f"guestfwd=tcp:{ACME_ADDR}:{ACME_PORT}-cmd:{h.ROOT}/scripts/relay.py {acme_port}"
        net = h.netdev(forwards, extra=[relay])
        return h.Guest(system, net=net, timeout=120)

    def wait_verified(self, g, root, timeout=90):
        """Polls until a request verified against `root` succeeds; returns seconds since QEMU started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, _ = get(self.https, root)
            if code == "200":
                return g.elapsed()
            if g.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no verified 200 within {timeout} s:\n{g.tail()}\n[pebble] {self.pebble.log()}")

    def test_http01_issuance_then_renewal_under_a_keep_alive_connection(self):
        p = self.start_pebble()
        root = self.run_dir / "root.pem"
        with self.boot("http01", "--acme-renew-after=20", p.acme_port) as g:
            ready = self.wait_verified(g, root)
            m = g.wait_for(SERVING, 10)
            self.assertEqual(m.group(1).rstrip(","), NAME)
            first, issuer = served(self.https, root)
            self.assertIn("Pebble Intermediate CA", issuer)
            # OpenSSL agrees: the chain (leaf + intermediate) verifies against pebble's root.
            r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.https}",
                                "-servername", NAME, "-verify_hostname", NAME, "-CAfile", str(root),
                                "-verify_return_error"], input=b"", capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace")[-2000:])
            self.assertIn(b"Verify return code: 0 (ok)", r.stdout)
            g.wait_for(rf"^unipi\| status: .*; certificate {re.escape(NAME)} from CN=Pebble Intermediate CA \S+ until ",
                       10)
            self.assertIn(f"ACME: answering http-01 for {NAME}", g.log())

            # A keep-alive connection opened before the renewal.
            conn = Loopback(self.https, root)
            conn.request("GET", "/")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            old_serial = conn.sock.getpeercert()["serialNumber"]
            self.assertEqual(old_serial, first)

            # It stays in use (every 5 s, within the idle timeout) while the renewal runs.
            deadline = time.monotonic() + 90
            while len(re.findall(SERVING, g.log(), re.M)) < 2:
                self.assertLess(time.monotonic(), deadline, g.tail())
                time.sleep(5)
                conn.request("GET", "/")
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
            second, issuer = served(self.https, root)
            self.assertNotEqual(second, first)
            self.assertIn("Pebble Intermediate CA", issuer)
            # The old connection still works, with the certificate it was made with.
            conn.request("GET", "/")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), (h.ROOT / "htdocs" / "index.html").read_bytes())
            self.assertEqual(conn.sock.getpeercert()["serialNumber"], first)
            conn.close()
            self.assertNotIn("panic", g.log())
        h.report("acme", f"QEMU start to first verified 200 (HTTP-01, pebble) {ready:.2f} s")

    def test_tls_alpn01_without_the_http_port(self):
        # pebble would validate HTTP-01 on a port nobody listens on.
        p = self.start_pebble(http_port=h.free_port())
        root = self.run_dir / "root.pem"
        with self.boot("alpn", "--acme-challenge=tls-alpn-01", p.acme_port, forward_http=False) as g:
            ready = self.wait_verified(g, root)
            g.wait_for(SERVING, 10)
            self.assertIn(f"ACME: answering tls-alpn-01 for {NAME}", g.log())
            _, issuer = served(self.https, root)
            self.assertIn("Pebble Intermediate CA", issuer)
            # A handshake offering only acme-tls/1 for an unrelated name gets no certificate.
            r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.https}",
                                "-servername", "other.unipi.test", "-alpn", "acme-tls/1"],
                               input=b"", capture_output=True, timeout=20)
            self.assertNotIn(b"acmeIdentifier", r.stdout)
            self.assertNotIn(b"BEGIN CERTIFICATE", r.stdout)
        h.report("acme", f"QEMU start to first verified 200 (TLS-ALPN-01, pebble) {ready:.2f} s")

    def test_failed_renewal_keeps_the_served_certificate(self):
        p = self.start_pebble()
        root = self.run_dir / "root.pem"
        with self.boot("fail", "--acme-renew-after=15 --acme-retry=10", p.acme_port) as g:
            self.wait_verified(g, root)
            g.wait_for(SERVING, 10)
            first, _ = served(self.https, root)
            # The name now points where nothing listens: HTTP-01 validation fails.
            p.dns("add-a", {"host": NAME, "addresses": ["127.0.0.2"]})
            line = g.wait_for(r"^unipi\| warning: acme: .*keeping the certificate being served; next try in (\d+) s",
                              90).group(0)
            self.assertNotRegex(line, r"(?i)panic")
            self.assertEqual(served(self.https, root)[0], first)
            self.assertEqual(get(self.https, root)[0], "200")
            # Fixed again: the retry succeeds.
            p.dns("clear-a", {"host": NAME})
            deadline = time.monotonic() + 90
            while len(re.findall(SERVING, g.log(), re.M)) < 2:
                self.assertLess(time.monotonic(), deadline, g.tail())
                time.sleep(0.5)
            self.assertNotEqual(served(self.https, root)[0], first)

    def test_acme_server_down_at_boot(self):
        acme_port = h.free_port()
        with self.boot("down", "--acme-retry=5", acme_port, builtin_cert=True) as g:
            g.wait_for(r"^unipi\| warning: acme: .*next try in \d+ s", 60)
            # The built-in certificate is served meanwhile.
            status, _, _ = h.https_request(self.https, "/")
            self.assertEqual(status, 200)
            p = self.start_pebble(acme_port=acme_port)
            root = self.run_dir / "root.pem"
            self.wait_verified(g, root, timeout=120)
            g.wait_for(SERVING, 10)

    def test_a_valid_certificate_in_the_regions_is_kept_until_due(self):
        p = self.start_pebble()
        cert = certificate_for(self.run_dir, self.dir, NAME)
        with self.boot("kept", "", p.acme_port, cert=cert) as g:
            g.wait_for(rf"^unipi\| acme: the certificate of the regions covers {re.escape(NAME)}; renewal ", 60)
            self.wait_verified(g, self.dir / "listener-ca.pem")
            time.sleep(5)
            self.assertNotIn("GET /dir", p.log())
            self.assertNotIn("acme: requesting", g.log())


if __name__ == "__main__":
    unittest.main()
