# unipi-rs: build, run and test the web-server subject and its minimal kernel.
#
#   make IPV4=192.168.254.10/24 [GATEWAY=192.168.254.1] [BOOTPARAMS="..."]
#   make run        # QEMU; browse https://localhost:4433/
#   make test       # host tests + QEMU end-to-end tests
#
# Every variable below can be set on the command line; `make help` lists them.

SHELL := /bin/bash
.DELETE_ON_ERROR:
.SUFFIXES:

# --- configuration -----------------------------------------------------------
IPV4        ?= 192.168.254.10/24
GATEWAY     ?= 192.168.254.1
# IPv6: a link-local address always, SLAAC from QEMU's router advertisements
# (prefix IPV6_NET); IPV6=fd00::10/64 adds a static address.
IPV6        ?=
IPV6_GATEWAY ?=
IPV6_NET    ?= fd00::/64
BOOTPARAMS  ?=
NAME        ?= unipi
RAM         ?= 128
SITE        ?= htdocs
CERT        ?= certs/dev/server.pem
KEY         ?= certs/dev/server.key
MINOR_FRAME ?= 1000
MACHINE     ?= microvm
ACCEL       ?= tcg
QEMU_MEM    ?= 256M
HTTPS_PORT  ?= 4433
HTTP_PORT   ?= 8080
# IPv6 forwards from [::1] to IPV6 (needs IPV6, and a QEMU whose user network
# forwards IPv6 host ports: QEMU 7.2 rejects the rule, see docs/ipv6.md).
HTTPS6_PORT ?=
HTTP6_PORT  ?=
QEMU_NETDEV_EXTRA_OPTS ?=
comma := ,
# Site source: by default the guest fetches $(SITE), turned into the bare
# repository build/site.git, over git:// from 192.168.254.2 (a guestfwd that
# execs git daemon --inetd: nothing leaves QEMU, no host port is opened).
# REPO=/path/to/repo serves another local repository the same way (branch:
# REPO_BRANCH); REMOTE=URL[#branch] points the guest anywhere else;
# REMOTE=none serves only the built-in archive of $(SITE).
REPO        ?=
REPO_BRANCH ?=
REMOTE      ?=
REMOTE_CA   ?=
# Certificates from ACME (docs/acme.md): DOMAIN is the name to certify
# (--hostname); ACME=staging|production (Let's Encrypt) or an https:// ACME
# directory URL; ACME_CA a PEM file with the CA a private ACME server's TLS
# is checked against (region acme_ca).
DOMAIN      ?=
ACME        ?=
ACME_CA     ?=
GIT_ADDR    := 192.168.254.2
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1700000000)
export SOURCE_DATE_EPOCH

BUILD   := build
CARGO   ?= cargo
# Bare-metal binaries and host tools are built in separate cargo invocations
# so their features never unify (docs/toolchain.md §3).
TARGET  := target
GUEST_IP := $(firstword $(subst /, ,$(IPV4)))

ifeq ($(REMOTE),)
  ifeq ($(REPO),)
    git_base := $(abspath $(BUILD))
    git_repo := site.git
    site_repo := $(BUILD)/site.git.stamp
  else
    git_base := $(abspath $(dir $(abspath $(REPO))))
    git_repo := $(notdir $(abspath $(REPO)))
  endif
  remote_url := git://$(GIT_ADDR)/$(git_repo)$(if $(REPO_BRANCH),#$(REPO_BRANCH))
  guestfwd := guestfwd=tcp:$(GIT_ADDR):9418-cmd:$(CURDIR)/scripts/git-inetd.sh $(git_base)
else ifeq ($(REMOTE),none)
  remote_url :=
else
  remote_url := $(REMOTE)
endif

acme_params := $(if $(filter staging,$(ACME)),--tls,$(if $(filter production,$(ACME)),--tls --production,$(if $(ACME),--acme-directory=$(ACME))))
boot_params := $(strip $(if $(IPV4),--ipv4=$(IPV4)) $(if $(GATEWAY),--ipv4-gateway=$(GATEWAY)) $(if $(IPV6),--ipv6=$(IPV6)) $(if $(IPV6_GATEWAY),--ipv6-gateway=$(IPV6_GATEWAY)) $(if $(remote_url),--remote=$(remote_url)) $(if $(DOMAIN),--hostname=$(DOMAIN)) $(acme_params) $(BOOTPARAMS))

