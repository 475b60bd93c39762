# Every target sets up what it needs: a virtual environment in .venv with the project and its test tools.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LOWEST := .venv-lowest
SYSTEM_PACKAGES := redis-server chromium node=nodejs npm

# Hanko's web components (hanko-elements) for server.py's login page, at the version package-lock.json pins.
NODE_MODULES := node_modules/.installed

.PHONY: serve test lint bench gate test-lowest test-package

serve: $(VENV)/.installed $(NODE_MODULES)
	$(PY) server.py --dev

test: $(VENV)/.installed $(NODE_MODULES)
	scripts/system-packages $(SYSTEM_PACKAGES)
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy hanko_tornado

bench: $(VENV)/.installed
	scripts/system-packages wrk valgrind
	$(PY) bench/run.py

# The performance gate: instructions per request under callgrind, against the margins in bench/gate.py.
gate: $(VENV)/.installed
	scripts/system-packages valgrind
	$(PY) bench/gate.py

# The suite against the lowest versions setup.cfg allows (.ci/lowest.txt), in a second environment.
test-lowest: $(LOWEST)/.installed $(NODE_MODULES)
	scripts/system-packages $(SYSTEM_PACKAGES)
	$(LOWEST)/bin/python -m pytest

# The sdist and the wheel built and checked, and the suite run against the installed wheel.
test-package: $(NODE_MODULES)
	scripts/system-packages $(SYSTEM_PACKAGES)
	PYTHON=$(PYTHON) .ci/package

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,server,redis]'
	touch $@

$(LOWEST)/.installed: setup.cfg pyproject.toml .ci/lowest.txt
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python -m pip install --quiet -e '.[test,server,redis]' -c .ci/lowest.txt
	touch $@

$(NODE_MODULES): package.json package-lock.json
	scripts/system-packages node=nodejs npm
	npm ci --no-audit --no-fund --loglevel=error
	touch $@
