# Two commands on a fresh machine: `make demo` (embedded default, CPU, offline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
CORES ?= $(shell nproc 2>/dev/null || echo 2)
STAMP := $(VENV)/.installed
SNAKEMAKE := $(VENV)/bin/snakemake
PYTEST := $(VENV)/bin/pytest
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test test-fast bench lint format setup clean rulegraph

setup: $(STAMP)

# CPU torch via the constraint (an unconstrained torch resolves a multi-GB CUDA build).
$(STAMP): pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -c constraints-cpu.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(SNAKEMAKE) --profile profiles/local --cores $(CORES)
	$(SNAKEMAKE) --report results/report.html
	@echo "Figures: $$(ls results/figures/*/*.png | tr '\n' ' ')"
	@echo "Tables: results/tables/"
	@echo "Results summary: results/report/results_summary.md"
	@echo "Report (open in a browser): results/report.html"

# Everything: lint, then every test (unit, small workflows, the demo end to end, real SLURM).
test: lint
	$(PYTEST)

# Unit and small-workflow tests: no full demo run, no SLURM (minutes).
test-fast: $(STAMP)
	$(PYTEST) -m "not e2e and not slurm"

# Engines vs naive baselines, measured in the same run: results/bench/<name>.json (see docs/benchmarks.md).
bench: $(STAMP)
	$(VENV)/bin/python -m sgtr_em.bench all

# docs/rulegraph.{dot,svg}: Graphviz when installed, else a matplotlib drawing of the same graph.
rulegraph: $(STAMP)
	$(SNAKEMAKE) --rulegraph > docs/rulegraph.dot
	if command -v dot >/dev/null; then dot -Tsvg docs/rulegraph.dot > docs/rulegraph.svg; \
	else $(VENV)/bin/python tools/render_rulegraph.py docs/rulegraph.dot docs/rulegraph.svg; fi

# Python (ruff lint and format check, mypy on the package) and Snakemake (snakefmt, --lint).
lint: $(STAMP)
	$(VENV)/bin/ruff check sgtr_em scripts tests tools
	$(VENV)/bin/ruff format --check sgtr_em scripts tests tools
	$(VENV)/bin/mypy
	$(VENV)/bin/snakefmt --check .
	$(SNAKEMAKE) --lint

format: $(STAMP)
	$(VENV)/bin/ruff format sgtr_em scripts tests tools
	$(VENV)/bin/snakefmt .

clean:
	rm -rf results logs benchmarks .snakemake
