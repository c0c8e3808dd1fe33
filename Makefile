# `make run` sets up a .venv with what running needs; `make test` adds the test, lint and
# benchmark tools to it, and the npm packages that check the Grafana dashboards against
# Grafana's schema.  Each step leaves a stamp, so only what its own files changed reruns.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
GRAFANA_SCHEMA := tests/grafana_schema
GRAFANA_SCHEMA_STAMP := $(GRAFANA_SCHEMA)/node_modules/.installed

.PHONY: run test lint bench csms clean grafana-schema

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(DEV_STAMP)

# tests/test_dashboard_schema.py: @grafana/schema and the TypeScript compiler, as pinned in
# $(GRAFANA_SCHEMA)/package-lock.json.
$(GRAFANA_SCHEMA_STAMP): $(GRAFANA_SCHEMA)/package.json $(GRAFANA_SCHEMA)/package-lock.json
	command -v npm >/dev/null || (apt-get update && apt-get install -y --no-install-recommends nodejs npm)
	npm ci --prefix $(GRAFANA_SCHEMA) --no-audit --no-fund
	touch $(GRAFANA_SCHEMA_STAMP)

grafana-schema: $(GRAFANA_SCHEMA_STAMP)

run: $(RUN_STAMP)
	$(BIN)/fleetsim run scenarios/quickstart.yaml

test: $(DEV_STAMP)
	command -v prometheus >/dev/null || (apt-get update && apt-get install -y --no-install-recommends prometheus) \
		|| echo "prometheus could not be installed: tests/test_prometheus.py will be skipped"
	$(MAKE) --no-print-directory grafana-schema \
		|| echo "the Grafana schema check could not be installed: tests/test_dashboard_schema.py will fail"
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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(GRAFANA_SCHEMA)/node_modules
