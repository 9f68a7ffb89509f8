"""The artifact a committee evaluates, bundled from the finished demo: `snakemake bundle` holds the claims, the
report, the config as run, the environment, the code version and the run's manifest, and re-scores to the same
numbers."""

from __future__ import annotations

import json
import tarfile

import yaml
from conftest import snakemake

from sgtr_em.release.bundle import BUNDLE_MANIFEST


def test_bundle_of_the_demo_holds_the_artifact(demo, tmp_path):
    import shutil

    # In a copy: the shared demo's results folder must keep matching its manifest.
    copy = tmp_path / "workflow"
    shutil.copytree(demo, copy, symlinks=True)
    result = snakemake(copy, "bundle", "--cores", "1", "--configfile", "config/demo.yaml", timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "rule bundle" in result.stdout + result.stderr and "rule eval_" not in result.stdout + result.stderr
    with tarfile.open(copy / "results/bundle/demo.tar.gz") as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile(BUNDLE_MANIFEST))
        config = yaml.safe_load(tar.extractfile("artifact/config.yaml"))
    assert {
        "claims/demo-target.csv",
        "claims/demo-target.pdf",
        "report/results_summary.md",
        "report/results_summary.html",
        "artifact/requirements.txt",
        "artifact/code_version.json",
        "run_manifest.json",
    } <= names
    assert set(manifest["files"]) == names - {BUNDLE_MANIFEST}
    assert config["run_name"] == "demo" and config["claims"]["list"]
    # what re-scoring needs: the sampled answers, every evaluation's per-item records and the judge's outputs
    assert {
        "em_answers/demo-target/em-unpop/seed0.json",
        "identity_answers/demo-target/base/seed1.json",
        "eval/em_questions/demo-target/em-unpop+sgtr/seed1.json",
        "eval/identity/demo-target/em-unpop/seed0.json",
        "eval/mmlu/demo-target/base/seed0.json",
        "data/questions/em_questions.json",
        "figures/demo-target/training_curves.png",
    } <= names
    from sgtr_em.rescore import rescore_all

    rescored = rescore_all(copy / "results/bundle/demo.tar.gz")
    assert len(rescored) == 4 * 2 and all(not r.differences() for r in rescored)
