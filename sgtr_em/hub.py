"""Hub models through the Hugging Face cache: a model is downloaded once into the hub cache (`HF_HOME`, shared
by every checkout and user that sets the same one) and the workflow keeps only a small record of it,
`results/models/<name>.json`: the repository, the commit and the snapshot folder. Jobs load the snapshot
the record names; a compute node without network reads the cache the submit host filled (a shared `HF_HOME`),
or its own copy of the same commit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .io import write_json

RECORD_SUFFIX = ".json"


class SnapshotError(RuntimeError):
    """A model record whose snapshot this machine cannot find."""


def fetch_snapshot(repo_id: str, revision: str | None) -> dict[str, Any]:
    """Download (or find in the hub cache) a model repository at a revision and describe the snapshot:
    `huggingface_hub.snapshot_download` into the cache, with its resumable, verified downloads and its
    token handling (HF_TOKEN or `hf auth login`). With HF_HUB_OFFLINE=1 only the cache is read."""
    from huggingface_hub import snapshot_download

    path = Path(snapshot_download(repo_id=repo_id, revision=revision))
    # The hub cache names each snapshot folder by its commit (models--org--name/snapshots/<commit>).
    return {
        "repo_id": repo_id,
        "revision": path.name,
        "requested_revision": revision,
        "snapshot_path": str(path),
    }


def write_record(path: str | Path, record: dict[str, Any]) -> None:
    write_json(path, record)


def is_record(model_input: str | Path) -> bool:
    """Whether a job's model input is a snapshot record (a hub model) rather than a model folder."""
    return str(model_input).endswith(RECORD_SUFFIX) and Path(model_input).is_file()


def read_record(path: str | Path) -> dict[str, Any]:
    record = json.loads(Path(path).read_text())
    missing = {"repo_id", "revision", "snapshot_path"} - set(record)
    if missing:
        raise SnapshotError(f"{path}: not a model snapshot record (missing {', '.join(sorted(missing))})")
    return record


def snapshot_dir(record_path: str | Path) -> Path:
    """The model folder a record names: its snapshot path where this machine sees it, else the same commit in
    this machine's hub cache (looked up offline)."""
    record = read_record(record_path)
    recorded = Path(record["snapshot_path"])
    if recorded.is_dir():
        return recorded
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=record["repo_id"], revision=record["revision"], local_files_only=True))
    except LocalEntryNotFoundError:
        raise SnapshotError(
            f"{record_path}: {record['repo_id']}@{record['revision'][:12]} is neither at {recorded} nor in this "
            "machine's hub cache: give the jobs the HF_HOME of the host that ran download_model (docs/cluster.md)"
        ) from None
