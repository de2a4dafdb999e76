# Deployment targets (included by the Makefile): see docs/deploy.md and docs/muen.md.
#
#   make iso                                   build/unipi.iso (GRUB, multiboot)
#   make run-iso | run-memdisk                 boot it in QEMU (-cdrom / memdisk iso raw)
#   make sign SIGN_CERT=… SIGN_KEY=… CA=…      build/*.sig (detached DER CMS, for iPXE)
#   make verify CA=…                           check them with openssl cms -verify
#   make ipxe IPXE_URL=… [NET_IP=… NET_MASK=… NET_GATEWAY=…]   build/unipi.ipxe
#   make muen-policy                           build/muen-policy.xml (Muen policy fragments)
#   make muen-system MUEN_TEMPLATE=…/mirage-solo5.xml   the fragments merged into Muen's template
#   make schema-check                          cspec + fragments against both Muen schema generations
#   make repro-check [REPRO=worktree]          two clean builds, compare sha256

ISO         ?= $(BUILD)/unipi.iso
ISO_VOLID   ?= UNIPI_RS
GRUB_DIR    ?= /usr/lib/grub/i386-pc
MEMDISK     ?= /usr/lib/syslinux/memdisk
SIGN_CERT   ?=
SIGN_KEY    ?=
CA          ?=
SIGN_FILES  ?= $(ISO) $(BUILD)/system.elf $(BUILD)/memdisk
CERT_MIN_DAYS ?= 30
IPXE_URL    ?=
IPXE_SCRIPT ?= $(BUILD)/unipi.ipxe
NET_IF      ?= net0
NET_IP      ?=
NET_MASK    ?=
NET_GATEWAY ?=
NET_DNS     ?=
# The Muen toolchain generation the cspec and the policy are written for
# (docs/muen.md, "Muen toolchain generations"): ddece096 = muen-tools up to
# ddece096, eb7b089b = muen-tools eb7b089b (2026-03-12) and later.
MUEN_GENERATION ?= ddece096
MUEN_GENERATIONS := ddece096 eb7b089b
# sinfo layout of the subject info pages in build/system.elf: v04 is what
# mugensinfo of both generations writes, v05 the layout of Solo5's newest bindings.
MUEN_SINFO  ?= v04
# Muen's XSD files of each generation (reference data outside the project).
MUEN_SCHEMA_ddece096 ?= ../shared/muen-schema
MUEN_SCHEMA_eb7b089b ?= ../shared/muen-schema-b7d6da0e
export MUEN_SCHEMA_ddece096 MUEN_SCHEMA_eb7b089b
# Muen's mirage-solo5 template and the scheduling plans of that system (muen-system).
MUEN_TEMPLATE ?=
MUEN_PLANS  ?= $(if $(MUEN_TEMPLATE),$(wildcard $(dir $(MUEN_TEMPLATE))../../scheduling/static/$(basename $(notdir $(MUEN_TEMPLATE)))*.xml))
MUEN_SYSTEM_DIR ?= $(BUILD)/muen-system

ifeq ($(filter $(MUEN_GENERATION),$(MUEN_GENERATIONS)),)
  $(error MUEN_GENERATION=$(MUEN_GENERATION) is not a Muen toolchain generation: use ddece096 or eb7b089b (docs/muen.md says how to tell))
endif
ifeq ($(filter $(MUEN_SINFO),v04 v05),)
  $(error MUEN_SINFO=$(MUEN_SINFO): use v04 or v05)
endif
REPRO       ?= clone

# What these targets need from Debian (make deps installs the list).
DEB_PACKAGES += $(filter-out $(DEB_PACKAGES),grub-pc-bin grub-common xorriso syslinux-common openssl libxml2-utils)

# The end-to-end tests boot the ISO too (tests/test_deploy.py).
test-e2e: $(ISO)

.PHONY: iso run-iso run-memdisk sign verify ipxe schema-check muen-policy muen-system repro-check

# --- bootable ISO ----------------------------------------------------------------
iso: $(ISO)
	@ls -l $(ISO) | awk '{print "  " $$5 " bytes  " $$9}'

# The same system as build/system.elf with its multiboot header armed, for
# GRUB (QEMU's -kernel would prefer multiboot over PVH; docs/kernel.md).
$(BUILD)/system-multiboot.elf: $(BUILD)/muen-kernel.elf $(BUILD)/unipi.cspec.xml $(BUILD)/system.xml $(TARGET)/release/muen-tools
	$(TARGET)/release/muen-tools pack --kernel $(BUILD)/muen-kernel.elf --system $(BUILD)/system.xml --multiboot true -o $@

$(ISO): $(BUILD)/system-multiboot.elf deploy/mkiso.sh deploy/grub.cfg
	GRUB_DIR=$(GRUB_DIR) ISO_VOLID=$(ISO_VOLID) deploy/mkiso.sh $(BUILD)/system-multiboot.elf $@

# The ISO's QEMU: a classic PC (SeaBIOS boots the CD; memdisk needs BIOS too),
# virtio-net on PCI, same restricted network and forwards as `make run`.
# -vga std only keeps GRUB from complaining about a missing video BIOS.
QEMU_ISO_CMD = qemu-system-x86_64 -M pc $(qemu_accel) -m $(QEMU_MEM) -smp 1 \
	-nodefaults -no-user-config -display none -vga std -serial stdio -no-reboot \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	-netdev '$(qemu_netdev)' -device virtio-net-pci,netdev=n0

run-iso: $(ISO)
	@echo "Booting $(ISO) from a CD (QEMU pc, $(ACCEL)); https://localhost:$(HTTPS_PORT)/. Ctrl-A X quits."
	$(QEMU_ISO_CMD) -cdrom $(ISO) -boot order=d

