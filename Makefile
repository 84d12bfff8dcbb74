# journey: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup kafka postgres browser node-sdks java-sdk wheelhouse datasets lint pytest bench bench-scale bench-scale-out clean
WHEELHOUSE := .cache/wheelhouse

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

## Debian's PostgreSQL server binaries: tests/pg.py runs a throwaway cluster of its own per session.
postgres:
	scripts/postgres.sh

browser: setup
	scripts/install-browser.sh $(VENV)

node-sdks:
	scripts/install-node-sdks.sh

## Segment's analytics-java and its dependencies from Maven Central (tests/sdk/java).
java-sdk:
	scripts/install-java-sdk.sh

## Wheels of the runtime dependencies (no extras), so that tests/install builds a fresh venv fast.
wheelhouse: $(WHEELHOUSE)/.stamp

$(WHEELHOUSE)/.stamp: pyproject.toml | setup
	mkdir -p $(WHEELHOUSE)
	$(PY) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > $(WHEELHOUSE)/requirements.txt
	echo 'setuptools>=68' >> $(WHEELHOUSE)/requirements.txt  # the wheel's build backend
	$(PY) -m pip download -q -d $(WHEELHOUSE) -r $(WHEELHOUSE)/requirements.txt
	touch $@

## The retentioneering `ecom` clickstream (external check of sessions and funnels), cached in .cache.
datasets: setup
	$(PY) -m tests.fixtures.ecom

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

pytest: setup kafka postgres browser node-sdks java-sdk wheelhouse datasets
	$(PY) -m pytest

## Everything CI checks: installs what it needs (venv, Kafka jars, PostgreSQL, Chromium), lints, runs every test.
test: lint pytest

bench: setup kafka
	$(PY) bench/run_all.py

## The scale benchmark: processor catch-up, memory, rebuild at 1M and 10M events (EVENTS= to choose).
EVENTS ?= 1000000 10000000
bench-scale: setup
	$(PY) bench/bench_scale.py --events $(EVENTS)

## Scale-out: 1, 2 and 4 processors catch up on one Kafka backlog (SCALE_OUT_EVENTS=, PROCESSORS=).
SCALE_OUT_EVENTS ?= 200000
PROCESSORS ?= 1,2,4
bench-scale-out: setup kafka
	$(PY) bench/bench_scale_out.py --events $(SCALE_OUT_EVENTS) --processors $(PROCESSORS)

clean:
	rm -rf $(VENV) .cache data test-artifacts
