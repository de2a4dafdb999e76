#!/usr/bin/env python3
"""Muen system policy for the unipi subject, from the generated component
spec, so names and sizes always match what the component requires
(docs/muen.md).

    deploy/muen-policy.py fragments [--generation G] CSPEC OUT [LOGICAL=FILENAME]...
    deploy/muen-policy.py system FRAGMENTS TEMPLATE OUTDIR [PLAN]...

`fragments` writes the policy fragments that add the subject to Muen's
mirage-solo5 system: one section per section of the system policy it goes
into (config, memory, channels, components, subjects). LOGICAL=FILENAME names
the file behind each required memory region in the Muen build (default:
site=site.tar, tls_cert=fullchain.pem, tls_key=privkey.pem; other regions:
LOGICAL.bin). --generation (ddece096 or eb7b089b, `MUEN_GENERATION`) is the
Muen toolchain generation the user builds with; the cspec must be written for
it (`muen-tools cspec --generation`), and a mismatch is an error here rather
than a schema error on the Muen build host.

`system` merges those fragments into Muen's mirage-solo5 template and writes
OUTDIR/<template file name>, a complete system policy source that Muen's
toolchain compiles as it is, plus OUTDIR/scheduling/<plan file name> for each
scheduling PLAN, with the template's subjects renamed to ours. Nothing has to
be edited by hand.

What the merge does (and what the fragments rely on), with the facts taken
from Muen's sources (docs/muen.md names the commits):
  - the template's subjects `unikernel` and `unikernel_sm` are replaced by
    NAME and NAME_sm; the fragments reuse the physical resources the template
    declares for them (debuglog_subject6/7, trap_to_sm_3, resume_unikernel_1,
    control/status_unikernel_sm) and the common ones (time_info,
    system_panic, system_reboot);
  - the template keeps `<if variable="unikernel_resettable">` blocks outside
    those subjects; Solo5's compose script defines that variable from the
    component's `resettable` value, and so does the fragments' <config>;
  - nic_linux gets what the compose script gives it: `unikernel_iface=` in its
    boot parameters and the subject's channels with the roles flipped.
"""
import argparse
import copy
import os
import re
import sys
import xml.etree.ElementTree as ET

# The names Muen's mirage-solo5 template and Solo5's compose script use.
TEMPLATE_SUBJECT = "unikernel"
TEMPLATE_MONITOR = "unikernel_sm"
RESET_VARIABLE = TEMPLATE_SUBJECT + "_resettable"
NIC_SUBJECT = "nic_linux"
NIC_BOOTPARAM = "unikernel_iface"
NIC_CHANNEL_BASE = 0xE_0300_0000  # where the compose script maps the channels into nic_linux
DEFAULT_FILES = {"site": "site.tar", "tls_cert": "fullchain.pem", "tls_key": "privkey.pem"}
GENERATIONS = ("ddece096", "eb7b089b")
# Sections of the fragments, in the order of the system policy.
SECTIONS = ("config", "memory", "channels", "components", "subjects")
# Order of a subject's children in Muen's system_src schema.
SUBJECT_ORDER = ("vcpu", "bootparams", "memory", "devices", "events", "channels", "monitor", "component", "sibling")


class PolicyError(Exception):
    """What went wrong, in words that say what to do about it."""


def hexnum(v):
    """Muen's word64 notation: 16# + groups of four hex digits + #."""
    digits = f"{v:x}"
    digits = "0" * (-len(digits) % 4) + digits
    return "16#" + "_".join(digits[i:i + 4] for i in range(0, len(digits), 4)) + "#"


def num(s):
    return int(s.strip()[3:-1].replace("_", ""), 16)


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def generation_of(comp):
    """The Muen toolchain generation whose vCPU layout the cspec uses."""
    vcpu = comp.find("requires/vcpu")
    return "eb7b089b" if vcpu is not None and vcpu.find("x86_64") is not None else "ddece096"


def phys_channel(name, logical):
    """Physical channel name, as the compose script forms it."""
    return f"{name}_" + logical.replace("|", "_")


