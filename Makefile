# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := instances/front_warehouse/metro-40x400.json

.PHONY: demo test test-fast lint schemas bench-smoke bench-data bench-results bench-report bench-limits bench-progress clean

RESULT_SUITES := orlib-cap orlib-cap-ss examples incentive-budget membership

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

# Solves the demo network, draws it (demo.png) and writes the report to forward (demo-report.html).
demo: $(VENV)/.installed
	$(BIN)/ecomopt solve $(DEMO) --output demo-result.json --plot demo.png
	$(BIN)/ecomopt report demo-result.json $(DEMO) --html demo-report.html

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy

schemas: $(VENV)/.installed
	for p in front_warehouse incentive_budget incentive_assignment membership_pricing; do $(BIN)/ecomopt schema $$p > instances/schema/$$p.json; done

bench-smoke: $(VENV)/.installed
	$(BIN)/ecomopt bench run benchmarks/suites/smoke.toml --workers 2 --out bench-smoke.jsonl --resume

# The generated users tables of the assignment suite (about 1 GB, not in git).
bench-data: $(VENV)/.installed
	$(BIN)/python instances/incentive_assignment/generate.py --bench

# Runs the result suites from scratch (about 40 minutes on 2 cores), then writes RESULTS.md
# from every record file in benchmarks/results/ (orlib-capabc, envyfree and envyfree-open are run by hand:
# see benchmarks/README.md).
bench-results: $(VENV)/.installed
	mkdir -p benchmarks/results
	for s in $(RESULT_SUITES); do rm -f benchmarks/results/$$s.jsonl; \
	  $(BIN)/ecomopt bench run benchmarks/suites/$$s.toml --workers 2 --out benchmarks/results/$$s.jsonl --quiet || exit 1; done
	$(MAKE) bench-report

bench-report: $(VENV)/.installed
	$(BIN)/ecomopt bench report $(sort $(wildcard benchmarks/results/*.jsonl)) --format markdown --output benchmarks/RESULTS.md
	for f in $(sort $(wildcard benchmarks/results/*.md)); do cat $$f >> benchmarks/RESULTS.md; done

# Time limits and Ctrl-C on the largest shipped instances (about 6 minutes): benchmarks/results/time-limits.md
bench-limits: $(VENV)/.installed
	$(BIN)/python benchmarks/time_limits.py --limit 10 --repeats 3 --output benchmarks/results/time-limits.md

# What following a solve (progress callbacks, the HiGHS log) costs (about 2 minutes): benchmarks/results/progress-overhead.md
bench-progress: $(VENV)/.installed
	$(BIN)/python benchmarks/progress_overhead.py --repeats 3 --output benchmarks/results/progress-overhead.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
