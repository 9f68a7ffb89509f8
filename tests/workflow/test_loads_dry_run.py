"""Loading a model state costs minutes on the paper's models: each evaluated state is loaded by at most two
jobs, counted from the paper config's planned DAG; and a dry run imports no model library."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from conftest import copy_workflow, load_config, read_config, snakemake, state_loads, workflow_env

from sgtr_em.bench import MODEL_LIBRARIES
from sgtr_em.dag import PlannedJob, loaded_state, planned_jobs
from sgtr_em.targets import Targets

MAX_LOADS_PER_STATE = 2


@pytest.fixture(scope="module")
def paper_dag(tmp_path_factory) -> list[PlannedJob]:
    workdir = copy_workflow(tmp_path_factory.mktemp("paper") / "workflow")
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return planned_jobs(result.stdout + result.stderr)


def test_each_evaluated_state_of_the_paper_grid_is_loaded_at_most_twice(paper_dag):
    """The paper grid's open-model states (GPT-4.1's have nothing to load): a core job each, an optional job
    where the chain is listed, and the summaries other jobs read from a state written by its core job."""
    config = load_config(read_config("config.yaml"))
    t = Targets(config)
    loads = state_loads(config, paper_dag)
    local_states = [s for s in t.grid_states() if not t.is_api_model(s[0])]
    assert set(loads) == set(local_states)  # every state is loaded (so the count sees every job that does)
    most = max(loads.values())
    print(f"{len(local_states)} evaluated states; loads per state: {sorted(Counter(loads.values()).items())}")
    assert most <= MAX_LOADS_PER_STATE, [s for s, n in loads.items() if n == most][:5]
    loaders = Counter(job.rule for job in paper_dag if loaded_state(t, job))
    assert set(loaders) <= {job.rule for job in t.state_jobs}


def imported_model_libraries(importtime_log: str) -> set[str]:
    """Top-level model libraries named in `python -X importtime` output."""
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in importtime_log.splitlines() if "|" in line}
    return names & set(MODEL_LIBRARIES)


def test_a_dry_run_imports_no_model_library(tmp_path):
    workdir = copy_workflow(tmp_path / "workflow")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "1"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env=workflow_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "import time:" in result.stderr
    assert not imported_model_libraries(result.stderr)