# What iPXE does on the target: memdisk loads the ISO into RAM and emulates a CD.
run-memdisk: $(ISO)
	@test -f $(MEMDISK) || { echo "$(MEMDISK) missing: install syslinux-common (make deps)"; exit 1; }
	@echo "Booting $(ISO) through memdisk (iso raw); https://localhost:$(HTTPS_PORT)/. Ctrl-A X quits."
	$(QEMU_ISO_CMD) -kernel $(MEMDISK) -initrd $(ISO) -append 'iso raw'

# --- signatures (iPXE imgverify) ---------------------------------------------------
$(BUILD)/memdisk: $(MEMDISK)
	@mkdir -p $(BUILD)
	cp $(MEMDISK) $@

need = $(if $($(1)),,$(error $(1) is not set: $(2)))

# Settings are checked before anything is built.
ifneq ($(filter sign,$(MAKECMDGOALS)),)
  $(call need,SIGN_CERT,the code-signing certificate (PEM) - see docs/deploy.md)
  $(call need,SIGN_KEY,its private key (PEM))
  $(call need,CA,the CA certificate(s) (PEM) that iPXE trusts)
endif
ifneq ($(filter verify,$(MAKECMDGOALS)),)
  $(call need,CA,the CA certificate(s) (PEM) the signatures must chain to)
endif
ifneq ($(filter muen-system,$(MAKECMDGOALS)),)
  $(call need,MUEN_TEMPLATE,the mirage-solo5 template of your Muen policy (policy/xml/mirageos/mirage-solo5.xml) - see docs/muen.md)
endif
ifneq ($(filter ipxe,$(MAKECMDGOALS)),)
  $(call need,IPXE_URL,the http(s) directory serving memdisk$(comma) $(notdir $(ISO)) and their .sig files)
endif

sign: $(SIGN_FILES)
	@deploy/cert-check.sh $(CERT) $(KEY) --strict --days $(CERT_MIN_DAYS)
	@deploy/sign.sh $(SIGN_CERT) $(SIGN_KEY) $(CA) $(SIGN_FILES)

verify:
	@deploy/verify.sh $(CA) $(SIGN_FILES)

# --- iPXE script -------------------------------------------------------------------
ipxe:
	@mkdir -p $(dir $(IPXE_SCRIPT))
	@IPXE_URL='$(IPXE_URL)' NET_IF='$(NET_IF)' NET_IP='$(NET_IP)' NET_MASK='$(NET_MASK)' \
	  NET_GATEWAY='$(NET_GATEWAY)' NET_DNS='$(NET_DNS)' ISO_NAME='$(notdir $(ISO))' \
	  deploy/gen-ipxe.sh $(IPXE_SCRIPT)

# --- Muen integration -----------------------------------------------------------------
# Policy fragments for Muen's mirage-solo5 system, from the cspec (docs/muen.md).
muen_files = site=site.tar tls_cert=$(notdir $(CERT)) tls_key=$(notdir $(KEY)) \
	$(if $(REMOTE_CA),remote_ca=$(notdir $(REMOTE_CA))) $(if $(ACME_CA),acme_ca=$(notdir $(ACME_CA)))
muen-policy: $(BUILD)/muen-policy.xml
$(BUILD)/muen-policy.xml: $(BUILD)/unipi.cspec.xml deploy/muen-policy.py
	deploy/muen-policy.py fragments --generation $(MUEN_GENERATION) $(BUILD)/unipi.cspec.xml $@ $(muen_files)
	@echo "  $@: Muen policy fragments (generation $(MUEN_GENERATION)); make muen-system merges them (docs/muen.md)"

# The fragments merged into Muen's template, and its scheduling plans with our
# subject names: files that replace the template's in the Muen build.
muen-system: $(BUILD)/muen-policy.xml
	@test -f "$(MUEN_TEMPLATE)" || { echo "MUEN_TEMPLATE=$(MUEN_TEMPLATE) does not exist" >&2; exit 1; }
	@test -n "$(strip $(MUEN_PLANS))" || { echo "no scheduling plans: none at $(dir $(MUEN_TEMPLATE))../../scheduling/static/; set MUEN_PLANS to the system's plan files (docs/muen.md)" >&2; exit 1; }
	deploy/muen-policy.py system $(BUILD)/muen-policy.xml $(MUEN_TEMPLATE) $(MUEN_SYSTEM_DIR) $(MUEN_PLANS)

# Both generations' cspec and fragments, each against its generation's schema.
$(BUILD)/schema-check/%/unipi.cspec.xml: $(cspec_inputs)
	@mkdir -p $(@D)
	$(TARGET)/release/muen-tools cspec $(cspec_args) --generation $* -o $@
$(BUILD)/schema-check/%/muen-policy.xml: $(BUILD)/schema-check/%/unipi.cspec.xml deploy/muen-policy.py
	deploy/muen-policy.py fragments --generation $* $< $@ $(muen_files)
schema_check_files := $(foreach g,$(MUEN_GENERATIONS),$(BUILD)/schema-check/$(g)/unipi.cspec.xml $(BUILD)/schema-check/$(g)/muen-policy.xml)
.SECONDARY: $(schema_check_files)

schema-check: $(schema_check_files)
	@status=0; $(foreach g,$(MUEN_GENERATIONS),deploy/schema-check.sh --generation $(g) $(MUEN_SCHEMA_$(g)) \
	    $(BUILD)/schema-check/$(g)/unipi.cspec.xml $(BUILD)/schema-check/$(g)/muen-policy.xml || status=1;) \
	exit $$status

# --- reproducible builds ----------------------------------------------------------------
repro-check:
	deploy/repro-check.sh $(if $(filter worktree,$(REPRO)),--worktree)