def nic_additions(comp):
    """What nic_linux needs for the component's channels: the value of its
    unikernel_iface boot parameter and (element, logical, physical, address)
    for each channel, roles flipped, at consecutive addresses."""
    name = comp.get("name")
    chs = comp.find("requires/channels")
    channels = list(chs) if chs is not None else []
    # Device names in order of first appearance (the compose script lists the readers).
    ifaces = []
    for c in channels:
        dev = c.get("logical").split("|")[0]
        if dev not in ifaces:
            ifaces.append(dev)
    out, va = [], NIC_CHANNEL_BASE
    for c in channels:
        flipped = "writer" if c.tag == "reader" else "reader"
        out.append((flipped, c.get("logical"), phys_channel(name, c.get("logical")), va))
        va += num(c.get("size"))
    return ",".join(ifaces), out


def fragments(cspec_path, generation, files):
    """The text of the fragments file for the cspec at `cspec_path`."""
    text = open(cspec_path, encoding="utf-8").read()
    comp = ET.fromstring(text)
    name = comp.get("name")
    found = generation_of(comp)
    if generation is None:
        generation = found
    elif generation != found:
        raise PolicyError(f"{cspec_path} has the vCPU layout of Muen toolchain generation {found}, not "
                          f"{generation}: generate it with `muen-tools cspec --generation {generation}` "
                          f"(make MUEN_GENERATION={generation})")
    resettable = "false"
    bootparams = ""
    for v in comp.iterfind("config/*"):
        if v.tag == "boolean" and v.get("name") == "resettable":
            resettable = v.get("value")
        if v.tag == "string" and v.get("name") == "bootparams":
            bootparams = v.get("value", "")
    memory = [(m.get("logical"), num(m.get("size"))) for m in comp.iterfind("requires/memory/memory")]
    chs = comp.find("requires/channels")
    channels = [(c.tag, c.get("logical"), num(c.get("size"))) for c in (chs if chs is not None else [])]
    ifaces, nic_channels = nic_additions(comp)

    o = []
    w = o.append
    w('<?xml version="1.0" encoding="UTF-8"?>')
    w(f"<!-- Generated by `make muen-policy` from {cspec_path} for Muen toolchain generation")
    w(f"     {generation} (see docs/muen.md). Muen system-policy fragments for the mirage-solo5")
    w("     system: `make muen-system MUEN_TEMPLATE=…/mirage-solo5.xml` merges them into the")
    w(f"     template, replacing the subjects {TEMPLATE_SUBJECT} and {TEMPLATE_MONITOR} by {name} and {name}_sm. -->")
    w("<system>")
    w(" <config>")
    w(f"  <!-- Tested by the template's <if variable=\"{RESET_VARIABLE}\"> blocks; Solo5's compose")
    w("       script defines it from the component's own \"resettable\" value, as here. -->")
    w(f'  <boolean name="{RESET_VARIABLE}" value="{esc(resettable)}"/>')
    w(" </config>")
    w(" <memory>")
    w("  <!-- Read-only data the component requires. Sizes must equal the requirements")
    w(f"       in {cspec_path}: regenerate after changing the site or the certificate. -->")
    for logical, size in memory:
        w(f'  <memory name="{name}|{logical}" size="{hexnum(size)}" caching="WB">')
        w(f'   <file filename="{esc(files.get(logical, logical + ".bin"))}" offset="none"/>')
        w("  </memory>")
    w(" </memory>")
    w(" <channels>")
    for _tag, logical, size in channels:
        w(f'  <channel name="{phys_channel(name, logical)}" size="{hexnum(size)}"/>')
    w(" </channels>")
    w(" <components>")
    w(f"  <!-- {cspec_path}, unchanged -->")
    body = re.sub(r"^<\?xml[^>]*\?>\s*", "", text)
    body = re.sub(r"^<!--.*?-->\s*", "", body, flags=re.S)
    for line in body.rstrip().splitlines():
        w("  " + line)
    w(" </components>")
    w(" <subjects>")
    # nic_linux already exists in the system: the merge adds these to it.
    w(f"  <!-- Added to the existing subject {NIC_SUBJECT} by the merge (same logical names, roles flipped):")
    w(f"       <bootparams>: append {NIC_BOOTPARAM}={ifaces}")
    w("       <channels>:")
    for tag, logical, physical, va in nic_channels:
        w(f'        <{tag} logical="{logical}" physical="{physical}" virtualAddress="{hexnum(va)}"/>')
    w("  -->")
    w(f'  <subject name="{name}_sm">')
    w("   <events>")
    w("    <source>")
    w('     <group name="vmx_exit">')
    w('      <default physical="system_panic">')
    w("       <system_panic/>")
    w("      </default>")
    w("     </group>")
    w("    </source>")
    w("   </events>")
    w("   <monitor>")
    w(f'    <state subject="{name}" logical="monitor_state" virtualAddress="16#001e_0000#" writable="true"/>')
    w(f'    <loader logical="reload" subject="{name}_sm" virtualAddress="16#0000#"/>')
    w("   </monitor>")
    w('   <component ref="sm">')
    w('    <map logical="time_info" physical="time_info"/>')
    w('    <map logical="debuglog" physical="debuglog_subject6"/>')
    w('    <map logical="resume_subject" physical="resume_unikernel_1"/>')
    w('    <map logical="handle_subject_trap" physical="trap_to_sm_3"/>')
    w('    <map logical="status" physical="status_unikernel_sm"/>')
    w('    <map logical="control" physical="control_unikernel_sm"/>')
    w("   </component>")
    w("  </subject>")
    w(f'  <subject name="{name}">')
    w("   <!-- Boot parameters: the value make put into the component's config; Muen's")
    w("        mugensolo5 writes them into the boot_info page the subject reads. -->")
    w(f"   <bootparams>{esc(bootparams)}</bootparams>")
    w("   <events>")
    w("    <source>")
    w('     <group name="vmx_exit">')
    w('      <default physical="trap_to_sm_3"/>')
    w("     </group>")
    w('     <group name="vmcall">')
    w("      <!-- The subject raises solo5_exit when it stops (fatal error, panic): reboot, so")
    w("           iPXE fetches and verifies the signed image again (docs/deploy.md). -->")
    w('      <event id="0" logical="solo5_exit" physical="system_reboot">')
    w("       <system_reboot/>")
    w("      </event>")
    w("     </group>")
    w("    </source>")
    w("    <target>")
    w('     <event logical="resume_after_trap" physical="resume_unikernel_1"/>')
    w("    </target>")
    w("   </events>")
    w(f'   <component ref="{name}">')
    w('    <map logical="time_info" physical="time_info"/>')
    w('    <map logical="debuglog" physical="debuglog_subject7"/>')
    for _tag, logical, _size in channels:
        w(f'    <map logical="{logical}" physical="{phys_channel(name, logical)}"/>')
    for logical, _size in memory:
        w(f'    <map logical="{logical}" physical="{name}|{logical}"/>')
    w("   </component>")
    w("  </subject>")
    w(" </subjects>")
    w("</system>")
    return "\n".join(o) + "\n"


