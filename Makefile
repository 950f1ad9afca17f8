# booking-activity-sync: `make demo` and `make test` are all a fresh clone needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint types unit integration bench bench-fold bench-orgs bench-scale bench-sweep chaos lock schemas clean

# The venv is rebuilt whenever a lock or the project metadata changes. The runtime and
# build locks carry hashes (checked); the dev lock pins the dev kit and the dev tools.
LOCKS  := requirements/runtime.lock requirements/build.lock requirements/dev.lock
$(STAMP): $(LOCKS) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
	  -r requirements/runtime.lock -r requirements/build.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# The dev kit (emulator, embedded broker, demo) runs from the checkout: `python -m devkit`.
demo: $(STAMP)
	$(BIN)/python -m devkit demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

# Two pytest processes (pytest-xdist), each with its own Kafka node: the integration
# tests mostly wait on their worker processes, so two at a time fill the 2 cores.
# worksteal: a process that runs out of tests takes some of the other's, so the longest
# tests (up to 70 s) do not leave one process idle at the end (pytest 492 s against
# 508 s with the default scheduling, fresh clone, quiet, 2026-12-05).
TEST_PROCESSES ?= 2
test: lint types
	$(BIN)/pytest -q -n $(TEST_PROCESSES) --dist worksteal

bench-fold: $(STAMP)
	$(BIN)/python -m bench.fold_bench

bench: $(STAMP)
	$(BIN)/python -m bench.pipeline_bench

# 200 registered orgs, two workers, one org down and one over its daily limit during
# 500 ev/s of live traffic (~10 min; not part of `make test`): bench/orgs.json, the
# table in docs/performance.md. `python -m bench.orgs_bench --orgs 10` for a quick run.
bench-orgs: $(STAMP)
	$(BIN)/python -m bench.orgs_bench

chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

# One worker on RocksDB as its state grows to 1M bookings in stages (~20 min budget;
# not part of `make test`): bench/scale.json, the table in docs/performance.md.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale_bench

# A timer's sweep with 1 % due against the full sweep it replaced (bench/sweep.json).
bench-sweep: $(STAMP)
	$(BIN)/python -m bench.sweep_bench

# Regenerate the exported JSON Schema files from the pydantic models.
schemas: $(STAMP)
	$(BIN)/python -m schemas.export

# Rewrite the locks from what is installed in .venv (after adding a dependency:
# `.venv/bin/pip install NAME==X`, then `make lock`): requirements/lock.py splits the
# installed versions into runtime (pyproject's dependencies and theirs), build and dev,
# and takes the runtime and build hashes from `pip install --dry-run --report --platform`
# (the index's sha256 of the files pip picks for the image, CPython 3.11 on Linux x86_64
# and on aarch64: both are locked, with a comment naming each platform's file).
lock: $(STAMP)
	$(BIN)/python requirements/lock.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
