# posetween: one-command setup, tests, demo, data, training and evaluation.
# Every target sets up .venv by itself on a fresh machine (CPU build of PyTorch).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared/data
TORCH  ?= torch==2.13.0
# Where the CPU build of torch comes from when the pin alone would bring the CUDA one (Linux).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# What `make setup` installs besides the runtime (numpy, onnxruntime, pyzmq, msgpack).
EXTRAS ?= train,demo,test

.PHONY: setup test runtime-check demo data train train-open eval eval-open model-card bench clean

$(BIN)/posetween: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned and CPU-only: an unpinned torch, or PyPI's on Linux, is a multi-GB CUDA build.
	bash scripts/install_torch.sh $(BIN)/pip "$(TORCH)" $(TORCH_INDEX)
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(BIN)/posetween

test: setup
	$(BIN)/python -m pytest -q -ra

# The runtime alone (pip install .: no torch, no OpenCV) in a second environment: its size, and
# the commands and README snippets that must work there. RUNTIME_PYTHON: another interpreter to
# install it with (the runtime supports 3.10-3.13; .ci/run checks both ends too), e.g.
# RUNTIME_PYTHON=python3.13, or with pyenv its path: $(pyenv root)/versions/3.13.0/bin/python3.13
RUNTIME_PYTHON ?= $(PYTHON)
RUNTIME_VENV   ?= /tmp/posetween-runtime
runtime-check: setup
	rm -rf $(RUNTIME_VENV) && $(RUNTIME_PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install -q .
	$(RUNTIME_VENV)/bin/python -c "import importlib.util as u; assert u.find_spec('torch') is None, 'torch in the runtime'"
	$(RUNTIME_VENV)/bin/posetween serve --help > /dev/null
	POSETWEEN_PYTHON=$(RUNTIME_VENV)/bin/python $(BIN)/python -m pytest -q tests/test_snippets.py
	@$(RUNTIME_VENV)/bin/python -c "import sys; print('runtime on Python', sys.version.split()[0], 'passed; sizes:')"
	@du -sh $(RUNTIME_VENV) $(VENV) 2>/dev/null || true

# The main command: the live demo, headless, on the shipped clip with the shipped model.
demo: setup
	$(BIN)/posetween demo --headless --out out/demo.mp4

# Bandai alone (the early training stages), and every source in one file, a subset each.
data/bandai.h5: | setup
	$(BIN)/posetween data build $(SHARED)/mocap/bandai-namco-1.tar.xz $(SHARED)/mocap/bandai-namco-2.tar.xz --out $@

data/multi.h5: | setup
	BIN=$(BIN) bash scripts/build_data.sh $(SHARED)

data: data/bandai.h5 data/multi.h5

# Trains the default model in its stages and ships it (resumable: run again to continue).
train: data
	BIN=$(BIN) bash scripts/train_default.sh

# The `open` model: only commercially usable motion (CMU, HDM05), from scratch.
train-open: data/multi.h5
	BIN=$(BIN) bash scripts/train_open.sh

# The default model's evaluation, as reported in its model card: the Bandai test split and
# every source kept out of training.
eval: data/multi.h5
	bash scripts/evaluate_default.sh

eval-open: data/multi.h5
	CARD=open bash scripts/evaluate_default.sh

bench: setup
	$(BIN)/posetween bench latency --json out/latency.json

clean:
	rm -rf $(VENV) out .pytest_cache
