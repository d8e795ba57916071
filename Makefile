# canvass — the two commands a newcomer needs:
#   make run    set up everything, load demo data, start web + worker + scheduler
#   make test   set up everything, run the whole test suite (SQLite and PostgreSQL)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The console's JavaScript, copied from npm packages (package-lock.json) by scripts/vendor-js.sh.
VENDORED := web/static/vendor/chart.umd.min.js

.PHONY: setup system-deps test-deps venv vendor run test lint format bench clean

setup: system-deps venv vendor

system-deps:
	@scripts/system-deps.sh

# What only the tests need on top (Debian's chromium for the console's browser tests).
test-deps:
	@scripts/system-deps.sh --tests

vendor: $(VENDORED)

$(VENDORED): package.json package-lock.json scripts/vendor-js.sh
	@scripts/vendor-js.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip wheel
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: setup
	@scripts/run.sh

test: setup test-deps
	@scripts/test.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot/engine

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Each benchmark exits 1 when it misses a target; "-" lets the next one run regardless.
bench: setup
	-$(BIN)/python -m bench.import_contacts
	-$(BIN)/python -m bench.fanout
	-$(BIN)/python -m bench.export
	-$(BIN)/python -m bench.voice

clean:
	rm -rf $(VENV) var bench/out .pytest_cache .ruff_cache node_modules web/static/vendor
