"""Hub models through the shared Hugging Face cache (issue 29): `download_model` records a snapshot of the hub
cache instead of copying the weights into the checkout, so a second checkout with the same HF_HOME reuses the
first's snapshot; jobs load the snapshot the record names, offline. The hub is a hub-format cache folder made
here (what a download on the submit host leaves), read with HF_HUB_OFFLINE=1."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow, snakemake

from sgtr_em import hub
from sgtr_em.backends import local_model_dir
from sgtr_em.runtime import model_identity

REPO_ID = "local-org/tiny-chat"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SUMMARIES = "results/summaries/{model}/base/seed0/cnn.jsonl"


def hub_model(hf_home: Path, repo_id: str, commit: str, model_dir: Path) -> Path:
    """`model_dir` as huggingface_hub's cache holds a downloaded model repository: each file once under
    blobs/ (named by its hash), the snapshot of the commit as links to the blobs, refs/main naming the commit.
    Returns the snapshot folder."""
    folder = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = folder / "snapshots" / commit
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / path.relative_to(model_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    return snapshot


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.fixture
def shared_hf_home(tmp_path, monkeypatch, tiny_model_dir) -> tuple[Path, Path]:
    """(HF_HOME shared by the checkouts of this test, the snapshot of REPO_ID@COMMIT in it)."""
    hf_home = tmp_path / "hf_home"
    snapshot = hub_model(hf_home, REPO_ID, COMMIT, tiny_model_dir)
    monkeypatch.setenv("HF_HOME", str(hf_home))  # the workflow runs'
    monkeypatch.setattr(
        "huggingface_hub.constants.HF_HUB_CACHE", str(hf_home / "hub")
    )  # this process's (read at import)
    return hf_home, snapshot


def hub_checkout(dest: Path) -> tuple[Path, str]:
    """A checkout whose config is the demo with both models taken from the hub repository."""
    workdir = copy_workflow(dest)
    config = yaml.safe_load((workdir / "config/demo.yaml").read_text())
    for settings in config["models"].values():
        settings["source"] = {"hf": REPO_ID, "revision": COMMIT}
    (workdir / "config/hub.yaml").write_text(yaml.safe_dump(config))
    return workdir, "config/hub.yaml"


@pytest.mark.workflow
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


def test_a_record_resolves_through_this_machines_cache_when_its_path_is_not_seen(tmp_path, shared_hf_home):
    """A compute node that mounts the shared cache elsewhere, or holds its own copy of the commit, finds the
    snapshot by repository and commit; where it has neither, the error names both and what to share."""
    _, snapshot = shared_hf_home
    record = tmp_path / "model.json"
    record.write_text(
        json.dumps({"repo_id": REPO_ID, "revision": COMMIT, "snapshot_path": str(tmp_path / "elsewhere")})
    )
    assert Path(local_model_dir(str(record), "job")) == snapshot
    assert model_identity("m", {"hf": REPO_ID}, str(record)) == {"name": "m", "id": REPO_ID, "revision": COMMIT}
    record.write_text(json.dumps({"repo_id": REPO_ID, "revision": "f" * 40, "snapshot_path": "/nowhere"}))
    with pytest.raises(hub.SnapshotError, match=r"local-org/tiny-chat@ffffffffffff is neither at /nowhere.*HF_HOME"):
        local_model_dir(str(record), "job")


def test_fetch_snapshot_records_the_commit_of_a_branch(shared_hf_home):
    """A branch (here main) is recorded as the commit the cache resolves it to."""
    _, snapshot = shared_hf_home
    record = hub.fetch_snapshot(REPO_ID, None)
    assert record == {
        "repo_id": REPO_ID,
        "revision": COMMIT,
        "requested_revision": None,
        "snapshot_path": str(snapshot),
    }


@pytest.mark.workflow
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
