"""IPv6 in QEMU. QEMU's user network (slirp, still restrict=on) is a real
IPv6 router: it answers the subject's router solicitation with an
advertisement of fd00::/64 (`ipv6-net`), from which the subject forms its
address (SLAAC) next to the link-local one; both come from the MAC.

Reaching the guest over IPv6 from the host needs QEMU to forward an IPv6
host port (`hostfwd=tcp:[::1]:PORT-[fd00::10]:4433`). QEMU 7.2 (Debian 12)
refuses such rules ("Bad host address"), so `test_curl_over_ipv6` skips
there, saying so; `unipi-rs/tests/ipv6_in_process.rs` runs curl -6 against
the whole application over a simulated IPv6 link instead.
"""

import ipaddress
import re
import subprocess
import time

import harness as h

CA = h.ROOT / "certs" / "dev" / "ca.pem"
GUEST_IP6 = "fd00::10"
SERVING = r"^unipi\| serving [0-9a-f]{40};"


def qemu_forwards_ipv6():
    """Whether this QEMU accepts an IPv6 host forwarding rule (it exits at
    once with an error when it does not)."""
    probe = subprocess.Popen(
        ["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
         "-netdev", f"user,id=n0,restrict=on,ipv4=on,ipv6=on,ipv6-net=fd00::/64,"
                    f"hostfwd=tcp:[::1]:0-[{GUEST_IP6}]:4433"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        probe.wait(3)
    except subprocess.TimeoutExpired:
        probe.terminate()
        probe.wait(10)
        return True
    finally:
        probe.stderr.close()
    return False


def system(name, bootparams):
    h.require(h.BUILD / "unipi.muen", h.BUILD / "site.git", CA)
    return h.make_system(name, [dict(
        name="unipi", elf=h.BUILD / "unipi.muen", ram=96, nets=["net0"],
        memory={"tls_cert": h.ROOT / "certs/dev/server.pem", "tls_key": h.ROOT / "certs/dev/server.key"},
        bootparams=f"--ipv4=192.168.254.10/24 --remote=git://{h.GIT_ADDR}/site.git {bootparams}".strip(),
        events=[(0, "solo5_exit", "exit"), (1, "net0|notify", "netnotify")])])


def netdev(forwards, forwards6=()):
    """The restricted user netdev with IPv6 on (prefix fd00::/64) and, for a
    QEMU that can, IPv6 forwards from [::1] to GUEST_IP6."""
    extra = ["ipv4=on", "ipv6=on", "ipv6-net=fd00::/64"]
    extra += [f"hostfwd=tcp:[::1]:{hp}-[{GUEST_IP6}]:{gp}" for hp, gp in forwards6]
    return h.netdev(forwards, extra=extra + [h.git_guestfwd()])


def interface_id(log):
    """The modified EUI-64 interface identifier (RFC 4291 appendix A) of the
    MAC the subject logs at boot, as the last 8 bytes of an address."""
    m = re.search(r"net: ((?:[0-9a-f]{2}-){5}[0-9a-f]{2}), ", log)
    if not m:
        raise AssertionError(f"no MAC in the log:\n{log}")
    mac = bytes(int(x, 16) for x in m.group(1).split("-"))
    return bytes([mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]])


class Slaac(h.QemuTestCase):
    """Default boot parameters: router advertisements are accepted."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.port = h.free_port()
        net = netdev([(cls.port, 4433)])
        cls.guest = h.start_guest(system("ipv6-slaac", ""), net, SERVING)
        cls.guest.wait_for(r"from a router advertisement", timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()

    def test_link_local_and_slaac_address_from_the_mac(self):
        log = self.guest.log()
        iid = interface_id(log)
        ll = re.search(r"net: IPv6 (fe80::\S+)/64", log)
        self.assertIsNotNone(ll, log)
        self.assertEqual(ipaddress.IPv6Address(ll.group(1)).packed, bytes([0xfe, 0x80] + [0] * 6) + iid)
        slaac = re.search(r"net: IPv6 (\S+)/64 from a router advertisement", log)
        self.assertIsNotNone(slaac, log)
        self.assertEqual(ipaddress.IPv6Address(slaac.group(1)).packed, bytes([0xfd] + [0] * 7) + iid)
        # slirp's router is fe80::2 (the host address of ipv6-net, link-local).
        self.assertRegex(log, r"net: IPv6 default router fe80::2\b")

    def test_ipv4_still_serves(self):
        r = h.curl(f"https://127.0.0.1:{self.port}/", "--cacert", str(CA), "-o", "/dev/null",
                   "-w", "%{http_code}")
        self.assertEqual(r.stdout, b"200")


class StaticIpv6(h.QemuTestCase):
    """--ipv6=fd00::10/64 with router advertisements refused."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.forwards_ipv6 = qemu_forwards_ipv6()
        cls.port = h.free_port()
        cls.port6, cls.hport6 = h.free_port(), h.free_port()
        forwards6 = [(cls.port6, 4433), (cls.hport6, 80)] if cls.forwards_ipv6 else []
        net = netdev([(cls.port, 4433)], forwards6)
        params = f"--ipv6={GUEST_IP6}/64 --accept-router-advertisements=false"
        cls.guest = h.start_guest(system("ipv6-static", params), net, SERVING)

    @classmethod
    def tearDownClass(cls):
        cls.guest.stop()

    def test_static_address_and_no_slaac(self):
        log = self.guest.log()
        self.assertRegex(log, rf"net: IPv6 fe80::\S+/64, static {re.escape(GUEST_IP6)}/64\n")
        # slirp answers a router solicitation at once (see Slaac): none is
        # sent, and an advertisement would not be heeded.
        time.sleep(3)
        self.assertNotIn("from a router advertisement", self.guest.log())

    def test_curl_over_ipv6(self):
        if not self.forwards_ipv6:
            self.skipTest("this QEMU cannot forward an IPv6 host port to the guest "
                          "(hostfwd=tcp:[::1]:...: Bad host address); see unipi-rs/tests/ipv6_in_process.rs")
        r = h.curl(f"https://[::1]:{self.port6}/", "-6", "--cacert", str(CA), "-o", "/dev/null",
                   "-w", "%{http_code}")
        self.assertEqual(r.stdout, b"200")
        r = h.curl(f"http://[::1]:{self.hport6}/x?y=1", "-6", "-H", "Host: [::1]:8080", "-o", "/dev/null",
                   "-w", "%{http_code} %{redirect_url}")
        self.assertEqual(r.stdout, b"301 https://[::1]:4433/x?y=1")
