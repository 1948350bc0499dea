# Two commands do all set-up: `make run` and `make test` (see README).
# They install the locks only, every file checked against its hash (README "Dependencies").
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
PIP_INSTALL := $(PY) -m pip install --quiet --require-hashes --only-binary :all:

.PHONY: run test lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP_RUN): requirements.lock | $(PY)
	$(PIP_INSTALL) -r requirements.lock
	touch $@

$(STAMP_DEV): requirements.lock requirements-dev.lock | $(PY)
	$(PIP_INSTALL) -r requirements-dev.lock
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(PY) cli.py db upgrade
	$(PY) app.py

test: $(STAMP_DEV)
	$(PY) -m pytest $(PYTEST_ARGS)

# Lint and types, settings in pyproject.toml; CI (.ci/run) runs it before the tests.
lint: $(STAMP_DEV)
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) var
