# `make run` sets up a .venv with what running needs; `make test` adds the test, lint and
# benchmark tools to it.  Each step leaves a stamp, so only what pyproject.toml changed reruns.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint bench csms clean

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/fleetsim run scenarios/quickstart.yaml

test: $(DEV_STAMP)
	command -v prometheus >/dev/null || (apt-get update && apt-get install -y --no-install-recommends prometheus) \
		|| echo "prometheus could not be installed: tests/test_prometheus.py will be skipped"
	$(BIN)/pytest -q

# mypy cannot follow the editable install's import hook: it reads the `fleetsim` namespace
# from links to the code folders, the same links bench/checkout.py makes.
lint: $(DEV_STAMP)
	mkdir -p .namespace/fleetsim
	for folder in cli simulator ev_models grid_models; do ln -sfn ../../$$folder .namespace/fleetsim/$$folder; done
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(DEV_STAMP)
	$(BIN)/python bench/validators.py
	$(BIN)/python bench/scale.py

csms: $(RUN_STAMP)
	$(BIN)/fleetsim csms --port 9000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
