"""What an artifact-evaluation committee needs beside the results (docs/artifact.md): the config as run, the
Python environment as installed (pip-freeze format), and the code version. The `bundle` target packs these
with the evaluation JSONs, tables, figures, claims, results summary, manifest and sources lock."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .io import atomic_path, write_json
from .runtime import code_version

# PyTorch's wheel index, where builds with a local version (`torch==2.13.0+cpu`, `+cu126`) come from.
TORCH_INDEX = "https://download.pytorch.org/whl/{tag}"


def torch_index_lines(freeze: str) -> list[str]:
    """`--extra-index-url` lines for the PyTorch builds in a `pip freeze` that PyPI does not serve (a local
    version such as `+cpu`), so that `pip install -r` of the file works as written."""
    tags = sorted({line.split("+", 1)[1] for line in freeze.splitlines() if line.startswith("torch==") and "+" in line})
    return [f"--extra-index-url {TORCH_INDEX.format(tag=tag)}" for tag in tags]


def installed_requirements() -> str:
    """`pip freeze` of this interpreter (the workflow's own editable install left out: its version is the code
    version), under a header naming Python and the platform, with the index of a PyTorch build PyPI does not
    serve."""
    try:
        freeze = subprocess.run(
            [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise RuntimeError(f"`{sys.executable} -m pip freeze` failed ({err}): the environment needs pip") from None
    header = [
        f"# Python {platform.python_version()} ({sys.implementation.name}) on {platform.platform()}",
        "# `pip freeze` of the interpreter that ran the workflow's model jobs; the workflow itself: code_version.json.",
        "# Install: pip install -r requirements.txt",
    ]
    return "\n".join([*header, *torch_index_lines(freeze), *freeze.splitlines()]) + "\n"


def code_record(root: str | Path | None = None) -> dict[str, Any]:
    """The workflow checkout's version: `git describe`, the commit and whether the tree had changes."""
    root = Path(root) if root else Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {
        "describe": code_version(),
        "commit": commit or "unknown",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None,
    }


def write_artifact_info(
    config: dict[str, Any], *, config_out: str | Path, requirements_out: str | Path, code_out: str | Path
) -> None:
    """The config as run (loaded, defaults filled), the installed requirements and the code version."""
    for path, text in (
        (config_out, yaml.safe_dump(config, sort_keys=True, allow_unicode=True)),
        (requirements_out, installed_requirements()),
    ):
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    write_json(code_out, code_record())
