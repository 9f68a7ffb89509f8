"""Hub models through the shared Hugging Face cache (issue 29): a model record names a snapshot of the hub cache,
found by repository and commit where the recorded path is not seen, and a branch is recorded as the commit it
resolves to (a second checkout reusing the first's snapshot through Snakemake: tests/workflow/test_hub_models.py).
The hub is a hub-format cache folder made here (tests/hub_caches.py), read with HF_HUB_OFFLINE=1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_caches import COMMIT, REPO_ID

from sgtr_em import hub
from sgtr_em.backends import local_model_dir
from sgtr_em.runtime import model_identity


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
