# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make demo   the embedded stack with synthetic events flowing
#   make test   the full test suite against the real embedded broker and PostgreSQL
# Both install the exact versions in requirements-test.lock; `make lock` regenerates the lock
# files from pyproject.toml (after adding or changing a dependency), keeping what still fits.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
UV_VERSION := 0.13.9
COMPILE := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --quiet

.PHONY: demo test up bench lock clean

$(BIN)/riskwatch: pyproject.toml $(TEST_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(TEST_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

# the image installs $(LOCK) (what runs); development and tests $(TEST_LOCK) (that and the test tools)
lock: $(BIN)/uv
	$(COMPILE) -o $(LOCK)
	$(COMPILE) --extra test -o $(TEST_LOCK)

up: $(BIN)/riskwatch
	$(BIN)/riskwatch up

demo: $(BIN)/riskwatch
	$(BIN)/riskwatch demo

test: $(BIN)/riskwatch
	$(BIN)/python -m pytest -q

bench: $(BIN)/riskwatch
	$(BIN)/riskwatch bench

clean:
	rm -rf $(VENV) .riskwatch
