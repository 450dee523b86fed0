# The single interface: CI runs these same targets.
SHELL := /bin/bash
CARGO ?= cargo
# Accelerated demo: one simulated day against the in-process Microsoft simulator.
RUN_CONFIG ?= config/demo.toml
# Python tools (moto, cfn-lint, checkov, aws-sam-translator, cargo-lambda) live in one venv.
VENV ?= .tools/venv
PY := $(VENV)/bin/python

.PHONY: all fmt fmt-check lint test test-rust tools bench inventory-bench build run sim clean ocsf-schemas smoke chaos

all: lint test

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint: fmt-check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p itdr-cli --features aws --all-targets -- -D warnings
	$(CARGO) clippy -p itdr-cli --no-default-features --bins -- -D warnings

test: tools test-rust test-infra

# Installs the Python tools once (re-runs when the requirements change), and headless
# Chromium for the assessment report's browser test (tests/integration/tests/assess.rs).
tools: $(VENV)/.installed browser

.PHONY: browser
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

$(VENV)/.installed: tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r tools/requirements.txt
	touch $@

# IaC checks: cfn-lint, checkov and the moto deployment test (infra/README.md).
.PHONY: test-infra package deploy
test-infra: tools
	infra/check.sh

# The Lambda zips that infra/template.yaml's CodeUri points at, written by `build`.
package: build
	@for f in $(LAMBDA_FUNCTIONS); do \
	  test -s target/lambda/$$f/bootstrap.zip || { echo "missing target/lambda/$$f/bootstrap.zip" >&2; exit 1; }; \
	  ls -l target/lambda/$$f/bootstrap.zip; done

# sam deploy; settings in infra/deploy.sh, e.g. make deploy REGION=us-gov-west-1
deploy: package
	REGION="$(REGION)" STACK="$(STACK)" DEPLOYMENT="$(DEPLOYMENT)" MAX_CONCURRENCY="$(MAX_CONCURRENCY)" \
	  SCHEDULE_MINUTES="$(SCHEDULE_MINUTES)" SCHEDULE_TRIGGER="$(SCHEDULE_TRIGGER)" \
	  ALARM_EMAIL="$(ALARM_EMAIL)" PARAMS="$(PARAMS)" S3_BUCKET="$(S3_BUCKET)" infra/deploy.sh

test-rust:
	ITDR_MOTO_SERVER=$(abspath $(VENV))/bin/moto_server $(CARGO) test --workspace --lib --bins --tests --no-fail-fast
	ITDR_MOTO_SERVER=$(abspath $(VENV))/bin/moto_server $(CARGO) test -p itdr-cli --features aws --test registry_aws
	$(CARGO) test --workspace --doc

# The long chaos run (tests/aws/CHAOS.md): faults injected at random end to end against moto
# and the simulator, then lost events, duplicates, cursor regressions and freshness. Not part
# of `make test` (its short version is). CHAOS_SEED and CHAOS_HOURS change the run;
# CHAOS_AWS_FAULTS=0 leaves out our side's faults (crashes, races, SQS and DynamoDB faults).
CHAOS_SEED ?= 16
CHAOS_HOURS ?= 24
CHAOS_AWS_FAULTS ?= 1
chaos: tools
	CHAOS_SEED=$(CHAOS_SEED) CHAOS_HOURS=$(CHAOS_HOURS) CHAOS_AWS_FAULTS=$(CHAOS_AWS_FAULTS) ITDR_MOTO_SERVER=$(abspath $(VENV))/bin/moto_server \
		$(CARGO) test -p itdr-aws-tests --test chaos -- --ignored --nocapture chaos_long

# Optimised figures on this machine (README, "Benchmarks"): normalization, a whole poll, the
# seen set of a 100k/h stream over a day, the inventory and the assessment of a 10,000-user
# tenant, the scheduler's fan-out of 10,000 tenants (moto), the poller's cold start and peak
# RSS, the zip sizes. Each bench writes target/bench-<name>.json; bench-results merges them
# into target/bench-results.json with the cost model (docs/COST.md) and prints one table. A
# bench that fails is not fatal here: its figures show as missing.
BENCH_PROFILE ?= bench-run
.PHONY: bench-fanout bench-poller bench-zips bench-results
bench:
	rm -f $(CARGO_TARGET_DIR)/bench-*.json
	-$(CARGO) build --profile bench-run -p itdr-cli
	-$(CARGO) bench --profile $(BENCH_PROFILE) -p itdr-integration-tests --bench pipeline --bench normalize --bench seen_day --bench inventory --bench assess --bench fleet --bench fleet_http
	-$(MAKE) --no-print-directory bench-fanout
	-$(MAKE) --no-print-directory bench-poller
	-$(MAKE) --no-print-directory bench-zips
	$(MAKE) --no-print-directory bench-results

