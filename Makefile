# `make run` and `make test` set up everything they need: a .venv with the project installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench csms clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/fleetsim run scenarios/quickstart.yaml

test: $(STAMP)
	command -v prometheus >/dev/null || (apt-get update && apt-get install -y --no-install-recommends prometheus) \
		|| echo "prometheus could not be installed: tests/test_prometheus.py will be skipped"
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/validators.py
	$(BIN)/python bench/scale.py

csms: $(STAMP)
	$(BIN)/fleetsim csms --port 9000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
