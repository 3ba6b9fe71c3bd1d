# lyricgen: `make train` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0  # a CPU build; override e.g. TORCH="torch==2.13.0 --index-url ..." for CUDA
EXTRAS ?= dev,scale     # pip extras of the install: dev (tests, lint), scale (SLURM launcher, Optuna)
ARGS ?=                 # extra Hydra overrides: make train ARGS="model=gru optim.lr=0.001"
SCALE ?= 1.0            # make reproduce SCALE=0.1: every experiment at 10% of its iterations
THREADS ?= 1            # torch threads per reproduce run: small models gain nothing from a second
EXPERIMENTS ?= paper_baseline paper_best paper_gru paper_deep16 paper_high_lr paper_50k \
	ablation_lr001 ablation_dropout ablation_relu ablation_4layers ablation_clip
ifndef REPRODUCE_DIR
REPRODUCE_DIR := outputs/reproduce/$(shell date +%Y-%m-%d_%H-%M-%S)
endif
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install train test test-fast lint format bench reproduce tensorboard clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(INSTALLED) ## create .venv and install lyricgen with its dev tools (idempotent)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

train: install ## train the default model on the built-in corpus and print a sample
	$(BIN)/python -m lyricgen.train $(ARGS)

test: install ## run the whole test suite
	$(BIN)/python -m pytest

test-fast: install ## run the tests not marked slow
	$(BIN)/python -m pytest -m "not slow"

lint: install ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## measure speed; results go to benchmarks/results/*.json
	cd benchmarks && ../$(BIN)/python train_speed.py && ../$(BIN)/python generate_speed.py \
	  && ../$(BIN)/python prepare_speed.py && ../$(BIN)/python data_speed.py && ../$(BIN)/python time_to_quality.py \
	  && ../$(BIN)/python gpu_speed.py

reproduce: install ## run the paper's experiments and the ablations (SCALE=0.1 for a quick pass), then report
	for experiment in $(EXPERIMENTS); do \
	  seeds=0; [ $$experiment = paper_baseline ] && seeds=0,1; \
	  $(BIN)/python -m lyricgen.train -m experiment=$$experiment seed=$$seeds scale=$(SCALE) threads=$(THREADS) \
	    trainer.enable_progress_bar=false hydra.sweep.dir=$(REPRODUCE_DIR)/$$experiment $(ARGS) || exit 1; \
	done
	$(BIN)/python -m lyricgen.report $(REPRODUCE_DIR)

tensorboard: install ## compare loss curves of every run under outputs/
	$(BIN)/tensorboard --logdir outputs

clean: ## delete runs under outputs/ and caches (keeps .venv)
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache
