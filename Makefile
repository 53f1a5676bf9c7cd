# Keyhold: `make run` serves the app on SQLite, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app webapp
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run serve install install-dev test lint format migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(FLASK) db upgrade
	$(FLASK) run --host $(HOST) --port $(PORT)

# Production-style serving with gunicorn (settings in gunicorn.conf.py).
serve: install
	$(FLASK) db upgrade
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

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
