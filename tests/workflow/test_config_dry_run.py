"""The config loader's checks in `snakemake -n`: a bad config is one line naming the key, in seconds; the
`subset` key alone selects a subset of the demo."""

from __future__ import annotations

import os

import pytest
from conftest import copy_workflow, snakemake


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        (
            "finetune:\n  stage_overrides:\n    sgtr: {lora_r: -3, learning_rate: fast}\n",
            "finetune.stage_overrides.sgtr.lora_r",
        ),
        ("finetune:\n  lora: {learnin_rate: 0.1}\n", "finetune.lora.learnin_rate: unknown key"),
        ("grid: {seeds: [zero]}\n", "grid.seeds.0"),
        (
            "datasets:\n  truthfulqa: {source: {path: data/demo/gone.csv}}\n",
            "datasets.truthfulqa.source.path: no such file",
        ),
        ("models:\n  demo-other: {source: {hf: not-a-hub-id, revision: abc}}\n", "models.demo-other.source.hf"),
    ],
)
def test_snakemake_reports_a_bad_config_in_one_line(tmp_path, overlay, message):
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "config/bad.yaml").write_text(overlay)
    # CPU seconds of the snakemake process (about 2 on an idle machine): wall time also counts other load.
    before = os.times()
    result = snakemake(workdir, "-n", "--configfile", "config/bad.yaml", timeout=120)
    after = os.times()
    assert (after.children_user + after.children_system) - (before.children_user + before.children_system) < 10
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Config error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_config_key_alone_selects_a_subset_of_the_demo(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    result = snakemake(workdir, "-n", "--config", "subset=core", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sgtr-flip" not in result.stdout + result.stderr
