# posetween: one-command setup, tests, demo, data, training and evaluation.
# Every target sets up .venv by itself on a fresh machine (CPU build of PyTorch).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared/data
TORCH  ?= torch==2.13.0

.PHONY: setup test demo data train train-open eval model-card bench clean

$(BIN)/posetween: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(BIN)/posetween

test: setup
	$(BIN)/python -m pytest -q -ra

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

bench: setup
	$(BIN)/posetween bench latency --json out/latency.json

clean:
	rm -rf $(VENV) out .pytest_cache
