# booking-activity-sync: `make demo` and `make test` are all a fresh clone needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint types unit integration bench bench-fold bench-scale chaos lock schemas clean

# The venv is rebuilt whenever the lock or the project metadata changes.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
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

test: lint types
	$(BIN)/pytest -q

bench-fold: $(STAMP)
	$(BIN)/python -m bench.fold_bench

bench: $(STAMP)
	$(BIN)/python -m bench.pipeline_bench

chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

# One worker on RocksDB as its state grows to 1M bookings in stages (~20 min budget;
# not part of `make test`): bench/scale.json, the table in docs/performance.md.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale_bench

# Regenerate the exported JSON Schema files from the pydantic models.
schemas: $(STAMP)
	$(BIN)/python -m schemas.export

# Rewrite the lock from what is installed in .venv (after adding a dependency).
lock: $(STAMP)
	{ echo '# Exact versions for a reproducible install: `make lock` rewrites this from .venv.'; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -v "^pip==" | grep -v '^booking-activity-sync'; } > requirements.lock

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
