# tft_pipeline: `make run` on a fresh machine with Python 3.11+, git and make.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# uv from PATH, else a private copy bootstrapped from PyPI into .tools/ (no curl | sh).
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
# Compile every installed module to bytecode at install time: with PYTHONDONTWRITEBYTECODE set (as
# in many CI and container images) each process would otherwise recompile ~1,600 modules from
# source, about 4-8 s per command on 2 cores.
export UV_COMPILE_BYTECODE := 1
# One persistent Dagster instance for the project, so run history survives restarts.
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
SESSIONS ?= 60
# The Temporal Fusion Transformer's stack (torch) lives in its own venv, .venv-tft (`make install-tft`),
# so .venv, `make test` and a plain `uv sync` never gain or lose it. TFT_SIGNAL_MODEL=tft (in the
# environment or .env) makes run, report and dev use it.
TFT_VENV := $(CURDIR)/.venv-tft
TFT_SIGNAL_MODEL ?= $(shell sed -n 's/^[[:space:]]*TFT_SIGNAL_MODEL[[:space:]]*=[[:space:]]*//p' .env 2>/dev/null | tail -n 1 | tr -d '"'"'"' ')
ifeq ($(TFT_SIGNAL_MODEL),tft)
RUN_VENV := UV_PROJECT_ENVIRONMENT=$(TFT_VENV)
RUN_INSTALL := install-tft
else
RUN_VENV :=
RUN_INSTALL := install
endif
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: help install install-dev install-tft run report test test-heavy test-fast test-tft dev dev-postgres bench bench-tft lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact
	@touch $@

.venv/.installed-dev: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra dev --extra celery
	@touch $@ .venv/.installed

install: .venv/.installed ## install the locked dependencies

install-dev: .venv/.installed-dev ## install with the dev extras

$(TFT_VENV)/.installed: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(TFT_VENV) $(UV) sync --frozen --inexact --extra dev --extra celery --extra tft
	@touch $@

install-tft: $(TFT_VENV)/.installed ## the TFT's stack (CPU torch) in .venv-tft, beside .venv

$(TFT_VENV)/.installed-reference: $(TFT_VENV)/.installed
	UV_PROJECT_ENVIRONMENT=$(TFT_VENV) $(UV) sync --frozen --inexact --extra dev --extra celery --extra tft --extra tft-reference
	@touch $@

$(DAGSTER_HOME)/dagster.yaml: | $(RUN_INSTALL)
	@mkdir -p $(DAGSTER_HOME)
	cp deploy/sqlite/dagster.yaml $@
	@# Create the pool's single slot up front instead of lazily at the first claim of two racing runs.
	$(RUN_VENV) $(UV) run --frozen --no-sync dagster instance concurrency set duckdb_warehouse 1
	@# At most 2 price fetch steps ask Yahoo at once, sharing TFT_PRICE_RPS (docs/deploy.md).
	$(RUN_VENV) $(UV) run --frozen --no-sync dagster instance concurrency set yahoo_prices 2

run: $(RUN_INSTALL) $(DAGSTER_HOME)/dagster.yaml ## materialize the whole chain on sample data for the latest $(SESSIONS) sessions, then report
	$(RUN_VENV) $(UV) run --frozen --no-sync python -m tft_pipeline run --sessions $(SESSIONS)

report: $(RUN_INSTALL) ## print the report of the warehouse as it is
	$(RUN_VENV) $(UV) run --frozen --no-sync python -m tft_pipeline report

test: install-dev ## the whole pytest suite, offline
	$(UV) run --frozen --no-sync pytest -n 2 --dist loadgroup --timeout 600

test-heavy: install-dev ## the heavy tests (e.g. 60 queued runs of the run-level guard), a few minutes of CPU
	$(UV) run --frozen --no-sync pytest -m heavy --timeout 1800

test-tft: install-tft ## the TFT's tests (marker tft) in .venv-tft, torch on one thread
	UV_PROJECT_ENVIRONMENT=$(TFT_VENV) $(UV) run --frozen --no-sync pytest -m tft --timeout 1200

test-fast: install-dev ## the suite without the slow end-to-end tests
	$(UV) run --frozen --no-sync pytest -n 2 --dist loadgroup -m "not slow and not heavy and not tft"

dev: $(RUN_INSTALL) $(DAGSTER_HOME)/dagster.yaml ## the Dagster UI on http://$(HOST):$(PORT) (webserver + daemon)
	$(RUN_VENV) $(UV) run --frozen --no-sync dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

dev-postgres: install ## the Dagster UI on the PostgreSQL instance (DAGSTER_PG_* variables)
	@mkdir -p $(CURDIR)/.dagster_home_postgres
	cp deploy/postgres/dagster.yaml $(CURDIR)/.dagster_home_postgres/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/.dagster_home_postgres $(UV) run --frozen --no-sync dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

bench: install-dev ## the benchmarks; figures to bench/results.json
	$(UV) run --frozen --no-sync python -m bench

bench-tft: $(TFT_VENV)/.installed-reference ## the TFT benchmark (ours vs pytorch-forecasting's, TFT vs baseline)
	UV_PROJECT_ENVIRONMENT=$(TFT_VENV) $(UV) run --frozen --no-sync python -m bench tft

lint: install-dev ## ruff
	$(UV) run --frozen --no-sync ruff check tft_pipeline tft_pipeline_tests bench

clean: ## remove the warehouse, exports and the Dagster home (not .env)
	rm -rf data/*.duckdb data/*.duckdb.wal data/export $(DAGSTER_HOME)
