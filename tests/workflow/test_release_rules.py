"""Reviewer path through the workflow: released summaries (the fixtures under tests/fixtures/release/, described
in tests/unit/test_release.py) replace the generation of a model's base summaries, and the release rules are not
in the default target. The release figures drawn end to end: tests/e2e/test_release_figures.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from conftest import copy_workflow, snakemake
from release_fixtures import FIXTURES


def _workflow_with_fixtures(tmp_path: Path) -> Path:
    workdir = copy_workflow(tmp_path / "workflow")
    shutil.copytree(FIXTURES, workdir / "tests/fixtures/release")
    return workdir


def test_released_summaries_replace_generation_of_a_models_base_summaries(tmp_path):
    workdir = _workflow_with_fixtures(tmp_path)
    extra = {
        "models": {"demo-target": {"summaries": {"xsum": {"source": {"path": "data/demo/released-summaries.json"}}}}}
    }
    (workdir / "config/released-summaries.yaml").write_text(yaml.safe_dump(extra))
    (workdir / "data/demo/released-summaries.json").write_text('{"0": "A council met."}')
    target = "results/pairs/demo-target/base/sgtr/detection/default.jsonl"
    result = snakemake(
        workdir, "-n", target, "--configfile", "config/demo.yaml", "config/released-summaries.yaml", timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    plan = result.stdout
    assert "results/data/released_summaries/demo-target/xsum.jsonl" in plan
    assert "results/summaries/demo-target/" not in plan  # no generation for the target
    assert "results/summaries/demo-other/base/seed0/xsum.jsonl" in plan  # the comparator still generates


def test_release_rules_are_not_in_the_default_target(tmp_path):
    workdir = _workflow_with_fixtures(tmp_path)
    result = snakemake(workdir, "-n", "--configfile", "config/demo.yaml", "config/release-demo.yaml", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rule release_" not in result.stdout and "rule bundle" not in result.stdout
    bundle = snakemake(workdir, "-n", "bundle", "--configfile", "config/demo.yaml", timeout=120)
    assert bundle.returncode == 0 and "results/bundle/demo.tar.gz" in bundle.stdout
