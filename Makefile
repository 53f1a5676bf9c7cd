# Keyhold: `make run` serves the app on SQLite, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app webapp
HOST   ?= 127.0.0.1
PORT   ?= 5000
# Every package at its recorded version (constraints.txt); `make constraints` rebuilds it.
PINNED  = $(if $(CONSTRAINTS_OFF),,-c constraints.txt)

.PHONY: run serve install install-dev test lint format migrate clean bench screenshots constraints

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "Keyhold needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1)." \
	  "Run with PYTHON=python3.12 (for example)."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt $(PINNED)
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt constraints.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt $(PINNED)
	touch $@

# Rebuild constraints.txt (every package's version) from a fresh .venv after a pin changes.
constraints:
	rm -rf $(VENV)
	$(MAKE) install-dev CONSTRAINTS_OFF=1
	$(BIN)/pip freeze --exclude-editable > constraints.tmp
	{ sed -n '1,3p' constraints.txt; cat constraints.tmp; } > constraints.new && rm constraints.tmp
	mv constraints.new constraints.txt

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(FLASK) db upgrade
	$(FLASK) setup-token --first-start
	$(FLASK) run --host $(HOST) --port $(PORT)

# Production-style serving with gunicorn (settings in gunicorn.conf.py).
serve: install
	$(FLASK) db upgrade
	$(FLASK) setup-token --first-start
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# The browser tests (tests/e2e, marker e2e) drive Debian's Chromium. Without it they are left
# out, and the run says so at the end, instead of ending with skipped tests.
CHROMIUM := /usr/bin/chromium
test: install-dev
ifeq ($(wildcard $(CHROMIUM)),)
	@status=0; $(BIN)/pytest -m "not e2e" $(PYTEST_ARGS) || status=$$?; \
	  echo; echo "NOTE: $(CHROMIUM) is missing, so the browser tests (tests/e2e) did not run."; \
	  echo "      Install it with: apt-get install -y chromium"; exit $$status
else
	$(BIN)/pytest $(PYTEST_ARGS)
endif

# Regenerate docs/screenshots/*.png (shown in the README) from the real app in Chromium.
screenshots: install-dev
	$(BIN)/python -m tests.e2e.screenshots

# Benchmarks (code in bench/, several minutes): prints the results table and rewrites its block
# in docs/benchmarks.md. wrk, the HTTP load generator, comes from Debian; PostgreSQL figures
# need the server on 127.0.0.1:5432 (skipped with a note when it is not running).
bench: install-dev
	@command -v wrk >/dev/null || { echo "installing wrk (HTTP load generator) from Debian"; \
	  apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Generate a migration after changing models: make migrate m="add column x"
migrate: install
	$(FLASK) db migrate -m "$(m)"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
