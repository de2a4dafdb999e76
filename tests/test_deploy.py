"""Deployment: bootable ISO (CD and memdisk), signatures for iPXE, the iPXE
script and reproducible builds (docs/deploy.md); the Muen side is in
tests/test_muen.py.

Run from the repository root after `make all subjects iso` (what
`make test-e2e` does). Environment:
  UNIPI_REPRO=1|worktree   also run the two-build reproducibility check
                           (deploy/repro-check.sh; two full builds)
  UNIPI_BOOT_TIMEOUT=S     seconds to wait for the first HTTPS answer (default 90)
"""

import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from harness import BUILD, ROOT, Guest, QemuTestCase, free_port, git_guestfwd, netdev, require

ISO = BUILD / "unipi.iso"
SYSTEM = BUILD / "system.elf"
SYSTEM_MB = BUILD / "system-multiboot.elf"
CSPEC = BUILD / "unipi.cspec.xml"
MEMDISK = Path("/usr/lib/syslinux/memdisk")
BOOT_TIMEOUT = float(os.environ.get("UNIPI_BOOT_TIMEOUT", "90"))


def sub_make(*args, check=False):
    """Runs make in the repository root as a user would, outside any parent make."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(["make", "--no-print-directory", "-s", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=check)


def openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    """A throw-away CA: d/name.pem, d/name.key (RSA: what iPXE verifies; docs/deploy.md)."""
    openssl("req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048",
            "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.pem", "-days", "30",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def make_signer(d, name, ca, ext):
    """A certificate issued by CA `ca` with the given X.509v3 extensions."""
    openssl("req", "-new", "-nodes", "-newkey", "rsa:2048",
            "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr", "-subj", f"/CN={name}")
    Path(f"{d}/{name}.ext").write_text(ext)
    openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/{ca}.pem", "-CAkey", f"{d}/{ca}.key",
            "-CAcreateserial", "-out", f"{d}/{name}.pem", "-days", "30", "-extfile", f"{d}/{name}.ext")


def guest_ip():
    """The static address the cspec's boot parameters give the subject (DHCP: QEMU's .15)."""
    m = re.search(r"--ipv4=([0-9.]+)/", CSPEC.read_text())
    return m.group(1) if m else "192.168.254.15"


def site_forwards():
    """What `make run` adds to the netdev so the guest reaches its default Git
    remote (build/site.git over git:// at 192.168.254.2, a guestfwd running
    git daemon --inetd); nothing when the build uses another remote."""
    if "--remote=git://192.168.254.2/site.git" not in CSPEC.read_text():
        return []
    require(BUILD / "site.git")
    return [git_guestfwd(BUILD)]


class Signatures(unittest.TestCase):
    """make sign / make verify with a CA made here, as iPXE's imgverify would judge them."""

    @classmethod
    def setUpClass(cls):
        require(ISO, SYSTEM)
        cls.tmp = Path(tempfile.mkdtemp(prefix="unipi-sign-"))
        d = cls.tmp
        make_ca(d, "ca")
        make_ca(d, "other-ca")
        make_signer(d, "signer", "ca",
                    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=codeSigning\n")
        make_signer(d, "tls-only", "ca",
                    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        # Copies, so the real artefacts are never modified by the tamper test.
        self.files = []
        for src in (ISO, SYSTEM):
            dst = self.tmp / src.name
            shutil.copyfile(src, dst)
            self.files.append(dst)
        for f in self.files:
            Path(f"{f}.sig").unlink(missing_ok=True)

    def sign(self, signer="signer"):
        d = self.tmp
        return sub_make("sign", f"SIGN_FILES={' '.join(map(str, self.files))}",
                        f"SIGN_CERT={d}/{signer}.pem", f"SIGN_KEY={d}/{signer}.key", f"CA={d}/ca.pem")

    def verify(self, ca="ca"):
        return sub_make("verify", f"SIGN_FILES={' '.join(map(str, self.files))}", f"CA={self.tmp}/{ca}.pem")

    def test_sign_then_verify(self):
        r = self.sign()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for f in self.files:
            sig = Path(f"{f}.sig")
            self.assertTrue(sig.exists(), f"{sig} not written")
            der = sig.read_bytes()
            self.assertEqual(der[0], 0x30, "signature is not DER")
            # Exactly the seed's form: detached (no content), no signed
            # attributes (-noattr), signer and CA certificates included.
            p = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(sig)],
                               capture_output=True, text=True, check=True).stdout
            self.assertIn("eContent: <ABSENT>", p)
            self.assertIn("signedAttrs:\n          <ABSENT>", p)
            self.assertEqual(p.count("subject: CN=ca"), 1, p)
            self.assertEqual(p.count("subject: CN=signer"), 1, p)
        r = self.verify()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for f in self.files:
            self.assertRegex(r.stdout, rf"OK\s+{re.escape(str(f))} \(signer: CN = signer\)")
        # Independent of deploy/verify.sh: plain openssl accepts them too.
        for f in self.files:
            subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", f"{f}.sig",
                            "-content", str(f), "-CAfile", str(self.tmp / "ca.pem"), "-purpose", "any",
                            "-out", "/dev/null"], check=True, capture_output=True)

    def test_one_flipped_byte_fails(self):
        r = self.sign()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        iso = self.files[0]
        data = bytearray(iso.read_bytes())
        data[len(data) // 2] ^= 0x01
        iso.write_bytes(data)
        r = self.verify()
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn(f"FAILED {iso}: signature does not verify", r.stdout)
        self.assertRegex(r.stdout, rf"OK\s+{re.escape(str(self.files[1]))}")

    def test_other_ca_fails(self):
        self.assertEqual(self.sign().returncode, 0)
        r = self.verify(ca="other-ca")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout.count("FAILED"), len(self.files), r.stdout)

    def test_signer_without_code_signing_is_refused(self):
        r = self.sign(signer="tls-only")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("codeSigning", r.stderr)
        for f in self.files:
            self.assertFalse(Path(f"{f}.sig").exists())

    def test_missing_settings_are_explained(self):
        r = sub_make("sign", "SIGN_FILES=/nonexistent")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("SIGN_CERT is not set", r.stderr)