def parse_keeping_comments(path):
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    try:
        return ET.parse(path, parser)
    except (OSError, ET.ParseError) as e:
        raise PolicyError(f"{path}: {e}")


def section(root, tag, path):
    s = root.find(tag)
    if s is None:
        raise PolicyError(f"{path} has no <{tag}> section: is it Muen's mirage-solo5 template?")
    return s


def insert_in_order(parent, elem, order):
    """Inserts `elem` among `parent`'s children where `order` (tag names) puts it."""
    rank = order.index(elem.tag)
    pos = len(parent)
    for i, c in enumerate(parent):
        if isinstance(c.tag, str) and c.tag in order and order.index(c.tag) > rank:
            pos = i
            break
    parent.insert(pos, elem)


def merge(frag_path, template_path):
    """The template at `template_path` with the fragments merged in; returns
    (tree, subject name)."""
    try:
        frag = ET.parse(frag_path).getroot()  # comments dropped: they describe the fragments only
    except (OSError, ET.ParseError) as e:
        raise PolicyError(f"{frag_path}: {e}")
    tree = parse_keeping_comments(template_path)
    root = tree.getroot()
    if root.tag != "system":
        raise PolicyError(f"{template_path}: root element is <{root.tag}>, not <system>")
    comp = frag.find("components/component")
    if comp is None:
        raise PolicyError(f"{frag_path} holds no component: regenerate it with `make muen-policy`")
    name = comp.get("name")

    # <config>: booleans come first in Muen's config schema.
    config = section(root, "config", template_path)
    for var in frag.find("config"):
        same = [v for v in config if v.tag == var.tag and v.get("name") == var.get("name")]
        if same:
            same[0].set("value", var.get("value"))
            continue
        last_bool = max((i for i, v in enumerate(config) if v.tag == "boolean"), default=-1)
        config.insert(last_bool + 1, copy.deepcopy(var))

    for tag in ("memory", "channels", "components"):
        target = section(root, tag, template_path)
        for e in frag.find(tag):
            target.append(copy.deepcopy(e))

    subjects = section(root, "subjects", template_path)
    for old in (TEMPLATE_SUBJECT, TEMPLATE_MONITOR):
        found = [s for s in subjects if s.tag == "subject" and s.get("name") == old]
        if not found:
            raise PolicyError(f"{template_path} has no subject '{old}' to replace: is it Muen's "
                              "mirage-solo5 template (policy/xml/mirageos/mirage-solo5.xml)?")
        for s in found:
            subjects.remove(s)
    for s in frag.find("subjects"):
        subjects.append(copy.deepcopy(s))

    nic = [s for s in subjects if s.tag == "subject" and s.get("name") == NIC_SUBJECT]
    if not nic:
        raise PolicyError(f"{template_path} has no subject '{NIC_SUBJECT}' to bridge the network channels")
    nic = nic[0]
    ifaces, channels = nic_additions(comp)
    if channels:
        params = nic.find("bootparams")
        if params is None:
            params = ET.Element("bootparams")
            insert_in_order(nic, params, SUBJECT_ORDER)
        text = (params.text or "").strip()
        params.text = f"{text} {NIC_BOOTPARAM}={ifaces}".strip()
        chs = nic.find("channels")
        if chs is None:
            chs = ET.Element("channels")
            insert_in_order(nic, chs, SUBJECT_ORDER)
        for tag, logical, physical, va in channels:
            ET.SubElement(chs, tag, logical=logical, physical=physical, virtualAddress=hexnum(va))
    ET.indent(tree, space=" ")
    return tree, name


