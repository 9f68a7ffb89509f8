"""Hub models through the shared Hugging Face cache (issue 29): `download_model` records a snapshot of the hub
cache instead of copying the weights into the checkout, so a second checkout with the same HF_HOME reuses the
first's snapshot; jobs load the snapshot the record names, offline. The hub is a hub-format cache folder made
here (tests/hub_caches.py: what a download on the submit host leaves), read with HF_HUB_OFFLINE=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow, snakemake
from hub_caches import COMMIT, REPO_ID

SUMMARIES = "results/summaries/{model}/base/seed0/cnn.jsonl"


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def hub_checkout(dest: Path) -> tuple[Path, str]:
    """A checkout whose config is the demo with both models taken from the hub repository."""
    workdir = copy_workflow(dest)
    config = yaml.safe_load((workdir / "config/demo.yaml").read_text())
    for settings in config["models"].values():
        settings["source"] = {"hf": REPO_ID, "revision": COMMIT}
    (workdir / "config/hub.yaml").write_text(yaml.safe_dump(config))
    return workdir, "config/hub.yaml"


def test_a_second_checkout_reuses_the_first_checkouts_model_snapshot(tmp_path, shared_hf_home):
    hf_home, snapshot = shared_hf_home
    blobs_before = sorted(p.name for p in files_under(hf_home))
    records = []
    for name in ("first", "second"):
        workdir, config = hub_checkout(tmp_path / name)
        # the comparator's summaries: one generate_summaries job, one model (a grid state's come from its
        # evaluation job, which reads the comparator's too)
        target = SUMMARIES.format(model="demo-other")
        result = snakemake(workdir, target, "--cores", "2", "--configfile", config, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert (workdir / target).stat().st_size > 0  # the job loaded the model from the record's snapshot
        record_path = workdir / "results/models/demo-other.json"
        record = json.loads(record_path.read_text())
        assert record == {
            "repo_id": REPO_ID,
            "revision": COMMIT,
            "requested_revision": COMMIT,
            "snapshot_path": str(snapshot),
        }
        # Snakemake write-protects the record, and the checkout holds no model file of its own.
        assert record_path.stat().st_mode & 0o222 == 0
        assert sorted(p.name for p in (workdir / "results/models").iterdir()) == ["demo-other.json"]
        assert not [p for p in (workdir / "results").rglob("*.safetensors")]
        records.append(record)
    assert records[0] == records[1]
    # Still one copy of each file in the shared cache: nothing was downloaded or copied again.
    assert sorted(p.name for p in files_under(hf_home)) == blobs_before
    assert [p.name for p in (snapshot.parent).iterdir()] == [COMMIT]


def test_a_forced_rerun_of_a_protected_output_stops_until_it_is_made_writable(tmp_path, shared_hf_home):
    """Snakemake's protected(): a forced rerun of a recorded model (or a finished adapter) stops, naming the
    file, until the user makes it writable (docs/reruns.md). Checked as an unprivileged user: root may write
    to anything, so write protection never holds for root."""
    import shutil
    import subprocess
    import tempfile

    from conftest import SNAKEMAKE, workflow_env

    root = os.geteuid() == 0
    if root and not shutil.which("setpriv"):
        pytest.skip("needs setpriv to run Snakemake as an unprivileged user")
    # Under a folder every user can reach (pytest's own are private to root).
    base = Path(tempfile.mkdtemp(prefix="sgtr-em-protected-", dir="/tmp"))
    try:
        base.chmod(0o755)
        workdir, config = hub_checkout(base / "wf")
        record = "results/models/demo-target.json"
        made = snakemake(workdir, record, "--cores", "1", "--configfile", config, timeout=300)
        assert made.returncode == 0, made.stderr[-2000:]
        prefix = []
        if root:
            for path in [workdir, *workdir.rglob("*")]:
                os.lchown(path, 65534, 65534)
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        forced = [*prefix, SNAKEMAKE, "-n", record, "--forcerun", "download_model", "--configfile", config]

        def run() -> subprocess.CompletedProcess:
            env = workflow_env(HOME=str(workdir), XDG_CACHE_HOME=str(workdir / ".cache"))
            return subprocess.run(forced, cwd=workdir, capture_output=True, text=True, timeout=300, env=env)

        stopped = run()
        output = stopped.stdout + stopped.stderr
        assert stopped.returncode != 0 and "Write-protected output files" in output, output[-2000:]
        assert record in output
        (workdir / record).chmod(0o644)  # the documented override
        planned = run()
        assert planned.returncode == 0 and "download_model" in planned.stdout, planned.stderr[-2000:]
    finally:
        shutil.rmtree(base, ignore_errors=True)
