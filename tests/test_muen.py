"""Muen integration (docs/muen.md): the component spec and the policy
fragments for both Muen toolchain generations against Muen's own schemas,
the fragments against what Muen's mirage-solo5 template needs (its config
variables and physical resources, as facts from Muen's sources), the merge
into that template, and the unipi subject on the minimal kernel with both
sinfo layouts.

Run from the repository root after `make all subjects` (what `make test-e2e`
does). Environment (exported by make; relative paths are relative to the
repository root):
  MUEN_SCHEMA_ddece096   Muen's XSD files, generation ddece096 (default ../shared/muen-schema)
  MUEN_SCHEMA_eb7b089b   the same, generation eb7b089b (default ../shared/muen-schema-b7d6da0e)
  MUEN_TEMPLATE          optional: Muen's mirage-solo5.xml, to check the facts below against it
Where a schema directory is missing its checks are skipped, not failed.
"""

import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import harness as h
from test_deploy import sub_make

CSPEC = h.BUILD / "unipi.cspec.xml"
POLICY_TOOL = h.ROOT / "deploy" / "muen-policy.py"
SCHEMA_CHECK = h.ROOT / "deploy" / "schema-check.sh"
GENERATIONS = ("ddece096", "eb7b089b")
DEFAULT_SCHEMA = {"ddece096": "../shared/muen-schema", "eb7b089b": "../shared/muen-schema-b7d6da0e"}


def schema_dir(generation):
    d = Path(os.environ.get(f"MUEN_SCHEMA_{generation}") or DEFAULT_SCHEMA[generation])
    return d if d.is_absolute() else (h.ROOT / d).resolve()


def have_schema(generation):
    return (schema_dir(generation) / "component.xsd").exists()


def xmllint(schema, path):
    if shutil.which("xmllint") is None:
        raise AssertionError("xmllint is missing: run 'make deps' (libxml2-utils)")
    return subprocess.run(["xmllint", "--noout", "--schema", str(schema), str(path)], capture_output=True, text=True)


def tool(*args, check=True):
    return subprocess.run([sys.executable, str(POLICY_TOOL), *map(str, args)], capture_output=True, text=True,
                          check=check)


# --- Facts from Muen's sources --------------------------------------------------
# Template: codelabs-ch/muen 516720ecbca67ae13bc9fd4ae4b05a6a123de342
# (2026-01-15, the last commit with policy/): policy/xml/mirageos/mirage-solo5.xml
# and the files it includes. Compose script: policy/xml/mirageos/compose.py there,
# identical to scripts/solo5-policy-compose.py of muen-tools ddece096 and b7d6da0e.
# mucfgmerge: muen-tools ddece096 mucfgmerge/src/merge.adb and
# libmucfgcheck/src/mucfgcheck-config.adb (Conditional_Config_Var_Refs).

TEMPLATE_SUBJECT, TEMPLATE_MONITOR = "unikernel", "unikernel_sm"

