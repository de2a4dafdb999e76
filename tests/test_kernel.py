"""The minimal kernel hosts Muen subjects the way Muen does (docs/kernel.md):
boot log, two subjects at once, and what happens to subjects that fault,
halt, raise unknown events or read the TSC."""

import re
import unittest

import harness as h


def subject(name, **kw):
    return dict(name=name, elf=h.SUBJECTS / f"{kw.pop('binary', name)}.muen", **kw)


class BootLog(h.QemuTestCase):
    IPV4 = "192.168.254.10/24"

    def boot_unipi_and_hello(self, machine):
        h.require(h.BUILD / "unipi.muen")
        system = h.make_system(f"boot-{machine}", [
            dict(name="unipi", elf=h.BUILD / "unipi.muen", ram=64,
                 bootparams=f"--ipv4={self.IPV4} --ipv4-gateway=192.168.254.1"),
            subject("hello"),
        ])
        with h.Guest(system, machine=machine, timeout=60) as g:
            g.wait_for(r"^kernel: subject hello exited via event solo5_exit \(0\)$")
            g.wait_for(r"^unipi\| clock: Muen time_info")
            log = g.log()
        # Kernel banner first, then each subject's banner and its view of sinfo.
        self.assertRegex(log.splitlines()[0], r"^kernel: unipi-rs minimal kernel \S+, boot=PVH, \d+ MiB RAM, TSC [\d.]+ MHz")
        for name in ("unipi", "hello"):
            self.assertRegex(log, rf"(?m)^{name}\| unipi-rs subject runtime \S+ on Muen \(sinfo V04\)$")
            self.assertRegex(log, rf"(?m)^{name}\| subject '{name}', TSC [1-9]\d* kHz, \d+ resources:$")
            for region, kind in [("text", "SubjectBinary"), ("ram", "Subject"), ("debuglog", "SubjectChannel"),
                                 ("sinfo", "SubjectInfo"), ("scheduling_info", "SubjectSchedulingInfo"),
                                 ("boot_info", "SubjectSolo5BootInfo"), ("time_info", "SubjectChannel")]:
                self.assertRegex(log, rf"(?m)^{name}\|   memory  {region} +0x[0-9a-f]+-0x[0-9a-f]+ r[w-][x-] {kind}\b")
            self.assertRegex(log, rf"(?m)^{name}\|   event   solo5_exit +0$")
            self.assertRegex(log, rf"(?m)^{name}\| clock: Muen time_info, TSC \d+ Hz, wall clock 20\d\d-\d\d-\d\dT")
        self.assertIn(f"unipi| command line: '--ipv4={self.IPV4} --ipv4-gateway=192.168.254.1'", log)
        # The kernel lists each subject's regions before starting them.
        self.assertRegex(log, r"(?m)^kernel: subject 0 unipi: entry 0x200000 stack 0x[0-9a-f]+; regions: boot_info 0x1000-0x1fff R--")
        # The subject's log comes after the kernel's banner.
        self.assertLess(log.index("kernel: starting 2 subject(s)"), log.index("unipi| unipi-rs subject runtime"))

    def test_boot_log_microvm(self):
        self.boot_unipi_and_hello("microvm")

    def test_boot_log_pc(self):
        self.boot_unipi_and_hello("pc")

    def test_two_subjects_exit_cleanly(self):
        system = h.make_system("two-clean", [subject("hello"), subject("hello2", binary="hello")])
        with h.Guest(system, timeout=60) as g:
            status = g.wait_exit()
            log = g.log()
        self.assertEqual(status, h.EXIT_ALL_EXITED, log)
        self.assertIn("hello| hello from subject 'hello'", log)
        self.assertIn("hello2| hello from subject 'hello2'", log)
        self.assertEqual(len(re.findall(r"(?m)^kernel: summary: hello2?: exited via event solo5_exit \(0\)", log)), 2, log)


class Misbehaving(h.QemuTestCase):
    """Each misbehaving subject runs next to a well-behaved one, which must
    be unaffected."""

    def run_pair(self, bad, timeout=60):
        system = h.make_system(f"bad-{bad}", [subject(bad), subject("hello")])
        with h.Guest(system, timeout=timeout) as g:
            status = g.wait_exit()
            log = g.log()
        self.assertIn("hello| hello from subject 'hello'", log, "the other subject keeps running")
        self.assertRegex(log, r"(?m)^kernel: summary: hello: exited via event solo5_exit \(0\)")
        return status, log

    def test_unmapped_access_is_delivered_to_the_subject_idt(self):
        status, log = self.run_pair("fault")
        # The kernel reflects the #PF through the subject's IDT, as Muen does,
        # and the subject's handler reports it and exits through its event.
        self.assertRegex(log, r"(?m)^kernel: fault: exception 14 \(#PF\) rip=0x[0-9a-f]+ addr=0x4000deadb000 err=0x[0-9a-f]+ -> subject IDT$")
        self.assertRegex(log, r"(?m)^fault\| unipi: FATAL: exception 14 \(#PF page fault\) at rip=0x[0-9a-f]+ err=0x[0-9a-f]+ cr2=0x4000deadb000")
        self.assertRegex(log, r"(?m)^kernel: subject fault exited via event solo5_exit \(0\)$")
        self.assertEqual(status, h.EXIT_ALL_EXITED)

    def test_undeliverable_fault_stops_the_subject_with_a_report(self):
        status, log = self.run_pair("fault-noidt")
        self.assertEqual(status, h.EXIT_FAULTED, log)
        report = log[log.index("fault-noidt| loading an empty IDT"):]
        # The report names the subject, vector, RIP, faulting address and regions.
        self.assertRegex(report, r"fault-noidt")
        self.assertRegex(report, r"(?i)vector 14|#PF")
        self.assertRegex(report, r"rip=0x[0-9a-f]+")
        self.assertRegex(report, r"0x4000deadb000")
        self.assertRegex(report, r"text 0x200000-0x[0-9a-f]+ R-X")
        self.assertRegex(report, r"ram 0x[0-9a-f]+-0x[0-9a-f]+ RW-")
        self.assertRegex(log, r"(?m)^kernel: summary: fault-noidt: stopped")
        self.assertNotIn("survived a fault", log)

    def test_hlt_stops_the_subject_for_good(self):
        status, log = self.run_pair("hlt")
        self.assertEqual(status, h.EXIT_HALTED, log)
        self.assertIn("hlt| executing hlt", log)
        self.assertRegex(log, r"(?m)^kernel: summary: hlt: halted")
        self.assertNotIn("hlt returned", log)

    def test_unknown_event_is_ignored(self):
        status, log = self.run_pair("badevent")
        self.assertEqual(status, h.EXIT_ALL_EXITED, log)
        self.assertRegex(log, r"(?m)^kernel: badevent: spurious event 42 ignored")
        self.assertIn("badevent| TEST PASS: still running after unknown event 42", log)

    def test_rdtsc_returns_the_minor_frame_end(self):
        status, log = self.run_pair("rdtsc")
        self.assertEqual(status, h.EXIT_ALL_EXITED, log)
        self.assertIn("rdtsc| TEST PASS: rdtsc returns the minor frame end", log)
        m = re.search(r"rdtsc\| rdtsc: (0x[0-9a-f]+) (0x[0-9a-f]+), frame 0x[0-9a-f]+\.\.(0x[0-9a-f]+)", log)
        self.assertIsNotNone(m, log)
        self.assertEqual(m.group(1), m.group(2))
        self.assertEqual(m.group(1), m.group(3))


if __name__ == "__main__":
    unittest.main()
