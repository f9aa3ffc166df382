# The README's two set-up commands: `make demo` and `make test`. CI runs .ci/run -> make test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Data sets and reference fixtures live outside the repository (never committed).
SHARED ?= $(abspath ../shared)
export SWARMEDGE_DATA ?= $(SHARED)/data
export SWARMEDGE_CONFORMANCE ?= $(SHARED)/conformance

PEERS ?= .venv-peers
export SWARMEDGE_PEERS_PYTHON ?= $(abspath $(PEERS))/bin/python

.PHONY: install peers browser arm demo test lint reproduce clean

# torch is installed first and exactly (2.13.0, CPU build): any looser spec pulls a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# optimum-onnx, the peer we compare quantization presets with, in a venv of its own: it
# pins transformers/tokenizers and must not shape swarmedge's dependencies.
$(PEERS)/.installed:
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install -q --upgrade pip
	$(PEERS)/bin/python -m pip install -q torch==2.13.0
	$(PEERS)/bin/python -m pip install -q optimum-onnx==0.1.0 onnxruntime==1.31.1 onnx==1.23.2 onnxscript==0.7.2
	touch $@

peers: $(PEERS)/.installed

# Headless Chromium renders the HTML report in the tests (Debian's package).
browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

# QEMU user-mode emulation and an aarch64 sysroot (cached) for `swarmedge arm-check`.
arm: install
	@command -v qemu-aarch64-static >/dev/null && command -v mmdebstrap >/dev/null || \
		(apt-get update -q && apt-get install -y -q qemu-user-static mmdebstrap)
	$(VENV)/bin/swarmedge arm-setup

demo: install
	$(VENV)/bin/swarmedge demo --workdir demo-out

lint: install
	$(PY) -m ruff check .

test: install peers browser arm lint
	$(PY) -m pytest

# Trains and evaluates every published configuration (many CPU hours); see docs/RESULTS.md.
reproduce: install
	$(PY) tools/reproduce.py

clean:
	rm -rf $(VENV) $(PEERS) demo-out build dist *.egg-info .pytest_cache .ruff_cache
