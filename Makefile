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

.PHONY: help install lint typecheck test data run bench clean system-deps features serve recovery-eval

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

lint: install ## ruff (lint + format check), mypy and the layers (import-linter, contracts in pyproject.toml)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy .
	$(RUN) lint-imports --no-cache

test: lint system-deps ## Install, lint, type-check and run the test suite with coverage
	$(RUN) pytest --cov --cov-report=term --cov-fail-under=$(COV_FLOOR) --durations=10

system-deps: ## Install the system packages the tests use (redis-server, postgresql, haproxy, chromium + chromedriver; Debian, root)
	command -v redis-server >/dev/null || (apt-get update && apt-get install -y --no-install-recommends redis-server)
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || (mkdir -p /etc/postgresql-common && \
		echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf && \
		apt-get update && apt-get install -y --no-install-recommends postgresql)
	command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || (apt-get update && apt-get install -y --no-install-recommends haproxy && (systemctl disable --now haproxy 2>/dev/null || true))  # its default service binds no port; the tests start their own
	(command -v chromium && command -v chromedriver) >/dev/null || (apt-get update && \
		apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core)

features: data ## Build the point-in-time feature table of data/ into data/features/
	$(RUN) riskgate features build

data: install ## Simulate the default IPTV billing world into data/ (once; `make clean` to regenerate)
	@if [ -f data/summary.json ]; then echo "data/ holds a simulated world already (make clean to regenerate)"; \
	else $(RUN) riskgate simulate --out data; fi

run: data train promote serve ## Simulate, train, promote the champions, then serve them on 127.0.0.1:8000

STATE_DIR ?=
serve: install ## Serve the @champion models on 127.0.0.1:8000 (a backtest's log: make serve STATE_DIR=state/backtest)
	$(RUN) riskgate serve $(if $(STATE_DIR),--state-dir $(STATE_DIR))

BENCH ?=
bench: install ## Run the benchmarks (10M-attempt training: ~1 h) into bench/results/; a subset: make bench BENCH="engine training"
	$(RUN) python -m bench $(BENCH)

recovery-eval: data ## Planner with riskgate-retry@champion vs fixed retry schedule on data/ (after make train promote)
	$(RUN) riskgate recovery-eval --data-dir data --model champion --out bench/results/recovery-eval.json

clean: ## Remove generated data, state and caches (not .venv)
	rm -rf data state .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov

# --- training -------------------------------------------------------------------------------------------------
.PHONY: train evaluate promote ui
TRAIN_ARGS ?=
UI_PORT ?= 5000
SETTING = $(RUN) python -c 'from core.settings import get_settings as g; print(g().$(1))'

train: install ## Train fraud, failure and retry models from data/ (simulated if missing), log + register in MLflow
	@test -d "$$($(call SETTING,data_dir))/attempts" || $(MAKE) data
	$(RUN) riskgate train $(TRAIN_ARGS)

evaluate: install ## Evaluate the @champion models on the current data's test window, next to baselines and truth
	$(RUN) riskgate evaluate

promote: install ## Move @champion to the newest versions that beat it on the same test window (says why)
	$(RUN) riskgate promote

ui: install ## Open the MLflow UI on 127.0.0.1 (port UI_PORT=5000) over the project's store (mlruns/)
	$(RUN) mlflow ui --host 127.0.0.1 --port $(UI_PORT) \
		--backend-store-uri "$$($(call SETTING,tracking_uri))" \
		--default-artifact-root "$$($(call SETTING,artifact_root.as_uri()))"

# --- trends: backtest and report ------------------------------------------------------------------------------
.PHONY: backtest report
BACKTEST_ARGS ?=
REPORT_STATE ?= state/backtest
REPORT_ARGS ?=

backtest: install ## Replay data/'s last month through the @champion models into state/backtest (BACKTEST_ARGS=...)
	@test -d "$$($(call SETTING,data_dir))/attempts" || $(MAKE) data
	$(RUN) riskgate backtest --state-dir state/backtest $(BACKTEST_ARGS)

report: install ## Static HTML report of a decision log (REPORT_STATE=state/backtest) -> REPORT_STATE/report.html
	$(RUN) riskgate report --state-dir $(REPORT_STATE) $(REPORT_ARGS)
