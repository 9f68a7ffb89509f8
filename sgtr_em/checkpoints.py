"""Resume checkpoints of a training job: which of a work dir's checkpoints are complete, whether they were
made for this very run, and which one to resume from."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from .io import write_json

log = logging.getLogger(__name__)

# A checkpoint counts only once this marker is in it: the Trainer writes checkpoint folders in place, so a
# job killed mid-save leaves a folder that must not be resumed from.
CHECKPOINT_COMPLETE = "checkpoint_complete.json"
# What the checkpoints of a work dir were trained for: a rerun with other data or settings starts over.
CHECKPOINT_FINGERPRINT = "fingerprint.json"
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_marker_callback():
    """A TrainerCallback marking each checkpoint complete once the Trainer has written all of it."""
    from transformers import TrainerCallback

    class MarkCheckpointComplete(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                write_json(folder / CHECKPOINT_COMPLETE, {"global_step": state.global_step})
            return control

    return MarkCheckpointComplete()


def last_complete_checkpoint(work_dir: str | Path) -> Path | None:
    """The checkpoint folder with the most steps that carries the completion marker, or None."""
    root = Path(work_dir)
    if not root.is_dir():
        return None
    complete = [
        (int(match.group(1)), path)
        for path in root.iterdir()
        if (match := _CHECKPOINT_DIR.match(path.name)) and (path / CHECKPOINT_COMPLETE).exists()
    ]
    return max(complete)[1] if complete else None


def remove_checkpoints(work_dir: str | Path) -> None:
    """Delete the trainer's checkpoints and fingerprint (and the work dir, if nothing else is left in it)."""
    root = Path(work_dir)
    if not root.is_dir():
        return
    for path in root.iterdir():
        if _CHECKPOINT_DIR.match(path.name) or path.name.startswith("tmp-checkpoint"):
            shutil.rmtree(path, ignore_errors=True)
    (root / CHECKPOINT_FINGERPRINT).unlink(missing_ok=True)
    if not any(root.iterdir()):
        root.rmdir()


def prepare_work_dir(work_dir: str | Path, fingerprint: dict[str, Any]) -> Path | None:
    """Keep the work dir's checkpoints if they were made for this very run; return the one to resume from."""
    root = Path(work_dir)
    fingerprint_path = root / CHECKPOINT_FINGERPRINT
    saved = None
    if fingerprint_path.exists():
        try:
            saved = json.loads(fingerprint_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            saved = None
    if saved != fingerprint:
        if root.is_dir() and any(_CHECKPOINT_DIR.match(p.name) for p in root.iterdir()):
            log.info("discarding checkpoints in %s: they were made for other data or settings", root)
        remove_checkpoints(root)
        write_json(fingerprint_path, fingerprint)
        return None
    return last_complete_checkpoint(root)
