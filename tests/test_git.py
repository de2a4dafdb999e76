"""The site comes from Git: at boot over git:// (real git daemon via
guestfwd) and https:// (nginx + git http-backend on 127.0.0.1 via guestfwd,
trusted through a CA certificate region), and again on the webhook. Every
served file is compared with `git archive` of the same commit."""

import hashlib
import hmac
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import unittest
from pathlib import Path

import harness as h

CERTS = h.ROOT / "certs" / "dev"
# harness.netdev builds every netdev with restrict=on; the guestfwd targets
# below are commands that only ever connect to 127.0.0.1.
GIT_ADDR = h.GIT_ADDR
HTTPS_ADDR = "192.168.254.4"  # .2 serves git://, .3 is QEMU's DNS
ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
           GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")


def git(repo, *args, check=True):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=ENV, check=check).stdout.strip()


def make_repo(parent):
    """A repository with history (deltas after gc), a symlink, an executable,
    nested directories, an empty file and a binary over 1 MiB."""
    repo = Path(parent) / "site"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    shutil.copytree(h.ROOT / "htdocs", repo, dirs_exist_ok=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first")
    for i in range(3):
        with open(repo / "index.html", "a") as f:
            f.write(f"<!-- revision {i} -->\n")
        git(repo, "commit", "-qam", f"revision {i}")
    (repo / "deep/er/still").mkdir(parents=True)
    (repo / "deep/er/still/page.html").write_text("<!DOCTYPE html><title>deep</title>\n")
    (repo / "empty.txt").write_bytes(b"")
    (repo / "tool.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "tool.sh").chmod(0o755)
    (repo / "big.bin").write_bytes(os.urandom(1 << 20) + b"tail")
    os.symlink("articles/channels.html", repo / "moved.html")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "more")
    git(repo, "gc", "-q", "--aggressive")
    return repo


FETCHED = (r"(?m)^unipi\| git: fetched {} from \S+: \d+ files, \d+ bytes "
           r"\(pack (\d+) bytes, \d+ objects, \d+ deltas, protocol \w+(, incremental[^)]*)?\) in (\d+) ms")


def fetched(guest, commit):
    """(pack bytes, incremental?, ms) of the subject's log line for `commit`."""
    m = guest.wait_for(FETCHED.format(commit), 60)
    return int(m.group(1)), m.group(2) is not None, int(m.group(3))


def commit_change(repo, path, text):
    (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"change {path}")
    return git(repo, "rev-parse", "HEAD")


def archive(repo, rev="HEAD"):
    """{path: bytes or ('symlink', target)} of `git archive rev`."""
    data = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", rev], capture_output=True, check=True).stdout
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            if m.isfile():
                out[m.name] = t.extractfile(m).read()
            elif m.issym():
                out[m.name] = ("symlink", m.linkname)
    return out


def system_for(name, remote, extra_memory=None, params=""):
    memory = {"tls_cert": CERTS / "server.pem", "tls_key": CERTS / "server.key", **(extra_memory or {})}
    return h.make_system(name, [dict(
        name="unipi", elf=h.BUILD / "unipi.muen", ram=96, nets=["net0"], memory=memory,
        bootparams=f"--ipv4=192.168.254.10/24 --remote={remote} {params}".strip(),
        events=[(0, "solo5_exit", "exit"), (1, "net0|notify", "netnotify")])])


class GitDaemonSite(h.QemuTestCase):
    """A test repository served by git daemon (guestfwd) and the subject
    booted on it with `PARAMS`; stopped and removed after the class."""

    NAME = "git"
    PARAMS = ""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require(h.BUILD / "unipi.muen", CERTS / "server.pem")
        cls.tmp = tempfile.mkdtemp(prefix=f"unipi-{cls.NAME}-e2e-")
        cls.repo = make_repo(cls.tmp)
        cls.first = git(cls.repo, "rev-parse", "HEAD")
        cls.port = h.free_port()
        system = system_for(cls.NAME, f"git://{GIT_ADDR}/site", params=cls.PARAMS)
        cls.guest = h.start_guest(system, h.netdev([(cls.port, 4433)], extra=[h.git_guestfwd(cls.tmp)]),
                                  r"^unipi\| serving [0-9a-f]{40};", timeout=120)

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)


