# Two commands set everything up on a fresh machine: `make dataset` and `make test`.
# Each installs what it needs first (a local virtual environment in .venv).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build on these machines' local disk; setup.cfg accepts any torch 2.x.
TORCH_PIN ?= torch==2.13.0

VIDEOS   ?= data/demo
OUT      ?= data/demo.zarr
PIPELINE ?= demo
ARGS     ?=

.PHONY: install test dataset histogram train benchmark clean

$(BIN)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

test: install
	$(BIN)/python -m pytest

dataset: install
	$(BIN)/pcst-prep build $(VIDEOS) $(OUT) --pipeline $(PIPELINE) $(ARGS)

histogram: install
	$(BIN)/pcst-prep histogram $(OUT)

train: install
	@echo "make train: not implemented yet (issue 4)"; exit 1

benchmark: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
