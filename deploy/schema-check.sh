#!/bin/sh
# Validates what unipi-rs hands to Muen's toolchain against Muen's own XML
# schema (the XSD files of muen-tools' libmuxml/schema) of one toolchain
# generation (docs/muen.md):
#   - the component spec, exactly as Muen checks a cspec:
#       xmllint --noout --schema SCHEMA_DIR/component.xsd CSPEC
#   - optionally the policy fragments of `make muen-policy`, each section
#     against the system policy source format (system_src) of that schema.
#
#   deploy/schema-check.sh [--generation NAME] SCHEMA_DIR CSPEC [POLICY_FRAGMENTS]
#
# NAME (ddece096, eb7b089b) only labels the output. The schema is reference
# data outside this project. Where SCHEMA_DIR does not exist the check says
# SKIPPED and succeeds (nothing to check against).
set -eu

generation=
if [ "${1:-}" = --generation ]; then
    generation=${2:?--generation needs a name}
    shift 2
fi
[ $# -ge 2 ] || { echo "usage: $0 [--generation NAME] SCHEMA_DIR CSPEC [POLICY_FRAGMENTS]" >&2; exit 2; }
schema=$1 cspec=$2 policy=${3:-}
label=${generation:+ (generation $generation)}
if [ ! -f "$schema/component.xsd" ]; then
    echo "schema-check: SKIPPED$label: Muen's schema is not at $schema (it is reference data"
    echo "  outside the project; point MUEN_SCHEMA_${generation:-<generation>} at that generation's"
    echo "  muen-tools/libmuxml/schema to run the check)"
    exit 0
fi
command -v xmllint >/dev/null || { echo "schema-check: xmllint is missing: install libxml2-utils (make deps)" >&2; exit 1; }
schema=$(cd "$schema" && pwd)

if out=$(xmllint --noout --schema "$schema/component.xsd" "$cspec" 2>&1); then
    echo "$out$label"
else
    echo "$out" >&2
    echo "schema-check: $cspec does not validate against $schema/component.xsd$label" >&2
    exit 1
fi
[ -n "$policy" ] || exit 0

# The source-format system schema is assembled by Muen's build from the
# common files and system_src/; a wrapper that includes them (by path) and
# accepts the policy sections as documents does the same here.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
{
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">'
    for f in config devices events hardware kernel memory hash platform scheduling subject types vcpu device_domains; do
        echo " <xs:include schemaLocation=\"$schema/$f.xsd\"/>"
    done
    for f in devices events memory scheduling subject system vcpu hardware_misc hardware platform device_domains channels components; do
        echo " <xs:include schemaLocation=\"$schema/system_src/$f.xsd\"/>"
    done
    echo ' <xs:element name="config" type="configType"/>'
    echo ' <xs:element name="memory" type="memRegionsType"/>'
    echo ' <xs:element name="events" type="eventsType"/>'
    echo ' <xs:element name="channels" type="channelsType"/>'
    echo ' <xs:element name="components" type="componentsType"/>'
    echo ' <xs:element name="subjects" type="subjectsType"/>'
    echo '</xs:schema>'
} >"$tmp/system_src_sections.xsd"
python3 - "$policy" "$tmp" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for section in root:
    ET.ElementTree(section).write(f"{sys.argv[2]}/{section.tag}.xml", encoding="utf-8", xml_declaration=True)
PY
status=0
for f in "$tmp"/*.xml; do
    section=$(basename "$f" .xml)
    if xmllint --noout --schema "$tmp/system_src_sections.xsd" "$f" 2>"$tmp/err"; then
        echo "$policy <$section> validates (system_src)$label"
    else
        sed "s#$tmp/##" "$tmp/err" >&2
        status=1
    fi
done
exit $status
