# Benchmarks (make bench): see docs/bench.md. Never part of `make test`.
#
#   make bench [BENCH_RUNS=3] [BENCH_DUR=10s] [BENCH_CONNS=32] [BENCH_THREADS=2]
#              [BENCH_GIT_FILES=1000] [BENCH_PEER=../shared/bench/peer-nginx] [BENCH_ARGS=...]
#        boots the system in QEMU ($(ACCEL), 1 vCPU, QEMU_MEM, MACHINE, restricted
#        user net) and measures boot-to-first-HTTPS-200 (with the Git fetch),
#        1 KiB keep-alive / Connection: close (resumed and full handshakes),
#        1 MiB transfer, QEMU peak RSS, subject heap high-water mark and image
#        sizes; runs the peer (Linux + nginx) back to back when BENCH_PEER has
#        it and prints ratios; capacity (bursts, idle TLS connections held,
#        heap/RSS per connection, p99 with 5,000 idle; QEMU and in-process);
#        then a BENCH_GIT_FILES-file site fetched at boot against
#        `git clone --depth 1` on the host. Table: build/bench.md.
#   make bench-profile [BENCH_TEST=1k-keepalive]
#        guest (RIP sampling via the QEMU monitor) and host (perf) profile
#        of one system under one wrk load.

BENCH_RUNS      ?= 3
BENCH_DUR       ?= 10s
BENCH_CONNS     ?= 32
BENCH_THREADS   ?= 2
BENCH_GIT_FILES ?= 1000
BENCH_PEER      ?= ../shared/bench/peer-nginx
BENCH_TEST      ?= 1k-keepalive
BENCH_ARGS      ?=

BENCH_PACKAGES := qemu-system-x86 wrk curl git

.PHONY: bench bench-deps bench-profile

bench-deps:
	@missing=$$(for p in $(BENCH_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

bench: bench-deps all
	python3 bench/bench.py --runs $(BENCH_RUNS) --dur $(BENCH_DUR) --conns $(BENCH_CONNS) \
	    --threads $(BENCH_THREADS) --git-files $(BENCH_GIT_FILES) --peer $(abspath $(BENCH_PEER)) \
	    --accel $(ACCEL) --machine $(MACHINE) --mem $(QEMU_MEM) --ram $(RAM) --minor-frame $(MINOR_FRAME) \
	    --tools $(TARGET)/release/muen-tools --out $(BUILD)/bench.md $(BENCH_ARGS)

bench-profile: bench-deps all
	python3 bench/profile.py --test $(BENCH_TEST) --dur $(BENCH_DUR) --conns $(BENCH_CONNS) \
	    --threads $(BENCH_THREADS) --accel $(ACCEL) --machine $(MACHINE) --mem $(QEMU_MEM) --ram $(RAM) --minor-frame $(MINOR_FRAME) \
	    --subject-sym $(TARGET)/release/unipi --kernel-sym $(TARGET)/release/muen-kernel \
	    --tools $(TARGET)/release/muen-tools $(BENCH_ARGS)