# Every use of a config variable: (variable, construct, file, place, count).
# construct: "if" (<if variable=…>), "$" (attribute substitution), "expr"
# (<variable name=…> inside an <expression>). place: the template section or
# subject the use ends up in once mucfgmerge has merged the includes.
TEMPLATE_USES = [
    ("unikernel_resettable", "if", "mirage-solo5.xml", "memory", 1),
    ("unikernel_resettable", "if", "mirage-solo5.xml", "events", 1),
    ("unikernel_resettable", "if", "mirage-solo5.xml", "subject unikernel", 4),
    ("dbgserver_console_forwarding", "if", "mirage-solo5.xml", "subject dbgserver", 1),
    ("dbgserver_console_forwarding", "if", "mirage-solo5.xml", "subject nic_linux", 3),
    ("dbgserver_console_forwarding", "if", "mirage-solo5.xml", "subject storage_linux", 3),
    ("logchannel_size", "$", "mirage-solo5.xml", "channels", 2),
    ("dbgserver_console_forwarding", "if", "common_channels.xml", "channels", 1),
    ("pciconf_emulation_enabled", "if", "common_channels.xml", "channels", 1),
    ("dbgserver_sink_shmem", "if", "common_channels.xml", "channels", 1),
    ("logchannel_size", "$", "common_channels.xml", "channels", 8),
    ("pciconf_emulation_enabled", "if", "subject_nic_sm.xml", "subject nic_sm", 1),
    ("pciconf_emulation_enabled", "if", "subject_storage_sm.xml", "subject storage_sm", 1),
    ("dbgserver_sink_serial", "if", "subject_dbgserver_common.xml", "subject dbgserver", 1),
    ("hsuart_supported", "if", "subject_dbgserver_common.xml", "subject dbgserver", 2),
    ("dbgserver_sink_xhcidbg", "if", "subject_dbgserver_common.xml", "subject dbgserver", 1),
    ("dbgserver_sink_pcspkr", "if", "subject_dbgserver_common.xml", "subject dbgserver", 1),
    ("ahci_drv_enabled", "expr", "common_expressions.xml", "expressions", 1),
    ("ahci_supported", "expr", "common_expressions.xml", "expressions", 1),
    ("dbgserver_serial_enabled", "expr", "common_expressions.xml", "expressions", 1),
    ("serial_supported", "expr", "common_expressions.xml", "expressions", 1),
    ("xhcidbg_enabled", "expr", "common_expressions.xml", "expressions", 1),
    ("xhcidbg_supported", "expr", "common_expressions.xml", "expressions", 1),
]
# Where the variables are defined, other than by the fragments.
TEMPLATE_CONFIG = {  # mirage-solo5.xml <config>: (type, value)
    "xhcidbg_enabled": ("boolean", "false"), "dbgserver_console_forwarding": ("boolean", "false"),
    "dbgserver_serial_enabled": ("boolean", "true"), "dbgserver_sink_pcspkr": ("boolean", "false"),
    "dbgserver_sink_shmem": ("boolean", "false"), "ahci_drv_enabled": ("boolean", "false"),
    "pciconf_emulation_enabled": ("boolean", "false"), "logchannel_size": ("string", "16#0002_0000#"),
}
TEMPLATE_EXPRESSIONS = {"ahci_drv_active", "dbgserver_sink_serial", "dbgserver_sink_xhcidbg"}  # common_expressions.xml
PLATFORM_CONFIG = {"ahci_supported", "serial_supported", "hsuart_supported", "xhcidbg_supported"}  # policy/platform/*.xml
SYSTEM_CONFIG = {"architecture", "system", "hardware", "platform"}  # bob-muen classes/muen_policy_src.yaml
# Solo5's compose script (copy_reset_variable) defines <template subject>_resettable
# from the component's <boolean name="resettable">; nothing else defines it.
COMPOSE_DEFINES = {"unikernel_resettable": "resettable"}

# Physical resources the template declares, unconditionally ...
TEMPLATE_MEMORY = {"control_unikernel_sm", "status_unikernel_sm", "nic_linux|ram", "nic_linux|lowmem",
                   "storage_linux|ram", "storage_linux|lowmem", "initramfs", "crash_audit"}
TEMPLATE_CHANNELS = {"time_info", "debuglog_subject1", "debuglog_subject2", "debuglog_subject3",
                     "debuglog_subject4", "debuglog_subject5", "debuglog_subject6", "debuglog_subject7",
                     "debuglog_controller"}
TEMPLATE_EVENTS = {"resume_unikernel_1": "switch", "trap_to_sm_3": "switch", "system_reboot": "kernel",
                   "system_poweroff": "kernel", "system_panic": "kernel", "subject_sleep": "kernel",
                   "subject_yield": "kernel"}
TEMPLATE_SUBJECTS = {"vt", "nic_sm", "storage_sm", "time", "nic_sl", "ps2", "controller", "dbgserver",
                     "nic_linux", "storage_linux", TEMPLATE_MONITOR, TEMPLATE_SUBJECT}
