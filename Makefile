# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make demo   the embedded stack with synthetic events flowing
#   make test   the full test suite against the real embedded broker and PostgreSQL
#   make lint   ruff, mypy (strict) and the layer contracts (import-linter)
# Both install the exact versions in requirements-test.lock; `make lock` regenerates the lock
# files from pyproject.toml (after adding or changing a dependency), keeping what still fits.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
UV_VERSION := 0.13.9
COMPILE := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --quiet

.PHONY: demo test lint up bench fuzz lock clean chromium

$(BIN)/riskwatch: pyproject.toml $(TEST_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(TEST_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

# the image installs $(LOCK) (what runs); development and tests $(TEST_LOCK) (that, the analysts' tools
# of the extra `tools` and the test tools)
lock: $(BIN)/uv
	$(COMPILE) -o $(LOCK)
	$(COMPILE) --extra tools --extra test -o $(TEST_LOCK)

up: $(BIN)/riskwatch
	$(BIN)/riskwatch up

demo: $(BIN)/riskwatch
	$(BIN)/riskwatch demo

test: $(BIN)/riskwatch chromium
	$(BIN)/python -m pytest -q

# Style and bugs (ruff), types (mypy strict; the packages are named in pyproject.toml) and the
# layers (import-linter: no layer imports one above it; docs/architecture.md).
lint: $(BIN)/riskwatch
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Many more generated requests than the suite's: FUZZ_EXAMPLES per API operation, role and kind of
# path (about 44 x 250 = 11,000 requests) and per ingest batch of 20 lines (500 x 20 = 10,000 lines).
FUZZ_API_EXAMPLES ?= 250
FUZZ_INGEST_EXAMPLES ?= 500
fuzz: $(BIN)/riskwatch
	RISKWATCH_FUZZ_EXAMPLES=$(FUZZ_API_EXAMPLES) $(BIN)/python -m pytest -q -s tests/integration/test_api_schema.py
	RISKWATCH_FUZZ_EXAMPLES=$(FUZZ_INGEST_EXAMPLES) $(BIN)/python -m pytest -q -s tests/integration/test_ingest_fuzz.py
# The browser tests drive Debian's Chromium (Playwright's own browser download needs the
# internet). Installed when missing and we may; otherwise those tests say why they skip.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	    || echo "chromium could not be installed; the browser tests will say so"; \
	fi

bench: $(BIN)/riskwatch
	$(BIN)/riskwatch bench

clean:
	rm -rf $(VENV) .riskwatch