class IpxeScript(unittest.TestCase):
    """make ipxe writes the seed's script for the given settings."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="unipi-ipxe-"))
        self.out = self.tmp / "boot.ipxe"

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def commands(self, *settings):
        r = sub_make("ipxe", f"IPXE_SCRIPT={self.out}", *settings)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        text = self.out.read_text()
        self.assertTrue(text.startswith("#!ipxe\n"))
        return [l for l in text.splitlines() if l.strip() and not l.startswith("#")]

    def test_static_network(self):
        self.assertEqual(self.commands("IPXE_URL=http://192.168.199.2", "NET_IP=192.168.199.4",
                                       "NET_MASK=255.255.255.0", "NET_GATEWAY=192.168.199.1"), [
            "imgtrust --permanent",
            "ifopen net0",
            "set net0/ip 192.168.199.4",
            "set net0/netmask 255.255.255.0",
            "set net0/gateway 192.168.199.1",
            "kernel http://192.168.199.2/memdisk",
            "initrd http://192.168.199.2/unipi.iso",
            "imgverify memdisk http://192.168.199.2/memdisk.sig",
            "imgverify unipi.iso http://192.168.199.2/unipi.iso.sig",
            "imgstat",
            "imgargs memdisk iso raw",
            "boot",
        ])

    def test_dhcp_and_url_with_path(self):
        cmds = self.commands("IPXE_URL=https://boot.example.org/unipi/", "NET_DNS=192.168.1.1")
        self.assertEqual(cmds[:3], ["imgtrust --permanent", "dhcp net0", "set dns 192.168.1.1"])
        self.assertIn("initrd https://boot.example.org/unipi/unipi.iso", cmds)
        self.assertIn("imgverify unipi.iso https://boot.example.org/unipi/unipi.iso.sig", cmds)

    def test_bad_settings_are_refused(self):
        for settings, message in [
            ((), "IPXE_URL is not set"),
            (("IPXE_URL=ftp://x",), "must start with http:// or https://"),
            (("IPXE_URL=http://x", "NET_IP=192.168.1.300"), "not a dotted-quad"),
            (("IPXE_URL=http://x", "NET_GATEWAY=192.168.1.1"), "without NET_IP"),
        ]:
            r = sub_make("ipxe", f"IPXE_SCRIPT={self.out}", *settings)
            self.assertNotEqual(r.returncode, 0, settings)
            self.assertIn(message, r.stderr, settings)
            self.assertFalse(self.out.exists())


class IsoImage(unittest.TestCase):
    """deploy/mkiso.sh and what the ISO holds, without booting."""

    def setUp(self):
        require(ISO, SYSTEM, SYSTEM_MB)
        self.tmp = Path(tempfile.mkdtemp(prefix="unipi-iso-"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_iso_is_reproducible(self):
        env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
        images = []
        for i in range(2):
            out = self.tmp / f"{i}" / "unipi.iso"
            out.parent.mkdir()
            os.utime(ROOT / "deploy" / "grub.cfg")  # fresh mtimes must not leak into the ISO
            subprocess.run([str(ROOT / "deploy" / "mkiso.sh"), str(SYSTEM_MB), str(out)], env=env, check=True)
            images.append(out.read_bytes())
            time.sleep(1.1)
        self.assertEqual(images[0], images[1], "two ISO builds from the same input differ")

    def test_iso_holds_the_multiboot_system(self):
        out = self.tmp / "system.elf"
        subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(ISO), "-extract", "/boot/system.elf", str(out)],
                       check=True, capture_output=True)
        self.assertEqual(out.read_bytes(), SYSTEM_MB.read_bytes())
        self.assertEqual(subprocess.run(["grub-file", "--is-x86-multiboot", str(out)]).returncode, 0,
                         "/boot/system.elf is not a multiboot image")
        # The same system as build/system.elf: only the multiboot checksum differs.
        mb, pvh = SYSTEM_MB.read_bytes(), SYSTEM.read_bytes()
        self.assertEqual(len(mb), len(pvh))
        diff = [i for i in range(len(mb)) if mb[i] != pvh[i]]
        self.assertTrue(diff and diff[-1] - diff[0] < 4, f"bytes differ at {diff[:8]}")
        off = mb.find(struct.pack("<I", 0x1BADB002))
        self.assertTrue(0 <= off < 8192 and off <= diff[0] < off + 12)
        magic, flags, checksum, _header, load_addr, load_end, bss_end, _entry = struct.unpack_from("<8I", mb, off)
        self.assertEqual((magic + flags + checksum) & 0xFFFFFFFF, 0)
        phoff, = struct.unpack_from("<Q", mb, 0x20)
        _t, _f, p_offset, _v, p_paddr, p_filesz, _m, _a = struct.unpack_from("<IIQQQQQQ", mb, phoff)
        self.assertEqual((load_addr, load_end), (p_paddr, p_paddr + p_filesz), "header must cover the image")
        self.assertEqual(p_offset + p_filesz, len(mb))


class IsoBoot(QemuTestCase):
    """The ISO boots in QEMU (pc, TCG) from a CD and through memdisk (`iso raw`,
    as iPXE boots it on muen.sk) and, once the subject serves HTTPS, serves
    the site. One boot per medium; HTTPS is awaited only while QEMU runs."""

    boots = {}
    reference = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require(ISO, SYSTEM, CSPEC)
        if ISO.stat().st_mtime < SYSTEM.stat().st_mtime:
            raise AssertionError(f"{ISO} is older than {SYSTEM}: run 'make iso'")
        cls.index = (ROOT / "htdocs" / "index.html").read_bytes()

    @classmethod
    def boot(cls, medium):
        """Boots once per medium; returns dict(log, https_seconds, body, status)."""
        if medium in cls.boots:
            return cls.boots[medium]
        port = free_port()
        net = netdev([(port, 4433)], guest_ip=guest_ip(), extra=site_forwards())
        if medium == "cdrom":
            g = Guest(ISO, machine="pc", net=net, extra_args=["-vga", "std", "-boot", "order=d"])
        elif medium == "memdisk":
            if not MEMDISK.exists():
                raise AssertionError(f"{MEMDISK} is missing: run 'make deps' (syslinux-common)")
            g = Guest(MEMDISK, machine="pc", net=net,
                      extra_args=["-vga", "std", "-initrd", str(ISO), "-append", "iso raw"])
        else:  # the direct -kernel boot of `make run`, to tell "no server yet" from "broken ISO"
            g = Guest(SYSTEM, machine="microvm", net=net)
        res = {"https_seconds": None, "body": None, "status": None, "git": None}
        with g:
            res["https_seconds"], res["body"] = cls.poll_https(g, port)
            if res["https_seconds"] is not None and site_forwards():
                # The site from the Git remote replaces the built-in archive.
                try:
                    res["git"] = g.wait_for(r"^\r?unipi\| serving [0-9a-f]{40}", timeout=BOOT_TIMEOUT).group(0)
                except AssertionError:
                    pass
            time.sleep(0.2)
            res["log"] = g.log()
            res["status"] = g.proc.poll()
        cls.boots[medium] = res
        if res["https_seconds"] is not None:
            print(f"\n  {medium}: QEMU start -> first HTTPS 200 in {res['https_seconds']:.2f} s",
                  file=sys.stderr)
        return res

    @staticmethod
    def poll_https(g, port):
        """Polls https://127.0.0.1:port/ until a 200 arrives, QEMU exits or the time is up."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline and g.proc.poll() is None:
            r = subprocess.run(["curl", "-k", "-s", "--max-time", "3", "-w", "\n%{http_code}",
                                f"https://127.0.0.1:{port}/"], capture_output=True)
            if r.returncode == 0 and r.stdout.endswith(b"\n200"):
                return g.elapsed(), r.stdout[:-4]
            time.sleep(0.1)
        return None, None

    @staticmethod
    def outcome(res):
        if res["status"] is None:
            return f"no HTTPS 200 within {BOOT_TIMEOUT:.0f} s"
        return f"QEMU exited with status {res['status']} first"

    def assert_booted(self, medium):
        res = self.boot(medium)
        log = res["log"]
        # GRUB ran from the ISO and handed over through multiboot ...
        self.assertIn("grub: loading /boot/system.elf (multiboot)", log)
        self.assertNotRegex(log, r"error: (file|no such|invalid|unsupported|out of memory)", log)
        # ... and the minimal kernel took over (its lines start with "kernel:").
        after = log.split("grub: loading /boot/system.elf (multiboot)", 1)[1]
        self.assertRegex(after, r"(?m)^\r?kernel: ", log)
        self.assertNotIn(res["status"], (35,), f"the kernel reported a failure:\n{log}")

    def assert_serves(self, medium):
        res = self.boot(medium)
        if res["https_seconds"] is None:
            ref = self.boot("kernel")
            if ref["https_seconds"] is not None:
                self.fail(f"booted with -kernel the system serves HTTPS, booted via {medium} it does not:\n"
                          + res["log"][-3000:])
            self.skipTest("the subject in build/system.elf does not serve HTTPS yet: neither the "
                          f"{medium} boot ({self.outcome(res)}) nor a -kernel boot ({self.outcome(ref)}) answered")
        self.assertEqual(res["body"], self.index)
        if site_forwards():
            self.assertIsNotNone(res["git"], "the site was not fetched from the Git remote:\n" + res["log"][-3000:])

    def test_cdrom_boots_kernel(self):
        self.assert_booted("cdrom")

    def test_cdrom_serves_https(self):
        self.assert_serves("cdrom")

    def test_memdisk_boots_kernel(self):
        self.assert_booted("memdisk")

    def test_memdisk_serves_https(self):
        self.assert_serves("memdisk")


# Serves one HTTP request on stdin/stdout from a directory: QEMU starts it for
# every connection the guest opens to the guestfwd address.


@unittest.skipUnless(os.environ.get("UNIPI_REPRO"),
                     "two full builds: set UNIPI_REPRO=1 (HEAD) or UNIPI_REPRO=worktree, or run make repro-check")
class ReproducibleBuild(unittest.TestCase):
    def test_two_builds_are_bit_identical(self):
        args = ["--worktree"] if os.environ["UNIPI_REPRO"] == "worktree" else []
        r = subprocess.run([str(ROOT / "deploy" / "repro-check.sh"), *args], cwd=ROOT,
                           capture_output=True, text=True)
        print(r.stdout, file=sys.stderr)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