.PHONY: all help run run-deps test test-host test-e2e deps clean subjects FORCE

all: $(BUILD)/unipi.muen $(BUILD)/unipi.cspec.xml $(BUILD)/system.elf $(site_repo) cert-check

help:
	@sed -n '1,9p' Makefile
	@echo "variables: IPV4=$(IPV4) GATEWAY=$(GATEWAY) BOOTPARAMS=$(BOOTPARAMS)"
	@echo "  NAME=$(NAME) RAM=$(RAM) (MiB) SITE=$(SITE) CERT=$(CERT) KEY=$(KEY)"
	@echo "  MACHINE=$(MACHINE) (microvm|pc) ACCEL=$(ACCEL) (tcg|kvm) QEMU_MEM=$(QEMU_MEM)"
	@echo "  IPV6=$(IPV6) IPV6_GATEWAY=$(IPV6_GATEWAY) IPV6_NET=$(IPV6_NET) (QEMU's IPv6 prefix)"
	@echo "  HTTPS_PORT=$(HTTPS_PORT) HTTP_PORT=$(HTTP_PORT) (host ports on 127.0.0.1)"
	@echo "  HTTPS6_PORT=$(HTTPS6_PORT) HTTP6_PORT=$(HTTP6_PORT) (host ports on [::1]; need IPV6 and a QEMU that forwards IPv6)"
	@echo "  QEMU_NETDEV_EXTRA_OPTS=$(QEMU_NETDEV_EXTRA_OPTS) MINOR_FRAME=$(MINOR_FRAME) (us)"
	@echo "  REPO=$(REPO) REPO_BRANCH=$(REPO_BRANCH) REMOTE=$(REMOTE) REMOTE_CA=$(REMOTE_CA)"
	@echo "  DOMAIN=$(DOMAIN) ACME=$(ACME) (staging|production|URL) ACME_CA=$(ACME_CA)"
	@echo "  MUEN_GENERATION=$(MUEN_GENERATION) (ddece096|eb7b089b) MUEN_SINFO=$(MUEN_SINFO) (v04|v05) (docs/muen.md)"
	@echo "targets: all run test test-host test-e2e deps clean iso run-iso sign verify ipxe"
	@echo "  muen-policy muen-system schema-check repro-check fuzz bench (docs/deploy.md, docs/fuzzing.md, docs/bench.md)"

# Rebuild what depends on the configuration when a variable changes.
$(BUILD)/config.stamp: FORCE
	@mkdir -p $(BUILD)
	@printf '%s\n' "$(NAME)|$(boot_params)|$(RAM)|$(SITE)|$(CERT)|$(KEY)|$(REMOTE_CA)|$(ACME_CA)|$(MINOR_FRAME)|$(MUEN_GENERATION)|$(MUEN_SINFO)" > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

# --- binaries ------------------------------------------------------------------
RUST_SOURCES := $(shell find platform-muen unipi-rs -name '*.rs' -o -name 'Cargo.toml' -o -name '*.ld' 2>/dev/null) Cargo.toml Cargo.lock

# Reproducible images: no build-machine paths in panic locations (cargo keeps
# --remap-path-prefix out of its metadata hashes; docs/deploy.md).
baremetal_rustflags := --remap-path-prefix=$(CURDIR)=. --remap-path-prefix=$(or $(CARGO_HOME),$(HOME)/.cargo)=/cargo --cfg getrandom_backend="custom"
$(TARGET)/release/unipi $(TARGET)/release/muen-kernel &: $(RUST_SOURCES)
	RUSTFLAGS='$(baremetal_rustflags)' $(CARGO) build --release --locked -p unipi-muen -p muen-kernel
	@touch $(TARGET)/release/unipi $(TARGET)/release/muen-kernel

$(TARGET)/release/muen-tools: $(RUST_SOURCES)
	$(CARGO) build --release --locked -p muen-tools
	@touch $@

$(BUILD)/unipi.muen: $(TARGET)/release/unipi
	@mkdir -p $(BUILD)
	strip --strip-all -o $@ $<

$(BUILD)/muen-kernel.elf: $(TARGET)/release/muen-kernel
	@mkdir -p $(BUILD)
	strip --strip-all -o $@ $<

