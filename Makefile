# Tsunagu — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: vendor run test install lint typecheck unit integration e2e servers-up servers-down servers-wipe contracts bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The whole platform in one process: SQLite, in-process bus, demo data. Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/tsunagu run

## Lint, type-check and every test, on real PostgreSQL and Kafka (started and stopped here) and,
## for the desk, Debian's Chromium (installed here if missing).
test: $(STAMP)
	bash deploy/local/chromium.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m unit

## Refresh the desk's vendored browser assets from the npm registry (not needed by run or test).
vendor:
	bash services/web/vendor.sh

## Regenerate contracts/schemas and contracts/asyncapi.yaml from the event models.
contracts: $(STAMP)
	$(BIN)/python -m contracts.export

## The benchmarks of bench/ on real PostgreSQL and Kafka; figures to bench/results/latest.json.
## Servers of their own (not the tests'), with PostgreSQL durable as in production.
bench: $(STAMP)
	TSUNAGU_LOCAL_DIR=$(CURDIR)/var/bench TSUNAGU_PG_DURABLE=1 $(BIN)/python -m bench.run

servers-up:
	bash deploy/local/up.sh

## Stops them; their data and ports are kept for the next servers-up.
servers-down:
	bash deploy/local/down.sh

## Stops them and deletes their data (topics, offsets, databases) and ports.
servers-wipe:
	bash deploy/local/wipe.sh

clean:
	bash deploy/local/wipe.sh || true
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