def rename_plan(plan_path, name):
    """The scheduling plan at `plan_path` with the template's subjects renamed to ours."""
    tree = parse_keeping_comments(plan_path)
    renames = {TEMPLATE_SUBJECT: name, TEMPLATE_MONITOR: f"{name}_sm"}
    hits = 0
    for s in tree.getroot().iter("subject"):
        if s.get("name") in renames:
            s.set("name", renames[s.get("name")])
            hits += 1
    if not hits:
        raise PolicyError(f"{plan_path} schedules no subject '{TEMPLATE_SUBJECT}': is it a mirage-solo5 plan?")
    return tree


def write_tree(tree, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n")


def main(argv):
    p = argparse.ArgumentParser(prog="muen-policy.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fragments", help="policy fragments from the cspec")
    f.add_argument("--generation", choices=GENERATIONS)
    f.add_argument("cspec")
    f.add_argument("out")
    f.add_argument("files", nargs="*", metavar="LOGICAL=FILENAME")
    s = sub.add_parser("system", help="merge the fragments into the mirage-solo5 template")
    s.add_argument("fragments")
    s.add_argument("template")
    s.add_argument("outdir")
    s.add_argument("plans", nargs="*", metavar="PLAN")
    a = p.parse_args(argv)
    try:
        if a.cmd == "fragments":
            files = dict(DEFAULT_FILES)
            for item in a.files:
                k, _, v = item.partition("=")
                if not v:
                    raise PolicyError(f"expected LOGICAL=FILENAME, got {item!r}")
                files[k] = v
            text = fragments(a.cspec, a.generation, files)
            with open(a.out, "w", encoding="utf-8") as out:
                out.write(text)
        else:
            tree, name = merge(a.fragments, a.template)
            out = os.path.join(a.outdir, os.path.basename(a.template))
            write_tree(tree, out)
            print(f"  {out}: the system policy with subjects {name} and {name}_sm")
            for plan in a.plans:
                out = os.path.join(a.outdir, "scheduling", os.path.basename(plan))
                write_tree(rename_plan(plan, name), out)
                print(f"  {out}: scheduling plan, {TEMPLATE_SUBJECT} -> {name}")
    except (PolicyError, OSError) as e:
        sys.exit(f"muen-policy: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
