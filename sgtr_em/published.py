"""The paper's published numbers (published_numbers.yaml in this package, docs/methodology.md §8): drawn beside
ours in the figures, tables and claims."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

PUBLISHED_FILE = "published_numbers.yaml"


def load_published(path: str | Path | None = None) -> dict[str, Any]:
    """The published numbers: the packaged file, or `path`."""
    import yaml

    text = (
        Path(path).read_text(encoding="utf-8")
        if path
        else resources.files(__package__).joinpath(PUBLISHED_FILE).read_text(encoding="utf-8")
    )
    return yaml.safe_load(text)


def published_for(
    published: Mapping[str, Any] | None, model: str, identity: str | None = None
) -> dict[str, Any] | None:
    """A model's published numbers, matched by config name or by hub / API id."""
    if not published:
        return None
    for name, entry in (published.get("models") or {}).items():
        if name == model or (identity is not None and identity in (entry.get("ids") or [])):
            return entry
    return None
