# The README's two set-up commands: `make demo` and `make test`. CI runs .ci/run -> make test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Data sets and reference fixtures live outside the repository (never committed).
SHARED ?= $(abspath ../shared)
export SWARMEDGE_DATA ?= $(SHARED)/data
export SWARMEDGE_CONFORMANCE ?= $(SHARED)/conformance
export SWARMEDGE_CASES ?= $(SHARED)/cases

PEERS ?= .venv-peers
export SWARMEDGE_PEERS_PYTHON ?= $(abspath $(PEERS))/bin/python

.PHONY: install peers bench-peers system arm demo test lint bench reproduce clean

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

# The runtimes users would pick instead, for `make bench` only, each in a venv of its own so
# that neither can move swarmedge's pins (versions that installed together: GUIDE.md §6).
OPENVINO ?= .venv-openvino
EXECUTORCH ?= .venv-executorch
$(OPENVINO)/.installed:
	$(PYTHON) -m venv $(OPENVINO)
	$(OPENVINO)/bin/python -m pip install -q --upgrade pip
	$(OPENVINO)/bin/python -m pip install -q openvino==2026.4.1 nncf==3.4.0
	touch $@

# torch first and exactly, as in .venv: executorch must not pull another torch build.
$(EXECUTORCH)/.installed:
	$(PYTHON) -m venv $(EXECUTORCH)
	$(EXECUTORCH)/bin/python -m pip install -q --upgrade pip
	$(EXECUTORCH)/bin/python -m pip install -q torch==2.13.0
	$(EXECUTORCH)/bin/python -m pip install -q executorch==1.5.1
	touch $@

bench-peers: $(OPENVINO)/.installed $(EXECUTORCH)/.installed

# Debian packages the tests drive for real: Chromium renders the HTML report, QEMU and
# mmdebstrap emulate Raspberry Pi CPUs, sshd plays a device on 127.0.0.1.
SYSTEM_TOOLS := chromium:chromium qemu-aarch64-static:qemu-user-static mmdebstrap:mmdebstrap \
	/usr/sbin/sshd:openssh-server
system:
	@missing="$(foreach t,$(SYSTEM_TOOLS),$(if $(shell command -v $(firstword $(subst :, ,$(t))) 2>/dev/null),,$(lastword $(subst :, ,$(t)))))"; \
	if [ -n "$$(echo $$missing)" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

# The aarch64 sysroot for `swarmedge arm-check`, built once into the cache.
arm: install system
	$(VENV)/bin/swarmedge arm-setup

demo: install
	$(VENV)/bin/swarmedge demo --workdir demo-out

lint: install
	$(PY) -m ruff check .

test: install peers system arm lint
	$(PY) -m pytest

# Every variant side by side (PyTorch, torch.ao, onnxruntime, optimum, OpenVINO, ExecuTorch,
# swarmedge) in one run, on a quiet machine: writes docs/BENCHMARKS.md and docs/benchmarks.json.
bench: install peers bench-peers
	$(PY) -m benchmarks
	$(PY) -m benchmarks.stream

# `swarmedge run` over a corpus of short texts (throughput on 1 and 2 cores and through Ray, peak
# memory for 1,000,000 texts, time to the first result; ~35 min on 2 cores, a quiet machine):
# writes docs/STREAMING.md and docs/streaming.json. `make bench` runs it too.
.PHONY: bench-stream
bench-stream: install
	$(PY) -m benchmarks.stream

# Lists the command of every row and seed of docs/RESULTS.md; each line runs one (train,
# evaluate, export, write docs/results/RUN/seed-N.json). All of them take days on 2 cores.
reproduce:
	$(PYTHON) tools/reproduce.py --list

# Every zoo card's accuracy against `swarmedge eval zoo/NAME/model.pt` on the full test set
# (minutes: PyTorch on 25,000 IMDB reviews per text model).
.PHONY: check-zoo
check-zoo: install
	$(PY) tools/zoo.py --check

clean:
	rm -rf $(VENV) $(PEERS) $(OPENVINO) $(EXECUTORCH) demo-out build dist *.egg-info .pytest_cache .ruff_cache
