# The single interface: CI runs these same targets.
SHELL := /bin/bash
CARGO ?= cargo
# Accelerated demo: one simulated day against the in-process Microsoft simulator.
RUN_CONFIG ?= config/demo.toml

.PHONY: all fmt fmt-check lint test test-rust run sim clean ocsf-schemas

all: lint test

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint: fmt-check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: test-rust

test-rust:
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

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
