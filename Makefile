# gridflow — `make run` and `make test` set themselves up (.venv) on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-clock lint bench setup clean

run: $(STAMP)  ## set up, initialise the embedded (SQLite) gridflow and run it (worker + beat, one process)
	$(BIN)/gridflow init
	$(BIN)/gridflow archive import --if-empty config/archive/shengli.csv
	$(BIN)/gridflow demo --if-empty
	$(BIN)/gridflow points store load config/store.yaml
	$(BIN)/gridflow up

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file's tests in one of them; every
# test makes its own databases, homes and ports, so they do not meet. TEST_WORKERS=0 runs it in this one.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: $(STAMP)  ## set up, then lint and run the whole test suite (CI=true: missing services fail)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --quiet engine gridflow config tasks notifications tests bench
	$(BIN)/pytest $(XDIST)

# The suite with the clock months ahead, then months behind (Debian's faketime): no test may depend
# on today's date. CLOCK_SHIFTS and PYTEST_ARGS narrow it: make test-clock CLOCK_SHIFTS=+150d PYTEST_ARGS=tests/unit
CLOCK_SHIFTS ?= +150d -150d
PYTEST_ARGS  ?=
CLOCKWAIT    := $(VENV)/faketime-clockwait.so

test-clock: $(STAMP) $(CLOCKWAIT)  ## the suite under faketime, months ahead and behind (apt-get install faketime)
	@command -v faketime >/dev/null || { echo "test-clock needs faketime: apt-get install faketime"; exit 1; }
	@failed=""; for shift in $(CLOCK_SHIFTS); do \
	  echo "== the clock at $$shift"; \
	  CI=true LD_PRELOAD="$(abspath $(CLOCKWAIT))$${LD_PRELOAD:+:$$LD_PRELOAD}" \
	    faketime -f "$$shift" $(BIN)/pytest -q -p no:cacheprovider $(XDIST) $(PYTEST_ARGS) || failed="$$failed $$shift"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-clock: failed with the clock at$$failed"; exit 1; fi

# Lets timed waits time out under faketime; see the file.
$(CLOCKWAIT): tests/faketime/clockwait.c | $(STAMP)
	$(CC) -O2 -Wall -shared -fPIC -o $@ $< -ldl

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check engine gridflow config tasks notifications tests bench

fuzz: $(STAMP)  ## the API fuzzed from its OpenAPI with many more examples than the suite's bounded run
	GRIDFLOW_TEST_FUZZ_EXAMPLES=300 $(BIN)/python -m pytest -q tests/integration/test_api_fuzz.py

bench: $(STAMP)  ## benchmarks against the local PostgreSQL (not part of the test suite)
	$(BIN)/python -m bench.transitions --min-ratio 0.5
	$(BIN)/python -m bench.sla_sweep
	$(BIN)/python -m bench.dispatch
	$(BIN)/python -m bench.e2e_latency
	$(BIN)/python -m bench.scoring
	$(BIN)/python -m bench.points
	$(BIN)/python -m bench.cli

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "gridflow needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
	  { echo "cannot create $(VENV): install the venv module (Debian: apt-get install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# Bytecode for gridflow's own modules now: an editable install leaves them to the first import, and
	@# where PYTHONDONTWRITEBYTECODE is set every `gridflow` command would compile them again.
	$(BIN)/python -m compileall -q engine gridflow config tasks notifications bench >/dev/null
	@touch $(STAMP)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis .ruff_cache *.egg-info
