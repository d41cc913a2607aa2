# Two commands do all set-up on a fresh clone:
#   make demo   builds .venv, starts the sandbox org, applies a demo integration and runs Dagster
#   make test   builds .venv, installs the browser, runs ruff, mypy and the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench bench-bulk bench-deploy browser

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium drives the Dagster UI in the browser test (Playwright uses it as is).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

demo: setup
	$(VENV)/bin/sf-pipeline demo

lint: setup
	$(VENV)/bin/ruff check sf_pipeline sf_pipeline_tests bench
	$(VENV)/bin/mypy

test: setup browser lint
	$(VENV)/bin/pytest -q

bench: setup
	$(PY) bench/run.py
	$(PY) bench/bulk.py

# Bulk API 2.0 against REST only (1,000,000 Leads, without and with the sandbox's latency profile).
bench-bulk: setup
	$(PY) bench/bulk.py

# Dispatcher tick at 10,000 integrations and syncs per hour, on the production topology.
bench-deploy: setup
	$(PY) bench/deploy.py
