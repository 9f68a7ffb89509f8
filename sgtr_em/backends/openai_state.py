"""Which model an API model state is: the base model id, or the `ft:` id that the last fine-tuning stage
of its chain recorded in its `openai_model.json` (written by sgtr_em.openai_ft)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import InputError, read_json

# A finished fine-tuning stage's output: its `ft:` model id, job id and what produced them.
OUTPUT_FILE = "openai_model.json"


def parent_model_id(base_model: str, parent_dirs: list[str] | tuple[str, ...]) -> str:
    """The model a stage fine-tunes: the last parent stage's `ft:` id, or the base model id."""
    if not parent_dirs:
        return base_model
    return read_model_record(parent_dirs[-1])["fine_tuned_model"]


def read_model_record(stage_dir: str | Path) -> dict[str, Any]:
    path = Path(stage_dir) / OUTPUT_FILE
    if not path.exists():
        raise FileNotFoundError(f"{stage_dir}: no {OUTPUT_FILE} (not an OpenAI fine-tuning stage?)")
    record = read_json(path)
    if not str(record.get("fine_tuned_model", "")).startswith("ft:"):
        raise InputError(f"{path}: fine_tuned_model is not an ft: model id")
    return record