# ... and only where unikernel_resettable is true.
TEMPLATE_MEMORY_IF_RESETTABLE = {"control_unikernel", "status_unikernel"}
TEMPLATE_EVENTS_IF_RESETTABLE = {"unikernel_reset": "self"}
# Components the template's other subjects instantiate (the Muen build joins their
# specs); sm is the subject monitor.
BUILD_COMPONENTS = {"sm", "dbgserver", "time", "vt", "ps2_drv", "controller", "sl", "linux"}
# What the template's unikernel_sm maps into component sm (the monitor's requirements).
SM_LOGICALS = {"time_info", "debuglog", "resume_subject", "handle_subject_trap", "status", "control"}
# The subject nic_linux: where its own channels end (testchannel_3, 1 MiB at
# 16#000e_0100_2000#), below the compose script's base; its first <bootparams>.
NIC_CHANNELS_END = 0xE_0110_2000
NIC_BOOTPARAMS = "console=hvc console=ttyS0 hostname=lnx1"


def template_model():
    """A stand-in for mirage-solo5.xml built from the facts above: its config,
    the declarations and conditionals (as empty <if> elements in their
    places), and the subjects the fragments touch. Not Muen's file."""
    root = ET.Element("system")
    config = ET.SubElement(root, "config")
    for name, (kind, value) in sorted(TEMPLATE_CONFIG.items(), key=lambda kv: kv[1][0]):  # booleans first
        ET.SubElement(config, kind, name=name, value=value)
    places = {"memory": ET.SubElement(root, "memory"), "events": ET.SubElement(root, "events"),
              "channels": ET.SubElement(root, "channels")}
    ET.SubElement(root, "components")
    subjects = ET.SubElement(root, "subjects")
    for name in sorted(TEMPLATE_MEMORY):
        ET.SubElement(places["memory"], "memory", name=name, size="16#1000#", caching="WB")
    for name, mode in sorted(TEMPLATE_EVENTS.items()):
        ET.SubElement(places["events"], "event", name=name, mode=mode)
    for name in sorted(TEMPLATE_CHANNELS):
        ET.SubElement(places["channels"], "channel", name=name, size="16#1000#")
    for name in sorted(TEMPLATE_SUBJECTS):
        s = ET.SubElement(subjects, "subject", name=name)
        places[f"subject {name}"] = s
        if name == "nic_linux":
            ET.SubElement(s, "bootparams").text = NIC_BOOTPARAMS
            ET.SubElement(s, "events")
            ET.SubElement(ET.SubElement(s, "channels"), "writer", logical="virtual_console",
                          physical="virtual_console_1", virtualAddress="16#4000#")
            ET.SubElement(s, "component", ref="linux")
    for var, construct, _file, place, count in TEMPLATE_USES:
        if construct == "if" and place in places:
            for _ in range(count):
                ET.SubElement(places[place], "if", variable=var, value="true")
    return ET.ElementTree(root)


def plan_model():
    """A scheduling plan shaped like Muen's mirage-solo5 plans (partitions of
    subject groups), from the facts: the unikernel shares a group with its monitor."""
    root = ET.Element("scheduling", tickRate="1000")
    parts = ET.SubElement(root, "partitions")
    for part, members in (("nic_linux", ["nic_linux", "nic_sm", "nic_sl"]),
                          (TEMPLATE_SUBJECT, [TEMPLATE_SUBJECT, TEMPLATE_MONITOR])):
        group = ET.SubElement(ET.SubElement(parts, "partition", name=part), "group")
        for m in members:
            ET.SubElement(group, "subject", name=m)
    return ET.ElementTree(root)


def conditional_errors(policy, defined_elsewhere):
    """mucfgmerge's Conditional_Config_Var_Refs on a merged policy: every <if>
    and <case> (here and, from the facts, in the included files) must name a
    variable of <config>, an expression or the platform/system config."""
    defined = {v.get("name") for v in policy.getroot().iterfind("config/*")} | set(defined_elsewhere)
    refs = [e.get("variable") for e in policy.getroot().iter() if e.tag in ("if", "case")]
    refs += [var for var, construct, file, _p, n in TEMPLATE_USES
             if construct == "if" and file != "mirage-solo5.xml" for _ in range(n)]
    return [f"Config variable '{v}' referenced by conditional not defined" for v in refs if v not in defined]


