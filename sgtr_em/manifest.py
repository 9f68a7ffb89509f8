"""`results/manifest.json`: every declared output of a run with its size and sha256, so a reviewer can check
that the files they hold are the ones a run produced. Only files whose path matches an output template of
the workflow are listed (`sgtr_em.paths.MANIFEST_OUTPUTS`): no model snapshots or builds (their identity
is in each output's provenance), downloads, trainer scratch, caches, temporary or stray files. Identical
runs therefore give identical manifests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .io import sha256_file, write_json

_WILDCARD = re.compile(r"\{(\w+)\}")


def output_pattern(template: str, constraints: Mapping[str, str]) -> re.Pattern[str]:
    """A regular expression matching the paths of one output template (`{name}` wildcards; unconstrained
    ones match one path segment)."""
    parts, last = [], 0
    for match in _WILDCARD.finditer(template):
        parts.append(re.escape(template[last : match.start()]))
        parts.append(f"(?:{constraints.get(match.group(1), '[^/]+')})")
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts))


def result_files(
    results_dir: str | Path, templates: Iterable[str], constraints: Mapping[str, str], skip: Iterable[str | Path] = ()
) -> list[Path]:
    """Files under `results_dir`, sorted, whose path (as `results/...`) matches one of the output templates;
    hidden files (Snakemake's timestamps, temporary files of writes in progress) and `skip` left out."""
    root = Path(results_dir)
    patterns = [output_pattern(t, constraints) for t in templates]
    skipped = {Path(p).resolve() for p in skip}
    out = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or path.resolve() in skipped or any(p.startswith(".") for p in relative.parts):
            continue
        name = f"results/{relative.as_posix()}"
        if any(pattern.fullmatch(name) for pattern in patterns):
            out.append(path)
    return out


def build_manifest(
    results_dir: str | Path, manifest_path: str | Path, templates: Iterable[str], constraints: Mapping[str, str]
) -> dict[str, Any]:
    """The manifest of `results_dir` (paths as given, e.g. `results/eval/...`); the manifest itself is left out."""
    files = [
        {"path": path.as_posix(), "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        for path in result_files(results_dir, templates, constraints, skip=(manifest_path,))
    ]
    return {"n_files": len(files), "files": files}


def write_manifest(
    results_dir: str | Path,
    manifest_path: str | Path,
    templates: Iterable[str] | None = None,
    constraints: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write the manifest of the workflow's declared outputs (the targets module's templates by default)."""
    if templates is None or constraints is None:
        from .paths import MANIFEST_OUTPUTS, WILDCARD_CONSTRAINTS

        templates, constraints = MANIFEST_OUTPUTS, WILDCARD_CONSTRAINTS
    manifest = {**build_manifest(results_dir, manifest_path, templates, constraints), **extra}
    write_json(manifest_path, manifest)
    return manifest