# --- certificates ----------------------------------------------------------------
certs/dev/server.pem certs/dev/server.key &:
	certs/gen-dev-cert.sh certs/dev $(GUEST_IP)

.PHONY: cert-check
cert-check: $(CERT) $(KEY)
	@deploy/cert-check.sh $(CERT) $(KEY)

# --- site, component spec, system image ------------------------------------------
# Which directory SITE names: switching SITE rebuilds the site repository
# even when the other directory's files are older than the last build.
$(BUILD)/site.name: FORCE
	@mkdir -p $(BUILD)
	@printf '%s\n' "$(abspath $(SITE))" > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(BUILD)/site.git.stamp: $(shell find $(SITE) 2>/dev/null) $(BUILD)/site.name
	@mkdir -p $(BUILD)
	scripts/site-repo.sh $(SITE) $(BUILD)/site.git
	@touch $@

$(BUILD)/site.tar: $(shell find $(SITE) 2>/dev/null) $(BUILD)/config.stamp
	tar --format=ustar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 \
	    --numeric-owner --mode='u+rw,go+r,go-w' -C $(SITE) -cf $@ .

# The cspec for the Muen toolchain generation MUEN_GENERATION (mk/deploy.mk, docs/muen.md).
cspec_inputs := $(BUILD)/unipi.muen $(TARGET)/release/muen-tools $(BUILD)/site.tar $(CERT) $(KEY) $(BUILD)/config.stamp
cspec_args = --elf $(BUILD)/unipi.muen --name $(NAME) --ram $(RAM) --net net0 --bootparams "$(boot_params)" \
	--memory site:$(BUILD)/site.tar --memory tls_cert:$(CERT) --memory tls_key:$(KEY) \
	$(if $(REMOTE_CA),--memory remote_ca:$(REMOTE_CA)) $(if $(ACME_CA),--memory acme_ca:$(ACME_CA))
$(BUILD)/unipi.cspec.xml: $(cspec_inputs)
	$(TARGET)/release/muen-tools cspec $(cspec_args) --generation $(MUEN_GENERATION) -o $@

$(BUILD)/system.xml: $(BUILD)/config.stamp Makefile
	@printf '%s\n' \
	  '<system minorFrameMicros="$(MINOR_FRAME)" debugExit="true" sinfo="$(MUEN_SINFO)">' \
	  ' <subject name="$(NAME)" cspec="unipi.cspec.xml">' \
	  '  <memory logical="site" file="site.tar"/>' \
	  '  <memory logical="tls_cert" file="$(abspath $(CERT))"/>' \
	  '  <memory logical="tls_key" file="$(abspath $(KEY))"/>' \
	  $(if $(REMOTE_CA),'  <memory logical="remote_ca" file="$(abspath $(REMOTE_CA))"/>') \
	  $(if $(ACME_CA),'  <memory logical="acme_ca" file="$(abspath $(ACME_CA))"/>') \
	  '  <event id="0" logical="solo5_exit" action="exit"/>' \
	  '  <event id="1" logical="net0|notify" action="netnotify"/>' \
	  '  <event id="2" logical="yield" action="yield"/>' \
	  ' </subject>' \
	  '</system>' > $@

$(BUILD)/system.elf: $(BUILD)/muen-kernel.elf $(BUILD)/unipi.cspec.xml $(BUILD)/system.xml $(TARGET)/release/muen-tools
	$(TARGET)/release/muen-tools pack --kernel $(BUILD)/muen-kernel.elf --system $(BUILD)/system.xml -o $@
	@ls -l $(BUILD)/unipi.muen $(BUILD)/system.elf | awk '{print "  " $$5 " bytes  " $$9}'

# --- running -------------------------------------------------------------------
ifeq ($(ACCEL),kvm)
  qemu_accel := -accel kvm -cpu host
else
  qemu_accel := -accel tcg -cpu max
endif
ifeq ($(MACHINE),pc)
  qemu_machine := -M pc
  qemu_nic := virtio-net-pci
else
  qemu_machine := -M microvm,rtc=on
  qemu_nic := virtio-net-device
