"""The GPU acceptance run (issue 19): its CPU smoke variant (`--shape tiny`) end to end, one line per check."""

from __future__ import annotations

import json

import pytest
from conftest import acceptance

from sgtr_em.acceptance import FAIL, PASS, SKIP

GPU_ONLY = {"cuda", "checkpointing_plan", "mfu", "compute_fraction", "bandwidth_fraction", "duration"}
ON_CPU = {
    "option_probabilities",
    "shared_prefix_scoring",
    "seeded_generation",
    "training",
    "resume",
    "parent_adapter_training",
    "oom_split",
    "mmlu_sized_group",
    "real_vocabulary",
}


@pytest.mark.e2e
def test_the_tiny_acceptance_run_passes_on_cpu_with_one_line_per_check(tmp_path):
    result = acceptance("--shape", "tiny", "--out", "out", "--work", str(tmp_path / "work"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads((tmp_path / "out/acceptance.json").read_text())
    statuses = {c["name"]: c["status"] for c in record["checks"]}
    assert set(statuses) == GPU_ONLY | ON_CPU
    assert {name for name, status in statuses.items() if status == PASS} == ON_CPU
    assert {name for name, status in statuses.items() if status == SKIP} == GPU_ONLY
    lines = [line for line in result.stdout.splitlines() if line.split(" ")[0] in (PASS, FAIL, SKIP)]
    assert sorted(line.split(" ")[1].rstrip(":") for line in lines) == sorted(statuses)
    resume = next(c for c in record["checks"] if c["name"] == "resume")["values"]
    assert resume["killed_returncode"] == -9 and resume["resumed_from_step"] == 2 and resume["steps_computed"] == 4
    assert (tmp_path / "out/bench/training.json").exists()
