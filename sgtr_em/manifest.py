"""`results/manifest.json`: every result file with its size and sha256, so a reviewer can check that the
files they hold are the ones a run produced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .io import sha256_file, write_json

# Scratch that is not a result: training checkpoints and fine-tuning job state (deleted or only needed
# to resume), and the API request cache (an accelerator, not an output).
TRANSIENT_DIRS = ("checkpoints", "api_cache")


def result_files(
    results_dir: str | Path, exclude: tuple[str, ...] = TRANSIENT_DIRS, skip: tuple[str | Path, ...] = ()
) -> list[Path]:
    """Files under `results_dir` in sorted order, without the excluded top-level folders, the `skip`
    paths, and hidden files (Snakemake's timestamps, temporary files of writes in progress)."""
    root = Path(results_dir)
    skipped = {Path(p).resolve() for p in skip}
    out = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or relative.parts[0] in exclude or path.resolve() in skipped:
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        out.append(path)
    return out


def build_manifest(
    results_dir: str | Path, manifest_path: str | Path, exclude: tuple[str, ...] = TRANSIENT_DIRS
) -> dict[str, Any]:
    """The manifest of `results_dir` (paths as given, e.g. `results/eval/...`); the manifest itself is left out."""
    files = [
        {"path": path.as_posix(), "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        for path in result_files(results_dir, exclude, skip=(manifest_path,))
    ]
    return {
        "n_files": len(files),
        "excluded": [f"{Path(results_dir).as_posix()}/{name}/" for name in exclude],
        "files": files,
    }


def write_manifest(results_dir: str | Path, manifest_path: str | Path, **extra: Any) -> dict[str, Any]:
    manifest = {**build_manifest(results_dir, manifest_path), **extra}
    write_json(manifest_path, manifest)
    return manifest
