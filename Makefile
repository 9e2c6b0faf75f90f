# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make demo   the embedded stack with synthetic events flowing
#   make test   the full test suite against the real embedded broker and PostgreSQL
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test up bench clean

$(BIN)/riskwatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

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
