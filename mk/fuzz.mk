# Fuzzing targets (make fuzz): see docs/fuzzing.md.
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="http_connection git_pack"]
#        runs each target for FUZZ_SECONDS (one after the other, one process), prints a table
#        target -> executions, exec/s, coverage, corpus size, crashes; writes build/fuzz.md
#   make fuzz-seeds   regenerates the committed seed corpora (fuzz/seeds) from real peers
#   make fuzz-regressions   replays the inputs that once crashed a target (fuzz/regressions)

FUZZ_SECONDS   ?= 60
FUZZ_TOOLCHAIN ?= nightly
FUZZ_ALL       := $(sort $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs))))
FUZZ_TARGETS   ?= $(FUZZ_ALL)

.PHONY: fuzz fuzz-deps fuzz-seeds fuzz-regressions

fuzz-deps:
	@rustup toolchain list | grep -q '^$(FUZZ_TOOLCHAIN)' || { \
	  echo "make fuzz needs the $(FUZZ_TOOLCHAIN) toolchain (rustup toolchain install $(FUZZ_TOOLCHAIN))"; exit 1; }
	@cargo +$(FUZZ_TOOLCHAIN) fuzz --version >/dev/null 2>&1 || \
	  cargo +$(FUZZ_TOOLCHAIN) install cargo-fuzz --locked

fuzz: fuzz-deps
	@mkdir -p $(BUILD)
	FUZZ_TOOLCHAIN=$(FUZZ_TOOLCHAIN) fuzz/run.sh $(FUZZ_SECONDS) $(abspath $(BUILD))/fuzz.md $(FUZZ_TARGETS)

# Needs git (daemon, http-backend) and tar. The sinfo, boot info and image seeds come
# from the system image of an earlier `make` (skipped when there is none).
fuzz-seeds:
	@rm -f $(BUILD)/fuzz-system.img
	@if [ -x $(TARGET)/release/muen-tools ] && [ -f $(BUILD)/system.xml ] && [ -f $(BUILD)/unipi.cspec.xml ]; then \
	  $(TARGET)/release/muen-tools image --system $(BUILD)/system.xml -o $(BUILD)/fuzz-system.img; \
	else echo "fuzz-seeds: no 'make' build: no sinfo, boot info or image seeds"; fi
	rm -rf fuzz/seeds
	$(CARGO) run --manifest-path fuzz/Cargo.toml -p unipi-fuzz-seedgen -- \
	  $(if $(wildcard $(BUILD)/system.xml),$(abspath $(BUILD))/fuzz-system.img)
	@# The crates that record their own peers write their targets' seeds:
	@# h2_* (curl, nghttp), acme_* (recorded pebble exchanges), ssh_* (OpenSSH).
	$(CARGO) test --locked -p unipi-h2 --test seeds write_fuzz_seeds -- --ignored
	$(CARGO) test --locked -p unipi-acme --test fuzz_seeds write_fuzz_seeds -- --ignored
	UNIPI_SSH_FUZZ_SEEDS=$(abspath fuzz/seeds) $(CARGO) test --locked -p unipi-ssh --test openssh \
	  write_fuzz_seeds -- --ignored

# Replays every input that once crashed a target (fuzz/regressions/T/*) once.
fuzz-regressions: fuzz-deps
	@cd fuzz && mkdir -p target && for d in regressions/*/; do t=$$(basename $$d); \
	  echo "fuzz-regressions: $$t"; \
	  cargo +$(FUZZ_TOOLCHAIN) fuzz run $$t $$d -- -runs=0 >/dev/null 2>target/regressions-$$t.log \
	    || { echo "  $$t still crashes (fuzz/target/regressions-$$t.log)"; failed=1; }; \
	done; exit $${failed:-0}
