"""Hugging Face hub repositories as folders in huggingface_hub's cache layout, made offline (what a download on
the submit host leaves): read with HF_HUB_OFFLINE=1 instead of the hub."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# The hub model repository of the shared-cache tests (tests/unit/test_hub_snapshots.py,
# tests/workflow/test_hub_models.py) and the commit its snapshot is of.
REPO_ID = "local-org/tiny-chat"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


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


def hub_cache(root: Path, repo_type: str, repo_id: str, commit: str, files: dict[str, str]) -> None:
    """A repository in huggingface_hub's cache layout (what a download leaves): refs/main names the commit."""
    folder = root / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    for name, text in files.items():
        (folder / "snapshots" / commit / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "snapshots" / commit / name).write_text(text)
