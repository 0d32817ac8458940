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
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: help install install-dev run report test test-heavy test-fast dev dev-postgres bench lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact
	@touch $@

.venv/.installed-dev: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra dev
	@touch $@ .venv/.installed

install: .venv/.installed ## install the locked dependencies

install-dev: .venv/.installed-dev ## install with the dev extras

$(DAGSTER_HOME)/dagster.yaml: | .venv/.installed
	@mkdir -p $(DAGSTER_HOME)
	cp deploy/sqlite/dagster.yaml $@
	@# Create the pool's single slot up front instead of lazily at the first claim of two racing runs.
	$(UV) run --frozen --no-sync dagster instance concurrency set duckdb_warehouse 1

run: install $(DAGSTER_HOME)/dagster.yaml ## materialize the whole chain on sample data for the latest $(SESSIONS) sessions, then report
	$(UV) run --frozen --no-sync python -m tft_pipeline run --sessions $(SESSIONS)

report: install ## print the report of the warehouse as it is
	$(UV) run --frozen --no-sync python -m tft_pipeline report

test: install-dev ## the whole pytest suite, offline
	$(UV) run --frozen --no-sync pytest -n 2 --dist loadgroup --timeout 600

test-heavy: install-dev ## the heavy tests (e.g. 60 queued runs of the run-level guard), a few minutes of CPU
	$(UV) run --frozen --no-sync pytest -m heavy --timeout 1800

test-fast: install-dev ## the suite without the slow end-to-end tests
	$(UV) run --frozen --no-sync pytest -n 2 --dist loadgroup -m "not slow and not heavy"

dev: install $(DAGSTER_HOME)/dagster.yaml ## the Dagster UI on http://$(HOST):$(PORT) (webserver + daemon)
	$(UV) run --frozen --no-sync dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

dev-postgres: install ## the Dagster UI on the PostgreSQL instance (DAGSTER_PG_* variables)
	@mkdir -p $(CURDIR)/.dagster_home_postgres
	cp deploy/postgres/dagster.yaml $(CURDIR)/.dagster_home_postgres/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/.dagster_home_postgres $(UV) run --frozen --no-sync dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

bench: install-dev ## the benchmarks; figures to bench/results.json
	$(UV) run --frozen --no-sync python -m bench

lint: install-dev ## ruff
	$(UV) run --frozen --no-sync ruff check tft_pipeline tft_pipeline_tests bench

clean: ## remove the warehouse, exports and the Dagster home (not .env)
	rm -rf data/*.duckdb data/*.duckdb.wal data/export $(DAGSTER_HOME)