class Generations(unittest.TestCase):
    """make schema-check: both generations' cspec and fragments against their own schema."""

    def setUp(self):
        h.require(CSPEC, h.TOOLS)

    def test_make_schema_check_covers_both_generations(self):
        env = [f"MUEN_SCHEMA_{g}={schema_dir(g)}" for g in GENERATIONS]
        r = sub_make("schema-check", *env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for g in GENERATIONS:
            with self.subTest(generation=g):
                if not have_schema(g):
                    self.assertIn(f"schema-check: SKIPPED (generation {g}): Muen's schema is not at", r.stdout)
                    continue
                self.assertIn(f"build/schema-check/{g}/unipi.cspec.xml validates (generation {g})", r.stdout)
                for section in ("config", "memory", "channels", "components", "subjects"):
                    self.assertIn(f"build/schema-check/{g}/muen-policy.xml <{section}> validates (system_src) "
                                  f"(generation {g})", r.stdout)
        if not all(have_schema(g) for g in GENERATIONS):
            self.skipTest("Muen's schema (reference data outside the project) is missing for "
                          + ", ".join(f"{g} ({schema_dir(g)})" for g in GENERATIONS if not have_schema(g)))

    def test_each_generation_rejects_the_other_layout(self):
        # The variable matters: each cspec fails against the other generation's schema.
        if not all(have_schema(g) for g in GENERATIONS):
            self.skipTest("needs the schema of both generations")
        r = sub_make(*(f"build/schema-check/{g}/unipi.cspec.xml" for g in GENERATIONS))
        self.assertEqual(r.returncode, 0, r.stderr)
        old, new = (h.BUILD / "schema-check" / g / "unipi.cspec.xml" for g in GENERATIONS)
        r = xmllint(schema_dir("eb7b089b") / "component.xsd", old)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Element 'vmx': This element is not expected. Expected is one of ( x86_64, arm64 )", r.stderr)
        r = xmllint(schema_dir("ddece096") / "component.xsd", new)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Element 'x86_64': This element is not expected", r.stderr)

    def test_schema_rejects_a_broken_cspec(self):
        # The check has teeth: Muen numbers need 4-digit groups.
        g = next((g for g in GENERATIONS if have_schema(g)), None)
        if g is None:
            self.skipTest("no Muen schema")
        with tempfile.TemporaryDirectory(prefix="unipi-cspec-") as d:
            broken = Path(d) / "broken.xml"
            broken.write_text(re.sub(r"<rdi>[^<]*</rdi>", "<rdi>16#1_000#</rdi>", CSPEC.read_text()))
            r = subprocess.run([str(SCHEMA_CHECK), "--generation", g, str(schema_dir(g)), str(broken)],
                               capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("does not validate", r.stderr)

    def test_missing_schema_says_skipped(self):
        r = subprocess.run([str(SCHEMA_CHECK), "--generation", "eb7b089b", "/nonexistent/schema", str(CSPEC)],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("schema-check: SKIPPED (generation eb7b089b): Muen's schema is not "
                                            "at /nonexistent/schema"), r.stdout)
        self.assertIn("MUEN_SCHEMA_eb7b089b", r.stdout)

    def test_one_variable_selects_the_generation(self):
        with tempfile.TemporaryDirectory(prefix="unipi-gen-") as d:
            r = sub_make(f"BUILD={d}", "MUEN_GENERATION=eb7b089b", "muen-policy")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            cspec = ET.parse(Path(d) / "unipi.cspec.xml").getroot()
            self.assertEqual([e.tag for e in cspec.find("requires/vcpu")], ["x86_64"])
            self.assertEqual([e.tag for e in cspec.find("requires/vcpu/x86_64")], ["vmx", "msrs", "registers"])
            policy = Path(d) / "muen-policy.xml"
            self.assertIn("generation\n     eb7b089b", policy.read_text())
            embedded = ET.parse(policy).getroot().find("components/component")
            self.assertIsNotNone(embedded.find("requires/vcpu/x86_64/registers/gpr/rip"))
            # Unknown generations are refused before anything is built.
            r = sub_make(f"BUILD={d}", "MUEN_GENERATION=b7d6da0e", "muen-policy")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("MUEN_GENERATION=b7d6da0e is not a Muen toolchain generation", r.stderr)

    def test_fragments_refuse_a_cspec_of_the_other_generation(self):
        with tempfile.TemporaryDirectory(prefix="unipi-gen-") as d:
            r = tool("fragments", "--generation", "eb7b089b", CSPEC, Path(d) / "p.xml", check=False)
            if ET.parse(CSPEC).getroot().find("requires/vcpu/x86_64") is not None:
                self.skipTest("build/unipi.cspec.xml is of generation eb7b089b")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("generate it with `muen-tools cspec --generation eb7b089b`", r.stderr)


class TemplateReferences(unittest.TestCase):
    """The fragments against Muen's mirage-solo5 template, from the facts
    above: the mucfgmerge class of error found here, not on a user's build host."""

    @classmethod
    def setUpClass(cls):
        h.require(CSPEC)
        cls.tmp = Path(tempfile.mkdtemp(prefix="unipi-muen-"))
        cls.policy = cls.tmp / "muen-policy.xml"
        tool("fragments", CSPEC, cls.policy, "site=site.tar", "tls_cert=fullchain.pem", "tls_key=privkey.pem")
        cls.frag = ET.parse(cls.policy).getroot()
        cls.comp = ET.parse(CSPEC).getroot()
        cls.name = cls.comp.get("name")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def merge(self, fragments):
        """Runs `muen-policy.py system` on the template model; returns (policy, plan) trees."""
        d = Path(tempfile.mkdtemp(dir=self.tmp))
        template_model().write(d / "mirage-solo5.xml")
        plan_model().write(d / "mirage-solo5-qemu-kvm.xml")
        r = tool("system", fragments, d / "mirage-solo5.xml", d / "out", d / "mirage-solo5-qemu-kvm.xml")
        self.assertIn("the system policy with subjects", r.stdout)
        return ET.parse(d / "out" / "mirage-solo5.xml"), ET.parse(d / "out" / "scheduling" / "mirage-solo5-qemu-kvm.xml")

    def test_every_variable_the_template_uses_is_defined(self):
        frag_config = {v.get("name"): v.get("value") for v in self.frag.iterfind("config/*")}
        defined = set(TEMPLATE_CONFIG) | TEMPLATE_EXPRESSIONS | PLATFORM_CONFIG | SYSTEM_CONFIG
        for var in {u[0] for u in TEMPLATE_USES}:
            with self.subTest(variable=var):
                self.assertTrue(var in defined or var in frag_config, f"{var} is defined nowhere")
        # What the compose script would define, the fragments define, from the component's own setting.
        for var, comp_var in COMPOSE_DEFINES.items():
            own = self.comp.find(f"config/boolean[@name='{comp_var}']").get("value")
            self.assertEqual(frag_config.get(var), own, f"<config> must define {var} = the cspec's {comp_var}")
        # ... and nothing the template defines already (mucfgmerge: names must be unique).
        self.assertFalse(set(frag_config) & defined, frag_config)

    def test_merged_policy_passes_mucfgmerge_conditional_check(self):
        policy, _ = self.merge(self.policy)
        self.assertEqual(conditional_errors(policy, TEMPLATE_EXPRESSIONS | PLATFORM_CONFIG | SYSTEM_CONFIG), [])
        # The variable sits among the booleans (Muen's config schema: booleans, integers, strings).
        tags = [(e.tag, e.get("name")) for e in policy.getroot().find("config")]
        self.assertIn(("boolean", "unikernel_resettable"), tags)
        self.assertEqual([t for t, _ in tags], sorted((t for t, _ in tags), key=["boolean", "integer", "string"].index))

    def test_without_the_config_section_mucfgmerge_fails_as_reported(self):
        # The failure seen on a Muen build host (docs/muen.md), reproduced: two
        # <if unikernel_resettable> outside the replaced subjects, none defined.
        frag = copy.deepcopy(self.frag)
        for var in list(frag.find("config")):
            frag.find("config").remove(var)
        stripped = self.tmp / "no-config.xml"
        ET.ElementTree(frag).write(stripped)
        policy, _ = self.merge(stripped)
        self.assertEqual(conditional_errors(policy, TEMPLATE_EXPRESSIONS | PLATFORM_CONFIG | SYSTEM_CONFIG),
                         ["Config variable 'unikernel_resettable' referenced by conditional not defined"] * 2)

    def test_every_physical_reference_resolves(self):
        f = self.frag
        memory = {m.get("name") for m in f.iterfind("memory/memory")}
        channels = {c.get("name") for c in f.iterfind("channels/channel")}
        subjects = {s.get("name") for s in f.iterfind("subjects/subject")}
        components = {c.get("name") for c in f.iterfind("components/component")}
        self.assertEqual(subjects, {self.name, f"{self.name}_sm"})
        # A component map names a physical memory region, channel or event.
        known_physical = memory | channels | TEMPLATE_MEMORY | TEMPLATE_CHANNELS | set(TEMPLATE_EVENTS)
        known_subjects = subjects | (TEMPLATE_SUBJECTS - {TEMPLATE_SUBJECT, TEMPLATE_MONITOR})
        for s in f.iterfind("subjects/subject"):
            for m in s.iterfind("component/map"):
                self.assertIn(m.get("physical"), known_physical, f"{s.get('name')}: map {m.get('logical')}")
            for e in s.iterfind("events/source/group/*"):
                self.assertIn(e.get("physical"), TEMPLATE_EVENTS, f"{s.get('name')}: source event")
                if TEMPLATE_EVENTS[e.get("physical")] == "kernel":
                    # A kernel event carries the matching action.
                    self.assertEqual([a.tag for a in e], [e.get("physical")])
            for e in s.iterfind("events/target/event"):
                self.assertEqual(TEMPLATE_EVENTS.get(e.get("physical")), "switch", f"{s.get('name')}: target")
            for e in s.iterfind("monitor/*"):
                self.assertIn(e.get("subject"), known_subjects)
            self.assertIn(s.find("component").get("ref"), components | BUILD_COMPONENTS)
        # Nothing uses what exists only in a resettable system.
        text = self.policy.read_text()
        for name in TEMPLATE_MEMORY_IF_RESETTABLE | set(TEMPLATE_EVENTS_IF_RESETTABLE):
            self.assertNotIn(f'"{name}"', text)
        # The monitor gets what component sm requires, as the template's unikernel_sm did.
        sm = f.find(f"subjects/subject[@name='{self.name}_sm']")
        self.assertEqual({m.get("logical") for m in sm.iterfind("component/map")}, SM_LOGICALS)
        # The subject maps every logical resource the component requires, with matching sizes.
        subject = f.find(f"subjects/subject[@name='{self.name}']")
        maps = {m.get("logical"): m.get("physical") for m in subject.iterfind("component/map")}
        wanted = {m.get("logical"): m.get("size") for m in self.comp.iterfind("requires/memory/memory")}
        wanted |= {c.get("logical"): c.get("size") for c in self.comp.iterfind("requires/channels/*")}
        self.assertEqual(set(maps), set(wanted) | {"time_info", "debuglog"})
        sizes = {m.get("name"): m.get("size") for m in f.iterfind("memory/memory")}
        sizes |= {c.get("name"): c.get("size") for c in f.iterfind("channels/channel")}
        for logical, size in wanted.items():
            self.assertEqual(sizes[maps[logical]], size, logical)
        self.assertEqual(subject.findtext("bootparams"),
                         self.comp.find("config/string[@name='bootparams']").get("value"))

    def test_merge_replaces_the_template_subjects_and_bridges_the_channels(self):
        policy, plan = self.merge(self.policy)
        root = policy.getroot()
        names = [s.get("name") for s in root.iterfind("subjects/subject")]
        self.assertNotIn(TEMPLATE_SUBJECT, names)
        self.assertNotIn(TEMPLATE_MONITOR, names)
        self.assertEqual(Counter(names)[self.name], 1)
        self.assertIn(f"{self.name}_sm", names)
        self.assertIsNotNone(root.find(f"components/component[@name='{self.name}']"))
        # nic_linux: the compose script's boot parameter and every channel, roles flipped.
        nic = root.find("subjects/subject[@name='nic_linux']")
        self.assertEqual(nic.findtext("bootparams"), f"{NIC_BOOTPARAMS} unikernel_iface=net0")
        declared = {c.get("name") for c in root.iterfind("channels/channel")}
        mine = {m.get("logical"): m.get("physical")
                for m in root.iterfind(f"subjects/subject[@name='{self.name}']/component/map")}
        roles = {c.get("logical"): c.tag for c in self.comp.iterfind("requires/channels/*")}
        for ch in nic.find("channels"):
            if ch.get("physical") == "virtual_console_1":
                continue
            self.assertIn(ch.get("physical"), declared)
            self.assertEqual(mine[ch.get("logical")], ch.get("physical"))
            self.assertEqual({ch.tag, roles[ch.get("logical")]}, {"reader", "writer"})
            self.assertGreaterEqual(int(ch.get("virtualAddress")[3:-1].replace("_", ""), 16), NIC_CHANNELS_END)
        self.assertEqual(len(nic.find("channels")) - 1, len(roles))
        # The scheduling plan runs our subjects where the template's ran.
        group = [s.get("name") for s in plan.getroot().iterfind(".//group/subject")]
        self.assertIn(self.name, group)
        self.assertIn(f"{self.name}_sm", group)
        self.assertNotIn(TEMPLATE_SUBJECT, group)

    def test_cspec_has_what_docs_muen_md_wires(self):
        x = CSPEC.read_text()
        for needle in ['<library ref="libmudebuglog"/>', '<library ref="libmutime"/>',
                       '<reader logical="net0|in"', '<writer logical="net0|out"',
                       '<memory logical="site"', '<memory logical="tls_cert"', '<memory logical="tls_key"',
                       '<boolean name="resettable" value="false"/>',
                       '<string name="bootparams" value="', 'type="subject_solo5_boot_info"']:
            self.assertIn(needle, x)

    def test_merge_refuses_a_template_without_the_unikernel(self):
        d = Path(tempfile.mkdtemp(dir=self.tmp))
        t = template_model()
        subjects = t.getroot().find("subjects")
        subjects.remove(subjects.find(f"subject[@name='{TEMPLATE_SUBJECT}']"))
        t.write(d / "other.xml")
        r = tool("system", self.policy, d / "other.xml", d / "out", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("has no subject 'unikernel' to replace", r.stderr)


@unittest.skipUnless(os.environ.get("MUEN_TEMPLATE"),
                     "checks the facts against Muen's own template: set MUEN_TEMPLATE=…/mirage-solo5.xml")
class RealTemplate(unittest.TestCase):
    """The facts above against a copy of Muen's template (not in this
    repository), and the merge on it: MUEN_TEMPLATE names mirage-solo5.xml of
    a Muen policy tree; its includes are looked up next to it and one level up."""

    @classmethod
    def setUpClass(cls):
        h.require(CSPEC)
        cls.template = Path(os.environ["MUEN_TEMPLATE"]).resolve()
        cls.dirs = [cls.template.parent, cls.template.parent.parent]

    def find(self, href):
        for d in self.dirs:
            if (d / href).exists():
                return d / href
        raise AssertionError(f"include {href} not found in {self.dirs}")

    def walk(self, elem, file, uses, defines):
        """Collects (variable, construct, file) uses and defined names, following <include>."""
        for e in elem.iter():
            # scheduling_plans.xml is written by the Muen build (a copy of the plan).
            if e.tag == "include" and e.get("href") not in (None, "scheduling_plans.xml"):
                path = self.find(e.get("href"))
                self.walk(ET.parse(path).getroot(), path.name, uses, defines)
            elif e.tag in ("if", "case"):
                uses[(e.get("variable"), "if", file)] += 1
            elif e.tag == "expression":
                defines.add(e.get("name"))
                for v in e.iter("variable"):
                    uses[(v.get("name"), "expr", file)] += 1
            for value in e.attrib.values():
                m = re.fullmatch(r"\$([A-Za-z_]\w*)", value)
                if m:
                    uses[(m.group(1), "$", file)] += 1

    def test_facts_match_the_template(self):
        uses, defines = Counter(), set()
        root = ET.parse(self.template).getroot()
        self.walk(root, "mirage-solo5.xml", uses, defines)
        facts = Counter()
        for var, construct, file, _place, n in TEMPLATE_USES:
            facts[(var, construct, file)] += n
        self.assertEqual(dict(uses), dict(facts))
        self.assertEqual(defines, TEMPLATE_EXPRESSIONS)
        config = {v.get("name"): (v.tag, v.get("value")) for v in root.iterfind("config/*")}
        self.assertEqual(config, TEMPLATE_CONFIG)

    def test_merge_into_the_template(self):
        with tempfile.TemporaryDirectory(prefix="unipi-muen-") as d:
            policy = Path(d) / "muen-policy.xml"
            tool("fragments", CSPEC, policy)
            r = tool("system", policy, self.template, Path(d) / "out")
            self.assertIn("the system policy with subjects", r.stdout)
            merged = ET.parse(Path(d) / "out" / self.template.name)
            self.assertEqual(conditional_errors(merged, TEMPLATE_EXPRESSIONS | PLATFORM_CONFIG | SYSTEM_CONFIG), [])


class SinfoVersions(h.QemuTestCase):
    """The unipi subject (build/unipi.muen) on the minimal kernel with the sinfo
    layout of each Muen generation (v04: mugensinfo of ddece096 and
    b7d6da0e) and Solo5's newest (v05): same binary, one boot each, HTTPS."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require(h.BUILD / "system.xml", CSPEC, h.BUILD / "site.git", h.CA)

    def boot(self, version):
        """Packs build/system.xml with sinfo=`version`, boots it, returns (log, status, body)."""
        out = h.BUILD / "tests" / f"sinfo-{version}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        system = ET.parse(h.BUILD / "system.xml")
        root = system.getroot()
        root.set("sinfo", version)
        for s in root.iterfind("subject"):
            s.set("cspec", str((h.BUILD / s.get("cspec")).resolve()))
            for m in s.iterfind("memory"):
                m.set("file", str((h.BUILD / m.get("file")).resolve()))
        system.write(out / "system.xml")
        subprocess.run([str(h.TOOLS), "pack", "--kernel", str(h.KERNEL), "--system", str(out / "system.xml"),
                        "-o", str(out / "system.elf")], check=True)
        name = root.find("subject").get("name")
        port = h.free_port()
        net = h.netdev([(port, 4433)], extra=[h.git_guestfwd()])
        g = h.start_guest(out / "system.elf", net, rf"^{name}\| serving [0-9a-f]{{40}};")
        try:
            status, _headers, body = h.https_request(port, "/")
            log = g.log()
        finally:
            g.stop()
        return name, log, status, body

    def check(self, version):
        name, log, status, body = self.boot(version)
        self.assertEqual(status, 200)
        self.assertEqual(body, (h.ROOT / "htdocs" / "index.html").read_bytes())
        # The subject read the layout asked for; the kernel found the magic and set the TSC rate.
        self.assertRegex(log, rf"(?m)^{name}\| .*\(sinfo {version.upper()}\)")
        self.assertNotIn("has no sinfo magic", log)
        self.assertRegex(log, rf"(?m)^{name}\| subject '{name}', TSC [1-9]\d* kHz, \d+ resources:")

    def test_v04_serves_https(self):
        self.check("v04")

    def test_v05_serves_https(self):
        self.check("v05")


if __name__ == "__main__":
    unittest.main()
