# lyricgen: `make train` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0  # a CPU build; override e.g. TORCH="torch==2.13.0 --index-url ..." for CUDA
ARGS ?=                 # extra Hydra overrides: make train ARGS="model=gru optim.lr=0.001"
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install train test test-fast lint format bench tensorboard clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(INSTALLED) ## create .venv and install lyricgen with its dev tools (idempotent)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
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
	cd benchmarks && ../$(BIN)/python generate_speed.py && ../$(BIN)/python prepare_speed.py

tensorboard: install ## compare loss curves of every run under outputs/
	$(BIN)/tensorboard --logdir outputs

clean: ## delete runs under outputs/ and caches (keeps .venv)
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache
