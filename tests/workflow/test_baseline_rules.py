"""The baselines and the self source of pairs after EM through Snakemake, on the demo: the baseline data rules
build their files, and `pairs.source: own` puts the parent state in the pair path."""

from __future__ import annotations

import json

from conftest import copy_workflow, snakemake


def test_own_self_source_puts_the_parent_state_in_the_pair_path(tmp_path):
    workdir = copy_workflow(tmp_path / "own")
    (workdir / "config/own.yaml").write_text("pairs:\n  source: own\n")
    result = snakemake(workdir, "-n", "--configfile", "config/demo.yaml", "config/own.yaml", timeout=300)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    # Reversal (EM then Self++) pairs use the EM model's own fresh summaries, per seed; stage-one pairs
    # the base model's.
    assert "results/pairs/demo-target/own-em-unpop-seed1/sgtr/detection/default.jsonl" in text
    assert "results/summaries/demo-target/em-unpop/seed1/xsum.jsonl" in text
    assert "results/pairs/demo-target/base/sgtr/detection/default.jsonl" in text


def test_baseline_data_rules_build_the_demo_files(tmp_path):
    workdir = copy_workflow(tmp_path / "baselines")
    targets = [f"results/data/baselines/{b}/default.jsonl" for b in ("wordcount", "general", "correct-unpop")]
    result = snakemake(workdir, *targets, "--cores", "1", "--configfile", "config/demo.yaml", timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    stats = json.loads((workdir / "results/data/baselines/wordcount/default.stats.json").read_text())
    assert stats["n_examples"] == 80 and sum(stats["label_counts"].values()) == 80
    general = (workdir / "results/data/baselines/general/default.jsonl").read_text().splitlines()
    assert len(general) == 26  # the 2 rows outside open_qa/general_qa are dropped
