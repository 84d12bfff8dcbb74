# journey: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup kafka browser node-sdks datasets lint pytest bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## Run the whole pipeline on the embedded log with a generated demo dataset, then keep serving.
## `make demo PORT=9000` (or PORT=9000 make demo) serves on another port than 8000.
demo: setup
	$(VENV)/bin/journey demo --data-dir data/demo $(if $(PORT),--port $(PORT))

kafka:
	scripts/kafka.sh fetch

browser: setup
	scripts/install-browser.sh $(VENV)

node-sdks:
	scripts/install-node-sdks.sh

## The retentioneering `ecom` clickstream (external check of sessions and funnels), cached in .cache.
datasets: setup
	$(PY) -m tests.fixtures.ecom

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

pytest: setup kafka browser node-sdks datasets
	$(PY) -m pytest

## Everything CI checks: installs what it needs (venv, Kafka jars, Chromium), lints, runs every test.
test: lint pytest

bench: setup kafka
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .cache data test-artifacts