class GitRemote(GitDaemonSite):

    def fetch(self, path, *args):
        return h.https_request(self.port, path, *args)

    def assert_serves(self, files):
        for path, want in sorted(files.items()):
            with self.subTest(path=path):
                status, headers, body = self.fetch("/" + path)
                if isinstance(want, tuple):
                    self.assertEqual(status, 301)
                    self.assertEqual(headers["location"], want[1])
                else:
                    self.assertEqual(status, 200)
                    self.assertEqual(body, want)

    def test_1_boot_fetch_matches_git_archive(self):
        head = git(self.repo, "rev-parse", "HEAD")
        self.assertRegex(self.guest.log(), rf"(?m)^unipi\| serving {head};")
        files = archive(self.repo)
        self.assertIn("big.bin", files)
        self.assertIn("empty.txt", files)
        self.assertEqual(files["moved.html"], ("symlink", "articles/channels.html"))
        self.assert_serves(files)
        # Strong ETag = blob id; Last-Modified = commit time.
        _, headers, _ = self.fetch("/tool.sh")
        self.assertEqual(headers["etag"], f'"{git(self.repo, "rev-parse", "HEAD:tool.sh")}"')
        ctime = int(git(self.repo, "log", "-1", "--format=%ct"))
        self.assertEqual(headers["last-modified"], time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(ctime)))

    def test_2_hook_pulls_a_new_commit(self):
        (self.repo / "articles/channels.html").write_text("<!DOCTYPE html><title>changed</title>\n")
        (self.repo / "news.html").write_text("<!DOCTYPE html><title>news</title>\n")
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-qm", "change")
        head = git(self.repo, "rev-parse", "HEAD")
        status, _, body = self.fetch("/hook", "-X", "POST", "-d", '{"ref":"refs/heads/main"}')
        self.assertEqual((status, body.decode()), (200, f"pulled {head}"))
        self.assert_serves(archive(self.repo))
        # The pull asked only for what changed: a thin pack of a few objects,
        # where the boot fetch carried the whole site (big.bin alone is 1 MiB).
        full, full_incremental, full_ms = fetched(self.guest, self.first)
        pack, incremental, ms = fetched(self.guest, head)
        h.report("git", f"hook pull: pack {pack} bytes in {ms} ms (incremental); "
                 f"boot fetch: pack {full} bytes in {full_ms} ms")
        self.assertFalse(full_incremental)
        self.assertTrue(incremental, self.guest.log()[-2000:])
        self.assertLess(pack, 4096)
        self.assertGreater(full, 1 << 20)
        status, _, body = self.fetch("/hook?data=1")
        self.assertEqual((status, body.decode()), (200, "pulled, no changes"))

    def test_3_hook_with_a_broken_remote_keeps_the_old_site(self):
        before = archive(self.repo)
        moved = Path(self.tmp) / "site-away"
        self.repo.rename(moved)
        try:
            status, _, body = self.fetch("/hook")
        finally:
            moved.rename(self.repo)
        self.assertEqual(status, 500, body)
        self.assertRegex(body.decode(), r"(?i)not found|no such|not exported|access denied|repository")
        self.assert_serves(before)
        self.assertRegex(self.guest.log(), r"(?m)^unipi\| warning: git: pull failed, still serving [0-9a-f]{40}")

    def test_4_rewritten_history_ends_with_the_right_site(self):
        # A force-push: main now names a new root commit, and the server no
        # longer has the commit the subject serves (reflog expired, pruned).
        served = git(self.repo, "rev-parse", "HEAD")
        git(self.repo, "checkout", "-q", "--orphan", "rewritten")
        head = commit_change(self.repo, "index.html", "<!DOCTYPE html><title>rewritten</title>\n")
        git(self.repo, "branch", "-M", "main")
        git(self.repo, "reflog", "expire", "--expire=now", "--all")
        git(self.repo, "gc", "-q", "--prune=now")
        self.assertNotEqual(git(self.repo, "cat-file", "-t", served, check=False), "commit")
        status, _, body = self.fetch("/hook", "-X", "POST")
        self.assertEqual((status, body.decode()), (200, f"pulled {head}"))
        self.assert_serves(archive(self.repo))
        fetched(self.guest, head)


