# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install snapshot-update bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/backprop-tui $(PRESET)

test: $(STAMP) lint
	TEXTUAL_ANIMATIONS=none $(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check backprop_tui tests benchmarks
	$(BIN)/lint-imports

snapshot-update: $(STAMP)
	TEXTUAL_ANIMATIONS=none $(BIN)/python -m pytest -n 2 -q tests/ui --snapshot-update

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
