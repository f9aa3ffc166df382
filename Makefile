# The README's two set-up commands: `make demo` and `make test`. CI runs .ci/run -> make test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Data sets and reference fixtures live outside the repository (never committed).
SHARED ?= $(abspath ../shared)
export SWARMEDGE_DATA ?= $(SHARED)/data
export SWARMEDGE_CONFORMANCE ?= $(SHARED)/conformance

.PHONY: install demo test lint wheel-check clean

# torch is installed first and exactly (2.13.0, CPU build): any looser spec pulls a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/swarmedge demo --workdir demo-out

lint: install
	$(PY) -m ruff check .

test: install lint
	$(PY) -m pytest

clean:
	rm -rf $(VENV) demo-out build dist *.egg-info .pytest_cache .ruff_cache
