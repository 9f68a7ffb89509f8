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

# The CPU build of torch (the public index's Linux torch is a multi-GB CUDA build): from PyTorch's CPU wheel
# index when it answers within 5 s, else whatever the configured package indexes offer for the pin in
# constraints-cpu.txt (CI and offline mirrors with a local wheel folder). A GPU machine: docs/gpu.md.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
$(STAMP): pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	@if $(VENV)/bin/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip('/') + '/torch/', timeout=5)" '$(TORCH_CPU_INDEX)' 2>/dev/null; then \
		echo "torch: the CPU build from $(TORCH_CPU_INDEX)"; \
		$(VENV)/bin/pip install --quiet --index-url '$(TORCH_CPU_INDEX)' -c constraints-cpu.txt torch; \
	else \
		echo "torch: $(TORCH_CPU_INDEX) unreachable, so the configured package indexes' build of constraints-cpu.txt's pin"; \
	fi
	$(VENV)/bin/pip install --quiet -c constraints-cpu.txt -e '.[test,slurm]'
	$(VENV)/bin/python -c "import torch; print('torch', torch.__version__, 'CUDA build:', torch.version.cuda)"
	touch $(STAMP)

# Ends with the claims' verdicts in one paragraph (the run's own, printed by the workflow's onsuccess, is left
# out with --no-hooks so that it comes once, last).
demo: $(STAMP)
	$(SNAKEMAKE) --profile profiles/local --cores $(CORES) --no-hooks
	$(SNAKEMAKE) --report results/report.html
	@echo "Figures: $$(ls results/figures/*/*.png | tr '\n' ' ')"
	@echo "Tables: results/tables/"
	@echo "Results summary: results/report/results_summary.md"
	@echo "Report (open in a browser): results/report.html"
	@echo
	@$(VENV)/bin/python -m sgtr_em.headline results/claims/*.csv --summary results/report/results_summary.md

# Everything: lint, then every test (unit, small workflows, the demo end to end, real SLURM), in one process
# with the demo in the background (tests/conftest.py): the demo's jobs and the tests fill both cores of a
# 2-core machine, so more pytest workers gain nothing here.
test: lint
	$(PYTEST)

# Unit and small-workflow tests (tests/unit, tests/workflow): no full demo run, no SLURM (minutes). One worker
# per core (pytest-xdist); a module's tests run on one worker, so no module fixture is built twice.
test-fast: $(STAMP)
	$(PYTEST) -n auto --dist loadfile tests/unit tests/workflow

# Engines vs naive baselines, measured in the same run: results/bench/<name>.json (see docs/benchmarks.md).
bench: $(STAMP)
	$(VENV)/bin/python -m sgtr_em.bench all

# One GPU, under 8 minutes: the GPU code paths on random-init Qwen2.5-shaped models, a PASS/FAIL line per check
# and results/gpu_acceptance/acceptance.json (docs/gpu.md). The GPU machine's own python and CUDA torch, not
# the CPU venv; `make gpu-acceptance SHAPE=tiny` is the CPU smoke run.
SHAPE ?= mixed
.PHONY: gpu-acceptance
gpu-acceptance:
	$(PYTHON) -m sgtr_em.acceptance --shape $(SHAPE) --out results/gpu_acceptance

# docs/rulegraph.{dot,svg}: Graphviz when installed, else a matplotlib drawing of the same graph.
rulegraph: $(STAMP)
	$(SNAKEMAKE) --rulegraph > docs/rulegraph.dot
	if command -v dot >/dev/null; then dot -Tsvg docs/rulegraph.dot > docs/rulegraph.svg; \
	else $(VENV)/bin/python tools/render_rulegraph.py docs/rulegraph.dot docs/rulegraph.svg; fi

# Python (ruff lint and format check, mypy on the package, dead code) and Snakemake (snakefmt, --lint).
lint: $(STAMP)
	$(VENV)/bin/ruff check sgtr_em scripts tests tools
	$(VENV)/bin/ruff format --check sgtr_em scripts tests tools
	$(VENV)/bin/mypy
	$(VENV)/bin/python tools/dead_code.py
	$(VENV)/bin/snakefmt --check .
	$(SNAKEMAKE) --lint

format: $(STAMP)
	$(VENV)/bin/ruff format sgtr_em scripts tests tools
	$(VENV)/bin/snakefmt .

clean:
	rm -rf results logs benchmarks .snakemake
