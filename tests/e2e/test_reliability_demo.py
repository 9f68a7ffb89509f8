"""Reliability and provenance (issue 7), on whole runs: the demo's provenance and results manifest, determinism
across runs (a forced rerun of the demo), and the API demo under load, whose secrets never reach a file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import copy_workflow, snakemake

# ------------------------------------------------------------------------------ provenance, manifest --

# Keys every provenance record has (sgtr_em.runtime.provenance).
PROVENANCE_KEYS = ("rule", "config", "config_sha256", "versions", "code_version", "model", "seeds", "protocols")


def check_provenance_and_manifest(workdir: Path) -> None:
    """Every eval JSON and adapter record carries full provenance; the manifest lists every result file
    (none of the scratch folders) with the sha256 of its current content."""
    from sgtr_em.io import sha256_file

    results = workdir / "results"
    evals = sorted(results.glob("eval/**/*.json"))
    metas = sorted(results.glob("adapters/**/training_meta.json"))
    assert evals and metas
    for path in [*evals, *metas]:
        record = json.loads(path.read_text())["provenance"]
        assert set(PROVENANCE_KEYS) <= set(record), path
        assert len(record["config_sha256"]) == 64 and record["versions"]["torch"] and record["code_version"]
        assert record["model"]["id"] and "revision" in record["model"], path
    for path in evals:
        record = json.loads(path.read_text())["provenance"]
        assert record["rule"].startswith("eval_") and record["protocols"] and "sampling" in record["seeds"], path
    manifest = json.loads((results / "manifest.json").read_text())
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert manifest["n_files"] == len(listed) > 0
    assert manifest["provenance"]["rule"] == "manifest"
    # Declared outputs only: no model builds or snapshots, downloads, trainer scratch, caches, hidden files.
    on_disk = {
        path.relative_to(workdir).as_posix()
        for path in results.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(results).parts)
    }
    not_outputs = ("results/models/", "results/data/downloads/", "results/checkpoints/", "results/api_cache/")
    assert set(listed) == {p for p in on_disk if not p.startswith(not_outputs)} - {"results/manifest.json"}
    for relative, entry in listed.items():
        assert sha256_file(workdir / relative) == entry["sha256"], relative
        assert (workdir / relative).stat().st_size == entry["bytes"], relative
    for prefix in ("results/figures/", "results/tables/", "results/adapters/", "results/eval/", "results/data/"):
        assert any(p.startswith(prefix) for p in listed), prefix


def test_demo_outputs_carry_provenance_and_the_manifest_matches(demo):
    check_provenance_and_manifest(demo)
    # Finished trainings leave no resume checkpoints behind.
    assert not list((demo / "results/checkpoints").rglob("checkpoint-*"))


# ------------------------------------------------------------------------------------- determinism --

# Base and Self++ (seed 0) of the shared demo, and every job behind them, forced to run again in a copy.
FORCED_TARGETS = (
    "results/eval/truthfulqa/demo-target/base/seed0.json",
    "results/eval/truthfulqa/demo-target/sgtr/seed0.json",
    "results/eval/self_recognition-demo-other/demo-target/base/seed0.json",
    "results/eval/self_recognition-demo-other/demo-target/sgtr/seed0.json",
)


@pytest.fixture(scope="module")
def forced_rerun(demo, tmp_path_factory) -> tuple[Path, Path, list[Path]]:
    """(the demo, a copy of it after a forced rerun of FORCED_TARGETS and then of the manifest, the result
    files the rerun wrote). The rerun runs under umask 022, a shared group's usual one."""
    import shutil
    import time

    copy = tmp_path_factory.mktemp("rerun") / "workflow"
    shutil.copytree(demo, copy, symlinks=True)
    started = time.time()
    umask = os.umask(0o022)
    try:
        result = snakemake(copy, *FORCED_TARGETS, "--forceall", "--cores", "2", timeout=900)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
        # Only the manifest (over the copy's other results): the rebuilt model folder is newer than everything
        # downstream, and a folder has no checksum to show it came out the same, so Snakemake would rerun it all.
        result = snakemake(
            copy,
            *("results/manifest.json", "--forcerun", "manifest", "--allowed-rules", "manifest", "--cores", "2"),
            timeout=900,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    finally:
        os.umask(umask)
    rewritten = [p for p in (copy / "results").rglob("*") if p.is_file() and p.stat().st_mtime >= started]
    return demo, copy, rewritten


def test_a_forced_rerun_gives_byte_identical_outputs(forced_rerun):
    """Data, models, summaries, pair files, the trained adapter folder (weights, configuration with its module
    lists sorted, the training record without wall time), the eval JSONs (provenance included) and the
    manifest come out of a second run bit for bit as in the first."""
    demo, copy, rewritten = forced_rerun
    compared = []
    for path in rewritten:
        relative = path.relative_to(copy)
        assert path.read_bytes() == (demo / relative).read_bytes(), relative
        compared.append(relative.as_posix())
    adapter = "results/adapters/demo-target/sgtr/seed0"
    for name in ("adapter_model.safetensors", "adapter_config.json", "training_meta.json", "README.md"):
        assert f"{adapter}/{name}" in compared, name
    assert sorted(p.name for p in (copy / adapter).iterdir()) == sorted(p.name for p in (demo / adapter).iterdir())
    assert "results/manifest.json" in compared
    assert {f"results/{t}" for t in ("pairs/demo-target/base/sgtr/detection/default.jsonl",)} <= set(compared)
    assert set(FORCED_TARGETS) <= set(compared) and len(compared) >= 15


def test_outputs_are_shared_as_the_umask_says(forced_rerun):
    """Under umask 022 every file the rerun wrote is 0644 and its folder 0755 (not 0600/0700, what mkstemp,
    mkdtemp and some libraries give): the members of a group can read each other's results; adapters are
    readable by all and writable by none (Snakemake's protection gives a folder's contents the folder's mode
    less its write bits: 0555). No temporary file or folder is left behind."""
    _, copy, rewritten = forced_rerun
    # Adapters are protected() outputs: Snakemake takes their write bits once they are made.
    adapters = [p for p in rewritten if "adapters" in p.relative_to(copy).parts]
    others = [p for p in rewritten if p not in adapters]
    modes = {oct(p.stat().st_mode & 0o777) for p in others}
    folders = {oct(p.parent.stat().st_mode & 0o777) for p in others}
    assert modes == {"0o644"} and folders == {"0o755"}, (modes, folders)
    adapter_modes = {p.stat().st_mode & 0o777 for p in adapters} | {p.parent.stat().st_mode & 0o777 for p in adapters}
    assert adapters and all(mode & 0o444 == 0o444 and not mode & 0o222 for mode in adapter_modes), adapter_modes
    leftovers = [p for p in (copy / "results").rglob(".*") if p.name.endswith((".tmp", ".partial"))]
    assert leftovers == []


# ------------------------------------------------------------------- API path under load, secrets --

# Two conditions of the API demo; the EM judge (off in the demo) is pointed at a model the demo has.
API_SMALL = {
    "grid": {"models": ["api-target"], "chains": ["base", "sgtr"], "seeds": [0]},
    "eval": {"em_questions": {"judge": "api-other"}},
}
OPENAI_SENTINEL = "sk-sentinel-reliability-4Hq8Nv2Tz6Kd"
HF_SENTINEL = "hf_sentinelReliability7Pw3Lx9Gm5"


@pytest.mark.e2e
def test_api_rules_finish_with_half_the_requests_rate_limited_and_no_secret_is_written(tmp_path, monkeypatch):
    """The API demo (two conditions) against a fake server answering 429 to half of all requests: every
    API rule finishes through bounded retries. Keys come only from the environment (sentinels here); no
    output, log, provenance, metadata or cache file holds either."""
    import yaml
    from fake_openai import FakeOpenAI

    server = FakeOpenAI(job_polls=2, expected_key=OPENAI_SENTINEL, rate_limit_half=0.05)
    monkeypatch.setenv("OPENAI_BASE_URL", server.start())
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SENTINEL)
    monkeypatch.setenv("HF_TOKEN", HF_SENTINEL)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", HF_SENTINEL)
    try:
        workdir = copy_workflow(tmp_path / "workflow")
        (workdir / "config/small.yaml").write_text(yaml.safe_dump(API_SMALL))
        result = snakemake(
            workdir, "--cores", "2", "--configfile", "config/demo-api.yaml", "config/small.yaml", timeout=300
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
        sent = len(server.requests)
        assert 2 * server.rate_limited >= sent  # every request's first arrival (and every odd one) got 429
        assert server.rate_limited >= 10 and server.keys_seen == {OPENAI_SENTINEL}
    finally:
        server.stop()
    assert (workdir / "results/manifest.json").exists()
    assert "429" in "".join(p.read_text() for p in (workdir / "logs").rglob("*.log"))
    scanned, leaks = 0, []
    for path in workdir.rglob("*"):
        if path.is_file() and path.suffix not in (".py", ".smk"):
            content = path.read_bytes()
            scanned += 1
            leaks += [
                f"{path}: {name}"
                for name, secret in (("OPENAI_API_KEY", OPENAI_SENTINEL), ("HF_TOKEN", HF_SENTINEL))
                if secret.encode() in content
            ]
    assert scanned > 20 and leaks == []
    provenance = json.loads(next((workdir / "results/eval").rglob("*.json")).read_text())["provenance"]
    assert "OPENAI_API_KEY" not in json.dumps(provenance) and "HF_TOKEN" not in json.dumps(provenance)
