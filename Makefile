# QML Explorer. `make run` and `make test` set up .venv (Python 3.11) on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

.PHONY: run test lint bench worker venv clean-venv e2e test-pg soak container

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (TensorFlow Quantum has no wheel for other versions); set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# put the repository on the venv's path so `.venv/bin/python -m qmlapp` works from any directory
	@$(BIN)/python -c 'import site, pathlib; pathlib.Path(site.getsitepackages()[0], "qmlapp-repo.pth").write_text("$(CURDIR)\n")'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)  ## start the app with an embedded worker on http://127.0.0.1:8501
	$(BIN)/python -m qmlapp serve

worker: $(STAMP)  ## an extra worker process for the same database
	$(BIN)/python -m qmlapp worker

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m pytest -q

test-pg: $(STAMP)  ## the database-touching tests against a throwaway PostgreSQL server
	scripts/with-postgres.sh $(BIN)/python -m pytest -q

e2e: $(STAMP)  ## browser tests: Playwright driving Debian's chromium against a real app + worker
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-e2e.txt
	$(BIN)/python -m pytest -q e2e

soak: $(STAMP)  ## load and fault soak: 4 workers x 200 tiny runs, kill -9 of workers, fuzzed specs, memory refusals
	$(BIN)/python scripts/soak.py $(SOAK_ARGS)

# The image, built and started with podman (no Docker engine here): health, then a tiny run inside it.
SMOKE := $(firstword $(wildcard ../shared/tools/container-smoke.sh /work/shared/tools/container-smoke.sh) .ci/container-smoke.sh)
container:
	SMOKE_KEEP=1 SMOKE_EXEC='test "$$(id -u)" != 0 && echo "{\"dataset\": \"banknote\", \"n_qubits\": 2, \"epochs\": 1}" | python -m qmlapp submit qnn --spec - --wait --json | python -c "import json, sys; r = json.load(sys.stdin); print(\"run\", r[\"id\"], r[\"status\"]); sys.exit(r[\"status\"] != \"succeeded\")"' bash $(SMOKE) .

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_qnn_step.py
	$(BIN)/python benchmarks/bench_importance.py
	$(BIN)/python benchmarks/bench_sweep_throughput.py
	$(BIN)/python benchmarks/bench_hypernet_enum.py
	$(BIN)/python benchmarks/bench_hypernet_grad.py
	$(BIN)/python benchmarks/bench_qnewton_hessian.py

clean-venv:
	rm -rf $(VENV)
