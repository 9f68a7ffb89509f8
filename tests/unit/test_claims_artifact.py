"""The artifact a committee evaluates: `snakemake bundle` holds the claims, the report, the config as run, the
environment, the code version, the run's manifest and the sources lock, each checked by the bundle's manifest
(the demo's bundle: tests/e2e/test_claims_artifact_demo.py)."""

from __future__ import annotations

import json
import tarfile

import pytest
import yaml
from conftest import load_config, read_config

from sgtr_em import paths
from sgtr_em.artifact import code_record, installed_requirements, write_artifact_info
from sgtr_em.config import compose
from sgtr_em.release.bundle import BUNDLE_MANIFEST, make_bundle
from sgtr_em.targets import Targets


@pytest.mark.parametrize("name", ["demo.yaml", "config.yaml"])
def test_artifact_info_is_the_config_the_environment_and_the_code_version(tmp_path, name, monkeypatch):
    from conftest import REPO

    monkeypatch.chdir(REPO)
    raw = read_config(name)
    raw["subset"] = "core" if name == "config.yaml" else None
    config = load_config(raw)
    out = {name: tmp_path / name for name in ("config.yaml", "requirements.txt", "code.json")}
    write_artifact_info(
        config, config_out=out["config.yaml"], requirements_out=out["requirements.txt"], code_out=out["code.json"]
    )
    assert yaml.safe_load(out["config.yaml"].read_text()) == config
    # Given back with --configfile it is the same run (a complete config: it replaces the embedded default).
    assert load_config(compose("config/demo.yaml", [out["config.yaml"]])) == config
    requirements = out["requirements.txt"].read_text().splitlines()
    assert requirements[0].startswith("# Python 3.")
    pins = dict(line.split("==", 1) for line in requirements if not line.startswith(("#", "--")))
    assert "PyYAML" in pins and "torch" in pins and "sgtr-em" not in pins
    # A PyTorch build PyPI does not serve (the CPU build's `+cpu`) comes with its index: `pip install -r` works.
    if "+" in pins["torch"]:
        tag = pins["torch"].split("+", 1)[1]
        assert f"--extra-index-url https://download.pytorch.org/whl/{tag}" in requirements
    record = json.loads(out["code.json"].read_text())
    assert set(record) == {"describe", "commit", "dirty"}


def test_a_local_torch_build_brings_its_index():
    from sgtr_em.artifact import torch_index_lines

    assert torch_index_lines("numpy==2.4.5\ntorch==2.13.0+cu126\n") == [
        "--extra-index-url https://download.pytorch.org/whl/cu126"
    ]
    assert torch_index_lines("torch==2.13.0\n") == []


def test_code_record_outside_git_says_unknown(tmp_path):
    assert code_record(tmp_path)["commit"] == "unknown"
    assert installed_requirements().count("\n") > 10


def test_bundle_inputs_hold_what_a_committee_checks(tmp_path):
    plan = Targets(load_config(read_config("demo.yaml")))
    inputs = plan.bundle_inputs(workdir=tmp_path)
    files = set(inputs["files"])
    assert {"results/claims/demo-target.csv", "results/claims/demo-target.pdf"} <= files
    assert {paths.RESULTS_SUMMARY, paths.RESULTS_SUMMARY_HTML, *paths.ARTIFACT.values()} <= files
    assert inputs["named"] == [paths.MANIFEST]  # no sources lock in this checkout
    (tmp_path / "config").mkdir()
    (tmp_path / paths.SOURCES_LOCK).write_text("sources: {}\n")
    assert plan.bundle_inputs(workdir=tmp_path)["named"] == [paths.MANIFEST, paths.SOURCES_LOCK]
    assert set(paths.BUNDLE_NAMES) == {paths.MANIFEST, paths.SOURCES_LOCK}


def test_named_files_are_bundled_under_their_names_and_the_bundle_manifest_stays_its_own(tmp_path):
    results = tmp_path / "results"
    (results / "claims").mkdir(parents=True)
    (results / "claims/m.csv").write_text("claim_id\nx\n")
    (results / "manifest.json").write_text("{}")
    lock = tmp_path / "sources.lock.yaml"
    lock.write_text("sources: {}\n")
    bundle = tmp_path / "b.tar.gz"
    manifest = make_bundle(
        [results / "claims/m.csv"],
        bundle,
        base=results,
        run_name="t",
        named={"run_manifest.json": results / "manifest.json", "artifact/sources.lock.yaml": lock},
    )
    assert set(manifest["files"]) == {"claims/m.csv", "run_manifest.json", "artifact/sources.lock.yaml"}
    with tarfile.open(bundle) as tar:
        assert sorted(tar.getnames()) == sorted([BUNDLE_MANIFEST, *manifest["files"]])
    with pytest.raises(ValueError, match="may not be named manifest.json"):
        make_bundle([results / "manifest.json"], tmp_path / "c.tar.gz", base=results, run_name="t")
