# ceal — every target creates .venv/ and installs into it when missing or stale.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ceal-installed
PYTEST_ARGS ?=

.PHONY: demo test test-under-load lint proto proto-check deps system-deps node-tools bench load clean help

help:
	@echo "make demo   - synthesise data, train, export, serve, rank by uncertainty, label, retrain (~10 min, CPU)"
	@echo "make test   - unit and integration tests (installs Orthanc/PostgreSQL/Chromium with scripts/install-system-deps)"
	@echo "make test-under-load - the tests with a busy loop on every core beside them (RUNS=3 repeats)"
	@echo "make lint   - ruff and mypy"
	@echo "make proto  - regenerate proto/gen from proto/ceal/v1"
	@echo "make proto-check - buf lint and buf breaking on proto/ (as CI does)"
	@echo "make bench  - engine and serving benchmarks (not tests)"
	@echo "make load   - locust load test against a local server"

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || python3 -m venv $(VENV)
	@# the `service` extra is now CPU onnxruntime; a venv made with the old onnxruntime-gpu must not keep both
	@$(PY) -m pip uninstall -q -y onnxruntime-gpu 2>/dev/null || true
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

CHECKOV := $(VENV)/tools/checkov/bin/checkov

# checkov pins old networkx/packaging, so it lives in a venv of its own beside the project's.
$(CHECKOV): | $(STAMP)
	python3 -m venv $(VENV)/tools/checkov
	$(VENV)/tools/checkov/bin/pip install -q checkov==3.3.30

TRITON := $(VENV)/tools/tritonclient/bin/python

# tritonclient (the Open Inference Protocol tests' client, as a Triton user installs it) needs protobuf < 7,
# grpcio-tools needs >= 7: it lives in a venv of its own and talks to ceal only over the wire.
$(TRITON): | $(STAMP)
	python3 -m venv $(VENV)/tools/tritonclient
	$(VENV)/tools/tritonclient/bin/pip install -q 'tritonclient[grpc]==2.73.0'

deps: $(STAMP) system-deps node-tools $(CHECKOV) $(TRITON)

node-tools:
	@bash scripts/install-node-tools

system-deps:
	@bash scripts/install-system-deps

proto: $(STAMP)
	$(PY) scripts/gen_proto.py

proto-check:
	@bash scripts/check-proto

demo: $(STAMP)
	$(PY) scripts/demo.py

test: deps
	$(PY) -m pytest -q $(PYTEST_ARGS)

RUNS ?= 1

# The same suite with a CPU-burning loop on every core: tests must decide the same way on a loaded machine.
test-under-load: deps
	$(PY) scripts/under_load.py --runs $(RUNS) -- $(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy clients service trainer scripts

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

load: $(STAMP)
	$(PY) tests/load/run_load.py

clean:
	rm -rf runs/ .pytest_cache .mypy_cache .ruff_cache
