# Two commands set everything up on a fresh machine: `make dataset` and `make test`.
# Each installs what it needs first (a local virtual environment in .venv).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build on these machines' local disk; setup.cfg accepts any torch 2.x.
TORCH_PIN ?= torch==2.13.0

# INPUT is accepted too: the name people try first
VIDEOS   ?= $(or $(INPUT),data/demo)
OUT      ?= data/demo.zarr
PIPELINE ?= demo
ARGS     ?=

.PHONY: install test dataset histogram train pretrained benchmark benchmark-quality \
	benchmark-clean-free clean

$(BIN)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[test,train]"
	touch $@

install: $(BIN)/.installed

test: install
	$(BIN)/python -m pytest

dataset: install
	$(BIN)/pcst-prep build $(VIDEOS) $(OUT) --pipeline $(PIPELINE) $(ARGS)

histogram: install
	$(BIN)/pcst-prep histogram $(OUT)

# A short adaptation of the shipped blind-Gaussian UNet on the demo store; prints PSNR on the
# store's clean tiles before and after.
STEPS ?= 300
LR    ?= 3e-4
INIT  ?= pretrained
RUN   ?= runs/demo

train: install
	test -d $(OUT) || $(MAKE) dataset
	$(BIN)/pcst-train $(OUT) --out $(RUN) --init $(INIT) --steps $(STEPS) --lr $(LR) --batch-size 16 \
		--overwrite

# Regenerates the shipped model with the parameters of pipelines/pretrain/unet.toml (253 s on
# an NVIDIA H100, as the shipped checkpoint records; on a 2-vCPU Intel Xeon VM running another
# test suite, 200 steps took 198 s, so about 11 hours; add ARGS=--resume to continue an
# interrupted run, ARGS=--overwrite to start again over a finished one).
pretrained: install
	$(BIN)/python data/make_pretrain_images.py
	$(BIN)/pcst-train pretrain data/pretrain_images --out runs/pretrain-unet \
		--config pipelines/pretrain/unet.toml $(ARGS)
	mkdir -p pcst_train/weights
	cp runs/pretrain-unet/final.pt pcst_train/weights/bf_unet_gaussian.pt

benchmark: install
	$(BIN)/python benchmarks/run.py

# The quality experiment of docs/results.md (B / PC / ablations / N2C on real video; 27 minutes
# on a 2-vCPU Intel Xeon VM, load not recorded). The authors' networks are read from
# ../shared/reference when present.
QUALITY_OUT ?= runs/quality
benchmark-quality: install
	$(BIN)/python benchmarks/quality.py --out $(QUALITY_OUT) $(ARGS)

# The clean-free experiment of docs/results.md: a p sweep per noise, tune's choice, how well
# the validation loss ranks models (benchmarks/clean_free.py), then the gap to training on
# clean targets (benchmarks/n2c_gap.py), and the three figures joined with their tallies
# (summary.md). By default 3 noises a clip, 230 to 850 s a case on a 2-vCPU VM (docs/results.md);
# ARGS="--noises grid" runs the 14 noises of docs/results.md's grid.
CLEAN_FREE_OUT ?= runs/clean_free
benchmark-clean-free: install
	$(BIN)/python benchmarks/clean_free.py --out $(CLEAN_FREE_OUT) $(ARGS)
	$(BIN)/python benchmarks/clean_free.py --out $(CLEAN_FREE_OUT) --trial $(ARGS)
	$(BIN)/python benchmarks/n2c_gap.py --out $(CLEAN_FREE_OUT)
	$(BIN)/python benchmarks/clean_free.py --out $(CLEAN_FREE_OUT) --rescore $(ARGS)
	$(BIN)/python benchmarks/clean_free.py --out $(CLEAN_FREE_OUT) --summary $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
