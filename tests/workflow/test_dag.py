"""The planned DAGs (`snakemake -n`): the demo's, the paper config's and each one-GPU preset's, counted against
docs/numbers.md (the demo end to end: tests/e2e/test_demo.py)."""

from __future__ import annotations

import re
import time

import pytest
from conftest import (
    DEMO_ROW,
    PAPER_ROW,
    PRESET_ROW,
    copy_workflow,
    documented_gpu_jobs,
    documented_jobs,
    rule_counts,
    snakemake,
)


def test_the_demo_plans_the_jobs_docs_numbers_counts(tmp_path):
    workdir = copy_workflow(tmp_path / "demo", lock=False)
    result = snakemake(workdir, "-n", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    counts, documented = rule_counts(result.stdout + result.stderr), documented_jobs(DEMO_ROW, "")
    assert counts["total"] == documented["jobs"] and counts["train_stage"] == documented["LoRA trainings"]


def test_paper_dag_builds_offline_fast(tmp_path):
    workdir = copy_workflow(tmp_path / "paper")
    started = time.monotonic()
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml", timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    # The whole paper grid as docs/numbers.md counts it (Qwen 72 trained chains and Seed-OSS 45, 5 seeds each,
    # and 10 GPT-4.1 fine-tuning jobs), a claims table and forest plot per model.
    documented = documented_jobs(PAPER_ROW)
    counts = rule_counts(text)
    assert counts["train_stage"] == documented["LoRA trainings"], text[-2000:]
    assert counts["train_stage_api"] == documented["API fine-tuning jobs"], text[-2000:]
    assert counts["claims"] == 3
    assert counts["total"] == documented["jobs"], text[-2000:]
    # The memory audit plans exactly the GPU jobs the DAG runs (every open model's trainings and state jobs).
    # (the API model's state jobs, eval_state*_api, run on the submit host)
    gpu_rules = {
        rule: n
        for rule, n in counts.items()
        if rule == "train_stage" or (re.fullmatch(r"eval_state\w*", rule) and not rule.endswith("_api"))
    }
    assert sum(gpu_rules.values()) == documented_gpu_jobs(PAPER_ROW), gpu_rules
    assert elapsed < 30, elapsed


@pytest.mark.parametrize("size", ["0.5b", "7b", "14b"])
def test_each_one_gpu_preset_plans_the_papers_grid_for_its_model(tmp_path, size):
    """The preset overlays plan offline, before the lock exists (docs/cluster.md#one-gpu-presets): the paper's
    grid for one model (the jobs docs/numbers.md counts), its claims and training curves."""
    workdir = copy_workflow(tmp_path / "preset", lock=False)
    preset = f"config/qwen2.5-{size}.yaml"
    result = snakemake(
        workdir, "-n", "--configfile", "config/config.yaml", preset, "--config", "strict_pins=false", timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    documented, counts = documented_jobs(PRESET_ROW), rule_counts(text)
    assert counts["train_stage"] == documented["LoRA trainings"], text[-2000:]
    assert counts["claims"] == 1 and counts["training_curves"] == 1
    assert counts["total"] == documented["jobs"], text[-2000:]
    assert f"results/claims/qwen2.5-{size}.csv" in text and "gpt-4.1" not in text and "seed-oss" not in text
