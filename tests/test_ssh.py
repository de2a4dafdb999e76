"""Git over ssh, end to end: the guest fetches the site from Debian's
OpenSSH. QEMU starts `sshd -i` per connection through a guestfwd to a
command (no host port is opened; restrict=on). The test generates the host
and client keys with ssh-keygen and an sshd_config that lets only that key
in and runs only git-upload-pack (a ForceCommand wrapper around
git-shell). The client key reaches the guest as an OpenSSH key file in a
memory region (--ssh-key-region), the host-key pin as
--ssh-authenticator.

Cases: protocol v0 (sunset, the SSH library, cannot send the
GIT_PROTOCOL environment request yet) and v2 (the server sets
GIT_PROTOCOL itself), a wrong host-key pin (refused before
authentication, both fingerprints logged, the built-in site served), a
client key the server does not know (a clear error), and a server that
closes mid-pack (the old site stays). The ssh fetch time is reported next
to git:// for the same repository."""

import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

import harness as h
import test_hostile as hostile

SSH_ADDR = "192.168.254.4"
SSHD = "/usr/sbin/sshd"


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)], check=True)


def fingerprint(pub):
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True, text=True).stdout
    return out.split()[1]


class Ssh(h.QemuTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for tool in (SSHD, "ssh-keygen", "git-shell"):
            if not shutil.which(tool):
                raise AssertionError(f"{tool} is missing: run 'make deps' (openssh-server, git)")
        h.require(h.BUILD / "site.git", h.BUILD / "unipi.muen")
        cls.dir = Path(tempfile.mkdtemp(prefix="unipi-ssh-"))
        d = cls.dir
        for name in ("host_key", "client_key", "other_key"):
            keygen(d / name)
        shutil.copy(d / "client_key.pub", d / "authorized_keys")
        cls.host_fp = fingerprint(d / "host_key.pub")
        cls.other_fp = fingerprint(d / "other_key.pub")
        (d / "only-upload-pack").write_text(
            '#!/bin/sh\ncase "$SSH_ORIGINAL_COMMAND" in\n'
            '"git-upload-pack "*) exec git-shell -c "$SSH_ORIGINAL_COMMAND" ;;\n'
            '*) echo "only git-upload-pack is allowed" >&2; exit 1 ;;\nesac\n')
        # A server that dies mid-pack: git-upload-pack's output cut after 1 KiB.
        (d / "cut-upload-pack").write_text(
            '#!/bin/sh\ngit-shell -c "$SSH_ORIGINAL_COMMAND" | head -c 1024\n')
        for w in ("only-upload-pack", "cut-upload-pack"):
            (d / w).chmod(0o755)
        cls.repo = h.BUILD / "site.git"
        cls.commit = subprocess.run(["git", "--git-dir", str(cls.repo), "rev-parse", "main"], check=True,
                                    capture_output=True, text=True).stdout.strip()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def sshd_config(self, name, wrapper="only-upload-pack", extra=""):
        d = self.dir
        cfg = d / f"sshd_config-{name}"
        cfg.write_text(
            f"HostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n"
            "AuthenticationMethods publickey\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "PermitRootLogin prohibit-password\nDisableForwarding yes\nPermitTTY no\nPidFile none\n"
            f"LogLevel INFO\nForceCommand {d}/{wrapper}\n{extra}")
        return cfg

    def boot(self, name, cfg, pin, key="client_key", remote=None):
        """A guest with an ssh remote (started by `with`)."""
        subject = hostile.unipi(f"--remote={remote or f'ssh://root@{SSH_ADDR}{self.repo}'} "
                                f"--ssh-key-region=ssh_key --ssh-authenticator={pin}")
        subject["memory"]["ssh_key"] = str(self.dir / key)
        system = h.make_system(f"ssh-{name}", [subject])
        port = h.free_port()
        fwd = f"guestfwd=tcp:{SSH_ADDR}:22-cmd:{SSHD} -i -f {cfg}"
        net = h.netdev([(port, 4433)], extra=[fwd, h.git_guestfwd()])
        g = h.Guest(system, net=net, timeout=90)
        g.port = port
        return g

    def fetched(self, g):
        m = g.wait_for(r"^unipi\| git: fetched ([0-9a-f]{40}) from (\S+): .*protocol (\w+)\) in (\d+) ms", 60)
        return m.group(1), m.group(3), int(m.group(4))

    def test_fetch_v0(self):
        with self.boot("v0", self.sshd_config("v0"), self.host_fp) as g:
            commit, protocol, ms = self.fetched(g)
            self.assertEqual((commit, protocol), (self.commit, "V0"))
            r = h.curl(f"https://127.0.0.1:{g.port}/", "-k")
            self.assertEqual(r.stdout, (h.ROOT / "htdocs" / "index.html").read_bytes())
            self.assertNotIn("PRIVATE KEY", g.log())
        h.report("ssh", f"v0 fetch in {ms} ms")

    def test_fetch_v2_and_compare_with_git_daemon(self):
        cfg = self.sshd_config("v2", extra="SetEnv GIT_PROTOCOL=version=2\n")
        with self.boot("v2", cfg, self.host_fp) as g:
            commit, protocol, ssh_ms = self.fetched(g)
            self.assertEqual((commit, protocol), (self.commit, "V2"))
        with self.boot("git", cfg, self.host_fp, remote=f"git://{h.GIT_ADDR}/site.git") as g:
            _, protocol, git_ms = self.fetched(g)
        h.report("ssh", f"v2 fetch of {self.repo.name} in {ssh_ms} ms; git:// {git_ms} ms "
                    f"({ssh_ms / max(git_ms, 1):.2f}x)")

    def test_wrong_host_key_is_refused_before_authentication(self):
        with self.boot("pin", self.sshd_config("pin"), self.other_fp) as g:
            m = g.wait_for(r"^unipi\| warning: git: fetch failed: .*", 60)
            line = m.group(0)
            self.assertIn(self.other_fp, line)
            self.assertIn(self.host_fp, line)
            # The built-in site is served meanwhile.
            r = h.curl(f"https://127.0.0.1:{g.port}/", "-k")
            self.assertEqual(r.stdout, (h.ROOT / "htdocs" / "index.html").read_bytes())

    def test_unknown_client_key_is_a_clear_error(self):
        with self.boot("key", self.sshd_config("key"), self.host_fp, key="other_key") as g:
            line = g.wait_for(r"^unipi\| warning: git: fetch failed: .*", 60).group(0)
            self.assertRegex(line, r"(?i)authenticat")

    def test_server_closing_mid_pack_keeps_the_old_site(self):
        with self.boot("cut", self.sshd_config("cut", wrapper="cut-upload-pack"), self.host_fp) as g:
            line = g.wait_for(r"^unipi\| warning: git: fetch failed: .*", 60).group(0)
            self.assertNotRegex(line, r"(?i)panic")
            r = h.curl(f"https://127.0.0.1:{g.port}/", "-k")
            self.assertEqual(r.stdout, (h.ROOT / "htdocs" / "index.html").read_bytes())


if __name__ == "__main__":
    unittest.main()