# The scheduler's fan-out of FANOUT_TENANTS tenants (10,000) against moto, run through
# scripts/moto-server-bench.py: released moto reads a whole queue for each message sent to it,
# so 30,000 jobs would take it hours; the launcher removes those scans and nothing else.
FANOUT_TENANTS ?= 10000
bench-fanout: $(VENV)/bin/moto_server_bench
	FANOUT_TENANTS=$(FANOUT_TENANTS) ITDR_MOTO_SERVER=$(abspath $(VENV))/bin/moto_server_bench $(CARGO) bench --profile $(BENCH_PROFILE) -p itdr-aws-tests --bench fanout

# The launcher runs with the venv's Python (which has moto).
$(VENV)/bin/moto_server_bench: scripts/moto-server-bench.py $(VENV)/.installed
	{ echo '#!$(abspath $(VENV))/bin/python'; cat scripts/moto-server-bench.py; } > $@.tmp
	chmod +x $@.tmp
	mv $@.tmp $@

bench-poller: $(VENV)/.installed
	SMOKE_PROFILE=$(BENCH_PROFILE) SMOKE_COLD_STARTS=5 SMOKE_OUT=out/bench-poller SMOKE_BENCH_JSON="$(CARGO_TARGET_DIR)/bench-poller.json" \
	  SMOKE_ITDR="$(CARGO_TARGET_DIR)/bench-run/itdr" \
	  VENV="$(VENV)" CARGO_TARGET_DIR="$(CARGO_TARGET_DIR)" scripts/lambda-smoke.sh

# BENCH_ZIPS_BUILD: the functions built when their zip is stale (scripts/bench-zips.sh).
bench-zips: $(VENV)/.installed
	rustup target add aarch64-unknown-linux-gnu
	VENV="$(VENV)" CARGO_TARGET_DIR="$(CARGO_TARGET_DIR)" scripts/bench-zips.sh

bench-results:
	$(CARGO) run -q -p itdr-integration-tests --bin bench-results -- "$(CARGO_TARGET_DIR)"

# The identity inventory of a 10,000-user, 5,000-mailbox tenant: requests, simulated hours,
# memory (not part of `make test`; its short version is tests/integration/tests/inventory.rs).
inventory-bench:
	$(CARGO) bench -p itdr-integration-tests --bench inventory

# Time to build the Identity Security Assessment of a 10,000-user tenant from its events
# (not part of `make test`).
.PHONY: assess-bench
assess-bench:
	$(CARGO) bench --profile bench-run -p itdr-integration-tests --bench assess

# The Lambda packages as arm64 zips (target/lambda/<function>/bootstrap.zip).
# cargo-lambda comes from the tools venv; it must get CARGO_TARGET_DIR, not --target-dir.
LAMBDA_FUNCTIONS := scheduler poller poller-gcch
# The report functions (the Identity Security Assessment on AWS).
LAMBDA_FUNCTIONS += report report-gcch
LAMBDA_FUNCTIONS += actions actions-gcch
CARGO_TARGET_DIR ?= $(abspath target)

build: tools
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(abspath $(VENV))/bin:$$PATH" CARGO_TARGET_DIR="$(CARGO_TARGET_DIR)" \
		cargo lambda build --release --arm64 --output-format zip $(addprefix -p ,$(LAMBDA_FUNCTIONS))
	ls -l $(foreach f,$(LAMBDA_FUNCTIONS),$(CARGO_TARGET_DIR)/lambda/$(f)/bootstrap.zip)

# Fuzzing (cargo fuzz, libFuzzer): every target for FUZZ_SECS seconds (default 60), with the
# executions of each; installs a nightly toolchain and cargo-fuzz if missing (fuzz/README.md).
# Not part of `test`.
.PHONY: fuzz
fuzz:
	FUZZ_SECS="$(FUZZ_SECS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_TOOLCHAIN="$(FUZZ_TOOLCHAIN)" fuzz/run.sh

# Smoke test of the three functions under cargo lambda watch/invoke on moto and the simulator,
# with the poller's cold-start and memory figures (infra/README.md). Not part of `test`.
smoke: tools
	VENV="$(VENV)" CARGO_TARGET_DIR="$(CARGO_TARGET_DIR)" scripts/lambda-smoke.sh

run:
	$(CARGO) build --profile bench-run -p itdr-cli
	./target/bench-run/itdr run --config $(RUN_CONFIG)

sim:
	$(CARGO) run -p itdr-cli -- sim

# Regenerates the OCSF JSON Schema fixtures (needs PyPI).
ocsf-schemas:
	python3 -m venv .venv && .venv/bin/pip install -q -r scripts/requirements-ocsf.txt
	.venv/bin/python scripts/gen-ocsf-schemas.py

clean:
	$(CARGO) clean
	rm -rf out
