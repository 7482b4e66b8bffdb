# riskgate — `make` (or `make help`) lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(UV) run --locked --no-sync
COV_FLOOR := 85

.PHONY: help install lint typecheck test data run bench clean system-deps features recovery-eval

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked
	@touch $@

install: $(VENV)/.installed ## Create .venv with the locked dependencies (uv.lock)

lint: install ## ruff (lint + format check) and mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy .

test: lint system-deps ## Install, lint, type-check and run the test suite with coverage
	$(RUN) pytest --cov --cov-report=term --cov-fail-under=$(COV_FLOOR)

system-deps: ## Install the system packages the tests use (redis-server, from Debian; needs root)
	command -v redis-server >/dev/null || (apt-get update && apt-get install -y --no-install-recommends redis-server)

features: data ## Build the point-in-time feature table of data/ into data/features/
	$(RUN) riskgate features build

data: install ## Simulate the default IPTV billing world into data/ (once; `make clean` to regenerate)
	@if [ -f data/summary.json ]; then echo "data/ holds a simulated world already (make clean to regenerate)"; \
	else $(RUN) riskgate simulate --out data; fi

run: data ## Set everything up and run the main job (see README)

bench: install ## Run the benchmarks; results go to bench/results/
	$(RUN) python -m bench

recovery-eval: data ## Recovery planner vs fixed retry schedule on data/ (bench/results/recovery-eval.json)
	$(RUN) riskgate recovery-eval --data-dir data --out bench/results/recovery-eval.json

clean: ## Remove generated data, state and caches (not .venv)
	rm -rf data state .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