class SignedHooks(GitDaemonSite):
    """--hook-secret: each forge's signature or token pulls; none is 401,
    a wrong one 403, a body over --hook-max-body 413, and none of those pull.
    The signatures are computed here by each forge's documented rule."""

    SECRET = "hook-secret-for-the-test"
    NAME = "hooks"
    PARAMS = f"--hook-secret={SECRET} --hook-max-body=4096"

    def post(self, body, *fields):
        args = ["-X", "POST", "--data-binary", body]
        for f in fields:
            args += ["-H", f]
        status, _, text = h.https_request(self.port, "/hook", *args)
        return status, text.decode(errors="replace")

    def mac(self, body):
        return hmac.new(self.SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()

    def serves(self, path, text):
        status, _, body = h.https_request(self.port, "/" + path)
        return status == 200 and body == text.encode()

    def test_each_forge_pulls(self):
        for forge, field in [("GitHub", lambda b: f"X-Hub-Signature-256: sha256={self.mac(b)}"),
                             ("Gitea", lambda b: f"X-Gitea-Signature: {self.mac(b)}"),
                             ("Forgejo", lambda b: f"X-Forgejo-Signature: {self.mac(b)}"),
                             ("GitLab", lambda b: f"X-Gitlab-Token: {self.SECRET}")]:
            with self.subTest(forge=forge):
                text = f"<!DOCTYPE html><title>{forge}</title>\n"
                head = commit_change(self.repo, "forge.html", text)
                body = '{"ref":"refs/heads/main","after":"%s"}' % head
                self.assertEqual(self.post(body, "Content-Type: application/json", field(body)),
                                 (200, f"pulled {head}"))
                self.assertTrue(self.serves("forge.html", text))

    def test_refused_requests_do_not_pull(self):
        text = "<!DOCTYPE html><title>not yet</title>\n"
        head = commit_change(self.repo, "refused.html", text)
        body = '{"ref":"refs/heads/main"}'
        big = "x" * 8192
        cases = [
            ("no credentials", body, [], 401),
            ("GitHub signature of another body", body, [f"X-Hub-Signature-256: sha256={self.mac(body + ' ')}"], 403),
            ("GitHub signature with another key",
             body, ["X-Hub-Signature-256: sha256=" + hmac.new(b"other", body.encode(), hashlib.sha256).hexdigest()], 403),
            ("Gitea signature not hex", body, ["X-Gitea-Signature: " + "zz" * 32], 403),
            ("wrong GitLab token", body, ["X-Gitlab-Token: " + self.SECRET[:-1]], 403),
            ("body over --hook-max-body", big, [f"X-Hub-Signature-256: sha256={self.mac(big)}"], 413),
        ]
        for name, b, fields, want in cases:
            with self.subTest(case=name):
                status, _ = self.post(b, *fields)
                self.assertEqual(status, want)
        self.assertFalse(self.serves("refused.html", text))
        self.assertNotIn(f"git: fetched {head}", self.guest.log())


class HttpsRemote(h.QemuTestCase):
    """nginx (TLS with a throw-away CA) + fcgiwrap + git http-backend on
    127.0.0.1; the guest reaches it as https://192.168.254.4/ through a
    guestfwd to 127.0.0.1 and trusts the CA from its remote_ca region."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for tool in ("nginx", "fcgiwrap", "openssl"):
            if shutil.which(tool) is None:
                raise AssertionError(f"{tool} is missing: run 'make deps'")
        cls.tmp = Path(tempfile.mkdtemp(prefix="unipi-https-remote-"))
        cls.repo = make_repo(cls.tmp)
        subprocess.run(["git", "clone", "-q", "--bare", str(cls.repo), str(cls.tmp / "site.git")], check=True)
        subprocess.run(["sh", str(h.ROOT / "certs/gen-dev-cert.sh"), str(cls.tmp / "pki"), HTTPS_ADDR], check=True, capture_output=True)
        cls.nginx_port = h.free_port()
        backend = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip() + "/git-http-backend"
        sock = cls.tmp / "fcgi.sock"
        cls.fcgi = subprocess.Popen(["fcgiwrap", "-s", f"unix:{sock}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # nginx's workers run unprivileged when started as root: let them
        # reach the socket (the directory is ours and temporary).
        cls.tmp.chmod(0o755)
        deadline = time.monotonic() + 10
        while not sock.exists():
            if time.monotonic() > deadline:
                raise AssertionError("fcgiwrap did not create its socket")
            time.sleep(0.05)
        sock.chmod(0o666)
        conf = cls.tmp / "nginx.conf"
        conf.write_text(f"""
daemon off; worker_processes 1; pid {cls.tmp}/nginx.pid; error_log {cls.tmp}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {cls.tmp}/access.log;
  client_body_temp_path {cls.tmp}/body; fastcgi_temp_path {cls.tmp}/fcgi; proxy_temp_path {cls.tmp}/proxy;
  uwsgi_temp_path {cls.tmp}/uwsgi; scgi_temp_path {cls.tmp}/scgi;
  server {{
    listen 127.0.0.1:{cls.nginx_port} ssl;
    ssl_certificate {cls.tmp}/pki/server.pem; ssl_certificate_key {cls.tmp}/pki/server.key;
    location / {{
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME {backend};
      fastcgi_param GIT_PROJECT_ROOT {cls.tmp};
      fastcgi_param GIT_HTTP_EXPORT_ALL 1;
      fastcgi_param PATH_INFO $uri;
      fastcgi_param GIT_PROTOCOL $http_git_protocol;
      fastcgi_pass unix:{sock};
    }}
  }}
}}
""")
        cls.nginx = subprocess.Popen(["nginx", "-p", str(cls.tmp), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["curl", "-sf", "-o", "/dev/null", "--cacert", str(cls.tmp / "pki/ca.pem"),
                              "--resolve", f"{HTTPS_ADDR}:{cls.nginx_port}:127.0.0.1",
                              f"https://{HTTPS_ADDR}:{cls.nginx_port}/site.git/info/refs?service=git-upload-pack"]).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError("nginx did not come up")
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        for p in (cls.nginx, cls.fcgi):
            p.terminate()
            p.wait(10)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def boot(self, name, ca):
        port = h.free_port()
        fwd = f"guestfwd=tcp:{HTTPS_ADDR}:443-cmd:{h.ROOT}/scripts/relay.py {self.nginx_port}"
        system = system_for(name, f"https://{HTTPS_ADDR}/site.git", {"remote_ca": ca, "site": h.BUILD / "site.tar"})
        return port, h.Guest(system, net=h.netdev([(port, 4433)], extra=[fwd]), timeout=120)

    def test_fetch_over_https_with_the_ca_region(self):
        port, guest = self.boot("https-remote", self.tmp / "pki/ca.pem")
        with guest as g:
            m = g.wait_for(r"^unipi\| git: fetched ([0-9a-f]{40}) from https://")
            self.assertEqual(m.group(1), git(self.repo, "rev-parse", "HEAD"))
            g.wait_for(r"^unipi\| serving [0-9a-f]{40};")
            for path, want in archive(self.repo).items():
                if isinstance(want, bytes):
                    with self.subTest(path=path):
                        got = h.curl(f"https://127.0.0.1:{port}/{path}", "--cacert", str(CERTS / "ca.pem")).stdout
                        self.assertEqual(got, want)

    def test_untrusted_server_is_refused_and_the_fallback_is_served(self):
        # Trust the development CA instead of the one that signed nginx's certificate.
        port, guest = self.boot("https-untrusted", CERTS / "ca.pem")
        with guest as g:
            g.wait_for(r"^unipi\| warning: git: fetch failed: .*(certificate|UnknownIssuer|invalid peer)")
            # Meanwhile the built-in archive of htdocs is served.
            got = h.curl(f"https://127.0.0.1:{port}/about.html", "--cacert", str(CERTS / "ca.pem")).stdout
            self.assertEqual(got, (h.ROOT / "htdocs/about.html").read_bytes())
            self.assertNotRegex(g.log(), r"(?m)^unipi\| serving [0-9a-f]{40}")


if __name__ == "__main__":
    unittest.main()
