"""Resume checkpoints of a training job: which of a work dir's checkpoints are complete, whether they were
made for this very run (the fingerprint: the contents of everything the training depends on), and which one
to resume from."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .io import atomic_path, sha256_file, sha256_json, write_json

log = logging.getLogger(__name__)

# A checkpoint counts only once this marker is in it: the Trainer writes checkpoint folders in place, so a
# job killed mid-save leaves a folder that must not be resumed from.
CHECKPOINT_COMPLETE = "checkpoint_complete.json"
# What the checkpoints of a work dir were trained for: a rerun with other data or settings starts over.
CHECKPOINT_FINGERPRINT = "fingerprint.json"
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")


# Files of a local model folder bigger than this are fingerprinted by size and modification time instead of
# content (a user's 60 GB model would cost a minute of hashing per training job; a built demo model is small).
FULL_HASH_LIMIT = 64 << 20
# What of an adapter folder its child training depends on: the weights and the LoRA configuration.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def folder_fingerprint(folder: str | Path, limit: int = FULL_HASH_LIMIT) -> str:
    """A hash of a folder's files (hidden ones left out): each file's relative name and sha256, or its size
    and modification time when it is bigger than `limit`."""
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        stat = path.stat()
        content = sha256_file(path) if stat.st_size <= limit else f"size={stat.st_size},mtime={stat.st_mtime_ns}"
        digest.update(f"{relative.as_posix()}\0{content}\n".encode())
    return digest.hexdigest()


def adapter_fingerprint(adapter_dir: str | Path) -> str:
    """The sha256 of an adapter's weights and configuration: a retrained parent has another one."""
    root = Path(adapter_dir)
    return sha256_json({name: sha256_file(root / name) for name in ADAPTER_FILES if (root / name).exists()})


def training_fingerprint(
    *,
    base_dir: str | Path,
    base_revision: str | None,
    parent_adapters: Sequence[str | Path],
    train_file_sha256: str,
    recipe: dict[str, Any],
    seed: int,
    checkpoint_steps: int,
) -> dict[str, Any]:
    """What a training's checkpoints were made for: the base model (its hub revision, or the content of a
    built or local model folder), the parent adapters' weights, the training file, the recipe and the seed.
    A checkpoint is resumed only by a run with the same fingerprint, so it can never continue on a parent
    that was retrained, another base model or other data."""
    base = {"revision": base_revision} if base_revision else {"folder_sha256": folder_fingerprint(base_dir)}
    return {
        "base_model": base,
        "parent_adapters_sha256": [adapter_fingerprint(p) for p in parent_adapters],
        "train_file_sha256": train_file_sha256,
        "recipe_sha256": sha256_json(recipe),
        "seed": seed,
        "checkpoint_steps": checkpoint_steps,
    }


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
    remove_empty_folders(root)


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


# ------------------------------------------------------------------------------ evaluation steps --
# A finished step of a state's evaluation job counts only with this record beside its copy: written after the
# copy is complete, naming the fingerprint it was made for and the copy's sha256.
STEP_RECORD_SUFFIX = ".done.json"


def input_fingerprint(paths: Sequence[str | Path]) -> list[str]:
    """Content hashes of a job's input files and folders (a folder's big files by size and modification time,
    see `folder_fingerprint`)."""
    return [folder_fingerprint(p) if Path(p).is_dir() else sha256_file(p) for p in paths]


class StepCheckpoints:
    """The finished steps of an evaluation job, kept in its work dir (outside its outputs, which a failed job
    loses) until the job succeeds, so that a killed, preempted, requeued or timed-out job resumes at the step it
    had reached. A step is taken back only when made for the same fingerprint: the job's (its inputs' contents,
    model, code) with the step's own settings and the outputs of the steps before it."""

    def __init__(self, work_dir: str | Path, job_fingerprint: dict[str, Any]) -> None:
        self.root = Path(work_dir)
        self.job = sha256_json(job_fingerprint)

    def _key(self, step: str, settings: Any, earlier: dict[str, str]) -> str:
        return sha256_json({"job": self.job, "step": step, "settings": settings, "earlier": earlier})

    def _paths(self, step: str) -> tuple[Path, Path]:
        return self.root / step, self.root / f"{step}{STEP_RECORD_SUFFIX}"

    def restore(self, step: str, output: str | Path, settings: Any, earlier: dict[str, str]) -> bool:
        """Put the step's kept output at `output` if one was made for this fingerprint; whether it was."""
        copy, record_path = self._paths(step)
        if not (copy.is_file() and record_path.is_file()):
            return False
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return False
        if record.get("key") != self._key(step, settings, earlier) or record.get("sha256") != sha256_file(copy):
            return False
        with atomic_path(output) as staging:
            shutil.copyfile(copy, staging)
        return True

    def save(self, step: str, output: str | Path, settings: Any, earlier: dict[str, str]) -> None:
        """Keep a finished step's output (the copy first, then its record)."""
        copy, record_path = self._paths(step)
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_path(copy) as staging:
            shutil.copyfile(output, staging)
        write_json(record_path, {"key": self._key(step, settings, earlier), "sha256": sha256_file(copy)})

    def clear(self, steps: Sequence[str]) -> None:
        """Drop these steps' copies (the job succeeded; the state's other job may still keep its own)."""
        for step in steps:
            for path in self._paths(step):
                path.unlink(missing_ok=True)
        remove_empty_folders(self.root)


def remove_empty_folders(folder: Path, stop_at: str = "checkpoints") -> None:
    """Remove `folder` and then each parent left empty, up to (not including) the one named `stop_at`."""
    for path in [folder, *folder.parents]:
        if path.name == stop_at or not path.name:
            return
        try:
            path.rmdir()
        except OSError:
            return