endif
# With DHCP (IPV4=) QEMU's DHCP server hands out .15, the default hostfwd target.
fwd_ip := $(if $(IPV4),$(GUEST_IP),)
# IPv6 forwards go to the static IPV6 address (QEMU needs a concrete one).
GUEST_IP6 := $(firstword $(subst /, ,$(IPV6)))
ifneq ($(HTTPS6_PORT)$(HTTP6_PORT),)
  ifeq ($(IPV6),)
    $(error HTTPS6_PORT/HTTP6_PORT forward to the static IPv6 address: set IPV6 too, e.g. IPV6=fd00::10/64)
  endif
endif
fwd6 := $(if $(HTTPS6_PORT),$(comma)hostfwd=tcp:[::1]:$(HTTPS6_PORT)-[$(GUEST_IP6)]:4433)$(if $(HTTP6_PORT),$(comma)hostfwd=tcp:[::1]:$(HTTP6_PORT)-[$(GUEST_IP6)]:80)
qemu_netdev := user,id=n0,restrict=on,net=192.168.254.0/24,host=192.168.254.1,ipv4=on,ipv6=on,ipv6-net=$(IPV6_NET),hostfwd=tcp:127.0.0.1:$(HTTPS_PORT)-$(fwd_ip):4433,hostfwd=tcp:127.0.0.1:$(HTTP_PORT)-$(fwd_ip):80$(fwd6)$(if $(guestfwd),$(comma)$(guestfwd))$(if $(QEMU_NETDEV_EXTRA_OPTS),$(comma)$(QEMU_NETDEV_EXTRA_OPTS))

QEMU_CMD = qemu-system-x86_64 $(qemu_machine) $(qemu_accel) -m $(QEMU_MEM) -smp 1 \
	-nodefaults -no-user-config -display none -serial stdio -no-reboot \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	-netdev '$(qemu_netdev)' -device $(qemu_nic),netdev=n0 \
	-kernel $(BUILD)/system.elf

# `make run` sets up a fresh machine itself, with only what booting needs.
RUN_PACKAGES := qemu-system-x86 openssl git tar xz-utils
run: run-deps
	@$(MAKE) --no-print-directory all
	@echo "Starting QEMU ($(MACHINE), $(ACCEL)); open https://localhost:$(HTTPS_PORT)/ (HTTP on :$(HTTP_PORT)). Ctrl-A X quits."
	$(QEMU_CMD); status=$$?; [ $$status -eq 33 ] || [ $$status -eq 0 ] || echo "QEMU exited with status $$status (see docs/kernel.md)"

# --- tests -----------------------------------------------------------------------
# Test subjects for the kernel-behaviour tests.
TEST_SUBJECTS := hello fault fault-noidt hlt badevent rdtsc rogue
subjects: $(RUST_SOURCES)
	RUSTFLAGS='$(baremetal_rustflags)' $(CARGO) build --release --locked -p muen-testsubjects
	@mkdir -p $(BUILD)/subjects
	@for s in $(TEST_SUBJECTS); do strip --strip-all -o $(BUILD)/subjects/$$s.muen $(TARGET)/release/$$s; done

test: deps test-host test-e2e

test-host:
	$(CARGO) test --locked
	$(CARGO) test --locked -p muen-abi --features smoltcp

test-e2e: all subjects
	python3 -m unittest discover -s tests -p 'test_*.py' -v

# Debian packages the build and the tests need (installed when missing).
# Peers of the end-to-end tests: HTTP/2 (nghttp2-client, python3-h2), slow
# clients (slowhttptest), ssh remotes (openssh-server), ACME (pebble).
DEB_PACKAGES := qemu-system-x86 openssl curl git libxml2-utils tar xz-utils python3 \
	lighttpd fcgiwrap nginx chromium chromium-driver testssl.sh \
	nghttp2-client python3-h2 slowhttptest openssh-server pebble \
	rsyslog prometheus wrk
# Installs the Debian packages of $(1) that are missing.
define install_packages
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef
deps:
	$(call install_packages,$(DEB_PACKAGES))
	@# A python3 other than Debian's (pyenv, venv) does not see python3-h2.
	@python3 -c 'import h2, hpack, hyperframe' 2>/dev/null || python3 -m pip install -q 'h2>=4,<5'
run-deps:
	$(call install_packages,$(RUN_PACKAGES))

clean:
	rm -rf $(BUILD)

FORCE:

include mk/deploy.mk mk/fuzz.mk mk/bench.mk
