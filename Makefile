# Every target sets up what it needs: a virtual environment in .venv with the project and its test tools.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: serve test lint bench

serve: $(VENV)/.installed
	$(PY) server.py --dev

test: $(VENV)/.installed
	scripts/system-packages redis-server chromium node=nodejs npm
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy hanko_tornado

bench: $(VENV)/.installed
	scripts/system-packages wrk valgrind
	$(PY) bench/run.py

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,server,redis]'
	touch $@
