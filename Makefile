# Two commands do all set-up on a fresh clone:
#   make demo   builds .venv, starts the sandbox org, applies a demo integration and runs Dagster
#   make test   builds .venv, installs the browser, runs ruff, mypy and the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-deployment test-model lint bench bench-bulk bench-deploy browser soak

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

# Whole deployments with a real daemon and webserver: the production topology (gRPC code server,
# 50 integrations over 10 simulated minutes) and every trigger firing at one integration at once.
# About 20 minutes on 2 cores, so they run on their own.
test-deployment: setup
	$(VENV)/bin/pytest -q -m deployment

# The model-based sync and reconcile test alone (make test runs it too), 200 sequences on SQLite
# and 25 on PostgreSQL.
test-model: setup
	$(VENV)/bin/pytest -q -m model

bench: setup
	$(PY) bench/run.py
	$(PY) bench/bulk.py

# Bulk API 2.0 against REST only (1,000,000 Leads, without and with the sandbox's latency profile).
bench-bulk: setup
	$(PY) bench/bulk.py

# Dispatcher tick at 10,000 integrations and syncs per hour, on the production topology.
bench-deploy: setup
	$(PY) bench/deploy.py

# The model-based sync/reconcile test at soak length: SOAK_JOBS processes (distinct seeds) of
# SOAK_EXAMPLES sequences of up to SOAK_STEPS steps each, on SQLite; 4 x 500 by default. Each prints its
# seed on failure; .soak-progress counts the sequences started.
SOAK_JOBS ?= 4
SOAK_EXAMPLES ?= 500
SOAK_STEPS ?= 8
soak: setup
	@rm -f .soak-progress; seed=$${SF_PIPELINE_MODEL_SEED:-$$(python3 -c 'import random; print(random.randrange(2**31))')}; \
	pids=""; for i in $$(seq 1 $(SOAK_JOBS)); do \
	  SF_PIPELINE_MODEL_SEED=$$((seed + i)) SF_PIPELINE_MODEL_EXAMPLES=$(SOAK_EXAMPLES) \
	  SF_PIPELINE_MODEL_STEPS=$(SOAK_STEPS) SF_PIPELINE_MODEL_PROGRESS=$(CURDIR)/.soak-progress \
	    $(VENV)/bin/pytest -q -p no:cacheprovider -o addopts="" --timeout 0 --hypothesis-show-statistics \
	    "sf_pipeline_tests/sync/test_reconcile_model.py::test_users_equal_the_org_projection_after_every_sync_and_reconcile_on_sqlite" \
	    > .soak-$$i.log 2>&1 & pids="$$pids $$!"; \
	done; status=0; i=0; for pid in $$pids; do i=$$((i + 1)); \
	  if wait $$pid; then echo "soak job $$i (seed $$((seed + i))): passed"; tail -1 .soak-$$i.log; \
	  else status=1; echo "soak job $$i (seed $$((seed + i))) FAILED:"; tail -40 .soak-$$i.log; fi; \
	done; echo "sequences started: $$(wc -l < .soak-progress)"; exit $$status
