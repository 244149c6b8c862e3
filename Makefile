# Every target sets up what it needs; see README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := gateway/static/vendor/.installed

.PHONY: run test test-fast bench lint setup services clean-test-dbs

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade 'pip>=24' 'setuptools<81' wheel
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): gateway/package.json gateway/package-lock.json
	cd gateway && npm ci --no-audit --no-fund --silent
	bash deploy/vendor-assets.sh
	touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_STAMP)

services:
	bash deploy/ensure-services.sh
	bash deploy/ensure-documents.sh

run: setup services
	bash deploy/ensure-pdf.sh
	$(PY) -m deploy.run

# Two pytest runs: the service tier runs under eventlet's monkey-patching (as the services
# do), which must not leak into the end-to-end and browser tiers.
# The gates first (lint, types): a red gate stops the run before the slow tiers.
test: setup services lint
	bash deploy/ensure-browser.sh
	bash deploy/ensure-pdf.sh
	bash deploy/ensure-imap.sh
	$(PY) -m pytest tests/unit tests/service -q
	$(PY) -m pytest tests/e2e tests/browser -q

test-fast: setup services
	$(PY) -m pytest tests/unit -q

# make bench ARGS=payments: one module (or several: ARGS="payments notifications")
bench: setup services
	$(PY) -m bench $(ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

# Extract message keys and gettext strings, merge them into the ru/en catalogs.
messages: setup
	$(VENV)/bin/pybabel extract -F babel.cfg -o gateway/translations/messages.pot --no-location .
	$(VENV)/bin/pybabel update -i gateway/translations/messages.pot -d gateway/translations --no-fuzzy-matching
