# lyricgen: `make train` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
# (Comments sit above the variables: a comment after a value would become part of it.)
# A CPU build; override e.g. TORCH="torch==2.13.0 --index-url ..." for CUDA
TORCH ?= torch==2.13.0
# pip extras of the install: dev (tests, lint), scale (SLURM launcher, Optuna)
EXTRAS ?= dev,scale
# extra Hydra overrides: make train ARGS="model=gru optim.lr=0.001"
ARGS ?=
# test processes (pytest-xdist; a test file's tests stay in one process, in order, sharing its fixtures):
# most tests run one single-threaded training process at a time, so two keep both cores busy
TEST_WORKERS ?= 2
# make reproduce: stacks at a time (runs of one shape stacked in one process, one thread, across groups),
# fraction of every run's iterations (0.1: a quick pass), where it runs (run the same command again to
# continue it), and optional filters
JOBS ?= 2
SCALE ?= 1.0
REPRODUCE_DIR ?= outputs/reproduce/paper
SEEDS ?=
ONLY ?=
# make tensorboard: the folder whose runs it shows (a run's paths.output_dir, or one sweep)
LOGDIR ?= outputs
BIN := $(VENV)/bin
# make reproduce hands ARGS to every run as one list: train=[a,b]
comma := ,
space := $(subst ,, )
INSTALLED := $(VENV)/.installed
COMPILED := $(VENV)/.compiled

.DEFAULT_GOAL := help
.PHONY: help install train play test test-fast lint format bench docs figures stale reproduce tensorboard clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(INSTALLED) $(COMPILED) ## create .venv and install lyricgen with its dev tools (idempotent)

# The checkout goes on the path as it is (editable_mode=compat): Hydra finds launchers by listing the
# hydra_plugins folders on the path, which setuptools' default editable import hook cannot list.
EDITABLE := --config-settings editable_mode=compat

# One stamp per TORCH spec: `make install TORCH=...` with another build installs it, even after `make train`.
TORCH_INSTALLED := $(VENV)/.torch-$(shell printf '%s' '$(TORCH)' | cksum | cut -d' ' -f1)

$(TORCH_INSTALLED):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# another build of the same version satisfies pip's version check: replace the installed one first
	if $(BIN)/python -c 'import torch' 2>/dev/null; then \
	  $(BIN)/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps $(TORCH); fi
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	rm -f $(VENV)/.torch-* && touch $@

$(INSTALLED): pyproject.toml $(TORCH_INSTALLED)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(EDITABLE) -e '.[$(EXTRAS)]'
	touch $@

# The compiled recurrence (lyricgen/nn/recurrence.cpp), built into the environment where a C++ compiler
# exists; without one the build says so in one line and lyricgen runs its pure-PyTorch loops.
$(COMPILED): lyricgen/nn/recurrence.cpp $(INSTALLED)
	$(BIN)/python -c 'from lyricgen.nn import compiled; compiled.build()'
	touch $@

train: install ## train the default model on the built-in corpus and print a sample
	$(BIN)/python -m lyricgen.train $(ARGS)

# The playground's extra (Gradio, ~50 packages), installed by the targets that need it only
PLAY_INSTALLED := $(VENV)/.play-installed
$(PLAY_INSTALLED): $(INSTALLED) $(COMPILED)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(EDITABLE) -e '.[$(EXTRAS),play]'
	touch $@

play: $(PLAY_INSTALLED) ## the lyrics playground in the browser (installs its extra the first time)
	$(BIN)/python -m lyricgen.play $(ARGS)

test: $(PLAY_INSTALLED) ## run the whole test suite
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: install ## run the tests not marked slow
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

lint: install ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(PLAY_INSTALLED) ## measure speed and the lyrics scorecard; results go to benchmarks/results/*.json
	cd benchmarks && ../$(BIN)/python train_speed.py && ../$(BIN)/python generate_speed.py \
	  && ../$(BIN)/python prepare_speed.py && ../$(BIN)/python data_speed.py && ../$(BIN)/python time_to_quality.py \
	  && ../$(BIN)/python stacked_speed.py && ../$(BIN)/python gpu_speed.py && ../$(BIN)/python play_load.py \
	  && cd .. && $(BIN)/python benchmarks/lyrics.py

figures: install ## write README's table and song and the docs' measured tables from the results files
	$(BIN)/python benchmarks/figures.py

docs: figures ## write the written parts of the docs: README's results, docs/training.md's keys from conf/
	$(BIN)/python scripts/reference.py

stale: install ## list the results files whose code changed since they were measured (exit 1 if any)
	$(BIN)/python benchmarks/stale.py

reproduce: install ## the paper's protocol (conf/protocol/paper.yaml), JOBS at a time, then report
	$(BIN)/python -m lyricgen.reproduce out=$(REPRODUCE_DIR) jobs=$(JOBS) scale=$(SCALE) \
	  $(if $(SEEDS),seeds=[$(SEEDS)]) $(if $(ONLY),only=[$(ONLY)]) $(if $(strip $(ARGS)),'train=[$(subst $(space),$(comma),$(strip $(ARGS)))]')
	$(BIN)/python -m lyricgen.report dir=$(REPRODUCE_DIR)

tensorboard: install ## compare loss curves of every run under LOGDIR (outputs/), at http://localhost:6006
	$(BIN)/tensorboard --logdir $(LOGDIR)

clean: ## delete runs under outputs/ and caches (keeps .venv)
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache
