# canvass — the two commands a newcomer needs:
#   make run    set up everything, load demo data, start web + worker + scheduler
#   make test   set up everything, run the whole test suite (SQLite and PostgreSQL)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup system-deps venv run test lint format bench clean

setup: system-deps venv

system-deps:
	@scripts/system-deps.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip wheel
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: setup
	@scripts/run.sh

test: setup
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

clean:
	rm -rf $(VENV) var bench/out .pytest_cache .ruff_cache
