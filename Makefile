# litscreen — the two commands a new user runs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint up doctor bench soak clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "litscreen needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/litscreen demo $(DEMO_ARGS)

# two pytest-xdist processes, a test module each at a time (--dist loadfile: a module's fixtures and servers stay
# in one process); every process creates and drops its own test database
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# the in-process tier: no test that starts a worker, a server or any other process (under a minute), on two
# pytest-xdist processes (each creates and drops its own test database)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not process" -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

up: $(STAMP)
	mkdir -p instance
	$(BIN)/litscreen db upgrade
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -f Procfile web worker maintenance beat flower

# checks the running stack (database, schema, workers, beat, queues, LLM providers, connections): ✓ or ✗ with the fix
doctor: $(STAMP)
	$(BIN)/litscreen doctor

bench: $(STAMP)
	@for script in bench/bench_*.py; do [ $$script = bench/bench_soak.py ] && continue; echo "== $$script"; $(BIN)/python $$script || exit 1; done

soak: $(STAMP)
	$(BIN)/python bench/bench_soak.py $(SOAK_ARGS)

clean:
	-$(BIN)/litscreen db stop
	rm -rf $(VENV) instance build *.egg-info
